/* Trap-frame save/restore for the assembly trap entries of both runtimes
 * (tests/programs/common/crt.S, tests/guests/common/start.S); include it
 * from a .S file.
 *
 * Frame layout (struct trap_frame in each lib.h): x[0..31] at 0..255
 * (x[2] holds the interrupted sp), epc 256, cause 264, tval 272, status 280.
 * What follows (the guests' vec) and the frame size are the runtime's.
 */
#ifndef RINGVISOR_TRAPFRAME_H
#define RINGVISOR_TRAPFRAME_H

#define TF_EPC    256
#define TF_CAUSE  264
#define TF_TVAL   272
#define TF_STATUS 280

/* Store x1, x3, x4 and x6..x31 into their x[] slots of the frame at sp.
 * Not x0's slot, sp (x2) or t0 (x5): the entry code saves t0 before it
 * uses it as scratch, and it knows where the interrupted sp is. */
        .macro  SAVE_GPRS
        sd      x1, 8(sp)
        sd      x3, 24(sp)
        sd      x4, 32(sp)
        .irp    n, 6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        sd      x\n, (8 * \n)(sp)
        .endr
        .endm

/* Load x1 and x3..x31 back from the frame at sp (all but x0 and sp). */
        .macro  RESTORE_GPRS
        ld      x1, 8(sp)
        .irp    n, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        ld      x\n, (8 * \n)(sp)
        .endr
        .endm

/* Save xepc, xcause, xtval and xstatus (p = m or s) into the frame at sp,
 * through t0. */
        .macro  SAVE_TRAP_CSRS p
        csrr    t0, \p\()epc
        sd      t0, TF_EPC(sp)
        csrr    t0, \p\()cause
        sd      t0, TF_CAUSE(sp)
        csrr    t0, \p\()tval
        sd      t0, TF_TVAL(sp)
        csrr    t0, \p\()status
        sd      t0, TF_STATUS(sp)
        .endm

/* Write xepc and xstatus back from the frame at sp; leaves xstatus in t0. */
        .macro  RESTORE_TRAP_CSRS p
        ld      t0, TF_EPC(sp)
        csrw    \p\()epc, t0
        ld      t0, TF_STATUS(sp)
        csrw    \p\()status, t0
        .endm

#endif
