/* usercompute: a CPU-bound Linux user program for bench/virt.ts, which runs it inside the
 * Debian guest between two rv-marker calls under each --virt mode.
 *
 * What it measures is the cost of virtualization on code that never leaves user mode: between
 * the markers there are no system calls, only integer arithmetic (xorshift, multiplies, a
 * division now and then) and scattered loads and stores into a 2 MiB table, so that the TLB
 * and, under trap-and-emulate, the shadow page tables see 512 pages. A hypervisor that gets
 * this right adds almost nothing: the target is within 5% of --virt native.
 *
 * Usage: usercompute [ROUNDS]; each round is 256 Ki table updates, about 6.6 million
 * instructions. Prints one checksum line after the loop; the output depends only on ROUNDS,
 * so it must be the same under every mode. Build: riscv64-linux-gnu-gcc -static -O2. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define WORDS (1u << 18) /* 2 MiB of uint64_t */
#define DEFAULT_ROUNDS 80

static uint64_t table[WORDS];

int main(int argc, char **argv) {
    unsigned rounds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : DEFAULT_ROUNDS;
    uint64_t x = 0x9e3779b97f4a7c15u, sum = 0;
    for (unsigned i = 0; i < WORDS; i++) table[i] = i * 0x2545f4914f6cdd1du;
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned i = 0; i < WORDS; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t j = x & (WORDS - 1);
            uint64_t v = table[j] ^ table[i];
            table[j] = v + x;
            sum += (v * 0x2545f4914f6cdd1du) >> 7;
            if ((i & 255) == 0) sum += x / ((v | 1) & 0xffff);
        }
    }
    printf("usercompute: %u rounds, checksum %016llx\n", rounds, (unsigned long long)sum);
    return 0;
}
