/* interrupts: supervisor interrupts as the firmware delivers them
 * (privileged spec 12.1.3 sip/sie, 3.1.9 priority, 3.3.3 WFI; SBI TIME
 * and IPI): timer via set_timer, software via sip.SSIP and SBI IPI,
 * external via the PLIC and the 16550's THRE interrupt, WFI with SIE = 0,
 * priority SEI > SSI > STI, vectored entry, delivery in U-mode. */
#include "lib.h"

#define TIMER_SOON   20000UL            /* 2 ms at 10 MHz */
#define WAIT_TICKS   50000000UL         /* give up after 5 s of guest time */

/* 16550 at 0x1000_0000, IRQ 10 on the PLIC at 0x0c00_0000; hart 0's S-mode
 * context is context 1 on both platforms. */
#define UART_IER     ((volatile u8 *)0x10000001UL)
#define UART_IIR     ((volatile u8 *)0x10000002UL)
#define UART_IRQ     10
#define PLIC_PRIO(n) ((volatile u32 *)(0x0c000000UL + 4 * (n)))
#define PLIC_S_ENABLE ((volatile u32 *)(0x0c000000UL + 0x2000 + 0x80 * (1 + 2 * rt_hartid)))
#define PLIC_S_THRESHOLD ((volatile u32 *)(0x0c000000UL + 0x200000 + 0x1000 * (1 + 2 * rt_hartid)))
#define PLIC_S_CLAIM ((volatile u32 *)(0x0c000000UL + 0x200004 + 0x1000 * (1 + 2 * rt_hartid)))

static u64 now(void) { return csr_read(time); }

/* Each interrupt's source is cleared here; the default handler then logs
 * it (and masks its bit in sie, which the tests turn back on). */
static u64 claimed[8], nclaimed;

static void clear_source(u64 code)
{
    if (code == IRQ_STI) {
        sbi_set_timer(~0UL);
    } else if (code == IRQ_SSI) {
        csr_clear(sip, SIP_SSIP);
    } else if (code == IRQ_SEI) {
        u32 id = *PLIC_S_CLAIM;
        if (nclaimed < 8)
            claimed[nclaimed++] = id;
        *UART_IER = 0;
        *PLIC_S_CLAIM = id;
    }
}

static u64 deadline, irq_time;

static int irq_hook(struct trap_frame *f)
{
    irq_time = now();
    if (f->cause & CAUSE_INTR)
        clear_source(f->cause & 63);
    return 0;
}

static void arm_hook(void)
{
    trap_reset();
    g_trap.hook = irq_hook;
    nclaimed = 0;
}

/* Wait (with wfi) until `done` or WAIT_TICKS pass; SIE as the caller set.
 * The condition is checked with SIE clear and the wfi follows with SIE still
 * clear (wfi wakes on an interrupt pending and enabled in sie whatever SIE
 * says): an interrupt that arrives after the check then ends the wfi, instead
 * of being taken between the check and the wfi and leaving the wfi to sleep
 * with nothing left to wake it (a lost wake-up, seen under load). SIE is set
 * again after each wfi, so the interrupt is taken there. */
#define WAIT_UNTIL(cond) do { \
        u64 t_end_ = now() + WAIT_TICKS; \
        u64 sie_ = csr_read(sstatus) & SSTATUS_SIE; \
        for (;;) { \
            csr_clear(sstatus, SSTATUS_SIE); \
            if ((cond) || now() >= t_end_) \
                break; \
            wfi(); \
            csr_set(sstatus, sie_); \
        } \
        csr_set(sstatus, sie_); \
    } while (0)

static void sei_arm(void)
{
    *PLIC_PRIO(UART_IRQ) = 1;
    *PLIC_S_THRESHOLD = 0;
    *PLIC_S_ENABLE = 1U << UART_IRQ;
    *UART_IER = 0x02;               /* ETBEI: THR is empty, so THRE is raised */
}

static void plic_off(void)
{
    *UART_IER = 0;
    *PLIC_S_ENABLE = 0;
    *PLIC_PRIO(UART_IRQ) = 0;
}

static void test_timer(void)
{
    section("timer");
    sbi_set_timer(~0UL);
    CHECK("no timer pending after set_timer(-1)", csr_read(sip) & SIP_STIP, 0);
    arm_hook();
    csr_write(sie, SIP_STIP);
    csr_set(sstatus, SSTATUS_SIE);
    deadline = now() + TIMER_SOON;
    struct sbiret r = sbi_set_timer(deadline);
    CHECK("set_timer succeeds", r.error, 0);
    WAIT_UNTIL(g_trap.count > 0);
    csr_clear(sstatus, SSTATUS_SIE);
    trap_off();
    CHECK("timer interrupt taken once", g_trap.count, 1);
    CHECK("timer interrupt: scause", g_trap.cause, CAUSE_INTR | IRQ_STI);
    CHECK("timer interrupt: SPP = S", g_trap.status & SSTATUS_SPP, SSTATUS_SPP);
    CHECK("timer interrupt: SPIE = 1", g_trap.status & SSTATUS_SPIE, SSTATUS_SPIE);
    CHECK("STIP clear after set_timer(-1)", csr_read(sip) & SIP_STIP, 0);
    CHECK_TRUE("not before the deadline", irq_time >= deadline);

    /* A deadline in the past: pending at once, no trap with SIE = 0. */
    csr_write(sie, SIP_STIP);
    trap_reset();
    sbi_set_timer(0);
    WAIT_UNTIL(csr_read(sip) & SIP_STIP);
    CHECK("deadline in the past: STIP pending", csr_read(sip) & SIP_STIP, SIP_STIP);
    CHECK("SIE = 0: not taken", g_trap.count, 0);
    sbi_set_timer(~0UL);
    CHECK("set_timer(-1) clears STIP", csr_read(sip) & SIP_STIP, 0);
    trap_off();
    csr_write(sie, 0);
}

AFUNC(s_set_ssip, "csrsi sip, 2\nnop\nnop\nret");

static void test_software(void)
{
    section("software interrupts");
    arm_hook();
    csr_write(sie, SIP_SSIP);
    csr_set(sstatus, SSTATUS_SIE);
    s_set_ssip(0, 0, 0);
    csr_clear(sstatus, SSTATUS_SIE);
    trap_off();
    CHECK("sip.SSIP set by the kernel: taken", g_trap.count, 1);
    CHECK("SSI: scause", g_trap.cause, CAUSE_INTR | IRQ_SSI);
    CHECK("SSI: taken right after the csrsi", g_trap.epc, (u64)s_set_ssip + 4);
    CHECK("SSIP cleared by the handler", csr_read(sip) & SIP_SSIP, 0);

    arm_hook();
    csr_write(sie, SIP_SSIP);
    csr_set(sstatus, SSTATUS_SIE);
    struct sbiret r = sbi_send_ipi(1, rt_hartid);
    WAIT_UNTIL(g_trap.count > 0);
    csr_clear(sstatus, SSTATUS_SIE);
    trap_off();
    CHECK("IPI to self: send_ipi succeeds", r.error, 0);
    CHECK("IPI to self: taken once", g_trap.count, 1);
    CHECK("IPI to self: scause", g_trap.cause, CAUSE_INTR | IRQ_SSI);

    arm_hook();
    csr_write(sie, SIP_SSIP);
    csr_set(sstatus, SSTATUS_SIE);
    r = sbi_send_ipi(0, ~0UL);             /* hart_mask_base = -1: every hart */
    WAIT_UNTIL(g_trap.count > 0);
    csr_clear(sstatus, SSTATUS_SIE);
    trap_off();
    CHECK("IPI to all harts: succeeds", r.error, 0);
    CHECK("IPI to all harts: taken once", g_trap.count, 1);
    CHECK("IPI to all harts: scause", g_trap.cause, CAUSE_INTR | IRQ_SSI);

    /* SIE = 0 and SSIE = 0: an IPI only shows in sip. */
    csr_write(sie, 0);
    trap_reset();
    sbi_send_ipi(1, rt_hartid);
    u64 t_end = now() + WAIT_TICKS;
    while (!(csr_read(sip) & SIP_SSIP) && now() < t_end)
        ;
    CHECK("IPI with SSIE = 0: SSIP pending", csr_read(sip) & SIP_SSIP, SIP_SSIP);
    CHECK("IPI with SSIE = 0: not taken", g_trap.count, 0);
    csr_clear(sip, SIP_SSIP);
    CHECK("SSIP cleared", csr_read(sip) & SIP_SSIP, 0);
    trap_off();
}

static void test_external(void)
{
    section("external interrupts");
    arm_hook();
    csr_write(sie, SIP_SEIP);
    csr_set(sstatus, SSTATUS_SIE);
    sei_arm();
    WAIT_UNTIL(g_trap.count > 0);
    csr_clear(sstatus, SSTATUS_SIE);
    trap_off();
    CHECK("UART THRE via the PLIC: taken once", g_trap.count, 1);
    CHECK("SEI: scause", g_trap.cause, CAUSE_INTR | IRQ_SEI);
    CHECK("SEI: claim returned the UART's source", claimed[0], UART_IRQ);
    CHECK("SEIP clear after completion", csr_read(sip) & SIP_SEIP, 0);
    CHECK("nothing left to claim", *PLIC_S_CLAIM, 0);

    /* Masked in sie: pending in sip, not taken, even with SIE = 1. */
    csr_write(sie, 0);
    trap_reset();
    csr_set(sstatus, SSTATUS_SIE);
    sei_arm();
    u64 t_end = now() + WAIT_TICKS;
    while (!(csr_read(sip) & SIP_SEIP) && now() < t_end)
        ;
    csr_clear(sstatus, SSTATUS_SIE);
    CHECK("SEIE = 0: SEIP pending", csr_read(sip) & SIP_SEIP, SIP_SEIP);
    CHECK("SEIE = 0: not taken", g_trap.count, 0);
    /* Whether the PLIC keeps a level-triggered request pending once the
     * line drops is up to the gateway (QEMU drops it, Ringvisor keeps it
     * until claimed): claim and complete whatever is there. */
    *UART_IER = 0;
    u32 id = *PLIC_S_CLAIM;
    if (id)
        *PLIC_S_CLAIM = id;
    CHECK_TRUE("claim while quiet: the UART or nothing", id == 0 || id == UART_IRQ);
    CHECK("source quiet and claimed: SEIP clear", csr_read(sip) & SIP_SEIP, 0);
    trap_off();
    plic_off();
}

AFUNC(s_wfi, "wfi\nret");

/* A timer that fires before the WFI runs (anywhere on the way to it: a
 * slow host can take longer than TIMER_SOON to get there) is armed again,
 * a bounded number of times, so that the WFI still ends; the interrupt that
 * ends it is logged. */
static u64 early_timers;

static int wfi_hook(struct trap_frame *f)
{
    if (f->cause == (CAUSE_INTR | IRQ_STI) && f->epc != (u64)s_wfi + 4 && early_timers < 1000) {
        early_timers++;
        sbi_set_timer(now() + TIMER_SOON);
        return 1;                   /* not logged; sie.STIE stays on */
    }
    return irq_hook(f);
}

static void test_wfi(void)
{
    section("WFI");
    /* SIE = 0: WFI returns for a pending enabled interrupt, none is taken. */
    trap_reset();
    csr_write(sie, SIP_SSIP);
    csr_set(sip, SIP_SSIP);
    wfi();
    CHECK("WFI with SSIP pending, SIE = 0: returns, no trap", g_trap.count, 0);
    CHECK("SSIP still pending", csr_read(sip) & SIP_SSIP, SIP_SSIP);
    g_trap.hook = irq_hook;
    csr_set(sstatus, SSTATUS_SIE);
    __asm__ volatile("nop");
    csr_clear(sstatus, SSTATUS_SIE);
    CHECK("taken once SIE = 1", g_trap.count, 1);
    CHECK("taken: SSI", g_trap.cause, CAUSE_INTR | IRQ_SSI);
    trap_off();

    /* A timer that fires while the hart waits with SIE = 0. */
    trap_reset();
    csr_write(sie, SIP_STIP);
    sbi_set_timer(now() + TIMER_SOON);
    u64 t_end = now() + WAIT_TICKS;
    while (!(csr_read(sip) & SIP_STIP) && now() < t_end)
        wfi();
    CHECK("WFI woken by the timer with SIE = 0: no trap", g_trap.count, 0);
    CHECK("STIP pending", csr_read(sip) & SIP_STIP, SIP_STIP);
    g_trap.hook = irq_hook;
    csr_set(sstatus, SSTATUS_SIE);
    __asm__ volatile("nop");
    csr_clear(sstatus, SSTATUS_SIE);
    CHECK("taken once SIE = 1: STI", g_trap.cause, CAUSE_INTR | IRQ_STI);
    CHECK("taken once", g_trap.count, 1);
    CHECK("STIP cleared by set_timer", csr_read(sip) & SIP_STIP, 0);
    trap_off();

    /* SIE = 1: the interrupt that ends WFI is taken with sepc after the
     * WFI (3.3.3).  Should the timer fire before the WFI runs, the hook
     * arms it again so the WFI still ends. */
    trap_reset();
    early_timers = 0;
    g_trap.hook = wfi_hook;
    csr_write(sie, SIP_STIP);
    csr_set(sstatus, SSTATUS_SIE);
    sbi_set_timer(now() + TIMER_SOON);
    s_wfi(0, 0, 0);
    csr_clear(sstatus, SSTATUS_SIE);
    trap_off();
    CHECK("WFI with SIE = 1: STI", g_trap.cause, CAUSE_INTR | IRQ_STI);
    CHECK("WFI with SIE = 1: sepc after the WFI", g_trap.epc, (u64)s_wfi + 4);
    csr_write(sie, 0);
}

/* Several pending at once (3.1.9): SEI, then SSI, then STI. */
static void test_priority(void)
{
    section("priority");
    csr_write(sie, SIP_SSIP | SIP_STIP | SIP_SEIP);
    csr_set(sip, SIP_SSIP);
    sbi_set_timer(0);
    sei_arm();
    u64 all = SIP_SSIP | SIP_STIP | SIP_SEIP;
    u64 t_end = now() + WAIT_TICKS;
    while ((csr_read(sip) & all) != all && now() < t_end)
        ;
    CHECK("SSIP, STIP and SEIP pending together", csr_read(sip) & all, all);
    arm_hook();
    csr_set(sstatus, SSTATUS_SIE);
    WAIT_UNTIL(g_trap.count >= 3);
    csr_clear(sstatus, SSTATUS_SIE);
    trap_off();
    CHECK("three interrupts taken", g_trap.count, 3);
    /* QEMU 7.2 without AIA takes the lowest-numbered pending interrupt
     * first (SSI, STI, SEI), against 3.1.9. */
    int q = g_trap.causes[0] == (CAUSE_INTR | IRQ_SSI) && g_trap.causes[1] == (CAUSE_INTR | IRQ_STI) &&
            g_trap.causes[2] == (CAUSE_INTR | IRQ_SEI);
    CHECK_Q("first SEI", g_trap.causes[0], CAUSE_INTR | IRQ_SEI, q);
    CHECK_Q("then SSI", g_trap.causes[1], CAUSE_INTR | IRQ_SSI, q);
    CHECK_Q("then STI", g_trap.causes[2], CAUSE_INTR | IRQ_STI, q);
    plic_off();

    csr_write(sie, SIP_SSIP | SIP_STIP);
    sbi_set_timer(0);
    csr_set(sip, SIP_SSIP);
    t_end = now() + WAIT_TICKS;
    while ((csr_read(sip) & (SIP_SSIP | SIP_STIP)) != (SIP_SSIP | SIP_STIP) && now() < t_end)
        ;
    arm_hook();
    csr_set(sstatus, SSTATUS_SIE);
    WAIT_UNTIL(g_trap.count >= 2);
    csr_clear(sstatus, SSTATUS_SIE);
    trap_off();
    CHECK("SSI before STI", g_trap.causes[0], CAUSE_INTR | IRQ_SSI);
    CHECK("STI second", g_trap.causes[1], CAUSE_INTR | IRQ_STI);
    csr_write(sie, 0);
}

static void test_vectored(void)
{
    section("vectored");
    u64 old = csr_read(stvec);
    csr_write(stvec, (u64)stvec_table | 1);
    csr_write(sie, SIP_SSIP | SIP_STIP | SIP_SEIP);
    static const u64 codes[] = { IRQ_SSI, IRQ_STI, IRQ_SEI };
    for (int i = 0; i < 3; i++) {
        arm_hook();
        csr_write(sie, 1UL << codes[i]);
        if (codes[i] == IRQ_SSI)
            csr_set(sip, SIP_SSIP);
        else if (codes[i] == IRQ_STI)
            sbi_set_timer(0);
        else
            sei_arm();
        csr_set(sstatus, SSTATUS_SIE);
        WAIT_UNTIL(g_trap.count > 0);
        csr_clear(sstatus, SSTATUS_SIE);
        trap_off();
        CHECK("vectored: cause", g_trap.cause, CAUSE_INTR | codes[i]);
        CHECK("vectored: entry base + 4 * cause", g_trap.vec, 0x100 + codes[i]);
    }
    plic_off();
    csr_write(stvec, old);
    csr_write(sie, 0);
}

/* In U-mode, S-level interrupts are taken whatever SIE says (3.1.6.1). */
AFUNC(u_spin, "1: ld t0, 0(a0)\nbeqz t0, 1b\nli a0, 5\nret");
AFUNC(u_ret7, "li a0, 7\nret");

static volatile u64 u_flag;

static int u_timer_hook(struct trap_frame *f)
{
    if (f->cause == (CAUSE_INTR | IRQ_STI))
        u_flag = 1;
    return irq_hook(f);
}

static void test_user(void)
{
    section("delivery in U-mode");
    csr_clear(sstatus, SSTATUS_SIE | SSTATUS_SPIE);     /* U runs with SIE = 0 */
    arm_hook();
    csr_write(sie, SIP_SSIP);
    csr_set(sip, SIP_SSIP);
    u64 r = run_user(u_ret7, 0, 0);
    trap_off();
    CHECK("U returns", r, 7);
    CHECK("SSI taken in U with SIE = 0", g_trap.count, 1);
    CHECK("SSI in U: scause", g_trap.cause, CAUSE_INTR | IRQ_SSI);
    CHECK("SSI in U: SPP = U", g_trap.status & SSTATUS_SPP, 0);
    CHECK("SSI in U: SPIE = 0 (U ran with SIE = 0)", g_trap.status & SSTATUS_SPIE, 0);
    CHECK("SSI in U: sepc = first U instruction", g_trap.epc, (u64)u_ret7);

    arm_hook();
    g_trap.hook = u_timer_hook;
    u_flag = 0;
    csr_write(sie, SIP_STIP);
    csr_clear(sstatus, SSTATUS_SPIE);
    sbi_set_timer(now() + TIMER_SOON);
    r = run_user(u_spin, (u64)&u_flag, 0);
    trap_off();
    CHECK("U loop ended by the timer handler", r, 5);
    CHECK("STI in U: one trap", g_trap.count, 1);
    CHECK("STI in U: scause", g_trap.cause, CAUSE_INTR | IRQ_STI);
    CHECK("STI in U: SPP = U", g_trap.status & SSTATUS_SPP, 0);
    CHECK_TRUE("STI in U: sepc in the loop", g_trap.epc >= (u64)u_spin && g_trap.epc < (u64)u_spin + 8);
    csr_write(sie, 0);
}

int main(void)
{
    begin("interrupts");
    csr_write(sstatus, SSTATUS_FS_INITIAL);
    test_timer();
    test_software();
    test_external();
    test_wfi();
    test_priority();
    test_vectored();
    test_user();
    sbi_set_timer(~0UL);
    return finish();
}
