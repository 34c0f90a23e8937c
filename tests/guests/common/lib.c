/* Ringvisor guest test kernels: SBI calls, the SBI console and shutdown,
 * trap handling.  Printing and checks are in tests/common/testlib.c. */
#include "lib.h"

/* ------------------------------------------------------------------ SBI */
struct sbiret sbi_call(u64 ext, u64 fid, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5)
{
    register u64 r0 __asm__("a0") = a0;
    register u64 r1 __asm__("a1") = a1;
    register u64 r2 __asm__("a2") = a2;
    register u64 r3 __asm__("a3") = a3;
    register u64 r4 __asm__("a4") = a4;
    register u64 r5 __asm__("a5") = a5;
    register u64 r6 __asm__("a6") = fid;
    register u64 r7 __asm__("a7") = ext;
    __asm__ volatile("ecall"
                     : "+r"(r0), "+r"(r1)
                     : "r"(r2), "r"(r3), "r"(r4), "r"(r5), "r"(r6), "r"(r7)
                     : "memory");
    return (struct sbiret){ (i64)r0, (i64)r1 };
}

/* SBI v0.1: only a0 comes back; a1 is preserved by the firmware. */
u64 sbi_legacy(u64 eid, u64 a0)
{
    register u64 r0 __asm__("a0") = a0;
    register u64 r7 __asm__("a7") = eid;
    __asm__ volatile("ecall" : "+r"(r0) : "r"(r7) : "a1", "memory");
    return r0;
}

i64 sbi_probe(u64 ext)
{
    struct sbiret r = sbi_call(SBI_EXT_BASE, 3, ext, 0, 0, 0, 0, 0);
    return r.error ? 0 : r.value;
}

struct sbiret sbi_set_timer(u64 stime)
{
    return sbi_call(SBI_EXT_TIME, 0, stime, 0, 0, 0, 0, 0);
}

struct sbiret sbi_send_ipi(u64 mask, u64 base)
{
    return sbi_call(SBI_EXT_IPI, 0, mask, base, 0, 0, 0, 0);
}

/* -------------------------------------------------------------- console */
int rt_dbcn;
static char line[256];
static unsigned line_len;

void console_flush(void)
{
    unsigned done = 0;
    if (rt_dbcn) {
        /* console_write may write fewer bytes than asked: loop. The buffer
         * is addressed physically; every kernel here maps itself 1:1. */
        while (done < line_len) {
            struct sbiret r = sbi_call(SBI_EXT_DBCN, 0, line_len - done, (u64)&line[done], 0, 0, 0, 0);
            if (r.error || r.value <= 0)
                break;
            done += (unsigned)r.value;
        }
    }
    for (; done < line_len; done++)
        sbi_legacy(1, (u8)line[done]);
    line_len = 0;
}

void putchar_(int c)
{
    line[line_len++] = (char)c;
    if (c == '\n' || line_len == sizeof line)
        console_flush();
}

int rt_ref_quirks;

void rt_init(void)
{
    rt_dbcn = sbi_probe(SBI_EXT_DBCN) != 0;
    struct sbiret r = sbi_call(SBI_EXT_BASE, 1, 0, 0, 0, 0, 0, 0);   /* get_sbi_impl_id */
    rt_ref_quirks = r.error == 0 && r.value == 1;                    /* OpenSBI */
}

void begin(const char *name)
{
    puts_("== guest ");
    puts_(name);
    println(" ==");
}

/* SRST system_reset(shutdown, reason): 0 = no reason, 1 = system failure. */
void shutdown(int failed)
{
    console_flush();
    sbi_call(SBI_EXT_SRST, 0, 0, failed ? 1 : 0, 0, 0, 0, 0);
    sbi_legacy(8, 0);
    for (;;)
        wfi();
}

/* The end of a run for testlib (main's return value, fatal): code 0 passes. */
void exit(int code)
{
    shutdown(code != 0);
}

/* ---------------------------------------------------------------- traps */
volatile struct trap_ctl g_trap;

void trap_reset(void)
{
    g_trap.count = 0;
    g_trap.cause = g_trap.epc = g_trap.tval = g_trap.status = g_trap.vec = ~0UL;
    g_trap.resume = 0;
    for (int i = 0; i < TRAP_LOG_MAX; i++)
        g_trap.causes[i] = g_trap.epcs[i] = ~0UL;
    fence();
    g_trap.expect = 1;
}

void trap_off(void)
{
    g_trap.expect = 0;
    g_trap.hook = 0;
}

/* Length of the instruction at pc, which may sit on a U page or an
 * execute-only one. */
static u64 insn_len(u64 pc)
{
    u64 old = csr_set(sstatus, SSTATUS_SUM | SSTATUS_MXR);
    u16 h = *(volatile u16 *)pc;
    csr_clear(sstatus, ~old & (SSTATUS_SUM | SSTATUS_MXR));
    return (h & 3) == 3 ? 4 : 2;
}

static void unexpected(struct trap_frame *f) __attribute__((noreturn));
static void unexpected(struct trap_frame *f)
{
    puts_("UNEXPECTED TRAP cause ");
    print_hex(f->cause);
    puts_(" epc ");
    print_hex(f->epc);
    puts_(" tval ");
    print_hex(f->tval);
    putchar_('\n');
    shutdown(1);
}

void trap_handler(struct trap_frame *f)
{
    volatile struct trap_ctl *t = &g_trap;
    if (t->hook && t->hook(f))
        return;
    if (f->cause == CAUSE_ECALL_U && f->x[17] == RUN_MAGIC)
        user_return(f->x[10]);
    if (!t->expect)
        unexpected(f);
    u64 i = t->count++;
    t->cause = f->cause;
    t->epc = f->epc;
    t->tval = f->tval;
    t->status = f->status;
    t->vec = f->vec;
    if (i < TRAP_LOG_MAX) {
        t->causes[i] = f->cause;
        t->epcs[i] = f->epc;
    }
    if (f->cause & CAUSE_INTR) {
        csr_clear(sie, 1UL << (f->cause & 63));
        return;
    }
    if (t->resume) {
        f->epc = t->resume;
        t->resume = 0;
    } else if (f->cause == CAUSE_FETCH_ACCESS || f->cause == CAUSE_FETCH_PAGE) {
        f->epc = f->x[1];
    } else {
        f->epc += insn_len(f->epc);
    }
}
