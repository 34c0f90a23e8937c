/* Privileged architecture (M/S/U): CSR instruction semantics, misa and
 * mstatus fields, the sstatus view, ecall causes, mret/sret state changes,
 * illegal accesses from lower privilege, trap delegation, counter enables,
 * TW/TSR/TVM, WFI in U, and the illegal-instruction mtval.  (MPRV clearing
 * on xRET is in strict.c: QEMU 7.2 gets it wrong.) */
#include "asm.h"

#define SENT 0x5e57000000005e57UL   /* returned when the probed insn trapped */
#define MISA_EXPECTED 0x800000000014112dUL  /* RV64 IMAFDC S U */


AFUNC(x_ecall_here, "li a7, 0\n lla a0, 1f\n 1: ecall\n ret");
AFUNC(x_ebreak_here, "li a7, 0\n li a6, 0\n lla a0, 1f\n 1: ebreak\n ret");
AFUNC(x_illegal_6b, ".word 0x0000006b\n ret");
AFUNC(x_csrr_mstatus, "csrr a0, mstatus\n ret");
AFUNC(x_csrr_sstatus, "csrr a0, sstatus\n ret");
AFUNC(x_csrr_mscratch, "csrr a0, mscratch\n ret");
AFUNC(x_csrr_mhartid, "csrr a0, mhartid\n ret");
AFUNC(x_csrr_medeleg, "csrr a0, medeleg\n ret");
AFUNC(x_csrr_mcycle, "csrr a0, mcycle\n ret");
AFUNC(x_csrr_sscratch, "csrr a0, sscratch\n ret");
/* writes sscratch, reads it back, restores it (it holds the S trap stack) */
AFUNC(x_csrw_sscratch, "csrrw t0, sscratch, a0\n csrrw a0, sscratch, t0\n ret");
AFUNC(x_csrr_satp, "csrr a0, satp\n ret");
AFUNC(x_csrw_satp, "csrw satp, zero\n li a0, 1\n ret");
AFUNC(x_sfence, "sfence.vma\n li a0, 1\n ret");
AFUNC(x_sfence_args, "sfence.vma a1, a2\n li a0, 1\n ret");
AFUNC(x_mret, "mret\n ret");
AFUNC(x_sret, "sret\n ret");
AFUNC(x_rdcycle, "csrr a0, cycle\n ret");
AFUNC(x_rdinstret, "csrr a0, instret\n ret");
AFUNC(x_wfi_here, "lla a0, 1f\n 1: wfi\n ret");
AFUNC(x_csrr_hstatus, "csrr a0, 0x600\n ret");
/* sret inside S-mode with SPP=S, SPIE=1, SIE=0; returns sstatus after it */
AFUNC(s_sret_semantics,
      "li t0, (1 << 8) | (1 << 5)\n csrs sstatus, t0\n li t0, 2\n csrc sstatus, t0\n"
      "lla t0, 1f\n csrw sepc, t0\n sret\n"
      "1: csrr a0, sstatus\n li t0, 2\n csrc sstatus, t0\n ret");
/* mret inside M-mode with MPP=M, MPIE=1, MIE=0, MPRV=1; returns mstatus */
AFUNC(m_mret_semantics,
      "li t0, (3 << 11) | (1 << 7) | (1 << 17)\n csrs mstatus, t0\n li t0, 8\n csrc mstatus, t0\n"
      "lla t0, 1f\n csrw mepc, t0\n mret\n"
      "1: csrr a0, mstatus\n li t0, 8 | (1 << 17)\n csrc mstatus, t0\n ret");
/* S-mode: ecall (delegated), then report sstatus seen by the handler */
AFUNC(x_read_sstatus_after_ecall, "li a7, 0\n ecall\n csrr a0, sstatus\n ret");

static void test_csr_ops(void)
{
    section("csr instructions");
    u64 save = csr_read(mscratch), r;
    csr_write(mscratch, 0x0123456789abcdefUL);
    CHECK("csrrw old", csr_swap(mscratch, 0xfedcba9876543210UL), 0x0123456789abcdefUL);
    CHECK("csrrw new", csr_read(mscratch), 0xfedcba9876543210UL);
    CHECK("csrrs old", csr_set(mscratch, 0x0f), 0xfedcba9876543210UL);
    CHECK("csrrs new", csr_read(mscratch), 0xfedcba987654321fUL);
    CHECK("csrrc old", csr_clear(mscratch, 0xf000000000000001UL), 0xfedcba987654321fUL);
    CHECK("csrrc new", csr_read(mscratch), 0x0edcba987654321eUL);
    __asm__ volatile("csrrwi %0, mscratch, 31" : "=r"(r));
    CHECK("csrrwi old", r, 0x0edcba987654321eUL);
    CHECK("csrrwi new", csr_read(mscratch), 31);
    __asm__ volatile("csrrci %0, mscratch, 0x15" : "=r"(r));
    CHECK("csrrci old", r, 31);
    CHECK("csrrci new", csr_read(mscratch), 0x0a);
    __asm__ volatile("csrrsi %0, mscratch, 0x11" : "=r"(r));
    CHECK("csrrsi old", r, 0x0a);
    CHECK("csrrsi new", csr_read(mscratch), 0x1b);
    __asm__ volatile("csrrs %0, mscratch, x0" : "=r"(r));
    CHECK("csrrs x0 reads", r, 0x1b);
    CHECK("csrrs x0 no write", csr_read(mscratch), 0x1b);
    __asm__ volatile("csrrw x0, mscratch, %0" :: "r"(0x77UL));
    CHECK("csrrw rd=x0 writes", csr_read(mscratch), 0x77);
    __asm__ volatile("li t0, 5\n csrrw t0, mscratch, t0\n mv %0, t0" : "=r"(r) :: "t0");
    CHECK("csrrw rd==rs1 old", r, 0x77);
    CHECK("csrrw rd==rs1 new", csr_read(mscratch), 5);
    csr_write(mscratch, save);

    /* full-width scratch / trap CSRs */
    u64 ss = csr_read(sscratch);
    csr_write(sscratch, 0x8000000000000001UL);
    CHECK("sscratch", csr_read(sscratch), 0x8000000000000001UL);
    csr_write(sscratch, ss);
    csr_write(mtval, 0x80001234UL);
    CHECK("mtval holds address", csr_read(mtval), 0x80001234UL);
    csr_write(stval, 0xffffffffffffff00UL);
    CHECK("stval holds address", csr_read(stval), 0xffffffffffffff00UL);
    csr_write(mepc, 0x80000002UL);
    CHECK("mepc 2-aligned", csr_read(mepc), 0x80000002UL);
    csr_write(sepc, 0x80000006UL);
    CHECK("sepc 2-aligned", csr_read(sepc), 0x80000006UL);
    csr_write(scause, 0x8000000000000005UL);
    CHECK("scause", csr_read(scause), 0x8000000000000005UL);
    csr_write(mcause, 0xdUL);
    CHECK("mcause", csr_read(mcause), 0xd);

    /* read-only CSRs: reads are fine, writes are illegal */
    trap_reset(&mtrap);
    __asm__ volatile("csrrs %0, mhartid, x0" : "=r"(r));
    CHECK("csrrs ro x0 no trap", mtrap.log.count, 0);
    __asm__ volatile("csrrsi %0, mvendorid, 0" : "=r"(r));
    __asm__ volatile("csrrci %0, marchid, 0" : "=r"(r));
    CHECK("csrrsi/ci ro uimm=0 no trap", mtrap.log.count, 0);
    __asm__ volatile("csrrw %0, mhartid, %0" : "+r"(r));
    CHECK("csrrw mhartid illegal", mtrap.log.cause, CAUSE_ILLEGAL);
    trap_reset(&mtrap);
    __asm__ volatile("csrrsi %0, mimpid, 1" : "=r"(r));
    CHECK("csrrsi ro uimm!=0 illegal", mtrap.log.cause, CAUSE_ILLEGAL);
    trap_reset(&mtrap);
    __asm__ volatile("csrrwi x0, cycle, 0");
    CHECK("csrrwi cycle illegal", mtrap.log.cause, CAUSE_ILLEGAL);
    trap_reset(&mtrap);
    __asm__ volatile("csrrs %0, instret, %1" : "=r"(r) : "r"(1UL));
    CHECK("csrrs instret !=0 illegal", mtrap.log.cause, CAUSE_ILLEGAL);
    trap_reset(&mtrap);
    __asm__ volatile("csrr %0, 0x7c0" : "=r"(r));
    CHECK("unimplemented csr illegal", mtrap.log.cause, CAUSE_ILLEGAL);
    trap_reset(&mtrap);
    CHECK("hstatus (no H) illegal", x_csrr_hstatus(SENT, 0, 0), SENT);
    CHECK("hstatus cause", mtrap.log.cause, CAUSE_ILLEGAL);
    trap_off(&mtrap);
}

static void test_ids(void)
{
    section("misa/ids");
    u64 ms = csr_read(mstatus);
    CHECK("mstatus.UXL = 2", (ms >> 32) & 3, 2);
    CHECK("mstatus.SXL = 2", (ms >> 34) & 3, 2);
    CHECK("sstatus.UXL = 2", (csr_read(sstatus) >> 32) & 3, 2);
    CHECK("misa", csr_read(misa), MISA_EXPECTED);
    csr_write(misa, MISA_EXPECTED);
    CHECK("misa rewrite", csr_read(misa), MISA_EXPECTED);
    CHECK("mhartid", csr_read(mhartid), 0);
}

static void test_mstatus(void)
{
    section("mstatus fields");
    u64 save = csr_read(mstatus);
    static const struct { const char *name; u64 bit; } rw[] = {
        { "SIE", MSTATUS_SIE }, { "MIE", MSTATUS_MIE }, { "SPIE", MSTATUS_SPIE },
        { "MPIE", MSTATUS_MPIE }, { "SPP", MSTATUS_SPP }, { "MPRV", MSTATUS_MPRV },
        { "SUM", MSTATUS_SUM }, { "MXR", MSTATUS_MXR }, { "TVM", MSTATUS_TVM },
        { "TW", MSTATUS_TW }, { "TSR", MSTATUS_TSR },
    };
    /* make MPRV harmless while toggling: MPP = M */
    csr_set(mstatus, MSTATUS_MPP);
    for (unsigned i = 0; i < sizeof rw / sizeof rw[0]; i++) {
        csr_set(mstatus, rw[i].bit);
        CHECK(rw[i].name, csr_read(mstatus) & rw[i].bit, rw[i].bit);
        csr_clear(mstatus, rw[i].bit);
        CHECK(rw[i].name, csr_read(mstatus) & rw[i].bit, 0);
    }
    for (u64 mpp = 0; mpp <= 3; mpp += (mpp == 1 ? 2 : 1)) {
        csr_clear(mstatus, MSTATUS_MPP);
        csr_set(mstatus, mpp << 11);
        CHECK("MPP legal values", (csr_read(mstatus) >> 11) & 3, mpp);
    }
    csr_set(mstatus, MSTATUS_MPP);
    /* big-endian is not supported: UBE/SBE/MBE read-only zero */
    csr_set(mstatus, MSTATUS_UBE | MSTATUS_SBE | MSTATUS_MBE);
    CHECK("UBE/SBE/MBE zero", csr_read(mstatus) & (MSTATUS_UBE | MSTATUS_SBE | MSTATUS_MBE), 0);
    CHECK("XS zero", csr_read(mstatus) & MSTATUS_XS, 0);
    /* SD summarizes FS */
    csr_set(mstatus, MSTATUS_FS);
    CHECK("SD with FS dirty", csr_read(mstatus) >> 63, 1);
    csr_clear(mstatus, MSTATUS_FS);
    csr_set(mstatus, 1UL << 13);
    CHECK("SD with FS initial", csr_read(mstatus) >> 63, 0);
    csr_set(mstatus, MSTATUS_FS);

    /* sstatus is a restricted view of mstatus */
    const u64 mbits = MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MPRV |
                      MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR;
    csr_set(mstatus, mbits);
    CHECK("sstatus hides M fields", csr_read(sstatus) & mbits, 0);
    csr_clear(mstatus, mbits);
    u64 before = csr_read(mstatus);
    csr_set(sstatus, mbits);
    CHECK("sstatus write can't set M fields", csr_read(mstatus), before);
    csr_set(sstatus, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR);
    CHECK("sstatus sets S fields",
          csr_read(mstatus) & (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR),
          MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR);
    CHECK("sstatus reads S fields",
          csr_read(sstatus) & (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR),
          MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR);
    csr_clear(sstatus, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR);
    CHECK("sstatus clears S fields",
          csr_read(mstatus) & (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR), 0);
    csr_set(mstatus, MSTATUS_MIE);
    CHECK("sstatus.SIE independent of MIE", csr_read(sstatus) & MSTATUS_SIE, 0);
    csr_write(mstatus, save);
    CHECK("mstatus restored", csr_read(mstatus), save);
}

static void test_modes(void)
{
    section("ecall/mret/sret");
    u64 r;
    trap_reset(&mtrap);
    r = x_ecall_here(0, 0, 0);
    CHECK("M ecall cause", mtrap.log.cause, CAUSE_ECALL_M);
    CHECK("M ecall mepc", mtrap.log.epc, r);
    CHECK("M ecall MPP", mtrap.log.prev_priv, PRV_M);
    CHECK("M ecall mtval", mtrap.log.tval, 0);

    csr_set(mstatus, MSTATUS_MPIE);    /* S runs with MIE=1 */
    trap_reset(&mtrap);
    r = run_in_mode(PRV_S, x_ecall_here, 0, 0);
    CHECK("S ecall cause", mtrap.log.cause, CAUSE_ECALL_S);
    CHECK("S ecall mepc", mtrap.log.epc, r);
    CHECK("S ecall MPP", mtrap.log.prev_priv, PRV_S);
    CHECK("S ecall MPIE=old MIE (1)", mtrap.log.status & MSTATUS_MPIE, MSTATUS_MPIE);
    CHECK("S ecall MIE cleared", mtrap.log.status & MSTATUS_MIE, 0);
    CHECK("S ecall count", mtrap.log.count, 1);

    csr_clear(mstatus, MSTATUS_MPIE);  /* U runs with MIE=0 */
    trap_reset(&mtrap);
    r = run_in_mode(PRV_U, x_ecall_here, 0, 0);
    CHECK("U ecall cause", mtrap.log.cause, CAUSE_ECALL_U);
    CHECK("U ecall mepc", mtrap.log.epc, r);
    CHECK("U ecall MPP", mtrap.log.prev_priv, PRV_U);
    CHECK("U ecall MPIE=old MIE (0)", mtrap.log.status & MSTATUS_MPIE, 0);

    /* mret staying in M: MIE<-MPIE, MPIE<-1, MPP<-U, MPRV kept */
    r = m_mret_semantics(0, 0, 0);
    CHECK("mret MIE<-MPIE", r & MSTATUS_MIE, MSTATUS_MIE);
    CHECK("mret MPIE<-1", r & MSTATUS_MPIE, MSTATUS_MPIE);
    CHECK("mret MPP<-U", r & MSTATUS_MPP, 0);
    CHECK("mret to M keeps MPRV", r & MSTATUS_MPRV, MSTATUS_MPRV);
    CHECK("MIE/MPRV cleared again", csr_read(mstatus) & (MSTATUS_MIE | MSTATUS_MPRV), 0);

    /* ebreak from U */
    trap_reset(&mtrap);
    r = run_in_mode(PRV_U, x_ebreak_here, 0, 0);
    CHECK("U ebreak cause", mtrap.log.cause, CAUSE_BREAKPOINT);
    CHECK("U ebreak mepc", mtrap.log.epc, r);

    /* sret inside S: SIE<-SPIE, SPIE<-1, SPP<-U */
    r = run_in_mode(PRV_S, s_sret_semantics, 0, 0);
    CHECK("sret SIE<-SPIE", r & MSTATUS_SIE, MSTATUS_SIE);
    CHECK("sret SPIE<-1", r & MSTATUS_SPIE, MSTATUS_SPIE);
    CHECK("sret SPP<-U", r & MSTATUS_SPP, 0);
    /* sret executed in M-mode */
    csr_clear(mstatus, MSTATUS_SPIE);
    csr_set(mstatus, MSTATUS_SIE);
    trap_reset(&mtrap);
    run_via_sret(PRV_S, x_ecall_here, 0, 0);
    CHECK("sret from M to S", mtrap.log.cause, CAUSE_ECALL_S);
    CHECK("sret from M: SPP<-U", csr_read(mstatus) & MSTATUS_SPP, 0);
    CHECK("sret from M: SPIE<-1", csr_read(mstatus) & MSTATUS_SPIE, MSTATUS_SPIE);
    CHECK("sret from M: SIE<-SPIE(0)", csr_read(mstatus) & MSTATUS_SIE, 0);
    trap_reset(&mtrap);
    run_via_sret(PRV_U, x_ecall_here, 0, 0);
    CHECK("sret from M to U", mtrap.log.cause, CAUSE_ECALL_U);
    csr_clear(mstatus, MSTATUS_SPIE);
    trap_off(&mtrap);
}

/* run fn in `mode` expecting one illegal-instruction trap to M */
static void expect_illegal(const char *name, u64 mode, u64 (*fn)(u64, u64, u64))
{
    trap_reset(&mtrap);
    run_in_mode(mode, (void *)fn, SENT, 0);
    u64 got = mtrap.log.count == 1 && mtrap.log.cause == CAUSE_ILLEGAL && mtrap.log.prev_priv == mode;
    if (!check_eq(name, got, 1)) {
        puts_("  (traps ");
        print_udec(mtrap.log.count);
        puts_(", cause ");
        print_hex(mtrap.log.cause);
        puts_(", from ");
        print_udec(mtrap.log.prev_priv);
        puts_(", epc ");
        print_hex(mtrap.log.epc);
        println(")");
    }
    trap_off(&mtrap);
}

static void expect_ok(const char *name, u64 mode, u64 (*fn)(u64, u64, u64))
{
    trap_reset(&mtrap);
    run_in_mode(mode, (void *)fn, SENT, 0);
    check_eq(name, mtrap.log.count, 0);
    trap_off(&mtrap);
}

static void test_lower_priv(void)
{
    section("illegal from lower privilege");
    expect_illegal("U csrr mstatus", PRV_U, x_csrr_mstatus);
    expect_illegal("U csrr sstatus", PRV_U, x_csrr_sstatus);
    expect_illegal("U csrr sscratch", PRV_U, x_csrr_sscratch);
    expect_illegal("U csrr satp", PRV_U, x_csrr_satp);
    expect_illegal("U csrr mhartid", PRV_U, x_csrr_mhartid);
    expect_illegal("U mret", PRV_U, x_mret);
    expect_illegal("U sret", PRV_U, x_sret);
    expect_illegal("U sfence.vma", PRV_U, x_sfence);
    expect_illegal("S csrr mstatus", PRV_S, x_csrr_mstatus);
    expect_illegal("S csrr mscratch", PRV_S, x_csrr_mscratch);
    expect_illegal("S csrr mhartid", PRV_S, x_csrr_mhartid);
    expect_illegal("S csrr medeleg", PRV_S, x_csrr_medeleg);
    expect_illegal("S csrr mcycle", PRV_S, x_csrr_mcycle);
    expect_illegal("S mret", PRV_S, x_mret);
    expect_ok("S csrr sstatus", PRV_S, x_csrr_sstatus);
    expect_ok("S csrr sscratch", PRV_S, x_csrr_sscratch);
    trap_reset(&mtrap);
    CHECK("S csrw sscratch", run_in_mode(PRV_S, x_csrw_sscratch, 0x1234, 0), 0x1234);
    CHECK("S csrw sscratch no trap", mtrap.log.count, 0);
    /* mtval of an illegal instruction: 0 or the instruction bits */
    trap_reset(&mtrap);
    run_in_mode(PRV_U, x_mret, SENT, 0);
    CHECK("U mret mtval", mtrap.log.tval == 0 || mtrap.log.tval == 0x30200073, 1);
    trap_reset(&mtrap);
    run_in_mode(PRV_S, x_csrr_mstatus, SENT, 0);
    CHECK("S csrr mstatus mtval", mtrap.log.tval == 0 || mtrap.log.tval == 0x30002573, 1);
    trap_off(&mtrap);
}

static void test_delegation(void)
{
    section("delegation");
    u64 r;
    csr_write(mideleg, -1L);
    CHECK("mideleg S bits writable", csr_read(mideleg) & 0x222, 0x222);
    CHECK("mideleg M bits zero", csr_read(mideleg) & 0x888, 0);
    csr_write(mideleg, 0);
    CHECK("mideleg cleared", csr_read(mideleg), 0);
    const u64 ed = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) |
                   (1 << 8) | (1 << 9) | (1 << 12) | (1 << 13) | (1 << 15);
    csr_write(medeleg, ed);
    CHECK("medeleg writable bits", csr_read(medeleg) & ed, ed);
    csr_write(medeleg, 0);
    CHECK("medeleg cleared", csr_read(medeleg), 0);

    csr_write(stvec, (u64)trap_entry_s);
    /* U ecall delegated to S */
    csr_write(medeleg, 1 << CAUSE_ECALL_U);
    csr_set(mstatus, MSTATUS_SIE);
    trap_reset(&strap);
    trap_off(&mtrap);
    r = run_in_mode(PRV_U, x_ecall_here, 0, 0);
    CHECK("deleg U ecall count", strap.log.count, 1);
    CHECK("deleg U ecall scause", strap.log.cause, CAUSE_ECALL_U);
    CHECK("deleg U ecall sepc", strap.log.epc, r);
    CHECK("deleg U ecall stval", strap.log.tval, 0);
    CHECK("deleg U ecall SPP", strap.log.prev_priv, PRV_U);
    CHECK("deleg U ecall SPIE<-SIE", strap.log.status & MSTATUS_SPIE, MSTATUS_SPIE);
    CHECK("deleg U ecall SIE cleared", strap.log.status & MSTATUS_SIE, 0);
    CHECK("scause CSR", csr_read(scause), CAUSE_ECALL_U);   /* MAGIC return left it */
    csr_clear(mstatus, MSTATUS_SIE | MSTATUS_SPIE);

    /* illegal instruction from U delegated */
    csr_write(medeleg, 1 << CAUSE_ILLEGAL);
    trap_reset(&strap);
    r = run_in_mode(PRV_U, x_illegal_6b, SENT, 0);
    CHECK("deleg illegal count", strap.log.count, 1);
    CHECK("deleg illegal scause", strap.log.cause, CAUSE_ILLEGAL);
    CHECK("deleg illegal stval", strap.log.tval == 0 || strap.log.tval == 0x6b, 1);
    CHECK("deleg illegal resumed", r, SENT);
    /* ... but the same exception in M-mode is not delegated */
    trap_reset(&mtrap);
    r = x_illegal_6b(SENT, 0, 0);
    CHECK("M illegal stays in M", mtrap.log.count, 1);
    CHECK("M illegal cause", mtrap.log.cause, CAUSE_ILLEGAL);
    CHECK("M illegal mtval", mtrap.log.tval == 0 || mtrap.log.tval == 0x6b, 1);
    CHECK("M illegal: S handler not used", strap.log.count, 1);
    trap_off(&mtrap);

    /* breakpoint in S delegated to S (S -> S trap) */
    csr_write(medeleg, 1 << CAUSE_BREAKPOINT);
    trap_reset(&strap);
    r = run_in_mode(PRV_S, x_ebreak_here, 0, 0);
    CHECK("deleg S ebreak scause", strap.log.cause, CAUSE_BREAKPOINT);
    CHECK("deleg S ebreak sepc", strap.log.epc, r);
    CHECK("deleg S ebreak SPP", strap.log.prev_priv, PRV_S);

    /* ecall from S delegated to S; stvec in vectored mode: exceptions
     * still go to the base address */
    csr_write(medeleg, 1 << CAUSE_ECALL_S);
    csr_write(stvec, (u64)trap_entry_s | 1);
    CHECK("stvec vectored mode reads back", csr_read(stvec), (u64)trap_entry_s | 1);
    trap_reset(&strap);
    r = run_in_mode(PRV_S, x_ecall_here, 0, 0);
    CHECK("deleg S ecall scause", strap.log.cause, CAUSE_ECALL_S);
    CHECK("deleg S ecall sepc", strap.log.epc, r);
    CHECK("deleg S ecall count", strap.log.count, 1);
    csr_write(stvec, (u64)trap_entry_s);

    /* not delegated: U ecall goes to M even with other bits set */
    csr_write(medeleg, (1 << CAUSE_ECALL_S) | (1 << CAUSE_ILLEGAL));
    trap_reset(&strap);
    trap_reset(&mtrap);
    run_in_mode(PRV_U, x_ecall_here, 0, 0);
    CHECK("undelegated U ecall -> M", mtrap.log.cause, CAUSE_ECALL_U);
    CHECK("undelegated: S handler unused", strap.log.count, 0);
    csr_write(medeleg, 0);
    trap_off(&mtrap);
    trap_off(&strap);
}

static void test_counteren(void)
{
    section("counter enables");
    const u64 CY = 1, IR = 4;
    csr_write(mcounteren, 0);
    csr_write(scounteren, 0);
    expect_illegal("S cycle, mcounteren.CY=0", PRV_S, x_rdcycle);
    expect_illegal("S instret, mcounteren.IR=0", PRV_S, x_rdinstret);
    expect_illegal("U cycle, both 0", PRV_U, x_rdcycle);
    csr_write(mcounteren, CY | IR);
    CHECK("mcounteren reads", csr_read(mcounteren) & (CY | IR), CY | IR);
    expect_ok("S cycle, mcounteren.CY=1", PRV_S, x_rdcycle);
    expect_ok("S instret, mcounteren.IR=1", PRV_S, x_rdinstret);
    expect_illegal("U cycle, scounteren.CY=0", PRV_U, x_rdcycle);
    csr_write(scounteren, CY);
    CHECK("scounteren reads", csr_read(scounteren) & (CY | IR), CY);
    expect_ok("U cycle, both set", PRV_U, x_rdcycle);
    expect_illegal("U instret, scounteren.IR=0", PRV_U, x_rdinstret);
    csr_write(mcounteren, IR);
    csr_write(scounteren, CY | IR);
    expect_illegal("U cycle, mcounteren.CY=0", PRV_U, x_rdcycle);
    expect_ok("U instret, both set", PRV_U, x_rdinstret);
    csr_write(mcounteren, 0);
    csr_write(scounteren, 0);
    /* M-mode is never gated */
    trap_reset(&mtrap);
    x_rdcycle(0, 0, 0);
    x_rdinstret(0, 0, 0);
    CHECK("M reads counters", mtrap.log.count, 0);
    trap_off(&mtrap);
}

static void test_tw_tsr_tvm(void)
{
    section("TW/TSR/TVM");
    u64 r;
    /* a trapping WFI reports its own address in mepc */
    csr_set(mstatus, MSTATUS_TW);
    trap_reset(&mtrap);
    r = run_in_mode(PRV_S, x_wfi_here, 0, 0);
    CHECK("TW=1: S wfi illegal", mtrap.log.cause, CAUSE_ILLEGAL);
    CHECK("TW=1: S wfi count", mtrap.log.count, 1);
    CHECK("TW=1: mepc = wfi", mtrap.log.epc, r);
    CHECK("TW=1: mtval", mtrap.log.tval == 0 || mtrap.log.tval == 0x10500073, 1);
    csr_clear(mstatus, MSTATUS_TW);
    /* with S-mode present, WFI in U is illegal (TW=0) */
    trap_reset(&mtrap);
    r = run_in_mode(PRV_U, x_wfi_here, 0, 0);
    CHECK("U wfi illegal", mtrap.log.cause, CAUSE_ILLEGAL);
    CHECK("U wfi count", mtrap.log.count, 1);
    CHECK("U wfi mepc = wfi", mtrap.log.epc, r);
    trap_off(&mtrap);

    csr_set(mstatus, MSTATUS_TSR);
    expect_illegal("TSR=1: S sret", PRV_S, x_sret);
    csr_clear(mstatus, MSTATUS_TSR);
    r = run_in_mode(PRV_S, s_sret_semantics, 0, 0);
    CHECK("TSR=0: S sret works", r & MSTATUS_SIE, MSTATUS_SIE);

    csr_set(mstatus, MSTATUS_TVM);
    expect_illegal("TVM=1: S csrr satp", PRV_S, x_csrr_satp);
    expect_illegal("TVM=1: S csrw satp", PRV_S, x_csrw_satp);
    expect_illegal("TVM=1: S sfence.vma", PRV_S, x_sfence);
    expect_illegal("TVM=1: S sfence.vma rs1,rs2", PRV_S, x_sfence_args);
    trap_reset(&mtrap);
    CHECK("TVM=1: M csrr satp", csr_read(satp), 0);
    __asm__ volatile("sfence.vma" ::: "memory");
    CHECK("TVM=1: M unaffected", mtrap.log.count, 0);
    trap_off(&mtrap);
    csr_clear(mstatus, MSTATUS_TVM);
    expect_ok("TVM=0: S csrr satp", PRV_S, x_csrr_satp);
    expect_ok("TVM=0: S sfence.vma", PRV_S, x_sfence);
}

static void test_illegal_mtval(void)
{
    section("illegal instruction mtval");
    static const u32 insns[] = {
        0xc0001073,     /* csrrw x0, cycle, x0 (write to read-only) */
        0x0000006b,     /* reserved major opcode */
        0x30200073 | (1 << 15),     /* mret with rs1 != 0 */
        0x00000073 | (5 << 20) | (1 << 7),  /* SYSTEM funct3=0, unknown imm */
        0x7c002573,     /* csrr a0, 0x7c0 (unimplemented) */
    };
    static u32 slot[2] __attribute__((aligned(8)));
    for (unsigned i = 0; i < sizeof insns / sizeof insns[0]; i++) {
        slot[0] = insns[i];
        slot[1] = 0x00008067;   /* ret */
        __asm__ volatile("fence.i" ::: "memory");
        trap_reset(&mtrap);
        ((void (*)(void))(void *)slot)();
        CHECK("illegal insn cause", mtrap.log.cause, CAUSE_ILLEGAL);
        CHECK("illegal insn mepc", mtrap.log.epc, (u64)slot);
        CHECK("illegal insn mtval (0 or bits)", mtrap.log.tval == 0 || mtrap.log.tval == insns[i], 1);
    }
    trap_off(&mtrap);
}

int main(void)
{
    println("priv: M/S/U privileged architecture");
    test_ids();
    test_csr_ops();
    test_mstatus();
    test_modes();
    test_lower_priv();
    test_delegation();
    test_counteren();
    test_tw_tsr_tvm();
    test_illegal_mtval();
    return finish();
}
