/* paging: Sv39 and Sv48 translation as a supervisor builds and uses it
 * (privileged spec 12.3-12.5, 12.2.1 sfence.vma): 4 KiB pages and
 * superpages, page faults with exact stval, hardware A/D updates, U pages
 * under SUM, MXR, execute-only pages, misaligned superpages, reserved
 * encodings, non-canonical addresses, sfence.vma by address and by ASID,
 * two address spaces with different ASIDs.  Every test runs twice: with
 * Sv39 (kernel in a gigapage) and with Sv48 (kernel in 2 MiB pages). */
#include "lib.h"
#define VM_POOL_PAGES 48
#include "vm.h"

#define VA_BASE   0x2000000000UL        /* 128 GiB: canonical in Sv39 and Sv48 */
#define VA_HIGH   0xffffffffc0000000UL  /* the top gigabyte, as Linux uses it */
#define NFRAMES   24
#define U_EXIT    "li a7, 0x52564d52\necall\n"

static u8 frames[NFRAMES][PAGE_SIZE] __attribute__((aligned(4096)));
static u64 fpa(int i) { return (u64)frames[i]; }
static int L3;                          /* running the Sv39 pass */
#define SEC(x) section(L3 ? "Sv39: " x : "Sv48: " x)

/* Position-independent snippets, copied onto pages mapped elsewhere. */
#define SNIPPET(name, body) \
    extern const u8 name[], name##_end[]; \
    __asm__(".text\n.balign 4\n.option push\n.option norvc\n" #name ":\n" body "\n" #name "_end:\n.option pop\n")
SNIPPET(sn_ret42, "li a0, 42\nret");
SNIPPET(sn_u_add1, "addi a0, a0, 1\n" U_EXIT);
SNIPPET(sn_u_load, "ld a0, 0(a0)\n" U_EXIT);
SNIPPET(sn_u_jump, "jalr a0\n" U_EXIT);
SNIPPET(sn_u_sp, "mv a0, sp\n" U_EXIT);

static void put_code(int frame, const u8 *start, const u8 *end)
{
    memcpy(frames[frame], start, (size_t)(end - start));
    __asm__ volatile("fence.i" ::: "memory");
}

AFUNC(s_load, "ld a0, 0(a0)\nret");
AFUNC(s_store, "sd a1, 0(a0)\nli a0, 1\nret");
AFUNC(s_jump, "jr a0");                 /* a fetch fault resumes at our caller */

struct fault { u64 count, cause, tval, epc; };
static struct fault last;

static void save_fault(void)
{
    trap_off();
    last.count = g_trap.count;
    last.cause = g_trap.cause;
    last.tval = g_trap.tval;
    last.epc = g_trap.epc;
}

static u64 load(u64 va) { trap_reset(); u64 v = s_load(va, 0, 0); save_fault(); return v; }
static void store(u64 va, u64 v) { trap_reset(); s_store(va, v, 0); save_fault(); }
static u64 call(u64 va) { trap_reset(); u64 v = s_jump(va, 0, 0); save_fault(); return v; }

static void check_ok(const char *name)
{
    CHECK(name, last.count, 0);
}

static void check_pf(const char *name, u64 cause, u64 va)
{
    CHECK(name, last.count, 1);
    CHECK(name, last.cause, cause);
    CHECK(name, last.tval, va);
}

static u64 *pte_of(struct vm *m, u64 va, int level)
{
    return &vm_table(m, va, level)[vm_index(va, level)];
}

static void map_kernel(struct vm *m)
{
    if (m->levels == 3) {
        vm_map_kernel(m);
    } else {
        for (u64 a = RAM_BASE; a < RAM_BASE + (48UL << 20); a += 2UL << 20)
            vm_map(m, a, a, 1, PTE_RWX | PTE_AD | PTE_G);
    }
}

static struct vm as1, as2;
static volatile u64 marker;

static void test_basic(void)
{
    SEC("4 KiB pages and faults");
    *(volatile u64 *)fpa(0) = 0x1111222233334444UL;
    vm_map(&as1, VA_BASE, fpa(0), 0, PTE_RW | PTE_AD);
    sfence_vma();
    CHECK("load through a 4 KiB page", load(VA_BASE), 0x1111222233334444UL);
    check_ok("load through a 4 KiB page: no trap");
    store(VA_BASE + 8, 0x5555);
    CHECK("store through a 4 KiB page lands in the frame", *(volatile u64 *)(fpa(0) + 8), 0x5555);

    load(VA_BASE + 0x10123);
    check_pf("load from an unmapped page: scause 13, stval = va", CAUSE_LOAD_PAGE, VA_BASE + 0x10123);
    CHECK("load page fault: sepc", last.epc, (u64)s_load);
    store(VA_BASE + 0x10ff8, 1);
    check_pf("store to an unmapped page: scause 15", CAUSE_STORE_PAGE, VA_BASE + 0x10ff8);
    call(VA_BASE + 0x10000);
    check_pf("fetch from an unmapped page: scause 12", CAUSE_FETCH_PAGE, VA_BASE + 0x10000);
    CHECK("fetch page fault: sepc = target", last.epc, VA_BASE + 0x10000);

    /* Read-only, no-execute, write-without-read (reserved). */
    vm_map(&as1, VA_BASE + 0x1000, fpa(1), 0, PTE_V | PTE_R | PTE_AD);
    vm_map(&as1, VA_BASE + 0x2000, fpa(2), 0, PTE_V | PTE_W | PTE_AD);
    sfence_vma();
    load(VA_BASE + 0x1008);
    check_ok("load from a read-only page");
    store(VA_BASE + 0x1010, 1);
    check_pf("store to a read-only page: scause 15", CAUSE_STORE_PAGE, VA_BASE + 0x1010);
    call(VA_BASE + 0x1000);
    check_pf("fetch from a page without X: scause 12", CAUSE_FETCH_PAGE, VA_BASE + 0x1000);
    load(VA_BASE + 0x2000);
    check_pf("load, W without R (reserved): scause 13", CAUSE_LOAD_PAGE, VA_BASE + 0x2000);
    store(VA_BASE + 0x2000, 1);
    check_pf("store, W without R (reserved): scause 15", CAUSE_STORE_PAGE, VA_BASE + 0x2000);

    /* Reserved high PTE bits (no Svnapot/Svpbmt): a page fault. */
    vm_set(&as1, VA_BASE + 0x3000, 0, vm_pte_pa(fpa(3), PTE_RW | PTE_AD) | (1UL << 60));
    sfence_vma();
    load(VA_BASE + 0x3000);
    check_pf("load, reserved PTE bit 60: scause 13", CAUSE_LOAD_PAGE, VA_BASE + 0x3000);

    /* Bit 1 (R) with V = 0: invalid whatever the rest says. */
    vm_set(&as1, VA_BASE + 0x4000, 0, vm_pte_pa(fpa(4), PTE_R | PTE_W | PTE_X | PTE_AD));
    sfence_vma();
    load(VA_BASE + 0x4000);
    check_pf("load, V = 0: scause 13", CAUSE_LOAD_PAGE, VA_BASE + 0x4000);
}

static void test_exec(void)
{
    SEC("execute and execute-only");
    put_code(5, sn_ret42, sn_ret42_end);
    vm_map(&as1, VA_BASE + 0x5000, fpa(5), 0, PTE_V | PTE_R | PTE_X | PTE_AD);
    vm_map(&as1, VA_BASE + 0x6000, fpa(5), 0, PTE_V | PTE_X | PTE_AD);
    sfence_vma();
    CHECK("run code on a mapped page", call(VA_BASE + 0x5000), 42);
    check_ok("run code on a mapped page: no trap");
    CHECK("run code on an execute-only page", call(VA_BASE + 0x6000), 42);
    check_ok("run code on an execute-only page: no trap");
    csr_clear(sstatus, SSTATUS_MXR);
    load(VA_BASE + 0x6000);
    check_pf("load from execute-only, MXR = 0: scause 13", CAUSE_LOAD_PAGE, VA_BASE + 0x6000);
    csr_set(sstatus, SSTATUS_MXR);
    u64 v = load(VA_BASE + 0x6000);
    csr_clear(sstatus, SSTATUS_MXR);
    check_ok("load from execute-only, MXR = 1");
    CHECK("MXR load reads the code", v, *(volatile u64 *)fpa(5));
    csr_set(sstatus, SSTATUS_MXR);
    store(VA_BASE + 0x6000, 1);
    csr_clear(sstatus, SSTATUS_MXR);
    check_pf("store to execute-only, MXR = 1: scause 15", CAUSE_STORE_PAGE, VA_BASE + 0x6000);
}

/* A and D updated by the hart when clear (12.3.2 step 7, Svadu behaviour;
 * both QEMU and Ringvisor do this rather than fault). */
static void test_ad(void)
{
    SEC("A/D bits");
    volatile u64 *d = vm_map(&as1, VA_BASE + 0x7000, fpa(7), 0, PTE_RW);
    volatile u64 *x = vm_map(&as1, VA_BASE + 0x8000, fpa(8), 0, PTE_V | PTE_R | PTE_X);
    put_code(8, sn_ret42, sn_ret42_end);
    sfence_vma();
    CHECK("PTE starts with A = D = 0", *d & PTE_AD, 0);
    load(VA_BASE + 0x7000);
    check_ok("load with A = 0");
    CHECK("load sets A, not D", *d & PTE_AD, PTE_A);
    store(VA_BASE + 0x7008, 9);
    check_ok("store with D = 0");
    CHECK("store sets D", *d & PTE_AD, PTE_AD);
    CHECK("the store landed", *(volatile u64 *)(fpa(7) + 8), 9);
    CHECK("fetch with A = 0 runs", call(VA_BASE + 0x8000), 42);
    CHECK("fetch sets A", *x & PTE_AD, PTE_A);

    /* A store first sets both. */
    volatile u64 *s = vm_map(&as1, VA_BASE + 0x9000, fpa(9), 0, PTE_RW);
    sfence_vma();
    store(VA_BASE + 0x9000, 1);
    CHECK("first access a store: A and D set", *s & PTE_AD, PTE_AD);
    /* No update on a faulting access. */
    volatile u64 *r = vm_map(&as1, VA_BASE + 0xa000, fpa(10), 0, PTE_V | PTE_R);
    sfence_vma();
    store(VA_BASE + 0xa000, 1);
    check_pf("store to read-only with A = 0: scause 15", CAUSE_STORE_PAGE, VA_BASE + 0xa000);
    CHECK("faulting store leaves A and D clear", *r & PTE_AD, 0);
}

static void test_user_pages(void)
{
    SEC("U pages, SUM");
    *(volatile u64 *)fpa(11) = 0xabcdUL;
    vm_map(&as1, VA_BASE + 0xb000, fpa(11), 0, PTE_RW | PTE_U | PTE_AD);
    put_code(12, sn_ret42, sn_ret42_end);
    vm_map(&as1, VA_BASE + 0xc000, fpa(12), 0, PTE_V | PTE_R | PTE_X | PTE_U | PTE_AD);
    sfence_vma();
    csr_clear(sstatus, SSTATUS_SUM);
    load(VA_BASE + 0xb008);
    check_pf("S load from a U page, SUM = 0: scause 13", CAUSE_LOAD_PAGE, VA_BASE + 0xb008);
    store(VA_BASE + 0xb010, 1);
    check_pf("S store to a U page, SUM = 0: scause 15", CAUSE_STORE_PAGE, VA_BASE + 0xb010);
    csr_set(sstatus, SSTATUS_SUM);
    CHECK("S load from a U page, SUM = 1", load(VA_BASE + 0xb000), 0xabcdUL);
    check_ok("S load from a U page, SUM = 1: no trap");
    store(VA_BASE + 0xb018, 3);
    check_ok("S store to a U page, SUM = 1");
    call(VA_BASE + 0xc000);
    check_pf("S fetch from a U page, SUM = 1: scause 12", CAUSE_FETCH_PAGE, VA_BASE + 0xc000);
    csr_clear(sstatus, SSTATUS_SUM);
    call(VA_BASE + 0xc000);
    check_pf("S fetch from a U page, SUM = 0: scause 12", CAUSE_FETCH_PAGE, VA_BASE + 0xc000);
}

static u64 urun(u64 va, u64 arg, u64 unused)
{
    (void)unused;
    return run_user((void *)va, arg, VA_BASE + 0x10000 - 16);
}

static void test_user_mode(void)
{
    SEC("U-mode code");
    vm_map(&as1, VA_BASE + 0xf000, fpa(15), 0, PTE_RW | PTE_U | PTE_AD);        /* U stack */
    put_code(13, sn_u_add1, sn_u_add1_end);
    vm_map(&as1, VA_BASE + 0xd000, fpa(13), 0, PTE_V | PTE_R | PTE_X | PTE_U | PTE_AD);
    put_code(14, sn_u_load, sn_u_load_end);
    vm_map(&as1, VA_BASE + 0xe000, fpa(14), 0, PTE_V | PTE_X | PTE_U | PTE_AD);   /* execute-only */
    put_code(16, sn_u_jump, sn_u_jump_end);
    vm_map(&as1, VA_BASE + 0x11000, fpa(16), 0, PTE_V | PTE_R | PTE_X | PTE_U | PTE_AD);
    put_code(17, sn_u_sp, sn_u_sp_end);
    vm_map(&as1, VA_BASE + 0x12000, fpa(17), 0, PTE_V | PTE_X | PTE_U | PTE_AD);
    sfence_vma();

    trap_reset();
    u64 r = urun(VA_BASE + 0xd000, 41, 0);
    save_fault();
    CHECK("U code on a U page runs", r, 42);
    check_ok("U code on a U page: no trap");
    CHECK("U stack pointer", urun(VA_BASE + 0x12000, 0, 0), VA_BASE + 0x10000 - 16);
    trap_reset();
    r = urun(VA_BASE + 0xe000, VA_BASE + 0xb000, 0);
    save_fault();
    CHECK("U load from a U page", r, 0xabcdUL);
    check_ok("U load from a U page: no trap");
    trap_reset();
    urun(VA_BASE + 0xe000, VA_BASE + 0x0008, 0);
    save_fault();
    check_pf("U load from an S page: scause 13", CAUSE_LOAD_PAGE, VA_BASE + 0x0008);
    CHECK("U load fault: sepc", last.epc, VA_BASE + 0xe000);
    CHECK("U load fault: SPP = U", g_trap.status & SSTATUS_SPP, 0);
    trap_reset();
    urun(VA_BASE + 0xe000, (u64)frames, 0);
    save_fault();
    check_pf("U load from the kernel (S gigapage): scause 13", CAUSE_LOAD_PAGE, (u64)frames);
    trap_reset();
    urun(VA_BASE + 0x11000, VA_BASE + 0x5000, 0);
    save_fault();
    check_pf("U fetch from an S page: scause 12", CAUSE_FETCH_PAGE, VA_BASE + 0x5000);
    trap_reset();
    urun(VA_BASE + 0x11000, VA_BASE + 0xb000, 0);
    save_fault();
    check_pf("U fetch from a U page without X: scause 12", CAUSE_FETCH_PAGE, VA_BASE + 0xb000);
    trap_reset();
    r = urun(VA_BASE + 0x11000, VA_BASE + 0xc000, 0);
    save_fault();
    CHECK("U call into another U code page", r, 42);
    check_ok("U call into another U code page: no trap");
}

static void test_superpages(void)
{
    SEC("superpages");
    u64 va2m = VA_BASE + 0x40000000UL;          /* a fresh gigabyte */
    u64 va1g = VA_BASE + 0x80000000UL;
    /* The kernel's first 2 MiB at a second address. */
    vm_map(&as1, va2m, RAM_BASE + 0x200000, 1, PTE_V | PTE_R | PTE_AD);
    vm_map(&as1, va1g, RAM_BASE, 2, PTE_V | PTE_R | PTE_AD);
    sfence_vma();
    u64 want = *(volatile u64 *)(RAM_BASE + 0x200000 + 0x1238);
    CHECK("2 MiB page", load(va2m + 0x1238), want);
    check_ok("2 MiB page: no trap");
    CHECK("1 GiB page", load(va1g + 0x201238), want);
    check_ok("1 GiB page: no trap");
    /* Misaligned superpages (12.3.2 step 6): a page fault. */
    vm_map(&as1, va2m + 0x200000, RAM_BASE + 0x201000, 1, PTE_V | PTE_R | PTE_AD);
    vm_map(&as1, va1g + 0x40000000UL, RAM_BASE + 0x200000, 2, PTE_V | PTE_R | PTE_AD);
    sfence_vma();
    load(va2m + 0x200010);
    check_pf("misaligned 2 MiB page: scause 13", CAUSE_LOAD_PAGE, va2m + 0x200010);
    load(va1g + 0x40000000UL + 0x30);
    check_pf("misaligned 1 GiB page: scause 13", CAUSE_LOAD_PAGE, va1g + 0x40000030UL);
    call(va2m + 0x200000);
    check_pf("fetch from a misaligned 2 MiB page: scause 12", CAUSE_FETCH_PAGE, va2m + 0x200000);
    /* The top of the address space. */
    *(volatile u64 *)fpa(18) = 0x7070;
    vm_map(&as1, VA_HIGH + 0x3000, fpa(18), 0, PTE_RW | PTE_AD);
    sfence_vma();
    CHECK("page in the top gigabyte", load(VA_HIGH + 0x3000), 0x7070);
}

static void test_noncanonical(void)
{
    SEC("non-canonical addresses");
    u64 bad1 = L3 ? 0x0000004000000000UL : 0x0000800000000000UL;   /* bit 38 / 47 */
    u64 bad2 = L3 ? 0xffffff8000000000UL ^ (1UL << 38) : 0xffff000000000000UL;
    load(bad1);
    check_pf("load, non-canonical: scause 13", CAUSE_LOAD_PAGE, bad1);
    store(bad2 + 8, 1);
    check_pf("store, non-canonical: scause 15", CAUSE_STORE_PAGE, bad2 + 8);
    call(bad1);
    check_pf("fetch, non-canonical: scause 12", CAUSE_FETCH_PAGE, bad1);
}

/* sfence.vma (12.2.1): after changing a PTE, a fence for that address (or
 * ASID, or everything) makes the new mapping visible. */
static void test_sfence(void)
{
    SEC("sfence.vma");
    for (int i = 19; i < 22; i++)
        *(volatile u64 *)fpa(i) = 0x1900 + (u64)i;
    u64 va = VA_BASE + 0x20000;
    volatile u64 *pte = vm_map(&as1, va, fpa(19), 0, PTE_RW | PTE_AD);
    sfence_vma();
    CHECK("before the change", load(va), 0x1913);
    *pte = vm_pte_pa(fpa(20), PTE_RW | PTE_AD);
    sfence_va(va);
    CHECK("sfence.vma va: new frame", load(va), 0x1914);
    u64 asid = (csr_read(satp) >> 44) & 0xffff;
    *pte = vm_pte_pa(fpa(21), PTE_RW | PTE_AD);
    sfence_asid(asid);
    CHECK("sfence.vma 0, asid: new frame", load(va), 0x1915);
    *pte = vm_pte_pa(fpa(19), PTE_RW | PTE_AD);
    sfence_va_asid(va, asid);
    CHECK("sfence.vma va, asid: new frame", load(va), 0x1913);

    /* ASID bits beyond ASIDLEN: satp drops them, and sfence.vma ignores
     * them in rs2 (12.2.1), so fencing with the ASID as written works. */
    u64 wide = 0xfff0 | asid;
    csr_write(satp, vm_satp(&as1, wide));
    CHECK("load with a wide ASID written to satp", load(va), 0x1913);
    *pte = vm_pte_pa(fpa(20), PTE_RW | PTE_AD);
    sfence_asid(wide);
    CHECK("sfence.vma 0, wide asid: new frame", load(va), 0x1914);
    *pte = vm_pte_pa(fpa(21), PTE_RW | PTE_AD);
    sfence_va_asid(va, wide);
    CHECK("sfence.vma va, wide asid: new frame", load(va), 0x1915);
    csr_write(satp, vm_satp(&as1, asid));
    sfence_vma();

    /* Invalid, then valid: the new entry is used after the fence. */
    u64 vb = VA_BASE + 0x21000;
    load(vb);
    check_pf("not yet mapped: scause 13", CAUSE_LOAD_PAGE, vb);
    vm_map(&as1, vb, fpa(20), 0, PTE_RW | PTE_AD);
    sfence_va(vb);
    CHECK("mapped after sfence.vma va", load(vb), 0x1914);
    check_ok("mapped after sfence.vma va: no trap");
    /* Valid, then invalid. */
    *pte_of(&as1, vb, 0) = 0;
    sfence_va(vb);
    load(vb);
    check_pf("unmapped after sfence.vma va: scause 13", CAUSE_LOAD_PAGE, vb);
}

/* Two address spaces, ASIDs 1 and 2, map one VA to different frames; the
 * kernel's global mapping is shared.  Switching satp needs no fence. */
static void test_asids(void)
{
    SEC("two address spaces");
    u64 va = VA_BASE + 0x30000;
    *(volatile u64 *)fpa(22) = 0xaaaa;
    *(volatile u64 *)fpa(23) = 0xbbbb;
    *(volatile u64 *)fpa(21) = 0xcccc;
    volatile u64 *pa = vm_map(&as1, va, fpa(22), 0, PTE_RW | PTE_AD);
    volatile u64 *pb = vm_map(&as2, va, fpa(23), 0, PTE_RW | PTE_AD);
    sfence_vma();
    u64 s1 = vm_satp(&as1, 1), s2 = vm_satp(&as2, 2);
    CHECK("AS 1", load(va), 0xaaaa);
    csr_write(satp, s2);
    CHECK("AS 2", load(va), 0xbbbb);
    csr_write(satp, s1);
    CHECK("AS 1 again", load(va), 0xaaaa);
    csr_write(satp, s2);
    CHECK("AS 2 again", load(va), 0xbbbb);
    /* Change AS 1's mapping while AS 2 runs; fence ASID 1 only. */
    *pa = vm_pte_pa(fpa(21), PTE_RW | PTE_AD);
    sfence_asid(1);
    CHECK("AS 2 unaffected", load(va), 0xbbbb);
    csr_write(satp, s1);
    CHECK("AS 1 sees its new mapping", load(va), 0xcccc);
    /* Change AS 2's mapping from AS 1; fence (va, ASID 2). */
    *pb = vm_pte_pa(fpa(22), PTE_RW | PTE_AD);
    sfence_va_asid(va, 2);
    csr_write(satp, s2);
    CHECK("AS 2 sees its new mapping", load(va), 0xaaaa);
    store(va + 8, 0x77);
    CHECK("store in AS 2 lands in its frame", *(volatile u64 *)(fpa(22) + 8), 0x77);
    csr_write(satp, s1);
    CHECK("the kernel (global) runs in both", load((u64)&frames[21][0]), 0xcccc);
}

static void run_pass(int levels)
{
    L3 = levels == 3;
    vm_pool_next = 0;
    memset(frames, 0, sizeof frames);
    vm_init(&as1, levels);
    vm_init(&as2, levels);
    map_kernel(&as1);
    map_kernel(&as2);
    csr_write(satp, vm_satp(&as1, 1));
    sfence_vma();
    SEC("enable");
    CHECK("satp mode", csr_read(satp) >> 60, L3 ? 8 : 9);
    marker = 0x600d + (u64)levels;
    CHECK("kernel data through its identity mapping", load((u64)&marker), 0x600d + (u64)levels);
    test_basic();
    test_exec();
    test_ad();
    test_user_pages();
    test_user_mode();
    test_superpages();
    test_noncanonical();
    test_sfence();
    test_asids();
    csr_write(satp, 0);
    sfence_vma();
}

int main(void)
{
    begin("paging");
    csr_write(sstatus, SSTATUS_FS_INITIAL);
    run_pass(3);
    run_pass(4);
    section("Bare again");
    CHECK("satp Bare", csr_read(satp), 0);
    CHECK("physical access", *(volatile u64 *)fpa(21), 0xcccc);
    return finish();
}
