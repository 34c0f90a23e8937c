/* RV64A: LR/SC reservation rules and every AMO (.w and .d), including sign
 * extension of .w results and aq/rl variants.  (Misaligned atomics: misaligned.c) */
#include "asm.h"

#define ONES 0xffffffffffffffffUL

static volatile u64 mem[1024] __attribute__((aligned(4096)));
static volatile u64 far_mem[8] __attribute__((aligned(4096)));

#define AMO(op, p, v) ({ u64 r_; __asm__ volatile(op " %0, %2, (%1)" \
        : "=&r"(r_) : "r"(p), "r"((u64)(v)) : "memory"); r_; })

static volatile u32 *w0(void) { return (volatile u32 *)&mem[0]; }

/* mem word 0 := init, neighbour word := 0xdeadbeef; run op; return old */
#define AMOW(op, init, v, got_mem) ({ \
    volatile u32 *p_ = w0(); p_[0] = (u32)(init); p_[1] = 0xdeadbeefU; \
    u64 o_ = AMO(op, p_, v); got_mem = p_[0]; \
    CHECK(op " neighbour", p_[1], 0xdeadbeefU); o_; })
#define AMOD(op, init, v, got_mem) ({ \
    volatile u64 *p_ = &mem[0]; p_[0] = (init); p_[1] = 0x0123456789abcdefUL; \
    u64 o_ = AMO(op, p_, v); got_mem = p_[0]; \
    CHECK(op " neighbour", p_[1], 0x0123456789abcdefUL); o_; })

static void test_amo_w(void)
{
    section("amo .w");
    u64 m, o;
    o = AMOW("amoswap.w", 0x7fffffff, 0x80000001UL, m);
    CHECK("amoswap.w old", o, 0x7fffffff); CHECK("amoswap.w mem", m, 0x80000001U);
    o = AMOW("amoswap.w", 0x80000000U, 5, m);
    CHECK("amoswap.w old sext", o, 0xffffffff80000000UL); CHECK("amoswap.w mem2", m, 5);
    o = AMOW("amoadd.w", 0x7fffffff, 1, m);
    CHECK("amoadd.w old", o, 0x7fffffff); CHECK("amoadd.w mem", m, 0x80000000U);
    o = AMOW("amoadd.w", 0xffffffffU, 0x100000002UL, m);
    CHECK("amoadd.w old sext", o, ONES); CHECK("amoadd.w wrap", m, 1);
    o = AMOW("amoxor.w", 0xf0f0f0f0U, 0xffffffffUL, m);
    CHECK("amoxor.w old", o, 0xfffffffff0f0f0f0UL); CHECK("amoxor.w mem", m, 0x0f0f0f0fU);
    o = AMOW("amoand.w", 0xff00ff00U, 0x0ff00ff0UL, m);
    CHECK("amoand.w old", o, 0xffffffffff00ff00UL); CHECK("amoand.w mem", m, 0x0f000f00U);
    o = AMOW("amoor.w", 0x0000ff00U, 0x80000001UL, m);
    CHECK("amoor.w old", o, 0xff00); CHECK("amoor.w mem", m, 0x8000ff01U);
    o = AMOW("amomin.w", 0x80000000U, 1, m);
    CHECK("amomin.w old", o, 0xffffffff80000000UL); CHECK("amomin.w keep", m, 0x80000000U);
    o = AMOW("amomin.w", 5, 0x00000000fffffffdUL, m);
    CHECK("amomin.w old2", o, 5); CHECK("amomin.w neg wins", m, 0xfffffffdU);
    o = AMOW("amomax.w", 0xfffffffdU, 2, m);
    CHECK("amomax.w old", o, 0xfffffffffffffffdUL); CHECK("amomax.w mem", m, 2);
    o = AMOW("amomax.w", 7, 0x80000000UL, m);
    CHECK("amomax.w keep", m, 7);
    o = AMOW("amominu.w", 0x80000000U, 0xffffffff00000001UL, m);
    CHECK("amominu.w old", o, 0xffffffff80000000UL); CHECK("amominu.w mem", m, 1);
    o = AMOW("amominu.w", 3, 0xfffffffeUL, m);
    CHECK("amominu.w keep", m, 3);
    o = AMOW("amomaxu.w", 1, 0xffffffffUL, m);
    CHECK("amomaxu.w old", o, 1); CHECK("amomaxu.w mem", m, 0xffffffffU);
    o = AMOW("amomaxu.w", 0x80000000U, 0x7fffffffUL, m);
    CHECK("amomaxu.w keep", m, 0x80000000U);
    CHECK("amomaxu.w old sext", o, 0xffffffff80000000UL);
    /* second word of a doubleword */
    mem[0] = 0x11111111deadbeefUL;
    o = AMO("amoadd.w", (volatile u8 *)&mem[0] + 4, 1);
    CHECK("amoadd.w hi word old", o, 0x11111111);
    CHECK("amoadd.w hi word mem", mem[0], 0x11111112deadbeefUL);
}

static void test_amo_d(void)
{
    section("amo .d");
    u64 m, o;
    o = AMOD("amoswap.d", 0x8000000000000000UL, 0x1234UL, m);
    CHECK("amoswap.d old", o, 0x8000000000000000UL); CHECK("amoswap.d mem", m, 0x1234);
    o = AMOD("amoadd.d", 0x7fffffffffffffffUL, 1, m);
    CHECK("amoadd.d old", o, 0x7fffffffffffffffUL); CHECK("amoadd.d mem", m, 0x8000000000000000UL);
    o = AMOD("amoadd.d", 0xffffffffUL, 1, m);
    CHECK("amoadd.d carry", m, 0x100000000UL);
    o = AMOD("amoxor.d", 0xff00ff00ff00ff00UL, ONES, m);
    CHECK("amoxor.d old", o, 0xff00ff00ff00ff00UL); CHECK("amoxor.d mem", m, 0x00ff00ff00ff00ffUL);
    o = AMOD("amoand.d", 0xff00ff00ff00ff00UL, 0x0ff00ff00ff00ff0UL, m);
    CHECK("amoand.d mem", m, 0x0f000f000f000f00UL);
    o = AMOD("amoor.d", 0xff00000000000000UL, 0x1UL, m);
    CHECK("amoor.d mem", m, 0xff00000000000001UL); CHECK("amoor.d old", o, 0xff00000000000000UL);
    o = AMOD("amomin.d", 0x8000000000000000UL, 1, m);
    CHECK("amomin.d keep", m, 0x8000000000000000UL);
    o = AMOD("amomin.d", 0x80000000UL, ONES, m);
    CHECK("amomin.d neg wins", m, ONES); CHECK("amomin.d old", o, 0x80000000UL);
    o = AMOD("amomax.d", ONES, 0x80000000UL, m);
    CHECK("amomax.d mem", m, 0x80000000UL); CHECK("amomax.d old", o, ONES);
    o = AMOD("amomax.d", 5, 0x8000000000000000UL, m);
    CHECK("amomax.d keep", m, 5);
    o = AMOD("amominu.d", 0x8000000000000000UL, 0x7fffffffffffffffUL, m);
    CHECK("amominu.d mem", m, 0x7fffffffffffffffUL);
    o = AMOD("amominu.d", 2, ONES, m);
    CHECK("amominu.d keep", m, 2);
    o = AMOD("amomaxu.d", 0x7fffffffffffffffUL, 0x8000000000000000UL, m);
    CHECK("amomaxu.d mem", m, 0x8000000000000000UL);
    o = AMOD("amomaxu.d", ONES, 0, m);
    CHECK("amomaxu.d keep", m, ONES); CHECK("amomaxu.d old", o, ONES);
}

static void test_amo_forms(void)
{
    section("amo aq/rl, rd forms");
    mem[0] = 10;
    CHECK("amoadd.d.aq", AMO("amoadd.d.aq", &mem[0], 1), 10);
    CHECK("amoadd.d.rl", AMO("amoadd.d.rl", &mem[0], 1), 11);
    CHECK("amoadd.d.aqrl", AMO("amoadd.d.aqrl", &mem[0], 1), 12);
    CHECK("amoswap.w.aqrl", AMO("amoswap.w.aqrl", &mem[0], 100), 13);
    CHECK("amomaxu.w.aq", AMO("amomaxu.w.aq", &mem[0], 50), 100);
    CHECK("amoor.d.rl", AMO("amoor.d.rl", &mem[0], 0x100), 100);
    CHECK("mem after", mem[0], 0x164);
    /* rd = x0: memory still updated */
    __asm__ volatile("amoadd.d x0, %1, (%0)" :: "r"(&mem[0]), "r"(1UL) : "memory");
    CHECK("amoadd rd=x0", mem[0], 0x165);
    /* rd == rs2: rd receives the old memory value, memory gets old rs2 */
    u64 r = 7;
    __asm__ volatile("amoswap.d %0, %0, (%1)" : "+r"(r) : "r"(&mem[0]) : "memory");
    CHECK("amoswap rd==rs2 rd", r, 0x165);
    CHECK("amoswap rd==rs2 mem", mem[0], 7);
    r = 3;
    __asm__ volatile("amoadd.w %0, %0, (%1)" : "+r"(r) : "r"(&mem[0]) : "memory");
    CHECK("amoadd rd==rs2 rd", r, 7);
    CHECK("amoadd rd==rs2 mem", mem[0], 10);
}

/* lr then sc to `sc_addr`; returns sc's rd, *loaded = lr's rd */
static u64 lr_sc_d(volatile u64 *lr_addr, volatile u64 *sc_addr, u64 v, u64 *loaded)
{
    u64 l, rc;
    __asm__ volatile("lr.d %0, (%2)\n sc.d %1, %4, (%3)"
                     : "=&r"(l), "=&r"(rc) : "r"(lr_addr), "r"(sc_addr), "r"(v) : "memory");
    *loaded = l;
    return rc;
}

static void test_lrsc(void)
{
    section("lr/sc");
    u64 l, rc;
    mem[0] = 0x8000000012345678UL;
    rc = lr_sc_d(&mem[0], &mem[0], 0xabcdUL, &l);
    CHECK("lr.d value", l, 0x8000000012345678UL);
    CHECK("sc.d success", rc, 0);
    CHECK("sc.d stored", mem[0], 0xabcd);

    volatile u32 *w = w0();
    w[0] = 0x80000000U;
    w[1] = 0x55555555U;
    __asm__ volatile("lr.w %0, (%2)\n sc.w %1, %3, (%2)"
                     : "=&r"(l), "=&r"(rc) : "r"(w), "r"(0xffffffff00000042UL) : "memory");
    CHECK("lr.w sext", l, 0xffffffff80000000UL);
    CHECK("sc.w success", rc, 0);
    CHECK("sc.w stored low word", w[0], 0x42);
    CHECK("sc.w neighbour", w[1], 0x55555555U);

    /* sc with no reservation (the previous sc consumed it) */
    mem[0] = 1;
    __asm__ volatile("sc.d %0, %2, (%1)" : "=&r"(rc) : "r"(&mem[0]), "r"(99UL) : "memory");
    CHECK("sc.d without reservation fails", rc != 0, 1);
    CHECK("failed sc.d does not store", mem[0], 1);
    __asm__ volatile("sc.w %0, %2, (%1)" : "=&r"(rc) : "r"(&mem[0]), "r"(99UL) : "memory");
    CHECK("sc.w without reservation fails", rc != 0, 1);
    CHECK("failed sc.w does not store", mem[0], 1);

    /* sc to a different address (another page) fails */
    far_mem[0] = 5;
    rc = lr_sc_d(&mem[0], &far_mem[0], 77, &l);
    CHECK("sc other address fails", rc != 0, 1);
    CHECK("sc other address no store", far_mem[0], 5);
    /* ... and the failed sc also dropped the reservation */
    __asm__ volatile("sc.d %0, %2, (%1)" : "=&r"(rc) : "r"(&mem[0]), "r"(99UL) : "memory");
    CHECK("reservation gone after failed sc", rc != 0, 1);
    CHECK("no store", mem[0], 1);

    /* reservation lost across a trap (ecall between lr and sc) */
    trap_reset(&mtrap);
    __asm__ volatile("lr.d %0, (%2)\n ecall\n sc.d %1, %3, (%2)"
                     : "=&r"(l), "=&r"(rc) : "r"(&mem[0]), "r"(42UL) : "memory");
    CHECK("ecall taken", mtrap.log.count, 1);
    CHECK("sc after trap fails", rc != 0, 1);
    CHECK("sc after trap no store", mem[0], 1);
    trap_off(&mtrap);

    /* aq/rl forms */
    __asm__ volatile("lr.d.aq %0, (%2)\n sc.d.rl %1, %3, (%2)"
                     : "=&r"(l), "=&r"(rc) : "r"(&mem[0]), "r"(8UL) : "memory");
    CHECK("lr.aq/sc.rl", rc, 0);
    __asm__ volatile("lr.w.aqrl %0, (%2)\n sc.w.aqrl %1, %3, (%2)"
                     : "=&r"(l), "=&r"(rc) : "r"(&mem[0]), "r"(9UL) : "memory");
    CHECK("lr.aqrl/sc.aqrl", rc, 0);
    CHECK("aqrl stored", mem[0], 9);

    /* atomic increment loop */
    mem[1] = 0;
    for (int i = 0; i < 100; i++) {
        u64 t;
        __asm__ volatile("1: lr.d %0, (%1)\n addi %0, %0, 3\n sc.d %0, %0, (%1)\n bnez %0, 1b"
                         : "=&r"(t) : "r"(&mem[1]) : "memory");
    }
    CHECK("lr/sc loop", mem[1], 300);
}

int main(void)
{
    println("rv64a: atomics");
    test_amo_w();
    test_amo_d();
    test_amo_forms();
    test_lrsc();
    return finish();
}
