/* Ringvisor guest test kernels: entry, trap entry/exit, U-mode calls.
 *
 * Entered in S-mode at 0x8020_0000 with a0 = hartid, a1 = device tree,
 * satp = 0 (Linux boot protocol); no other register is assumed.
 *
 * sscratch follows the Linux convention: 0 while the hart runs in S-mode,
 * the kernel stack pointer while it runs in U-mode.  The trap entry swaps
 * it with sp, so a trap from U lands on the kernel stack and a trap from S
 * (also a nested one, taken inside the handler) stays on the current stack.
 *
 * Trap frame (struct trap_frame in lib.h): that of tests/common/trapframe.h
 * (x[0..31], epc, cause, tval, status), then vec at 288; size 304.
 */
#include "trapframe.h"
#define FRAME_SIZE 304
#define RUN_MAGIC  0x52564d52
#define SSTATUS_SPP 0x100

        .section .text.init, "ax", @progbits
        .option norvc
        .globl _start
_start:
        csrw    sie, zero
        csrci   sstatus, 2              /* SIE */
        csrw    sscratch, zero
        /* FS = Initial: compiled code may save FP registers in prologues.
         * (The firmware's choice differs: OpenSBI leaves FS Dirty.) */
        li      t0, 3 << 13
        csrc    sstatus, t0
        li      t0, 1 << 13
        csrs    sstatus, t0
        la      t0, trap_entry
        csrw    stvec, t0
        la      sp, _stack_top
        li      x1, 0
        li      x3, 0
        li      x4, 0
        /* Zero .bss */
        la      t0, __bss_start
        la      t1, __bss_end
1:      bgeu    t0, t1, 2f
        sd      zero, 0(t0)
        addi    t0, t0, 8
        j       1b
2:
        la      t0, rt_hartid
        sd      a0, 0(t0)
        la      t0, rt_dtb
        sd      a1, 0(t0)
        call    rt_init
        call    main
        call    exit
3:      wfi
        j       3b

/* ------------------------------------------------------------------------ */
/* Trap entry.  ENTRY_HEAD gets a stack, saves t0 and records which entry   */
/* was used (0: the common one, 0x100 + i: vector table entry i).           */

        .macro  ENTRY_HEAD vec
        csrrw   sp, sscratch, sp
        bnez    sp, 91f
        csrrw   sp, sscratch, sp        /* from S: sp back, sscratch 0 */
91:     addi    sp, sp, -FRAME_SIZE
        sd      t0, 40(sp)
        li      t0, \vec
        j       trap_common
        .endm

        .text
        .balign 4
        .globl  trap_entry
trap_entry:
        ENTRY_HEAD 0

        .balign 4
trap_common:
        sd      t0, 288(sp)
        SAVE_GPRS
        sd      zero, 0(sp)
        csrrw   t0, sscratch, zero      /* the U sp, or 0 when from S */
        bnez    t0, 1f
        addi    t0, sp, FRAME_SIZE
1:      sd      t0, 16(sp)
        SAVE_TRAP_CSRS s
        mv      a0, sp
        call    trap_handler

        .globl  trap_return
trap_return:
        RESTORE_TRAP_CSRS s
        andi    t0, t0, SSTATUS_SPP
        bnez    t0, 2f
        addi    t0, sp, FRAME_SIZE      /* back to U: kernel sp for its next trap */
        csrw    sscratch, t0
2:      RESTORE_GPRS
        ld      x2, 16(sp)
        sret

/* Vector table for stvec.MODE = 1 (Vectored): exceptions use entry 0,
 * interrupt i uses entry i.  Each entry is one 4-byte jump. */
        .balign 256
        .globl  stvec_table
stvec_table:
        .irp    i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        j       vec_\i
        .endr
        .irp    i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
vec_\i: ENTRY_HEAD (0x100 + \i)
        .endr

/* ------------------------------------------------------------------------ */
/* u64 run_user(void *fn, u64 arg, u64 usp): run fn(arg) in U-mode on stack  */
/* usp (0: the default U stack), entered with sret.  fn returns through ra   */
/* to user_exit (or ends with its own `ecall` with a7 = RUN_MAGIC); the trap */
/* handler then calls user_return(a0), which resumes here.  sstatus (SIE,    */
/* SUM, ...) is restored to its value at the call.                           */

        .globl  run_user
run_user:
        addi    sp, sp, -112
        sd      ra, 0(sp)
        sd      s0, 8(sp)
        sd      s1, 16(sp)
        sd      s2, 24(sp)
        sd      s3, 32(sp)
        sd      s4, 40(sp)
        sd      s5, 48(sp)
        sd      s6, 56(sp)
        sd      s7, 64(sp)
        sd      s8, 72(sp)
        sd      s9, 80(sp)
        sd      s10, 88(sp)
        sd      s11, 96(sp)
        csrr    t0, sstatus
        sd      t0, 104(sp)
        la      t1, run_ctx_sp
        sd      sp, 0(t1)
        csrw    sepc, a0
        li      t0, SSTATUS_SPP
        csrc    sstatus, t0
        csrw    sscratch, sp
        mv      a0, a1
        bnez    a2, 1f
        la      a2, _user_stack_top
1:      mv      sp, a2
        la      ra, user_exit
        sret

        .balign 4
        .globl  user_exit
user_exit:
        li      a7, RUN_MAGIC
        ecall
        j       user_exit

        .globl  user_return
user_return:
        la      t1, run_ctx_sp
        ld      sp, 0(t1)
        ld      t0, 104(sp)
        csrw    sstatus, t0
        csrw    sscratch, zero
        ld      ra, 0(sp)
        ld      s0, 8(sp)
        ld      s1, 16(sp)
        ld      s2, 24(sp)
        ld      s3, 32(sp)
        ld      s4, 40(sp)
        ld      s5, 48(sp)
        ld      s6, 56(sp)
        ld      s7, 64(sp)
        ld      s8, 72(sp)
        ld      s9, 80(sp)
        ld      s10, 88(sp)
        ld      s11, 96(sp)
        addi    sp, sp, 112
        ret

        .data
        .balign 8
        .globl  rt_hartid, rt_dtb
rt_hartid:  .dword 0
rt_dtb:     .dword 0
run_ctx_sp: .dword 0
