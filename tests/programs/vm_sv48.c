/* Virtual memory tests of vm.c with four-level Sv48 page tables, plus the
 * Sv48-only cases: VA bit 39..47, 512 GiB pages and their alignment. */
#define VM_LEVELS 4
#include "vm.c"
