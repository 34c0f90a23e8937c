/* spin: the CPU-bound VM of bench/host.ts.  An S-mode guest kernel (the
 * guest test kernels' runtime, bench/programs/build-spin.sh) that prints its
 * start line and then computes forever: no timer, no interrupts, no SBI call,
 * no memory traffic, so every instruction it retires is guest work and the
 * host's only part is scheduling it.  The host reads its progress from the
 * hart's retired-instruction count and destroys it when done. */
#include "lib.h"

int main(void)
{
    begin("spin");
    console_flush();
    /* An LCG step per iteration (mul, add, and the loop's branch): the
     * empty asm keeps the value live so the loop is not folded away. */
    u64 x = rt_hartid + 1;
    for (;;) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        __asm__ volatile("" : "+r"(x));
    }
}
