/* Page tables for the virtual-memory tests (Sv39/Sv48): the builder in
 * tests/common/pagetable.h, used from M-mode. */
#ifndef RINGVISOR_TEST_VM_H
#define RINGVISOR_TEST_VM_H
#include "lib.h"

#ifndef VM_POOL_PAGES
#define VM_POOL_PAGES 48
#endif
#include "pagetable.h"

static inline void sfence_all(void) { __asm__ volatile("sfence.vma" ::: "memory"); }

#endif
