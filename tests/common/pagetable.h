/* Sv39/Sv48 page-table construction, shared by the bare-metal programs'
 * and the guest kernels' vm.h.  Tables live in a static pool inside the
 * image and are built with plain stores, so the code building them must see
 * them at their physical addresses (M-mode, or an identity-mapped kernel).
 * The includer sets VM_POOL_PAGES (the pool size in 4 KiB tables). */
#ifndef RINGVISOR_PAGETABLE_H
#define RINGVISOR_PAGETABLE_H
#include "testlib.h"

#ifndef VM_POOL_PAGES
#error "define VM_POOL_PAGES before including pagetable.h"
#endif

#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_G (1UL << 5)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)
#define PTE_RW   (PTE_V | PTE_R | PTE_W)
#define PTE_RWX  (PTE_V | PTE_R | PTE_W | PTE_X)
#define PTE_AD   (PTE_A | PTE_D)

#define PAGE_SIZE 4096UL
#define SATP_SV39 (8UL << 60)
#define SATP_SV48 (9UL << 60)

static u64 vm_pool[VM_POOL_PAGES][512] __attribute__((aligned(4096)));
static unsigned vm_pool_next;

struct vm {
    u64 *root;
    int levels;         /* 3 = Sv39, 4 = Sv48 */
};

static u64 *vm_alloc(void)
{
    if (vm_pool_next >= VM_POOL_PAGES)
        fatal("page-table pool exhausted", vm_pool_next);
    u64 *p = vm_pool[vm_pool_next++];
    for (int i = 0; i < 512; i++)
        p[i] = 0;
    return p;
}

static void vm_init(struct vm *m, int levels)
{
    m->levels = levels;
    m->root = vm_alloc();
}

static unsigned vm_index(u64 va, int level)
{
    return (unsigned)((va >> (12 + 9 * level)) & 511);
}

/* The table holding the level-`level` entry for va (creating tables). */
static u64 *vm_table(struct vm *m, u64 va, int level)
{
    u64 *t = m->root;
    for (int l = m->levels - 1; l > level; l--) {
        u64 *e = &t[vm_index(va, l)];
        if (!(*e & PTE_V))
            *e = (((u64)vm_alloc() >> 12) << 10) | PTE_V;
        t = (u64 *)((*e >> 10) << 12);
    }
    return t;
}

static u64 vm_pte_pa(u64 pa, u64 flags) { return ((pa >> 12) << 10) | flags; }

/* Map va -> pa with a leaf at `level` (0: 4 KiB, 1: 2 MiB, 2: 1 GiB,
 * 3: 512 GiB); returns the PTE's address. */
static volatile u64 *vm_map(struct vm *m, u64 va, u64 pa, int level, u64 flags)
{
    u64 *t = vm_table(m, va, level);
    volatile u64 *e = &t[vm_index(va, level)];
    *e = vm_pte_pa(pa, flags);
    return e;
}

/* Store a raw PTE (an invalid or reserved encoding, or a misaligned PPN). */
static volatile u64 *vm_set(struct vm *m, u64 va, int level, u64 pte)
{
    u64 *t = vm_table(m, va, level);
    volatile u64 *e = &t[vm_index(va, level)];
    *e = pte;
    return e;
}

static u64 vm_satp(struct vm *m, u64 asid)
{
    return (m->levels == 4 ? SATP_SV48 : SATP_SV39) | (asid << 44) | ((u64)m->root >> 12);
}

#endif
