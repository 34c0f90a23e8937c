/* Ringvisor test runtime shared by tests/programs and tests/guests:
 * printing, checks and memory functions on top of the environment's
 * putchar_() and exit() (see testlib.h). */
#include "testlib.h"

/* --------------------------------------------------------------- console */
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

void print_hex_n(u64 v, int digits)
{
    putchar_('0');
    putchar_('x');
    for (int i = digits - 1; i >= 0; i--)
        putchar_("0123456789abcdef"[(v >> (4 * i)) & 15]);
}

void print_hex(u64 v) { print_hex_n(v, 16); }

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

void print_dec(i64 v)
{
    if (v < 0) {
        putchar_('-');
        print_udec((u64)0 - (u64)v);
    } else {
        print_udec((u64)v);
    }
}

void fatal(const char *msg, u64 v)
{
    puts_("FATAL ");
    puts_(msg);
    putchar_(' ');
    print_hex(v);
    putchar_('\n');
    exit(255);
}

/* ---------------------------------------------------------------- checks */
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
    return g_fails > 255 ? 255 : (int)g_fails;
}

/* --------------------------------------------------------- string/memory */
/* (no-tree-loop-distribute-patterns: gcc would turn these loops into calls
 * to themselves) */
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

__attribute__((optimize("no-tree-loop-distribute-patterns")))
void *memmove(void *d, const void *s, size_t n)
{
    u8 *p = d;
    const u8 *q = s;
    if (p < q) {
        while (n--)
            *p++ = *q++;
    } else {
        while (n--)
            p[n] = q[n];
    }
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

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}
