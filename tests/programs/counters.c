/* Counters: cycle/instret advance, exact instret deltas, mcycle/minstret
 * writes, the user aliases of the machine counters and the (possibly
 * read-only zero) hardware performance counters.  The time CSR is tested in
 * time_csr.c. */
#include "asm.h"

#define NOP10 "nop\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n"

int main(void)
{
    println("counters: cycle/instret");
    section("advance");
    u64 a, b, c, d;
    a = csr_read(cycle);
    b = a;
    for (u64 i = 0; i < 100000000 && b == a; i++)
        b = csr_read(cycle);
    CHECK("cycle advances", b > a, 1);
    a = csr_read(instret);
    for (volatile int i = 0; i < 1000; i++)
        ;
    b = csr_read(instret);
    CHECK("instret advances by >= 1000", b - a >= 1000, 1);
    c = csr_read(mcycle);
    d = c;
    for (u64 i = 0; i < 100000000 && d == c; i++)
        d = csr_read(mcycle);
    CHECK("mcycle advances", d > c, 1);

    section("exact instret");
    __asm__ volatile(NORVC("csrr %0, instret\n" NOP10 "csrr %1, instret") : "=&r"(a), "=&r"(b));
    CHECK("csrr + 10 nops", b - a, 11);
    __asm__ volatile(NORVC("csrr %0, minstret\n csrr %1, instret") : "=&r"(a), "=&r"(b));
    CHECK("minstret then instret", b - a, 1);
    __asm__ volatile(".option push\n.option rvc\n csrr %0, instret\n c.nop\n c.nop\n c.addi %1, 0\n"
                     "csrr %1, instret\n.option pop" : "=&r"(a), "=&r"(b));
    CHECK("compressed count as one", b - a, 4);
    /* a taken branch, a jump and a load count once each */
    static volatile u64 x = 1;
    __asm__ volatile(NORVC("csrr %0, instret\n beq zero, zero, 1f\n nop\n 1: j 2f\n nop\n 2: ld t0, 0(%2)\n"
                           "csrr %1, instret") : "=&r"(a), "=&r"(b) : "r"(&x) : "t0");
    CHECK("branch/jump/load", b - a, 4);
    /* a trapping instruction does not retire; the handler's do */
    trap_reset(&mtrap);
    __asm__ volatile(NORVC("csrr %0, minstret\n ecall\n csrr %1, minstret") : "=&r"(a), "=&r"(b) :: "memory");
    CHECK("ecall trapped", mtrap.log.count, 1);
    CHECK("handler instructions counted", b - a > 20, 1);
    trap_off(&mtrap);

    section("writes");
    __asm__ volatile(NORVC("csrw minstret, %1\n csrr %0, minstret") : "=&r"(a) : "r"(5000UL));
    CHECK("minstret write then read (X or X+1)", a == 5000 || a == 5001, 1);
    __asm__ volatile(NORVC("csrw minstret, %2\n" NOP10 "csrr %0, minstret\n csrr %1, instret")
                     : "=&r"(a), "=&r"(b) : "r"(0x123456789UL));
    CHECK("minstret counts on from written value", a - 0x123456789UL >= 10 && a - 0x123456789UL <= 11, 1);
    CHECK("instret follows minstret", b - a, 1);
    csr_write(minstret, 0xffffffffffffff00UL);
    a = csr_read(minstret);
    CHECK("minstret 64-bit", a >= 0xffffffffffffff00UL && a < 0xffffffffffffff40UL, 1);
    csr_write(mcycle, 1000000);
    a = csr_read(mcycle);
    CHECK("mcycle write", a >= 1000000 && a < 1000000 + 100000, 1);
    b = csr_read(cycle);
    CHECK("cycle follows mcycle", b >= a && b - a < 100000, 1);

    section("hpm counters");
    trap_reset(&mtrap);
    a = csr_read(mhpmcounter3);
    c = csr_read(mhpmevent3);
    d = csr_read(hpmcounter3);
    CHECK("mhpmcounter3, mhpmevent3, hpmcounter3 readable", mtrap.log.count, 0);
    trap_off(&mtrap);
    (void)b;
    return finish();
}
