/* RV64I: every base instruction, with the sign-extension and edge cases the
 * spec pins down. */
#include "asm.h"

#define MIN64 0x8000000000000000UL
#define MAX64 0x7fffffffffffffffUL
#define ONES  0xffffffffffffffffUL

/* 1 if `op a, b, target` branches */
#define BR(op, a, b) ({ u64 t_; __asm__ volatile(NORVC( \
        "li %0, 1\n" op " %1, %2, 1f\n" "li %0, 0\n" "1:") \
        : "=&r"(t_) : "r"((u64)(a)), "r"((u64)(b))); t_; })

static void test_reg_reg(void)
{
    section("reg-reg");
    CHECK("add", RR("add", 1, 2), 3);
    CHECK("add wrap", RR("add", MAX64, 1), MIN64);
    CHECK("add neg", RR("add", -5L, 3), -2L);
    CHECK("add ones", RR("add", ONES, ONES), 0xfffffffffffffffeUL);
    CHECK("sub", RR("sub", 3, 5), -2L);
    CHECK("sub wrap", RR("sub", MIN64, 1), MAX64);
    CHECK("sub zero", RR("sub", 0, MIN64), MIN64);
    CHECK("sll 0", RR("sll", 0x1234, 0), 0x1234);
    CHECK("sll 1", RR("sll", 0x8000000000000001UL, 1), 2);
    CHECK("sll 31", RR("sll", 1, 31), 0x80000000UL);
    CHECK("sll 32", RR("sll", 1, 32), 0x100000000UL);
    CHECK("sll 63", RR("sll", 1, 63), MIN64);
    CHECK("sll 64 ignored", RR("sll", 3, 64), 3);
    CHECK("sll 0xffc1", RR("sll", 3, 0xffc1), 6);
    CHECK("srl 1", RR("srl", MIN64, 1), 0x4000000000000000UL);
    CHECK("srl 31", RR("srl", ONES, 31), 0x1ffffffffUL);
    CHECK("srl 63", RR("srl", MIN64, 63), 1);
    CHECK("srl 127", RR("srl", ONES, 127), 1);
    CHECK("sra 1", RR("sra", MIN64, 1), 0xc000000000000000UL);
    CHECK("sra 31", RR("sra", 0x8000000000000000UL, 31), 0xffffffff00000000UL);
    CHECK("sra 63", RR("sra", MIN64, 63), ONES);
    CHECK("sra 63 pos", RR("sra", MAX64, 63), 0);
    CHECK("sra 0x40", RR("sra", -8L, 0x40), -8L);
    CHECK("slt -1,0", RR("slt", -1L, 0), 1);
    CHECK("slt 0,-1", RR("slt", 0, -1L), 0);
    CHECK("slt min,max", RR("slt", MIN64, MAX64), 1);
    CHECK("slt max,min", RR("slt", MAX64, MIN64), 0);
    CHECK("slt eq", RR("slt", 7, 7), 0);
    CHECK("sltu -1,0", RR("sltu", -1L, 0), 0);
    CHECK("sltu 0,-1", RR("sltu", 0, -1L), 1);
    CHECK("sltu min,max", RR("sltu", MIN64, MAX64), 0);
    CHECK("sltu eq", RR("sltu", 5, 5), 0);
    CHECK("sltu 0,x snez", RR("sltu", 0, 42), 1);
    CHECK("xor", RR("xor", 0xff00ff00ff00ff00UL, 0x0ff00ff00ff00ff0UL), 0xf0f0f0f0f0f0f0f0UL);
    CHECK("or", RR("or", 0xff00ff00ff00ff00UL, 0x0ff00ff00ff00ff0UL), 0xfff0fff0fff0fff0UL);
    CHECK("and", RR("and", 0xff00ff00ff00ff00UL, 0x0ff00ff00ff00ff0UL), 0x0f000f000f000f00UL);
}

static void test_reg_imm(void)
{
    section("reg-imm");
    CHECK("addi", RI("addi", 5, 7), 12);
    CHECK("addi -1", RI("addi", 0, -1), ONES);
    CHECK("addi -2048", RI("addi", 0, -2048), -2048L);
    CHECK("addi 2047", RI("addi", 1, 2047), 2048);
    CHECK("addi wrap", RI("addi", MAX64, 1), MIN64);
    CHECK("slti", RI("slti", -3L, -2), 1);
    CHECK("slti no", RI("slti", -2L, -2), 0);
    CHECK("slti min", RI("slti", MIN64, 0), 1);
    CHECK("sltiu -1 imm", RI("sltiu", 12345, -1), 1);
    CHECK("sltiu ones", RI("sltiu", ONES, -1), 0);
    CHECK("sltiu seqz 0", RI("sltiu", 0, 1), 1);
    CHECK("sltiu seqz 1", RI("sltiu", 1, 1), 0);
    CHECK("xori -1 (not)", RI("xori", 0x0123456789abcdefUL, -1), 0xfedcba9876543210UL);
    CHECK("xori", RI("xori", 0xff, 0x0f0), 0x0f);
    CHECK("ori sext", RI("ori", 0x1, -2048), 0xfffffffffffff801UL);
    CHECK("andi sext", RI("andi", 0x123456789abcdef0UL, -16), 0x123456789abcdef0UL);
    CHECK("andi", RI("andi", 0x123456789abcdef7UL, 0x7ff), 0x6f7);
    CHECK("slli 0", RI("slli", 0x1234, 0), 0x1234);
    CHECK("slli 31", RI("slli", 3, 31), 0x180000000UL);
    CHECK("slli 32", RI("slli", 3, 32), 0x300000000UL);
    CHECK("slli 63", RI("slli", 3, 63), MIN64);
    CHECK("srli 31", RI("srli", MIN64, 31), 0x100000000UL);
    CHECK("srli 32", RI("srli", ONES, 32), 0xffffffffUL);
    CHECK("srli 63", RI("srli", ONES, 63), 1);
    CHECK("srai 31", RI("srai", MIN64, 31), 0xffffffff00000000UL);
    CHECK("srai 32", RI("srai", 0x8000000080000000UL, 32), 0xffffffff80000000UL);
    CHECK("srai 63", RI("srai", 0x8000000000000000UL, 63), ONES);
    CHECK("srai 63 pos", RI("srai", MAX64, 63), 0);
}

static void test_word(void)
{
    section("word ops");
    CHECK("addw overflow", RR("addw", 0x7fffffff, 1), 0xffffffff80000000UL);
    CHECK("addw upper ignored", RR("addw", 0x123456700000001UL, 0xabcdef0000000002UL), 3);
    CHECK("addw neg", RR("addw", 0xffffffffUL, 0), ONES);
    CHECK("addw wrap 0", RR("addw", 0xffffffffUL, 1), 0);
    CHECK("subw", RR("subw", 0, 1), ONES);
    CHECK("subw overflow", RR("subw", 0x80000000UL, 1), 0x7fffffff);
    CHECK("subw sext", RR("subw", 0x7fffffff, -1L), 0xffffffff80000000UL);
    CHECK("sllw 31", RR("sllw", 1, 31), 0xffffffff80000000UL);
    CHECK("sllw 32 (bit5 ignored)", RR("sllw", 7, 32), 7);
    CHECK("sllw 33 (bit5 ignored)", RR("sllw", 7, 33), 14);
    CHECK("sllw upper src ignored", RR("sllw", 0xffffffff00000001UL, 4), 0x10);
    CHECK("sllw 0 sext", RR("sllw", 0x80000000UL, 0), 0xffffffff80000000UL);
    CHECK("srlw 31", RR("srlw", 0x80000000UL, 31), 1);
    CHECK("srlw 0 sext", RR("srlw", 0x80000000UL, 0), 0xffffffff80000000UL);
    CHECK("srlw 32 -> 0", RR("srlw", 0x80000000UL, 32), 0xffffffff80000000UL);
    CHECK("srlw 1", RR("srlw", 0xffffffffffffffffUL, 1), 0x7fffffff);
    CHECK("srlw 63 -> 31", RR("srlw", 0xffffffffffffffffUL, 63), 1);
    CHECK("sraw 31", RR("sraw", 0x80000000UL, 31), ONES);
    CHECK("sraw 31 pos", RR("sraw", 0x7fffffffUL, 31), 0);
    CHECK("sraw 1", RR("sraw", 0x80000000UL, 1), 0xffffffffc0000000UL);
    CHECK("sraw 33 -> 1", RR("sraw", 0x80000000UL, 33), 0xffffffffc0000000UL);
    CHECK("sraw upper ignored", RR("sraw", 0x00000000fffffff0UL, 2), 0xfffffffffffffffcUL);
    CHECK("addiw", RI("addiw", 0x7fffffff, 1), 0xffffffff80000000UL);
    CHECK("addiw sext.w", RI("addiw", 0x1234567880000000UL, 0), 0xffffffff80000000UL);
    CHECK("addiw -1", RI("addiw", 0, -1), ONES);
    CHECK("addiw pos", RI("addiw", 0xffffffff00000005UL, 3), 8);
    CHECK("slliw 31", RI("slliw", 1, 31), 0xffffffff80000000UL);
    CHECK("slliw 0", RI("slliw", 0xfffffffff0000000UL, 0), 0xfffffffff0000000UL);
    CHECK("slliw 4", RI("slliw", 0x0f000001UL, 4), 0xfffffffff0000010UL);
    CHECK("srliw 0", RI("srliw", 0x80000000UL, 0), 0xffffffff80000000UL);
    CHECK("srliw 1", RI("srliw", 0x80000000UL, 1), 0x40000000UL);
    CHECK("srliw 31", RI("srliw", ONES, 31), 1);
    CHECK("sraiw 0", RI("sraiw", 0x1ffffffffUL, 0), ONES);
    CHECK("sraiw 31", RI("sraiw", 0x80000000UL, 31), ONES);
    CHECK("sraiw 4", RI("sraiw", 0x80000000UL, 4), 0xfffffffff8000000UL);
    CHECK("sraiw pos", RI("sraiw", 0xf00000007fffffffUL, 30), 1);
}

static void test_upper(void)
{
    section("lui/auipc");
    u64 r, a, b;
    __asm__ volatile(NORVC("lui %0, 0x80000") : "=r"(r));
    CHECK("lui sext", r, 0xffffffff80000000UL);
    __asm__ volatile(NORVC("lui %0, 0x7ffff") : "=r"(r));
    CHECK("lui max pos", r, 0x7ffff000UL);
    __asm__ volatile(NORVC("lui %0, 0xfffff") : "=r"(r));
    CHECK("lui -1", r, 0xfffffffffffff000UL);
    __asm__ volatile(NORVC("lui %0, 0") : "=r"(r));
    CHECK("lui 0", r, 0);
    __asm__ volatile(NORVC("1: auipc %0, 0\n lla %1, 1b") : "=&r"(a), "=&r"(b));
    CHECK("auipc 0", a - b, 0);
    __asm__ volatile(NORVC("1: auipc %0, 0x80000\n lla %1, 1b") : "=&r"(a), "=&r"(b));
    CHECK("auipc sext", a - b, 0xffffffff80000000UL);
    __asm__ volatile(NORVC("1: auipc %0, 0x7ffff\n lla %1, 1b") : "=&r"(a), "=&r"(b));
    CHECK("auipc pos", a - b, 0x7ffff000UL);
    __asm__ volatile(NORVC("1: auipc %0, 0xfffff\n lla %1, 1b") : "=&r"(a), "=&r"(b));
    CHECK("auipc -4096", a - b, -4096L);
    CHECK("auipc in RAM", (a + 4096) >> 31, 1);
}

static void test_branches(void)
{
    section("branches");
    CHECK("beq t", BR("beq", 5, 5), 1);
    CHECK("beq n", BR("beq", 5, 6), 0);
    CHECK("beq sign", BR("beq", ONES, 0xffffffffUL), 0);
    CHECK("bne t", BR("bne", 5, 6), 1);
    CHECK("bne n", BR("bne", -1L, -1L), 0);
    CHECK("blt t", BR("blt", -1L, 0), 1);
    CHECK("blt n", BR("blt", 0, -1L), 0);
    CHECK("blt eq", BR("blt", 3, 3), 0);
    CHECK("blt min max", BR("blt", MIN64, MAX64), 1);
    CHECK("bge t", BR("bge", 0, -1L), 1);
    CHECK("bge eq", BR("bge", -7L, -7L), 1);
    CHECK("bge n", BR("bge", MIN64, MAX64), 0);
    CHECK("bltu t", BR("bltu", 0, -1L), 1);
    CHECK("bltu n", BR("bltu", -1L, 0), 0);
    CHECK("bltu eq", BR("bltu", 9, 9), 0);
    CHECK("bltu max min", BR("bltu", MAX64, MIN64), 1);
    CHECK("bgeu t", BR("bgeu", -1L, 0), 1);
    CHECK("bgeu eq", BR("bgeu", 9, 9), 1);
    CHECK("bgeu n", BR("bgeu", 1, 2), 0);
    /* backward branch loop */
    u64 n = 0, i = 10;
    __asm__ volatile(NORVC("1: addi %0, %0, 3\n addi %1, %1, -1\n bnez %1, 1b")
                     : "+r"(n), "+r"(i));
    CHECK("backward loop", n, 30);
    /* far forward branch (> 2 KiB) */
    u64 t;
    __asm__ volatile(NORVC("li %0, 0\n beq zero, zero, 2f\n .fill 700, 4, 0x00100013\n"
                           "li %0, 99\n 2: addi %0, %0, 1") : "=&r"(t));
    CHECK("far branch", t, 1);
}

static u64 jump_target(u64 x) { return x * 3 + 1; }

static void test_jumps(void)
{
    section("jal/jalr");
    u64 link, exp;
    __asm__ volatile(NORVC("jal %0, 1f\n 1: lla %1, 1b") : "=&r"(link), "=&r"(exp));
    CHECK("jal link", link, exp);
    __asm__ volatile(NORVC("jal %0, 1f\n .word 0\n 1: lla %1, 1b") : "=&r"(link), "=&r"(exp));
    CHECK("jal skip", link + 4, exp);
    /* jal x0: plain jump */
    u64 v = 0;
    __asm__ volatile(NORVC("li %0, 1\n jal x0, 1f\n li %0, 2\n 1:") : "=&r"(v));
    CHECK("jal x0", v, 1);
    /* jalr with odd target: bit 0 cleared */
    u64 r = 0, l = 0, e = 0;
    __asm__ volatile(NORVC("lla %2, 1f\n addi %2, %2, 1\n li %0, 5\n jalr %1, 0(%2)\n li %0, 7\n 1:\n lla %2, 1b\n")
                     : "=&r"(r), "=&r"(l), "=&r"(e));
    CHECK("jalr odd target", r, 5);
    /* the link register gets pc+4 of the jalr: check against the label */
    __asm__ volatile(NORVC("lla t0, 2f\n jalr %0, 1(t0)\n 1: nop\n 2: nop\n nop\n lla %1, 1b")
                     : "=&r"(l), "=&r"(e) :: "t0");
    CHECK("jalr offset+odd, link", l, e);
    /* jalr offset negative */
    __asm__ volatile(NORVC("lla t0, 2f\n jalr x0, -8(t0)\n li %0, 1\n 1: li %0, 2\n j 3f\n 2: nop\n 3:")
                     : "=&r"(r) :: "t0");
    CHECK("jalr negative offset", r, 2);
    /* jalr with rd == rs1 uses the old rs1 */
    __asm__ volatile(NORVC("lla %0, 1f\n jalr %0, 0(%0)\n li %0, 0\n 1: lla %1, 1b\n addi %1, %1, -8\n sub %0, %0, %1")
                     : "=&r"(r), "=&r"(e));
    CHECK("jalr rd==rs1", r, 4);
    /* real call/return through a function pointer */
    u64 (*volatile fp)(u64) = jump_target;
    CHECK("call via jalr", fp(14), 43);
}

static volatile u64 data[4] = {
    0x8182838485868788UL, 0x7f6e5d4c3b2a1900UL, 0xfedcba9876543210UL, 0,
};

#define LOAD(op, ptr, off) ({ u64 r_; __asm__ volatile(NORVC(op " %0, " #off "(%1)") \
        : "=r"(r_) : "r"(ptr) : "memory"); r_; })
#define STORE(op, ptr, off, v) __asm__ volatile(NORVC(op " %1, " #off "(%0)") \
        :: "r"(ptr), "r"((u64)(v)) : "memory")

static void test_loads_stores(void)
{
    section("loads/stores");
    volatile u8 *p = (volatile u8 *)data;
    __asm__("" : "+r"(p));  /* hide the array bounds from the compiler */
    CHECK("lb neg", LOAD("lb", p, 0), 0xffffffffffffff88UL);
    CHECK("lb pos", LOAD("lb", p, 15), 0x7f);
    CHECK("lbu", LOAD("lbu", p, 0), 0x88);
    CHECK("lbu 7", LOAD("lbu", p, 7), 0x81);
    CHECK("lh neg", LOAD("lh", p, 6), 0xffffffffffff8182UL);
    CHECK("lh pos", LOAD("lh", p, 14), 0x7f6e);
    CHECK("lhu", LOAD("lhu", p, 6), 0x8182);
    CHECK("lw neg", LOAD("lw", p, 4), 0xffffffff81828384UL);
    CHECK("lw pos", LOAD("lw", p, 12), 0x7f6e5d4c);
    CHECK("lwu", LOAD("lwu", p, 4), 0x81828384UL);
    CHECK("lwu low", LOAD("lwu", p, 0), 0x85868788UL);
    CHECK("ld", LOAD("ld", p, 16), 0xfedcba9876543210UL);
    CHECK("ld neg offset", LOAD("ld", p + 24, -16), 0x7f6e5d4c3b2a1900UL);
    CHECK("lb neg offset", LOAD("lb", p + 8, -1), 0xffffffffffffff81UL);
    CHECK("lw offset 2047", LOAD("lw", p - 2047 + 20, 2047), 0xfffffffffedcba98UL);
    CHECK("lhu offset -2048", LOAD("lhu", p + 2048 + 16, -2048), 0x3210);

    volatile u8 *q = (volatile u8 *)&data[3];
    __asm__("" : "+r"(q));
    STORE("sd", q, 0, 0x1111111111111111UL);
    STORE("sb", q, 1, 0xabcdef22UL);
    CHECK("sb", data[3], 0x1111111111112211UL);
    STORE("sh", q, 2, 0xffff3344UL);
    CHECK("sh", data[3], 0x1111111133442211UL);
    STORE("sw", q, 4, 0xffffffff55667788UL);
    CHECK("sw", data[3], 0x5566778833442211UL);
    STORE("sd", q, 0, 0x0102030405060708UL);
    CHECK("sd", data[3], 0x0102030405060708UL);
    STORE("sb", q + 8, -8, 0xff);
    CHECK("sb neg offset", data[3], 0x01020304050607ffUL);
    STORE("sw", q - 2047, 2047 + 0, 0);
    CHECK("sw offset", data[3], 0x0102030400000000UL);
    CHECK("neighbour untouched", data[2], 0xfedcba9876543210UL);
}

static void test_x0(void)
{
    section("x0");
    u64 r;
    __asm__ volatile(NORVC("addi x0, x0, 5\n mv %0, x0") : "=r"(r));
    CHECK("addi x0", r, 0);
    __asm__ volatile(NORVC("lui x0, 0x12345\n add %0, x0, x0") : "=r"(r));
    CHECK("lui x0", r, 0);
    __asm__ volatile(NORVC("ld x0, 0(%1)\n mv %0, x0") : "=r"(r) : "r"(&data[2]));
    CHECK("ld x0", r, 0);
    __asm__ volatile(NORVC("jal x0, 1f\n 1: auipc x0, 1\n addi %0, x0, 0") : "=r"(r));
    CHECK("auipc x0", r, 0);
    __asm__ volatile(NORVC("li t0, -1\n add x0, t0, t0\n sltu %0, x0, t0") : "=r"(r) :: "t0");
    CHECK("add x0 then use", r, 1);
    __asm__ volatile(NORVC("csrr x0, mscratch\n mv %0, zero") : "=r"(r));
    CHECK("csrr x0", r, 0);
}

/* Self-modifying code: patch an instruction, fence.i, run it. */
static u32 code_buf[4] __attribute__((aligned(16)));

static void test_fence(void)
{
    section("fence/fence.i");
    u64 (*fn)(void) = (u64 (*)(void))(void *)code_buf;
    code_buf[0] = 0x00100513;   /* addi a0, zero, 1 */
    code_buf[1] = 0x00008067;   /* jalr zero, 0(ra) */
    __asm__ volatile("fence.i" ::: "memory");
    CHECK("run generated", fn(), 1);
    code_buf[0] = 0x02a00513;   /* addi a0, zero, 42 */
    __asm__ volatile("fence.i" ::: "memory");
    CHECK("run patched", fn(), 42);
    code_buf[0] = 0xfff00513;   /* addi a0, zero, -1 */
    __asm__ volatile("fence.i" ::: "memory");
    CHECK("run patched again", fn(), ONES);
    u64 r = 0;
    __asm__ volatile("fence\n fence rw, rw\n fence r, w\n fence iorw, iorw\n fence.tso\n"
                     ".word 0x0100000f\n li %0, 1" : "=r"(r) :: "memory");
    CHECK("fence variants", r, 1);
}

static void test_system(void)
{
    section("ecall/ebreak");
    u64 at;
    trap_reset(&mtrap);
    __asm__ volatile(NORVC("lla %0, 1f\n 1: ecall") : "=&r"(at) :: "memory");
    CHECK("ecall count", mtrap.log.count, 1);
    CHECK("ecall cause", mtrap.log.cause, CAUSE_ECALL_M);
    CHECK("ecall mepc", mtrap.log.epc, at);
    trap_reset(&mtrap);
    __asm__ volatile(NORVC("lla %0, 1f\n 1: ebreak") : "=&r"(at) :: "memory");
    CHECK("ebreak count", mtrap.log.count, 1);
    CHECK("ebreak cause", mtrap.log.cause, CAUSE_BREAKPOINT);
    CHECK("ebreak mepc", mtrap.log.epc, at);
    trap_off(&mtrap);
}

int main(void)
{
    println("rv64i: base integer instructions");
    test_reg_reg();
    test_reg_imm();
    test_word();
    test_upper();
    test_branches();
    test_jumps();
    test_loads_stores();
    test_x0();
    test_fence();
    test_system();
    return finish();
}
