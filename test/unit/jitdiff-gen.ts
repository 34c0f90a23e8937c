// The differential test's programs and runs (test/unit/jit-diff.test.ts, bench/jitdiff.ts): random but valid RV64IMC programs
// (with some F and D), each run on a BareMachine with the translator off, with it on, and with it
// on under random small budgets (so translated code is cut off at arbitrary points). Everything
// must be identical: x and f registers, fcsr, mstatus, mepc/mcause/mtval, all of RAM (the data
// buffer, the trap log, the registers saved at exit), what the program printed, minstret and the
// hart's instruction count. The programs loop enough for most of their code to run translated.
//
// Each program (made by Gen from a seed; machine code emitted by ./rv-asm.ts):
//   0x8000_0000  boot: mtvec, mscratch, mstatus.FS, frm, x and f registers from the init table;
//                the trap handler (records mepc/mcause/mtval in a ring, counts, skips the
//                instruction); exit: saves the registers, prints them in hex over HTIF (a hot
//                loop that stores to the watched tohost), exits
//   0x8000_1000  the body, at a random offset so that it crosses page boundaries (sometimes with
//                a 4-byte instruction on a page's last halfword): loops (nested two deep, three
//                shapes, and one- or two-instruction delay loops), forward branches and if/else,
//                calls (jal, auipc+jalr, la+c.jalr, link ra or another register, rd == rs1) to
//                functions inline or out of line. The first loop is long and raises one kind of
//                trap on every iteration (ecall, ebreak, c.ebreak, illegal, load or store fault).
//   0x8000_5000  gp: 256 bytes of data, then out-of-line functions (stores to that data hit a
//                page of translated code, whose translations are dropped and made again)
//   0x8001_0000  8 KiB data buffer (random contents); s0 = 0x8001_1000 (its middle, a page
//                boundary), sp = 0x8001_0c00; s1 = an unmapped address (every access faults)
//   0x8001_fc00  the registers at exit;  0x8002_0000 trap save area and log;
//   0x8002_1000  the initial registers;  0x8003_0000 tohost
// Instructions: the ALU ops and their W forms, M (with division by zero and overflow), lui,
// auipc, loads and stores of every size and signedness (aligned, misaligned, across a page,
// faulting, from the CLINT's mtime, rd == rs1), integer C, fence, fence.i, CSR reads (minstret,
// mcycle, trap CSRs), F/D loads, stores, arithmetic, conversions, moves, fcsr accesses, and
// mstatus.FS off (FP instructions illegal) or Clean (FP instructions must make it Dirty).
// Loops count in a2 (outer) and a3 (inner); gp, s0, s1, sp, a2, a3 are not written otherwise,
// and stores only go through s0, sp, gp or an index masked into the data buffer (or fault
// through s1), so a program never writes its own code.
//
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BareMachine } from "../../src/vm/bare.js";
import { TEST_JIT_THRESHOLD } from "../helpers.js";
import { Exit, jitOf } from "../../src/hart/hart.js";
import * as L from "../../src/hart/layout.js";
import {
  Asm, C, CSR, Rng, X, elf64, encAluI, encAluR, encCsr, encI, encJalr, encLoad, encStore, encU,
  C_EBREAK, C_UNIMP, EBREAK, ECALL, FENCE, FENCE_I, MRET, CF, FP_OP, encFp, encFma, encFload, encFstore,
} from "./rv-asm.js";

const BOOT = 0x8000_0000;
const BODY = 0x8000_1000, BODY_END = 0x8000_5000;
const FNS = 0x8000_5000, FNS_END = 0x8000_9000;
const HOLE_BYTES = 0x100; // data at the start of the function area (gp): stores there hit a page of translated code
const DATA = 0x8001_0000, DATA_BYTES = 0x2000, S0 = 0x8001_1000, SP = 0x8001_0c00;
const TRAP = 0x8002_0000, TRAP_LOG = 0x100, TRAP_RING = 128, DUMP = -0x400; // (offsets from TRAP)
const INIT = 0x8002_1000;
const TOHOST = 0x8003_0000, FROMHOST = 0x8003_0040;
const IMAGE_BYTES = 0x3_1000;
const MEM_BYTES = 16 << 20; // the hart module needs 16 MiB of machine memory at least
const FAULT_BASES = [0x1000n, 0x1000_0000n, 0x7fff_f800n, 0x4000_0000_0000n, 0xffff_ffff_0000_0000n];

const MSTATUS_FS_INITIAL = 1n << 13n, MSTATUS_FS_CLEAN = 2n << 13n, MSTATUS_FS_DIRTY = 3n << 13n;
const FP_DOUBLES = [
  0n, 0x8000_0000_0000_0000n, 0x3ff0_0000_0000_0000n, 0xbff0_0000_0000_0000n, 0x3fe0_0000_0000_0000n, 0x4340_0000_0000_0000n,
  0x7fef_ffff_ffff_ffffn, 0x0000_0000_0000_0001n, 0x000f_ffff_ffff_ffffn, 0x7ff0_0000_0000_0000n, 0xfff0_0000_0000_0000n,
  0x7ff8_0000_0000_0000n, 0x7ff0_0000_0000_0001n, 0x41e0_0000_0000_0000n, 0xc3e0_0000_0000_0000n, 0x3ff8_0000_0000_0000n,
];
const FP_SINGLES = [
  0n, 0x8000_0000n, 0x3f80_0000n, 0xbf80_0000n, 0x3f00_0000n, 0x7f7f_ffffn, 0x0000_0001n, 0x007f_ffffn, 0x7f80_0000n,
  0xff80_0000n, 0x7fc0_0000n, 0x7f80_0001n, 0x4f00_0000n, 0xcf00_0000n, 0x3fc0_0000n, 0x4b00_0000n,
];


const LOOP_REGS = [X.a2, X.a3];
const RESERVED = new Set<number>([X.zero, X.gp, X.sp, X.s0, X.s1, X.a2, X.a3]);
const POOL = Array.from({ length: 32 }, (_, i) => i).filter((r) => !RESERVED.has(r));
const CREGS = [8, 9, 10, 11, 12, 13, 14, 15];

const INTERESTING = [
  0n, 1n, 2n, 3n, 31n, 32n, 63n, 64n, -1n, -2n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn,
  0x7fff_ffffn, 0x8000_0000n, 0xffff_ffffn, 0x1_0000_0000n, -0x8000_0000n, 0x7fff_ffff_ffff_ffffn,
  -0x8000_0000_0000_0000n, 0x5555_5555_5555_5555n, -0x5555_5555_5555_5556n, 0x8000_0001n,
];

interface Fn { label: string; link: number }

// ---- the program generator
class Gen {
  readonly a = new Asm(BOOT, IMAGE_BYTES);
  private fnPos: number;
  private readonly fns: Fn[] = [];
  private loopBudget: number;
  private readonly busy = new Set<number>(); // loop counters in use where code is being emitted

  // `trapKind`: the trap the first loop raises on every iteration (see trap()).
  constructor(readonly rng: Rng, readonly long: boolean, readonly trapKind: number) {
    this.fnPos = FNS + HOLE_BYTES + rng.int(0, 0x780) * 2;
    this.loopBudget = rng.int(3, 5);
  }

  private value(): bigint {
    const r = this.rng;
    const k = r.int(0, 9);
    if (k < 4) return r.pick(INTERESTING);
    if (k < 6) return BigInt.asIntN(64, r.u64());
    if (k < 8) return BigInt.asIntN(32, BigInt(r.u32()));
    return BigInt(r.int(-100, 100));
  }

  // A floating-point register's bits: doubles, NaN-boxed singles (and some not properly boxed).
  private fvalue(): bigint {
    const r = this.rng;
    const k = r.int(0, 9);
    if (k < 3) return r.pick(FP_DOUBLES);
    if (k < 6) return 0xffff_ffff_0000_0000n | r.pick(FP_SINGLES);
    if (k < 7) return 0xffff_ffff_0000_0000n | BigInt(r.u32());
    if (k < 8) return BigInt(r.u32()); // not NaN-boxed: reads as the canonical NaN in single operations
    if (k < 9) return r.u64();
    const d = new DataView(new ArrayBuffer(8));
    d.setFloat64(0, (r.u32() - 2 ** 31) / r.int(1, 1000));
    return d.getBigUint64(0);
  }

  build(): Uint8Array {
    const a = this.a, r = this.rng;
    // Boot: trap vector, scratch, registers, then the body.
    a.define("handler_area", TRAP).define("init", INIT).define("tohost", TOHOST);
    a.at(BOOT).label("_start");
    a.la(X.t0, "handler"); a.w32(encCsr(1, 0, CSR.mtvec, X.t0));
    a.la(X.t0, "handler_area"); a.w32(encCsr(1, 0, CSR.mscratch, X.t0));
    a.li(X.t0, MSTATUS_FS_INITIAL); a.w32(encCsr(2, 0, CSR.mstatus, X.t0)); // csrs mstatus: the FPU on
    a.li(X.t0, r.int(0, 4)); a.w32(encCsr(1, 0, CSR.frm, X.t0));
    a.la(X.t0, "init");
    for (let i = 0; i < 32; i++) a.w32(encFload(8, i, X.t0, 256 + 8 * i));
    for (let i = 1; i < 32; i++) if (i !== X.t0) a.w32(encLoad("ld", i, X.t0, 8 * i));
    a.w32(encLoad("ld", X.t0, X.t0, 8 * X.t0));
    a.jal(0, "body");
    this.handler();
    this.exit();

    // Initial registers and data.
    const init = new DataView(a.image.buffer, INIT - BOOT, 512);
    for (let i = 1; i < 32; i++) init.setBigInt64(8 * i, this.value(), true);
    for (let i = 0; i < 32; i++) init.setBigUint64(256 + 8 * i, this.fvalue(), true);
    init.setBigInt64(8 * X.sp, BigInt(SP), true);
    init.setBigInt64(8 * X.s0, BigInt(S0), true);
    init.setBigInt64(8 * X.s1, r.pick(FAULT_BASES), true);
    init.setBigInt64(8 * X.gp, BigInt(FNS), true);
    for (let i = 0; i < DATA_BYTES; i++) a.image[DATA - BOOT + i] = r.u32() & 0xff;

    // The body: the first segment is always a loop, so that something gets hot.
    a.at(BODY + r.int(0, 0x7ff) * 2).label("body");
    const segments = r.int(3, 6);
    for (let s = 0; s < segments; s++) {
      if (s === 0) this.loop(0, true);
      else if (this.loopBudget > 0 && r.chance(0.7)) this.loop(0);
      else this.items(POOL, r.int(3, 10), true);
    }
    a.jal(0, "exit");
    if (a.pos > BODY_END) throw new Error(`body overflows into the function area (0x${a.pos.toString(16)})`);
    if (this.fnPos > FNS_END) throw new Error("functions overflow into the data");
    return elf64(a.finish(), BOOT, BOOT, { tohost: TOHOST, fromhost: FROMHOST });
  }

  // Saves x1..x31 at TRAP + DUMP, prints them in hex on the HTIF console (a loop that gets hot,
  // with a store to the watched tohost in it), and exits with code 0.
  private exit(): void {
    const a = this.a;
    a.label("exit");
    a.w32(encCsr(1, X.t6, CSR.mscratch, X.t6)); // t6 = TRAP
    for (let i = 1; i < 31; i++) a.w32(encStore("sd", i, X.t6, DUMP + 8 * i));
    a.w32(encCsr(2, X.t5, CSR.mscratch, 0)); a.w32(encStore("sd", X.t5, X.t6, DUMP + 8 * 31));
    a.la(X.t0, "tohost");
    a.li(X.t1, DUMP + 8); a.w32(encAluR("add", X.t1, X.t1, X.t6));
    a.w32(encAluI("addi", X.t2, X.t1, 31 * 8));
    const putc = (): void => { // a0
      const wait = a.fresh("wait");
      a.label(wait);
      a.w32(encLoad("ld", X.t5, X.t0, 0));
      a.branch("bne", X.t5, 0, wait);
      a.li(X.t5, 0x0101); a.w32(encAluI("slli", X.t5, X.t5, 48));
      a.w32(encAluR("or", X.t5, X.t5, X.a0));
      a.w32(encStore("sd", X.t5, X.t0, 0));
    };
    a.label("dump_reg");
    a.w32(encLoad("ld", X.t3, X.t1, 0));
    a.li(X.t4, 60);
    a.label("dump_digit");
    a.w32(encAluR("srl", X.a0, X.t3, X.t4));
    a.w32(encAluI("andi", X.a0, X.a0, 15));
    a.w32(encAluI("sltiu", X.t5, X.a0, 10));
    a.branch("bne", X.t5, 0, "dump_dec");
    a.w32(encAluI("addi", X.a0, X.a0, 0x61 - 10 - 0x30));
    a.label("dump_dec");
    a.w32(encAluI("addi", X.a0, X.a0, 0x30));
    putc();
    a.w32(encAluI("addi", X.t4, X.t4, -4));
    a.branch("bge", X.t4, 0, "dump_digit");
    a.li(X.a0, 10);
    putc();
    a.w32(encAluI("addi", X.t1, X.t1, 8));
    a.branch("bne", X.t1, X.t2, "dump_reg");
    a.li(X.t1, 1); a.w32(encStore("sd", X.t1, X.t0, 0));
    a.label("hang"); a.jal(0, "hang");
  }

  // Records mepc, mcause, mtval (a ring of TRAP_RING entries and a count), skips the instruction.
  private handler(): void {
    const a = this.a;
    a.align(4).label("handler");
    a.w32(encCsr(1, X.t6, CSR.mscratch, X.t6)); // t6 <-> mscratch: t6 = save area
    a.w32(encStore("sd", X.t5, X.t6, 0));
    a.w32(encStore("sd", X.t4, X.t6, 8));
    a.w32(encLoad("ld", X.t5, X.t6, 24));
    a.w32(encAluI("addi", X.t4, X.t5, 1));
    a.w32(encStore("sd", X.t4, X.t6, 24));
    a.w32(encAluI("andi", X.t5, X.t5, TRAP_RING - 1));
    a.w32(encAluI("slli", X.t4, X.t5, 4));
    a.w32(encAluI("slli", X.t5, X.t5, 3));
    a.w32(encAluR("add", X.t5, X.t5, X.t4)); // index * 24
    a.w32(encAluR("add", X.t5, X.t5, X.t6));
    a.w32(encCsr(2, X.t4, CSR.mepc, 0)); a.w32(encStore("sd", X.t4, X.t5, TRAP_LOG));
    a.w32(encCsr(2, X.t4, CSR.mcause, 0)); a.w32(encStore("sd", X.t4, X.t5, TRAP_LOG + 8));
    a.w32(encCsr(2, X.t4, CSR.mtval, 0)); a.w32(encStore("sd", X.t4, X.t5, TRAP_LOG + 16));
    a.w32(encCsr(2, X.t4, CSR.mepc, 0));
    a.w32(encLoad("lhu", X.t5, X.t4, 0));
    a.w32(encAluI("andi", X.t5, X.t5, 3));
    a.w32(encAluI("addi", X.t5, X.t5, -3));
    a.w32(encAluI("addi", X.t4, X.t4, 2));
    const short = a.fresh();
    a.branch("bne", X.t5, 0, short);
    a.w32(encAluI("addi", X.t4, X.t4, 2));
    a.label(short);
    a.w32(encCsr(1, 0, CSR.mepc, X.t4));
    a.w32(encLoad("ld", X.t5, X.t6, 0));
    a.w32(encLoad("ld", X.t4, X.t6, 8));
    a.w32(encCsr(1, X.t6, CSR.mscratch, X.t6));
    a.w32(MRET);
  }

  // A sequence of `n` items: instructions, forward branches, calls and (if allowed) loops.
  private items(pool: number[], n: number, calls: boolean): void {
    const r = this.rng;
    for (let i = 0; i < n; i++) {
      const k = r.u32() % 100;
      if (k < 10) this.skip(pool, 1);
      else if (k < 16 && calls) this.call();
      else if (k < 18 && calls) this.tightLoop();
      else this.insn(pool);
    }
  }

  // `first`: the program's first loop, long and not nested, so that every program has hot code.
  private loop(depth: number, first = false): void {
    const a = this.a, r = this.rng;
    this.loopBudget--;
    const cnt = LOOP_REGS[depth]!;
    this.busy.add(cnt);
    const nested = depth === 0 && !first && r.chance(0.4);
    let trips = depth === 1 ? r.int(16, 60) : nested ? r.int(10, 40) : r.int(first ? 600 : 200, 1200);
    if (this.long && depth === 0) trips *= 16;
    const top = a.fresh("loop");
    const body = (): void => {
      this.items(POOL, r.int(4, 14), true);
      if (first) { this.trap(); this.items(POOL, r.int(1, 4), true); }
      if (nested) this.loop(1);
      this.items(POOL, r.int(0, 4), true);
    };
    const shape = r.int(0, 2);
    if (shape === 0 || (shape === 2 && trips > 2047)) { // do { } while (--cnt)
      a.li(cnt, trips);
      a.label(top);
      body();
      if (r.chance(0.5)) a.h16(C.addi(cnt, -1)); else a.w32(encAluI("addi", cnt, cnt, -1));
      this.backBranch(cnt, top);
    } else if (shape === 1) { // while (cnt) { cnt--; }
      const out = a.fresh("out");
      a.li(cnt, trips);
      a.label(top);
      if (r.chance(0.5)) { // c.bnez over a jump out
        const inside = a.fresh("in");
        a.cbz("bnez", cnt, inside); a.jal(0, out); a.label(inside);
      } else a.branch("beq", cnt, 0, out);
      body();
      a.w32(encAluI("addiw", cnt, cnt, -1));
      if (r.chance(0.5) && a.pos - a.addr(top) < 2000) a.cj(top); else a.jal(0, top);
      a.label(out);
    } else { // for (cnt = 0; cnt < trips; cnt++)
      a.li(cnt, 0);
      a.label(top);
      body();
      a.w32(encAluI("addi", cnt, cnt, 1));
      const t = r.pick(POOL);
      if (r.chance(0.5)) {
        a.w32(encAluI("sltiu", t, cnt, trips));
        this.backBranch(t, top);
      } else {
        a.li(t, trips);
        const d = a.addr(top) - a.pos;
        if (d >= -4096) a.branch(r.chance(0.5) ? "blt" : "bltu", cnt, t, top);
        else { const out = a.fresh("out"); a.branch("bge", cnt, t, out); a.jal(0, top); a.label(out); }
      }
    }
    this.busy.delete(cnt);
  }

  // A loop of one or two instructions (a delay loop) on a free counter.
  private tightLoop(): void {
    const a = this.a, r = this.rng;
    const cnt = LOOP_REGS.find((x) => !this.busy.has(x));
    if (cnt === undefined) return;
    const top = a.fresh("tight");
    a.li(cnt, this.busy.size > 0 ? r.int(4, 30) : r.int(20, 300));
    a.label(top);
    if (r.chance(0.3)) this.insn(POOL);
    if (r.chance(0.5)) a.h16(C.addi(cnt, -1)); else a.w32(encAluI("addiw", cnt, cnt, -1));
    if (r.chance(0.5) && a.addr(top) - a.pos >= -256) a.cbz("bnez", cnt, top); else a.branch("bne", cnt, 0, top);
  }

  // One instruction that traps: ecall, ebreak, c.ebreak, an illegal one, a load or store access fault.
  private trap(): void {
    const a = this.a, r = this.rng;
    switch (this.trapKind) {
      case 0: a.w32(ECALL); break;
      case 1: a.w32(EBREAK); break;
      case 2: a.h16(C_EBREAK); break;
      case 3: a.h16(C_UNIMP); break;
      case 4: a.w32(encLoad(r.pick(["ld", "lw", "lhu", "lb"]), r.pick(POOL), X.s1, r.int(-2048, 2047))); break;
      default: a.w32(encStore(r.pick(["sd", "sw", "sh", "sb"]), r.int(0, 31), X.s1, r.int(-2048, 2047))); break;
    }
  }

  // Back to `top` while reg != 0, in whichever form reaches.
  private backBranch(reg: number, top: string): void {
    const a = this.a;
    const d = a.addr(top) - a.pos;
    if (d >= -256 && CREGS.includes(reg) && this.rng.chance(0.5)) a.cbz("bnez", reg, top);
    else if (d >= -4096) a.branch("bne", reg, 0, top);
    else { const out = a.fresh("out"); a.branch("beq", reg, 0, out); a.jal(0, top); a.label(out); }
  }

  // A forward conditional branch over a few instructions, or an if/else.
  private skip(pool: number[], nest: number): void {
    const a = this.a, r = this.rng;
    const over = a.fresh("skip");
    const src = (): number => r.int(0, 31);
    const inner = (): void => {
      const n = r.int(1, 5);
      for (let i = 0; i < n; i++) {
        if (nest > 0 && r.chance(0.15)) this.skip(pool, nest - 1);
        else this.insn(pool);
      }
    };
    const compressed = nest === 0 || r.chance(0.3);
    if (compressed && r.chance(0.4)) {
      a.cbz(r.chance(0.5) ? "beqz" : "bnez", r.pick(CREGS), over);
      const n = r.int(1, 4);
      for (let i = 0; i < n; i++) this.insn(pool);
      a.label(over);
      return;
    }
    a.branch(r.pick(["beq", "bne", "blt", "bge", "bltu", "bgeu"]), src(), src(), over);
    inner();
    if (r.chance(0.3)) { // else branch
      const end = a.fresh("end");
      if (r.chance(0.5)) a.cj(end); else a.jal(0, end);
      a.label(over);
      inner();
      a.label(end);
    } else a.label(over);
  }

  private call(): void {
    const a = this.a, r = this.rng;
    let fn: Fn;
    if (this.fns.length > 0 && r.chance(0.35)) fn = r.pick(this.fns);
    else {
      const link = r.weighted<number>([[7, X.ra], [2, X.t0], [1, r.pick(POOL)]]);
      fn = { label: a.fresh("fn"), link };
      this.fns.push(fn);
      const inline = r.chance(0.35);
      const saved = a.pos;
      const over = a.fresh("over");
      if (inline) a.jal(0, over);
      else a.at(this.fnPos);
      a.label(fn.label);
      const pool = POOL.filter((x) => x !== link);
      const n = r.int(2, 12);
      for (let i = 0; i < n; i++) {
        if (r.chance(0.12)) this.skip(pool, 1);
        else this.insn(pool);
      }
      if (r.chance(0.5)) a.h16(C.jr(link)); else a.w32(encJalr(0, link, 0));
      if (inline) a.label(over);
      else { this.fnPos = a.pos; a.at(saved); }
    }
    const link = fn.link;
    const t = r.pick(POOL.filter((x) => x !== 0));
    switch (r.int(0, 3)) {
      case 0: a.jal(link, fn.label); break;
      case 1: a.pcrel(t, fn.label, encJalr(link, t, 0)); break; // auipc t; jalr link, lo(t)
      case 2: a.la(link, fn.label); a.w32(encJalr(link, link, 0)); break; // rd == rs1
      default:
        if (link === X.ra) { a.la(t, fn.label); a.h16(C.jalr(t)); } // c.jalr
        else a.jal(link, fn.label);
    }
  }

  // One random instruction (or a short macro) that writes only registers of `pool`.
  private insn(pool: number[]): void {
    const a = this.a, r = this.rng;
    const dst = (): number => (r.chance(0.04) ? 0 : r.pick(pool));
    const src = (): number => r.int(0, 31);
    const cpool = pool.filter((x) => x >= 8 && x <= 15);
    const cdst = (): number => r.pick(cpool);
    const tmp = (): number => r.pick(pool);
    const s12 = (): number => r.int(-2048, 2047);
    const rm = (): number => r.pick([0, 1, 2, 3, 4, 7, 7]);
    const kind = r.weighted<string>([
      [10, "alu"], [8, "alui"], [4, "aluw"], [4, "aluiw"], [7, "muldiv"], [2, "mdedge"], [2, "upper"], [1, "li"],
      [6, "lds0"], [2, "ldsp"], [0.6, "ldfault"], [0.4, "ldany"], [0.3, "mtime"], [1, "ldidx"],
      [5, "sts0"], [2, "stsp"], [0.4, "stfault"], [1.5, "stidx"],
      [10, "calu"], [4, "cmem"], [1, "c4spn"], [0.3, "c16sp"], [0.6, "sys"], [0.5, "hint"], [0.5, "ldself"], [0.4, "stcode"], [0.3, "ldcode"],
      [2.5, "fmem"], [0.8, "cfmem"], [4, "farith"], [1, "ffma"], [2, "fcvt"], [2, "fmisc"], [0.3, "fcsr"], [0.1, "fsoff"], [0.6, "fsclean"],
    ]);
    const size = (): 1 | 2 | 4 | 8 => r.pick([1, 2, 4, 8] as const);
    const loadName = (s: number): string => s === 8 ? "ld" : (r.chance(0.5) ? ["lb", "lh", "lw"] : ["lbu", "lhu", "lwu"])[Math.log2(s)]!;
    const storeName = (s: number): string => ["sb", "sh", "sw", "sd"][Math.log2(s)]!;
    // An offset from s0 (the middle of the buffer): aligned, misaligned, or straddling the page boundary at s0.
    const dataOff = (s: number, range = 2048): number => {
      const k = r.int(0, 9);
      if (k < 6) return r.int(-range / s, range / s - 1) * s;
      if (k < 8) return r.int(-range, range - s);
      return r.int(-s + 1, -1) || -1;
    };
    switch (kind) {
      case "alu": a.w32(encAluR(r.pick(["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and"]), dst(), src(), src())); break;
      case "alui": {
        const op = r.pick(["addi", "slti", "sltiu", "xori", "ori", "andi", "slli", "srli", "srai"]);
        a.w32(encAluI(op, dst(), src(), op.startsWith("s") && op !== "slti" && op !== "sltiu" ? r.int(0, 63) : s12()));
        break;
      }
      case "aluw": a.w32(encAluR(r.pick(["addw", "subw", "sllw", "srlw", "sraw"]), dst(), src(), src())); break;
      case "aluiw": {
        const op = r.pick(["addiw", "slliw", "srliw", "sraiw"]);
        a.w32(encAluI(op, dst(), src(), op === "addiw" ? s12() : r.int(0, 31)));
        break;
      }
      case "muldiv":
        a.w32(encAluR(r.pick(["mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu", "mulw", "divw", "divuw", "remw", "remuw"]), dst(), src(), src()));
        break;
      case "mdedge": { // division by zero, MIN / -1, 32-bit operands with garbage above
        const t1 = tmp(), t2 = tmp();
        const e = r.int(0, 3);
        if (e === 0) {
          a.h16(C.li(t1, 0));
          a.w32(encAluR(r.pick(["div", "divu", "rem", "remu", "divw", "divuw", "remw", "remuw"]), dst(), src(), t1));
        } else if (e === 1) {
          a.li(t1, -1); a.li(t2, 1); a.w32(encAluI("slli", t2, t2, 63));
          if (t1 === t2) a.li(t1, -1);
          a.w32(encAluR(r.pick(["div", "rem", "mulh", "mulhsu", "mulhu", "mul", "divu", "remu"]), dst(), t2, t1));
        } else if (e === 2) {
          a.w32(encU(0x37, t2, 0x80000)); a.li(t1, -1);
          a.w32(encAluR(r.pick(["divw", "remw", "divuw", "remuw", "mulw"]), dst(), t2, t1));
        } else {
          a.li(t1, BigInt.asIntN(64, r.u64()));
          a.w32(encAluR(r.pick(["divw", "remw", "divuw", "remuw", "mulw", "sllw", "srlw", "sraw"]), dst(), t1, src()));
        }
        break;
      }
      case "upper": a.w32(encU(r.chance(0.5) ? 0x37 : 0x17, dst(), r.int(0, 0xfffff))); break;
      case "li": a.li(r.pick(pool), this.value()); break;
      case "lds0": { const s = size(); a.w32(encLoad(loadName(s), dst(), X.s0, dataOff(s))); break; }
      case "ldsp": { const s = size(); a.w32(encLoad(loadName(s), dst(), X.sp, dataOff(s, 1024))); break; }
      case "ldfault": { const s = size(); a.w32(encLoad(loadName(s), dst(), X.s1, s12())); break; }
      case "ldself": { // rd == rs1, and the access usually faults: rd must keep its value
        const t = r.pick(pool.filter((x) => x !== 0));
        a.w32(encLoad(r.pick(["ld", "lw", "lbu", "lh"]), t, t, s12()));
        break;
      }
      case "stcode": { const s = size(); a.w32(encStore(storeName(s), src(), X.gp, r.int(0, HOLE_BYTES - s))); break; }
      case "ldcode": { const s = size(); a.w32(encLoad(loadName(s), dst(), X.gp, r.int(-2048, 2047))); break; }
      case "ldany": { const s = size(); a.w32(encLoad(loadName(s), dst(), src(), s12())); break; }
      case "mtime": { // the CLINT's mtime: a device read whose value depends on the exact instruction count
        const t = r.pick(pool.filter((x) => x !== 0));
        a.w32(encU(0x37, t, 0x200c));
        a.w32(encLoad(r.pick(["ld", "lw", "lwu"]), dst(), t, r.pick([-8, -4])));
        break;
      }
      case "ldidx": case "stidx": { // an address computed from data, masked into the buffer
        const t = r.pick(pool.filter((x) => x !== 0));
        const s = size();
        a.w32(encAluI("andi", t, src(), r.chance(0.6) ? 0x7f8 : 0x7ff));
        a.w32(encAluR("add", t, t, X.s0));
        const off = r.int(-2048, 0);
        if (kind === "ldidx") a.w32(encLoad(loadName(s), dst(), t, off));
        else a.w32(encStore(storeName(s), src(), t, off));
        break;
      }
      case "sts0": { const s = size(); a.w32(encStore(storeName(s), src(), X.s0, dataOff(s))); break; }
      case "stsp": { const s = size(); a.w32(encStore(storeName(s), src(), X.sp, dataOff(s, 1024))); break; }
      case "stfault": { const s = size(); a.w32(encStore(storeName(s), src(), X.s1, s12())); break; }
      case "calu": {
        if (cpool.length === 0) { a.h16(C.addi(0, 0)); break; }
        const c6 = (): number => r.int(-32, 31);
        const nzPool = pool.filter((x) => x !== 0);
        switch (r.int(0, 11)) {
          case 0: a.h16(C.addi(r.pick(nzPool), c6() || 1)); break;
          case 1: a.h16(C.addiw(r.pick(nzPool), c6())); break;
          case 2: a.h16(C.li(r.pick(nzPool), c6())); break;
          case 3: { const d = r.pick(nzPool.filter((x) => x !== 2)); a.h16(C.lui(d, c6() || 1)); break; }
          case 4: a.h16(C.srli(cdst(), r.int(1, 63))); break;
          case 5: a.h16(C.srai(cdst(), r.int(1, 63))); break;
          case 6: a.h16(C.andi(cdst(), c6())); break;
          case 7: a.h16(C[r.pick(["sub", "xor", "or", "and", "subw", "addw"] as const)](cdst(), r.pick(CREGS))); break;
          case 8: a.h16(C.slli(r.pick(nzPool), r.int(1, 63))); break;
          case 9: a.h16(C.mv(r.pick(nzPool), r.int(1, 31))); break;
          case 10: a.h16(C.add(r.pick(nzPool), r.int(1, 31))); break;
          default: a.h16(C.addi(0, 0)); break; // c.nop
        }
        break;
      }
      case "cmem": {
        const k = r.int(0, 7);
        const base = r.chance(0.9) ? X.s0 : r.chance(0.5) ? X.s1 : r.pick(CREGS); // s0: buffer; s1: faults
        const nzPool = pool.filter((x) => x !== 0);
        if (k === 0 && cpool.length) a.h16(C.lw(cdst(), base, r.int(0, 31) * 4));
        else if (k === 1 && cpool.length) a.h16(C.ld(cdst(), base, r.int(0, 31) * 8));
        else if (k === 2) a.h16(C.sw(r.pick(CREGS), base === X.s0 ? X.s0 : X.s1, r.int(0, 31) * 4));
        else if (k === 3) a.h16(C.sd(r.pick(CREGS), base === X.s0 ? X.s0 : X.s1, r.int(0, 31) * 8));
        else if (k === 4) a.h16(C.lwsp(r.pick(nzPool), r.int(0, 63) * 4));
        else if (k === 5) a.h16(C.ldsp(r.pick(nzPool), r.int(0, 63) * 8));
        else if (k === 6) a.h16(C.swsp(src(), r.int(0, 63) * 4));
        else a.h16(C.sdsp(src(), r.int(0, 63) * 8));
        break;
      }
      case "c4spn": if (cpool.length) a.h16(C.addi4spn(cdst(), r.int(1, 255) * 4)); break;
      case "c16sp": { // sp moves and comes back (sp-relative accesses in between)
        const d = (r.int(1, 31) * 16) * (r.chance(0.5) ? 1 : -1);
        a.h16(C.addi16sp(d));
        a.h16(r.chance(0.5) ? C.sdsp(src(), r.int(0, 63) * 8) : C.lwsp(r.pick(pool.filter((x) => x !== 0)), r.int(0, 63) * 4));
        a.h16(C.addi16sp(-d));
        break;
      }
      case "sys": {
        switch (r.int(0, 10)) {
          case 0: case 10: a.w32(ECALL); break;
          case 1: a.w32(EBREAK); break;
          case 2: a.h16(C_EBREAK); break;
          case 3: a.h16(C_UNIMP); break; // illegal instruction
          case 4: a.w32(encCsr(2, dst(), CSR.minstret, 0)); break;
          case 5: a.w32(encCsr(2, dst(), CSR.mcycle, 0)); break;
          case 6: a.w32(encCsr(2, dst(), r.pick([CSR.mepc, CSR.mcause, CSR.mtval, CSR.mscratch, CSR.mstatus]), 0)); break;
          case 7: a.w32(FENCE); break;
          case 8: a.w32(FENCE_I); break;
          default: a.w32(0xc0001073); break; // csrrw x0, cycle, x0: writes a read-only CSR, illegal
        }
        break;
      }
      case "fmem": { // flw/fld/fsw/fsd on the buffer (aligned or not), sp, or the fault base
        const s = r.pick([4, 8] as const);
        const [base, off] = r.weighted<[number, number]>([[6, [X.s0, dataOff(s)]], [2, [X.sp, dataOff(s, 1024)]], [1, [X.s1, s12()]]]);
        a.w32(r.chance(0.5) ? encFload(s, r.int(0, 31), base, off) : encFstore(s, r.int(0, 31), base, off));
        break;
      }
      case "cfmem": {
        const base = r.chance(0.85) ? X.s0 : X.s1;
        switch (r.int(0, 3)) {
          case 0: a.h16(CF.fld(r.int(8, 15), base, r.int(0, 31) * 8)); break;
          case 1: a.h16(CF.fsd(r.int(8, 15), base, r.int(0, 31) * 8)); break;
          case 2: a.h16(CF.fldsp(r.int(0, 31), r.int(0, 63) * 8)); break;
          default: a.h16(CF.fsdsp(r.int(0, 31), r.int(0, 63) * 8)); break;
        }
        break;
      }
      case "farith": {
        const fmt = r.int(0, 1), fd = r.int(0, 31), f1 = r.int(0, 31), f2 = r.int(0, 31);
        switch (r.int(0, 7)) {
          case 0: case 1: case 2: a.w32(encFp(r.pick([FP_OP.fadd!, FP_OP.fsub!, FP_OP.fmul!, FP_OP.fdiv!]), fmt, fd, f1, f2, rm())); break;
          case 3: a.w32(encFp(FP_OP.fsqrt!, fmt, fd, f1, 0, rm())); break;
          case 4: a.w32(encFp(FP_OP.fsgnj!, fmt, fd, f1, f2, r.int(0, 2))); break;
          case 5: a.w32(encFp(FP_OP.fminmax!, fmt, fd, f1, f2, r.int(0, 1))); break;
          case 6: a.w32(encFp(FP_OP.fcvtff!, fmt, fd, f1, 1 - fmt, rm())); break; // fcvt.s.d, fcvt.d.s
          default: a.w32(encFp(FP_OP.fadd!, fmt, fd, f1, f2, r.pick([5, 6]))); break; // reserved rounding mode: illegal
        }
        break;
      }
      case "ffma": a.w32(encFma(r.pick(["fmadd", "fmsub", "fnmsub", "fnmadd"] as const), r.int(0, 1), r.int(0, 31), r.int(0, 31), r.int(0, 31), r.int(0, 31), rm())); break;
      case "fcvt": // to and from integers (rs2: w, wu, l, lu)
        if (r.chance(0.5)) a.w32(encFp(FP_OP.fcvtif!, r.int(0, 1), dst(), r.int(0, 31), r.int(0, 3), rm()));
        else a.w32(encFp(FP_OP.fcvtfi!, r.int(0, 1), r.int(0, 31), src(), r.int(0, 3), rm()));
        break;
      case "fmisc": {
        const fmt = r.int(0, 1);
        switch (r.int(0, 3)) {
          case 0: a.w32(encFp(FP_OP.fcmp!, fmt, dst(), r.int(0, 31), r.int(0, 31), r.int(0, 2))); break; // fle, flt, feq
          case 1: a.w32(encFp(FP_OP.fmvxf!, fmt, dst(), r.int(0, 31), 0, 0)); break; // fmv.x.w/d
          case 2: a.w32(encFp(FP_OP.fmvxf!, fmt, dst(), r.int(0, 31), 0, 1)); break; // fclass
          default: a.w32(encFp(FP_OP.fmvfx!, fmt, r.int(0, 31), src(), 0, 0)); break; // fmv.w/d.x
        }
        break;
      }
      case "fcsr": { // frflags, fsflags, frrm, fsrm, frcsr (the interpreter's; flags accumulated by translated code)
        const csr = r.pick([CSR.fflags, CSR.frm, CSR.fcsr]);
        if (r.chance(0.5)) a.w32(encCsr(2, dst(), csr, 0));
        else a.w32(encCsr(5, dst(), csr, r.int(0, csr === CSR.frm ? 4 : 31))); // csrrwi
        break;
      }
      case "fsoff": { // the FPU off for a moment: floating-point instructions are illegal
        const t = r.pick(pool.filter((x) => x !== 0));
        a.li(t, MSTATUS_FS_DIRTY);
        a.w32(encCsr(3, 0, CSR.mstatus, t)); // csrc
        a.w32(r.chance(0.5) ? encFload(8, r.int(0, 31), X.s0, 0) : encFp(FP_OP.fadd!, 1, r.int(0, 31), r.int(0, 31), r.int(0, 31), 7));
        a.h16(CF.fsd(r.int(8, 15), X.s0, 8));
        a.li(t, MSTATUS_FS_INITIAL);
        a.w32(encCsr(2, 0, CSR.mstatus, t)); // csrs
        break;
      }
      case "fsclean": { // FS = Clean, then (through a jump, so that it may run translated) one FP instruction, and read mstatus
        const t = r.pick(pool.filter((x) => x !== 0));
        a.li(t, MSTATUS_FS_DIRTY);
        a.w32(encCsr(3, 0, CSR.mstatus, t));
        a.li(t, MSTATUS_FS_CLEAN);
        a.w32(encCsr(2, 0, CSR.mstatus, t));
        const next = a.fresh("next");
        a.jal(0, next);
        a.label(next);
        switch (r.int(0, 4)) {
          case 0: a.w32(encFload(r.pick([4, 8] as const), r.int(0, 31), X.s0, r.int(-256, 255) * 8)); break;
          case 1: a.h16(CF.fld(r.int(8, 15), X.s0, r.int(0, 31) * 8)); break;
          case 2: a.w32(encFstore(8, r.int(0, 31), X.s0, r.int(-256, 255) * 8)); break;
          case 3: a.w32(encFp(FP_OP.fmvxf!, 1, dst(), r.int(0, 31), 0, 0)); break;
          default: a.w32(encFp(FP_OP.fsgnj!, 1, r.int(0, 31), r.int(0, 31), r.int(0, 31), 0)); break;
        }
        a.w32(encCsr(2, dst(), CSR.mstatus, 0));
        break;
      }
      default: // hints and nops: writes to x0
        a.w32(r.chance(0.5) ? encI(0x13, 0, 0, 0, 0) : encAluR(r.pick(["add", "mul", "div", "sltu"]), 0, src(), src()));
    }
  }
}

export function genProgram(seed: number): Uint8Array {
  const rng = new Rng(seed);
  return new Gen(rng, seed % 10 === 7, seed % 6).build();
}

// ---- running and comparing
export interface Outcome {
  exitCode: number;
  instret: bigint;
  minstret: bigint;
  pc: bigint;
  x: bigint[];
  f: bigint[];
  csrs: Record<string, bigint>;
  ram: Buffer;
  output: string; // what the program printed (its registers at exit)
  stats: Record<string, number>;
  invalidated: number; // translations dropped because their frame was written
}

const NAMES = Object.fromEntries(Object.entries(X).map(([k, v]) => [v, k])) as Record<number, string>;

function outcome(m: BareMachine, exitCode: number, output: string): Outcome {
  const h = m.hart;
  return {
    exitCode,
    instret: h.instret,
    minstret: h.counter("instret"),
    pc: h.pc,
    x: Array.from({ length: 32 }, (_, i) => BigInt.asUintN(64, h.x(i))),
    f: Array.from({ length: 32 }, (_, i) => BigInt.asUintN(64, h.f(i))),
    csrs: { mepc: h.csr(L.HART_MEPC), mcause: h.csr(L.HART_MCAUSE), mtval: h.csr(L.HART_MTVAL), fcsr: h.csr(L.HART_FCSR), mstatus: h.csr(L.HART_MSTATUS) },
    ram: Buffer.from(m.ram.subarray(0, IMAGE_BYTES)),
    output,
    stats: h.stats(),
    invalidated: jitOf(h.wasm)?.stats.invalidated ?? 0,
  };
}

function machine(elf: Uint8Array, jit: boolean, name: string): { m: BareMachine; out: { text: string } } {
  const out = { text: "" };
  const m = new BareMachine({ jit, jitThreshold: TEST_JIT_THRESHOLD, memBytes: MEM_BYTES, maxInstructions: 20_000_000, out: (b) => { out.text += Buffer.from(b).toString("latin1"); } });
  m.load(elf, name);
  return { m, out };
}

export function runWhole(elf: Uint8Array, jit: boolean, name: string): Outcome {
  const { m, out } = machine(elf, jit, name);
  const code = m.run().exitCode;
  return outcome(m, code, out.text);
}

// BareMachine.run() slices by a million instructions; this drives the same machine with random
// budgets of 1..4000 so that translated code meets the budget at arbitrary points. It uses the
// machine's bus and HTIF, which BareMachine keeps private (no option to set its slice).
interface BareInternals {
  bus: { serve(h: unknown): void };
  htif: { poll(): { exit: number } | undefined } | undefined;
  updateInterrupts(): void;
}

export function runStepped(elf: Uint8Array, name: string, rng: Rng): Outcome {
  const { m, out } = machine(elf, true, name);
  const inner = m as unknown as BareInternals;
  assert.ok(inner.bus && inner.htif && typeof inner.updateInterrupts === "function", "BareMachine internals changed: update runStepped");
  const jit = jitOf(m.hart.wasm);
  for (let steps = 0; steps < 5_000_000; steps++) {
    inner.updateInterrupts();
    jit?.check(); // as BareMachine.run does before each run
    const budget = rng.chance(0.2) ? rng.int(1, 8) : rng.int(1, 4000);
    const code = m.hart.run(budget);
    if (code === Exit.Budget) continue;
    if (code === Exit.Mmio) { inner.bus.serve(m.hart); continue; }
    if (code === Exit.Watch) {
      const r = inner.htif!.poll();
      if (r) return outcome(m, r.exit, out.text);
      continue;
    }
    throw new Error(`${name}: unexpected exit ${code} at pc 0x${m.hart.pc.toString(16)}`);
  }
  throw new Error(`${name}: did not finish`);
}

export function differences(ref: Outcome, got: Outcome): string[] {
  const out: string[] = [];
  const hex = (v: bigint): string => `0x${BigInt.asUintN(64, v).toString(16)}`;
  if (ref.exitCode !== got.exitCode) out.push(`exit code ${ref.exitCode} vs ${got.exitCode}`);
  if (ref.instret !== got.instret) out.push(`instructions ${ref.instret} vs ${got.instret}`);
  if (ref.minstret !== got.minstret) out.push(`minstret ${ref.minstret} vs ${got.minstret}`);
  if (ref.pc !== got.pc) out.push(`pc ${hex(ref.pc)} vs ${hex(got.pc)}`);
  if (ref.output !== got.output) out.push(`console output ${JSON.stringify(ref.output.slice(0, 200))} vs ${JSON.stringify(got.output.slice(0, 200))}`);
  for (let i = 1; i < 32; i++) if (ref.x[i] !== got.x[i]) out.push(`${NAMES[i]} ${hex(ref.x[i]!)} vs ${hex(got.x[i]!)}`);
  for (let i = 0; i < 32; i++) if (ref.f[i] !== got.f[i]) out.push(`f${i} ${hex(ref.f[i]!)} vs ${hex(got.f[i]!)}`);
  for (const k of Object.keys(ref.csrs)) if (ref.csrs[k] !== got.csrs[k]) out.push(`${k} ${hex(ref.csrs[k]!)} vs ${hex(got.csrs[k]!)}`);
  let shown = 0;
  for (let i = 0; i < ref.ram.length && shown < 12; i++) {
    if (ref.ram[i] !== got.ram[i]) {
      out.push(`memory 0x${(BOOT + i).toString(16)}: 0x${ref.ram[i]!.toString(16)} vs 0x${got.ram[i]!.toString(16)}`);
      shown++;
    }
  }
  return out;
}

export function trapCount(o: Outcome): number {
  return Number(o.ram.readBigUInt64LE(TRAP - BOOT + 24));
}

// One program, seed `seed`: run interpreted, translated, and translated under random budgets.
// Returns what it exercised, or throws (assert) with the differences, having written the program
// to $TMPDIR/jitdiff-<seed>.elf.
export interface ProgramResult { insns: number; translated: number; traps: number; invalidated: number; causes: string[] }

export function checkProgram(seed: number, verbose = false): ProgramResult {
  const name = `jitdiff-${seed}`;
  const elf = genProgram(seed);
  const ref = runWhole(elf, false, name);
  const fail = (what: string, d: string[]): never => {
    const path = join(tmpdir(), `${name}.elf`);
    writeFileSync(path, elf);
    assert.fail(`seed ${seed} (${path}): ${what} differs from the interpreter:\n  ${d.join("\n  ")}`);
  };
  assert.equal(ref.exitCode, 0, `seed ${seed}: the program did not exit cleanly`);
  assert.equal(ref.output.length, 31 * 17, `seed ${seed}: the register dump is incomplete`);
  assert.equal(ref.stats.translatedInsns, 0);
  const jit = runWhole(elf, true, name);
  let d = differences(ref, jit);
  if (d.length) fail("the translated run", d);
  assert.ok(jit.stats.translatedInsns > 0, `seed ${seed}: nothing ran translated`);
  const stepped = runStepped(elf, name, new Rng(seed * 7919));
  d = differences(ref, stepped);
  if (d.length) fail("the translated run with random budgets", d);
  if (verbose) {
    console.log(`# seed ${seed}: ${ref.instret} instructions, ${jit.stats.translatedInsns} translated in ${jit.stats.translatedRuns} runs, ${trapCount(ref)} traps`);
  }
  // What the trap log saw (cause codes), to check that faults really happen.
  const causes = new Set<string>();
  const count = Math.min(trapCount(ref), TRAP_RING);
  for (let i = 0; i < count; i++) causes.add(ref.ram.readBigUInt64LE(TRAP - BOOT + TRAP_LOG + 24 * i + 8).toString());
  return { insns: Number(ref.instret), translated: jit.stats.translatedInsns!, traps: trapCount(ref), invalidated: jit.invalidated + stepped.invalidated, causes: [...causes] };
}
