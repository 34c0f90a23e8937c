/* RV64C: every RV64 compressed instruction (explicit c.* mnemonics, so the
 * assembler must emit the 16-bit encodings), immediate corner cases, 32-bit
 * instructions at 2 mod 4 (also straddling a page), reserved encodings, HINTs
 * and c.ebreak vs ebreak. */
#include "asm.h"

#define ONES 0xffffffffffffffffUL

/* Define a leaf function `name` whose body is assembled with RVC enabled. */
#define CFUNC(name, body) \
    u64 name(u64, u64, u64); \
    __asm__(".text\n.globl " #name "\n.balign 4\n" #name ":\n" \
            ".option push\n.option rvc\n" body "\n.option pop\n")

/* ---- immediates / ALU ---- */
CFUNC(c_li_m32, "c.li a0, -32\n c.jr ra");
CFUNC(c_li_31, "c.li a0, 31\n c.jr ra");
CFUNC(c_lui_1, "c.lui a0, 1\n c.jr ra");
CFUNC(c_lui_31, "c.lui a0, 31\n c.jr ra");
CFUNC(c_lui_neg32, "c.lui a0, 0xfffe0\n c.jr ra");
CFUNC(c_lui_neg1, "c.lui a0, 0xfffff\n c.jr ra");
CFUNC(c_lui_sp_reg, "c.lui t1, 0x10\n c.mv a0, t1\n c.jr ra");
CFUNC(c_addi_m32, "c.addi a0, -32\n c.jr ra");
CFUNC(c_addi_31, "c.addi a0, 31\n c.jr ra");
CFUNC(c_addi_m1, "c.addi a0, -1\n c.jr ra");
CFUNC(c_addi_t6, "c.mv t6, a0\n c.addi t6, 5\n c.mv a0, t6\n c.jr ra");
CFUNC(c_addiw_1, "c.addiw a0, 1\n c.jr ra");
CFUNC(c_addiw_0, "c.addiw a0, 0\n c.jr ra");
CFUNC(c_addiw_m32, "c.addiw a0, -32\n c.jr ra");
CFUNC(c_slli_1, "c.slli a0, 1\n c.jr ra");
CFUNC(c_slli_32, "c.slli a0, 32\n c.jr ra");
CFUNC(c_slli_63, "c.slli a0, 63\n c.jr ra");
CFUNC(c_slli_t0, "c.mv t0, a0\n c.slli t0, 40\n c.mv a0, t0\n c.jr ra");
CFUNC(c_srli_1, "c.srli a0, 1\n c.jr ra");
CFUNC(c_srli_32, "c.srli a0, 32\n c.jr ra");
CFUNC(c_srli_63, "c.srli a0, 63\n c.jr ra");
CFUNC(c_srai_1, "c.srai a0, 1\n c.jr ra");
CFUNC(c_srai_33, "c.srai a0, 33\n c.jr ra");
CFUNC(c_srai_63, "c.srai a0, 63\n c.jr ra");
CFUNC(c_andi_m32, "c.andi a0, -32\n c.jr ra");
CFUNC(c_andi_31, "c.andi a0, 31\n c.jr ra");
CFUNC(c_andi_m1, "c.andi a0, -1\n c.jr ra");
CFUNC(c_andi_0, "c.andi a0, 0\n c.jr ra");
CFUNC(c_sub, "c.sub a0, a1\n c.jr ra");
CFUNC(c_xor, "c.xor a0, a1\n c.jr ra");
CFUNC(c_or, "c.or a0, a1\n c.jr ra");
CFUNC(c_and, "c.and a0, a1\n c.jr ra");
CFUNC(c_subw, "c.subw a0, a1\n c.jr ra");
CFUNC(c_addw, "c.addw a0, a1\n c.jr ra");
CFUNC(c_sub_s0s1, "c.addi16sp sp, -16\n c.sdsp s0, 0(sp)\n c.sdsp s1, 8(sp)\n"
      "c.mv s0, a0\n c.mv s1, a1\n c.sub s1, s0\n c.mv a0, s1\n"
      "c.ldsp s0, 0(sp)\n c.ldsp s1, 8(sp)\n c.addi16sp sp, 16\n c.jr ra");
CFUNC(c_mv, "c.mv a0, a1\n c.jr ra");
CFUNC(c_add, "c.add a0, a1\n c.jr ra");
CFUNC(c_add_hi, "c.mv t5, a0\n c.mv t4, a1\n c.add t5, t4\n c.mv a0, t5\n c.jr ra");
CFUNC(c_nop, "c.nop\n c.nop\n c.addi a0, 1\n c.jr ra");

/* ---- stack-pointer forms ---- */
CFUNC(c_addi16sp_neg,
      "c.mv a1, sp\n c.addi16sp sp, -512\n sub a0, a1, sp\n"
      "c.addi16sp sp, 496\n c.addi16sp sp, 16\n c.jr ra");
CFUNC(c_addi16sp_pos,
      "c.mv a1, sp\n c.addi16sp sp, -16\n c.addi16sp sp, 32\n sub a0, sp, a1\n"
      "c.addi16sp sp, -16\n c.jr ra");
CFUNC(c_addi4spn_max, "c.addi4spn a0, sp, 1020\n sub a0, a0, sp\n c.jr ra");
CFUNC(c_addi4spn_min, "c.addi4spn a5, sp, 4\n sub a0, a5, sp\n c.jr ra");
/* a0 = value, a1 = out[]: exercise all sp-relative loads/stores */
CFUNC(c_sp_mem,
      "c.addi16sp sp, -512\n"
      "c.sdsp a0, 504(sp)\n c.ldsp a2, 504(sp)\n c.sd a2, 0(a1)\n"
      "c.swsp a0, 252(sp)\n c.lwsp a2, 252(sp)\n c.sd a2, 8(a1)\n"
      "c.sdsp zero, 0(sp)\n c.swsp a0, 0(sp)\n c.ldsp a2, 0(sp)\n c.sd a2, 16(a1)\n"
      "fmv.d.x fa0, a0\n c.fsdsp fa0, 496(sp)\n c.ldsp a2, 496(sp)\n c.sd a2, 24(a1)\n"
      "c.sdsp a0, 8(sp)\n c.fldsp fa1, 8(sp)\n fmv.x.d a2, fa1\n c.sd a2, 32(a1)\n"
      "c.mv t2, a0\n c.sdsp t2, 16(sp)\n c.lwsp t3, 20(sp)\n sd t3, 40(a1)\n"
      "c.addi16sp sp, 496\n c.addi16sp sp, 16\n c.jr ra");
/* a0 = value, a1 = buf (256 bytes), a2 = out[]: register-based loads/stores */
CFUNC(c_reg_mem,
      "c.sd a0, 248(a1)\n c.ld a3, 248(a1)\n c.sd a3, 0(a2)\n"
      "c.sw a0, 124(a1)\n c.lw a3, 124(a1)\n c.sd a3, 8(a2)\n"
      "sd zero, 0(a1)\n"
      "c.sw a0, 4(a1)\n c.ld a3, 0(a1)\n c.sd a3, 16(a2)\n"
      "fmv.d.x fa5, a0\n c.fsd fa5, 240(a1)\n c.ld a3, 240(a1)\n c.sd a3, 24(a2)\n"
      "c.sd a0, 8(a1)\n c.fld fs0, 8(a1)\n fmv.x.d a3, fs0\n c.sd a3, 32(a2)\n"
      "c.jr ra");

/* ---- control flow ---- */
CFUNC(c_j_fwd_back, "c.li a0, 0\n c.j 2f\n 1: c.addi a0, 1\n c.jr ra\n 2: c.addi a0, 4\n c.j 1b");
CFUNC(c_beqz, "c.mv a1, a0\n c.li a0, 1\n c.beqz a1, 1f\n c.li a0, 0\n 1: c.jr ra");
CFUNC(c_bnez, "c.mv a1, a0\n c.li a0, 1\n c.bnez a1, 1f\n c.li a0, 0\n 1: c.jr ra");
CFUNC(c_bnez_back, "c.li a0, 0\n c.li a1, 10\n 1: c.addi a0, 3\n c.addi a1, -1\n c.bnez a1, 1b\n c.jr ra");
CFUNC(c_jr, "c.li a0, 1\n lla t0, 1f\n c.jr t0\n c.li a0, 2\n 1: c.addi a0, 10\n c.jr ra");
CFUNC(c_jalr_link,
      "c.mv a5, ra\n lla t0, 1f\n 3: c.jalr t0\n c.nop\n"
      "1: lla a1, 3b\n sub a0, ra, a1\n c.mv ra, a5\n c.jr ra");
CFUNC(c_jalr_call,
      "c.mv a5, ra\n lla t0, 9f\n c.jalr t0\n c.addi a0, 1\n c.mv ra, a5\n c.jr ra\n"
      "9: c.slli a0, 4\n c.jr ra");
/* c.jal does not exist in RV64 (that encoding is c.addiw) -- checked above */

/* ---- 32-bit instructions at 2 mod 4 ---- */
CFUNC(straddle_4,
      "c.nop\n .option push\n .option norvc\n"
      "1: addi a0, a0, 100\n slli a0, a0, 1\n .option pop\n"
      "c.nop\n lui a1, 0x12345\n c.add a0, a1\n"
      "lla a2, 1b\n andi a2, a2, 3\n c.slli a2, 32\n c.add a0, a2\n c.jr ra");
/* branch and jalr targets at 2 mod 4 */
CFUNC(target_2mod4,
      "c.li a0, 0\n .option push\n .option norvc\n beq zero, zero, 1f\n .option pop\n"
      "c.nop\n c.li a0, 9\n 1: c.addi a0, 1\n"       /* 1: is at 2 mod 4 */
      "lla t0, 2f\n jalr zero, 0(t0)\n c.li a0, 7\n 2: c.addi a0, 2\n"
      "c.jr ra");

/* 32-bit instruction straddling a page boundary */
__asm__(".text\n.balign 4096\n"
        ".option push\n.option rvc\n"
        ".fill 2044, 2, 0x0001\n"                /* c.nop padding: 4088 bytes */
        ".globl straddle_page\n"
        "straddle_page:\n"
        "c.nop\n c.nop\n c.nop\n"               /* 4088..4093 */
        ".option norvc\n"
        "addi a0, a0, 0x123\n"                   /* 4094..4097: crosses the page */
        ".option rvc\n"
        "c.jr ra\n"
        ".option pop\n");
u64 straddle_page(u64);

/* HINTs: must execute as no-ops (rd = x0 forms, c.nop with nonzero imm) */
CFUNC(c_hints,
      ".2byte 0x0005\n"      /* c.nop 1        (c.addi x0, 1) */
      ".2byte 0x4015\n"      /* c.li x0, 5 */
      ".2byte 0x802a\n"      /* c.mv x0, a0 */
      ".2byte 0x902a\n"      /* c.add x0, a0 */
      ".2byte 0x0506\n"      /* c.slli a0, 1 ... real instruction: a0 <<= 1 */
      ".2byte 0x0102\n"      /* c.slli sp, 0: shamt 0 is a HINT in RV64 */
      ".2byte 0x0002\n"      /* c.slli x0, 0 */
      "c.jr ra");

static void test_alu(void)
{
    section("c alu");
    CHECK("c.li -32", c_li_m32(0, 0, 0), -32L);
    CHECK("c.li 31", c_li_31(0, 0, 0), 31);
    CHECK("c.lui 1", c_lui_1(0, 0, 0), 0x1000);
    CHECK("c.lui 31", c_lui_31(0, 0, 0), 0x1f000);
    CHECK("c.lui -32", c_lui_neg32(0, 0, 0), 0xfffffffffffe0000UL);
    CHECK("c.lui -1", c_lui_neg1(0, 0, 0), 0xfffffffffffff000UL);
    CHECK("c.lui t1", c_lui_sp_reg(0, 0, 0), 0x10000);
    CHECK("c.addi -32", c_addi_m32(100, 0, 0), 68);
    CHECK("c.addi 31", c_addi_31(100, 0, 0), 131);
    CHECK("c.addi -1 wrap", c_addi_m1(0, 0, 0), ONES);
    CHECK("c.addi t6", c_addi_t6(1, 0, 0), 6);
    CHECK("c.addiw 1", c_addiw_1(0x7fffffff, 0, 0), 0xffffffff80000000UL);
    CHECK("c.addiw 0 (sext.w)", c_addiw_0(0x12345678fedcba98UL, 0, 0), 0xfffffffffedcba98UL);
    CHECK("c.addiw -32", c_addiw_m32(0x100000010UL, 0, 0), -16L);
    CHECK("c.slli 1", c_slli_1(0x8000000000000001UL, 0, 0), 2);
    CHECK("c.slli 32", c_slli_32(0x89abcdefUL, 0, 0), 0x89abcdef00000000UL);
    CHECK("c.slli 63", c_slli_63(3, 0, 0), 0x8000000000000000UL);
    CHECK("c.slli t0 40", c_slli_t0(0xff, 0, 0), 0xff0000000000UL);
    CHECK("c.srli 1", c_srli_1(ONES, 0, 0), 0x7fffffffffffffffUL);
    CHECK("c.srli 32", c_srli_32(0x89abcdef01234567UL, 0, 0), 0x89abcdefUL);
    CHECK("c.srli 63", c_srli_63(0x8000000000000000UL, 0, 0), 1);
    CHECK("c.srai 1", c_srai_1(0x8000000000000000UL, 0, 0), 0xc000000000000000UL);
    CHECK("c.srai 33", c_srai_33(0x8000000000000000UL, 0, 0), 0xffffffffc0000000UL);
    CHECK("c.srai 63", c_srai_63(0x8000000000000000UL, 0, 0), ONES);
    CHECK("c.srai 63 pos", c_srai_63(0x7fffffffffffffffUL, 0, 0), 0);
    CHECK("c.andi -32", c_andi_m32(0x123456789abcdefUL, 0, 0), 0x123456789abcde0UL);
    CHECK("c.andi 31", c_andi_31(0x123456789abcdefUL, 0, 0), 0xf);
    CHECK("c.andi -1", c_andi_m1(0x8123456789abcdefUL, 0, 0), 0x8123456789abcdefUL);
    CHECK("c.andi 0", c_andi_0(ONES, 0, 0), 0);
    CHECK("c.sub", c_sub(5, 7, 0), -2L);
    CHECK("c.xor", c_xor(0xff00ff00ff00ff00UL, 0x0ff00ff00ff00ff0UL, 0), 0xf0f0f0f0f0f0f0f0UL);
    CHECK("c.or", c_or(0xff00ff00ff00ff00UL, 0x0ff00ff00ff00ff0UL, 0), 0xfff0fff0fff0fff0UL);
    CHECK("c.and", c_and(0xff00ff00ff00ff00UL, 0x0ff00ff00ff00ff0UL, 0), 0x0f000f000f000f00UL);
    CHECK("c.subw", c_subw(0x80000000UL, 1, 0), 0x7fffffff);
    CHECK("c.subw neg", c_subw(0, 1, 0), ONES);
    CHECK("c.subw upper", c_subw(0x1234567800000005UL, 0x9999999900000003UL, 0), 2);
    CHECK("c.addw", c_addw(0x7fffffff, 1, 0), 0xffffffff80000000UL);
    CHECK("c.addw upper", c_addw(0xffffffff00000001UL, 0xf0000000ffffffffUL, 0), 0);
    CHECK("c.mv", c_mv(1, 0x123456789UL, 0), 0x123456789UL);
    CHECK("c.add", c_add(0x7fffffffffffffffUL, 1, 0), 0x8000000000000000UL);
    CHECK("c.add t5,t4", c_add_hi(40, 2, 0), 42);
    CHECK("c.nop", c_nop(1, 0, 0), 2);
    CHECK("hints are no-ops", c_hints(0x21, 0, 0), 0x42);
}

static void test_sp(void)
{
    section("c sp-relative");
    CHECK("c.sub s0/s1", c_sub_s0s1(3, 10, 0), 7);
    CHECK("c.addi16sp -512", c_addi16sp_neg(0, 0, 0), 512);
    CHECK("c.addi16sp +32", c_addi16sp_pos(0, 0, 0), 16);
    CHECK("c.addi4spn 1020", c_addi4spn_max(0, 0, 0), 1020);
    CHECK("c.addi4spn 4", c_addi4spn_min(0, 0, 0), 4);
    u64 out[6] = { 0 };
    c_sp_mem(0x80000000fedcba98UL, (u64)out, 0);
    CHECK("c.sdsp/c.ldsp 504", out[0], 0x80000000fedcba98UL);
    CHECK("c.swsp/c.lwsp 252 sext", out[1], 0xfffffffffedcba98UL);
    CHECK("c.swsp 0 low word", out[2], 0xfedcba98UL);
    CHECK("c.fsdsp 496", out[3], 0x80000000fedcba98UL);
    CHECK("c.fldsp 8", out[4], 0x80000000fedcba98UL);
    CHECK("c.lwsp hi word", out[5], 0xffffffff80000000UL);
}

static u64 buf[32] __attribute__((aligned(64)));

static void test_mem(void)
{
    section("c loads/stores");
    u64 out[5] = { 0 };
    c_reg_mem(0x7f00000080000001UL, (u64)buf, (u64)out);
    CHECK("c.sd/c.ld 248", out[0], 0x7f00000080000001UL);
    CHECK("c.sw/c.lw 124 sext", out[1], 0xffffffff80000001UL);
    CHECK("c.sw 4 hi word", out[2], 0x8000000100000000UL);
    CHECK("c.fsd 240", out[3], 0x7f00000080000001UL);
    CHECK("c.fld 8", out[4], 0x7f00000080000001UL);
    CHECK("c.sd 248 in memory", buf[31], 0x7f00000080000001UL);
}

static void test_control(void)
{
    section("c control flow");
    CHECK("c.j fwd/back", c_j_fwd_back(0, 0, 0), 5);
    CHECK("c.beqz taken", c_beqz(0, 0, 0), 1);
    CHECK("c.beqz not taken", c_beqz(0x100000000UL, 0, 0), 0);
    CHECK("c.bnez taken", c_bnez(0x8000000000000000UL, 0, 0), 1);
    CHECK("c.bnez not taken", c_bnez(0, 0, 0), 0);
    CHECK("c.bnez loop", c_bnez_back(0, 0, 0), 30);
    CHECK("c.jr", c_jr(0, 0, 0), 11);
    CHECK("c.jalr link = pc+2", c_jalr_link(0, 0, 0), 2);
    CHECK("c.jalr call", c_jalr_call(1, 0, 0), 17);
    CHECK("32-bit insn at 2 mod 4", straddle_4(5, 0, 0), (2UL << 32) + 210 + 0x12345000UL);
    CHECK("branch/jalr target 2 mod 4", target_2mod4(0, 0, 0), 3);
    CHECK("insn straddling a page", straddle_page(1), 0x124);
    CHECK("straddle_page addr", ((u64)straddle_page + 6) & 0xfff, 0xffe);
}

static void test_traps(void)
{
    section("c traps");
    u64 at, r;
    /* c.ebreak: mepc = its address, 2-byte instruction */
    trap_reset(&mtrap);
    __asm__ volatile(".option push\n.option rvc\n lla %0, 1f\n li %1, 0\n"
                     "1: c.ebreak\n c.addi %1, 1\n .option pop"
                     : "=&r"(at), "=&r"(r) :: "memory");
    CHECK("c.ebreak cause", mtrap.log.cause, CAUSE_BREAKPOINT);
    CHECK("c.ebreak mepc", mtrap.log.epc, at);
    CHECK("c.ebreak count", mtrap.log.count, 1);
    CHECK("c.ebreak resumed", r, 1);
    CHECK("c.ebreak encoding", *(volatile u16 *)at, 0x9002);
    trap_reset(&mtrap);
    __asm__ volatile(".option push\n.option norvc\n lla %0, 1f\n li %1, 0\n"
                     "1: ebreak\n addi %1, %1, 1\n .option pop"
                     : "=&r"(at), "=&r"(r) :: "memory");
    CHECK("ebreak cause", mtrap.log.cause, CAUSE_BREAKPOINT);
    CHECK("ebreak mepc", mtrap.log.epc, at);
    CHECK("ebreak resumed", r, 1);
    CHECK("ebreak encoding", *(volatile u32 *)at, 0x00100073);

    /* all-zero halfword is illegal */
    trap_reset(&mtrap);
    __asm__ volatile(".option push\n.option rvc\n lla %0, 1f\n li %1, 0\n"
                     "1: .2byte 0\n c.addi %1, 1\n .option pop"
                     : "=&r"(at), "=&r"(r) :: "memory");
    CHECK("0x0000 illegal cause", mtrap.log.cause, CAUSE_ILLEGAL);
    CHECK("0x0000 illegal mepc", mtrap.log.epc, at);
    CHECK("0x0000 illegal mtval", mtrap.log.tval, 0);
    CHECK("0x0000 resumed", r, 1);

    /* reserved encodings */
    static const u16 reserved[] = {
        0x6101,     /* c.addi16sp sp, 0 */
        0x6501,     /* c.lui a0, 0 */
        0x4002,     /* c.lwsp x0, 0(sp) */
        0x6002,     /* c.ldsp x0, 0(sp) */
        0x8002,     /* c.jr x0 */
    };
    static const char *names[] = {
        "c.addi16sp 0", "c.lui 0", "c.lwsp rd=0", "c.ldsp rd=0", "c.jr x0",
    };
    static u16 slot[2] __attribute__((aligned(4)));
    for (unsigned i = 0; i < 5; i++) {
        slot[0] = reserved[i];
        slot[1] = 0x8082;           /* c.jr ra */
        __asm__ volatile("fence.i" ::: "memory");
        trap_reset(&mtrap);
        ((void (*)(void))(void *)slot)();
        CHECK(names[i], mtrap.log.cause, CAUSE_ILLEGAL);
        CHECK(names[i], mtrap.log.epc, (u64)slot);
        CHECK(names[i], mtrap.log.tval == 0 || mtrap.log.tval == reserved[i], 1);
    }
    trap_off(&mtrap);
}

int main(void)
{
    println("rv64c: compressed instructions");
    test_alu();
    test_sp();
    test_mem();
    test_control();
    test_traps();
    return finish();
}
