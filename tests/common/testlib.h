/* Ringvisor test runtime shared by the bare-metal programs (tests/programs)
 * and the guest kernels (tests/guests): integer types, console printing,
 * checks, memory functions, CSR access and trap cause numbers.
 *
 * It does not know how output leaves the machine or how a run ends: each
 * environment's runtime supplies putchar_() and exit() (HTIF for the
 * programs, SBI for the guests) and includes this header from its lib.h.
 */
#ifndef RINGVISOR_TESTLIB_H
#define RINGVISOR_TESTLIB_H

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef int i32;
typedef unsigned short u16;
typedef short i16;
typedef unsigned char u8;
typedef signed char i8;
typedef unsigned long size_t;

/* a7 (and a6 for a tagged ebreak) of the ecall that ends a lower-privilege run */
#define RUN_MAGIC 0x52564d52UL

/* ---- console and the end of the run ---- */
void putchar_(int c);                 /* supplied by the environment */
void exit(int code) __attribute__((noreturn));  /* supplied by the environment */
void puts_(const char *s);            /* no newline appended */
void println(const char *s);          /* s + newline */
void print_hex(u64 v);                /* 0x + 16 digits */
void print_hex_n(u64 v, int digits);  /* 0x + `digits` digits */
void print_dec(i64 v);
void print_udec(u64 v);
/* Print "FATAL <msg> 0x<v>" and exit(255). */
void fatal(const char *msg, u64 v) __attribute__((noreturn));

/* ---- checks ---- */
extern volatile u64 g_checks, g_fails;
int check_eq(const char *name, u64 got, u64 expected);
int check_true(const char *name, int cond);
#define CHECK(name, got, expected) check_eq((name), (u64)(got), (u64)(expected))
#define CHECK_TRUE(name, cond) check_true((name), (cond) ? 1 : 0)
/* Start a section: "  <title>: <n> checks ok" is printed when the next one
 * begins or at finish(). */
void section(const char *title);
/* Print the final line and return the exit code (failures, capped at 255). */
int finish(void);

/* ---- string/memory ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* ---- CSR access ---- */
#define STR_(x) #x
#define STR(x) STR_(x)
#define csr_read(csr) ({ u64 __v; __asm__ volatile("csrr %0, " STR(csr) : "=r"(__v) :: "memory"); __v; })
#define csr_write(csr, val) ({ __asm__ volatile("csrw " STR(csr) ", %0" :: "rK"((u64)(val)) : "memory"); })
#define csr_swap(csr, val) ({ u64 __v; __asm__ volatile("csrrw %0, " STR(csr) ", %1" : "=r"(__v) : "rK"((u64)(val)) : "memory"); __v; })
#define csr_set(csr, val) ({ u64 __v; __asm__ volatile("csrrs %0, " STR(csr) ", %1" : "=r"(__v) : "rK"((u64)(val)) : "memory"); __v; })
#define csr_clear(csr, val) ({ u64 __v; __asm__ volatile("csrrc %0, " STR(csr) ", %1" : "=r"(__v) : "rK"((u64)(val)) : "memory"); __v; })

/* interrupt numbers (xcause with CAUSE_INTR set) */
#define IRQ_SSI 1
#define IRQ_MSI 3
#define IRQ_STI 5
#define IRQ_MTI 7
#define IRQ_SEI 9
#define IRQ_MEI 11
#define CAUSE_INTR (1UL << 63)

/* exception causes */
#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS     1
#define CAUSE_ILLEGAL          2
#define CAUSE_BREAKPOINT       3
#define CAUSE_MISALIGNED_LOAD  4
#define CAUSE_LOAD_ACCESS      5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS     7
#define CAUSE_ECALL_U          8
#define CAUSE_ECALL_S          9
#define CAUSE_ECALL_M          11
#define CAUSE_FETCH_PAGE       12
#define CAUSE_LOAD_PAGE        13
#define CAUSE_STORE_PAGE       15

static inline void fence(void) { __asm__ volatile("fence" ::: "memory"); }

/* Assemble `s` without the C extension (exact 32-bit encodings). */
#define NORVC(s) ".option push\n.option norvc\n" s "\n.option pop\n"

/* A leaf function name(a0, a1, a2) assembled without RVC, for code that
 * must sit at a known address, trap and return through ra, or be copied
 * elsewhere. */
#define AFUNC(name, body) \
    u64 name(u64, u64, u64); \
    __asm__(".text\n.globl " #name "\n.balign 4\n" #name ":\n" \
            ".option push\n.option norvc\n" body "\n.option pop\n")

#endif
