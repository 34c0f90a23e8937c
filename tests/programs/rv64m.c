/* RV64M: multiply and divide, including the division-by-zero and overflow
 * results the spec defines (no traps), and the W forms' sign extension. */
#include "asm.h"

#define MIN64 0x8000000000000000UL
#define MAX64 0x7fffffffffffffffUL
#define ONES  0xffffffffffffffffUL
#define A1 0x123456789abcdef0UL
#define B1 0x0fedcba987654321UL
#define A2 0xfedcba9876543210UL
#define B2 0x0123456789abcdefUL

static void test_mul(void)
{
    section("mul");
    CHECK("mul", RR("mul", 3, 7), 21);
    CHECK("mul neg", RR("mul", -3L, 7), -21L);
    CHECK("mul neg neg", RR("mul", -3L, -7L), 21);
    CHECK("mul min*-1", RR("mul", MIN64, -1L), MIN64);
    CHECK("mul big", RR("mul", A1, B1), 0x2236d88fe5618cf0UL);
    CHECK("mul big2", RR("mul", A2, B2), 0x2236d88fe5618cf0UL);
    CHECK("mul 0", RR("mul", ONES, 0), 0);
    CHECK("mulh", RR("mulh", A1, B1), 0x0121fa00ad77d742UL);
    CHECK("mulh neg", RR("mulh", A2, B2), 0xfffeb49923cc0953UL);
    CHECK("mulh -1*-1", RR("mulh", -1L, -1L), 0);
    CHECK("mulh -1*1", RR("mulh", -1L, 1), ONES);
    CHECK("mulh min*min", RR("mulh", MIN64, MIN64), 0x4000000000000000UL);
    CHECK("mulh min*-1", RR("mulh", MIN64, -1L), 0);
    CHECK("mulh max*max", RR("mulh", MAX64, MAX64), 0x3fffffffffffffffUL);
    CHECK("mulhu", RR("mulhu", A2, B2), 0x0121fa00ad77d742UL);
    CHECK("mulhu ones", RR("mulhu", ONES, ONES), 0xfffffffffffffffeUL);
    CHECK("mulhu min*2", RR("mulhu", MIN64, 2), 1);
    CHECK("mulhu -1*1", RR("mulhu", ONES, 1), 0);
    CHECK("mulhsu", RR("mulhsu", A1, B1), 0x0121fa00ad77d742UL);
    CHECK("mulhsu neg", RR("mulhsu", A2, B2), 0xfffeb49923cc0953UL);
    CHECK("mulhsu -1*ones", RR("mulhsu", -1L, ONES), ONES);
    CHECK("mulhsu 1*ones", RR("mulhsu", 1, ONES), 0);
    CHECK("mulhsu -2*min", RR("mulhsu", -2L, MIN64), ONES);
    CHECK("mulhsu ones*-1 (rs2 unsigned)", RR("mulhsu", ONES, ONES), ONES);
    CHECK("mulhsu min*ones", RR("mulhsu", MIN64, ONES), 0x8000000000000000UL);
    CHECK("mulw", RR("mulw", 6, 7), 42);
    CHECK("mulw overflow sext", RR("mulw", 0x7fffffff, 2), 0xfffffffffffffffeUL);
    CHECK("mulw 2^32", RR("mulw", 0x10000, 0x10000), 0);
    CHECK("mulw upper ignored", RR("mulw", 0xabcdef0000000003UL, 0x1234567800000005UL), 15);
    CHECK("mulw neg", RR("mulw", -3L, 5), -15L);
    CHECK("mulw to min", RR("mulw", 0x40000000, 2), 0xffffffff80000000UL);
}

static void test_div(void)
{
    section("div");
    CHECK("div", RR("div", 20, 6), 3);
    CHECK("div -/+", RR("div", -20L, 6), -3L);
    CHECK("div +/-", RR("div", 20, -6L), -3L);
    CHECK("div -/-", RR("div", -20L, -6L), 3);
    CHECK("div by 0", RR("div", 20, 0), ONES);
    CHECK("div neg by 0", RR("div", -20L, 0), ONES);
    CHECK("div min/-1", RR("div", MIN64, -1L), MIN64);
    CHECK("div min/1", RR("div", MIN64, 1), MIN64);
    CHECK("div big", RR("div", A2, 12345), (u64)((i64)A2 / 12345));
    CHECK("divu", RR("divu", 20, 6), 3);
    CHECK("divu neg is big", RR("divu", -20L, 6), 0x2aaaaaaaaaaaaaa7UL);
    CHECK("divu by 0", RR("divu", 20, 0), ONES);
    CHECK("divu min/-1", RR("divu", MIN64, -1L), 0);
    CHECK("divu ones/1", RR("divu", ONES, 1), ONES);
    CHECK("rem", RR("rem", 20, 6), 2);
    CHECK("rem -/+", RR("rem", -20L, 6), -2L);
    CHECK("rem +/-", RR("rem", 20, -6L), 2);
    CHECK("rem -/-", RR("rem", -20L, -6L), -2L);
    CHECK("rem by 0", RR("rem", -20L, 0), -20L);
    CHECK("rem min/-1", RR("rem", MIN64, -1L), 0);
    CHECK("rem big", RR("rem", A2, 12345), (u64)((i64)A2 % 12345));
    CHECK("remu", RR("remu", 20, 6), 2);
    CHECK("remu neg", RR("remu", -20L, 6), 2);
    CHECK("remu by 0", RR("remu", -20L, 0), -20L);
    CHECK("remu ones/10", RR("remu", ONES, 10), 5);
}

static void test_divw(void)
{
    section("div W");
    CHECK("divw", RR("divw", 20, 6), 3);
    CHECK("divw neg", RR("divw", -20L, 6), -3L);
    CHECK("divw upper ignored", RR("divw", 0x12345678ffffffecUL, 0xabcdef0000000006UL), -3L);
    CHECK("divw by 0", RR("divw", 20, 0), ONES);
    CHECK("divw by 0 (upper set)", RR("divw", 20, 0xffffffff00000000UL), ONES);
    CHECK("divw min/-1", RR("divw", 0x80000000UL, 0xffffffffUL), 0xffffffff80000000UL);
    CHECK("divw sext", RR("divw", 0x80000000UL, 2), 0xffffffffc0000000UL);
    CHECK("divuw", RR("divuw", 20, 6), 3);
    CHECK("divuw big sext", RR("divuw", 0xffffffffUL, 1), ONES);
    CHECK("divuw half", RR("divuw", 0x80000000UL, 2), 0x40000000UL);
    CHECK("divuw by 0", RR("divuw", 20, 0), ONES);
    CHECK("divuw upper ignored", RR("divuw", 0x1fffffffeUL, 0x100000002UL), 0x7fffffffUL);
    CHECK("divuw neg", RR("divuw", -20L, 6), 0x2aaaaaa7UL);
    CHECK("remw", RR("remw", 20, 6), 2);
    CHECK("remw neg", RR("remw", -20L, 6), -2L);
    CHECK("remw by 0", RR("remw", 0x1234567880000001UL, 0), 0xffffffff80000001UL);
    CHECK("remw min/-1", RR("remw", 0x80000000UL, -1L), 0);
    CHECK("remw upper ignored", RR("remw", 0x7700000000000011UL, 0x6600000000000007UL), 3);
    CHECK("remuw", RR("remuw", 20, 6), 2);
    CHECK("remuw by 0", RR("remuw", 0x1234567880000001UL, 0), 0xffffffff80000001UL);
    CHECK("remuw by 0 pos", RR("remuw", 0xabcdef0012345678UL, 0), 0x12345678UL);
    CHECK("remuw", RR("remuw", 0xffffffffUL, 0x10), 0xf);
    CHECK("remuw neg", RR("remuw", -20L, 6), 2);
    CHECK("remuw sext", RR("remuw", 0xfffffffeUL, 0xffffffffUL), 0xfffffffffffffffeUL);
}

/* Result written to x0 must be discarded; divide by zero must not trap. */
static void test_misc(void)
{
    section("misc");
    u64 r;
    __asm__ volatile(NORVC("li t0, 7\n li t1, 0\n div x0, t0, t1\n divu %0, t0, t1") : "=r"(r) :: "t0", "t1");
    CHECK("no trap on /0", r, ONES);
    __asm__ volatile(NORVC("li t0, 7\n mul x0, t0, t0\n mv %0, x0") : "=r"(r) :: "t0");
    CHECK("mul x0", r, 0);
    /* rd == rs1 == rs2 */
    __asm__ volatile(NORVC("li %0, -9\n mul %0, %0, %0") : "=&r"(r));
    CHECK("mul rd=rs1=rs2", r, 81);
    __asm__ volatile(NORVC("li %0, -9\n rem %0, %0, %0") : "=&r"(r));
    CHECK("rem rd=rs1=rs2", r, 0);
    /* a small loop: factorial with mul/div round trip */
    u64 f = 1;
    for (u64 i = 1; i <= 20; i++)
        f = RR("mul", f, i);
    CHECK("20!", f, 2432902008176640000UL);
    for (u64 i = 20; i >= 1; i--)
        f = RR("divu", f, i);
    CHECK("20!/20!", f, 1);
}

int main(void)
{
    println("rv64m: multiply/divide");
    test_mul();
    test_div();
    test_divw();
    test_misc();
    return finish();
}
