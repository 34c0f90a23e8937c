/* F and D arithmetic: every static rounding mode and dynamic rounding via
 * frm, exception flags (NV DZ OF UF NX) per operation, canonical NaNs,
 * signalling NaNs, fmin/fmax, compares, fclass, fused multiply-add single
 * rounding, sqrt and division special cases. */
#include "fp.h"

/* one binary op under the five static rounding modes, same flags for all */
#define RM5_S2(name, op, a, b, rne, rtz, rdn, rup, rmm, fl) do { \
    TF(name " rne", FS2(op, RNE, a, b), rne, fl); \
    TF(name " rtz", FS2(op, RTZ, a, b), rtz, fl); \
    TF(name " rdn", FS2(op, RDN, a, b), rdn, fl); \
    TF(name " rup", FS2(op, RUP, a, b), rup, fl); \
    TF(name " rmm", FS2(op, RMM, a, b), rmm, fl); \
} while (0)
#define RM5_D2(name, op, a, b, rne, rtz, rdn, rup, rmm, fl) do { \
    TF(name " rne", FD2(op, RNE, a, b), rne, fl); \
    TF(name " rtz", FD2(op, RTZ, a, b), rtz, fl); \
    TF(name " rdn", FD2(op, RDN, a, b), rdn, fl); \
    TF(name " rup", FD2(op, RUP, a, b), rup, fl); \
    TF(name " rmm", FD2(op, RMM, a, b), rmm, fl); \
} while (0)

static void test_rounding_static(void)
{
    section("static rounding modes");
    /* 1 + 2^-24: exact tie between 1 and 1+ulp (even = 1) */
    RM5_S2("fadd.s 1+2^-24", "fadd.s", S_ONE, 0x33800000,
           0x3f800000, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800001, NX);
    RM5_S2("fadd.s -1-2^-24", "fadd.s", S_NONE, 0xb3800000,
           0xbf800000, 0xbf800000, 0xbf800001, 0xbf800000, 0xbf800001, NX);
    /* above the tie */
    RM5_S2("fadd.s 1+1.5*2^-24", "fadd.s", S_ONE, 0x33c00000,
           0x3f800001, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800001, NX);
    /* tie with odd lower neighbour: rne rounds up */
    RM5_S2("fadd.s (1+ulp)+2^-24", "fadd.s", 0x3f800001, 0x33800000,
           0x3f800002, 0x3f800001, 0x3f800001, 0x3f800002, 0x3f800002, NX);
    RM5_S2("fsub.s 1-1", "fsub.s", S_ONE, S_ONE, 0, 0, S_NZERO, 0, 0, 0);
    RM5_S2("fadd.s -0+0", "fadd.s", S_NZERO, S_ZERO, 0, 0, S_NZERO, 0, 0, 0);
    RM5_S2("fadd.s -0+-0", "fadd.s", S_NZERO, S_NZERO, S_NZERO, S_NZERO, S_NZERO, S_NZERO, S_NZERO, 0);
    RM5_S2("fmul.s (1+ulp)^2", "fmul.s", 0x3f800001, 0x3f800001,
           0x3f800002, 0x3f800002, 0x3f800002, 0x3f800003, 0x3f800002, NX);
    RM5_S2("fmul.s -(1+ulp)^2", "fmul.s", 0xbf800001, 0x3f800001,
           0xbf800002, 0xbf800002, 0xbf800003, 0xbf800002, 0xbf800002, NX);
    RM5_S2("fdiv.s 1/3", "fdiv.s", S_ONE, S_THREE,
           0x3eaaaaab, 0x3eaaaaaa, 0x3eaaaaaa, 0x3eaaaaab, 0x3eaaaaab, NX);
    RM5_S2("fdiv.s -1/3", "fdiv.s", S_NONE, S_THREE,
           0xbeaaaaab, 0xbeaaaaaa, 0xbeaaaaab, 0xbeaaaaaa, 0xbeaaaaab, NX);
    TF("fsqrt.s 2 rne", FS1("fsqrt.s", RNE, S_TWO), 0x3fb504f3, NX);
    TF("fsqrt.s 2 rtz", FS1("fsqrt.s", RTZ, S_TWO), 0x3fb504f3, NX);
    TF("fsqrt.s 2 rdn", FS1("fsqrt.s", RDN, S_TWO), 0x3fb504f3, NX);
    TF("fsqrt.s 2 rup", FS1("fsqrt.s", RUP, S_TWO), 0x3fb504f4, NX);
    TF("fsqrt.s 2 rmm", FS1("fsqrt.s", RMM, S_TWO), 0x3fb504f3, NX);
    TF("fsqrt.s 4", FS1("fsqrt.s", RNE, 0x40800000), S_TWO, 0);

    RM5_D2("fadd.d 1+2^-53", "fadd.d", D_ONE, 0x3ca0000000000000UL,
           D_ONE, D_ONE, D_ONE, 0x3ff0000000000001UL, 0x3ff0000000000001UL, NX);
    RM5_D2("fsub.d -1-2^-53", "fsub.d", D_NONE, 0x3ca0000000000000UL,
           D_NONE, D_NONE, 0xbff0000000000001UL, D_NONE, 0xbff0000000000001UL, NX);
    RM5_D2("fadd.d (1+ulp)+2^-53", "fadd.d", 0x3ff0000000000001UL, 0x3ca0000000000000UL,
           0x3ff0000000000002UL, 0x3ff0000000000001UL, 0x3ff0000000000001UL,
           0x3ff0000000000002UL, 0x3ff0000000000002UL, NX);
    RM5_D2("fsub.d 1-1", "fsub.d", D_ONE, D_ONE, 0, 0, D_NZERO, 0, 0, 0);
    RM5_D2("fdiv.d 1/3", "fdiv.d", D_ONE, D_THREE,
           0x3fd5555555555555UL, 0x3fd5555555555555UL, 0x3fd5555555555555UL,
           0x3fd5555555555556UL, 0x3fd5555555555555UL, NX);
    RM5_D2("fmul.d (1+ulp)^2", "fmul.d", 0x3ff0000000000001UL, 0x3ff0000000000001UL,
           0x3ff0000000000002UL, 0x3ff0000000000002UL, 0x3ff0000000000002UL,
           0x3ff0000000000003UL, 0x3ff0000000000002UL, NX);
    TF("fsqrt.d 2 rne", FD1("fsqrt.d", RNE, D_TWO), 0x3ff6a09e667f3bcdUL, NX);
    TF("fsqrt.d 2 rtz", FD1("fsqrt.d", RTZ, D_TWO), 0x3ff6a09e667f3bccUL, NX);
    TF("fsqrt.d 2 rdn", FD1("fsqrt.d", RDN, D_TWO), 0x3ff6a09e667f3bccUL, NX);
    TF("fsqrt.d 2 rup", FD1("fsqrt.d", RUP, D_TWO), 0x3ff6a09e667f3bcdUL, NX);
    TF("fsqrt.d 2 rmm", FD1("fsqrt.d", RMM, D_TWO), 0x3ff6a09e667f3bcdUL, NX);
    TF("fsqrt.d 9", FD1("fsqrt.d", RNE, 0x4022000000000000UL), D_THREE, 0);
}

static void test_rounding_dynamic(void)
{
    section("dynamic rounding (frm)");
    static const u64 tie_even[5] = { 0x3f800000, 0x3f800000, 0x3f800000, 0x3f800001, 0x3f800001 };
    static const u64 tie_odd[5] = { 0x3f800002, 0x3f800001, 0x3f800001, 0x3f800002, 0x3f800002 };
    static const u64 neg[5] = { 0xbf800000, 0xbf800000, 0xbf800001, 0xbf800000, 0xbf800001 };
    static const u64 d_up[5] = { D_ONE, D_ONE, D_ONE, 0x3ff0000000000001UL, 0x3ff0000000000001UL };
    static const char *n1[5] = { "dyn rne tie-even", "dyn rtz tie-even", "dyn rdn tie-even", "dyn rup tie-even", "dyn rmm tie-even" };
    static const char *n2[5] = { "dyn rne tie-odd", "dyn rtz tie-odd", "dyn rdn tie-odd", "dyn rup tie-odd", "dyn rmm tie-odd" };
    static const char *n3[5] = { "dyn rne neg", "dyn rtz neg", "dyn rdn neg", "dyn rup neg", "dyn rmm neg" };
    static const char *n4[5] = { "dyn rne fadd.d", "dyn rtz fadd.d", "dyn rdn fadd.d", "dyn rup fadd.d", "dyn rmm fadd.d" };
    static const char *n5[5] = { "frm readback", "frm readback", "frm readback", "frm readback", "frm readback" };
    static const char *n6[5] = { "fcsr layout", "fcsr layout", "fcsr layout", "fcsr layout", "fcsr layout" };
    for (int m = 0; m < 5; m++) {
        csr_write(frm, m);
        CHECK(n5[m], csr_read(frm), m);
        csr_write(fflags, 0);
        CHECK(n1[m], FS2("fadd.s", DYN, S_ONE, 0x33800000), tie_even[m]);
        CHECK(n6[m], csr_read(fcsr), ((u64)m << 5) | NX);
        CHECK(n2[m], FS2("fadd.s", DYN, 0x3f800001, 0x33800000), tie_odd[m]);
        CHECK(n3[m], FS2("fadd.s", DYN, S_NONE, 0xb3800000), neg[m]);
        CHECK(n4[m], FD2("fadd.d", DYN, D_ONE, 0x3ca0000000000000UL), d_up[m]);
    }
    /* explicit dyn operand is the same thing */
    csr_write(frm, 3);
    CHECK("dyn via ', dyn'", FS2("fadd.s", ", dyn", S_ONE, 0x33800000), 0x3f800001);
    /* a static mode overrides frm */
    CHECK("static overrides frm", FS2("fadd.s", RTZ, S_ONE, 0x33800000), 0x3f800000);
    csr_write(frm, 0);

    /* frm = 5, 6, 7 are invalid: dynamic-rounding instructions trap */
    for (u64 bad = 5; bad <= 7; bad++) {
        csr_write(frm, bad);
        CHECK("invalid frm stored", csr_read(frm), bad);
        trap_reset(&mtrap);
        FS2("fadd.s", DYN, S_ONE, S_ONE);
        CHECK("invalid frm -> illegal", mtrap.log.cause, CAUSE_ILLEGAL);
        CHECK("invalid frm count", mtrap.log.count, 1);
        /* a static mode still works */
        trap_reset(&mtrap);
        CHECK("invalid frm, static rm ok", FS2("fadd.s", RNE, S_ONE, S_ONE), S_TWO);
        CHECK("invalid frm, static rm no trap", mtrap.log.count, 0);
    }
    csr_write(frm, 0);
    /* reserved static rounding modes 5 and 6 */
    trap_reset(&mtrap);
    __asm__ volatile(".insn r 0x53, 5, 0, ft2, ft0, ft1" ::: "ft2");
    CHECK("static rm=5 illegal", mtrap.log.cause, CAUSE_ILLEGAL);
    trap_reset(&mtrap);
    __asm__ volatile(".insn r 0x53, 6, 0, ft2, ft0, ft1" ::: "ft2");
    CHECK("static rm=6 illegal", mtrap.log.cause, CAUSE_ILLEGAL);
    trap_reset(&mtrap);
    u64 r;
    __asm__ volatile("fmv.w.x ft0, %1\n fmv.w.x ft1, %1\n .insn r 0x53, 7, 0, ft2, ft0, ft1\n fmv.x.w %0, ft2"
                     : "=r"(r) : "r"(S_ONE) : "ft0", "ft1", "ft2");
    CHECK("static rm=7 (dyn) ok", r & M32, S_TWO);
    CHECK("static rm=7 no trap", mtrap.log.count, 0);
    trap_off(&mtrap);
}

static void test_flags(void)
{
    section("exception flags");
    /* overflow */
    RM5_S2("fmul.s max*2", "fmul.s", S_MAX, S_TWO, S_INF, S_MAX, S_MAX, S_INF, S_INF, OF | NX);
    RM5_S2("fmul.s -max*2", "fmul.s", S_NMAX, S_TWO, S_NINF, S_NMAX, S_NINF, S_NMAX, S_NINF, OF | NX);
    TF("fadd.s max+max", FS2("fadd.s", RNE, S_MAX, S_MAX), S_INF, OF | NX);
    TF("fadd.s max+1 (no OF)", FS2("fadd.s", RNE, S_MAX, S_ONE), S_MAX, NX);
    RM5_D2("fmul.d max*2", "fmul.d", D_MAX, D_TWO, D_INF, D_MAX, D_MAX, D_INF, D_INF, OF | NX);
    /* underflow: tiny and inexact */
    RM5_S2("fmul.s minsub/2", "fmul.s", S_MINS, S_HALF, 0, 0, 0, S_MINS, S_MINS, UF | NX);
    RM5_S2("fmul.s -minsub/2", "fmul.s", 0x80000001, S_HALF, S_NZERO, S_NZERO, 0x80000001, S_NZERO, 0x80000001, UF | NX);
    TF("fmul.s minnorm/2 exact (no UF)", FS2("fmul.s", RNE, S_MINN, S_HALF), 0x00400000, 0);
    TF("fdiv.s minnorm/3", FS2("fdiv.s", RNE, S_MINN, S_THREE), 0x002aaaab, UF | NX);
    /* tininess is detected after rounding: rounds up to the smallest normal */
    TF("fmul.s tiny after rounding rne", FS2("fmul.s", RNE, 0x3f7ffffe, 0x00800001), S_MINN, NX);
    TF("fmul.s tiny after rounding rtz", FS2("fmul.s", RTZ, 0x3f7ffffe, 0x00800001), 0x007fffff, UF | NX);
    TF("fmul.s tiny after rounding rup", FS2("fmul.s", RUP, 0x3f7ffffe, 0x00800001), S_MINN, NX);
    RM5_D2("fmul.d minsub/2", "fmul.d", D_MINS, D_HALF, 0, 0, 0, D_MINS, D_MINS, UF | NX);
    TF("fsub.d tiny exact (no UF)", FD2("fsub.d", RNE, 0x0010000000000001UL, D_MINN), D_MINS, 0);
    /* divide by zero */
    TF("fdiv.s 1/+0", FS2("fdiv.s", RNE, S_ONE, S_ZERO), S_INF, DZ);
    TF("fdiv.s -1/+0", FS2("fdiv.s", RNE, S_NONE, S_ZERO), S_NINF, DZ);
    TF("fdiv.s 1/-0", FS2("fdiv.s", RNE, S_ONE, S_NZERO), S_NINF, DZ);
    TF("fdiv.s 0/0", FS2("fdiv.s", RNE, S_ZERO, S_ZERO), S_QNAN, NV);
    TF("fdiv.s inf/0 (no DZ)", FS2("fdiv.s", RNE, S_INF, S_ZERO), S_INF, 0);
    TF("fdiv.s 1/inf", FS2("fdiv.s", RNE, S_ONE, S_NINF), S_NZERO, 0);
    TF("fdiv.d 1/0", FD2("fdiv.d", RNE, D_ONE, D_ZERO), D_INF, DZ);
    TF("fdiv.d -3/0", FD2("fdiv.d", RNE, 0xc008000000000000UL, D_ZERO), D_NINF, DZ);
    /* invalid */
    TF("fsub.s inf-inf", FS2("fsub.s", RNE, S_INF, S_INF), S_QNAN, NV);
    TF("fadd.s inf+-inf", FS2("fadd.s", RNE, S_INF, S_NINF), S_QNAN, NV);
    TF("fmul.s 0*inf", FS2("fmul.s", RNE, S_ZERO, S_NINF), S_QNAN, NV);
    TF("fdiv.s inf/inf", FS2("fdiv.s", RNE, S_INF, S_INF), S_QNAN, NV);
    TF("fadd.s inf+inf", FS2("fadd.s", RNE, S_INF, S_INF), S_INF, 0);
    TF("fsub.d inf-inf", FD2("fsub.d", RNE, D_INF, D_INF), D_QNAN, NV);
    TF("fmul.d inf*0", FD2("fmul.d", RNE, D_INF, D_NZERO), D_QNAN, NV);
    /* inexact only */
    TF("fdiv.s 2/3", FS2("fdiv.s", RNE, S_TWO, S_THREE), 0x3f2aaaab, NX);
    TF("fadd.s exact", FS2("fadd.s", RNE, S_ONE, S_TWO), S_THREE, 0);
    /* flags accumulate until cleared */
    csr_write(fflags, 0);
    FS2("fdiv.s", RNE, S_ONE, S_THREE);
    FS2("fdiv.s", RNE, S_ONE, S_ZERO);
    FS2("fmul.s", RNE, S_MAX, S_TWO);
    CHECK("flags accumulate", csr_read(fflags), NX | DZ | OF);
    FS2("fadd.s", RNE, S_ONE, S_ONE);
    CHECK("exact op keeps flags", csr_read(fflags), NX | DZ | OF);
    csr_write(fflags, 0);
}

static void test_sqrt_div(void)
{
    section("sqrt/div specials");
    TF("fsqrt.s -1", FS1("fsqrt.s", RNE, S_NONE), S_QNAN, NV);
    TF("fsqrt.s -minsub", FS1("fsqrt.s", RNE, 0x80000001), S_QNAN, NV);
    TF("fsqrt.s -inf", FS1("fsqrt.s", RNE, S_NINF), S_QNAN, NV);
    TF("fsqrt.s -0", FS1("fsqrt.s", RNE, S_NZERO), S_NZERO, 0);
    TF("fsqrt.s +0", FS1("fsqrt.s", RNE, S_ZERO), S_ZERO, 0);
    TF("fsqrt.s inf", FS1("fsqrt.s", RNE, S_INF), S_INF, 0);
    TF("fsqrt.s qnan", FS1("fsqrt.s", RNE, S_QNANP), S_QNAN, 0);
    TF("fsqrt.s snan", FS1("fsqrt.s", RNE, S_SNAN), S_QNAN, NV);
    TF("fsqrt.s minsub", FS1("fsqrt.s", RNE, S_MINS), 0x1a3504f3, NX);
    TF("fsqrt.d -1", FD1("fsqrt.d", RNE, D_NONE), D_QNAN, NV);
    TF("fsqrt.d -0", FD1("fsqrt.d", RNE, D_NZERO), D_NZERO, 0);
    TF("fsqrt.d snan", FD1("fsqrt.d", RNE, D_SNAN), D_QNAN, NV);
    TF("fdiv.s 6/3", FS2("fdiv.s", RNE, 0x40c00000, S_THREE), S_TWO, 0);
    TF("fdiv.s -0/5", FS2("fdiv.s", RNE, S_NZERO, 0x40a00000), S_NZERO, 0);
    TF("fdiv.d 0/0", FD2("fdiv.d", RNE, D_ZERO, D_NZERO), D_QNAN, NV);
    TF("fdiv.d 1/3 rdn", FD2("fdiv.d", RDN, D_ONE, D_THREE), 0x3fd5555555555555UL, NX);
}

static void test_nan(void)
{
    section("NaN results");
    TF("fadd.s qnan payload -> canonical", FS2("fadd.s", RNE, S_QNANP, S_ONE), S_QNAN, 0);
    TF("fadd.s 1+qnan payload", FS2("fadd.s", RNE, S_ONE, 0x7fd00001), S_QNAN, 0);
    TF("fadd.s snan -> NV", FS2("fadd.s", RNE, S_SNAN, S_ONE), S_QNAN, NV);
    TF("fmul.s -qnan", FS2("fmul.s", RNE, S_NQNAN, S_TWO), S_QNAN, 0);
    TF("fsub.s snan,qnan", FS2("fsub.s", RNE, 0xff800123, S_QNANP), S_QNAN, NV);
    TF("fdiv.s qnan/0 (no DZ)", FS2("fdiv.s", RNE, S_QNAN, S_ZERO), S_QNAN, 0);
    TF("fadd.d qnan payload", FD2("fadd.d", RNE, D_QNANP, D_ONE), D_QNAN, 0);
    TF("fadd.d snan", FD2("fadd.d", RNE, D_SNAN, D_ONE), D_QNAN, NV);
    TF("fmul.d -qnan", FD2("fmul.d", RNE, 0xfff8000000001234UL, D_ONE), D_QNAN, 0);
    TF("fdiv.d snan", FD2("fdiv.d", RNE, D_ONE, 0xfff4000000000000UL), D_QNAN, NV);
}

static void test_minmax(void)
{
    section("fmin/fmax");
    TF("fmin.s +0,-0", FS2("fmin.s", "", S_ZERO, S_NZERO), S_NZERO, 0);
    TF("fmin.s -0,+0", FS2("fmin.s", "", S_NZERO, S_ZERO), S_NZERO, 0);
    TF("fmax.s +0,-0", FS2("fmax.s", "", S_ZERO, S_NZERO), S_ZERO, 0);
    TF("fmax.s -0,+0", FS2("fmax.s", "", S_NZERO, S_ZERO), S_ZERO, 0);
    TF("fmin.s -1,1", FS2("fmin.s", "", S_NONE, S_ONE), S_NONE, 0);
    TF("fmax.s -inf,max", FS2("fmax.s", "", S_NINF, S_MAX), S_MAX, 0);
    TF("fmin.s qnan,1", FS2("fmin.s", "", S_QNANP, S_ONE), S_ONE, 0);
    TF("fmin.s 1,qnan", FS2("fmin.s", "", S_ONE, S_QNAN), S_ONE, 0);
    TF("fmax.s qnan,-1", FS2("fmax.s", "", S_NQNAN, S_NONE), S_NONE, 0);
    TF("fmin.s snan,1", FS2("fmin.s", "", S_SNAN, S_ONE), S_ONE, NV);
    TF("fmax.s 1,snan", FS2("fmax.s", "", S_ONE, S_SNAN), S_ONE, NV);
    TF("fmin.s qnan,qnan", FS2("fmin.s", "", S_QNANP, S_QNANP), S_QNAN, 0);
    TF("fmax.s snan,qnan", FS2("fmax.s", "", S_SNAN, S_QNANP), S_QNAN, NV);
    TF("fmin.d +0,-0", FD2("fmin.d", "", D_ZERO, D_NZERO), D_NZERO, 0);
    TF("fmax.d -0,+0", FD2("fmax.d", "", D_NZERO, D_ZERO), D_ZERO, 0);
    TF("fmin.d qnan,2", FD2("fmin.d", "", D_QNANP, D_TWO), D_TWO, 0);
    TF("fmax.d snan,2", FD2("fmax.d", "", D_SNAN, D_TWO), D_TWO, NV);
    TF("fmax.d qnan,qnan", FD2("fmax.d", "", D_QNANP, D_QNAN), D_QNAN, 0);
    TF("fmin.d -inf,inf", FD2("fmin.d", "", D_NINF, D_INF), D_NINF, 0);
}

static void test_compare(void)
{
    section("compares");
    TF("feq.s 1,1", FSI2("feq.s", S_ONE, S_ONE), 1, 0);
    TF("feq.s +0,-0", FSI2("feq.s", S_ZERO, S_NZERO), 1, 0);
    TF("feq.s qnan", FSI2("feq.s", S_QNAN, S_ONE), 0, 0);
    TF("feq.s qnan,qnan", FSI2("feq.s", S_QNAN, S_QNAN), 0, 0);
    TF("feq.s snan", FSI2("feq.s", S_ONE, S_SNAN), 0, NV);
    TF("flt.s 1,2", FSI2("flt.s", S_ONE, S_TWO), 1, 0);
    TF("flt.s 2,1", FSI2("flt.s", S_TWO, S_ONE), 0, 0);
    TF("flt.s -0,+0", FSI2("flt.s", S_NZERO, S_ZERO), 0, 0);
    TF("flt.s -inf,inf", FSI2("flt.s", S_NINF, S_INF), 1, 0);
    TF("flt.s qnan", FSI2("flt.s", S_QNAN, S_ONE), 0, NV);
    TF("flt.s snan", FSI2("flt.s", S_SNAN, S_ONE), 0, NV);
    TF("fle.s 2,2", FSI2("fle.s", S_TWO, S_TWO), 1, 0);
    TF("fle.s -0,+0", FSI2("fle.s", S_NZERO, S_ZERO), 1, 0);
    TF("fle.s +0,-0", FSI2("fle.s", S_ZERO, S_NZERO), 1, 0);
    TF("fle.s 1,qnan", FSI2("fle.s", S_ONE, S_QNAN), 0, NV);
    TF("fle.s -1,-2", FSI2("fle.s", S_NONE, 0xc0000000), 0, 0);
    TF("feq.d 1,1", FDI2("feq.d", D_ONE, D_ONE), 1, 0);
    TF("feq.d qnan", FDI2("feq.d", D_QNAN, D_QNAN), 0, 0);
    TF("feq.d snan", FDI2("feq.d", D_SNAN, D_SNAN), 0, NV);
    TF("flt.d qnan", FDI2("flt.d", D_ONE, D_QNAN), 0, NV);
    TF("flt.d -1,min", FDI2("flt.d", D_NONE, D_MINS), 1, 0);
    TF("fle.d snan", FDI2("fle.d", D_SNAN, D_ONE), 0, NV);
    TF("fle.d -0,+0", FDI2("fle.d", D_NZERO, D_ZERO), 1, 0);
}

static void test_fclass(void)
{
    section("fclass");
    static const u64 s_in[] = { S_NINF, S_NONE, 0x80000001, S_NZERO, S_ZERO, S_MINS, S_ONE, S_INF,
                                S_SNAN, S_QNAN, 0x807fffff, 0x007fffff, S_MINN, 0xff800001, S_NQNAN, 0x7fffffff };
    static const u64 s_out[] = { 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7,
                                 1 << 8, 1 << 9, 1 << 2, 1 << 5, 1 << 6, 1 << 8, 1 << 9, 1 << 9 };
    static const u64 d_in[] = { D_NINF, D_NONE, 0x8000000000000001UL, D_NZERO, D_ZERO, D_MINS, D_ONE, D_INF,
                                D_SNAN, D_QNAN, 0x800fffffffffffffUL, D_MINN, 0xfff0000000000001UL, 0xfff8000000000000UL,
                                0x7ff7ffffffffffffUL };
    static const u64 d_out[] = { 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7,
                                 1 << 8, 1 << 9, 1 << 2, 1 << 6, 1 << 8, 1 << 9, 1 << 8 };
    for (unsigned i = 0; i < sizeof s_in / sizeof s_in[0]; i++)
        TF("fclass.s", FSI1("fclass.s", "", s_in[i]), s_out[i], 0);
    for (unsigned i = 0; i < sizeof d_in / sizeof d_in[0]; i++)
        TF("fclass.d", FDI1("fclass.d", "", d_in[i]), d_out[i], 0);
}

static void test_fma(void)
{
    section("fused multiply-add");
    /* a = 1 + 2^-12: a*a = 1 + 2^-11 + 2^-24 exactly; a separately rounded
     * product would lose the 2^-24 term. */
    const u64 a = 0x3f800800;
    TF("fmadd.s single rounding", FS3("fmadd.s", RNE, a, a, S_NONE), 0x3a000400, 0);
    TF("fmsub.s single rounding", FS3("fmsub.s", RNE, a, a, S_ONE), 0x3a000400, 0);
    TF("fnmsub.s single rounding", FS3("fnmsub.s", RNE, a, a, S_ONE), 0xba000400, 0);
    TF("fnmadd.s single rounding", FS3("fnmadd.s", RNE, a, a, S_NONE), 0xba000400, 0);
    TF("fmadd.s 2*3+4", FS3("fmadd.s", RNE, S_TWO, S_THREE, 0x40800000), 0x41200000, 0);
    TF("fmsub.s 2*3-4", FS3("fmsub.s", RNE, S_TWO, S_THREE, 0x40800000), S_TWO, 0);
    TF("fnmsub.s -(2*3)+4", FS3("fnmsub.s", RNE, S_TWO, S_THREE, 0x40800000), 0xc0000000, 0);
    TF("fnmadd.s -(2*3)-4", FS3("fnmadd.s", RNE, S_TWO, S_THREE, 0x40800000), 0xc1200000, 0);
    /* no intermediate overflow */
    TF("fmadd.s max*2-max", FS3("fmadd.s", RNE, S_MAX, S_TWO, S_NMAX), S_MAX, 0);
    /* rounding of the fused result */
    TF("fmadd.s 1*1+2^-24 rup", FS3("fmadd.s", RUP, S_ONE, S_ONE, 0x33800000), 0x3f800001, NX);
    TF("fmadd.s 1*1+2^-24 rne", FS3("fmadd.s", RNE, S_ONE, S_ONE, 0x33800000), S_ONE, NX);
    /* exact zero: sign depends on the rounding mode */
    TF("fmadd.s 1*0+-0 rne", FS3("fmadd.s", RNE, S_ONE, S_ZERO, S_NZERO), S_ZERO, 0);
    TF("fmadd.s 1*0+-0 rdn", FS3("fmadd.s", RDN, S_ONE, S_ZERO, S_NZERO), S_NZERO, 0);
    TF("fmadd.s 1*-0+-0", FS3("fmadd.s", RNE, S_ONE, S_NZERO, S_NZERO), S_NZERO, 0);
    TF("fnmadd.s 1*0+0 -> -0", FS3("fnmadd.s", RNE, S_ONE, S_ZERO, S_ZERO), S_NZERO, 0);
    /* invalid: inf*0 raises NV even with a quiet NaN addend */
    TF("fmadd.s inf*0+qnan", FS3("fmadd.s", RNE, S_INF, S_ZERO, S_QNANP), S_QNAN, NV);
    TF("fmadd.s 0*inf+1", FS3("fmadd.s", RNE, S_ZERO, S_INF, S_ONE), S_QNAN, NV);
    TF("fmadd.s inf*1-inf", FS3("fmadd.s", RNE, S_INF, S_ONE, S_NINF), S_QNAN, NV);
    TF("fmsub.s inf*1-inf", FS3("fmsub.s", RNE, S_INF, S_ONE, S_INF), S_QNAN, NV);
    TF("fmadd.s qnan*1+1", FS3("fmadd.s", RNE, S_QNANP, S_ONE, S_ONE), S_QNAN, 0);
    TF("fmadd.s 1*1+snan", FS3("fmadd.s", RNE, S_ONE, S_ONE, S_SNAN), S_QNAN, NV);
    TF("fmadd.s overflow", FS3("fmadd.s", RNE, S_MAX, S_MAX, S_ZERO), S_INF, OF | NX);
    /* double: a = 1 + 2^-27, a*a = 1 + 2^-26 + 2^-54 */
    const u64 b = 0x3ff0000002000000UL;
    TF("fmadd.d single rounding", FD3("fmadd.d", RNE, b, b, D_NONE), 0x3e50000001000000UL, 0);
    TF("fmsub.d single rounding", FD3("fmsub.d", RNE, b, b, D_ONE), 0x3e50000001000000UL, 0);
    TF("fnmsub.d single rounding", FD3("fnmsub.d", RNE, b, b, D_ONE), 0xbe50000001000000UL, 0);
    TF("fnmadd.d single rounding", FD3("fnmadd.d", RNE, b, b, D_NONE), 0xbe50000001000000UL, 0);
    TF("fmadd.d inf*0+qnan", FD3("fmadd.d", RNE, D_NINF, D_ZERO, D_QNANP), D_QNAN, NV);
    TF("fmadd.d 1*1+2^-53 rmm", FD3("fmadd.d", RMM, D_ONE, D_ONE, 0x3ca0000000000000UL), 0x3ff0000000000001UL, NX);
    TF("fmadd.d 1*1+2^-53 rne", FD3("fmadd.d", RNE, D_ONE, D_ONE, 0x3ca0000000000000UL), D_ONE, NX);
}

int main(void)
{
    println("fpu_arith: F/D arithmetic, rounding and flags");
    test_rounding_static();
    test_rounding_dynamic();
    test_flags();
    test_sqrt_div();
    test_nan();
    test_minmax();
    test_compare();
    test_fclass();
    test_fma();
    return finish();
}
