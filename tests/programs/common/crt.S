/* Ringvisor test programs: startup code, trap entry/exit, privilege switching.
 *
 * Trap frame layout (struct trap_frame in lib.h): that of
 * tests/common/trapframe.h (x[0..31], epc, cause, tval, status); size 288.
 */
#include "trapframe.h"
#define FRAME_SIZE 288
#define RUN_MAGIC  0x52564d52

        .section .text.init, "ax", @progbits
        .option norvc
        .globl _start
_start:
        /* Do not rely on register contents (QEMU's reset ROM leaves a0-a2, t0 set). */
        li      x1, 0
        li      x3, 0
        li      x4, 0
        la      sp, _stack_top
        la      t0, _mtrap_stack_top
        csrw    mscratch, t0
        la      t0, _strap_stack_top
        csrw    sscratch, t0

        /* Open PMP entry 0 to all of memory (QEMU denies S/U accesses when no
         * PMP entry is set).  Any trap while doing so is ignored. */
        la      t0, 1f
        csrw    mtvec, t0
        li      t0, -1
        csrw    pmpaddr0, t0
        li      t0, 0x1f                /* NAPOT, R, W, X */
        csrw    pmpcfg0, t0
        .align  2
1:
        la      t0, trap_entry_m
        csrw    mtvec, t0
        csrw    mie, zero
        csrw    medeleg, zero
        csrw    mideleg, zero

        /* Enable the FPU (mstatus.FS = Initial) and clear fcsr. */
        li      t0, (1 << 13)
        csrs    mstatus, t0
        csrwi   fcsr, 0

        /* Zero .bss */
        la      t0, __bss_start
        la      t1, __bss_end
2:      bgeu    t0, t1, 3f
        sd      zero, 0(t0)
        addi    t0, t0, 8
        j       2b
3:
        li      a0, 0
        li      a1, 0
        call    main
        call    exit
4:      j       4b

/* ------------------------------------------------------------------------ */
/* Trap entry for M (p = m) and S (p = s) mode.                             */

        .macro  TRAP_ENTRY p, handler, vec=0
        csrrw   sp, \p\()scratch, sp
        addi    sp, sp, -FRAME_SIZE
        sd      t0, 40(sp)
        SAVE_GPRS
        csrr    t0, \p\()scratch
        sd      t0, 16(sp)
        li      t0, \vec
        sd      t0, 0(sp)               /* x[0] slot: vector entry used */
        SAVE_TRAP_CSRS \p
        mv      a0, sp
        call    \handler
        RESTORE_TRAP_CSRS \p
        addi    t0, sp, FRAME_SIZE
        csrw    \p\()scratch, t0
        RESTORE_GPRS
        ld      sp, 16(sp)
        \p\()ret
        .endm

        .text
        .option norvc
        .align  6
        .globl  trap_entry_m
trap_entry_m:
        TRAP_ENTRY m, m_trap_c

        .align  6
        .globl  trap_entry_s
trap_entry_s:
        TRAP_ENTRY s, s_trap_c

/* Vector tables for xtvec.MODE = 1: entry 0 is the common entry (exceptions)
 * and entry i (interrupt cause i) records 0x100 + i in frame->x[0]. */
        .align  8
        .globl  mtvec_table
mtvec_table:
        j       trap_entry_m
        .irp    i, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
        j       mvec_\i
        .endr

        .align  8
        .globl  stvec_table
stvec_table:
        j       trap_entry_s
        .irp    i, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
        j       svec_\i
        .endr

        .irp    i, 1, 3, 5, 7, 9, 11
        .align  2
mvec_\i:
        TRAP_ENTRY m, m_trap_c, (0x100 + \i)
        .align  2
svec_\i:
        TRAP_ENTRY s, s_trap_c, (0x100 + \i)
        .endr
        .irp    i, 2, 4, 6, 8, 10, 12, 13, 14, 15
mvec_\i:
svec_\i:
        j       .               /* no such interrupt */
        .endr

/* ------------------------------------------------------------------------ */
/* u64 run_in_mode(u64 mode, void *fn, u64 arg, u64 offset)                 */
/* From M-mode: run fn(arg) in privilege `mode` (0 U, 1 S, 3 M) with pc, ra */
/* and sp displaced by `offset` (for code running through an alias mapping).*/
/* fn returns (via an ecall with a7 = RUN_MAGIC); its a0 is returned.       */

        .macro  SAVE_CTX sym, st=mstatus
        la      t0, \sym
        sd      ra, 0(t0)
        sd      sp, 8(t0)
        sd      s0, 16(t0)
        sd      s1, 24(t0)
        sd      s2, 32(t0)
        sd      s3, 40(t0)
        sd      s4, 48(t0)
        sd      s5, 56(t0)
        sd      s6, 64(t0)
        sd      s7, 72(t0)
        sd      s8, 80(t0)
        sd      s9, 88(t0)
        sd      s10, 96(t0)
        sd      s11, 104(t0)
        sd      gp, 112(t0)
        sd      tp, 120(t0)
        li      t1, 1
        sd      t1, 128(t0)
        csrr    t1, \st
        sd      t1, 136(t0)
        .endm

        .macro  RESTORE_CTX sym
        la      t0, \sym
        ld      ra, 0(t0)
        ld      sp, 8(t0)
        ld      s0, 16(t0)
        ld      s1, 24(t0)
        ld      s2, 32(t0)
        ld      s3, 40(t0)
        ld      s4, 48(t0)
        ld      s5, 56(t0)
        ld      s6, 64(t0)
        ld      s7, 72(t0)
        ld      s8, 80(t0)
        ld      s9, 88(t0)
        ld      s10, 96(t0)
        ld      s11, 104(t0)
        ld      gp, 112(t0)
        ld      tp, 120(t0)
        sd      zero, 128(t0)
        .endm

        .globl  run_in_mode
run_in_mode:
        SAVE_CTX m_ctx
        li      t1, (3 << 11)
        csrc    mstatus, t1
        andi    a0, a0, 3
        slli    t1, a0, 11
        csrs    mstatus, t1
        add     t1, a1, a3
        csrw    mepc, t1
        la      ra, lower_return
        add     ra, ra, a3
        add     sp, sp, a3
        andi    sp, sp, -16
        mv      a0, a2
        mret

/* u64 run_via_sret(u64 mode, void *fn, u64 arg, u64 offset): like
 * run_in_mode but executes sret from M-mode (mode 0 = U, 1 = S). */
        .globl  run_via_sret
run_via_sret:
        SAVE_CTX m_ctx
        li      t1, (1 << 8)
        csrc    mstatus, t1
        andi    a0, a0, 1
        slli    t1, a0, 8
        csrs    mstatus, t1
        add     t1, a1, a3
        csrw    sepc, t1
        la      ra, lower_return
        add     ra, ra, a3
        add     sp, sp, a3
        andi    sp, sp, -16
        mv      a0, a2
        sret

/* u64 run_lower(u64 mode, void *fn, u64 offset, u64 x, u64 y, u64 z):
 * like run_in_mode, calling fn(x, y, z) (mode 0 = U, 1 = S, 3 = M). */
        .globl  run_lower
run_lower:
        SAVE_CTX m_ctx
        li      t1, (3 << 11)
        csrc    mstatus, t1
        andi    a0, a0, 3
        slli    t1, a0, 11
        csrs    mstatus, t1
        add     t1, a1, a2
        csrw    mepc, t1
        la      ra, lower_return
        add     ra, ra, a2
        add     sp, sp, a2
        andi    sp, sp, -16
        mv      a0, a3
        mv      a1, a4
        mv      a2, a5
        mret

        .globl  lower_return
lower_return:
        li      a7, RUN_MAGIC
        ecall
1:      j       1b

        .globl  m_ctx_resume
m_ctx_resume:
        RESTORE_CTX m_ctx
        ret

/* u64 s_run_user(void *fn, u64 arg, u64 offset): from S-mode, run fn in U  */
/* mode (needs ecall-from-U delegated to S).                                */
        .globl  s_run_user
s_run_user:
        SAVE_CTX s_ctx, sstatus
        li      t1, (1 << 8)
        csrc    sstatus, t1
        add     t1, a0, a2
        csrw    sepc, t1
        la      ra, lower_return
        add     ra, ra, a2
        add     sp, sp, a2
        andi    sp, sp, -16
        mv      a0, a1
        sret

        .globl  s_ctx_resume
s_ctx_resume:
        RESTORE_CTX s_ctx
        ret

        .data
        .align  3
        .globl  m_ctx, s_ctx
m_ctx:  .zero   144
s_ctx:  .zero   144

/* ------------------------------------------------------------------------ */
/* HTIF mailbox */
        .section .tohost, "aw", @progbits
        .align  6
        .globl  tohost
        .type   tohost, @object
        .size   tohost, 8
tohost: .dword  0
        .align  6
        .globl  fromhost
        .type   fromhost, @object
        .size   fromhost, 8
fromhost: .dword 0
