/* Ringvisor test programs: the M-mode runtime on the bare machine (HTIF
 * console and exit, CLINT, trap handling, privilege switching). */
#ifndef RINGVISOR_TEST_LIB_H
#define RINGVISOR_TEST_LIB_H

/* Types, printing, checks, memory functions, CSR access and cause numbers
 * come from tests/common/testlib.h; lib.c supplies its putchar_() and
 * exit() through HTIF (exit's code is the run's exit status). */
#include "testlib.h"

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

/* mip/mie bits, and a known interrupt state for interrupt tests: everything disabled, not
 * delegated, the timer off, no software interrupt, no S-level interrupt pending. */
#define MIP_SSIP (1UL << IRQ_SSI)
#define MIP_MSIP (1UL << IRQ_MSI)
#define MIP_STIP (1UL << IRQ_STI)
#define MIP_MTIP (1UL << IRQ_MTI)
#define MIP_SEIP (1UL << IRQ_SEI)
#define MIP_MEIP (1UL << IRQ_MEI)
#define S_INTS (MIP_SSIP | MIP_STIP | MIP_SEIP)
#define TIMER_OFF 0xffffffffffffffffUL
void quiesce(void);

#endif
