/* Sv39/Sv48 page tables for the guest kernels: the builder in
 * tests/common/pagetable.h (the kernel runs identity-mapped, so a table's
 * virtual and physical addresses are the same), plus the kernel's own
 * mapping and sfence.vma forms. */
#ifndef RINGVISOR_GUEST_VM_H
#define RINGVISOR_GUEST_VM_H
#include "lib.h"

#define RAM_BASE  0x80000000UL

#ifndef VM_POOL_PAGES
#define VM_POOL_PAGES 32
#endif
#include "pagetable.h"

/* The kernel's own gigapage (0x8000_0000..0xbfff_ffff), identity-mapped
 * for S with A and D already set. */
static void vm_map_kernel(struct vm *m)
{
    vm_map(m, RAM_BASE, RAM_BASE, 2, PTE_RWX | PTE_AD | PTE_G);
}

static inline void sfence_va(u64 va) { __asm__ volatile("sfence.vma %0, zero" :: "r"(va) : "memory"); }
static inline void sfence_asid(u64 asid) { __asm__ volatile("sfence.vma zero, %0" :: "r"(asid) : "memory"); }
static inline void sfence_va_asid(u64 va, u64 asid) { __asm__ volatile("sfence.vma %0, %1" :: "r"(va), "r"(asid) : "memory"); }

#endif
