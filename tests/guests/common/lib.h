/* Ringvisor guest test kernels: a small S-mode runtime.
 *
 * Each kernel is entered in S-mode by the firmware (Ringvisor's SBI, or
 * OpenSBI under QEMU) and talks to it only through SBI calls.  Output goes
 * through the SBI debug console (DBCN), or the legacy putchar when the
 * firmware lacks DBCN; the kernel ends with an SBI SRST shutdown, reason 0
 * ("no reason") when every check passed and 1 ("system failure") if not.
 *
 * Output is deterministic and the same on every conforming platform:
 * a start line "== guest <name> ==", one line per section, one
 * "FAIL name: got 0x.. expected 0x.." line per failed check, and finally
 * "PASS <n> checks" or "FAIL <k> of <n>".  Never print anything that
 * depends on timing or on which firmware runs below.
 */
#ifndef RINGVISOR_GUEST_LIB_H
#define RINGVISOR_GUEST_LIB_H

/* Types, printing, checks, memory functions, CSR access and cause numbers
 * come from tests/common/testlib.h; lib.c supplies its putchar_() (SBI
 * console) and exit() (SBI shutdown: exit(0) passes, any other code fails). */
#include "testlib.h"

/* ---- console and the end of the run ---- */
void console_flush(void);
void begin(const char *name);         /* prints "== guest <name> ==" */
void shutdown(int failed) __attribute__((noreturn));
extern u64 rt_hartid, rt_dtb;         /* a0 and a1 at entry */
extern int rt_dbcn;                   /* the console uses DBCN */
/* Nonzero on the reference platform (QEMU 7.2 with its OpenSBI, recognized
 * by SBI impl ID 1), which breaks a few rules of the privileged spec.
 * CHECK_Q accepts a known deviation there (`quirk` true) and nowhere else,
 * so the output stays the same while Ringvisor is held to the spec. */
extern int rt_ref_quirks;

/* ---- checks (besides testlib.h's) ---- */
#define CHECK_Q(name, got, expected, quirk) \
    check_eq((name), (rt_ref_quirks && (quirk)) ? (u64)(expected) : (u64)(got), (u64)(expected))

/* ---- SBI (SBI spec v2.0) ---- */
struct sbiret { i64 error; i64 value; };
struct sbiret sbi_call(u64 ext, u64 fid, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5);
#define SBI_EXT_BASE   0x10UL
#define SBI_EXT_TIME   0x54494D45UL
#define SBI_EXT_IPI    0x735049UL
#define SBI_EXT_RFENCE 0x52464E43UL
#define SBI_EXT_HSM    0x48534DUL
#define SBI_EXT_SRST   0x53525354UL
#define SBI_EXT_PMU    0x504D55UL
#define SBI_EXT_DBCN   0x4442434EUL
#define SBI_SUCCESS                0
#define SBI_ERR_FAILED            -1
#define SBI_ERR_NOT_SUPPORTED     -2
#define SBI_ERR_INVALID_PARAM     -3
#define SBI_ERR_DENIED            -4
#define SBI_ERR_INVALID_ADDRESS   -5
#define SBI_ERR_ALREADY_AVAILABLE -6
#define SBI_ERR_ALREADY_STARTED   -7
#define SBI_ERR_ALREADY_STOPPED   -8
#define SBI_ERR_NO_SHMEM          -9
i64 sbi_probe(u64 ext);               /* BASE probe_extension: 0 if absent */
struct sbiret sbi_set_timer(u64 stime);
struct sbiret sbi_send_ipi(u64 mask, u64 base);
u64 sbi_legacy(u64 eid, u64 a0);      /* SBI v0.1 call: returns a0 */

/* ---- S-mode CSR fields ---- */
#define SSTATUS_SIE   (1UL << 1)
#define SSTATUS_SPIE  (1UL << 5)
#define SSTATUS_UBE   (1UL << 6)
#define SSTATUS_SPP   (1UL << 8)
#define SSTATUS_VS    (3UL << 9)
#define SSTATUS_FS    (3UL << 13)
#define SSTATUS_FS_INITIAL (1UL << 13)
#define SSTATUS_FS_CLEAN   (2UL << 13)
#define SSTATUS_FS_DIRTY   (3UL << 13)
#define SSTATUS_XS    (3UL << 15)
#define SSTATUS_SUM   (1UL << 18)
#define SSTATUS_MXR   (1UL << 19)
#define SSTATUS_UXL   (3UL << 32)
#define SSTATUS_SD    (1UL << 63)

#define SIP_SSIP (1UL << IRQ_SSI)
#define SIP_STIP (1UL << IRQ_STI)
#define SIP_SEIP (1UL << IRQ_SEI)

/* ---- traps ---- */
struct trap_frame {
    u64 x[32];          /* x[2] = interrupted sp */
    u64 epc, cause, tval, status;
    u64 vec;            /* 0: common entry, 0x100 + i: vector table entry i */
    u64 pad;
};

/* A hook returns nonzero when it handled the trap (it may edit the frame). */
typedef int (*trap_hook_t)(struct trap_frame *f);

#define TRAP_LOG_MAX 16
struct trap_ctl {
    trap_hook_t hook;   /* consulted first */
    u64 expect;         /* nonzero: record traps; skip a faulting instruction */
    u64 resume;         /* nonzero: resume here instead of skipping (one-shot) */
    u64 count;          /* traps recorded since trap_reset() */
    u64 cause, epc, tval, status, vec;  /* the most recent one */
    u64 causes[TRAP_LOG_MAX];           /* causes in arrival order */
    u64 epcs[TRAP_LOG_MAX];
};
extern volatile struct trap_ctl g_trap;
void trap_reset(void);                /* clear the log, expect traps */
void trap_off(void);                  /* unexpected traps are fatal again */

/* What the handler does with an expected trap:
 *  - an interrupt: recorded, and its bit cleared in sie (so it does not
 *    recur) unless a hook handles it;
 *  - an instruction fetch fault (cause 1 or 12): resumes at ra, so call the
 *    target as a function;
 *  - any other exception: skips the instruction (its length is read at
 *    sepc with SUM and MXR set). */

void trap_entry(void);
void stvec_table(void);
void trap_return(void);
u64 run_user(void *fn, u64 arg, u64 usp);   /* usp 0: the default U stack */
void user_return(u64 a0) __attribute__((noreturn));
void user_exit(void);

static inline void sfence_vma(void) { __asm__ volatile("sfence.vma" ::: "memory"); }
static inline void wfi(void) { __asm__ volatile("wfi" ::: "memory"); }

#endif
