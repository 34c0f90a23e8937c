/* Inline-assembly helpers for single-instruction tests. */
#ifndef RINGVISOR_TEST_ASM_H
#define RINGVISOR_TEST_ASM_H
#include "lib.h"

/* (NORVC and AFUNC come from tests/common/testlib.h.) */

/* rd = op rs1, rs2 */
#define RR(op, a, b) ({ u64 r_; __asm__ volatile(NORVC(op " %0, %1, %2") \
        : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b))); r_; })
/* rd = op rs1, imm */
#define RI(op, a, imm) ({ u64 r_; __asm__ volatile(NORVC(op " %0, %1, " #imm) \
        : "=r"(r_) : "r"((u64)(a))); r_; })
/* rd = op rs1 */
#define R1(op, a) ({ u64 r_; __asm__ volatile(NORVC(op " %0, %1") \
        : "=r"(r_) : "r"((u64)(a))); r_; })

#endif
