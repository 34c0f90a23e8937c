/* Misaligned accesses.  A hart may perform misaligned loads/stores in
 * hardware or raise address-misaligned (4 load / 6 store, mtval = the
 * address); both are accepted here, but whichever happens must be right:
 * loaded values are the little-endian bytes (sign/zero extended), a trapped
 * store leaves memory untouched.  With translation on, an access crossing
 * into an unmapped page raises a page fault whose stval is the address of
 * the faulting portion (the start of the unmapped page), or a misaligned
 * exception.  (Instruction fetch across pages is in vm.c.)
 * The summary line (how many were done in hardware) differs between
 * implementations, so this program is not byte-compared with QEMU. */
#include "asm.h"
#include "vm.h"


/* a0 = address; on a trap a0 comes back unchanged */
AFUNC(x_lh, "lh a0, 0(a0)\n ret");
AFUNC(x_lhu, "lhu a0, 0(a0)\n ret");
AFUNC(x_lw, "lw a0, 0(a0)\n ret");
AFUNC(x_lwu, "lwu a0, 0(a0)\n ret");
AFUNC(x_ld, "ld a0, 0(a0)\n ret");
AFUNC(x_flw, "flw ft0, 0(a0)\n fmv.x.w a0, ft0\n ret");
AFUNC(x_fld, "fld ft0, 0(a0)\n fmv.x.d a0, ft0\n ret");
/* a0 = address, a1 = value */
AFUNC(x_sh, "sh a1, 0(a0)\n ret");
AFUNC(x_sw, "sw a1, 0(a0)\n ret");
AFUNC(x_sd, "sd a1, 0(a0)\n ret");
AFUNC(x_fsw, "fmv.w.x ft0, a1\n fsw ft0, 0(a0)\n ret");
AFUNC(x_fsd, "fmv.d.x ft0, a1\n fsd ft0, 0(a0)\n ret");

typedef u64 (*fn_t)(u64, u64, u64);
static u8 buf[64] __attribute__((aligned(64)));
static u64 n_hw, n_trap;

static u64 le(const u8 *p, int n)
{
    u64 v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static u64 sext(u64 v, int bytes)
{
    int sh = 64 - 8 * bytes;
    return (u64)((i64)(v << sh) >> sh);
}

static const struct { const char *name; fn_t fn; int size; int sign; } loads[] = {
    { "lh", x_lh, 2, 1 }, { "lhu", x_lhu, 2, 0 }, { "lw", x_lw, 4, 1 }, { "lwu", x_lwu, 4, 0 },
    { "ld", x_ld, 8, 0 }, { "flw", x_flw, 4, 1 }, { "fld", x_fld, 8, 0 },
};
static const struct { const char *name; fn_t fn; int size; } stores[] = {
    { "sh", x_sh, 2 }, { "sw", x_sw, 4 }, { "sd", x_sd, 8 }, { "fsw", x_fsw, 4 }, { "fsd", x_fsd, 8 },
};

static void test_loads(void)
{
    section("misaligned loads");
    for (int i = 0; i < 64; i++)
        buf[i] = (u8)(0x80 + i * 7);
    for (unsigned k = 0; k < sizeof loads / sizeof loads[0]; k++) {
        for (int off = 1; off < 8; off++) {
            if (off % loads[k].size == 0)
                continue;
            u64 a = (u64)buf + 8 + (u64)off;
            u64 exp = le(buf + 8 + off, loads[k].size);
            if (loads[k].sign)
                exp = sext(exp, loads[k].size);
            trap_reset(&mtrap);
            u64 got = loads[k].fn(a, 0, 0);
            int ok;
            if (mtrap.log.count == 0) {
                ok = got == exp;
                n_hw++;
            } else {
                ok = mtrap.log.count == 1 && mtrap.log.cause == CAUSE_MISALIGNED_LOAD && mtrap.log.tval == a;
                n_trap++;
            }
            if (!check_eq(loads[k].name, ok, 1)) {
                puts_("  offset ");
                print_udec((u64)off);
                puts_(" got ");
                print_hex(got);
                puts_(" expected ");
                print_hex(exp);
                puts_(" traps ");
                print_udec(mtrap.log.count);
                putchar_('\n');
            }
        }
    }
    trap_off(&mtrap);
}

static void test_stores(void)
{
    section("misaligned stores");
    const u64 val = 0x8877665544332211UL;
    for (unsigned k = 0; k < sizeof stores / sizeof stores[0]; k++) {
        for (int off = 1; off < 8; off++) {
            if (off % stores[k].size == 0)
                continue;
            memset(buf, 0xee, sizeof buf);
            u64 a = (u64)buf + 8 + (u64)off;
            trap_reset(&mtrap);
            stores[k].fn(a, val, 0);
            int ok = 1;
            if (mtrap.log.count == 0) {
                n_hw++;
                for (int i = 0; i < 64; i++) {
                    int in = i >= 8 + off && i < 8 + off + stores[k].size;
                    u8 e = in ? (u8)(val >> (8 * (i - 8 - off))) : 0xee;
                    if (buf[i] != e)
                        ok = 0;
                }
            } else {
                n_trap++;
                ok = mtrap.log.count == 1 && mtrap.log.cause == CAUSE_MISALIGNED_STORE && mtrap.log.tval == a;
                for (int i = 0; i < 64; i++)
                    if (buf[i] != 0xee)
                        ok = 0;
            }
            if (!check_eq(stores[k].name, ok, 1)) {
                puts_("  offset ");
                print_udec((u64)off);
                putchar_('\n');
            }
        }
    }
    trap_off(&mtrap);
}

/* ---- with translation ---- */
#define T_VA 0x40000000UL
#define PG(i) (T_VA + (u64)(i) * PAGE_SIZE)
static u8 frames[2][4096] __attribute__((aligned(4096)));
static struct vm vm;

static u64 S(fn_t fn, u64 a, u64 b) { return run_lower(PRV_S, (void *)fn, 0, a, b, 0); }

static void build(void)
{
    vm_init(&vm, 3);
    vm_map(&vm, 0x80000000UL, 0x80000000UL, 2, PTE_RWX | PTE_AD | PTE_G);
    /* pages 0,1: data, virtually contiguous, physically swapped */
    vm_map(&vm, PG(0), (u64)frames[1], 0, PTE_RW | PTE_AD);
    vm_map(&vm, PG(1), (u64)frames[0], 0, PTE_RW | PTE_AD);
    /* page 2 unmapped */
    for (int i = 0; i < 4096; i++) {
        frames[1][i] = (u8)(0x80 + (i & 0x3f));     /* VA page 0 */
        frames[0][i] = (u8)(0x10 + (i & 0x3f));     /* VA page 1 */
    }
    csr_write(satp, vm_satp(&vm, 0));
    sfence_all();
    g_vm_active = 1;
}

static void test_crossing(void)
{
    section("page crossing");
    build();
    /* crossing into a mapped page: bytes from two non-adjacent frames */
    for (int size = 2; size <= 8; size *= 2) {
        u64 a = PG(1) - (u64)size / 2;
        fn_t fn = size == 2 ? x_lhu : size == 4 ? x_lwu : x_ld;
        trap_reset(&mtrap);
        u64 got = S(fn, a, 0);
        u64 exp = 0;
        for (int i = size - 1; i >= 0; i--) {
            u64 va = a + (u64)i;
            u8 byte = va >= PG(1) ? frames[0][va - PG(1)] : frames[1][va - PG(0)];
            exp = (exp << 8) | byte;
        }
        int ok;
        if (mtrap.log.count == 0) {
            ok = got == exp;
            n_hw++;
        } else {
            ok = mtrap.log.count == 1 && mtrap.log.cause == CAUSE_MISALIGNED_LOAD && mtrap.log.tval == a;
            n_trap++;
        }
        CHECK("load across mapped pages", ok, 1);
    }
    /* crossing into an unmapped page */
    for (int size = 2; size <= 8; size *= 2) {
        u64 a = PG(2) - (u64)size / 2;
        fn_t ld = size == 2 ? x_lh : size == 4 ? x_lw : x_ld;
        fn_t st = size == 2 ? x_sh : size == 4 ? x_sw : x_sd;
        trap_reset(&mtrap);
        S(ld, a, 0);
        if (mtrap.log.cause == CAUSE_LOAD_PAGE)
            n_hw++;
        else
            n_trap++;
        int ok = mtrap.log.count == 1 &&
                 ((mtrap.log.cause == CAUSE_LOAD_PAGE && mtrap.log.tval == PG(2)) ||
                  (mtrap.log.cause == CAUSE_MISALIGNED_LOAD && mtrap.log.tval == a));
        if (!CHECK("load into unmapped page", ok, 1)) {
            puts_("  cause ");
            print_hex(mtrap.log.cause);
            puts_(" tval ");
            print_hex(mtrap.log.tval);
            putchar_('\n');
        }
        trap_reset(&mtrap);
        S(st, a, 0x1234);
        if (mtrap.log.cause == CAUSE_STORE_PAGE)
            n_hw++;
        else
            n_trap++;
        ok = mtrap.log.count == 1 &&
             ((mtrap.log.cause == CAUSE_STORE_PAGE && mtrap.log.tval == PG(2)) ||
              (mtrap.log.cause == CAUSE_MISALIGNED_STORE && mtrap.log.tval == a));
        if (!CHECK("store into unmapped page", ok, 1)) {
            puts_("  cause ");
            print_hex(mtrap.log.cause);
            puts_(" tval ");
            print_hex(mtrap.log.tval);
            putchar_('\n');
        }
    }
    trap_off(&mtrap);
    csr_write(satp, 0);
    sfence_all();
    g_vm_active = 0;
}

int main(void)
{
    println("misaligned: loads, stores, page crossing");
    test_loads();
    test_stores();
    test_crossing();
    puts_("  (");
    print_udec(n_hw);
    puts_(" misaligned accesses done in hardware, ");
    print_udec(n_trap);
    println(" trapped)");
    return finish();
}
