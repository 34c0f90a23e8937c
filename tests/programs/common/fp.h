/* Helpers for floating-point tests: run one FP instruction on raw bit
 * patterns and read back raw bits; fflags are read with TF(). */
#ifndef RINGVISOR_TEST_FP_H
#define RINGVISOR_TEST_FP_H
#include "lib.h"

#define NX 0x01
#define UF 0x02
#define OF 0x04
#define DZ 0x08
#define NV 0x10

/* static rounding-mode suffixes ("" = dynamic) */
#define RNE ", rne"
#define RTZ ", rtz"
#define RDN ", rdn"
#define RUP ", rup"
#define RMM ", rmm"
#define DYN ""

#define M32 0xffffffffUL

/* single: result bits (low 32) */
#define FS1(op, rm, a) ({ u64 r_; __asm__ volatile( \
    "fmv.w.x ft0, %1\n" op " ft2, ft0" rm "\n fmv.x.w %0, ft2" \
    : "=r"(r_) : "r"((u64)(a)) : "ft0", "ft2"); r_ & M32; })
#define FS2(op, rm, a, b) ({ u64 r_; __asm__ volatile( \
    "fmv.w.x ft0, %1\n fmv.w.x ft1, %2\n" op " ft2, ft0, ft1" rm "\n fmv.x.w %0, ft2" \
    : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1", "ft2"); r_ & M32; })
#define FS3(op, rm, a, b, c) ({ u64 r_; __asm__ volatile( \
    "fmv.w.x ft0, %1\n fmv.w.x ft1, %2\n fmv.w.x ft3, %3\n" op " ft2, ft0, ft1, ft3" rm \
    "\n fmv.x.w %0, ft2" \
    : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)), "r"((u64)(c)) : "ft0", "ft1", "ft2", "ft3"); r_ & M32; })
/* single compare / classify / convert-to-int: integer result */
#define FSI1(op, rm, a) ({ u64 r_; __asm__ volatile( \
    "fmv.w.x ft0, %1\n" op " %0, ft0" rm : "=r"(r_) : "r"((u64)(a)) : "ft0"); r_; })
#define FSI2(op, a, b) ({ u64 r_; __asm__ volatile( \
    "fmv.w.x ft0, %1\n fmv.w.x ft1, %2\n" op " %0, ft0, ft1" \
    : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1"); r_; })
/* int -> single */
#define FSFI(op, rm, a) ({ u64 r_; __asm__ volatile( \
    op " ft2, %1" rm "\n fmv.x.w %0, ft2" : "=r"(r_) : "r"((u64)(a)) : "ft2"); r_ & M32; })

/* double */
#define FD1(op, rm, a) ({ u64 r_; __asm__ volatile( \
    "fmv.d.x ft0, %1\n" op " ft2, ft0" rm "\n fmv.x.d %0, ft2" \
    : "=r"(r_) : "r"((u64)(a)) : "ft0", "ft2"); r_; })
#define FD2(op, rm, a, b) ({ u64 r_; __asm__ volatile( \
    "fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n" op " ft2, ft0, ft1" rm "\n fmv.x.d %0, ft2" \
    : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1", "ft2"); r_; })
#define FD3(op, rm, a, b, c) ({ u64 r_; __asm__ volatile( \
    "fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n fmv.d.x ft3, %3\n" op " ft2, ft0, ft1, ft3" rm \
    "\n fmv.x.d %0, ft2" \
    : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)), "r"((u64)(c)) : "ft0", "ft1", "ft2", "ft3"); r_; })
#define FDI1(op, rm, a) ({ u64 r_; __asm__ volatile( \
    "fmv.d.x ft0, %1\n" op " %0, ft0" rm : "=r"(r_) : "r"((u64)(a)) : "ft0"); r_; })
#define FDI2(op, a, b) ({ u64 r_; __asm__ volatile( \
    "fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n" op " %0, ft0, ft1" \
    : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1"); r_; })
#define FDFI(op, rm, a) ({ u64 r_; __asm__ volatile( \
    op " ft2, %1" rm "\n fmv.x.d %0, ft2" : "=r"(r_) : "r"((u64)(a)) : "ft2"); r_; })
/* raw 64-bit register contents in, raw 64-bit out (for NaN-boxing tests) */
#define FRAW1(op, a) ({ u64 r_; __asm__ volatile( \
    "fmv.d.x ft0, %1\n" op " ft2, ft0\n fmv.x.d %0, ft2" \
    : "=r"(r_) : "r"((u64)(a)) : "ft0", "ft2"); r_; })
#define FRAW2(op, a, b) ({ u64 r_; __asm__ volatile( \
    "fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n" op " ft2, ft0, ft1\n fmv.x.d %0, ft2" \
    : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1", "ft2"); r_; })

/* Evaluate expr with fflags cleared; check result and the flags it raised. */
#define TF(name, expr, exp, fl) do { \
    csr_write(fflags, 0); \
    u64 r__ = (expr); \
    u64 f__ = csr_read(fflags); \
    CHECK(name, r__, exp); \
    CHECK(name " [fflags]", f__, fl); \
} while (0)

/* single-precision constants */
#define S_ONE   0x3f800000UL
#define S_NONE  0xbf800000UL
#define S_TWO   0x40000000UL
#define S_THREE 0x40400000UL
#define S_HALF  0x3f000000UL
#define S_ZERO  0x00000000UL
#define S_NZERO 0x80000000UL
#define S_INF   0x7f800000UL
#define S_NINF  0xff800000UL
#define S_MAX   0x7f7fffffUL
#define S_NMAX  0xff7fffffUL
#define S_MINN  0x00800000UL
#define S_MINS  0x00000001UL
#define S_QNAN  0x7fc00000UL
#define S_SNAN  0x7f800001UL
#define S_QNANP 0x7fc12345UL
#define S_NQNAN 0xffc00000UL

/* double-precision constants */
#define D_ONE   0x3ff0000000000000UL
#define D_NONE  0xbff0000000000000UL
#define D_TWO   0x4000000000000000UL
#define D_THREE 0x4008000000000000UL
#define D_HALF  0x3fe0000000000000UL
#define D_ZERO  0x0000000000000000UL
#define D_NZERO 0x8000000000000000UL
#define D_INF   0x7ff0000000000000UL
#define D_NINF  0xfff0000000000000UL
#define D_MAX   0x7fefffffffffffffUL
#define D_MINN  0x0010000000000000UL
#define D_MINS  0x0000000000000001UL
#define D_QNAN  0x7ff8000000000000UL
#define D_SNAN  0x7ff0000000000001UL
#define D_QNANP 0x7ff8000000012345UL

#endif
