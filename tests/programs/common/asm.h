/* Inline-assembly helpers for single-instruction tests. */
#ifndef RINGVISOR_TEST_ASM_H
#define RINGVISOR_TEST_ASM_H
#include "lib.h"

/* Assemble `s` without the C extension (exact 32-bit encodings). */
#define NORVC(s) ".option push\n.option norvc\n" s "\n.option pop\n"

/* rd = op rs1, rs2 */
#define RR(op, a, b) ({ u64 r_; __asm__ volatile(NORVC(op " %0, %1, %2") \
        : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b))); r_; })
/* rd = op rs1, imm */
#define RI(op, a, imm) ({ u64 r_; __asm__ volatile(NORVC(op " %0, %1, " #imm) \
        : "=r"(r_) : "r"((u64)(a))); r_; })
/* rd = op rs1 */
#define R1(op, a) ({ u64 r_; __asm__ volatile(NORVC(op " %0, %1") \
        : "=r"(r_) : "r"((u64)(a))); r_; })

/* A leaf function name(a0, a1, a2) assembled without RVC, for tests that need an instruction at
 * a known address or a trap to return through ra. */
#define AFUNC(name, body) \
    u64 name(u64, u64, u64); \
    __asm__(".text\n.globl " #name "\n.balign 4\n" #name ":\n" \
            ".option push\n.option norvc\n" body "\n.option pop\n")

#endif
