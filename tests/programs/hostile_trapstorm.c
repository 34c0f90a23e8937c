/* Hostile: point the trap vector at an address with nothing behind it, then trap. Every trap
 * faults again on its first fetch and no instruction ever retires. The host must still get
 * control back and end the run with a clear error (this program is not in the manifest: it is
 * run by test/cli-errors.test.ts, and it never passes). */
#include "lib.h"

int main(void)
{
    __asm__ volatile("csrw mtvec, zero\n\tecall" ::: "memory");
    return 0;
}
