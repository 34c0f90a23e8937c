/* exitcost: what each kind of VMM exit costs, for bench/virt.ts.
 *
 * An S-mode guest kernel, booted like Linux (tests/guests/README.md: entered at 0x8020_0000
 * with satp = 0, linked with the guest test kernels' runtime by build-exitcost.sh):
 *
 *     ringvisor run --kernel build/bench/exitcost.elf --append "" --mem 64 --markers
 *
 * It turns on Sv39 paging (its RAM identity-mapped in 2 MiB pages), then runs one section per
 * operation: a console line
 *
 *     section <i> <key>: <n> iterations, <k> ops each: <what>
 *
 * and then n iterations of a loop doing the operation k times, between two markers
 * (slti x0, x0, 0x7a5), so section i's markers are the (2i-1)th and (2i)th. The first section is
 * the loop alone (addi, bnez), which the bench subtracts. Under --virt native the privileged
 * operations run in the hart's S-mode; under trap-and-emulate each one is a VMM exit (or a
 * reflected trap and the exits of its handler), so the difference is the exit's price. The loops
 * are inline assembly: the compiler adds nothing between the markers. The handlers of the trap
 * sections are two or three instructions that read no CSR, so that a round trip is exactly the
 * trap and its sret. */
#include "lib.h"
#define VM_POOL_PAGES 8
#include "vm.h"

#define MARK "slti x0, x0, 0x7a5\n"
/* n iterations of body between two markers; body must not use local label 1. */
#define LOOP(body) MARK "1:\n" body "addi %[n], %[n], -1\nbnez %[n], 1b\n" MARK

/* Where the trap sections work: a U-mode code page, and a leaf table of TEST_PAGES valid,
 * accessed 4 KiB pages (all on one frame) whose first one is faulted and fenced. A shadow fill
 * under trap-and-emulate also shadows the rest of the guest's leaf table; TEST_PAGES is about
 * what a Linux boot prefills per fill (116: 7.3 M prefills over 63 k fills). */
#define USER_VA    0x40000000UL
#define TEST_VA    0x40200000UL
#define TEST_PAGES 128

#define KERNEL_MAPPED (64UL << 20)

static volatile u64 *test_pte;
static u64 test_frame[512] __attribute__((aligned(4096)));

/* The U-mode side of the system call section: alone on its page, mapped at USER_VA. It only
 * ever runs its first instruction: the handler returns to the ecall itself (sepc unchanged). */
void exitcost_user(void);
__asm__(".pushsection .text.exitcost_user, \"ax\", @progbits\n"
        ".balign 4096\n"
        ".globl exitcost_user\n"
        "exitcost_user:\n"
        "ecall\n"
        "j exitcost_user\n"
        ".popsection\n");

static void sec_empty(u64 n)
{
    __asm__ volatile(LOOP("") : [n] "+r"(n) : : "memory");
}

static void sec_alu(u64 n)
{
    __asm__ volatile(LOOP("add t1, t1, t2\n xor t2, t2, t1\n slli t3, t1, 3\n srli t4, t2, 5\n"
                          "add t1, t1, t3\n sub t2, t2, t4\n or t3, t3, t1\n and t4, t4, t2\n")
                     : [n] "+r"(n) : : "t1", "t2", "t3", "t4", "memory");
}

static void sec_csrr_sscratch(u64 n)
{
    __asm__ volatile(LOOP("csrr t1, sscratch\n") : [n] "+r"(n) : : "t1", "memory");
}

/* sscratch stays 0, what start.S's trap entry expects in S-mode. */
static void sec_csrw_sscratch(u64 n)
{
    __asm__ volatile(LOOP("csrw sscratch, zero\n") : [n] "+r"(n) : : "memory");
}

/* What Linux does around every user copy. */
static void sec_sstatus_sum(u64 n)
{
    __asm__ volatile(LOOP("csrs sstatus, %[sum]\n csrc sstatus, %[sum]\n")
                     : [n] "+r"(n) : [sum] "r"(SSTATUS_SUM) : "memory");
}

/* An sstatus write that changes nothing the shadow cares about: the sret section pays one. */
static void sec_sstatus_spp(u64 n)
{
    u64 old = csr_read(sstatus);
    __asm__ volatile(LOOP("csrs sstatus, %[spp]\n") : [n] "+r"(n) : [spp] "r"(SSTATUS_SPP) : "memory");
    csr_write(sstatus, old);
}

static void sec_csrr_sepc(u64 n)
{
    __asm__ volatile(LOOP("csrr t1, sepc\n") : [n] "+r"(n) : : "t1", "memory");
}

/* sret from S to S, to the next instruction: sret leaves sepc alone but sets SPP to U, so each
 * iteration sets SPP again first (the sstatus-spp section measures that write alone). */
static void sec_sret(u64 n)
{
    u64 old = csr_read(sstatus);
    __asm__ volatile("la t1, 2f\n csrw sepc, t1\n"
                     MARK "1:\n csrs sstatus, %[spp]\n sret\n"
                     "2:\n addi %[n], %[n], -1\n bnez %[n], 1b\n" MARK
                     : [n] "+r"(n) : [spp] "r"(SSTATUS_SPP) : "t1", "memory");
    csr_write(sstatus, old);
}

static void sec_sfence(u64 n)
{
    __asm__ volatile(LOOP("sfence.vma %[va], zero\n") : [n] "+r"(n) : [va] "r"(TEST_VA) : "memory");
}

/* A fence then a load of the fenced page: natively a TLB miss and a page walk, under
 * trap-and-emulate a shadow page fault (a guest walk and a fill) on top of the fence. */
static void sec_shadow_fill(u64 n)
{
    __asm__ volatile(LOOP("sfence.vma %[va], zero\n ld t1, 0(%[va])\n")
                     : [n] "+r"(n) : [va] "r"(TEST_VA) : "t1", "memory");
}

/* SBI base get_spec_version (EID 0x10, FID 0): a hypercall. SBI keeps every register but a0, a1. */
static void sec_sbi(u64 n)
{
    register u64 a7 __asm__("a7") = SBI_EXT_BASE;
    register u64 a6 __asm__("a6") = 0;
    __asm__ volatile(LOOP("ecall\n") : [n] "+r"(n) : "r"(a7), "r"(a6) : "a0", "a1", "memory");
}

/* A system call round trip: U executes ecall, the S handler counts and returns with sret to the
 * same ecall. */
static void sec_u_ecall(u64 n)
{
    u64 old_status = csr_read(sstatus), old_stvec = csr_read(stvec);
    __asm__ volatile("la t1, 3f\n csrw stvec, t1\n"
                     "csrw sepc, %[uva]\n csrc sstatus, %[spp]\n"
                     MARK "sret\n"
                     ".balign 4\n"
                     "3:\n addi %[n], %[n], -1\n beqz %[n], 4f\n sret\n"
                     "4:\n" MARK
                     : [n] "+r"(n) : [uva] "r"(USER_VA), [spp] "r"(SSTATUS_SPP) : "t1", "memory");
    csr_write(stvec, old_stvec);
    csr_write(sstatus, old_status);
}

/* A page fault round trip: the page's PTE is made invalid and fenced, the load faults, the
 * handler makes the PTE valid again and returns to the load with sret, which then completes. */
static void sec_page_fault(u64 n)
{
    u64 valid = *test_pte, old_stvec = csr_read(stvec);
    __asm__ volatile("la t1, 3f\n csrw stvec, t1\n"
                     MARK "1:\n sd zero, 0(%[pte])\n sfence.vma %[va], zero\n ld t1, 0(%[va])\n"
                     "addi %[n], %[n], -1\n bnez %[n], 1b\n j 4f\n"
                     ".balign 4\n"
                     "3:\n sd %[valid], 0(%[pte])\n sret\n"
                     "4:\n" MARK
                     : [n] "+r"(n)
                     : [va] "r"(TEST_VA), [pte] "r"(test_pte), [valid] "r"(valid)
                     : "t1", "memory");
    csr_write(stvec, old_stvec);
}

struct section {
    const char *key;
    void (*run)(u64 n);
    u64 n;      /* iterations: 0.2-0.5 s natively on a 2-core EPYC VM */
    u64 ops;    /* operations per iteration */
    const char *what;
};

static const struct section sections[] = {
    { "empty", sec_empty, 30000000, 1, "the loop alone (addi, bnez), subtracted from the others" },
    { "alu", sec_alu, 10000000, 8, "8 ALU instructions, the control: no exit in any mode" },
    { "csrr-sscratch", sec_csrr_sscratch, 16000000, 1, "csrr sscratch" },
    { "csrw-sscratch", sec_csrw_sscratch, 12000000, 1, "csrw sscratch" },
    { "sstatus-sum", sec_sstatus_sum, 4000000, 2, "csrs then csrc sstatus.SUM, as Linux around user copies" },
    { "sstatus-spp", sec_sstatus_spp, 8000000, 1, "csrs sstatus.SPP (no change after the first)" },
    { "csrr-sepc", sec_csrr_sepc, 16000000, 1, "csrr sepc" },
    { "sret", sec_sret, 6000000, 1, "csrs sstatus.SPP, sret from S to the next instruction in S" },
    { "sfence", sec_sfence, 600000, 1, "sfence.vma of one address" },
    { "shadow-fill", sec_shadow_fill, 500000, 1, "sfence.vma of one address, then a load from it" },
    { "sbi", sec_sbi, 200000, 1, "SBI ecall get_spec_version" },
    { "u-ecall", sec_u_ecall, 6000000, 1, "ecall from U, handled in S, sret back to U" },
    { "page-fault", sec_page_fault, 500000, 1, "load from an invalid page, handler makes it valid, sret" },
};

int main(void)
{
    begin("exitcost");
    struct vm m;
    vm_init(&m, 3);
    /* The kernel's RAM in 2 MiB pages, as Linux maps its own memory: with a gigapage in its TLB
     * the hart would make every sfence.vma of one address a flush of the whole TLB natively. */
    for (u64 pa = RAM_BASE; pa < RAM_BASE + KERNEL_MAPPED; pa += 1UL << 21)
        vm_map(&m, pa, pa, 1, PTE_RWX | PTE_AD | PTE_G);
    vm_map(&m, USER_VA, (u64)exitcost_user, 0, PTE_V | PTE_R | PTE_X | PTE_U | PTE_AD);
    for (u64 i = TEST_PAGES; i-- > 0;)
        test_pte = vm_map(&m, TEST_VA + i * PAGE_SIZE, (u64)test_frame, 0, PTE_RW | PTE_AD);
    csr_write(satp, vm_satp(&m, 0));
    sfence_vma();

    for (unsigned i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        const struct section *s = &sections[i];
        puts_("section ");
        print_udec(i + 1);
        puts_(" ");
        puts_(s->key);
        puts_(": ");
        print_udec(s->n);
        puts_(" iterations, ");
        print_udec(s->ops);
        puts_(s->ops == 1 ? " op each: " : " ops each: ");
        println(s->what);
        s->run(s->n);
    }
    println("exitcost: done");
    return 0;
}
