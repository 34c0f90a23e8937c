/* Ringvisor guest test kernels: console, checks, SBI calls, trap handling. */
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

void puts_(const char *s)
{
    while (*s)
        putchar_(*s++);
}

void println(const char *s)
{
    puts_(s);
    putchar_('\n');
}

void print_hex(u64 v)
{
    putchar_('0');
    putchar_('x');
    for (int i = 15; i >= 0; i--)
        putchar_("0123456789abcdef"[(v >> (4 * i)) & 15]);
}

void print_udec(u64 v)
{
    char buf[24];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putchar_(buf[--n]);
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

void rt_exit(int fails)
{
    shutdown(fails != 0);
}

void fatal(const char *msg, u64 v)
{
    puts_("FATAL ");
    puts_(msg);
    putchar_(' ');
    print_hex(v);
    putchar_('\n');
    shutdown(1);
}

/* --------------------------------------------------------------- checks */
volatile u64 g_checks, g_fails;
static u64 sec_checks, sec_fails;
static const char *sec_name;

int check_eq(const char *name, u64 got, u64 expected)
{
    g_checks++;
    if (got == expected)
        return 1;
    g_fails++;
    puts_("FAIL ");
    puts_(name);
    puts_(": got ");
    print_hex(got);
    puts_(" expected ");
    print_hex(expected);
    putchar_('\n');
    return 0;
}

int check_true(const char *name, int cond)
{
    g_checks++;
    if (cond)
        return 1;
    g_fails++;
    puts_("FAIL ");
    puts_(name);
    println(": condition false");
    return 0;
}

static void section_close(void)
{
    if (!sec_name)
        return;
    u64 n = g_checks - sec_checks, f = g_fails - sec_fails;
    puts_("  ");
    puts_(sec_name);
    puts_(": ");
    print_udec(n);
    if (f) {
        puts_(" checks, ");
        print_udec(f);
        println(" FAILED");
    } else {
        println(" checks ok");
    }
    sec_name = 0;
}

void section(const char *title)
{
    section_close();
    sec_name = title;
    sec_checks = g_checks;
    sec_fails = g_fails;
}

int finish(void)
{
    section_close();
    if (g_fails == 0) {
        puts_("PASS ");
        print_udec(g_checks);
        println(" checks");
    } else {
        puts_("FAIL ");
        print_udec(g_fails);
        puts_(" of ");
        print_udec(g_checks);
        putchar_('\n');
    }
    return (int)(g_fails > 255 ? 255 : g_fails);
}

/* -------------------------------------------------------- string/memory */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
void *memset(void *d, int c, size_t n)
{
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

__attribute__((optimize("no-tree-loop-distribute-patterns")))
void *memcpy(void *d, const void *s, size_t n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p < *q ? -1 : 1;
    return 0;
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
