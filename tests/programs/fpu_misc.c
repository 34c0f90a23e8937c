/* F and D: conversions (rounding, saturation, NaN, flags), NaN-boxing of
 * single values in 64-bit registers, sign injection, moves, loads/stores,
 * fcsr/frm/fflags CSRs and mstatus.FS (Off traps, writes make it Dirty). */
#include "fp.h"

#define MIN32S 0xffffffff80000000UL
#define MAX32 0x7fffffffUL
#define ONES 0xffffffffffffffffUL
#define MIN64 0x8000000000000000UL
#define MAX64 0x7fffffffffffffffUL

#define RM5_I(name, op, a, rne, rtz, rdn, rup, rmm, fl) do { \
    TF(name " rne", FSI1(op, RNE, a), rne, fl); \
    TF(name " rtz", FSI1(op, RTZ, a), rtz, fl); \
    TF(name " rdn", FSI1(op, RDN, a), rdn, fl); \
    TF(name " rup", FSI1(op, RUP, a), rup, fl); \
    TF(name " rmm", FSI1(op, RMM, a), rmm, fl); \
} while (0)

static void test_cvt_to_int(void)
{
    section("fcvt float -> int");
    RM5_I("fcvt.w.s 1.5", "fcvt.w.s", 0x3fc00000, 2, 1, 1, 2, 2, NX);
    RM5_I("fcvt.w.s 2.5", "fcvt.w.s", 0x40200000, 2, 2, 2, 3, 3, NX);
    RM5_I("fcvt.w.s -1.5", "fcvt.w.s", 0xbfc00000, -2L, -1L, -2L, -1L, -2L, NX);
    RM5_I("fcvt.w.s -0.5", "fcvt.w.s", 0xbf000000, 0, 0, -1L, 0, -1L, NX);
    TF("fcvt.w.s 2^31", FSI1("fcvt.w.s", RTZ, 0x4f000000), MAX32, NV);
    TF("fcvt.w.s -2^31", FSI1("fcvt.w.s", RTZ, 0xcf000000), MIN32S, 0);
    TF("fcvt.w.s below -2^31", FSI1("fcvt.w.s", RTZ, 0xcf000001), MIN32S, NV);
    TF("fcvt.w.s qnan", FSI1("fcvt.w.s", RTZ, S_QNAN), MAX32, NV);
    TF("fcvt.w.s -qnan", FSI1("fcvt.w.s", RTZ, S_NQNAN), MAX32, NV);
    TF("fcvt.w.s snan", FSI1("fcvt.w.s", RTZ, S_SNAN), MAX32, NV);
    TF("fcvt.w.s inf", FSI1("fcvt.w.s", RTZ, S_INF), MAX32, NV);
    TF("fcvt.w.s -inf", FSI1("fcvt.w.s", RTZ, S_NINF), MIN32S, NV);
    TF("fcvt.w.s -0", FSI1("fcvt.w.s", RTZ, S_NZERO), 0, 0);
    TF("fcvt.w.s -3", FSI1("fcvt.w.s", RTZ, 0xc0400000), -3L, 0);
    TF("fcvt.wu.s 3e9 (sext)", FSI1("fcvt.wu.s", RTZ, 0x4f32d05e), 0xffffffffb2d05e00UL, 0);
    TF("fcvt.wu.s 1", FSI1("fcvt.wu.s", RTZ, S_ONE), 1, 0);
    TF("fcvt.wu.s -1", FSI1("fcvt.wu.s", RTZ, S_NONE), 0, NV);
    TF("fcvt.wu.s -0.5 rtz", FSI1("fcvt.wu.s", RTZ, 0xbf000000), 0, NX);
    TF("fcvt.wu.s -0.5 rdn", FSI1("fcvt.wu.s", RDN, 0xbf000000), 0, NV);
    TF("fcvt.wu.s 2^32", FSI1("fcvt.wu.s", RTZ, 0x4f800000), ONES, NV);
    TF("fcvt.wu.s qnan", FSI1("fcvt.wu.s", RTZ, S_QNAN), ONES, NV);
    TF("fcvt.wu.s inf", FSI1("fcvt.wu.s", RTZ, S_INF), ONES, NV);
    TF("fcvt.wu.s -inf", FSI1("fcvt.wu.s", RTZ, S_NINF), 0, NV);
    TF("fcvt.l.s 1e10", FSI1("fcvt.l.s", RTZ, 0x501502f9), 10000000000UL, 0);
    TF("fcvt.l.s 2^63", FSI1("fcvt.l.s", RTZ, 0x5f000000), MAX64, NV);
    TF("fcvt.l.s -2^63", FSI1("fcvt.l.s", RTZ, 0xdf000000), MIN64, 0);
    TF("fcvt.l.s qnan", FSI1("fcvt.l.s", RTZ, S_NQNAN), MAX64, NV);
    TF("fcvt.l.s -inf", FSI1("fcvt.l.s", RTZ, S_NINF), MIN64, NV);
    RM5_I("fcvt.l.s -2.5", "fcvt.l.s", 0xc0200000, -2L, -2L, -3L, -2L, -3L, NX);
    TF("fcvt.lu.s -1", FSI1("fcvt.lu.s", RTZ, S_NONE), 0, NV);
    TF("fcvt.lu.s 2^64", FSI1("fcvt.lu.s", RTZ, 0x5f800000), ONES, NV);
    TF("fcvt.lu.s 2^63", FSI1("fcvt.lu.s", RTZ, 0x5f000000), MIN64, 0);
    TF("fcvt.lu.s qnan", FSI1("fcvt.lu.s", RTZ, S_QNAN), ONES, NV);
    TF("fcvt.lu.s -2^63", FSI1("fcvt.lu.s", RTZ, 0xdf000000), 0, NV);
    TF("fcvt.lu.s 1.5 rup", FSI1("fcvt.lu.s", RUP, 0x3fc00000), 2, NX);

    TF("fcvt.w.d 2^31-0.5 rne", FDI1("fcvt.w.d", RNE, 0x41dfffffffe00000UL), MAX32, NV);
    TF("fcvt.w.d 2^31-0.5 rtz", FDI1("fcvt.w.d", RTZ, 0x41dfffffffe00000UL), MAX32, NX);
    TF("fcvt.w.d -2^31-0.5 rtz", FDI1("fcvt.w.d", RTZ, 0xc1e0000000100000UL), MIN32S, NX);
    TF("fcvt.w.d -2^31-0.5 rne", FDI1("fcvt.w.d", RNE, 0xc1e0000000100000UL), MIN32S, NX);
    TF("fcvt.w.d -2^31-0.5 rdn", FDI1("fcvt.w.d", RDN, 0xc1e0000000100000UL), MIN32S, NV);
    TF("fcvt.w.d qnan", FDI1("fcvt.w.d", RTZ, D_QNAN), MAX32, NV);
    TF("fcvt.w.d -inf", FDI1("fcvt.w.d", RTZ, D_NINF), MIN32S, NV);
    TF("fcvt.w.d -7.9", FDI1("fcvt.w.d", RTZ, 0xc01f99999999999aUL), -7L, NX);
    TF("fcvt.wu.d 2^32-1 (sext)", FDI1("fcvt.wu.d", RTZ, 0x41efffffffe00000UL), ONES, 0);
    TF("fcvt.wu.d 2^32", FDI1("fcvt.wu.d", RTZ, 0x41f0000000000000UL), ONES, NV);
    TF("fcvt.wu.d -0", FDI1("fcvt.wu.d", RTZ, D_NZERO), 0, 0);
    TF("fcvt.wu.d -1", FDI1("fcvt.wu.d", RTZ, D_NONE), 0, NV);
    TF("fcvt.wu.d snan", FDI1("fcvt.wu.d", RTZ, D_SNAN), ONES, NV);
    TF("fcvt.l.d 2^63", FDI1("fcvt.l.d", RTZ, 0x43e0000000000000UL), MAX64, NV);
    TF("fcvt.l.d -2^63", FDI1("fcvt.l.d", RTZ, 0xc3e0000000000000UL), MIN64, 0);
    TF("fcvt.l.d 2^63-1024", FDI1("fcvt.l.d", RTZ, 0x43dfffffffffffffUL), 0x7ffffffffffffc00UL, 0);
    TF("fcvt.l.d qnan", FDI1("fcvt.l.d", RTZ, D_QNANP), MAX64, NV);
    TF("fcvt.l.d inf", FDI1("fcvt.l.d", RTZ, D_INF), MAX64, NV);
    TF("fcvt.lu.d 2^64-2048", FDI1("fcvt.lu.d", RTZ, 0x43efffffffffffffUL), 0xfffffffffffff800UL, 0);
    TF("fcvt.lu.d 2^64", FDI1("fcvt.lu.d", RTZ, 0x43f0000000000000UL), ONES, NV);
    TF("fcvt.lu.d -1", FDI1("fcvt.lu.d", RTZ, D_NONE), 0, NV);
    TF("fcvt.lu.d -inf", FDI1("fcvt.lu.d", RTZ, D_NINF), 0, NV);
    TF("fcvt.lu.d qnan", FDI1("fcvt.lu.d", RTZ, D_QNAN), ONES, NV);
    TF("fcvt.lu.d 0.5 rmm", FDI1("fcvt.lu.d", RMM, D_HALF), 1, NX);
    TF("fcvt.lu.d 0.5 rne", FDI1("fcvt.lu.d", RNE, D_HALF), 0, NX);
}

static void test_cvt_from_int(void)
{
    section("fcvt int -> float");
    TF("fcvt.s.w 2^24+1 rne", FSFI("fcvt.s.w", RNE, 16777217), 0x4b800000, NX);
    TF("fcvt.s.w 2^24+1 rup", FSFI("fcvt.s.w", RUP, 16777217), 0x4b800001, NX);
    TF("fcvt.s.w -(2^24+1) rdn", FSFI("fcvt.s.w", RDN, -16777217L), 0xcb800001, NX);
    TF("fcvt.s.w -(2^24+1) rtz", FSFI("fcvt.s.w", RTZ, -16777217L), 0xcb800000, NX);
    TF("fcvt.s.w upper ignored", FSFI("fcvt.s.w", RNE, 0x1234567800000005UL), 0x40a00000, 0);
    TF("fcvt.s.w int32 min", FSFI("fcvt.s.w", RNE, 0x80000000UL), 0xcf000000, 0);
    TF("fcvt.s.w 0", FSFI("fcvt.s.w", RNE, 0), 0, 0);
    TF("fcvt.s.wu 2^32-1 rne", FSFI("fcvt.s.wu", RNE, 0xffffffffUL), 0x4f800000, NX);
    TF("fcvt.s.wu 2^32-1 rtz", FSFI("fcvt.s.wu", RTZ, 0xffffffffUL), 0x4f7fffff, NX);
    TF("fcvt.s.wu upper ignored", FSFI("fcvt.s.wu", RNE, 0xffffffff00000001UL), S_ONE, 0);
    TF("fcvt.s.l max rne", FSFI("fcvt.s.l", RNE, MAX64), 0x5f000000, NX);
    TF("fcvt.s.l max rtz", FSFI("fcvt.s.l", RTZ, MAX64), 0x5effffff, NX);
    TF("fcvt.s.l min", FSFI("fcvt.s.l", RNE, MIN64), 0xdf000000, 0);
    TF("fcvt.s.l -1", FSFI("fcvt.s.l", RNE, ONES), S_NONE, 0);
    TF("fcvt.s.lu ones rne", FSFI("fcvt.s.lu", RNE, ONES), 0x5f800000, NX);
    TF("fcvt.s.lu ones rtz", FSFI("fcvt.s.lu", RTZ, ONES), 0x5f7fffff, NX);
    TF("fcvt.d.w -1", FDFI("fcvt.d.w", "", -1L), D_NONE, 0);
    TF("fcvt.d.w max", FDFI("fcvt.d.w", "", 0x7fffffffUL), 0x41dfffffffc00000UL, 0);
    TF("fcvt.d.w upper ignored", FDFI("fcvt.d.w", "", 0xabcdef00fffffffeUL), 0xc000000000000000UL, 0);
    TF("fcvt.d.wu 2^32-1", FDFI("fcvt.d.wu", "", 0xffffffffUL), 0x41efffffffe00000UL, 0);
    TF("fcvt.d.wu upper ignored", FDFI("fcvt.d.wu", "", 0xffffffff00000003UL), D_THREE, 0);
    TF("fcvt.d.l 2^53+1 rne", FDFI("fcvt.d.l", RNE, 0x20000000000001UL), 0x4340000000000000UL, NX);
    TF("fcvt.d.l 2^53+1 rup", FDFI("fcvt.d.l", RUP, 0x20000000000001UL), 0x4340000000000001UL, NX);
    TF("fcvt.d.l min", FDFI("fcvt.d.l", RNE, MIN64), 0xc3e0000000000000UL, 0);
    TF("fcvt.d.lu ones rne", FDFI("fcvt.d.lu", RNE, ONES), 0x43f0000000000000UL, NX);
    TF("fcvt.d.lu ones rtz", FDFI("fcvt.d.lu", RTZ, ONES), 0x43efffffffffffffUL, NX);
}

/* fcvt.s.d: double in, single out */
#define FSD(rm, a) ({ u64 r_; __asm__ volatile( \
    "fmv.d.x ft0, %1\n fcvt.s.d ft2, ft0" rm "\n fmv.x.w %0, ft2" \
    : "=r"(r_) : "r"((u64)(a)) : "ft0", "ft2"); r_ & M32; })
/* fcvt.d.s: single in, double out */
#define FDS(a) ({ u64 r_; __asm__ volatile( \
    "fmv.w.x ft0, %1\n fcvt.d.s ft2, ft0\n fmv.x.d %0, ft2" \
    : "=r"(r_) : "r"((u64)(a)) : "ft0", "ft2"); r_; })

static void test_cvt_fp(void)
{
    section("fcvt.s.d / fcvt.d.s");
    TF("fcvt.s.d 1+2^-24 rne", FSD(RNE, 0x3ff0000010000000UL), S_ONE, NX);
    TF("fcvt.s.d 1+2^-24 rtz", FSD(RTZ, 0x3ff0000010000000UL), S_ONE, NX);
    TF("fcvt.s.d 1+2^-24 rdn", FSD(RDN, 0x3ff0000010000000UL), S_ONE, NX);
    TF("fcvt.s.d 1+2^-24 rup", FSD(RUP, 0x3ff0000010000000UL), 0x3f800001, NX);
    TF("fcvt.s.d 1+2^-24 rmm", FSD(RMM, 0x3ff0000010000000UL), 0x3f800001, NX);
    TF("fcvt.s.d 1.5", FSD(RNE, 0x3ff8000000000000UL), 0x3fc00000, 0);
    TF("fcvt.s.d 1e300 rne", FSD(RNE, 0x7e37e43c8800759cUL), S_INF, OF | NX);
    TF("fcvt.s.d 1e300 rtz", FSD(RTZ, 0x7e37e43c8800759cUL), S_MAX, OF | NX);
    TF("fcvt.s.d 1e-50 rne", FSD(RNE, 0x358dee7a4ad4b81fUL), 0, UF | NX);
    TF("fcvt.s.d 1e-50 rup", FSD(RUP, 0x358dee7a4ad4b81fUL), S_MINS, UF | NX);
    TF("fcvt.s.d 2^-149 exact", FSD(RNE, 0x36a0000000000000UL), S_MINS, 0);
    TF("fcvt.s.d snan", FSD(RNE, D_SNAN), S_QNAN, NV);
    TF("fcvt.s.d qnan payload", FSD(RNE, 0x7ff8000012345678UL), S_QNAN, 0);
    TF("fcvt.s.d -0", FSD(RNE, D_NZERO), S_NZERO, 0);
    TF("fcvt.s.d -inf", FSD(RNE, D_NINF), S_NINF, 0);
    TF("fcvt.d.s 1+ulp", FDS(0x3f800001), 0x3ff0000020000000UL, 0);
    TF("fcvt.d.s minsub", FDS(S_MINS), 0x36a0000000000000UL, 0);
    TF("fcvt.d.s max", FDS(S_MAX), 0x47efffffe0000000UL, 0);
    TF("fcvt.d.s snan", FDS(S_SNAN), D_QNAN, NV);
    TF("fcvt.d.s qnan payload", FDS(S_QNANP), D_QNAN, 0);
    TF("fcvt.d.s -inf", FDS(S_NINF), D_NINF, 0);
    TF("fcvt.d.s -0", FDS(S_NZERO), D_NZERO, 0);
}

static void test_sign(void)
{
    section("sign injection");
    TF("fsgnj.s", FS2("fsgnj.s", "", S_ONE, S_NZERO), S_NONE, 0);
    TF("fsgnj.s pos", FS2("fsgnj.s", "", S_NONE, S_ZERO), S_ONE, 0);
    TF("fsgnjn.s", FS2("fsgnjn.s", "", S_ONE, S_NZERO), S_ONE, 0);
    TF("fsgnjn.s pos", FS2("fsgnjn.s", "", S_ONE, S_ONE), S_NONE, 0);
    TF("fsgnjx.s neg*neg", FS2("fsgnjx.s", "", S_NONE, S_NZERO), S_ONE, 0);
    TF("fsgnjx.s neg*pos", FS2("fsgnjx.s", "", S_NONE, S_ZERO), S_NONE, 0);
    TF("fsgnj.s snan no NV", FS2("fsgnj.s", "", S_SNAN, S_NZERO), 0xff800001, 0);
    TF("fsgnjn.s qnan payload kept", FS2("fsgnjn.s", "", S_QNANP, S_QNANP), 0xffc12345, 0);
    TF("fneg.s", FS1("fneg.s", "", 0x40490fdb), 0xc0490fdb, 0);
    TF("fabs.s", FS1("fabs.s", "", 0xc0490fdb), 0x40490fdb, 0);
    TF("fabs.s -nan", FS1("fabs.s", "", 0xff800001), S_SNAN, 0);
    TF("fsgnj.d", FD2("fsgnj.d", "", D_ONE, D_NZERO), D_NONE, 0);
    TF("fsgnjn.d", FD2("fsgnjn.d", "", D_NONE, D_NONE), D_ONE, 0);
    TF("fsgnjx.d", FD2("fsgnjx.d", "", D_NONE, D_NONE), D_ONE, 0);
    TF("fsgnj.d snan", FD2("fsgnj.d", "", D_SNAN, D_NONE), 0xfff0000000000001UL, 0);
    TF("fneg.d", FD1("fneg.d", "", D_INF), D_NINF, 0);
    TF("fabs.d", FD1("fabs.d", "", D_NZERO), D_ZERO, 0);
}

/* raw register contents -> single op -> raw register contents */
static void test_nanbox(void)
{
    section("NaN-boxing");
    u64 r;
    const u64 unboxed_one = 0x000000003f800000UL;     /* 1.0f, upper bits not all ones */
    const u64 halfboxed = 0xfffffffe3f800000UL;
    const u64 boxed_one = 0xffffffff3f800000UL;
    /* moves and loads into f registers box the value */
    __asm__ volatile("fmv.w.x ft0, %1\n fmv.x.d %0, ft0" : "=r"(r) : "r"(0x12345678bf800000UL) : "ft0");
    CHECK("fmv.w.x boxes", r, 0xffffffffbf800000UL);
    static volatile u32 fmem[2] = { 0x40490fdb, 0 };
    __asm__ volatile("flw ft0, 0(%1)\n fmv.x.d %0, ft0" : "=r"(r) : "r"(fmem) : "ft0", "memory");
    CHECK("flw boxes", r, 0xffffffff40490fdbUL);
    __asm__ volatile("fmv.w.x ft0, %1\n fcvt.s.w ft1, %1\n fmv.x.d %0, ft1" : "=r"(r) : "r"(3UL) : "ft0", "ft1");
    CHECK("fcvt.s.w result boxed", r, 0xffffffff40400000UL);
    __asm__ volatile("fmv.d.x ft0, %1\n fadd.s ft1, ft0, ft0\n fmv.x.d %0, ft1" : "=r"(r) : "r"(boxed_one) : "ft0", "ft1");
    CHECK("fadd.s result boxed", r, 0xffffffff40000000UL);
    /* improperly boxed inputs are the canonical NaN */
    TF("fsub.s unboxed", FRAW2("fsub.s", unboxed_one, boxed_one), 0xffffffff7fc00000UL, 0);
    TF("fadd.s half-boxed", FRAW2("fadd.s", boxed_one, halfboxed), 0xffffffff7fc00000UL, 0);
    TF("fadd.s boxed", FRAW2("fadd.s", boxed_one, boxed_one), 0xffffffff40000000UL, 0);
    TF("fmul.s unboxed", FRAW2("fmul.s", 0x0000000040000000UL, boxed_one), 0xffffffff7fc00000UL, 0);
    TF("fsqrt.s unboxed", FRAW1("fsqrt.s", 0x40800000UL), 0xffffffff7fc00000UL, 0);
    TF("fsgnj.s unboxed", FRAW2("fsgnj.s", unboxed_one, unboxed_one), 0xffffffff7fc00000UL, 0);
    TF("fsgnjn.s unboxed rs1", FRAW2("fsgnjn.s", unboxed_one, boxed_one), 0xffffffffffc00000UL, 0);
    TF("fsgnj.s unboxed rs2 sign", FRAW2("fsgnj.s", 0xffffffffbf800000UL, 0x0000000080000000UL),
       0xffffffff3f800000UL, 0);
    TF("fmin.s unboxed", FRAW2("fmin.s", unboxed_one, 0xffffffff40000000UL), 0xffffffff40000000UL, 0);
    TF("fcvt.d.s unboxed", FRAW1("fcvt.d.s", unboxed_one), D_QNAN, 0);
    __asm__ volatile("fmv.d.x ft0, %1\n fclass.s %0, ft0" : "=r"(r) : "r"(unboxed_one) : "ft0");
    CHECK("fclass.s unboxed", r, 1 << 9);
    csr_write(fflags, 0);
    __asm__ volatile("fmv.d.x ft0, %1\n feq.s %0, ft0, ft0" : "=r"(r) : "r"(unboxed_one) : "ft0");
    CHECK("feq.s unboxed", r, 0);
    CHECK("feq.s unboxed [fflags]", csr_read(fflags), 0);
    __asm__ volatile("fmv.d.x ft0, %1\n fcvt.w.s %0, ft0, rtz" : "=r"(r) : "r"(unboxed_one) : "ft0");
    CHECK("fcvt.w.s unboxed", r, MAX32);
    CHECK("fcvt.w.s unboxed [fflags]", csr_read(fflags), NV);
    csr_write(fflags, 0);
    __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n fmadd.s ft2, ft1, ft1, ft0\n fmv.x.d %0, ft2"
                     : "=r"(r) : "r"(unboxed_one), "r"(boxed_one) : "ft0", "ft1", "ft2");
    CHECK("fmadd.s unboxed addend", r, 0xffffffff7fc00000UL);
    /* transfers out ignore the upper bits */
    __asm__ volatile("fmv.d.x ft0, %1\n fmv.x.w %0, ft0" : "=r"(r) : "r"(0x123456789abcdef0UL) : "ft0");
    CHECK("fmv.x.w unboxed: low bits, sext", r, 0xffffffff9abcdef0UL);
    __asm__ volatile("fmv.d.x ft0, %1\n fmv.x.w %0, ft0" : "=r"(r) : "r"(0xffffffff7fc00001UL) : "ft0");
    CHECK("fmv.x.w nan payload kept", r, 0x7fc00001);
    __asm__ volatile("fmv.w.x ft0, %1\n fmv.x.w %0, ft0" : "=r"(r) : "r"(0x80000000UL) : "ft0");
    CHECK("fmv.x.w sign-extends", r, 0xffffffff80000000UL);
    fmem[0] = 0; fmem[1] = 0x55555555;
    __asm__ volatile("fmv.d.x ft0, %1\n fsw ft0, 0(%0)" :: "r"(fmem), "r"(0x123456789abcdef0UL) : "ft0", "memory");
    CHECK("fsw unboxed stores low word", fmem[0], 0x9abcdef0);
    CHECK("fsw leaves next word", fmem[1], 0x55555555);
    csr_write(fflags, 0);
}

static void test_moves_mem(void)
{
    section("moves, loads, stores");
    static volatile u64 dmem[4] = { 0x7ff0000000000001UL, 0x8000000000000000UL, 0, 0 };
    u64 r;
    __asm__ volatile("fmv.d.x ft0, %1\n fmv.x.d %0, ft0" : "=r"(r) : "r"(D_SNAN) : "ft0");
    CHECK("fmv.d.x/fmv.x.d snan kept", r, D_SNAN);
    __asm__ volatile("fld ft0, 0(%1)\n fsd ft0, 16(%1)\n fld ft1, 8(%1)\n fsd ft1, 24(%1)\n fmv.x.d %0, ft0"
                     : "=r"(r) : "r"(dmem) : "ft0", "ft1", "memory");
    CHECK("fld snan", r, D_SNAN);
    CHECK("fsd snan", dmem[2], D_SNAN);
    CHECK("fsd -0", dmem[3], D_NZERO);
    volatile u8 *p = (volatile u8 *)dmem;
    __asm__ volatile("" : "+r"(p));
    __asm__ volatile("flw ft0, 4(%1)\n fsw ft0, 16(%1)\n fmv.x.w %0, ft0" : "=r"(r) : "r"(p) : "ft0", "memory");
    CHECK("flw high word", r, 0x7ff00000);
    CHECK("fsw", dmem[2], 0x7ff0000000000000UL | 0x7ff00000UL);
    __asm__ volatile("fld ft0, -8(%1)\n fmv.x.d %0, ft0" : "=r"(r) : "r"(p + 16) : "ft0", "memory");
    CHECK("fld negative offset", r, D_NZERO);
    csr_write(fflags, 0);
    __asm__ volatile("fld ft0, 0(%0)\n fsd ft0, 8(%0)" :: "r"(dmem) : "ft0", "memory");
    CHECK("load/store snan no flags", csr_read(fflags), 0);
    /* fmv with rd/rs on every register: walk a value through f0..f31 */
    __asm__ volatile(
        "fmv.d.x f0, %1\n fsgnj.d f1, f0, f0\n fsgnj.d f2, f1, f1\n fsgnj.d f3, f2, f2\n"
        "fsgnj.d f4, f3, f3\n fsgnj.d f5, f4, f4\n fsgnj.d f6, f5, f5\n fsgnj.d f7, f6, f6\n"
        "fsgnj.d f8, f7, f7\n fsgnj.d f9, f8, f8\n fsgnj.d f10, f9, f9\n fsgnj.d f11, f10, f10\n"
        "fsgnj.d f12, f11, f11\n fsgnj.d f13, f12, f12\n fsgnj.d f14, f13, f13\n fsgnj.d f15, f14, f14\n"
        "fsgnj.d f16, f15, f15\n fsgnj.d f17, f16, f16\n fsgnj.d f18, f17, f17\n fsgnj.d f19, f18, f18\n"
        "fsgnj.d f20, f19, f19\n fsgnj.d f21, f20, f20\n fsgnj.d f22, f21, f21\n fsgnj.d f23, f22, f22\n"
        "fsgnj.d f24, f23, f23\n fsgnj.d f25, f24, f24\n fsgnj.d f26, f25, f25\n fsgnj.d f27, f26, f26\n"
        "fsgnj.d f28, f27, f27\n fsgnj.d f29, f28, f28\n fsgnj.d f30, f29, f29\n fsgnj.d f31, f30, f30\n"
        "fmv.x.d %0, f31"
        : "=r"(r) : "r"(0x400921fb54442d18UL)
        : "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12", "f13", "f14",
          "f15", "f16", "f17", "f18", "f19", "f20", "f21", "f22", "f23", "f24", "f25", "f26", "f27", "f28",
          "f29", "f30", "f31");
    CHECK("f0..f31 chain", r, 0x400921fb54442d18UL);
}

static void test_fcsr(void)
{
    section("fcsr/frm/fflags");
    csr_write(fcsr, 0xfff);
    CHECK("fcsr 0xfff -> 0xff", csr_read(fcsr), 0xff);
    CHECK("frm field", csr_read(frm), 7);
    CHECK("fflags field", csr_read(fflags), 0x1f);
    csr_write(frm, 3);
    CHECK("frm write keeps fflags", csr_read(fcsr), 0x7f);
    csr_write(fflags, 0x2a);
    CHECK("fflags write masks to 5 bits", csr_read(fflags), 0x0a);
    CHECK("fflags write keeps frm", csr_read(fcsr), 0x6a);
    CHECK("csrrs fflags", csr_set(fflags, 0x11), 0x0a);
    CHECK("after csrrs", csr_read(fflags), 0x1b);
    CHECK("csrrc fflags", csr_clear(fflags, 0x03), 0x1b);
    CHECK("after csrrc", csr_read(fflags), 0x18);
    CHECK("csrrwi frm", ({ u64 v; __asm__ volatile("csrrwi %0, frm, 1" : "=r"(v)); v; }), 3);
    CHECK("frm now", csr_read(frm), 1);
    csr_write(frm, 0xff);
    CHECK("frm write masks to 3 bits", csr_read(frm), 7);
    csr_write(fcsr, 0);
    CHECK("fcsr cleared", csr_read(fcsr), 0);
}

#define FS_OFF   (0UL << 13)
#define FS_INIT  (1UL << 13)
#define FS_CLEAN (2UL << 13)
#define FS_DIRTY (3UL << 13)

static void set_fs(u64 v)
{
    csr_clear(mstatus, MSTATUS_FS);
    csr_set(mstatus, v);
}

static void test_fs(void)
{
    section("mstatus.FS");
    u64 r = 0;
    set_fs(FS_OFF);
    CHECK("FS off", csr_read(mstatus) & MSTATUS_FS, 0);
    CHECK("SD clear when FS off", csr_read(mstatus) >> 63, 0);
#define ILLEGAL_WHEN_OFF(name, ...) do { \
        trap_reset(&mtrap); \
        __asm__ volatile(__VA_ARGS__); \
        CHECK(name " count", mtrap.log.count, 1); \
        CHECK(name " cause", mtrap.log.cause, CAUSE_ILLEGAL); \
    } while (0)
    static volatile u64 m = 0x3ff0000000000000UL;
    ILLEGAL_WHEN_OFF("fadd.s", ".option push\n.option norvc\n fadd.s ft0, ft1, ft2\n.option pop" ::: "ft0");
    ILLEGAL_WHEN_OFF("fmadd.d", ".option push\n.option norvc\n fmadd.d ft0, ft1, ft2, ft3\n.option pop" ::: "ft0");
    ILLEGAL_WHEN_OFF("fmv.x.w", ".option push\n.option norvc\n fmv.x.w %0, ft0\n.option pop" : "+r"(r));
    ILLEGAL_WHEN_OFF("fmv.w.x", ".option push\n.option norvc\n fmv.w.x ft0, zero\n.option pop" ::: "ft0");
    ILLEGAL_WHEN_OFF("fld", ".option push\n.option norvc\n fld ft0, 0(%0)\n.option pop" :: "r"(&m) : "ft0");
    ILLEGAL_WHEN_OFF("fsd", ".option push\n.option norvc\n fsd ft0, 0(%0)\n.option pop" :: "r"(&m) : "memory");
    ILLEGAL_WHEN_OFF("c.fld", "mv a5, %0\n.option push\n.option rvc\n c.fld fa0, 0(a5)\n.option pop" :: "r"(&m) : "fa0", "a5");
    ILLEGAL_WHEN_OFF("c.fsdsp", ".option push\n.option rvc\n c.fsdsp fa0, 0(sp)\n.option pop" ::: "memory");
    ILLEGAL_WHEN_OFF("fcvt.s.w", ".option push\n.option norvc\n fcvt.s.w ft0, zero\n.option pop" ::: "ft0");
    ILLEGAL_WHEN_OFF("feq.d", ".option push\n.option norvc\n feq.d %0, ft0, ft1\n.option pop" : "+r"(r));
    ILLEGAL_WHEN_OFF("csrr fflags", ".option push\n.option norvc\n csrr %0, fflags\n.option pop" : "+r"(r));
    ILLEGAL_WHEN_OFF("csrw frm", ".option push\n.option norvc\n csrw frm, zero\n.option pop");
    ILLEGAL_WHEN_OFF("csrr fcsr", ".option push\n.option norvc\n csrr %0, fcsr\n.option pop" : "+r"(r));
    trap_off(&mtrap);
    CHECK("FS still off", csr_read(mstatus) & MSTATUS_FS, 0);
    CHECK("memory untouched by fsd", m, 0x3ff0000000000000UL);

    set_fs(FS_INIT);
    CHECK("FS initial", csr_read(mstatus) & MSTATUS_FS, FS_INIT);
    CHECK("SD clear when FS initial", csr_read(mstatus) >> 63, 0);
    CHECK("sstatus.FS mirrors", csr_read(sstatus) & MSTATUS_FS, FS_INIT);
    __asm__ volatile("fadd.d ft0, ft1, ft1" ::: "ft0");
    CHECK("FS dirty after fadd", csr_read(mstatus) & MSTATUS_FS, FS_DIRTY);
    CHECK("SD set when dirty", csr_read(mstatus) >> 63, 1);
    CHECK("sstatus.SD set when dirty", csr_read(sstatus) >> 63, 1);
    CHECK("sstatus.FS dirty", csr_read(sstatus) & MSTATUS_FS, FS_DIRTY);

    set_fs(FS_CLEAN);
    CHECK("FS clean", csr_read(mstatus) & MSTATUS_FS, FS_CLEAN);
    CHECK("SD clear when clean", csr_read(mstatus) >> 63, 0);
    __asm__ volatile("fmv.w.x ft0, zero" ::: "ft0");
    CHECK("FS dirty after fmv.w.x", csr_read(mstatus) & MSTATUS_FS, FS_DIRTY);
    set_fs(FS_CLEAN);
    __asm__ volatile("fld ft0, 0(%0)" :: "r"(&m) : "ft0");
    CHECK("FS dirty after fld", csr_read(mstatus) & MSTATUS_FS, FS_DIRTY);
    set_fs(FS_INIT);
    csr_write(fflags, 0);
    CHECK("FS dirty after fflags write", csr_read(mstatus) & MSTATUS_FS, FS_DIRTY);
    set_fs(FS_CLEAN);
    csr_write(frm, 0);
    CHECK("FS dirty after frm write", csr_read(mstatus) & MSTATUS_FS, FS_DIRTY);
    set_fs(FS_CLEAN);
    __asm__ volatile("fdiv.s ft0, ft1, ft1" ::: "ft0");
    CHECK("FS dirty after fdiv", csr_read(mstatus) & MSTATUS_FS, FS_DIRTY);
    /* sstatus.FS is writable through the S view too */
    csr_clear(sstatus, MSTATUS_FS);
    CHECK("sstatus FS write -> mstatus", csr_read(mstatus) & MSTATUS_FS, 0);
    csr_set(sstatus, FS_INIT);
    CHECK("sstatus FS set", csr_read(mstatus) & MSTATUS_FS, FS_INIT);
    set_fs(FS_DIRTY);
}

int main(void)
{
    println("fpu_misc: conversions, NaN-boxing, sign injection, fcsr, mstatus.FS");
    test_cvt_to_int();
    test_cvt_from_int();
    test_cvt_fp();
    test_sign();
    test_nanbox();
    test_moves_mem();
    test_fcsr();
    test_fs();
    return finish();
}
