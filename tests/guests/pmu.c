/* pmu: the SBI Performance Monitoring Unit extension (SBI v2.0 chapter 11) and the counters
 * behind it, used the way Linux's perf driver (drivers/perf/riscv_pmu_sbi.c) uses them: find
 * the counters, configure one for an event, start it with an initial value, read its CSR from
 * S-mode, stop it; and what scounteren lets U-mode read.
 *
 * Only what is the same on every conforming platform is checked: counter numbers and counts
 * differ (QEMU has 16 hpmcounters, Ringvisor none), so the counters are found by their CSR and
 * counts are ranges.  QEMU runs this kernel with -icount shift=0 (manifest.json), without which
 * its minstret counts host ticks. */
#include "lib.h"

#define PMU_NUM_COUNTERS   0
#define PMU_GET_INFO       1
#define PMU_CFG_MATCH      2
#define PMU_START          3
#define PMU_STOP           4
#define PMU_FW_READ        5
#define PMU_SNAPSHOT_SHMEM 7

#define EV_HW_CPU_CYCLES     1UL           /* event_idx type 0: hardware general events */
#define EV_HW_INSTRUCTIONS   2UL
#define EV_HW_BRANCH_MISSES  6UL
#define EV_FW(code)          ((15UL << 16) | (code))   /* type 15: firmware events */
#define FW_SET_TIMER         5UL

#define CFG_CLEAR_VALUE  (1UL << 1)
#define CFG_AUTO_START   (1UL << 2)
#define START_SET_INIT   (1UL << 0)
#define STOP_RESET       (1UL << 0)

#define INFO_CSR(i)   ((i) & 0xfff)
#define INFO_WIDTH(i) (((i) >> 12) & 63)
#define INFO_FW(i)    ((u64)(i) >> 63)
#define CSR_CYCLE     0xc00
#define CSR_INSTRET   0xc02

/* The counter between two reads around a loop of a0 iterations: csrr, li-like mv, then
 * addi + bnez per iteration, so 2 * a0 + 2 instructions on a hart that counts exactly. */
AFUNC(count_instret, "csrr t1, instret\nmv t0, a0\n1: addi t0, t0, -1\nbnez t0, 1b\n"
                     "csrr a0, instret\nsub a0, a0, t1\nret");
AFUNC(count_cycle, "csrr t1, cycle\nmv t0, a0\n1: addi t0, t0, -1\nbnez t0, 1b\n"
                   "csrr a0, cycle\nsub a0, a0, t1\nret");
#define LOOP 1000UL
#define LOOP_INSTRUCTIONS (2 * LOOP + 2)

AFUNC(u_rdcycle, "rdcycle a0\nret");
AFUNC(u_rdtime, "rdtime a0\nret");
AFUNC(u_rdinstret, "rdinstret a0\nret");

static struct sbiret pmu(u64 fid, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4)
{
    return sbi_call(SBI_EXT_PMU, fid, a0, a1, a2, a3, a4, 0);
}

static u64 scounteren_at_entry;
static u64 n_counters, all_mask, fw_mask, cyc = ~0UL, ins = ~0UL;

static void test_discovery(void)
{
    section("probe and counters");
    CHECK_TRUE("probe PMU: present", sbi_probe(SBI_EXT_PMU) != 0);
    /* The firmware leaves cycle, time and instret to U-mode at hart start (OpenSBI does); a
     * kernel without a PMU driver relies on it for the vDSO's rdtime. */
    CHECK("scounteren at entry: CY TM IR", scounteren_at_entry, 7);
    struct sbiret r = pmu(PMU_NUM_COUNTERS, 0, 0, 0, 0, 0);
    CHECK("num_counters: success", r.error, SBI_SUCCESS);
    CHECK_TRUE("num_counters: at least cycle, instret and one more", r.value >= 3 && r.value <= 64);
    n_counters = r.value;
    u64 cyc_info = 0, ins_info = 0;
    for (u64 i = 0; i < n_counters; i++) {
        r = pmu(PMU_GET_INFO, i, 0, 0, 0, 0);
        if (r.error)
            continue;
        all_mask |= 1UL << i;
        if (INFO_FW(r.value))
            fw_mask |= 1UL << i;
        else if (INFO_CSR(r.value) == CSR_CYCLE)
            cyc = i, cyc_info = r.value;
        else if (INFO_CSR(r.value) == CSR_INSTRET)
            ins = i, ins_info = r.value;
    }
    CHECK_TRUE("a hardware counter reads cycle", cyc != ~0UL);
    CHECK_TRUE("a hardware counter reads instret", ins != ~0UL);
    CHECK("cycle counter: 64 bits", INFO_WIDTH(cyc_info), 63);
    CHECK("instret counter: 64 bits", INFO_WIDTH(ins_info), 63);
    CHECK_TRUE("firmware counters", fw_mask != 0);
    CHECK("get_info past the last counter", pmu(PMU_GET_INFO, n_counters, 0, 0, 0, 0).error, SBI_ERR_INVALID_PARAM);
}

static void test_config(void)
{
    section("config_matching");
    /* cycle and instret count from hart start; matching wants counters that are not started,
     * so stop them first and drop their configuration (what Linux does at CPU start). */
    CHECK("stop the running cycle counter", pmu(PMU_STOP, cyc, 1, STOP_RESET, 0, 0).error, SBI_SUCCESS);
    CHECK("stop the running instret counter", pmu(PMU_STOP, ins, 1, STOP_RESET, 0, 0).error, SBI_SUCCESS);
    CHECK("start an unconfigured counter", pmu(PMU_START, ins, 1, 0, 0, 0).error, SBI_ERR_INVALID_PARAM);
    struct sbiret r = pmu(PMU_CFG_MATCH, 0, all_mask, 0, EV_HW_INSTRUCTIONS, 0);
    CHECK("HW_INSTRUCTIONS: success", r.error, SBI_SUCCESS);
    CHECK("HW_INSTRUCTIONS: the instret counter", r.value, ins);
    r = pmu(PMU_CFG_MATCH, 0, all_mask, 0, EV_HW_CPU_CYCLES, 0);
    CHECK("HW_CPU_CYCLES: success", r.error, SBI_SUCCESS);
    CHECK("HW_CPU_CYCLES: the cycle counter", r.value, cyc);
    CHECK("HW_BRANCH_MISSES: no counter", pmu(PMU_CFG_MATCH, 0, all_mask, 0, EV_HW_BRANCH_MISSES, 0).error,
          SBI_ERR_NOT_SUPPORTED);
    CHECK("a counter set past the last counter", pmu(PMU_CFG_MATCH, n_counters, 1, 0, EV_HW_INSTRUCTIONS, 0).error,
          SBI_ERR_INVALID_PARAM);
    CHECK("start past the last counter", pmu(PMU_START, n_counters, 1, 0, 0, 0).error, SBI_ERR_INVALID_PARAM);
}

static void test_counting(void)
{
    section("start, count, stop");
    const u64 v = 0x100000000UL;
    CHECK("start instret at 2^32", pmu(PMU_START, ins, 1, START_SET_INIT, v, 0).error, SBI_SUCCESS);
    u64 x = csr_read(instret);
    /* The read comes a few instructions after the call; QEMU also counts OpenSBI's return. */
    CHECK_TRUE("instret starts at the initial value", x >= v && x < v + 2000);
    u64 d = count_instret(LOOP, 0, 0);
    CHECK_TRUE("a loop of 2002 instructions counts 2002", d >= LOOP_INSTRUCTIONS && d <= LOOP_INSTRUCTIONS + 8);
    CHECK("start a started counter", pmu(PMU_START, ins, 1, 0, 0, 0).error, SBI_ERR_ALREADY_STARTED);

    /* U-mode reads the same counter when scounteren.IR allows it. */
    u64 old = csr_swap(scounteren, 7);
    u64 u = run_user(u_rdinstret, 0, 0);
    csr_write(scounteren, old);
    CHECK_TRUE("U-mode reads the running instret", u > x + LOOP_INSTRUCTIONS && u < v + 1000000);

    CHECK("stop instret", pmu(PMU_STOP, ins, 1, 0, 0, 0).error, SBI_SUCCESS);
    u64 s1 = csr_read(instret);
    count_instret(LOOP, 0, 0);
    u64 s2 = csr_read(instret);
    CHECK_TRUE("stopped instret kept its count", s1 > u && s1 < u + 3000);
    /* QEMU 7.2: after a stop the first read is live, later ones give the initial value. */
    CHECK_Q("stopped instret holds still", s2 - s1, 0, s2 == v);
    CHECK("stop a stopped counter", pmu(PMU_STOP, ins, 1, 0, 0, 0).error, SBI_ERR_ALREADY_STOPPED);
    CHECK("restart instret (no initial value)", pmu(PMU_START, ins, 1, 0, 0, 0).error, SBI_SUCCESS);
    u64 r = csr_read(instret);
    /* QEMU 7.2: a restarted counter has counted all along. */
    CHECK_Q("restarted instret counts on from its stopped value", r >= s1 && r < s1 + 100, 1,
            r >= s1 + LOOP_INSTRUCTIONS);

    const u64 w = 0x200000000UL;
    CHECK("start cycle at 2^33", pmu(PMU_START, cyc, 1, START_SET_INIT, w, 0).error, SBI_SUCCESS);
    x = csr_read(cycle);
    CHECK_TRUE("cycle starts at the initial value", x >= w && x < w + 100000);
    CHECK_TRUE("cycle advances over the loop", count_cycle(LOOP, 0, 0) >= LOOP);
    CHECK("stop cycle", pmu(PMU_STOP, cyc, 1, 0, 0, 0).error, SBI_SUCCESS);

    /* A reset drops the counter's event: it must be configured again. */
    CHECK("stop instret with reset", pmu(PMU_STOP, ins, 1, STOP_RESET, 0, 0).error, SBI_SUCCESS);
    CHECK("start after reset", pmu(PMU_START, ins, 1, 0, 0, 0).error, SBI_ERR_INVALID_PARAM);
    struct sbiret m = pmu(PMU_CFG_MATCH, 0, all_mask, CFG_AUTO_START, EV_HW_INSTRUCTIONS, 0);
    CHECK("HW_INSTRUCTIONS with AUTO_START", m.error, SBI_SUCCESS);
    CHECK("AUTO_START: started", pmu(PMU_START, m.value, 1, 0, 0, 0).error, SBI_ERR_ALREADY_STARTED);
}

static void test_firmware(void)
{
    section("firmware counter");
    struct sbiret r = pmu(PMU_CFG_MATCH, 0, fw_mask, CFG_CLEAR_VALUE, EV_FW(FW_SET_TIMER), 0);
    CHECK("FW_SET_TIMER: success", r.error, SBI_SUCCESS);
    u64 f = r.value;
    CHECK_TRUE("FW_SET_TIMER: a firmware counter", f < 64 && ((fw_mask >> f) & 1));
    r = pmu(PMU_FW_READ, f, 0, 0, 0, 0);
    CHECK("counter_fw_read: success", r.error, SBI_SUCCESS);
    CHECK("CLEAR_VALUE: 0", r.value, 0);
    CHECK("start at 10", pmu(PMU_START, f, 1, START_SET_INIT, 10, 0).error, SBI_SUCCESS);
    sbi_set_timer(~0UL);
    sbi_set_timer(~0UL);
    sbi_set_timer(~0UL);
    CHECK("three set_timer calls counted", pmu(PMU_FW_READ, f, 0, 0, 0, 0).value, 13);
    CHECK("stop", pmu(PMU_STOP, f, 1, 0, 0, 0).error, SBI_SUCCESS);
    sbi_set_timer(~0UL);
    CHECK("stopped: not counted", pmu(PMU_FW_READ, f, 0, 0, 0, 0).value, 13);
    pmu(PMU_STOP, f, 1, STOP_RESET, 0, 0);
    CHECK("counter_fw_read after reset", pmu(PMU_FW_READ, f, 0, 0, 0, 0).error, SBI_ERR_INVALID_PARAM);
    /* OpenSBI 1.1 reads a hardware counter through counter_fw_read (SBI 11.10 forbids it). */
    i64 e = pmu(PMU_FW_READ, ins, 0, 0, 0, 0).error;
    CHECK_Q("counter_fw_read of a hardware counter", e, SBI_ERR_INVALID_PARAM, e == SBI_SUCCESS);
    CHECK("snapshot_set_shmem: not supported", pmu(PMU_SNAPSHOT_SHMEM, ~0UL, ~0UL, 0, 0, 0).error,
          SBI_ERR_NOT_SUPPORTED);
}

/* `quirk`: QEMU's OpenSBI emulates a U-mode rdtime that the hart traps, without looking at
 * scounteren.TM (as in traps.c). */
static void check_u(const char *name, void *fn, int allowed, int quirk)
{
    trap_reset();
    run_user(fn, 0, 0);
    trap_off();
    if (allowed) {
        CHECK(name, g_trap.count, 0);
        CHECK_TRUE(name, 1);
    } else if (rt_ref_quirks && quirk && g_trap.count == 0) {
        CHECK_TRUE(name, 1);
        CHECK_TRUE(name, 1);
    } else {
        CHECK(name, g_trap.count, 1);
        CHECK(name, g_trap.cause, CAUSE_ILLEGAL);
    }
}

static void test_user(void)
{
    section("U-mode counter access");
    /* the counters run again (cycle by AUTO_START too) */
    pmu(PMU_STOP, cyc, 1, STOP_RESET, 0, 0);
    pmu(PMU_CFG_MATCH, 0, all_mask, CFG_AUTO_START, EV_HW_CPU_CYCLES, 0);
    u64 old = csr_read(scounteren);
    static const struct { u64 en; const char *cy, *tm, *ir; } cases[] = {
        { 0, "U rdcycle, scounteren = 0", "U rdtime, scounteren = 0", "U rdinstret, scounteren = 0" },
        { 5, "U rdcycle, scounteren = CY IR", "U rdtime, scounteren = CY IR", "U rdinstret, scounteren = CY IR" },
        { 2, "U rdcycle, scounteren = TM", "U rdtime, scounteren = TM", "U rdinstret, scounteren = TM" },
        { 7, "U rdcycle, scounteren = CY TM IR", "U rdtime, scounteren = CY TM IR", "U rdinstret, scounteren = CY TM IR" },
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        csr_write(scounteren, cases[i].en);
        check_u(cases[i].cy, u_rdcycle, cases[i].en & 1, 0);
        check_u(cases[i].tm, u_rdtime, (cases[i].en >> 1) & 1, 1);
        check_u(cases[i].ir, u_rdinstret, (cases[i].en >> 2) & 1, 0);
    }
    csr_write(scounteren, old);
}

int main(void)
{
    scounteren_at_entry = csr_read(scounteren);
    begin("pmu");
    test_discovery();
    test_config();
    test_counting();
    test_firmware();
    test_user();
    return finish();
}
