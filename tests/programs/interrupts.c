/* Interrupts: mip/sip/sie views, CLINT msip/mtimecmp/mtime, M-mode timer and
 * software interrupts, priority when several are pending (MSI > MTI > SEI >
 * SSI > STI ordering is in strict.c, QEMU 7.2 takes the lowest number first),
 * delegation to S-mode, global-enable rules per privilege, vectored
 * mtvec/stvec, and WFI. */
#include "asm.h"

#define INTR(n) (CAUSE_INTR | (n))


/* spin a while (interrupts get a chance to arrive); returns a0 */
AFUNC(x_spin, "li t0, 2000\n 1: addi t0, t0, -1\n bnez t0, 1b\n ret");
/* S-mode: set sstatus.SIE then spin */
AFUNC(s_enable_spin, "csrsi sstatus, 2\n li t0, 2000\n 1: addi t0, t0, -1\n bnez t0, 1b\n csrci sstatus, 2\n ret");
AFUNC(x_illegal, ".word 0x0000006b\n ret");
/* wfi at a known address; returns that address */
AFUNC(x_wfi_here, "lla a0, 1f\n 1: wfi\n ret");

static void test_pending_bits(void)
{
    section("mip/sip/sie and CLINT");
    quiesce();
    CHECK("mip quiet", csr_read(mip) & 0xaaa, 0);
    csr_set(mip, S_INTS);
    CHECK("mip S bits writable", csr_read(mip) & S_INTS, S_INTS);
    csr_clear(mip, S_INTS);
    CHECK("mip S bits clear", csr_read(mip) & S_INTS, 0);
    csr_set(mip, MIP_MSIP | MIP_MTIP | MIP_MEIP);
    CHECK("mip M bits read-only", csr_read(mip) & (MIP_MSIP | MIP_MTIP | MIP_MEIP), 0);

    *CLINT_MSIP = 1;
    fence();
    CHECK("CLINT msip -> mip.MSIP", csr_read(mip) & MIP_MSIP, MIP_MSIP);
    CHECK("CLINT msip reads 1", *CLINT_MSIP, 1);
    *CLINT_MSIP = 0;
    fence();
    CHECK("CLINT msip clear", csr_read(mip) & MIP_MSIP, 0);

    /* mtime advances (at whatever rate: wait for a change, bounded) */
    u64 t1 = *CLINT_MTIME, t2 = t1;
    for (u64 i = 0; i < 100000000 && t2 == t1; i++)
        t2 = *CLINT_MTIME;
    CHECK("mtime advances", t2 > t1, 1);
    *CLINT_MTIMECMP = 0;
    fence();
    CHECK("mtimecmp=0 -> MTIP", csr_read(mip) & MIP_MTIP, MIP_MTIP);
    *CLINT_MTIMECMP = TIMER_OFF;
    fence();
    CHECK("mtimecmp=max -> no MTIP", csr_read(mip) & MIP_MTIP, 0);
    *CLINT_MTIMECMP = 0x123456789abcdefUL;
    CHECK("mtimecmp 64-bit", *CLINT_MTIMECMP, 0x123456789abcdefUL);
    *CLINT_MTIMECMP = TIMER_OFF;

    /* sie/sip are views of mie/mip through mideleg */
    csr_write(mideleg, 0);
    csr_write(sie, -1L);
    CHECK("sie read-only zero when not delegated", csr_read(sie), 0);
    csr_write(mideleg, S_INTS);
    csr_write(sie, -1L);
    CHECK("sie = delegated bits", csr_read(sie), S_INTS);
    CHECK("sie writes mie", csr_read(mie) & S_INTS, S_INTS);
    csr_write(sie, 0);
    CHECK("sie clear", csr_read(mie), 0);
    csr_set(mip, MIP_SSIP | MIP_STIP);
    CHECK("sip shows delegated pending", csr_read(sip) & S_INTS, MIP_SSIP | MIP_STIP);
    csr_clear(sip, MIP_SSIP);
    CHECK("sip.SSIP writable", csr_read(mip) & MIP_SSIP, 0);
    csr_clear(sip, MIP_STIP);
    CHECK("sip.STIP read-only", csr_read(mip) & MIP_STIP, MIP_STIP);
    csr_clear(mip, S_INTS);
    csr_write(mideleg, MIP_STIP);
    csr_set(mip, MIP_SSIP);
    CHECK("sip hides undelegated", csr_read(sip) & MIP_SSIP, 0);
    quiesce();
}

static void test_m_interrupts(void)
{
    section("M-mode interrupts");
    quiesce();
    /* software interrupt */
    csr_write(mie, MIP_MSIP);
    *CLINT_MSIP = 1;
    fence();
    trap_reset(&mtrap);
    x_spin(0, 0, 0);
    CHECK("pending but MIE=0: not taken", mtrap.log.count, 0);
    csr_set(mstatus, MSTATUS_MIE);
    x_spin(0, 0, 0);
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK("MSI taken", mtrap.log.count, 1);
    CHECK("MSI mcause", mtrap.log.cause, INTR(IRQ_MSI));
    CHECK("MSI MPP", mtrap.log.prev_priv, PRV_M);
    CHECK("MSI MPIE", mtrap.log.status & MSTATUS_MPIE, MSTATUS_MPIE);
    *CLINT_MSIP = 0;
    fence();

    /* timer interrupt */
    trap_reset(&mtrap);
    csr_write(mie, MIP_MTIP);
    csr_set(mstatus, MSTATUS_MIE);
    *CLINT_MTIMECMP = *CLINT_MTIME + 500;
    for (u64 i = 0; i < 50000000 && mtrap.log.count == 0; i++)
        __asm__ volatile("");
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK("MTI taken", mtrap.log.count, 1);
    CHECK("MTI mcause", mtrap.log.cause, INTR(IRQ_MTI));
    CHECK("MTIP still pending", csr_read(mip) & MIP_MTIP, MIP_MTIP);
    *CLINT_MTIMECMP = TIMER_OFF;
    fence();
    CHECK("MTIP cleared by mtimecmp", csr_read(mip) & MIP_MTIP, 0);

    /* S-level interrupt bits, not delegated, are taken in M */
    trap_reset(&mtrap);
    csr_write(mie, MIP_SSIP);
    csr_set(mip, MIP_SSIP);
    csr_set(mstatus, MSTATUS_MIE);
    x_spin(0, 0, 0);
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK("undelegated SSI -> M", mtrap.log.cause, INTR(IRQ_SSI));
    csr_clear(mip, MIP_SSIP);
    trap_off(&mtrap);
    quiesce();
}

static void test_cross_level(void)
{
    section("M-level before S-level");
    quiesce();
    /* M-level interrupt is taken before a delegated S-level one */
    csr_write(stvec, (u64)trap_entry_s);
    csr_write(mideleg, MIP_SSIP);
    csr_write(mie, MIP_SSIP | MIP_MSIP);
    csr_set(mip, MIP_SSIP);
    *CLINT_MSIP = 1;
    fence();
    trap_reset(&strap);
    trap_reset(&mtrap);
    run_in_mode(PRV_S, s_enable_spin, 0, 0);
    CHECK("MSI to M", mtrap.log.count, 1);
    CHECK("MSI cause", mtrap.log.cause, INTR(IRQ_MSI));
    CHECK("then SSI to S", strap.log.count, 1);
    CHECK("SSI cause", strap.log.cause, INTR(IRQ_SSI));
    trap_off(&mtrap);
    trap_off(&strap);
    quiesce();
}

static void test_enable_rules(void)
{
    section("enable rules per privilege");
    quiesce();
    csr_write(stvec, (u64)trap_entry_s);
    /* delegated interrupt is never taken in M-mode */
    csr_write(mideleg, MIP_SSIP);
    csr_write(mie, MIP_SSIP);
    csr_set(mip, MIP_SSIP);
    csr_set(mstatus, MSTATUS_SIE | MSTATUS_MIE);
    trap_reset(&mtrap);
    trap_reset(&strap);
    x_spin(0, 0, 0);
    csr_clear(mstatus, MSTATUS_SIE | MSTATUS_MIE);
    CHECK("delegated SSI not taken in M", mtrap.log.count + strap.log.count, 0);
    /* ... in S-mode with SIE=0 it waits ... */
    run_in_mode(PRV_S, x_spin, 0, 0);
    CHECK("S with SIE=0: not taken", strap.log.count, 0);
    /* ... in U-mode it is taken regardless of SIE */
    run_in_mode(PRV_U, x_spin, 0, 0);
    CHECK("U: delegated SSI taken", strap.log.count, 1);
    CHECK("U: cause", strap.log.cause, INTR(IRQ_SSI));
    CHECK("U: SPP=U", strap.log.prev_priv, PRV_U);
    csr_clear(mip, MIP_SSIP);
    quiesce();

    /* M-level interrupt in S-mode is taken even with MIE=0 */
    csr_write(mie, MIP_MSIP);
    *CLINT_MSIP = 1;
    fence();
    trap_reset(&mtrap);
    run_in_mode(PRV_S, x_spin, 0, 0);
    CHECK("S: MSI with MIE=0 taken", mtrap.log.count, 1);
    CHECK("S: MSI MPP=S", mtrap.log.prev_priv, PRV_S);
    *CLINT_MSIP = 0;
    fence();
    /* undelegated STI with MIE=0 while in U-mode: taken in M */
    csr_write(mie, MIP_STIP);
    csr_set(mip, MIP_STIP);
    trap_reset(&mtrap);
    run_in_mode(PRV_U, x_spin, 0, 0);
    CHECK("U: undelegated STI -> M", mtrap.log.cause, INTR(IRQ_STI));
    CHECK("U: MPP=U", mtrap.log.prev_priv, PRV_U);
    trap_off(&mtrap);
    trap_off(&strap);
    quiesce();
}

static void test_sw_set_s_interrupts(void)
{
    section("software-set SSIP/STIP/SEIP");
    quiesce();
    csr_write(stvec, (u64)trap_entry_s);
    csr_write(mideleg, S_INTS);
    trap_off(&mtrap);
    static const u64 bits[3] = { MIP_SSIP, MIP_STIP, MIP_SEIP };
    static const u64 nums[3] = { IRQ_SSI, IRQ_STI, IRQ_SEI };
    static const char *names[3] = { "SSIP -> S", "STIP -> S", "SEIP -> S" };
    for (int i = 0; i < 3; i++) {
        csr_write(mie, bits[i]);
        csr_set(mip, bits[i]);
        trap_reset(&strap);
        run_in_mode(PRV_S, s_enable_spin, 0, 0);
        CHECK(names[i], strap.log.cause, INTR(nums[i]));
        CHECK(names[i], strap.log.count, 1);
        CHECK(names[i], csr_read(sip) & bits[i], bits[i]);
        csr_clear(mip, bits[i]);
        CHECK(names[i], csr_read(sip) & bits[i], 0);
    }
    trap_off(&strap);
    quiesce();
}

static void test_vectored(void)
{
    section("vectored xtvec");
    quiesce();
    csr_write(mtvec, (u64)mtvec_table | 1);
    CHECK("mtvec vectored readback", csr_read(mtvec), (u64)mtvec_table | 1);
    static const u64 mbits[3] = { MIP_MSIP, MIP_MTIP, MIP_SSIP };
    static const u64 mnums[3] = { IRQ_MSI, IRQ_MTI, IRQ_SSI };
    for (int i = 0; i < 3; i++) {
        csr_write(mie, mbits[i]);
        if (i == 0)
            *CLINT_MSIP = 1;
        else if (i == 1)
            *CLINT_MTIMECMP = 0;
        else
            csr_set(mip, MIP_SSIP);
        fence();
        trap_reset(&mtrap);
        csr_set(mstatus, MSTATUS_MIE);
        x_spin(0, 0, 0);
        csr_clear(mstatus, MSTATUS_MIE);
        CHECK("M vec count", mtrap.log.count, 1);
        CHECK("M vec cause", mtrap.log.cause, INTR(mnums[i]));
        CHECK("M vec entry", mtrap.log.vecs[0], 0x100 + mnums[i]);
        quiesce();
        csr_write(mtvec, (u64)mtvec_table | 1);
    }
    quiesce();
    /* exceptions use the base address */
    trap_reset(&mtrap);
    __asm__ volatile("ecall");
    CHECK("M vec exception -> base", mtrap.log.vecs[0], 0);
    CHECK("M vec exception cause", mtrap.log.cause, CAUSE_ECALL_M);
    csr_write(mtvec, (u64)trap_entry_m);
    trap_reset(&mtrap);
    __asm__ volatile("ecall");
    CHECK("M direct", mtrap.log.vecs[0], 0);

    csr_write(stvec, (u64)stvec_table | 1);
    static const u64 sbits[3] = { MIP_SEIP, MIP_SSIP, MIP_STIP };
    static const u64 snums[3] = { IRQ_SEI, IRQ_SSI, IRQ_STI };
    trap_off(&mtrap);
    for (int i = 0; i < 3; i++) {
        csr_write(mideleg, S_INTS);
        csr_write(mie, sbits[i]);
        csr_set(mip, sbits[i]);
        trap_reset(&strap);
        run_in_mode(PRV_S, s_enable_spin, 0, 0);
        CHECK("S vec count", strap.log.count, 1);
        CHECK("S vec cause", strap.log.cause, INTR(snums[i]));
        CHECK("S vec entry", strap.log.vecs[0], 0x100 + snums[i]);
        quiesce();
    }
    csr_write(medeleg, 1 << CAUSE_ILLEGAL);
    trap_reset(&strap);
    run_in_mode(PRV_S, x_illegal, 0, 0);
    csr_write(medeleg, 0);
    CHECK("S vec exception -> base", strap.log.vecs[0], 0);
    csr_write(stvec, (u64)trap_entry_s);
    trap_off(&strap);
    quiesce();
}

/* M hook for WFI tests: an interrupt taken at the WFI itself (it arrived
 * before the WFI executed) resumes after it, so a lost wakeup cannot hang. */
static volatile u64 wfi_addr;
static int wfi_hook(struct trap_frame *f)
{
    if ((f->cause & CAUSE_INTR) && f->epc == wfi_addr)
        f->epc += 4;
    return 0;   /* then log as usual */
}

static void test_wfi(void)
{
    section("wfi");
    quiesce();
    wfi_addr = (u64)x_wfi_here + 8;     /* lla is 8 bytes */
    CHECK("wfi address", *(volatile u32 *)wfi_addr, 0x10500073);
    /* MIE=0: WFI wakes on a pending, enabled interrupt and just continues */
    csr_write(mie, MIP_MTIP);
    *CLINT_MTIMECMP = *CLINT_MTIME + 2000;
    trap_reset(&mtrap);
    x_wfi_here(0, 0, 0);
    CHECK("MIE=0: woke without trap", mtrap.log.count, 0);
    CHECK("MIE=0: MTIP pending", csr_read(mip) & MIP_MTIP, MIP_MTIP);
    csr_set(mstatus, MSTATUS_MIE);
    x_spin(0, 0, 0);
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK("then taken when enabled", mtrap.log.cause, INTR(IRQ_MTI));
    *CLINT_MTIMECMP = TIMER_OFF;
    /* already pending software interrupt: WFI returns at once */
    csr_write(mie, MIP_MSIP);
    *CLINT_MSIP = 1;
    fence();
    trap_reset(&mtrap);
    x_wfi_here(0, 0, 0);
    CHECK("pending MSI: WFI falls through", mtrap.log.count, 0);
    *CLINT_MSIP = 0;
    fence();
    /* MIE=1: the interrupt is taken, mepc = the instruction after WFI */
    csr_write(mie, MIP_MTIP);
    mtrap.hook = wfi_hook;
    trap_reset(&mtrap);
    *CLINT_MTIMECMP = *CLINT_MTIME + 20000;
    csr_set(mstatus, MSTATUS_MIE);
    x_wfi_here(0, 0, 0);
    csr_clear(mstatus, MSTATUS_MIE);
    CHECK("MIE=1: interrupt taken", mtrap.log.count, 1);
    CHECK("MIE=1: cause", mtrap.log.cause, INTR(IRQ_MTI));
    CHECK("MIE=1: mepc after wfi", mtrap.log.epc, wfi_addr + 4);
    *CLINT_MTIMECMP = TIMER_OFF;
    /* WFI in S-mode (TW=0) woken by an M timer interrupt */
    csr_write(mie, MIP_MTIP);
    trap_reset(&mtrap);
    *CLINT_MTIMECMP = *CLINT_MTIME + 20000;
    u64 r = run_in_mode(PRV_S, x_wfi_here, 0, 0);
    CHECK("S wfi: woke", mtrap.log.count, 1);
    CHECK("S wfi: cause", mtrap.log.cause, INTR(IRQ_MTI));
    CHECK("S wfi: from S", mtrap.log.prev_priv, PRV_S);
    CHECK("S wfi: mepc after wfi", mtrap.log.epc, r + 4);
    mtrap.hook = 0;
    trap_off(&mtrap);
    quiesce();
}

int main(void)
{
    println("interrupts: CLINT, delegation, enables, vectoring, wfi");
    quiesce();
    test_pending_bits();
    test_m_interrupts();
    test_cross_level();
    test_enable_rules();
    test_sw_set_s_interrupts();
    test_vectored();
    test_wfi();
    return finish();
}
