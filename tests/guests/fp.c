/* fp: floating point from S-mode and U-mode under sstatus.FS (privileged
 * spec 3.1.6.6): with FS = Off every F/D instruction and fcsr access is
 * illegal; otherwise they work, and a write to FP state makes FS Dirty
 * (with SD = 1).  The FP registers survive FS = Off. */
#include "lib.h"

#define FS_OF(s) (((s) & SSTATUS_FS) >> 13)

static void set_fs(u64 fs)
{
    csr_clear(sstatus, SSTATUS_FS);
    csr_set(sstatus, fs << 13);
}

static u64 fs_now(void) { return FS_OF(csr_read(sstatus)); }

static u64 stval_bits, stval_zero;

static void check_illegal(const char *name)
{
    trap_off();
    CHECK(name, g_trap.count, 1);
    CHECK(name, g_trap.cause, CAUSE_ILLEGAL);
    u32 insn = *(volatile u32 *)g_trap.epc;
    CHECK_TRUE(name, g_trap.tval == insn || g_trap.tval == 0);
    if (g_trap.tval == insn)
        stval_bits++;
    else
        stval_zero++;
}

#define EXPECT_ILLEGAL(name, insn) do { \
        trap_reset(); \
        __asm__ volatile(NORVC(insn) ::: "memory", "t0", "ft0", "ft1"); \
        check_illegal(name); \
    } while (0)

/* A compressed instruction: stval holds its 16 bits (upper bits zero), or 0. */
#define EXPECT_ILLEGAL_C(name, insn) do { \
        trap_reset(); \
        __asm__ volatile(".option push\n.option rvc\n" insn "\n.option pop" ::: "memory", "ft0"); \
        trap_off(); \
        CHECK(name, g_trap.count, 1); \
        CHECK(name, g_trap.cause, CAUSE_ILLEGAL); \
        u16 c_ = *(volatile u16 *)g_trap.epc; \
        CHECK_TRUE(name, (c_ & 3) != 3 && (g_trap.tval == c_ || g_trap.tval == 0)); \
    } while (0)

static volatile double dmem = 1.5;
static volatile float smem = 2.25f;

static u64 fadd_d(u64 a, u64 b)
{
    u64 r;
    __asm__ volatile(NORVC("fmv.d.x ft0, %1\nfmv.d.x ft1, %2\nfadd.d ft0, ft0, ft1\nfmv.x.d %0, ft0")
                     : "=r"(r) : "r"(a), "r"(b) : "ft0", "ft1");
    return r;
}

static void test_off(void)
{
    section("FS = Off");
    set_fs(0);
    u64 s = csr_read(sstatus);
    CHECK("FS reads Off", FS_OF(s), 0);
    CHECK("SD clear with FS = Off", s >> 63, 0);
    EXPECT_ILLEGAL("fadd.d", "fadd.d ft0, ft0, ft1");
    EXPECT_ILLEGAL("fadd.s", "fadd.s ft0, ft0, ft1");
    EXPECT_ILLEGAL("fmv.d.x", "fmv.d.x ft0, zero");
    EXPECT_ILLEGAL("fmv.x.d", "fmv.x.d t0, ft0");
    EXPECT_ILLEGAL("fcvt.d.l", "fcvt.d.l ft0, zero");
    EXPECT_ILLEGAL("fmadd.d", "fmadd.d ft0, ft0, ft1, ft0");
    EXPECT_ILLEGAL("fsgnj.d (fmv.d)", "fmv.d ft0, ft1");
    EXPECT_ILLEGAL("fld", "la t0, dmem\nfld ft0, 0(t0)");
    EXPECT_ILLEGAL("fsd", "la t0, dmem\nfsd ft0, 0(t0)");
    EXPECT_ILLEGAL("flw", "la t0, smem\nflw ft0, 0(t0)");
    EXPECT_ILLEGAL("csrr fcsr", "csrr t0, fcsr");
    EXPECT_ILLEGAL("csrw frm", "csrwi frm, 1");
    EXPECT_ILLEGAL("csrr fflags", "csrr t0, fflags");
    EXPECT_ILLEGAL_C("c.fldsp", "c.fldsp ft0, 0(sp)");
    EXPECT_ILLEGAL_C("c.fsdsp", "c.fsdsp ft0, 8(sp)");
    CHECK("FS still Off after the traps", fs_now(), 0);
}

static void test_on(void)
{
    section("FS = Initial, Clean, Dirty");
    set_fs(1);
    CHECK("FS reads Initial", fs_now(), 1);
    CHECK("SD clear with FS = Initial", csr_read(sstatus) >> 63, 0);
    trap_reset();
    u64 r = fadd_d(0x3ff8000000000000UL, 0x4000000000000000UL);      /* 1.5 + 2.0 */
    trap_off();
    CHECK("fadd.d works with FS = Initial", r, 0x400c000000000000UL);     /* 3.5 */
    CHECK("no trap", g_trap.count, 0);
    u64 s = csr_read(sstatus);
    CHECK("FS Dirty after an FP write", FS_OF(s), 3);
    CHECK("SD set with FS = Dirty", s >> 63, 1);

    set_fs(2);
    CHECK("FS reads Clean", fs_now(), 2);
    r = fadd_d(0x3ff0000000000000UL, 0x3ff0000000000000UL);
    CHECK("fadd.d works with FS = Clean", r, 0x4000000000000000UL);
    CHECK("Clean -> Dirty after an FP write", fs_now(), 3);

    set_fs(1);
    csr_write(fcsr, 0);
    CHECK("csrw fcsr makes FS Dirty", fs_now(), 3);
    set_fs(1);
    double d = dmem;
    __asm__ volatile("fld ft0, %0" :: "m"(dmem) : "ft0");
    CHECK("fld makes FS Dirty", fs_now(), 3);
    (void)d;

    /* fflags: division by zero raises DZ. */
    set_fs(1);
    csr_write(fflags, 0);
    u64 one = 0x3ff0000000000000UL, zero = 0;
    __asm__ volatile("fmv.d.x ft0, %0\nfmv.d.x ft1, %1\nfdiv.d ft0, ft0, ft1" :: "r"(one), "r"(zero) : "ft0", "ft1");
    CHECK("fdiv.d by zero sets fflags.DZ", csr_read(fflags), 0x08);
    csr_write(frm, 3);
    CHECK("frm holds RUP", csr_read(frm), 3);
    CHECK("fcsr = frm << 5 | fflags", csr_read(fcsr), (3 << 5) | 0x08);
    csr_write(fcsr, 0);
}

static void test_preserved(void)
{
    section("FP state across FS = Off");
    set_fs(1);
    u64 v = 0x400921fb54442d18UL;       /* pi */
    __asm__ volatile("fmv.d.x fs1, %0" :: "r"(v) : "fs1");
    csr_write(fflags, 0x1);
    set_fs(0);
    EXPECT_ILLEGAL("fmv.x.d with FS = Off", "fmv.x.d t0, ft0");
    set_fs(2);
    u64 back;
    __asm__ volatile("fmv.x.d %0, fs1" : "=r"(back));
    CHECK("FP register kept while Off", back, v);
    CHECK("fflags kept while Off", csr_read(fflags), 0x1);
    csr_write(fflags, 0);
}

AFUNC(u_fadd, "fmv.d.x ft0, a0\nfadd.d ft0, ft0, ft0\nfmv.x.d a0, ft0\nret");
AFUNC(u_fadd_ecall, "fmv.d.x ft0, a0\nfadd.d ft0, ft0, ft0\nli a7, 1\necall\nret");

static void test_user(void)
{
    section("FP in U-mode");
    set_fs(0);
    trap_reset();
    run_user(u_fadd, 0x3ff0000000000000UL, 0);
    trap_off();
    CHECK("U FP with FS = Off: each FP instruction traps", g_trap.count, 3);
    CHECK("U FP with FS = Off: illegal instruction", g_trap.causes[0], CAUSE_ILLEGAL);
    CHECK("U FP with FS = Off: sepc", g_trap.epcs[0], (u64)u_fadd);
    set_fs(1);
    trap_reset();
    u64 r = run_user(u_fadd, 0x3ff0000000000000UL, 0);
    trap_off();
    CHECK("U FP with FS = Initial works", r, 0x4000000000000000UL);
    CHECK("U FP: no trap", g_trap.count, 0);
    /* run_user restores sstatus as it was at the call, so look at FS from
     * inside: a trap from U shows it. */
    set_fs(1);
    trap_reset();
    run_user(u_fadd_ecall, 0x3ff0000000000000UL, 0);
    trap_off();
    CHECK("U ecall after FP: one trap", g_trap.count, 1);
    CHECK("FS Dirty after an FP write in U", FS_OF(g_trap.status), 3);
}

int main(void)
{
    begin("fp");
    test_off();
    test_on();
    test_preserved();
    test_user();
    puts_("  illegal-instruction stval: ");
    println(stval_zero == 0 ? "the instruction bits" : stval_bits == 0 ? "zero" : "mixed");
    set_fs(1);
    return finish();
}
