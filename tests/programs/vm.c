/* Virtual memory (Sv39 here; vm_sv48.c builds the same tests for Sv48):
 * page tables built in M-mode, code run in S and U mode.  Page faults
 * (load 13 / store 15 / fetch 12) with exact tval, hardware A/D updates,
 * 4 KiB / 2 MiB / 1 GiB (and 512 GiB for Sv48) pages, misaligned
 * superpages, reserved W-without-R and reserved PTE bits, instruction
 * fetch across a page boundary, U/SUM/MXR rules, MPRV, sfence.vma by
 * address / ASID / both / global, ASID-tagged address spaces, non-canonical
 * addresses, unsupported satp modes, and delegation of page faults to S. */
#include "asm.h"
#include "vm.h"

#ifndef VM_LEVELS
#define VM_LEVELS 3
#endif

#define KVA        0x80000000UL     /* identity map of RAM (S only) */
#define UVA        0x100000000UL    /* alias of RAM for U-mode code */
#define U_OFF      (UVA - KVA)
#define GIGA_VA    0xc0000000UL     /* 1 GiB page -> 0x80000000, A=D=0 */
#define T_VA       0x40000000UL     /* 4 KiB test pages */
#define MEGA_VA    0x40200000UL     /* 2 MiB page, A=D=0 */
#define MEGA_PA    0x80400000UL
#define BADMEGA_VA 0x40400000UL     /* 2 MiB leaf with misaligned PPN */
#define BADGIGA_VA 0x140000000UL    /* 1 GiB leaf with misaligned PPN */
#define ASID_VA    0x180000000UL    /* per-address-space page */
#if VM_LEVELS == 3
#define HIGH_VA    0xffffffc000000000UL     /* canonical, top half */
#define NONCANON1  0x0000004000000000UL     /* bit 38 set, 63..39 clear */
#define NONCANON2  0xffffffbffffff000UL     /* bit 38 clear, 63..39 set */
#define NAME "vm (Sv39)"
#else
#define HIGH_VA    0xffff800000000000UL
#define NONCANON1  0x0000800000000000UL     /* bit 47 set, 63..48 clear */
#define NONCANON2  0xffff7ffffffff000UL
#define BIG_VA     0x0000008000000000UL     /* needs VA bit 39 */
#define TERA_VA    0x0000010000000000UL     /* 512 GiB page -> PA 0 */
#define BADTERA_VA 0x0000018000000000UL     /* 512 GiB leaf, misaligned PPN */
#define NAME "vm (Sv48)"
#endif

enum { P_RW, P_RO, P_XO, P_NONE, P_URW, P_WONLY, P_AD0, P_A1D0, P_SFENCE,
       P_UXO, P_XA0, P_ROA0, P_X1, P_X2, P_X3, P_HOLE, P_RSV54, P_PBMT, P_NBIT,
       NPAGES };
#define PVA(i) (T_VA + (u64)(i) * PAGE_SIZE)
#define F_ALT 19        /* alternate frame for the sfence tests */
#define F_A 20
#define F_B 21
#define F_C 22
#define NFRAMES 23

static u8 frames[NFRAMES][4096] __attribute__((aligned(4096)));
static volatile u64 *pte[NPAGES];
static volatile u64 *mega_pte, *giga_pte, *asid_pte_a;
static struct vm vm, vmb;
static volatile u64 kvar = 0x4b56415249414b45UL;
static volatile u64 results[4];


AFUNC(x_ld, "ld a0, 0(a0)\n ret");
AFUNC(x_sd, "sd a1, 0(a0)\n ret");
AFUNC(x_call, "addi sp, sp, -16\n sd ra, 0(sp)\n jalr ra, 0(a0)\n ld ra, 0(sp)\n addi sp, sp, 16\n ret");
AFUNC(x_ret55, "li a0, 0x55\n ret");
AFUNC(x_sfence_va_ld, "sfence.vma a0, zero\n ld a0, 0(a0)\n ret");
AFUNC(x_sfence_all_ld, "sfence.vma\n ld a0, 0(a0)\n ret");
AFUNC(x_sfence_asid_ld, "sfence.vma zero, a1\n ld a0, 0(a0)\n ret");
AFUNC(x_sfence_both_ld, "sfence.vma a0, a1\n ld a0, 0(a0)\n ret");
/* S: run with satp A (a0) / B (a1), storing what ASID_VA reads to a2[] */
AFUNC(x_asid_switch,
      "li t0, 0x180000000\n"
      "csrw satp, a0\n sfence.vma\n ld t1, 0(t0)\n sd t1, 0(a2)\n"
      "csrw satp, a1\n ld t1, 0(t0)\n sd t1, 8(a2)\n"
      "csrw satp, a0\n ld t1, 0(t0)\n sd t1, 16(a2)\n ret");
AFUNC(x_asid_flush,
      "li t0, 0x180000000\n"
      "csrw satp, a1\n ld t1, 0(t0)\n sd t1, 0(a2)\n"
      "li t2, 1\n sfence.vma zero, t2\n"
      "csrw satp, a0\n ld t1, 0(t0)\n sd t1, 8(a2)\n"
      "csrw satp, a1\n ld t1, 0(t0)\n sd t1, 16(a2)\n ret");
/* M-mode load with MPRV=1 (MPP chosen by the caller) */
AFUNC(m_mprv_ld, "li t0, 1 << 17\n csrs mstatus, t0\n ld a0, 0(a0)\n csrc mstatus, t0\n ret");

static u64 S(void *fn, u64 a, u64 b) { return run_lower(PRV_S, fn, 0, a, b, 0); }
static u64 U(void *fn, u64 a, u64 b) { return run_lower(PRV_U, fn, U_OFF, a, b, 0); }

static u64 frame_word(int f) { return 0x1000000000000000UL * (u64)(f & 7) + 0x0101010101UL * (u64)(f + 1); }

extern char _end[];

static void build(void)
{
    if ((u64)_end > MEGA_PA)
        fatal("program image overlaps the 2 MiB test page", (u64)_end);
    vm_init(&vm, VM_LEVELS);
    vm_map(&vm, KVA, KVA, 2, PTE_RWX | PTE_AD | PTE_G);
    vm_map(&vm, UVA, KVA, 2, PTE_RWX | PTE_AD | PTE_U);
    giga_pte = vm_map(&vm, GIGA_VA, KVA, 2, PTE_RW);
    mega_pte = vm_map(&vm, MEGA_VA, MEGA_PA, 1, PTE_RW);
    vm_map(&vm, BADMEGA_VA, MEGA_PA + PAGE_SIZE, 1, PTE_RW | PTE_AD);
    vm_map(&vm, BADGIGA_VA, KVA + 0x200000, 2, PTE_RW | PTE_AD);
    vm_map(&vm, HIGH_VA, KVA, 2, PTE_RW | PTE_AD);
#if VM_LEVELS == 4
    vm_map(&vm, BIG_VA, KVA, 2, PTE_RW | PTE_AD);
    vm_map(&vm, TERA_VA, 0, 3, PTE_RW | PTE_AD);
    vm_map(&vm, BADTERA_VA, 0x40000000UL, 3, PTE_RW | PTE_AD);
#endif
    static const u64 flags[NPAGES] = {
        [P_RW] = PTE_RW | PTE_AD,
        [P_RO] = PTE_V | PTE_R | PTE_A,
        [P_XO] = PTE_V | PTE_X | PTE_A,
        [P_NONE] = 0,
        [P_URW] = PTE_RW | PTE_U | PTE_AD,
        [P_WONLY] = PTE_V | PTE_W | PTE_AD,
        [P_AD0] = PTE_RW,
        [P_A1D0] = PTE_RW | PTE_A,
        [P_SFENCE] = PTE_RW | PTE_AD,
        [P_UXO] = PTE_V | PTE_X | PTE_U | PTE_A,
        [P_XA0] = PTE_V | PTE_X,
        [P_ROA0] = PTE_V | PTE_R,
        [P_X1] = PTE_RWX | PTE_AD,
        [P_X2] = PTE_RWX | PTE_AD,
        [P_X3] = PTE_RWX | PTE_AD,
        [P_HOLE] = 0,
        [P_RSV54] = PTE_RW | PTE_AD,
        [P_PBMT] = PTE_RW | PTE_AD,
        [P_NBIT] = PTE_RW | PTE_AD,
    };
    for (int i = 0; i < NPAGES; i++)
        pte[i] = vm_map(&vm, PVA(i), (u64)frames[i], 0, flags[i]);
    /* reserved PTE bits 63..54 (no Svnapot/Svpbmt): page fault */
    *pte[P_RSV54] |= 1UL << 54;
    *pte[P_PBMT] |= 1UL << 61;
    *pte[P_NBIT] |= 1UL << 63;
    /* P_X1 -> P_X2 are virtually adjacent but map physically swapped frames */
    *pte[P_X1] = vm_pte_pa((u64)frames[P_X2], PTE_RWX | PTE_AD);
    *pte[P_X2] = vm_pte_pa((u64)frames[P_X1], PTE_RWX | PTE_AD);
    *pte[P_NONE] = vm_pte_pa((u64)frames[P_NONE], PTE_R | PTE_W | PTE_A | PTE_D); /* V=0 */
    for (int f = 0; f < NFRAMES; f++) {
        for (int w = 0; w < 512; w++)
            ((u64 *)frames[f])[w] = frame_word(f) + (u64)w;
    }
    static const u32 code[2] = { 0x05500513, 0x00008067 };    /* li a0, 0x55; ret */
    memcpy(frames[P_XO], code, 8);
    memcpy(frames[P_UXO], code, 8);
    memcpy(frames[P_XA0], code, 8);
    /* addi a0, a0, 1 (0x00150513) split across a page boundary, then ret:
     * VA P_X1 end / P_X2 start (mapped), and P_X3 end / P_HOLE (unmapped) */
    *(u16 *)&frames[P_X2][4094] = 0x0513;      /* frame mapped at VA P_X1 */
    *(u16 *)&frames[P_X1][0] = 0x0015;         /* frame mapped at VA P_X2 */
    *(u16 *)&frames[P_X1][2] = 0x8082;         /* c.jr ra */
    *(u16 *)&frames[P_X3][4094] = 0x0513;
    for (int w = 0; w < 512; w++)
        ((volatile u64 *)MEGA_PA)[w] = 0x4d45474100000000UL + (u64)w;
    /* two address spaces for the ASID tests: same kernel, different page */
    asid_pte_a = vm_map(&vm, ASID_VA, (u64)frames[F_A], 0, PTE_RW | PTE_AD);
    vm_init(&vmb, VM_LEVELS);
    vm_map(&vmb, KVA, KVA, 2, PTE_RWX | PTE_AD | PTE_G);
    vm_map(&vmb, ASID_VA, (u64)frames[F_B], 0, PTE_RW | PTE_AD);
    __asm__ volatile("fence.i" ::: "memory");
}

/* ---- expect helpers: one fault from `mode` with cause/tval ---- */
static void expect_fault(const char *name, u64 mode, void *fn, u64 a, u64 b, u64 cause, u64 tval)
{
    trap_reset(&mtrap);
    if (mode == PRV_U)
        U(fn, a, b);
    else
        S(fn, a, b);
    int ok = mtrap.log.count == 1 && mtrap.log.cause == cause && mtrap.log.tval == tval &&
             mtrap.log.prev_priv == mode;
    if (!check_eq(name, ok, 1)) {
        puts_("  traps ");
        print_udec(mtrap.log.count);
        puts_(" cause ");
        print_hex(mtrap.log.cause);
        puts_(" tval ");
        print_hex(mtrap.log.tval);
        puts_(" from ");
        print_udec(mtrap.log.prev_priv);
        putchar_('\n');
    }
    trap_off(&mtrap);
}

static u64 expect_ok(const char *name, u64 mode, void *fn, u64 a, u64 b)
{
    trap_reset(&mtrap);
    u64 r = mode == PRV_U ? U(fn, a, b) : S(fn, a, b);
    if (!check_eq(name, mtrap.log.count, 0)) {
        puts_("  cause ");
        print_hex(mtrap.log.cause);
        puts_(" tval ");
        print_hex(mtrap.log.tval);
        putchar_('\n');
    }
    trap_off(&mtrap);
    return r;
}

static void test_satp(void)
{
    section("satp");
    u64 s = vm_satp(&vm, 1);
    csr_write(satp, s);
    CHECK("satp accepts mode/asid/ppn", csr_read(satp), s);
    csr_write(satp, (1UL << 60) | ((u64)vm.root >> 12));
    CHECK("satp mode 1 ignored", csr_read(satp), s);
    csr_write(satp, (15UL << 60) | 5);
    CHECK("satp mode 15 ignored", csr_read(satp), s);
    csr_write(satp, 0);
    CHECK("satp bare", csr_read(satp), 0);
    csr_write(satp, s);
    sfence_all();
}

static void test_basic(void)
{
    section("translation");
    CHECK("S identity", expect_ok("S identity ok", PRV_S, x_ld, (u64)&kvar, 0), kvar);
    CHECK("S 4K page", expect_ok("S 4K ok", PRV_S, x_ld, PVA(P_RW) + 16, 0), frame_word(P_RW) + 2);
    expect_ok("S 4K store", PRV_S, x_sd, PVA(P_RW) + 24, 0x5354);
    CHECK("S 4K store lands", ((u64 *)frames[P_RW])[3], 0x5354);
    CHECK("S read-only page", expect_ok("S RO ok", PRV_S, x_ld, PVA(P_RO), 0), frame_word(P_RO));
    CHECK("S 2M page", expect_ok("S 2M ok", PRV_S, x_ld, MEGA_VA + 0xff8, 0), 0x4d454741000001ffUL);
    CHECK("S 1G page", expect_ok("S 1G ok", PRV_S, x_ld, GIGA_VA + ((u64)&kvar - KVA), 0), kvar);
    CHECK("S top-half VA", expect_ok("S top-half ok", PRV_S, x_ld, HIGH_VA + ((u64)&kvar - KVA), 0), kvar);
#if VM_LEVELS == 4
    CHECK("S VA bit 39", expect_ok("S bit39 ok", PRV_S, x_ld, BIG_VA + ((u64)&kvar - KVA), 0), kvar);
    CHECK("S 512G page", expect_ok("S 512G ok", PRV_S, x_ld, TERA_VA + (u64)&kvar, 0), kvar);
#endif
    CHECK("S fetch", expect_ok("S fetch ok", PRV_S, x_call, (u64)x_ret55, 0), 0x55);
    CHECK("S fetch X-only page", expect_ok("S X-only ok", PRV_S, x_call, PVA(P_XO), 0), 0x55);
    CHECK("U fetch+load U page", expect_ok("U ok", PRV_U, x_ld, PVA(P_URW) + 8, 0), frame_word(P_URW) + 1);
    CHECK("U fetch U X-only page", expect_ok("U X-only ok", PRV_U, x_call, PVA(P_UXO), 0), 0x55);
}

static void test_ad(void)
{
    section("A/D bits");
    CHECK("AD0 initially clear", *pte[P_AD0] & PTE_AD, 0);
    expect_ok("AD0 load", PRV_S, x_ld, PVA(P_AD0), 0);
    CHECK("load sets A only", *pte[P_AD0] & PTE_AD, PTE_A);
    expect_ok("AD0 store", PRV_S, x_sd, PVA(P_AD0), 1);
    CHECK("store sets D", *pte[P_AD0] & PTE_AD, PTE_AD);
    expect_ok("A1D0 store", PRV_S, x_sd, PVA(P_A1D0), 1);
    CHECK("store sets D (A preset)", *pte[P_A1D0] & PTE_AD, PTE_AD);
    expect_ok("XA0 fetch", PRV_S, x_call, PVA(P_XA0), 0);
    CHECK("fetch sets A", *pte[P_XA0] & PTE_AD, PTE_A);
    expect_fault("ROA0 store faults", PRV_S, x_sd, PVA(P_ROA0), 1, CAUSE_STORE_PAGE, PVA(P_ROA0));
    CHECK("failed store leaves A clear", *pte[P_ROA0] & PTE_AD, 0);
    expect_ok("ROA0 load", PRV_S, x_ld, PVA(P_ROA0), 0);
    CHECK("then load sets A", *pte[P_ROA0] & PTE_AD, PTE_A);
    CHECK("2M initially clear", *mega_pte & PTE_AD, 0);
    expect_ok("2M load", PRV_S, x_ld, MEGA_VA + 0x100000, 0);
    CHECK("2M load sets A", *mega_pte & PTE_AD, PTE_A);
    expect_ok("2M store", PRV_S, x_sd, MEGA_VA + 0x1000, 7);
    CHECK("2M store sets D", *mega_pte & PTE_AD, PTE_AD);
    CHECK("2M store lands", *(volatile u64 *)(MEGA_PA + 0x1000), 7);
    CHECK("1G initially clear", *giga_pte & PTE_AD, 0);
    expect_ok("1G load", PRV_S, x_ld, GIGA_VA + ((u64)&kvar - KVA), 0);
    CHECK("1G load sets A", *giga_pte & PTE_AD, PTE_A);
    CHECK("other PTE bits kept", *giga_pte, vm_pte_pa(KVA, PTE_RW | PTE_A));
}

static void test_faults(void)
{
    section("page faults");
    expect_fault("load invalid", PRV_S, x_ld, PVA(P_NONE) + 8, 0, CAUSE_LOAD_PAGE, PVA(P_NONE) + 8);
    expect_fault("store invalid", PRV_S, x_sd, PVA(P_NONE) + 16, 1, CAUSE_STORE_PAGE, PVA(P_NONE) + 16);
    expect_fault("fetch invalid", PRV_S, x_call, PVA(P_NONE) + 4, 0, CAUSE_FETCH_PAGE, PVA(P_NONE) + 4);
    CHECK("fetch fault mepc", mtrap.log.epc, PVA(P_NONE) + 4);
    expect_fault("store read-only", PRV_S, x_sd, PVA(P_RO) + 8, 1, CAUSE_STORE_PAGE, PVA(P_RO) + 8);
    CHECK("read-only frame unchanged", ((u64 *)frames[P_RO])[1], frame_word(P_RO) + 1);
    expect_fault("fetch non-X", PRV_S, x_call, PVA(P_RW), 0, CAUSE_FETCH_PAGE, PVA(P_RW));
    expect_fault("load X-only (MXR=0)", PRV_S, x_ld, PVA(P_XO), 0, CAUSE_LOAD_PAGE, PVA(P_XO));
    expect_fault("store X-only", PRV_S, x_sd, PVA(P_XO), 0, CAUSE_STORE_PAGE, PVA(P_XO));
    expect_fault("load W-only (reserved)", PRV_S, x_ld, PVA(P_WONLY), 0, CAUSE_LOAD_PAGE, PVA(P_WONLY));
    expect_fault("store W-only (reserved)", PRV_S, x_sd, PVA(P_WONLY), 0, CAUSE_STORE_PAGE, PVA(P_WONLY));
    expect_fault("misaligned 2M page", PRV_S, x_ld, BADMEGA_VA + 0x10, 0, CAUSE_LOAD_PAGE, BADMEGA_VA + 0x10);
    expect_fault("misaligned 1G page", PRV_S, x_ld, BADGIGA_VA + 0x20, 0, CAUSE_LOAD_PAGE, BADGIGA_VA + 0x20);
    expect_fault("PTE bit 54 reserved", PRV_S, x_ld, PVA(P_RSV54), 0, CAUSE_LOAD_PAGE, PVA(P_RSV54));
    expect_fault("PTE PBMT (no Svpbmt)", PRV_S, x_ld, PVA(P_PBMT), 0, CAUSE_LOAD_PAGE, PVA(P_PBMT));
    expect_fault("PTE N (no Svnapot)", PRV_S, x_sd, PVA(P_NBIT), 0, CAUSE_STORE_PAGE, PVA(P_NBIT));
#if VM_LEVELS == 4
    expect_fault("misaligned 512G page", PRV_S, x_ld, BADTERA_VA + 8, 0, CAUSE_LOAD_PAGE, BADTERA_VA + 8);
#endif
    expect_fault("unmapped gigarange", PRV_S, x_ld, 0x200000000UL, 0, CAUSE_LOAD_PAGE, 0x200000000UL);
    expect_fault("non-canonical load", PRV_S, x_ld, NONCANON1, 0, CAUSE_LOAD_PAGE, NONCANON1);
    expect_fault("non-canonical store", PRV_S, x_sd, NONCANON2, 0, CAUSE_STORE_PAGE, NONCANON2);
    expect_fault("non-canonical load 2", PRV_S, x_ld, 0x8000000000000000UL | (u64)&kvar, 0,
                 CAUSE_LOAD_PAGE, 0x8000000000000000UL | (u64)&kvar);
    expect_fault("non-canonical fetch", PRV_S, x_call, NONCANON1 + 0x100, 0, CAUSE_FETCH_PAGE, NONCANON1 + 0x100);
}

static void test_fetch_crossing(void)
{
    section("fetch across pages");
    u64 at = PVA(P_X2) - 2;
    CHECK("insn across pages", expect_ok("insn across pages ok", PRV_S, x_call, at, 0), at + 1);
    at = PVA(P_HOLE) - 2;
    expect_fault("insn into unmapped page", PRV_S, x_call, at, 0, CAUSE_FETCH_PAGE, PVA(P_HOLE));
    CHECK("... epc = insn start", mtrap.log.epc, at);
}

static void test_user(void)
{
    section("U/SUM/MXR");
    expect_fault("U load S page", PRV_U, x_ld, PVA(P_RW), 0, CAUSE_LOAD_PAGE, PVA(P_RW));
    expect_fault("U store S page", PRV_U, x_sd, PVA(P_RW) + 8, 0, CAUSE_STORE_PAGE, PVA(P_RW) + 8);
    expect_fault("U fetch S page", PRV_U, x_call, (u64)x_ret55, 0, CAUSE_FETCH_PAGE, (u64)x_ret55);
    expect_fault("U load invalid", PRV_U, x_ld, PVA(P_NONE), 0, CAUSE_LOAD_PAGE, PVA(P_NONE));
    expect_ok("U store U page", PRV_U, x_sd, PVA(P_URW) + 32, 0x7575);
    CHECK("U store lands", ((u64 *)frames[P_URW])[4], 0x7575);
    csr_clear(mstatus, MSTATUS_SUM);
    expect_fault("S load U page, SUM=0", PRV_S, x_ld, PVA(P_URW), 0, CAUSE_LOAD_PAGE, PVA(P_URW));
    expect_fault("S store U page, SUM=0", PRV_S, x_sd, PVA(P_URW), 0, CAUSE_STORE_PAGE, PVA(P_URW));
    csr_set(mstatus, MSTATUS_SUM);
    CHECK("S load U page, SUM=1", expect_ok("SUM=1 load ok", PRV_S, x_ld, PVA(P_URW) + 8, 0),
          frame_word(P_URW) + 1);
    expect_ok("S store U page, SUM=1", PRV_S, x_sd, PVA(P_URW) + 40, 0x5353);
    CHECK("SUM store lands", ((u64 *)frames[P_URW])[5], 0x5353);
    expect_fault("S fetch U page, SUM=1", PRV_S, x_call, PVA(P_UXO), 0, CAUSE_FETCH_PAGE, PVA(P_UXO));
    csr_clear(mstatus, MSTATUS_SUM);
    csr_set(mstatus, MSTATUS_MXR);
    CHECK("MXR: S load X-only", expect_ok("MXR load ok", PRV_S, x_ld, PVA(P_XO), 0), 0x0000806705500513UL);
    CHECK("MXR: U load U X-only", expect_ok("MXR U load ok", PRV_U, x_ld, PVA(P_UXO), 0), 0x0000806705500513UL);
    expect_fault("MXR: store X-only still faults", PRV_S, x_sd, PVA(P_XO), 0, CAUSE_STORE_PAGE, PVA(P_XO));
    csr_clear(mstatus, MSTATUS_MXR);
    expect_fault("MXR=0: U load U X-only", PRV_U, x_ld, PVA(P_UXO), 0, CAUSE_LOAD_PAGE, PVA(P_UXO));
}

static u64 mprv_load(u64 mpp, u64 va)
{
    csr_clear(mstatus, MSTATUS_MPP);
    csr_set(mstatus, mpp << 11);
    u64 r = m_mprv_ld(va, 0, 0);
    csr_set(mstatus, MSTATUS_MPP);
    return r;
}

static void test_mprv(void)
{
    section("MPRV");
    trap_reset(&mtrap);
    CHECK("MPP=S: 4K page", mprv_load(PRV_S, PVA(P_RW) + 8), frame_word(P_RW) + 1);
    CHECK("MPP=S: 2M page", mprv_load(PRV_S, MEGA_VA + 8), 0x4d45474100000001UL);
    CHECK("MPP=U: U page", mprv_load(PRV_U, PVA(P_URW) + 16), frame_word(P_URW) + 2);
    CHECK("no faults so far", mtrap.log.count, 0);
    mprv_load(PRV_S, PVA(P_URW));
    CHECK("MPP=S SUM=0: U page faults", mtrap.log.cause, CAUSE_LOAD_PAGE);
    CHECK("... mtval", mtrap.log.tval, PVA(P_URW));
    CHECK("... from M", mtrap.log.prev_priv, PRV_M);
    trap_reset(&mtrap);
    mprv_load(PRV_U, PVA(P_RW));
    CHECK("MPP=U: S page faults", mtrap.log.cause, CAUSE_LOAD_PAGE);
    trap_reset(&mtrap);
    mprv_load(PRV_S, PVA(P_NONE) + 8);
    CHECK("MPP=S: invalid faults", mtrap.log.cause, CAUSE_LOAD_PAGE);
    CHECK("... mtval", mtrap.log.tval, PVA(P_NONE) + 8);
    trap_reset(&mtrap);
    csr_set(mstatus, MSTATUS_SUM);
    CHECK("MPP=S SUM=1: U page", mprv_load(PRV_S, PVA(P_URW) + 8), frame_word(P_URW) + 1);
    csr_clear(mstatus, MSTATUS_SUM);
    csr_set(mstatus, MSTATUS_MXR);
    CHECK("MPP=S MXR=1: X-only", mprv_load(PRV_S, PVA(P_XO)), 0x0000806705500513UL);
    csr_clear(mstatus, MSTATUS_MXR);
    CHECK("MPRV cases faulted only when expected", mtrap.log.count, 0);
    trap_off(&mtrap);
    /* without MPRV, M-mode ignores satp */
    CHECK("M bare access", *(volatile u64 *)frames[P_NONE], frame_word(P_NONE));
}

static void test_sfence(void)
{
    section("sfence.vma");
    u64 va = PVA(P_SFENCE) + 8;
    u64 f1 = (u64)frames[P_SFENCE], f2 = (u64)frames[F_ALT];
    u64 v1 = frame_word(P_SFENCE) + 1, v2 = frame_word(F_ALT) + 1;
    CHECK("before", expect_ok("sfence 0", PRV_S, x_ld, va, 0), v1);
    *pte[P_SFENCE] = vm_pte_pa(f2, PTE_RW | PTE_AD);
    CHECK("by address", expect_ok("sfence 1", PRV_S, x_sfence_va_ld, va, 0), v2);
    *pte[P_SFENCE] = vm_pte_pa(f1, PTE_RW | PTE_AD);
    CHECK("global", expect_ok("sfence 2", PRV_S, x_sfence_all_ld, va, 0), v1);
    *pte[P_SFENCE] = vm_pte_pa(f2, PTE_RW | PTE_AD);
    CHECK("by ASID", expect_ok("sfence 3", PRV_S, x_sfence_asid_ld, va, 1), v2);
    *pte[P_SFENCE] = vm_pte_pa(f1, PTE_RW | PTE_AD);
    CHECK("by address+ASID", expect_ok("sfence 4", PRV_S, x_sfence_both_ld, va, 1), v1);
    *pte[P_SFENCE] = 0;
    expect_fault("invalidated PTE faults", PRV_S, x_sfence_va_ld, va, 0, CAUSE_LOAD_PAGE, va);
    *pte[P_SFENCE] = vm_pte_pa(f1, PTE_RW | PTE_AD);
    CHECK("revalidated", expect_ok("sfence 5", PRV_S, x_sfence_va_ld, va, 0), v1);
    /* from M-mode too */
    *pte[P_SFENCE] = vm_pte_pa(f2, PTE_RW | PTE_AD);
    sfence_all();
    CHECK("M sfence", expect_ok("sfence 6", PRV_S, x_ld, va, 0), v2);
}

static void test_asid(void)
{
    section("ASIDs");
    u64 sa = vm_satp(&vm, 1), sb = vm_satp(&vmb, 2);
    csr_write(satp, sb);
    CHECK("ASID 2 stored", (csr_read(satp) >> 44) & 0xffff, 2);
    csr_write(satp, sa);
    CHECK("ASID 1 stored", (csr_read(satp) >> 44) & 0xffff, 1);
    u64 va_ = frame_word(F_A), vb = frame_word(F_B), vc = frame_word(F_C);
    trap_reset(&mtrap);
    run_lower(PRV_S, x_asid_switch, 0, sa, sb, (u64)results);
    CHECK("space A", results[0], va_);
    CHECK("space B", results[1], vb);
    CHECK("space A again", results[2], va_);
    *asid_pte_a = vm_pte_pa((u64)frames[F_C], PTE_RW | PTE_AD);
    run_lower(PRV_S, x_asid_flush, 0, sa, sb, (u64)results);
    CHECK("B before flush", results[0], vb);
    CHECK("A after sfence by ASID", results[1], vc);
    CHECK("B unaffected", results[2], vb);
    CHECK("no faults", mtrap.log.count, 0);
    trap_off(&mtrap);
    csr_write(satp, sa);
    sfence_all();
}

static void test_delegated(void)
{
    section("page faults delegated to S");
    csr_write(stvec, (u64)trap_entry_s);
    csr_write(medeleg, (1 << CAUSE_FETCH_PAGE) | (1 << CAUSE_LOAD_PAGE) | (1 << CAUSE_STORE_PAGE));
    trap_reset(&strap);
    S(x_ld, PVA(P_NONE) + 0x18, 0);
    CHECK("S load -> scause", strap.log.cause, CAUSE_LOAD_PAGE);
    CHECK("S load -> stval", strap.log.tval, PVA(P_NONE) + 0x18);
    CHECK("S load -> SPP", strap.log.prev_priv, PRV_S);
    trap_reset(&strap);
    U(x_sd, PVA(P_RW) + 0x20, 0);
    CHECK("U store -> scause", strap.log.cause, CAUSE_STORE_PAGE);
    CHECK("U store -> stval", strap.log.tval, PVA(P_RW) + 0x20);
    CHECK("U store -> SPP", strap.log.prev_priv, PRV_U);
    trap_reset(&strap);
    S(x_call, PVA(P_NONE) + 0x40, 0);
    CHECK("S fetch -> scause", strap.log.cause, CAUSE_FETCH_PAGE);
    CHECK("S fetch -> stval", strap.log.tval, PVA(P_NONE) + 0x40);
    CHECK("S fetch -> sepc", strap.log.epc, PVA(P_NONE) + 0x40);
    trap_reset(&strap);
    U(x_call, (u64)x_ret55, 0);
    CHECK("U fetch -> scause", strap.log.cause, CAUSE_FETCH_PAGE);
    CHECK("U fetch -> stval", strap.log.tval, (u64)x_ret55);
    CHECK("count", strap.log.count, 1);
    trap_reset(&mtrap);
    mprv_load(PRV_S, PVA(P_NONE));
    CHECK("M-mode (MPRV) fault not delegated", mtrap.log.count, 1);
    CHECK("... S handler unused", strap.log.count, 1);
    trap_off(&mtrap);
    trap_off(&strap);
    csr_write(medeleg, 0);
}

int main(void)
{
    println(NAME ": virtual memory");
    csr_write(mcounteren, 0);
    csr_clear(mstatus, MSTATUS_SUM | MSTATUS_MXR | MSTATUS_MPRV | MSTATUS_TVM);
    build();
    g_vm_active = 1;
    test_satp();
    test_ad();          /* first: the other tests set A/D bits */
    test_basic();
    test_faults();
    test_fetch_crossing();
    test_user();
    test_mprv();
    test_sfence();
    test_asid();
    test_delegated();
    csr_write(satp, 0);
    sfence_all();
    g_vm_active = 0;
    return finish();
}
