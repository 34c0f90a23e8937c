/* compute: CPU-bound kernels timed by the guest's own clock, for bench/compute.ts, which runs
 * this program as a Linux user program inside the default Debian guest under Ringvisor and
 * under QEMU (TCG) and compares the times the guest itself measured.
 *
 * Each kernel prepares its data first (allocation and the page faults that come with it are
 * not timed), then runs between two clock_gettime(CLOCK_MONOTONIC) calls, and prints one line:
 *
 *   compute KERNEL time SECONDS checksum HEX16
 *
 * and at the end "compute total time SECONDS" (the sum of the kernels' times). The checksums
 * depend only on SCALE, never on the machine: the same binary must print the same checksums on
 * every system, byte for byte (the floating-point kernels included: IEEE 754 arithmetic as the
 * compiler emitted it, fused multiply-adds and all).
 *
 * Each timed region is also bracketed by the Ringvisor marker instruction (slti x0, x0, 0x7a5,
 * a no-op everywhere else), so `ringvisor run --markers` reports the retired instructions and
 * the host time of each kernel as well.
 *
 * Usage: compute [SCALE [KERNEL...]]; SCALE (default 1) multiplies every kernel's repetitions;
 * at 1 the program retires about 1.4e9 instructions. Build: riscv64-linux-gnu-gcc -static -O2. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline void marker(void) {
#if defined(__riscv)
    __asm__ volatile("slti x0, x0, 0x7a5" ::: "memory");
#endif
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t xorshift(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdu;
}

static uint64_t bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* The timed region of a kernel: between start() and stop(), bracketed by markers. */
static double t_start, t_kernel;
static void start(void) {
    marker();
    t_start = now();
}
static void stop(void) {
    t_kernel = now() - t_start;
    marker();
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "compute: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    memset(p, 0, n); /* touch every page before the clock starts */
    return p;
}

/* CRC-32 (IEEE, reflected) one bit at a time: a tight integer loop with a data-dependent
 * branch-free mask. */
static uint64_t k_crc32(unsigned scale) {
    enum { N = 256 << 10 };
    uint8_t *buf = xmalloc(N);
    for (unsigned i = 0; i < N; i++) buf[i] = (uint8_t)xorshift();
    start();
    uint32_t crc = 0xffffffffu;
    for (unsigned r = 0; r < 21 * scale; r++) {
        for (unsigned i = 0; i < N; i++) {
            crc ^= buf[i];
            for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
        }
    }
    stop();
    free(buf);
    return ~crc;
}

/* A linked list in random order over 8 MiB, one node per 64-byte line: dependent loads that
 * miss every cache and TLB an emulator has. */
struct node { struct node *next; uint64_t value; uint64_t pad[6]; };
static uint64_t k_list(unsigned scale) {
    enum { N = 128 << 10 };
    struct node *nodes = xmalloc(N * sizeof *nodes);
    uint32_t *order = xmalloc(N * sizeof *order);
    for (uint32_t i = 0; i < N; i++) order[i] = i;
    for (uint32_t i = N - 1; i > 0; i--) { /* Sattolo: one cycle through every node */
        uint32_t j = (uint32_t)(xorshift() % i);
        uint32_t t = order[i]; order[i] = order[j]; order[j] = t;
    }
    for (uint32_t i = 0; i < N; i++) {
        nodes[order[i]].next = &nodes[order[(i + 1) % N]];
        nodes[order[i]].value = xorshift();
    }
    free(order);
    start();
    uint64_t sum = 0;
    struct node *p = &nodes[0];
    for (unsigned r = 0; r < 96 * scale; r++) {
        for (unsigned i = 0; i < N; i++) {
            sum += p->value ^ i;
            p = p->next;
        }
    }
    stop();
    sum = mix(sum, (uint64_t)(p - nodes));
    free(nodes);
    return sum;
}

/* C += A * B in double, 160 x 160, i-k-j order. */
static uint64_t k_matmul(unsigned scale) {
    enum { N = 160 };
    double *a = xmalloc(N * N * sizeof(double)), *b = xmalloc(N * N * sizeof(double)), *c = xmalloc(N * N * sizeof(double));
    for (unsigned i = 0; i < N * N; i++) {
        a[i] = (double)(xorshift() % 2001) / 1000.0 - 1.0;
        b[i] = (double)(xorshift() % 2001) / 1000.0 - 1.0;
    }
    start();
    for (unsigned r = 0; r < 4 * scale; r++) {
        for (unsigned i = 0; i < N; i++) {
            for (unsigned k = 0; k < N; k++) {
                double aik = a[i * N + k];
                for (unsigned j = 0; j < N; j++) c[i * N + j] += aik * b[k * N + j];
            }
        }
    }
    stop();
    uint64_t h = 0;
    for (unsigned i = 0; i < N * N; i++) h = mix(h, bits(c[i]));
    free(a); free(b); free(c);
    return h;
}

/* Quicksort (median of three, insertion sort below 16) of 512 Ki random 32-bit keys. */
static void insertion(uint32_t *v, long n) {
    for (long i = 1; i < n; i++) {
        uint32_t x = v[i];
        long j = i - 1;
        while (j >= 0 && v[j] > x) { v[j + 1] = v[j]; j--; }
        v[j + 1] = x;
    }
}
static void quicksort(uint32_t *v, long n) {
    while (n > 16) {
        uint32_t a = v[0], b = v[n / 2], c = v[n - 1];
        uint32_t pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        long i = 0, j = n - 1;
        for (;;) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i >= j) break;
            uint32_t t = v[i]; v[i] = v[j]; v[j] = t;
            i++; j--;
        }
        /* recurse into the smaller side, loop on the larger */
        if (j + 1 < n - j - 1) { quicksort(v, j + 1); v += j + 1; n -= j + 1; }
        else { quicksort(v + j + 1, n - j - 1); n = j + 1; }
    }
    insertion(v, n);
}
static uint64_t k_sort(unsigned scale) {
    enum { N = 512 << 10 };
    unsigned rounds = 2 * scale;
    uint32_t *v = xmalloc((size_t)rounds * N * sizeof *v);
    for (size_t i = 0; i < (size_t)rounds * N; i++) v[i] = (uint32_t)xorshift();
    start();
    for (unsigned r = 0; r < rounds; r++) quicksort(v + (size_t)r * N, N);
    stop();
    uint64_t h = 0;
    for (size_t i = 0; i < (size_t)rounds * N; i++) {
        if (i % N != 0 && v[i - 1] > v[i]) { fprintf(stderr, "compute: sort is wrong at %zu\n", i); exit(1); }
        if ((i & 1023) == 0) h = mix(h, v[i]);
    }
    free(v);
    return h;
}

/* Sieve of Eratosthenes over 8 Mi bytes: strided byte stores, then a counting pass. */
static uint64_t k_sieve(unsigned scale) {
    enum { N = 8 << 20 };
    uint8_t *s = xmalloc(N);
    uint64_t h = 0;
    start();
    for (unsigned r = 0; r < 2 * scale; r++) {
        memset(s, 1, N);
        s[0] = s[1] = 0;
        for (uint64_t i = 2; i * i < N; i++)
            if (s[i]) for (uint64_t j = i * i; j < N; j += i) s[j] = 0;
        uint64_t count = 0, last = 0;
        for (uint64_t i = 0; i < N; i++) if (s[i]) { count++; last = i; }
        h = mix(mix(h, count), last);
    }
    stop();
    free(s);
    return h;
}

/* memcpy of 4 MiB between two buffers, at a different offset each time (glibc's memcpy). */
static uint64_t k_memcpy(unsigned scale) {
    enum { N = 4 << 20, SLACK = 4096 };
    uint8_t *a = xmalloc(N + SLACK), *b = xmalloc(N + SLACK);
    for (unsigned i = 0; i < N + SLACK; i++) a[i] = (uint8_t)(i * 131u + (i >> 9));
    start();
    for (unsigned r = 0; r < 96 * scale; r++) {
        unsigned off = (r * 97u) % SLACK;
        if (r & 1) memcpy(a + (off & ~7u), b + off, N);
        else memcpy(b + off, a + (off & ~7u), N);
    }
    stop();
    uint64_t h = 0;
    for (unsigned i = 0; i < N + SLACK; i += 64) h = mix(h, a[i] | (uint64_t)b[i] << 8);
    free(a); free(b);
    return h;
}

/* Mandelbrot set, 320 x 240 over [-2.2, 1] x [-1.2, 1.2], at most 256 iterations a point. */
static uint64_t k_mandelbrot(unsigned scale) {
    enum { W = 320, H = 240, MAXIT = 256 };
    uint64_t h = 0, total = 0;
    start();
    for (unsigned r = 0; r < 3 * scale; r++) {
        for (int y = 0; y < H; y++) {
            double ci = -1.2 + 2.4 * y / H;
            uint64_t row = 0;
            for (int x = 0; x < W; x++) {
                double cr = -2.2 + 3.2 * x / W, zr = 0, zi = 0;
                int it = 0;
                while (it < MAXIT && zr * zr + zi * zi <= 4.0) {
                    double t = zr * zr - zi * zi + cr;
                    zi = 2.0 * zr * zi + ci;
                    zr = t;
                    it++;
                }
                row = row * 31 + (uint64_t)it;
                total += (uint64_t)it;
            }
            h = mix(h, row);
        }
    }
    stop();
    return mix(h, total);
}

struct kernel { const char *name; uint64_t (*run)(unsigned); };
static const struct kernel KERNELS[] = {
    {"crc32", k_crc32}, {"list", k_list}, {"matmul", k_matmul}, {"sort", k_sort},
    {"sieve", k_sieve}, {"memcpy", k_memcpy}, {"mandelbrot", k_mandelbrot},
};
#define NKERNELS (sizeof KERNELS / sizeof KERNELS[0])

int main(int argc, char **argv) {
    unsigned scale = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1;
    if (scale == 0) {
        fprintf(stderr, "usage: compute [SCALE [KERNEL...]]\n");
        return 2;
    }
    double total = 0;
    for (unsigned k = 0; k < NKERNELS; k++) {
        if (argc > 2) {
            int wanted = 0;
            for (int a = 2; a < argc; a++) wanted |= strcmp(argv[a], KERNELS[k].name) == 0;
            if (!wanted) continue;
        }
        uint64_t sum = KERNELS[k].run(scale);
        total += t_kernel;
        printf("compute %s time %.6f checksum %016llx\n", KERNELS[k].name, t_kernel, (unsigned long long)sum);
        fflush(stdout);
    }
    printf("compute total time %.6f\n", total);
    return 0;
}
