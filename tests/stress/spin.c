/* spin: a CPU-bound guest kernel for the host's scheduling tests.  It counts
 * in a tight loop forever and prints "spin <n>" after every round of 2^21
 * iterations, so a test can read how far the guest itself got from its
 * console, independently of the host's accounting.  It never ends by itself
 * (the test destroys it).  No timer, no interrupts: nothing but the loop and
 * one SBI console call per round. */
#include "lib.h"

#define ROUND (1UL << 21)

int main(void)
{
    begin("spin");
    for (u64 n = 1;; n++) {
        /* The empty asm keeps the loop from being folded away: two
         * instructions (addi, bne) per iteration. */
        for (u64 i = 0; i < ROUND; i++)
            __asm__ volatile("");
        puts_("spin ");
        print_udec(n);
        putchar_('\n');
    }
}
