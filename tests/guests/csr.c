/* csr: S-mode CSR semantics as a supervisor sees them (privileged spec
 * chapter 12 "Supervisor-Level ISA", 2 "CSR Instructions"/"Field
 * Specifications"), run at S-mode on top of SBI firmware. */
#include "lib.h"
#define VM_POOL_PAGES 4
#include "vm.h"

#define S_FIELDS (SSTATUS_SIE | SSTATUS_SPIE | SSTATUS_SPP | SSTATUS_FS | SSTATUS_SUM | SSTATUS_MXR)
#define UXL_64   (2UL << 32)

/* An instruction that must raise illegal instruction: scause 2, sepc at
 * the instruction, stval either 0 or the instruction's bits (both are
 * allowed, 12.1.11). */
static void check_illegal(const char *name, u64 count, u64 cause, u64 epc, u64 tval)
{
    u32 insn = *(volatile u32 *)epc;
    CHECK(name, count, 1);
    CHECK(name, cause, CAUSE_ILLEGAL);
    CHECK_TRUE(name, tval == 0 || tval == insn);
}

#define EXPECT_ILLEGAL(name, asm_insn) do { \
        trap_reset(); \
        __asm__ volatile(NORVC(asm_insn) ::: "memory", "t0"); \
        trap_off(); \
        check_illegal(name, g_trap.count, g_trap.cause, g_trap.epc, g_trap.tval); \
    } while (0)

#define EXPECT_NO_TRAP(name, asm_insn) do { \
        trap_reset(); \
        __asm__ volatile(NORVC(asm_insn) ::: "memory", "t0"); \
        trap_off(); \
        CHECK(name, g_trap.count, 0); \
    } while (0)

/* sret back into S-mode at the next instruction: proves sret works (TSR is
 * clear) and sets SIE from SPIE. */
AFUNC(sret_to_self,
      "la t0, 1f\n"
      "csrw sepc, t0\n"
      "li t0, 0x100\n"            /* SPP = S */
      "csrs sstatus, t0\n"
      "sret\n"
      "1: ret");

static void test_sstatus(void)
{
    section("sstatus");
    u64 s = csr_read(sstatus);
    CHECK("sstatus.UXL is 64-bit", s & SSTATUS_UXL, UXL_64);
    CHECK("sstatus.SIE clear at entry", s & SSTATUS_SIE, 0);

    static const struct { const char *name; u64 bit; } bits[] = {
        { "sstatus.SIE", SSTATUS_SIE }, { "sstatus.SPIE", SSTATUS_SPIE },
        { "sstatus.SPP", SSTATUS_SPP }, { "sstatus.SUM", SSTATUS_SUM },
        { "sstatus.MXR", SSTATUS_MXR },
    };
    for (unsigned i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        csr_clear(sstatus, bits[i].bit);
        csr_set(sstatus, bits[i].bit);
        CHECK(bits[i].name, csr_read(sstatus) & bits[i].bit, bits[i].bit);
        csr_clear(sstatus, bits[i].bit);
        CHECK(bits[i].name, csr_read(sstatus) & bits[i].bit, 0);
    }

    /* FS: all four states are held; SD summarizes FS == Dirty. */
    for (u64 fs = 0; fs < 4; fs++) {
        csr_clear(sstatus, SSTATUS_FS);
        csr_set(sstatus, fs << 13);
        u64 v = csr_read(sstatus);
        CHECK("sstatus.FS holds its value", (v & SSTATUS_FS) >> 13, fs);
        CHECK("sstatus.SD = (FS == Dirty)", v >> 63, fs == 3);
    }

    /* Writing every bit sets only the supervisor's fields: UBE, VS, XS are
     * read-only zero here, UXL stays 64-bit, SD follows FS. */
    /* QEMU 7.2 lets UXL take the reserved value 3 (a WARL field must read
     * legal) and keeps VS writable without V (allowed by 3.1.6.6). */
    csr_write(sstatus, ~0UL);
    u64 v = csr_read(sstatus);
    CHECK_Q("sstatus after writing all ones", v, S_FIELDS | UXL_64 | SSTATUS_SD,
            v == (S_FIELDS | SSTATUS_VS | (3UL << 32) | SSTATUS_SD));
    csr_write(sstatus, 0);
    v = csr_read(sstatus);
    CHECK_Q("sstatus after writing zero", v, UXL_64, v == (3UL << 32));
    csr_write(sstatus, UXL_64);

    /* The write of all ones must not have reached M-mode fields of mstatus
     * (TVM, TW, TSR, MPRV): satp, sfence.vma, wfi and sret still work. */
    csr_write(sstatus, ~0UL & ~SSTATUS_SIE);
    csr_write(sstatus, 0);
    EXPECT_NO_TRAP("satp readable (TVM clear)", "csrr t0, satp");
    EXPECT_NO_TRAP("sfence.vma allowed (TVM clear)", "sfence.vma");
    csr_write(sie, SIP_SSIP);
    csr_set(sip, SIP_SSIP);
    EXPECT_NO_TRAP("wfi allowed (TW clear)", "wfi");
    csr_clear(sip, SIP_SSIP);
    csr_write(sie, 0);
    trap_reset();
    csr_set(sstatus, SSTATUS_SPIE);
    sret_to_self(0, 0, 0);
    u64 after = csr_read(sstatus);
    trap_off();
    CHECK("sret allowed (TSR clear)", g_trap.count, 0);
    CHECK("sret: SIE = old SPIE", after & SSTATUS_SIE, SSTATUS_SIE);
    CHECK("sret: SPIE = 1", after & SSTATUS_SPIE, SSTATUS_SPIE);
    CHECK("sret: SPP = U", after & SSTATUS_SPP, 0);
    csr_write(sstatus, SSTATUS_FS_INITIAL);
}

static void test_sie_sip(void)
{
    section("sie/sip");
    sbi_set_timer(~0UL);        /* no timer interrupt pending */
    csr_write(sie, ~0UL);
    CHECK("sie: only SSIE, STIE, SEIE writable", csr_read(sie), SIP_SSIP | SIP_STIP | SIP_SEIP);
    csr_write(sie, SIP_STIP);
    CHECK("sie = STIE", csr_read(sie), SIP_STIP);
    csr_write(sie, 0);
    CHECK("sie cleared", csr_read(sie), 0);

    CHECK("sip: nothing pending", csr_read(sip), 0);
    csr_write(sip, ~0UL);
    CHECK("sip: only SSIP writable", csr_read(sip), SIP_SSIP);
    csr_clear(sip, SIP_SSIP);
    CHECK("sip.SSIP cleared", csr_read(sip), 0);
    csr_set(sip, SIP_SSIP);
    CHECK("sip.SSIP set by csrs", csr_read(sip) & SIP_SSIP, SIP_SSIP);
    csr_write(sip, 0);
    CHECK("sip.SSIP cleared by csrw", csr_read(sip), 0);
}

static int vectored_hook(struct trap_frame *f)
{
    (void)f;
    csr_clear(sip, SIP_SSIP);
    return 0;                   /* and let the default handler log it */
}

AFUNC(do_ebreak, "ebreak\nret");

static void test_stvec(void)
{
    section("stvec");
    u64 old = csr_read(stvec);
    u64 base = (u64)stvec_table;
    csr_write(stvec, base);
    CHECK("stvec direct", csr_read(stvec), base);
    csr_write(stvec, base | 1);
    CHECK("stvec vectored", csr_read(stvec), base | 1);
    csr_write(stvec, (u64)trap_entry + 4 * 16);
    CHECK("stvec direct, 4-byte aligned base", csr_read(stvec), (u64)trap_entry + 64);

    /* Vectored: an interrupt goes to base + 4 * cause, an exception to base. */
    csr_write(stvec, base | 1);
    trap_reset();
    g_trap.hook = vectored_hook;
    csr_write(sie, SIP_SSIP);
    csr_set(sip, SIP_SSIP);
    csr_set(sstatus, SSTATUS_SIE);
    for (int i = 0; i < 1000 && g_trap.count == 0; i++)
        __asm__ volatile("nop");
    csr_clear(sstatus, SSTATUS_SIE);
    CHECK("vectored SSI taken", g_trap.count, 1);
    CHECK("vectored SSI cause", g_trap.cause, CAUSE_INTR | IRQ_SSI);
    CHECK("vectored SSI uses entry 1", g_trap.vec, 0x101);
    trap_reset();
    do_ebreak(0, 0, 0);
    CHECK("vectored exception cause", g_trap.cause, CAUSE_BREAKPOINT);
    CHECK("vectored exception uses entry 0", g_trap.vec, 0x100);
    trap_off();
    csr_write(sie, 0);
    csr_write(stvec, old);
    trap_reset();
    do_ebreak(0, 0, 0);
    trap_off();
    CHECK("direct exception uses the common entry", g_trap.vec, 0);
}

static void test_scratch_regs(void)
{
    section("sscratch/sepc/scause/stval");
    static const u64 pats[] = { ~0UL, 0x0123456789abcdefUL, 0x8000000000000001UL, 1 };
    /* sscratch must be back to 0 before any trap (see start.S). */
    for (unsigned i = 0; i < 4; i++) {
        csr_write(sscratch, pats[i]);
        u64 v = csr_swap(sscratch, 0);
        CHECK("sscratch holds any value", v, pats[i]);
    }
    CHECK("sscratch swapped back to 0", csr_read(sscratch), 0);

    /* sepc[0] is always zero (12.1.7); QEMU 7.2 keeps it. */
    csr_write(sepc, 0x80201001UL);
    u64 e = csr_read(sepc);
    CHECK_Q("sepc bit 0 always 0", e, 0x80201000UL, e == 0x80201001UL);
    csr_write(sepc, 0x80201002UL);
    CHECK("sepc 2-byte aligned (C)", csr_read(sepc), 0x80201002UL);
    csr_write(sepc, ~0UL);
    e = csr_read(sepc);
    CHECK_Q("sepc all ones", e, ~1UL, e == ~0UL);

    csr_write(scause, CAUSE_INTR | IRQ_STI);
    CHECK("scause interrupt code", csr_read(scause), CAUSE_INTR | IRQ_STI);
    csr_write(scause, CAUSE_STORE_PAGE);
    CHECK("scause exception code", csr_read(scause), CAUSE_STORE_PAGE);

    for (unsigned i = 0; i < 4; i++) {
        csr_write(stval, pats[i]);
        CHECK("stval holds any value", csr_read(stval), pats[i]);
    }
}

static void test_counteren_envcfg(void)
{
    section("scounteren/senvcfg");
    u64 old = csr_read(scounteren);
    csr_write(scounteren, 7);
    CHECK("scounteren CY TM IR", csr_read(scounteren), 7);
    csr_write(scounteren, 0xffffffffUL);
    CHECK("scounteren 32 bits", csr_read(scounteren), 0xffffffffUL);
    csr_write(scounteren, 0);
    CHECK("scounteren cleared", csr_read(scounteren), 0);
    csr_write(scounteren, old);

    trap_reset();
    u64 e = csr_read(0x10a);
    trap_off();
    CHECK("senvcfg readable", g_trap.count, 0);
    (void)e;
    csr_write(0x10a, 1);        /* FIOM: WARL, may be read-only 0 */
    u64 fiom = csr_read(0x10a);
    CHECK_TRUE("senvcfg.FIOM reads 0 or 1", fiom == 0 || fiom == 1);
    csr_write(0x10a, 0);
    CHECK("senvcfg cleared", csr_read(0x10a), 0);
}

/* satp (12.1.11): writing an unsupported MODE has no effect at all; the
 * ASID field keeps the bits that are implemented. */
static void test_satp(void)
{
    section("satp");
    CHECK("satp is 0 at entry", csr_read(satp), 0);
    struct vm v39, v48;
    vm_init(&v39, 3);
    vm_map_kernel(&v39);
    vm_init(&v48, 4);
    vm_map_kernel(&v48);

    /* ASIDLEN is implementation-defined: the implemented bits are the low
     * ones (12.1.11), found by writing ones. */
    csr_write(satp, vm_satp(&v39, 0xffff));
    sfence_vma();
    u64 got = csr_read(satp);
    u64 asid_mask = (got >> 44) & 0xffff;
    u64 s39 = vm_satp(&v39, asid_mask);
    CHECK("satp Sv39, all ASID bits written", got, s39);
    CHECK("satp implemented ASID bits are the low ones", asid_mask & (asid_mask + 1), 0);
    csr_write(satp, (1UL << 60) | (5UL << 44) | 0x1234);
    CHECK("satp mode 1 (reserved) ignored", csr_read(satp), s39);
    csr_write(satp, (15UL << 60) | (5UL << 44) | 0x1234);
    CHECK("satp mode 15 (custom) ignored", csr_read(satp), s39);
    csr_write(satp, vm_satp(&v39, 3));
    sfence_vma();
    CHECK("satp ASID 3", csr_read(satp), vm_satp(&v39, 3 & asid_mask));
    volatile u64 probe = 42;
    CHECK("identity-mapped data under Sv39", probe, 42);

    csr_write(satp, vm_satp(&v48, 7));
    sfence_vma();
    CHECK("satp Sv48", csr_read(satp), vm_satp(&v48, 7 & asid_mask));
    probe = 43;
    CHECK("identity-mapped data under Sv48", probe, 43);

    csr_write(satp, 0);
    sfence_vma();
    CHECK("satp Bare", csr_read(satp), 0);
    csr_write(satp, (1UL << 60));
    CHECK("satp mode 1 from Bare ignored", csr_read(satp), 0);
}

static void test_counters(void)
{
    section("counters");
    trap_reset();
    u64 c0 = csr_read(cycle), t0 = csr_read(time), i0 = csr_read(instret);
    for (volatile int i = 0; i < 1000; i++)
        ;
    u64 c1 = csr_read(cycle), t1 = csr_read(time), i1 = csr_read(instret);
    trap_off();
    CHECK("cycle/time/instret readable from S", g_trap.count, 0);
    CHECK_TRUE("instret advances", i1 > i0);
    CHECK_TRUE("cycle advances", c1 > c0);
    CHECK_TRUE("time does not go back", t1 >= t0);
    u64 t2 = t1;
    for (u64 i = 0; i < 200000000UL && t2 == t1; i++)
        t2 = csr_read(time);
    CHECK_TRUE("time advances", t2 > t1);
    EXPECT_NO_TRAP("csrrs cycle, x0 reads", "csrrs t0, cycle, x0");
    EXPECT_ILLEGAL("csrw cycle (read-only)", "csrw cycle, zero");
    EXPECT_ILLEGAL("csrrsi time, 1 (read-only)", "csrrsi t0, time, 1");
}

static void test_illegal(void)
{
    section("illegal CSRs");
    EXPECT_ILLEGAL("csrr mstatus", "csrr t0, mstatus");
    EXPECT_ILLEGAL("csrw mstatus", "csrw mstatus, zero");
    EXPECT_ILLEGAL("csrr mscratch", "csrr t0, mscratch");
    EXPECT_ILLEGAL("csrr mtvec", "csrr t0, mtvec");
    EXPECT_ILLEGAL("csrr mhartid", "csrr t0, mhartid");
    EXPECT_ILLEGAL("csrr misa", "csrr t0, misa");
    EXPECT_ILLEGAL("csrr medeleg", "csrr t0, medeleg");
    EXPECT_ILLEGAL("csrr mie", "csrr t0, mie");
    EXPECT_ILLEGAL("csrr mip", "csrr t0, mip");
    EXPECT_ILLEGAL("csrr pmpcfg0", "csrr t0, pmpcfg0");
    EXPECT_ILLEGAL("csrr mcycle", "csrr t0, mcycle");
    EXPECT_ILLEGAL("csrr 0x101 (nonexistent)", "csrr t0, 0x101");
    EXPECT_ILLEGAL("csrw 0x101 (nonexistent)", "csrw 0x101, zero");
    EXPECT_ILLEGAL("csrr 0x1ff (nonexistent)", "csrr t0, 0x1ff");
    EXPECT_ILLEGAL("csrr 0x5c0 (custom, absent)", "csrr t0, 0x5c0");
}

int main(void)
{
    begin("csr");
    csr_write(sstatus, SSTATUS_FS_INITIAL);
    test_sstatus();
    test_sie_sip();
    test_stvec();
    test_scratch_regs();
    test_counteren_envcfg();
    test_satp();
    test_counters();
    test_illegal();
    return finish();
}
