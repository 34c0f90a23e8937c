/* The time CSR: reads the CLINT's mtime, advances, and is gated by
 * mcounteren.TM / scounteren.TM for S and U.  (QEMU's spike machine does
 * not implement the time CSR at all -- reading it traps -- so this program
 * only passes on machines that provide it, like Ringvisor's.) */
#include "asm.h"


AFUNC(x_rdtime, "csrr a0, time\n ret");

static void gated(const char *name, u64 mode, int expect_trap)
{
    trap_reset(&mtrap);
    u64 before = *CLINT_MTIME;
    u64 t = run_in_mode(mode, x_rdtime, 0x5e57, 0);
    u64 after = *CLINT_MTIME;
    if (expect_trap) {
        check_eq(name, mtrap.log.count == 1 && mtrap.log.cause == CAUSE_ILLEGAL &&
                 mtrap.log.prev_priv == mode && t == 0x5e57, 1);
    } else {
        check_eq(name, mtrap.log.count == 0 && t >= before && t <= after, 1);
    }
    trap_off(&mtrap);
}

int main(void)
{
    println("time_csr: the time CSR");
    section("M-mode");
    trap_reset(&mtrap);
    u64 m1 = *CLINT_MTIME;
    u64 t1 = csr_read(time);
    u64 m2 = *CLINT_MTIME;
    CHECK("time readable in M", mtrap.log.count, 0);
    CHECK("mtime <= time", m1 <= t1, 1);
    CHECK("time <= mtime", t1 <= m2, 1);
    u64 t2 = t1;
    for (u64 i = 0; i < 100000000 && t2 == t1; i++)
        t2 = csr_read(time);
    CHECK("time advances", t2 > t1, 1);
    trap_reset(&mtrap);     /* (kept armed above: a missing time CSR fails checks, not the run) */
    __asm__ volatile("csrw time, zero");
    CHECK("time is read-only", mtrap.log.cause, CAUSE_ILLEGAL);
    trap_off(&mtrap);

    section("counter enables");
    const u64 TM = 2;
    csr_write(mcounteren, 0);
    csr_write(scounteren, 0);
    gated("S time, mcounteren.TM=0", PRV_S, 1);
    gated("U time, both 0", PRV_U, 1);
    csr_write(mcounteren, TM);
    gated("S time, mcounteren.TM=1", PRV_S, 0);
    gated("U time, scounteren.TM=0", PRV_U, 1);
    csr_write(scounteren, TM);
    gated("U time, both set", PRV_U, 0);
    csr_write(mcounteren, 0);
    gated("U time, mcounteren.TM=0", PRV_U, 1);
    csr_write(scounteren, 0);
    return finish();
}
