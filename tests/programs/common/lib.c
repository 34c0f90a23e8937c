/* Ringvisor test programs: HTIF console/exit and the M/S trap handlers.
 * Printing and checks are in tests/common/testlib.c. */
#include "lib.h"

/* ------------------------------------------------------------------ HTIF */
extern volatile u64 tohost, fromhost;

static void htif_send(u64 cmd)
{
    while (tohost != 0) {
        if (fromhost != 0)
            fromhost = 0;
    }
    tohost = cmd;
}

void putchar_(int c)
{
    htif_send((1UL << 56) | (1UL << 48) | (u8)c);
}

void exit(int code)
{
    u64 c = (u64)code;
    if (code < 0 || code > 255)
        c = 255;
    htif_send((c << 1) | 1);
    for (;;)
        __asm__ volatile("");
}

/* ----------------------------------------------------------------- traps */
volatile struct trap_ctl mtrap, strap;
volatile u64 g_vm_active;
extern volatile u64 m_ctx[18], s_ctx[18];   /* [16] active, [17] xstatus at call */
void m_ctx_resume(void);
void s_ctx_resume(void);

void trap_reset(volatile struct trap_ctl *t)
{
    t->log.count = 0;
    t->log.cause = t->log.epc = t->log.tval = t->log.status = 0;
    t->log.prev_priv = 0xff;
    for (int i = 0; i < TRAP_LOG_MAX; i++)
        t->log.causes[i] = t->log.vecs[i] = t->log.epcs[i] = 0;
    t->skip_len = 0;
    t->resume = 0;
    t->expect = 1;
}

void trap_off(volatile struct trap_ctl *t)
{
    t->expect = 0;
    t->hook = 0;
    t->skip_len = 0;
    t->resume = 0;
}

static void unexpected(const char *who, struct trap_frame *f)
{
    puts_("UNEXPECTED TRAP (");
    puts_(who);
    puts_(") cause=");
    print_hex(f->cause);
    puts_(" epc=");
    print_hex(f->epc);
    puts_(" tval=");
    print_hex(f->tval);
    putchar_('\n');
    puts_("FAIL ");
    print_udec(g_fails + 1);
    puts_(" of ");
    print_udec(g_checks + 1);
    putchar_('\n');
    exit(255);
}

static void handle(volatile struct trap_ctl *t, struct trap_frame *f, int is_s)
{
    u64 prev = is_s ? ((f->status >> 8) & 1) : ((f->status >> 11) & 3);
    if (t->hook && t->hook(f))
        return;
    if (!t->expect)
        unexpected(is_s ? "S" : "M", f);

    u64 n = t->log.count;
    if (n < TRAP_LOG_MAX) {
        t->log.causes[n] = f->cause;
        t->log.vecs[n] = f->x[0];
        t->log.epcs[n] = f->epc;
    }
    t->log.count = n + 1;
    t->log.cause = f->cause;
    t->log.epc = f->epc;
    t->log.tval = f->tval;
    t->log.status = f->status;
    t->log.prev_priv = prev;

    if (f->cause & CAUSE_INTR) {
        u64 bit = 1UL << (f->cause & 63);
        if (is_s)
            csr_clear(sie, bit);
        else
            csr_clear(mie, bit);
        return;
    }
    if (t->resume) {
        f->epc = t->resume;
        t->resume = 0;
        return;
    }
    if (f->cause == CAUSE_FETCH_ACCESS || f->cause == CAUSE_FETCH_PAGE ||
        f->cause == CAUSE_MISALIGNED_FETCH) {
        f->epc = f->x[1];       /* the test jumped there with jalr ra */
        return;
    }
    u64 len = t->skip_len;
    if (!len) {
        if (g_vm_active && (is_s || prev != PRV_M))
            len = 4;
        else
            len = ((*(volatile u16 *)f->epc) & 3) == 3 ? 4 : 2;
    }
    f->epc += len;
}

void m_trap_c(struct trap_frame *f)
{
    u64 c = f->cause;
    int tagged_ebreak = c == CAUSE_BREAKPOINT && f->x[16] == RUN_MAGIC;
    if ((c == CAUSE_ECALL_U || c == CAUSE_ECALL_S || c == CAUSE_ECALL_M || tagged_ebreak) &&
        f->x[17] == RUN_MAGIC && m_ctx[16]) {
        /* back to M-mode with the caller's MIE */
        f->epc = (u64)m_ctx_resume;
        f->status = (f->status & ~(MSTATUS_MPP | MSTATUS_MPIE)) | (3UL << 11) |
                    ((m_ctx[17] & MSTATUS_MIE) ? MSTATUS_MPIE : 0);
        return;
    }
    handle(&mtrap, f, 0);
}

void s_trap_c(struct trap_frame *f)
{
    u64 c = f->cause;
    if (c == CAUSE_ECALL_U && f->x[17] == RUN_MAGIC) {
        if (s_ctx[16]) {
            f->epc = (u64)s_ctx_resume;
            f->status = (f->status & ~MSTATUS_SPIE) | MSTATUS_SPP |
                        ((s_ctx[17] & MSTATUS_SIE) ? MSTATUS_SPIE : 0);
            return;
        }
    }
    if ((c == CAUSE_ECALL_U || c == CAUSE_ECALL_S) && f->x[17] == RUN_MAGIC) {
        /* Code started by M-mode run_in_mode() finished while its ecalls
         * are delegated to S: pass the return on to M-mode with an ebreak
         * tagged in a6/a7 (so breakpoints must not be delegated too). */
        csr_write(sscratch, (u64)f + FRAME_SIZE);
        register u64 a0 __asm__("a0") = f->x[10];
        register u64 a6 __asm__("a6") = RUN_MAGIC;
        register u64 a7 __asm__("a7") = RUN_MAGIC;
        __asm__ volatile("ebreak" :: "r"(a0), "r"(a6), "r"(a7) : "memory");
        fatal("cannot return to M-mode (breakpoints delegated?)", c);
    }
    handle(&strap, f, 1);
}

void quiesce(void)
{
    csr_clear(mstatus, MSTATUS_MIE | MSTATUS_SIE);
    csr_write(mie, 0);
    csr_write(mideleg, 0);
    csr_write(medeleg, 0);
    *CLINT_MTIMECMP = TIMER_OFF;
    *CLINT_MSIP = 0;
    csr_clear(mip, S_INTS);
    fence();
}
