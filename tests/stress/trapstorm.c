/* trapstorm: a guest kernel that traps endlessly.  stvec points at an
 * illegal instruction, so the trap it raises enters that same instruction
 * again: after the start line no instruction of ours ever completes.  Under
 * trap-and-emulate the VMM reflects each trap into the guest's virtual
 * S-mode without leaving wasm; natively the hart takes it in S-mode.  Either
 * way the host must go on running the other VMs and be able to stop this
 * one. */
#include "lib.h"

int main(void)
{
    begin("trapstorm");
    console_flush();
    __asm__ volatile(
        NORVC("la t0, 1f\n"
              "csrw stvec, t0\n"        /* direct mode: the word is 4-aligned */
              ".balign 4\n"
              "1: .word 0\n")           /* all zeros: an illegal instruction */
        ::: "t0", "memory");
    return 1;                           /* never reached */
}
