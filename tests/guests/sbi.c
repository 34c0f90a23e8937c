/* sbi: the firmware interface a supervisor relies on (SBI spec v2.0:
 * BASE, TIME, IPI, RFENCE, HSM, SRST, DBCN).  Only implementation-
 * independent facts are checked: QEMU's OpenSBI 1.1 implements SBI 1.0
 * without DBCN, Ringvisor SBI 2.0 with it. */
#include "lib.h"

#define SBI_EXT_UNKNOWN 0x0a5a5a5aUL      /* unallocated (not in any range in use) */

static struct sbiret call0(u64 ext, u64 fid) { return sbi_call(ext, fid, 0, 0, 0, 0, 0, 0); }

static u64 wait_sip(u64 bit)
{
    u64 t_end = csr_read(time) + 50000000UL;
    while (!(csr_read(sip) & bit) && csr_read(time) < t_end)
        ;
    return csr_read(sip) & bit;
}

static void test_base(void)
{
    section("BASE");
    struct sbiret r = call0(SBI_EXT_BASE, 0);
    CHECK("get_spec_version: success", r.error, SBI_SUCCESS);
    u64 major = ((u64)r.value >> 24) & 0x7f, minor = (u64)r.value & 0xffffff;
    CHECK("get_spec_version: bit 31 clear", ((u64)r.value >> 31) & 1, 0);
    CHECK_TRUE("spec version >= 0.2", major > 0 || minor >= 2);
    for (u64 fid = 1; fid <= 6; fid++) {
        r = call0(SBI_EXT_BASE, fid);   /* impl id/version, mvendorid, marchid, mimpid */
        CHECK("BASE function 1..6: success", r.error, SBI_SUCCESS);
    }
    static const u64 exts[] = { SBI_EXT_BASE, SBI_EXT_TIME, SBI_EXT_IPI, SBI_EXT_RFENCE, SBI_EXT_HSM, SBI_EXT_SRST };
    for (unsigned i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        r = sbi_call(SBI_EXT_BASE, 3, exts[i], 0, 0, 0, 0, 0);
        CHECK("probe_extension: success", r.error, SBI_SUCCESS);
        CHECK_TRUE("probe_extension: present", r.value != 0);
    }
    r = sbi_call(SBI_EXT_BASE, 3, SBI_EXT_DBCN, 0, 0, 0, 0, 0);
    CHECK("probe DBCN: success", r.error, SBI_SUCCESS);
    CHECK("probe DBCN agrees with the console's choice", r.value != 0, rt_dbcn);
    r = sbi_call(SBI_EXT_BASE, 3, 0x01, 0, 0, 0, 0, 0);
    CHECK_TRUE("probe legacy console_putchar: present", r.error == 0 && r.value != 0);
    r = sbi_call(SBI_EXT_BASE, 3, SBI_EXT_UNKNOWN, 0, 0, 0, 0, 0);
    CHECK("probe unknown extension: success", r.error, SBI_SUCCESS);
    CHECK("probe unknown extension: 0", r.value, 0);
    CHECK("BASE unknown function", call0(SBI_EXT_BASE, 99).error, SBI_ERR_NOT_SUPPORTED);
    CHECK("unknown extension", call0(SBI_EXT_UNKNOWN, 0).error, SBI_ERR_NOT_SUPPORTED);
}

static void test_time_ipi(void)
{
    section("TIME and IPI");
    csr_write(sie, 0);
    CHECK("set_timer(-1)", sbi_set_timer(~0UL).error, SBI_SUCCESS);
    CHECK("TIME unknown function", call0(SBI_EXT_TIME, 1).error, SBI_ERR_NOT_SUPPORTED);
    CHECK("set_timer(0): success", sbi_set_timer(0).error, SBI_SUCCESS);
    CHECK("set_timer(0): STIP pending", wait_sip(SIP_STIP), SIP_STIP);
    sbi_set_timer(~0UL);
    CHECK("set_timer(-1): STIP clear", csr_read(sip) & SIP_STIP, 0);

    CHECK("send_ipi(self)", sbi_send_ipi(1, rt_hartid).error, SBI_SUCCESS);
    CHECK("send_ipi(self): SSIP pending", wait_sip(SIP_SSIP), SIP_SSIP);
    csr_clear(sip, SIP_SSIP);
    CHECK("send_ipi(all)", sbi_send_ipi(0, ~0UL).error, SBI_SUCCESS);
    CHECK("send_ipi(all): SSIP pending", wait_sip(SIP_SSIP), SIP_SSIP);
    csr_clear(sip, SIP_SSIP);
    /* A hart that does not exist (SBI 2.0 7.1): OpenSBI 1.1 ignores it. */
    i64 e = sbi_send_ipi(1UL << 63, 0).error;
    CHECK_Q("send_ipi(no such hart)", e, SBI_ERR_INVALID_PARAM, e == SBI_SUCCESS);
    csr_clear(sip, SIP_SSIP);
    e = sbi_send_ipi(1, 4096).error;
    CHECK("send_ipi(hart_mask_base past the last hart)", e, SBI_ERR_INVALID_PARAM);
    csr_clear(sip, SIP_SSIP);
    CHECK("IPI unknown function", call0(SBI_EXT_IPI, 1).error, SBI_ERR_NOT_SUPPORTED);
}

static void test_rfence(void)
{
    section("RFENCE");
    u64 m = 1, b = rt_hartid;
    CHECK("remote_fence_i", sbi_call(SBI_EXT_RFENCE, 0, m, b, 0, 0, 0, 0).error, SBI_SUCCESS);
    CHECK("remote_sfence_vma (all)", sbi_call(SBI_EXT_RFENCE, 1, m, b, 0, ~0UL, 0, 0).error, SBI_SUCCESS);
    CHECK("remote_sfence_vma (a page)", sbi_call(SBI_EXT_RFENCE, 1, m, b, 0x80200000UL, 4096, 0, 0).error, SBI_SUCCESS);
    CHECK("remote_sfence_vma_asid", sbi_call(SBI_EXT_RFENCE, 2, m, b, 0, ~0UL, 1, 0).error, SBI_SUCCESS);
    CHECK("remote_fence_i (all harts)", sbi_call(SBI_EXT_RFENCE, 0, 0, ~0UL, 0, 0, 0, 0).error, SBI_SUCCESS);
}

static void test_hsm(void)
{
    section("HSM");
    struct sbiret r = sbi_call(SBI_EXT_HSM, 2, rt_hartid, 0, 0, 0, 0, 0);
    CHECK("hart_get_status(self): success", r.error, SBI_SUCCESS);
    CHECK("hart_get_status(self): STARTED", r.value, 0);
    r = sbi_call(SBI_EXT_HSM, 2, 4096, 0, 0, 0, 0, 0);
    CHECK("hart_get_status(no such hart)", r.error, SBI_ERR_INVALID_PARAM);
    r = sbi_call(SBI_EXT_HSM, 0, rt_hartid, 0x80200000UL, 0, 0, 0, 0);
    CHECK("hart_start(self): already available", r.error, SBI_ERR_ALREADY_AVAILABLE);
    r = sbi_call(SBI_EXT_HSM, 0, 4096, 0x80200000UL, 0, 0, 0, 0);
    CHECK("hart_start(no such hart)", r.error, SBI_ERR_INVALID_PARAM);

    /* Default retentive suspend: returns (success) once an interrupt
     * enabled in sie is pending; none is taken with SIE = 0. */
    trap_reset();
    csr_write(sie, SIP_STIP);
    sbi_set_timer(csr_read(time) + 20000);
    r = sbi_call(SBI_EXT_HSM, 3, 0, 0, 0, 0, 0, 0);
    CHECK("hart_suspend(retentive): success", r.error, SBI_SUCCESS);
    CHECK("hart_suspend: the timer is pending", wait_sip(SIP_STIP), SIP_STIP);
    CHECK("hart_suspend: nothing taken", g_trap.count, 0);
    trap_off();
    sbi_set_timer(~0UL);
    csr_write(sie, 0);
    /* Suspend types 0x00000001..0x0fffffff are reserved (SBI 2.0 9.4). */
    r = sbi_call(SBI_EXT_HSM, 3, 1, 0, 0, 0, 0, 0);
    CHECK("hart_suspend(reserved type 1)", r.error, SBI_ERR_INVALID_PARAM);
}

static void test_srst_dbcn(void)
{
    section("SRST and DBCN");
    CHECK("system_reset(reserved type 3)", sbi_call(SBI_EXT_SRST, 0, 3, 0, 0, 0, 0, 0).error, SBI_ERR_INVALID_PARAM);
    CHECK("system_reset(shutdown, reserved reason 2)", sbi_call(SBI_EXT_SRST, 0, 0, 2, 0, 0, 0, 0).error,
          SBI_ERR_INVALID_PARAM);
    CHECK("SRST unknown function", call0(SBI_EXT_SRST, 1).error, SBI_ERR_NOT_SUPPORTED);

    /* DBCN only where the firmware has it; the checks count the same. */
    static const char msg[] = "";
    struct sbiret r = { 0, 0 };
    console_flush();
    if (rt_dbcn)
        r = sbi_call(SBI_EXT_DBCN, 0, 0, (u64)msg, 0, 0, 0, 0);
    CHECK("console_write of 0 bytes", r.error, SBI_SUCCESS);
    CHECK("console_write of 0 bytes: wrote 0", r.value, 0);
    r = (struct sbiret){ SBI_ERR_INVALID_PARAM, 0 };
    if (rt_dbcn)
        r = sbi_call(SBI_EXT_DBCN, 0, 4, 0x800, 0, 0, 0, 0);
    CHECK("console_write from outside RAM", r.error, SBI_ERR_INVALID_PARAM);
    r = (struct sbiret){ SBI_ERR_NOT_SUPPORTED, 0 };
    if (rt_dbcn)
        r = call0(SBI_EXT_DBCN, 3);
    CHECK("DBCN unknown function", r.error, SBI_ERR_NOT_SUPPORTED);
}

int main(void)
{
    begin("sbi");
    test_base();
    test_time_ipi();
    test_rfence();
    test_hsm();
    test_srst_dbcn();
    return finish();
}
