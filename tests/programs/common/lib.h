/* Ringvisor test programs: tiny freestanding support library. */
#ifndef RINGVISOR_TEST_LIB_H
#define RINGVISOR_TEST_LIB_H

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef int i32;
typedef unsigned short u16;
typedef short i16;
typedef unsigned char u8;
typedef signed char i8;
typedef unsigned long size_t;

#define RUN_MAGIC 0x52564d52UL

/* ---- console / exit (HTIF) ---- */
void putchar_(int c);
void puts_(const char *s);            /* no newline appended */
void print_hex(u64 v);                /* 0x + 16 digits */
void print_hex_n(u64 v, int digits);  /* 0x + `digits` digits */
void print_dec(i64 v);
void print_udec(u64 v);
void println(const char *s);          /* s + newline */
void exit(int code) __attribute__((noreturn));

/* ---- checks ---- */
extern volatile u64 g_checks, g_fails;
int check_eq(const char *name, u64 got, u64 expected);
int check_true(const char *name, int cond);
#define CHECK(name, got, expected) check_eq((name), (u64)(got), (u64)(expected))
#define CHECK_TRUE(name, cond) check_true((name), (cond) ? 1 : 0)
/* Print the final line and return the exit code (number of failures). */
int finish(void);
/* Print "<title>: <n> checks" section line (deterministic output). */
void section(const char *title);

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

/* mstatus bits */
#define MSTATUS_SIE   (1UL << 1)
#define MSTATUS_MIE   (1UL << 3)
#define MSTATUS_SPIE  (1UL << 5)
#define MSTATUS_UBE   (1UL << 6)
#define MSTATUS_MPIE  (1UL << 7)
#define MSTATUS_SPP   (1UL << 8)
#define MSTATUS_VS    (3UL << 9)
#define MSTATUS_MPP   (3UL << 11)
#define MSTATUS_FS    (3UL << 13)
#define MSTATUS_XS    (3UL << 15)
#define MSTATUS_MPRV  (1UL << 17)
#define MSTATUS_SUM   (1UL << 18)
#define MSTATUS_MXR   (1UL << 19)
#define MSTATUS_TVM   (1UL << 20)
#define MSTATUS_TW    (1UL << 21)
#define MSTATUS_TSR   (1UL << 22)
#define MSTATUS_UXL   (3UL << 32)
#define MSTATUS_SXL   (3UL << 34)
#define MSTATUS_SBE   (1UL << 36)
#define MSTATUS_MBE   (1UL << 37)
#define MSTATUS_SD    (1UL << 63)

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* interrupt numbers */
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

/* CLINT */
#define CLINT_BASE     0x02000000UL
#define CLINT_MSIP     ((volatile u32 *)(CLINT_BASE + 0x0))
#define CLINT_MTIMECMP ((volatile u64 *)(CLINT_BASE + 0x4000))
#define CLINT_MTIME    ((volatile u64 *)(CLINT_BASE + 0xBFF8))

/* ---- traps ---- */
struct trap_frame {
    u64 x[32];          /* x[2] = interrupted sp */
    u64 epc, cause, tval, status;
};

#define FRAME_SIZE 288

/* A hook returns nonzero when it handled the trap (it may edit the frame). */
typedef int (*trap_hook_t)(struct trap_frame *f);

#define TRAP_LOG_MAX 16
struct trap_log {
    u64 count;          /* traps recorded since trap_reset() */
    u64 cause, epc, tval, status;   /* the most recent one */
    u64 prev_priv;      /* privilege the trap came from (xPP) */
    u64 causes[TRAP_LOG_MAX];       /* causes in arrival order */
    u64 vecs[TRAP_LOG_MAX];         /* vector entry used (0 = common, 0x100+i) */
    u64 epcs[TRAP_LOG_MAX];         /* epc of each trap */
};

struct trap_ctl {
    trap_hook_t hook;   /* consulted first */
    u64 expect;         /* nonzero: record traps, skip the instruction */
    u64 skip_len;       /* nonzero: instruction length to skip (else decoded) */
    u64 resume;         /* nonzero: resume here instead of skipping (one-shot) */
    struct trap_log log;
};

extern volatile struct trap_ctl mtrap, strap;
/* Nonzero when the trapping code may run with translation on: the handler
 * then cannot read the faulting instruction and assumes 4 bytes unless
 * skip_len says otherwise. */
extern volatile u64 g_vm_active;

void trap_reset(volatile struct trap_ctl *t);     /* clear log, expect = 1 */
void trap_off(volatile struct trap_ctl *t);       /* expect = 0, hook = 0 */
void trap_entry_m(void);
void trap_entry_s(void);
void mtvec_table(void);
void stvec_table(void);

/* Run fn(arg) in a lower privilege (see crt.S); the caller's mstatus.MIE
 * (sstatus.SIE for s_run_user) is restored on return.  The lower mode
 * starts with xIE = xPIE, as mret/sret define. */
u64 run_in_mode(u64 mode, void *fn, u64 arg, u64 offset);
u64 run_lower(u64 mode, void *fn, u64 offset, u64 x, u64 y, u64 z);
u64 run_via_sret(u64 mode, void *fn, u64 arg, u64 offset);
u64 s_run_user(void *fn, u64 arg, u64 offset);
void lower_return(void);

/* Used by tests that need to stop and report. */
void fatal(const char *msg, u64 v) __attribute__((noreturn));

static inline void fence(void) { __asm__ volatile("fence" ::: "memory"); }

#endif
