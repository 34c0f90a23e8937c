/* hostile: what a guest kernel can do to a hypervisor's memory management
 * and must see exactly as hardware shows it (privileged spec 12.3-12.5 and
 * 12.2.1 sfence.vma; access faults from PMAs, 3.6, also for the walk's own
 * PTE reads, 12.3.2 step 2).
 * Leaf PTEs whose frames are not RAM (past RAM's end, 0, 1 TiB, the top of
 * the 56-bit physical space, beside the UART and PLIC), superpages that run
 * past RAM's end, non-leaf PTEs that point outside RAM, page tables that map
 * and edit themselves (leaf and root entries, each sfence.vma form), an
 * inactive address space edited through its own mapped table and a reused
 * ASID, A/D updates beyond those of paging.c (superpages, AMOs, LR, cleared
 * by software, U stores), unassigned physical addresses with paging off, and
 * accesses and instructions that straddle a page into nothing.
 * Every test with paging runs twice: Sv39, then Sv48.
 *
 * Not here: a trap vector on an unmapped page or outside RAM (the fetch
 * fault it raises enters the same vector, so the hart loops with no code of
 * ours running: nothing in S-mode can recover), and an instruction that
 * straddles from RAM into non-RAM (QEMU 7.2 aborts on an assertion). */
#include "lib.h"
#define VM_POOL_PAGES 64
#include "vm.h"

#define RAM_END    0x84000000UL         /* the manifest runs every kernel with 64 MiB */
#define UART       0x10000000UL         /* 16550: the device tree gives it 0x100 bytes */
#define PLIC       0x0c000000UL
#define TIB        (1UL << 40)
#define PA_TOP     ((1UL << 56) - PAGE_SIZE)  /* the last page a PTE can name */

#define VA_BASE    0x2000000000UL       /* 128 GiB: canonical in Sv39 and Sv48 */
#define GIB        0x40000000UL
#define MIB2       0x200000UL
/* 4 KiB pages, all under one leaf table (the first 2 MiB at VA_BASE) */
#define VA_OUT     (VA_BASE + 0x00000)  /* leaves outside RAM, one page each */
#define VA_MIS     (VA_BASE + 0x10000)  /* straddling accesses: 10 pages */
#define VA_SM      (VA_BASE + 0x20000)  /* remapped through the self-map */
#define VA_SMT     (VA_BASE + 0x21000)  /* the leaf table itself */
#define VA_CODE    (VA_BASE + 0x22000)  /* code remapped through the self-map */
#define VA_ROOTV   (VA_BASE + 0x23000)  /* the root table */
#define VA_AD      (VA_BASE + 0x30000)  /* A/D pages */
#define VA_A       (VA_BASE + 0x40000)  /* one VA, a frame per address space */
#define VA_AS2T    (VA_BASE + 0x41000)  /* AS 2's leaf table, seen from AS 1 */
/* superpages and whole subtrees, a gigabyte each */
#define VA_GIG     (VA_BASE + 1 * GIB)  /* 1 GiB page over RAM's end */
#define VA_2M      (VA_BASE + 2 * GIB)  /* 2 MiB pages on either side of RAM's end */
#define VA_WALK1   (VA_BASE + 3 * GIB)  /* level-1 PTEs to tables outside RAM */
#define VA_WALK2   (VA_BASE + 4 * GIB)  /* level-2 PTEs likewise (the Sv39 root) */
#define VA_GAD     (VA_BASE + 8 * GIB)  /* superpages with A = D = 0 */
#define VA_RG_39   (VA_BASE + 10 * GIB)  /* a root entry edited in place (Sv39) */
/* Sv48 only: whole root entries, 512 GiB each */
#define VA_WALK3   (1UL << 39)          /* root PTEs to tables outside RAM (slots 1-3) */
#define VA_TERA    (4UL << 39)          /* a 512 GiB page at physical 0 */
#define VA_RG_48   (5UL << 39)          /* a root entry edited in place (Sv48) */

#define NFRAMES 40
static u8 frames[NFRAMES][PAGE_SIZE] __attribute__((aligned(4096)));
static u64 fpa(int i) { return (u64)frames[i]; }
static u64 *fw(int i) { return (u64 *)frames[i]; }
static int L3;
#define SEC(x) section(L3 ? "Sv39: " x : "Sv48: " x)

#define U_EXIT "li a7, 0x52564d52\necall\n"
AFUNC(s_lb, "lb a0, 0(a0)\nret");
AFUNC(s_lh, "lh a0, 0(a0)\nret");
AFUNC(s_lw, "lw a0, 0(a0)\nret");
AFUNC(s_ld, "ld a0, 0(a0)\nret");
AFUNC(s_sb, "sb a1, 0(a0)\nret");
AFUNC(s_sh, "sh a1, 0(a0)\nret");
AFUNC(s_sw, "sw a1, 0(a0)\nret");
AFUNC(s_sd, "sd a1, 0(a0)\nret");
AFUNC(s_amoadd, "amoadd.d a0, a1, (a0)\nret");
AFUNC(s_lr, "lr.d a0, (a0)\nret");
AFUNC(s_jump, "jr a0");                 /* a fetch fault resumes at our caller */
AFUNC(u_store5, "li a1, 5\nsd a1, 0(a0)\n" U_EXIT);

struct fault { u64 count, cause, tval, epc; };
static struct fault last;

typedef u64 (*afunc_t)(u64, u64, u64);
static u64 run(afunc_t f, u64 a0, u64 a1)
{
    trap_reset();
    u64 v = f(a0, a1, 0);
    trap_off();
    last.count = g_trap.count;
    last.cause = g_trap.cause;
    last.tval = g_trap.tval;
    last.epc = g_trap.epc;
    return v;
}

static u64 load(u64 va) { return run(s_ld, va, 0); }
static void store(u64 va, u64 v) { run(s_sd, va, v); }
static u64 call(u64 va) { return run(s_jump, va, 0); }

static void check_ok(const char *name) { CHECK(name, last.count, 0); }

static void check_fault(const char *name, u64 cause, u64 tval)
{
    CHECK(name, last.count, 1);
    CHECK(name, last.cause, cause);
    CHECK(name, last.tval, tval);
}

/* A load or store fault at va, which leads to physical address pa (or
 * PA_NONE): stval is the virtual address, never pa (Ringvisor reported pa
 * when paging was on until the fix that came with trap-and-emulate). */
#define PA_NONE (~0UL)
static void check_fault_pa(const char *name, u64 cause, u64 va, u64 pa)
{
    CHECK(name, last.count, 1);
    CHECK(name, last.cause, cause);
    CHECK(name, last.tval, va);
    (void)pa;
}

/* QEMU 7.2 reads a PTE through address_space_ldq and turns a failed read
 * into a page fault; 12.3.2 step 2 says an access fault of the original
 * access type.  `qcause` is the page fault accepted from it. */
static void check_fault_q(const char *name, u64 cause, u64 qcause, u64 tval)
{
    CHECK(name, last.count, 1);
    CHECK_Q(name, last.cause, cause, last.cause == qcause);
    CHECK(name, last.tval, tval);
}

/* A load, a store and a fetch at va, each expected to fault with stval = va
 * (the load leaves its destination alone: nothing was read); pa is where va
 * leads, or PA_NONE. */
static void check_lsf(const char *name, u64 va, u64 pa, u64 lc, u64 sc, u64 fc, int quirk)
{
    static const u64 qc[3] = { CAUSE_LOAD_PAGE, CAUSE_STORE_PAGE, CAUSE_FETCH_PAGE };
    u64 v = load(va);
    if (quirk) check_fault_q(name, lc, qc[0], va); else check_fault_pa(name, lc, va, pa);
    CHECK(name, v, va);
    store(va, 0x5a5a);
    if (quirk) check_fault_q(name, sc, qc[1], va); else check_fault_pa(name, sc, va, pa);
    call(va);
    if (quirk) check_fault_q(name, fc, qc[2], va); else check_fault(name, fc, va);
    CHECK(name, last.epc, va);
}

/* Write a PTE and fence the address it maps (12.2.1: enough for a leaf). */
static void set_pte(volatile u64 *pte, u64 v, u64 va)
{
    *pte = v;
    sfence_va(va);
}

static void put16(u64 pa, u16 v) { *(volatile u16 *)pa = v; }
static void fence_i(void) { __asm__ volatile("fence.i" ::: "memory"); }

/* li a0, imm; ret as two 16-bit halves each, so code can be cut anywhere */
static void put_li_ret(u64 pa, int imm)
{
    u32 li = 0x00000513u | ((u32)imm << 20), ret = 0x00008067u;
    put16(pa, (u16)li); put16(pa + 2, (u16)(li >> 16));
    put16(pa + 4, (u16)ret); put16(pa + 6, (u16)(ret >> 16));
    fence_i();
}

static struct vm as1, as2, as3, tmpa, tmpb;
static volatile u64 marker;

/* ------------------------------------------------------------------------ */
/* Leaf PTEs that name frames where nothing is (PMAs, 3.6): the
 * translation succeeds and the access faults, stval the virtual address.   */
static const struct { const char *name; u64 pa, off; } outside[] = {
    { "leaf -> first page past RAM", RAM_END, 0x10 },
    { "leaf -> 256 MiB past RAM", RAM_END + 0x10000000UL, 0x800 },
    { "leaf -> physical 0", 0, 0 },
    { "leaf -> 1 TiB", TIB, 0x28 },
    { "leaf -> top page of the 56-bit space", PA_TOP, 0xff8 },
    { "leaf -> UART page past its 0x100 bytes", UART, 0x100 },
    { "leaf -> page below the PLIC", PLIC - PAGE_SIZE, 0xf00 },
};
#define NOUTSIDE (sizeof outside / sizeof outside[0])

static void test_leaf_outside(void)
{
    SEC("leaves outside RAM");
    for (unsigned i = 0; i < NOUTSIDE; i++)
        vm_map(&as1, VA_OUT + i * PAGE_SIZE, outside[i].pa, 0, PTE_RWX | PTE_AD);
    sfence_vma();
    for (unsigned i = 0; i < NOUTSIDE; i++)
        check_lsf(outside[i].name, VA_OUT + i * PAGE_SIZE + outside[i].off, outside[i].pa + outside[i].off,
                  CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, 0);
}

/* A gigapage and 2 MiB pages that end where RAM ends, or begin there. */
static void test_super_edge(void)
{
    SEC("superpages over RAM's end");
    u64 last8 = RAM_END - 8;
    *(volatile u64 *)last8 = 0x1a57b17e;
    vm_map(&as1, VA_GIG, RAM_BASE, 2, PTE_RWX | PTE_AD);
    vm_map(&as1, VA_2M, RAM_END - MIB2, 1, PTE_RWX | PTE_AD);
    vm_map(&as1, VA_2M + MIB2, RAM_END, 1, PTE_RWX | PTE_AD);
    sfence_vma();
    u64 g = VA_GIG + (RAM_END - RAM_BASE);
    CHECK("1 GiB page: RAM's last bytes", load(g - 8), 0x1a57b17e);
    check_ok("1 GiB page: RAM's last bytes, no trap");
    check_lsf("1 GiB page: first byte past RAM", g, RAM_END, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, 0);
    check_lsf("1 GiB page: its last page", VA_GIG + GIB - 8, RAM_BASE + GIB - 8, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, 0);
    u64 m = VA_2M + MIB2;
    CHECK("2 MiB page: RAM's last bytes", load(m - 8), 0x1a57b17e);
    check_ok("2 MiB page: RAM's last bytes, no trap");
    check_lsf("2 MiB page past RAM: first byte", m, RAM_END, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, 0);

    /* Straddling RAM's end: the part past it faults (stval: that part). */
    CHECK("ld straddling RAM's end", load(m - 4), m - 4);
    check_fault_pa("ld straddling RAM's end", CAUSE_LOAD_ACCESS, m, RAM_END);
    store(m - 4, 0x1122334455667788UL);
    check_fault_pa("sd straddling RAM's end", CAUSE_STORE_ACCESS, m, RAM_END);

    if (!L3) {
        /* Sv48: one 512 GiB page at physical 0 covers devices, RAM and
         * nothing at all. */
        vm_map(&as1, VA_TERA, 0, 3, PTE_RWX | PTE_AD);
        sfence_vma();
        marker = 0x7e7a;
        CHECK("512 GiB page: kernel data", load(VA_TERA + (u64)&marker), 0x7e7a);
        check_ok("512 GiB page: kernel data, no trap");
        check_lsf("512 GiB page: past RAM", VA_TERA + RAM_END + 0x3000, RAM_END + 0x3000, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, 0);
        check_lsf("512 GiB page: past the UART", VA_TERA + UART + 0x100, UART + 0x100, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, 0);
        check_lsf("512 GiB page: 256 GiB", VA_TERA + (256UL << 30), 256UL << 30, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, 0);
    }
}

/* Non-leaf PTEs naming tables outside RAM: the walk's own read faults, an
 * access fault of the original access type (12.3.2 step 2). */
static void test_walk_outside(void)
{
    SEC("page-table walks outside RAM");
    static const u64 tables[3] = { RAM_END, 0, TIB };
    for (int i = 0; i < 3; i++) {
        vm_set(&as1, VA_WALK1 + (u64)i * MIB2, 1, vm_pte_pa(tables[i], PTE_V));
        vm_set(&as1, VA_WALK2 + (u64)i * GIB, 2, vm_pte_pa(tables[i], PTE_V));
        if (!L3)
            vm_set(&as1, VA_WALK3 + ((u64)i << 39), 3, vm_pte_pa(tables[i], PTE_V));
    }
    sfence_vma();
    for (int i = 0; i < 3; i++) {
        check_lsf("level-1 PTE -> table outside RAM", VA_WALK1 + (u64)i * MIB2 + 0x5008, PA_NONE,
                  CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, 1);
        check_lsf(L3 ? "root PTE -> table outside RAM" : "level-2 PTE -> table outside RAM",
                  VA_WALK2 + (u64)i * GIB + 0x1230, PA_NONE,
                  CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, 1);
        if (!L3)
            check_lsf("root PTE -> table outside RAM", VA_WALK3 + ((u64)i << 39) + 0x40, PA_NONE,
                      CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, 1);
    }
}

/* ------------------------------------------------------------------------ */
/* The leaf table that maps VA_SM also maps itself (at VA_SMT) writable; a
 * PTE written through that mapping is used after sfence.vma (12.2.1). */
static void test_self_map(void)
{
    SEC("a page table mapping itself");
    u64 *t = vm_table(&as1, VA_SM, 0);
    volatile u64 *via = (volatile u64 *)(VA_SMT + 8 * vm_index(VA_SM, 0));
    volatile u64 *via_self = (volatile u64 *)(VA_SMT + 8 * vm_index(VA_SMT, 0));
    volatile u64 *via_code = (volatile u64 *)(VA_SMT + 8 * vm_index(VA_CODE, 0));
    fw(0)[0] = 0xf0; fw(1)[0] = 0xf1;
    vm_map(&as1, VA_SM, fpa(0), 0, PTE_RW | PTE_AD);
    vm_map(&as1, VA_SMT, (u64)t, 0, PTE_RW | PTE_AD);
    sfence_vma();
    CHECK("through the table's own mapping: the PTE", *via, vm_pte_pa(fpa(0), PTE_RW | PTE_AD));
    CHECK("before the edit", load(VA_SM), 0xf0);
    set_pte(via, vm_pte_pa(fpa(1), PTE_RW | PTE_AD), VA_SM);
    CHECK("PTE edited through the self-map, sfence.vma va", load(VA_SM), 0xf1);
    CHECK("the table itself changed", t[vm_index(VA_SM, 0)], vm_pte_pa(fpa(1), PTE_RW | PTE_AD));
    set_pte(via, 0, VA_SM);
    load(VA_SM + 8);
    check_fault("PTE cleared through the self-map", CAUSE_LOAD_PAGE, VA_SM + 8);
    /* The hart's A/D updates land in the table, seen through the self-map. */
    set_pte(via, vm_pte_pa(fpa(0), PTE_RW), VA_SM);
    CHECK("A = D = 0 through the self-map", load(VA_SM), 0xf0);
    CHECK("the load's A update, read through the self-map", *via & PTE_AD, PTE_A);
    store(VA_SM + 8, 1);
    CHECK("the store's D update, read through the self-map", *via & PTE_AD, PTE_AD);
    /* The table makes its own mapping read-only: its next write faults. */
    set_pte(via_self, vm_pte_pa((u64)t, PTE_V | PTE_R | PTE_AD), VA_SMT);
    store((u64)via, 0);
    check_fault("the table mapped itself read-only: store", CAUSE_STORE_PAGE, (u64)via);
    CHECK("the read-only table still maps VA_SM", load(VA_SM), 0xf0);
    CHECK("and still reads itself", *via_self, vm_pte_pa((u64)t, PTE_V | PTE_R | PTE_AD));
    t[vm_index(VA_SMT, 0)] = vm_pte_pa((u64)t, PTE_RW | PTE_AD);   /* through the kernel's map */
    sfence_va(VA_SMT);
    store((u64)via + 0, vm_pte_pa(fpa(1), PTE_RW | PTE_AD));
    check_ok("writable again");
    sfence_va(VA_SM);
    CHECK("writable again: the edit is used", load(VA_SM), 0xf1);

    /* The page being executed moves to another frame. */
    put_li_ret(fpa(2), 21);
    put_li_ret(fpa(3), 22);
    vm_map(&as1, VA_CODE, fpa(2), 0, PTE_V | PTE_R | PTE_X | PTE_AD);
    sfence_vma();
    CHECK("code page", call(VA_CODE), 21);
    set_pte(via_code, vm_pte_pa(fpa(3), PTE_V | PTE_R | PTE_X | PTE_AD), VA_CODE);
    CHECK("code page remapped through the self-map", call(VA_CODE), 22);
    set_pte(via_code, vm_pte_pa(fpa(3), PTE_V | PTE_R | PTE_AD), VA_CODE);
    call(VA_CODE);
    check_fault("code page lost X through the self-map", CAUSE_FETCH_PAGE, VA_CODE);
}

/* A root entry edited through the root's own mapping while the address
 * space runs.  A leaf may be fenced by address; a non-leaf needs a fence
 * with rs1 = x0 (12.2.1), by ASID or global. */
static void test_root_edit(void)
{
    SEC("root entries edited in place");
    u64 va = L3 ? VA_RG_39 : VA_RG_48;
    unsigned r = vm_index(va, as1.levels - 1);
    u64 base = L3 ? RAM_BASE : 0;             /* a 1 GiB or a 512 GiB leaf */
    u64 other = L3 ? 0 : 1UL << 39;           /* the same leaf moved: no RAM */
    u64 at = va + ((u64)&marker - base);
    volatile u64 *rv = (volatile u64 *)(VA_ROOTV + 8 * r);
    u64 asid = (csr_read(satp) >> 44) & 0xffff;
    marker = 0x600d;
    vm_map(&as1, VA_ROOTV, (u64)as1.root, 0, PTE_RW | PTE_AD);
    sfence_vma();
    CHECK("the root entry starts invalid", *rv, 0);
    load(at);
    check_fault("root entry invalid", CAUSE_LOAD_PAGE, at);
    set_pte(rv, vm_pte_pa(base, PTE_RW | PTE_AD), at);
    CHECK("root leaf written, sfence.vma va", load(at), 0x600d);
    set_pte(rv, vm_pte_pa(other, PTE_RW | PTE_AD), at);
    load(at);
    check_fault_pa("root leaf moved off RAM, sfence.vma va", CAUSE_LOAD_ACCESS, at, other + ((u64)&marker - base));
    set_pte(rv, 0, at);
    load(at);
    check_fault("root leaf cleared, sfence.vma va", CAUSE_LOAD_PAGE, at);
    *rv = vm_pte_pa(base, PTE_RW | PTE_AD);
    sfence_va_asid(at, asid);
    CHECK("root leaf back, sfence.vma va, asid", load(at), 0x600d);

    /* Whole subtrees swapped under the running kernel. */
    fw(4)[0] = 0xa4; fw(5)[0] = 0xb5;
    vm_map(&tmpa, va, fpa(4), 0, PTE_RW | PTE_AD);
    vm_map(&tmpb, va, fpa(5), 0, PTE_RW | PTE_AD);
    *rv = tmpa.root[r];
    sfence_asid(asid);
    CHECK("root -> subtree A, sfence.vma 0, asid", load(va), 0xa4);
    *rv = tmpb.root[r];
    sfence_vma();
    CHECK("root -> subtree B, sfence.vma 0, 0", load(va), 0xb5);
    *rv = tmpa.root[r];
    sfence_vma();
    CHECK("root -> subtree A again", load(va), 0xa4);
    *rv = 0;
    sfence_asid(asid);
    load(va);
    check_fault("root entry removed, sfence.vma 0, asid", CAUSE_LOAD_PAGE, va);
}

/* Switch to the address space in `satp` (no fence) and load from va. */
static u64 load_in(u64 s, u64 va)
{
    csr_write(satp, s);
    return load(va);
}

/* Two address spaces map VA_A to different frames; AS 1 maps AS 2's leaf
 * table and edits it while AS 2 is not running, fencing ASID 2 only. */
static void test_inactive_as(void)
{
    SEC("editing an inactive address space");
    fw(6)[0] = 0x1a; fw(7)[0] = 0x2a; fw(8)[0] = 0x2b; fw(9)[0] = 0x3c;
    vm_map(&as1, VA_A, fpa(6), 0, PTE_RW | PTE_AD);
    vm_map(&as2, VA_A, fpa(7), 0, PTE_RW | PTE_AD);
    u64 *t2 = vm_table(&as2, VA_A, 0);
    vm_map(&as1, VA_AS2T, (u64)t2, 0, PTE_RW | PTE_AD);
    volatile u64 *via = (volatile u64 *)(VA_AS2T + 8 * vm_index(VA_A, 0));
    u64 s1 = vm_satp(&as1, 1), s2 = vm_satp(&as2, 2);
    sfence_vma();
    CHECK("AS 1", load(VA_A), 0x1a);
    CHECK("AS 2", load_in(s2, VA_A), 0x2a);
    csr_write(satp, s1);
    *via = vm_pte_pa(fpa(8), PTE_RW | PTE_AD);
    sfence_va_asid(VA_A, 2);
    CHECK("AS 1 while AS 2 is edited", load(VA_A), 0x1a);
    CHECK("AS 2 after an edit from AS 1, sfence.vma va, 2", load_in(s2, VA_A), 0x2b);
    csr_write(satp, s1);
    *via = 0;
    sfence_asid(2);
    CHECK("AS 1 after AS 2 lost the page", load(VA_A), 0x1a);
    csr_write(satp, s2);
    load(VA_A);
    check_fault("AS 2 after its PTE was cleared from AS 1, sfence.vma 0, 2", CAUSE_LOAD_PAGE, VA_A);
    csr_write(satp, s1);
    *via = vm_pte_pa(fpa(7), PTE_RW | PTE_AD);
    sfence_asid(2);

    /* ASID 1 reused for another root: after a fence of ASID 1 only the new
     * tables count (12.2.1: reusing an ASID needs that fence). */
    vm_map(&as3, VA_A, fpa(9), 0, PTE_RW | PTE_AD);
    u64 s3 = vm_satp(&as3, 1);
    CHECK("AS 1 before the reuse", load(VA_A), 0x1a);
    csr_write(satp, s3);
    sfence_asid(1);
    CHECK("ASID 1 on a new root", load(VA_A), 0x3c);
    CHECK("AS 2 meanwhile", load_in(s2, VA_A), 0x2a);
    csr_write(satp, s1);
    sfence_asid(1);
    CHECK("ASID 1 back on its first root", load(VA_A), 0x1a);
}

/* ------------------------------------------------------------------------ */
/* A/D updates by the hart (12.3.2 step 7) that paging.c does not cover. */
static u64 u_ad_stack[64] __attribute__((aligned(16)));
static volatile u64 ad_scratch[4];

static void test_ad(void)
{
    SEC("A/D bits");
    /* Superpages: a gigapage and a 2 MiB page over the kernel's RAM. */
    u64 off = (u64)&ad_scratch[0] - RAM_BASE;
    volatile u64 *g = vm_map(&as1, VA_GAD, RAM_BASE, 2, PTE_RW);
    u64 m2 = VA_GAD + GIB;                    /* the 2 MiB holding ad_scratch */
    volatile u64 *p2 = vm_map(&as1, m2, (u64)ad_scratch & ~(MIB2 - 1), 1, PTE_RW);
    sfence_vma();
    ad_scratch[0] = 0xad;
    CHECK("1 GiB page, A = 0: load", load(VA_GAD + off), 0xad);
    CHECK("1 GiB page: the load sets A", *g & PTE_AD, PTE_A);
    store(VA_GAD + off + 8, 0xd1);
    CHECK("1 GiB page: the store sets D", *g & PTE_AD, PTE_AD);
    CHECK("1 GiB page: the store landed", ad_scratch[1], 0xd1);
    store(m2 + ((u64)&ad_scratch[2] & (MIB2 - 1)), 0xd2);
    CHECK("2 MiB page, A = D = 0: a store sets both", *p2 & PTE_AD, PTE_AD);
    CHECK("2 MiB page: the store landed", ad_scratch[2], 0xd2);

    /* AMO and LR. */
    fw(10)[0] = 40; fw(11)[0] = 0x11;
    volatile u64 *pa = vm_map(&as1, VA_AD, fpa(10), 0, PTE_RW);
    volatile u64 *pl = vm_map(&as1, VA_AD + 0x1000, fpa(11), 0, PTE_RW);
    sfence_vma();
    CHECK("amoadd.d on A = D = 0: old value", run(s_amoadd, VA_AD, 2), 40);
    check_ok("amoadd.d on A = D = 0: no trap");
    CHECK("amoadd.d: new value", fw(10)[0], 42);
    CHECK("amoadd.d sets A and D", *pa & PTE_AD, PTE_AD);
    CHECK("lr.d on A = 0", run(s_lr, VA_AD + 0x1000, 0), 0x11);
    CHECK("lr.d sets A only", *pl & PTE_AD, PTE_A);

    /* Software clears A and D (as a dirty-page scan does) and fences: the
     * next accesses set them again. */
    volatile u64 *pc = vm_map(&as1, VA_AD + 0x2000, fpa(12), 0, PTE_RW);
    sfence_vma();
    store(VA_AD + 0x2000, 1);
    CHECK("first store: A and D", *pc & PTE_AD, PTE_AD);
    *pc &= ~PTE_AD;
    sfence_va(VA_AD + 0x2000);
    load(VA_AD + 0x2000);
    CHECK("A cleared and fenced: a load sets A again", *pc & PTE_AD, PTE_A);
    store(VA_AD + 0x2008, 2);
    CHECK("D cleared and fenced: a store sets D again", *pc & PTE_AD, PTE_AD);
    *pc &= ~PTE_D;
    sfence_va(VA_AD + 0x2000);
    load(VA_AD + 0x2000);
    CHECK("D cleared, A kept: a load leaves D clear", *pc & PTE_AD, PTE_A);
    store(VA_AD + 0x2010, 3);
    CHECK("then a store sets D", *pc & PTE_AD, PTE_AD);
    CHECK("all three stores landed", fw(12)[0] + fw(12)[1] + fw(12)[2], 6);

    /* U pages: an S store under SUM, and a U store. */
    volatile u64 *ps = vm_map(&as1, VA_AD + 0x3000, fpa(13), 0, PTE_RW | PTE_U);
    memcpy(frames[14], (const void *)u_store5, 20);     /* 5 instructions */
    fence_i();
    vm_map(&as1, VA_AD + 0x4000, fpa(14), 0, PTE_V | PTE_R | PTE_X | PTE_U | PTE_AD);
    volatile u64 *pu = vm_map(&as1, VA_AD + 0x5000, fpa(15), 0, PTE_RW | PTE_U);
    sfence_vma();
    csr_set(sstatus, SSTATUS_SUM);
    store(VA_AD + 0x3000, 7);
    csr_clear(sstatus, SSTATUS_SUM);
    check_ok("S store to a U page under SUM, A = D = 0");
    CHECK("S store under SUM sets A and D", *ps & PTE_AD, PTE_AD);
    trap_reset();
    run_user((void *)(VA_AD + 0x4000), VA_AD + 0x5008, (u64)&u_ad_stack[64]);
    trap_off();
    CHECK("U store to a U page, A = D = 0: no trap", g_trap.count, 0);
    CHECK("U store sets A and D", *pu & PTE_AD, PTE_AD);
    CHECK("U store landed", fw(15)[1], 5);
}

/* ------------------------------------------------------------------------ */
/* Accesses and instructions that cross into a page that is missing or
 * read-only.  stval is the address of the part that faulted (stval: "the
 * portion of the access that caused the fault"; for a fetch, sepc is the
 * instruction's start and stval the faulting part). */
static void test_straddle(void)
{
    SEC("straddling a page boundary");
    u64 p[10];
    for (int i = 0; i < 10; i++)
        p[i] = VA_MIS + (u64)i * PAGE_SIZE;
    for (int i = 16; i < 24; i++)
        memset(frames[i], 0x10 + i, PAGE_SIZE);
    vm_map(&as1, p[0], fpa(16), 0, PTE_RW | PTE_AD);         /* p[1] missing */
    vm_map(&as1, p[2], fpa(17), 0, PTE_RW | PTE_AD);
    vm_map(&as1, p[3], fpa(18), 0, PTE_V | PTE_R | PTE_AD);  /* read-only */
    vm_map(&as1, p[5], fpa(19), 0, PTE_RW | PTE_AD);         /* p[4] missing */
    vm_map(&as1, p[6], fpa(20), 0, PTE_V | PTE_R | PTE_X | PTE_AD);  /* p[7] missing */
    vm_map(&as1, p[8], fpa(21), 0, PTE_V | PTE_R | PTE_X | PTE_AD);
    vm_map(&as1, p[9], fpa(22), 0, PTE_V | PTE_R | PTE_X | PTE_AD);
    sfence_vma();

    run(s_sd, p[1] - 4, 0);
    check_fault("sd into a missing page", CAUSE_STORE_PAGE, p[1]);
    CHECK("sd into a missing page: sepc", last.epc, (u64)s_sd);
    run(s_sw, p[1] - 2, 0);
    check_fault("sw into a missing page", CAUSE_STORE_PAGE, p[1]);
    CHECK("ld into a missing page: nothing read", run(s_ld, p[1] - 6, 0), p[1] - 6);
    check_fault("ld into a missing page", CAUSE_LOAD_PAGE, p[1]);
    CHECK("lw into a missing page: nothing read", run(s_lw, p[1] - 1, 0), p[1] - 1);
    check_fault("lw into a missing page", CAUSE_LOAD_PAGE, p[1]);
    run(s_lh, p[1] - 1, 0);
    check_fault("lh into a missing page", CAUSE_LOAD_PAGE, p[1]);

    run(s_sd, p[3] - 3, 0x0102030405060708UL);
    check_fault("sd into a read-only page", CAUSE_STORE_PAGE, p[3]);
    CHECK("the read-only page is unchanged", fw(18)[0], 0x2222222222222222UL);
    CHECK("ld across two mapped pages", run(s_ld, p[3] - 3, 0), 0x2222222222212121UL);
    check_ok("ld across two mapped pages: no trap");
    run(s_sh, p[3] - 1, 0x3333);
    check_fault("sh into a read-only page", CAUSE_STORE_PAGE, p[3]);

    CHECK("ld from a missing page into a mapped one", run(s_ld, p[5] - 4, 0), p[5] - 4);
    check_fault("ld from a missing page into a mapped one", CAUSE_LOAD_PAGE, p[5] - 4);
    run(s_sd, p[5] - 2, 0);
    check_fault("sd from a missing page into a mapped one", CAUSE_STORE_PAGE, p[5] - 2);

    put16(fpa(20) + PAGE_SIZE - 2, 0x0513);      /* li a0, .. cut by the page end */
    fence_i();
    call(p[7] - 2);
    check_fault("instruction running into a missing page", CAUSE_FETCH_PAGE, p[7]);
    CHECK("instruction running into a missing page: sepc", last.epc, p[7] - 2);

    u32 li = 0x00000513u | (42u << 20), ret = 0x00008067u;
    put16(fpa(21) + PAGE_SIZE - 2, (u16)li);
    put16(fpa(22), (u16)(li >> 16));
    put16(fpa(22) + 2, (u16)ret);
    put16(fpa(22) + 4, (u16)(ret >> 16));
    fence_i();
    CHECK("instruction across two mapped pages runs", call(p[9] - 2), 42);
    check_ok("instruction across two mapped pages: no trap");
}

/* ------------------------------------------------------------------------ */
/* Paging off: physical addresses where nothing is, of every access size. */
static void test_unassigned_phys(void)
{
    section("Bare: unassigned physical addresses");
    static const struct { const char *name; u64 pa; } bare[] = {
        { "physical 0", 0 },
        { "past the UART's 0x100 bytes", UART + 0x100 },
        { "below the PLIC", PLIC - 8 },
        { "RAM's end + 256 MiB", RAM_END + 0x10000000UL },
        { "1 TiB", TIB },
        { "top of the 56-bit space", (1UL << 56) - 8 },
    };
    static const afunc_t loads[4] = { s_lb, s_lh, s_lw, s_ld };
    for (unsigned i = 0; i < sizeof bare / sizeof bare[0]; i++) {
        u64 a = bare[i].pa;
        for (int k = 0; k < 4; k++) {
            CHECK(bare[i].name, run(loads[k], a, 0), a);
            check_fault(bare[i].name, CAUSE_LOAD_ACCESS, a);
        }
        run(s_sb, a, 1);
        check_fault(bare[i].name, CAUSE_STORE_ACCESS, a);
        run(s_sd, a, 1);
        check_fault(bare[i].name, CAUSE_STORE_ACCESS, a);
        call(a);
        check_fault(bare[i].name, CAUSE_FETCH_ACCESS, a);
        CHECK(bare[i].name, run(s_lr, a & ~7UL, 0), a & ~7UL);
        check_fault(bare[i].name, CAUSE_LOAD_ACCESS, a & ~7UL);
        /* An AMO faults as a store (scause table, "Store/AMO access fault");
         * QEMU 7.2 replays it as a plain load first and reports 5. */
        CHECK(bare[i].name, run(s_amoadd, a & ~7UL, 1), a & ~7UL);
        CHECK(bare[i].name, last.count, 1);
        CHECK_Q(bare[i].name, last.cause, CAUSE_STORE_ACCESS, last.cause == CAUSE_LOAD_ACCESS);
        CHECK(bare[i].name, last.tval, a & ~7UL);
    }
    CHECK("ld straddling RAM's end", run(s_ld, RAM_END - 4, 0), RAM_END - 4);
    check_fault("ld straddling RAM's end", CAUSE_LOAD_ACCESS, RAM_END);
    run(s_sd, RAM_END - 4, 0);
    check_fault("sd straddling RAM's end", CAUSE_STORE_ACCESS, RAM_END);
}

static void run_pass(int levels)
{
    L3 = levels == 3;
    vm_pool_next = 0;
    memset(frames, 0, sizeof frames);
    struct vm *all[5] = { &as1, &as2, &as3, &tmpa, &tmpb };
    for (int i = 0; i < 5; i++) {
        vm_init(all[i], levels);
        vm_map_kernel(all[i]);
    }
    csr_write(satp, vm_satp(&as1, 1));
    sfence_vma();
    test_leaf_outside();
    test_super_edge();
    test_walk_outside();
    test_self_map();
    test_root_edit();
    test_inactive_as();
    test_ad();
    test_straddle();
    csr_write(satp, 0);
    sfence_vma();
}

int main(void)
{
    begin("hostile");
    csr_write(sstatus, SSTATUS_FS_INITIAL);
    test_unassigned_phys();
    run_pass(3);
    run_pass(4);
    return finish();
}
