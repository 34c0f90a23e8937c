/* traps: exceptions taken into S-mode (privileged spec 12.1.1, 12.1.8,
 * 12.1.11, 3.3.2): ecall/ebreak/illegal from U and S, sret, access faults
 * where nothing answers, misaligned accesses, nested traps with the
 * sscratch stack swap. */
#include "lib.h"

#define NOTHING_LOW   0x800UL           /* below the boot ROM of QEMU's virt */
#define NOTHING_HIGH  0x90000000UL      /* above 64 MiB of RAM */
#define RAM_END_64M   0x84000000UL      /* the first byte past RAM */

/* ------------------------------------------------------------ U-mode code */
AFUNC(u_add1, "addi a0, a0, 1\nret");
AFUNC(u_ecall, "li a7, 1\nli t1, 0x1234\necall\nadd a0, a0, t1\nret");
AFUNC(u_ecall_only, "li a7, 1\necall\nret");
AFUNC(u_ebreak, "ebreak\nli a0, 7\nret");
AFUNC(u_csrr_sstatus, "csrr a0, sstatus\nret");
AFUNC(u_csrw_stvec, "csrw stvec, zero\nret");
AFUNC(u_csrr_satp, "csrr a0, satp\nret");
AFUNC(u_csrr_sip, "csrr a0, sip\nret");
AFUNC(u_csrw_sscratch, "csrw sscratch, a0\nret");
AFUNC(u_sret, "sret\nret");
AFUNC(u_sfence, "sfence.vma\nret");
AFUNC(u_custom0, ".word 0x0000000b\nret");
AFUNC(u_rdcycle, "rdcycle a0\nli a0, 1\nret");
AFUNC(u_rdtime, "rdtime a0\nli a0, 1\nret");
AFUNC(u_rdinstret, "rdinstret a0\nli a0, 1\nret");
AFUNC(u_load, "ld a0, 0(a0)\nret");
AFUNC(u_store, "sd zero, 0(a0)\nret");
AFUNC(u_jump, "mv t0, ra\njalr a0\nmv ra, t0\nret");  /* a fetch fault resumes at ra */
AFUNC(u_sp, "mv a0, sp\nret");

/* ------------------------------------------------------------ S-mode code */
AFUNC(s_ebreak, "ebreak\nret");
AFUNC(s_c_ebreak, ".option rvc\nc.ebreak\n.option norvc\nret");
AFUNC(s_load, "ld a0, 0(a0)\nret");
AFUNC(s_store, "sd a1, 0(a0)\nret");
AFUNC(s_jump, "jr a0");             /* ra still points at our caller */
AFUNC(sret_to_self,
      "la t0, 1f\n"
      "csrw sepc, t0\n"
      "li t0, 0x100\n"
      "csrs sstatus, t0\n"
      "sret\n"
      "1: ret");

static u64 illegal_stval_bits, illegal_stval_zero;

/* `quirk`: QEMU's OpenSBI emulates a U-mode rdtime that the hart traps,
 * without looking at scounteren.TM, so there the read succeeds. */
static void check_u_illegal_q(const char *name, void *fn, u64 arg, int quirk)
{
    trap_reset();
    run_user(fn, arg, 0);
    trap_off();
    if (rt_ref_quirks && quirk && g_trap.count == 0) {
        for (int i = 0; i < 5; i++)
            CHECK_TRUE(name, 1);
        return;
    }
    CHECK(name, g_trap.count, 1);
    CHECK(name, g_trap.cause, CAUSE_ILLEGAL);
    CHECK(name, g_trap.epc, (u64)fn);
    CHECK(name, g_trap.status & SSTATUS_SPP, 0);
    u32 insn = *(volatile u32 *)fn;
    CHECK_TRUE(name, g_trap.tval == insn || g_trap.tval == 0);
    if (g_trap.tval == insn)
        illegal_stval_bits++;
    else
        illegal_stval_zero++;
}

static void check_u_illegal(const char *name, void *fn, u64 arg)
{
    check_u_illegal_q(name, fn, arg, 0);
}

static void test_ecall(void)
{
    section("ecall from U");
    CHECK("U function runs and returns", run_user(u_add1, 41, 0), 42);
    CHECK("U stack is the one given", run_user(u_sp, 0, 0x80300000UL), 0x80300000UL);
    trap_reset();
    u64 r = run_user(u_ecall, 1, 0);
    trap_off();
    CHECK("ecall from U: one trap", g_trap.count, 1);
    CHECK("ecall from U: scause 8", g_trap.cause, CAUSE_ECALL_U);
    CHECK("ecall from U: sepc", g_trap.epc, (u64)u_ecall + 12);   /* li t1 is lui + addi */
    CHECK("ecall from U: stval 0", g_trap.tval, 0);
    CHECK("ecall from U: SPP = U", g_trap.status & SSTATUS_SPP, 0);
    CHECK("ecall from U: registers kept", r, 0x1235);
    CHECK("sscratch 0 back in S", csr_read(sscratch), 0);
}

static void test_u_illegal(void)
{
    section("U-mode privileged operations");
    check_u_illegal("U csrr sstatus", u_csrr_sstatus, 0);
    check_u_illegal("U csrw stvec", u_csrw_stvec, 0);
    check_u_illegal("U csrr satp", u_csrr_satp, 0);
    check_u_illegal("U csrr sip", u_csrr_sip, 0);
    check_u_illegal("U csrw sscratch", u_csrw_sscratch, 0x55);
    CHECK("sscratch untouched by U", csr_read(sscratch), 0);
    check_u_illegal("U sret", u_sret, 0);
    check_u_illegal("U sfence.vma", u_sfence, 0);
    check_u_illegal("U custom-0 opcode", u_custom0, 0);

    /* Counters in U are gated by scounteren (the firmware opens mcounteren). */
    u64 old = csr_read(scounteren);
    csr_write(scounteren, 0);
    check_u_illegal("U rdcycle, scounteren.CY = 0", u_rdcycle, 0);
    check_u_illegal_q("U rdtime, scounteren.TM = 0", u_rdtime, 0, 1);
    check_u_illegal("U rdinstret, scounteren.IR = 0", u_rdinstret, 0);
    csr_write(scounteren, 7);
    trap_reset();
    u64 ok = run_user(u_rdcycle, 0, 0) + run_user(u_rdtime, 0, 0) + run_user(u_rdinstret, 0, 0);
    trap_off();
    CHECK("U counters with scounteren = 7", ok, 3);
    CHECK("U counters with scounteren = 7: no trap", g_trap.count, 0);
    csr_write(scounteren, old);

    puts_("  illegal-instruction stval: ");
    println(illegal_stval_zero == 0 ? "the instruction bits" :
            illegal_stval_bits == 0 ? "zero" : "mixed");
}

static void test_breakpoint(void)
{
    section("breakpoint");
    trap_reset();
    CHECK("ebreak in U continues", run_user(u_ebreak, 0, 0), 7);
    trap_off();
    CHECK("U ebreak: scause 3", g_trap.cause, CAUSE_BREAKPOINT);
    CHECK("U ebreak: sepc", g_trap.epc, (u64)u_ebreak);
    CHECK_TRUE("U ebreak: stval is pc or 0", g_trap.tval == (u64)u_ebreak || g_trap.tval == 0);
    CHECK("U ebreak: SPP = U", g_trap.status & SSTATUS_SPP, 0);
    trap_reset();
    s_ebreak(0, 0, 0);
    trap_off();
    CHECK("S ebreak: scause 3", g_trap.cause, CAUSE_BREAKPOINT);
    CHECK("S ebreak: sepc", g_trap.epc, (u64)s_ebreak);
    CHECK("S ebreak: SPP = S", g_trap.status & SSTATUS_SPP, SSTATUS_SPP);
    trap_reset();
    s_c_ebreak(0, 0, 0);
    trap_off();
    CHECK("S c.ebreak: scause 3", g_trap.cause, CAUSE_BREAKPOINT);
    CHECK("S c.ebreak: sepc", g_trap.epc, (u64)s_c_ebreak);
    CHECK("S c.ebreak: skipped 2 bytes", g_trap.count, 1);
}

/* sret: SIE = SPIE, SPIE = 1, SPP = U, pc = sepc (12.1.1, 3.3.2); a trap:
 * SPIE = SIE, SIE = 0, SPP = the previous mode. */
static void test_sret(void)
{
    section("sret and trap entry state");
    csr_set(sstatus, SSTATUS_SPIE);
    trap_reset();
    run_user(u_ecall_only, 0, 0);
    trap_off();
    CHECK("U entered with SPIE = 1 runs with SIE = 1", g_trap.status & SSTATUS_SPIE, SSTATUS_SPIE);
    CHECK("trap from U: SIE = 0", g_trap.status & SSTATUS_SIE, 0);

    csr_clear(sstatus, SSTATUS_SPIE);
    trap_reset();
    run_user(u_ecall_only, 0, 0);
    trap_off();
    CHECK("U entered with SPIE = 0 runs with SIE = 0", g_trap.status & SSTATUS_SPIE, 0);

    csr_clear(sstatus, SSTATUS_SPIE | SSTATUS_SIE);
    sret_to_self(0, 0, 0);
    u64 s = csr_read(sstatus);
    CHECK("sret to S: SIE = old SPIE (0)", s & SSTATUS_SIE, 0);
    CHECK("sret to S: SPIE = 1", s & SSTATUS_SPIE, SSTATUS_SPIE);
    CHECK("sret to S: SPP = U", s & SSTATUS_SPP, 0);
    sret_to_self(0, 0, 0);
    s = csr_read(sstatus);
    CHECK("sret to S: SIE = old SPIE (1)", s & SSTATUS_SIE, SSTATUS_SIE);
    csr_clear(sstatus, SSTATUS_SIE);

    /* A trap from S with SIE = 1 records SPIE = 1, SPP = S; nothing is
     * pending since sie = 0. */
    csr_write(sie, 0);
    csr_set(sstatus, SSTATUS_SIE);
    trap_reset();
    s_ebreak(0, 0, 0);
    trap_off();
    s = csr_read(sstatus);
    CHECK("trap from S: SPIE = SIE (1)", g_trap.status & SSTATUS_SPIE, SSTATUS_SPIE);
    CHECK("trap from S: SIE = 0 in the handler", g_trap.status & SSTATUS_SIE, 0);
    CHECK("trap from S: SPP = S", g_trap.status & SSTATUS_SPP, SSTATUS_SPP);
    CHECK("sret from the handler: SIE back to 1", s & SSTATUS_SIE, SSTATUS_SIE);
    csr_clear(sstatus, SSTATUS_SIE);
}

static void check_fault(const char *name, u64 count, u64 cause, u64 tval, u64 want_cause, u64 addr)
{
    CHECK(name, count, 1);
    CHECK(name, cause, want_cause);
    CHECK(name, tval, addr);
}

static void test_access_faults(void)
{
    section("access faults");
    static const u64 addrs[] = { NOTHING_LOW, NOTHING_HIGH, RAM_END_64M };
    for (unsigned i = 0; i < 3; i++) {
        u64 a = addrs[i];
        trap_reset();
        s_load(a, 0, 0);
        trap_off();
        check_fault("S load, nothing there: scause 5", g_trap.count, g_trap.cause, g_trap.tval, CAUSE_LOAD_ACCESS, a);
        CHECK("S load fault: sepc", g_trap.epc, (u64)s_load);
        trap_reset();
        s_store(a + 8, 0x77, 0);
        trap_off();
        check_fault("S store, nothing there: scause 7", g_trap.count, g_trap.cause, g_trap.tval, CAUSE_STORE_ACCESS, a + 8);
        trap_reset();
        s_jump(a, 0, 0);
        trap_off();
        check_fault("S fetch, nothing there: scause 1", g_trap.count, g_trap.cause, g_trap.tval, CAUSE_FETCH_ACCESS, a);
        CHECK("S fetch fault: sepc = target", g_trap.epc, a);

        trap_reset();
        run_user(u_load, a + 16, 0);
        trap_off();
        check_fault("U load, nothing there: scause 5", g_trap.count, g_trap.cause, g_trap.tval, CAUSE_LOAD_ACCESS, a + 16);
        trap_reset();
        run_user(u_store, a, 0);
        trap_off();
        check_fault("U store, nothing there: scause 7", g_trap.count, g_trap.cause, g_trap.tval, CAUSE_STORE_ACCESS, a);
        trap_reset();
        run_user(u_jump, a, 0);
        trap_off();
        check_fault("U fetch, nothing there: scause 1", g_trap.count, g_trap.cause, g_trap.tval, CAUSE_FETCH_ACCESS, a);
        CHECK("U fetch fault: SPP = U", g_trap.status & SSTATUS_SPP, 0);
    }
}

/* Misaligned accesses: the platform may do them or raise 4/6 (the
 * firmware may also emulate them); either way the bytes must be right
 * when the access happened, and memory untouched when it trapped. */
static u8 buf[64] __attribute__((aligned(64)));

#define MIS_LOAD(insn, addr) ({ u64 v_ = 0xdead; \
        __asm__ volatile(NORVC(insn " %0, 0(%1)") : "+r"(v_) : "r"(addr) : "memory"); v_; })
#define MIS_STORE(insn, addr, val) \
        __asm__ volatile(NORVC(insn " %0, 0(%1)") :: "r"((u64)(val)), "r"(addr) : "memory")

static void fill_buf(void)
{
    for (int i = 0; i < 64; i++)
        buf[i] = (u8)(0x11 * (i & 15) + (i >> 4));
}

static u64 le(const u8 *p, int n)
{
    u64 v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void test_misaligned(void)
{
    section("misaligned accesses");
    static const struct { const char *name; int size; int sign; } loads[] = {
        { "lh", 2, 1 }, { "lhu", 2, 0 }, { "lw", 4, 1 }, { "lwu", 4, 0 }, { "ld", 8, 0 },
    };
    for (unsigned k = 0; k < 5; k++) {
        for (int off = 1; off < 8; off += 2) {
            fill_buf();
            u8 *p = buf + 8 + off;
            u64 want = le(p, loads[k].size);
            if (loads[k].sign && loads[k].size < 8 && (want >> (8 * loads[k].size - 1)) & 1)
                want |= ~0UL << (8 * loads[k].size);
            trap_reset();
            u64 got;
            switch (k) {
            case 0: got = MIS_LOAD("lh", p); break;
            case 1: got = MIS_LOAD("lhu", p); break;
            case 2: got = MIS_LOAD("lw", p); break;
            case 3: got = MIS_LOAD("lwu", p); break;
            default: got = MIS_LOAD("ld", p); break;
            }
            trap_off();
            int trapped = g_trap.count == 1 && g_trap.cause == CAUSE_MISALIGNED_LOAD && g_trap.tval == (u64)p;
            CHECK_TRUE(loads[k].name, trapped || (g_trap.count == 0 && got == want));
        }
    }
    static const struct { const char *name; int size; } stores[] = { { "sh", 2 }, { "sw", 4 }, { "sd", 8 } };
    for (unsigned k = 0; k < 3; k++) {
        for (int off = 1; off < 8; off += 2) {
            fill_buf();
            u8 before[64], want[64];
            memcpy(before, buf, 64);
            memcpy(want, buf, 64);
            u8 *p = buf + 16 + off;
            u64 val = 0xa1b2c3d4e5f60718UL;
            for (int i = 0; i < stores[k].size; i++)
                want[16 + off + i] = (u8)(val >> (8 * i));
            trap_reset();
            switch (k) {
            case 0: MIS_STORE("sh", p, val); break;
            case 1: MIS_STORE("sw", p, val); break;
            default: MIS_STORE("sd", p, val); break;
            }
            trap_off();
            int trapped = g_trap.count == 1 && g_trap.cause == CAUSE_MISALIGNED_STORE && g_trap.tval == (u64)p;
            CHECK_TRUE(stores[k].name, trapped ? memcmp(buf, before, 64) == 0
                                               : g_trap.count == 0 && memcmp(buf, want, 64) == 0);
        }
    }
}

/* A trap taken while handling one (12.1.11): the handler saves sepc,
 * scause, stval and sstatus first; the nested trap comes from S, so the
 * sscratch swap keeps it on the handler's stack. */
static struct {
    u64 depth, outer_sepc, outer_scause, sepc_after, scause_after, spp_after;
    u64 outer_sp_from_user, outer_frame, nested_frame, nested_sscratch;
} nest;

static int nested_hook(struct trap_frame *f)
{
    if (nest.depth > 0) {           /* the nested trap: an ebreak in S */
        nest.nested_frame = (u64)f;
        nest.nested_sscratch = csr_read(sscratch);
        nest.spp_after = f->status & SSTATUS_SPP;
        f->epc += 4;
        return 1;
    }
    if (f->cause != CAUSE_ECALL_U || f->x[17] != 2)
        return 0;
    nest.depth = 1;
    nest.outer_sepc = csr_read(sepc);
    nest.outer_scause = csr_read(scause);
    nest.outer_sp_from_user = f->x[2];
    nest.outer_frame = (u64)f;
    __asm__ volatile(NORVC("ebreak") ::: "memory");
    nest.sepc_after = csr_read(sepc);
    nest.scause_after = csr_read(scause);
    nest.depth = 0;
    f->x[10] += 100;
    f->epc += 4;                    /* from the saved sepc, not the CSR */
    return 1;
}

AFUNC(u_nest, "li a7, 2\nli s1, 0x5a5a\necall\nadd a0, a0, s1\nret");

static void test_nested(void)
{
    section("nested traps");
    g_trap.hook = nested_hook;
    u64 r = run_user(u_nest, 1, 0x80310000UL);
    g_trap.hook = 0;
    CHECK("outer trap: scause", nest.outer_scause, CAUSE_ECALL_U);
    CHECK("outer trap: sepc", nest.outer_sepc, (u64)u_nest + 12);
    CHECK("outer trap: U sp saved", nest.outer_sp_from_user, 0x80310000UL);
    CHECK("outer trap: frame on the kernel stack", nest.outer_frame < 0x80300000UL, 1);
    CHECK_TRUE("nested trap: sepc overwritten", nest.sepc_after != nest.outer_sepc);
    CHECK("nested trap: scause breakpoint", nest.scause_after, CAUSE_BREAKPOINT);
    CHECK("nested trap: SPP = S", nest.spp_after, SSTATUS_SPP);
    CHECK("nested trap: sscratch 0 inside", nest.nested_sscratch, 0);
    CHECK("nested trap: frame below the outer one", nest.nested_frame < nest.outer_frame, 1);
    CHECK("back in U after both, registers kept", r, 101 + 0x5a5a);
    CHECK("sscratch 0 afterwards", csr_read(sscratch), 0);
}

int main(void)
{
    begin("traps");
    csr_write(sstatus, SSTATUS_FS_INITIAL);
    test_ecall();
    test_u_illegal();
    test_breakpoint();
    test_sret();
    test_access_faults();
    test_misaligned();
    test_nested();
    return finish();
}
