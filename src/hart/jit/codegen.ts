// From guest code to a WebAssembly function. A region is the code of one 4 KiB page reachable
// from an entry point without leaving the page: basic blocks split at every branch target,
// each block an entry of its own. The function is a state machine (a loop around a br_table
// over the blocks), so a loop within the page runs without leaving wasm; whatever leaves the
// page, jumps through a register, or needs the interpreter ends the function with the next pc.
//
// The function's contract with run() (src/hart/asm/cpu.ts):
//   (s: state block, vpage: virtual address of the page, block: entry block, budget: instructions
//    that may be retired in all, rT/wT/xT: the current read/write/fetch L1 TLB tables, gen: the
//    L1 generation, n: instructions retired before this call) -> n plus those it retired
// It loads the guest registers it uses into locals, stores those it wrote and the next pc into
// the state block when it leaves, and retires exactly the instructions before that pc. A load or
// store whose TLB lookup misses calls the hart's slow path (jitLoad/jitStore); if that cannot
// finish the access (a fault, MMIO, a watched store) the function leaves at that instruction,
// so the interpreter executes it and takes the trap or exit with precise state.
//
// Chaining: where a region ends in an ordinary jump (a branch or jal out of the region, jalr, the
// page's end), the function looks the next pc up itself (the module's chain lookup function): on
// its own page by the frame it was translated from, elsewhere through the fetch TLB, then in the
// translation map (jit.ts), and
// leaves the map slot it found in the state block (HART_JIT_NEXT); run() calls that at once,
// with the same tables and the count so far, without its own checks and lookups. So guest code
// that moves between pages and regions runs translated call after call until the budget is
// spent, a lookup misses or an instruction needs the interpreter. Nothing that can change the
// tables (a CSR, sfence.vma, xRET, a trap, a call into the VMM) chains. (A tail call,
// return_call_indirect, would save the return, but a module that imports the hart's function
// table makes every later table update and instantiation cost time in proportion to the number
// of such modules: measured, it tripled translation time over a Debian boot.)
import * as L from "../layout.js";
import { decodeAt, type AluOp, type Insn } from "./decode.js";
import { Bytes, Op, T_F64, T_I32, T_I64, T_VOID } from "./wasm.js";

export const MAX_REGION_INSNS = 1024;
export const MAX_REGION_BLOCKS = 192;

export interface Block {
  off: number; // page offset of the first instruction
  insns: { off: number; len: number; insn: Insn }[];
  // What follows the last instruction when it is not a control transfer: the next offset (a
  // block of this region or the page end), or a stop (the interpreter's instruction) at `off`.
}

export interface Region {
  entry: number;
  blocks: Block[]; // by page offset
  base?: number; // machine address of the page (the cache sets it; chaining needs it)
}

// What emitted code bakes in about its translator and machine: the code map and code flag (every
// store's check for translated frames, jit.ts markDirty), and for chaining the translation map
// and the table index of the stub (an address left to the interpreter is not chained into).
// Without `map` the function does not chain.
export interface CodeEnv {
  dirty: number;
  flag: number;
  map?: number;
  stub?: number;
}

const isTerminator = (i: Insn): boolean => i.k === "branch" || i.k === "jal" || i.k === "jalr" || i.k === "stop" || i.k === "sys";

// The blocks reachable from `entry` within the page. `known(off)`: another translation already
// has a block at that page offset; the region stops there (leaving with that pc, where run()
// finds the other translation) instead of translating the same code twice.
export function findRegion(page: Uint8Array, entry: number, known: (off: number) => boolean = () => false): Region | undefined {
  const first = decodeAt(page, entry);
  if (first.insn.k === "stop") return undefined;
  const leaders = new Set<number>([entry]);
  const work = [entry];
  const seen = new Set<number>();
  let insns = 0;
  const addLeader = (off: number): void => {
    if (off < 0 || off >= 4096 || leaders.has(off) || leaders.size >= MAX_REGION_BLOCKS || known(off)) return;
    leaders.add(off);
    work.push(off);
  };
  while (work.length > 0) {
    let off = work.pop()!;
    for (;;) {
      if (seen.has(off) || insns >= MAX_REGION_INSNS) break;
      seen.add(off);
      const d = decodeAt(page, off);
      insns++;
      const i = d.insn;
      if (i.k === "stop") break;
      if (i.k === "branch") {
        addLeader(off + i.imm);
        addLeader(off + d.len);
        break;
      }
      if (i.k === "jal") {
        addLeader(off + i.imm);
        break;
      }
      if (i.k === "jalr") break;
      if (i.k === "sys") {
        // The instruction after it starts a block: where translated code goes on after the VMM
        // emulated it, and where the interpreter finds translated code again when the VMM
        // declined it.
        if (!i.end) addLeader(off + d.len);
        break;
      }
      off += d.len;
      if (off >= 4096) break;
      if (leaders.has(off) || known(off)) break;
    }
  }
  const starts = [...leaders].sort((a, b) => a - b);
  const blocks: Block[] = [];
  for (const start of starts) {
    const b: Block = { off: start, insns: [] };
    let off = start;
    for (let n = 0; n < MAX_REGION_INSNS; n++) {
      const d = decodeAt(page, off);
      b.insns.push({ off, len: d.len, insn: d.insn });
      if (isTerminator(d.insn)) break;
      off += d.len;
      if (off >= 4096 || leaders.has(off) || known(off)) break;
    }
    // A block whose first instruction is a stop can still be an entry (a branch target): it
    // just leaves at once. Keep it, so jumps to it are exits rather than missing states.
    blocks.push(b);
  }
  return { entry, blocks };
}

// Parameters and locals of the generated function.
const P_S = 0, P_VPAGE = 1, P_BLOCK = 2, P_BUDGET = 3, P_RT = 4, P_WT = 5, P_GEN = 6, L_N = 7, P_XT = 8;
const L_PC = 9, L_VA = 10, L_T = 11, L_E = 12, L_H = 13, L_CH = 14; // pc, va, t: i64; e, h, ch: i32
const L_X0 = 15; // then one local for each guest register the region uses, in register order

export const FN_PARAMS = [T_I32, T_I64, T_I32, T_I64, T_I32, T_I32, T_I64, T_I64, T_I32];
export const FN_RESULTS = [T_I64];
// Function indices in the module: imports first.
export const F_LOAD = 0, F_STORE = 1, F_FP = 2, F_ADDD = 3, F_MULD = 4, F_FMAD = 5, F_SYS = 6; // imports
export const F_MULHU = 7; // every module has mulhu first, the chain lookup second, then its regions
export const F_CHAIN = 8;
// The chain lookup's type: (pc, vpage, page's machine address, fetch TLB, L1 generation) -> slot.
export const CHAIN_PARAMS = [T_I64, T_I64, T_I32, T_I32, T_I64];
export const CHAIN_RESULTS = [T_I32];
const FAST_MISS = 0x7ff0000000000001n; // fpu.ts F64_FAST_MISS
const MS_FS = 3n << 13n, MS_SD = -(1n << 63n); // mstatus.FS, mstatus.SD (as i64)

export interface Emitted {
  body: Bytes;
  locals: { count: number; type: number }[];
  usesMulh: boolean;
}

// Emits the function of a region.
export function emitRegion(r: Region, track: CodeEnv): Emitted {
  return new RegionEmitter(r, track).emit();
}

// A function body being written: the encodings every emitter here uses.
class Code {
  readonly c = new Bytes();
  protected op(a: number, b = -1, d = -1, e = -1): void {
    const c = this.c;
    c.byte(a);
    if (b >= 0) c.byte(b);
    if (d >= 0) c.byte(d);
    if (e >= 0) c.byte(e);
  }
  protected i64c(v: bigint | number): void {
    this.c.byte(Op.i64_const);
    if (typeof v === "number" && v === (v | 0)) this.c.s32(v); // small constants (offsets, counts)
    else this.c.s64(BigInt(v));
  }
  protected i32c(v: number): void { this.c.byte(Op.i32_const).s32(v); }
  protected f64c(v: number): void {
    this.c.byte(Op.f64_const);
    const b = new Uint8Array(new Float64Array([v]).buffer);
    for (let k = 0; k < 8; k++) this.c.byte(b[k]!);
  }
  protected get(l: number): void { this.c.byte(Op.local_get).u32(l); }
  protected set(l: number): void { this.c.byte(Op.local_set).u32(l); }
  protected tee(l: number): void { this.c.byte(Op.local_tee).u32(l); }
  protected mem(o: number, off = 0): void { this.c.byte(o).u32(0).u32(off); }
  protected br(depth: number): void { this.c.byte(Op.br).u32(depth); }
  protected brIf(depth: number): void { this.c.byte(Op.br_if).u32(depth); }
  protected call(f: number): void { this.c.byte(Op.call).u32(f); }
  // The address of va's entry in the L1 TLB table `table` (both locals), as mmu.ts finds it.
  protected l1Entry(table: number, va: number): void {
    this.get(table); this.get(va); this.i64c(12); this.op(Op.i64_shr_u, Op.i32_wrap_i64); this.i32c(L.L1_ENTRIES - 1); this.op(Op.i32_and);
    this.i32c(4); this.op(Op.i32_shl, Op.i32_add);
  }
}

// The emitter is a class of small methods rather than one function of closures: V8 optimises
// each method on its own, where optimising one large function of closures took it about a
// second per attempt on a background thread (measured with perf: a quarter of a Debian boot's
// CPU time went to compiling the translator itself).
class RegionEmitter extends Code {
  private readonly used = new Set<number>();
  private readonly written = new Set<number>();
  private readonly k: number;
  private readonly index: Map<number, number>;
  // Fewer locals make cheaper calls: V8's baseline compiler clears every local on entry, and
  // most translated code runs baseline-compiled (src/hart/engine.ts).
  private readonly xlocal: Map<number, number>;
  private usesMulh = false;
  private usesF64 = false; // the f64 temporaries after the register locals (inline fadd.d)
  // Within the current block: mstatus.FS checked on, and made dirty (every path through the
  // instructions so far did it, or left the function).
  private fsKnownOn = false;
  private fsKnownDirty = false;
  private chains = false;
  // Labels open around block `cur`'s code, innermost first: $B(cur+1)..$B(k-1), $top, $exit;
  // `depth` counts the structured blocks (ifs) opened inside it at the point of emission.
  private cur = 0;
  private depth = 0;

  constructor(private readonly r: Region, private readonly track: CodeEnv) {
    super();
    for (const b of r.blocks) for (const { insn: i } of b.insns) regsOf(i, this.used, this.written);
    this.k = r.blocks.length;
    this.index = new Map(r.blocks.map((b, i) => [b.off, i]));
    this.xlocal = new Map([...this.used].sort((a, b) => a - b).map((x, i) => [x, L_X0 + i]));
  }

  emit(): Emitted {
    const { c, k } = this;
    // Entry: the registers the region uses, the block to start at.
    for (const x of [...this.used].sort((a, b) => a - b)) {
      this.get(P_S); this.mem(Op.i64_load, L.HART_X + 8 * x); this.set(this.xl(x));
    }
    c.byte(Op.block).byte(T_VOID); // $exit
    c.byte(Op.loop).byte(T_VOID); // $top
    for (let i = 0; i < k; i++) c.byte(Op.block).byte(T_VOID);
    this.get(P_BLOCK);
    c.byte(Op.br_table).u32(k);
    for (let i = 0; i < k; i++) c.u32(i);
    c.u32(0);
    for (this.cur = 0; this.cur < k; this.cur++) this.block(this.r.blocks[this.cur]!);
    c.byte(Op.end); // $top (not reached: every block ends in a branch)
    c.byte(Op.end); // $exit
    for (const x of [...this.written].sort((a, b) => a - b)) {
      this.get(P_S); this.get(this.xl(x)); this.mem(Op.i64_store, L.HART_X + 8 * x);
    }
    this.get(P_S); this.get(L_PC); this.mem(Op.i64_store, L.HART_PC);
    if (this.chains) this.emitChain();
    this.get(L_N);
    const locals = [{ count: 3, type: T_I64 }, { count: 3, type: T_I32 }];
    if (this.xlocal.size > 0) locals.push({ count: this.xlocal.size, type: T_I64 });
    if (this.usesF64) locals.push({ count: 3, type: T_F64 });
    return { body: c, locals, usesMulh: this.usesMulh };
  }

  // --- encoding helpers
  private open(t: number = T_VOID): void { this.op(Op.if, t); this.depth++; } // consumes the condition
  private close(): void { this.op(Op.end); this.depth--; }
  private xl(x: number): number { return this.xlocal.get(x)!; }
  private reg(x: number): void { if (x === 0) this.i64c(0); else this.get(this.xl(x)); }
  private setReg(x: number): void { if (x === 0) this.op(Op.drop); else this.set(this.xl(x)); }
  private pcAt(off: number): void { this.get(P_VPAGE); if (off !== 0) { this.i64c(off); this.op(Op.i64_add); } }
  private toTop(): number { return this.k - 1 - this.cur + this.depth; }
  private toExit(): number { return this.k - this.cur + this.depth; }
  private count(n: number): void { this.get(L_N); this.i64c(n); this.op(Op.i64_add); this.set(L_N); }

  // --- exits and control flow
  // Leaves with pc = vpage + off after `base` more instructions of the current block.
  private exitAt(off: number, base: number): void {
    if (base !== 0) this.count(base);
    this.pcAt(off); this.set(L_PC);
    this.br(this.toExit());
  }
  // Leaves at the instruction (the interpreter raises illegal-instruction) when mstatus.FS is off.
  // Both hold for the rest of a block once done at its top level: only a CSR write or a trap can
  // turn FP off or clean its state, and those end the block (a block is entered only at its start).
  private fsOn(off: number, base: number): void {
    if (this.fsKnownOn) return;
    this.fsKnownOn = true;
    this.get(P_S); this.mem(Op.i64_load, L.HART_MSTATUS); this.i64c(MS_FS); this.op(Op.i64_and, Op.i64_eqz); this.open();
    this.exitAt(off, base);
    this.close();
  }
  // An f register was written: mstatus.FS becomes dirty (privileged spec 3.1.6.6).
  private dirtyFs(): void {
    if (this.fsKnownDirty) return;
    this.get(P_S); this.get(P_S); this.mem(Op.i64_load, L.HART_MSTATUS); this.i64c(MS_FS | MS_SD); this.op(Op.i64_or); this.mem(Op.i64_store, L.HART_MSTATUS);
  }
  // Control goes to page offset `target` once the block's instructions are counted in n.
  private goTo(target: number, fromOff: number): void {
    const j = this.index.get(target);
    if (j === undefined) { this.pcAt(target); this.set(L_PC); this.chain(); this.br(this.toExit()); return; }
    if (j === this.cur + 1 && this.depth === 0) return; // falls into the next block's code
    if (target <= fromOff) { // a backward edge: the budget check that bounds every loop
      this.get(L_N); this.get(P_BUDGET); this.op(Op.i64_ge_s); this.open();
      this.pcAt(target); this.set(L_PC); this.br(this.toExit());
      this.close();
    }
    this.i32c(j); this.set(P_BLOCK); this.br(this.toTop());
  }
  // The exit being emitted may chain (see the top of this file).
  private chain(): void {
    if (this.track.map === undefined) return;
    this.chains = true;
    this.i32c(1); this.set(L_CH);
  }

  // --- one block
  private block(b: Block): void {
    this.op(Op.end); // closes $B(cur): its code follows
    this.fsKnownOn = false;
    this.fsKnownDirty = false;
    let idx = 0;
    for (const { off, len, insn } of b.insns) {
      if (this.insn(insn, off, len, idx)) return;
      idx++;
    }
    const last = b.insns[b.insns.length - 1]!;
    this.count(idx);
    this.goTo(last.off + last.len, last.off); // forward: no budget check
  }

  // One instruction, `idx` instructions into its block; true if it ended the block.
  private insn(i: Insn, off: number, len: number, idx: number): boolean {
    switch (i.k) {
      case "stop":
        this.exitAt(off, idx);
        return true;
      case "fence":
        // The guest orders its stores (a virtio driver's descriptors before avail->idx) for a
        // device model on another thread: wasm's atomic.fence orders this thread's plain accesses.
        this.c.byte(Op.atomic_prefix).u32(Op.atomic_fence).byte(0);
        return false;
      case "li":
        if (i.rd !== 0) { this.i64c(i.imm); this.setReg(i.rd); }
        return false;
      case "auipc":
        if (i.rd !== 0) { this.pcAt(off); this.i64c(i.imm); this.op(Op.i64_add); this.setReg(i.rd); }
        return false;
      case "alu":
        if (i.rd === 0) return false; // a hint: no effect (all of these are free of traps)
        if (i.op === "mulh" || i.op === "mulhsu" || i.op === "mulhu") this.usesMulh = true;
        this.alu(i.op, i.rs1, i.rs2, undefined);
        this.setReg(i.rd);
        return false;
      case "alui":
        if (i.rd === 0) return false;
        this.alu(i.op, i.rs1, -1, i.imm);
        this.setReg(i.rd);
        return false;
      case "load":
      case "fload":
        this.load(i, off, idx);
        return false;
      case "store":
      case "fstore":
        this.store(i, off, idx);
        return false;
      case "fp":
        this.fp(i, off, idx);
        return false;
      case "sys":
        this.sys(i, off, len, idx);
        return true;
      case "branch":
        this.count(idx + 1);
        this.reg(i.rs1); this.reg(i.rs2);
        this.op(({ eq: Op.i64_eq, ne: Op.i64_ne, lt: Op.i64_lt_s, ge: Op.i64_ge_s, ltu: Op.i64_lt_u, geu: Op.i64_ge_u } as const)[i.cond]);
        this.open();
        this.goTo(off + i.imm, off);
        this.close();
        this.goTo(off + len, off);
        return true;
      case "jal":
        if (i.rd !== 0) { this.pcAt(off + len); this.setReg(i.rd); }
        this.count(idx + 1);
        this.goTo(off + i.imm, off);
        return true;
      case "jalr":
        // The target first: rd may be rs1.
        this.reg(i.rs1); this.i64c(i.imm); this.op(Op.i64_add); this.i64c(-2); this.op(Op.i64_and); this.set(L_PC);
        if (i.rd !== 0) { this.pcAt(off + len); this.setReg(i.rd); }
        this.count(idx + 1);
        this.chain();
        this.br(this.toExit());
        return true;
    }
  }

  private load(i: Extract<Insn, { k: "load" | "fload" }>, off: number, idx: number): void {
    const fp = i.k === "fload";
    if (fp) this.fsOn(off, idx);
    this.emitAddr(i.rs1, i.imm, P_RT, i.size);
    this.open(T_I64);
    this.get(L_VA); this.get(L_E); this.mem(Op.i64_load, 8); this.op(Op.i64_add, Op.i32_wrap_i64);
    this.mem(fp ? (i.size === 8 ? Op.i64_load : Op.i64_load32_u) : loadOp(i.size, i.k === "load" && i.signed));
    this.op(Op.else);
    this.get(L_VA); this.i32c(i.size); this.call(F_LOAD);
    this.get(P_S); this.mem(Op.i64_load, L.HART_JIT_FAIL); this.op(Op.i64_eqz, Op.i32_eqz); this.open();
    this.get(P_S); this.i64c(0); this.mem(Op.i64_store, L.HART_JIT_FAIL);
    this.exitAt(off, idx);
    this.close();
    if (i.k === "load" && i.signed && i.size < 8) this.op(i.size === 4 ? Op.i64_extend32_s : i.size === 2 ? Op.i64_extend16_s : Op.i64_extend8_s);
    this.close();
    if (!fp) { this.setReg(i.rd); return; }
    // An f register: binary32 values NaN-boxed (unprivileged spec 12.2).
    if (i.size === 4) { this.i64c(0xffffffffn); this.op(Op.i64_and); this.i64c(-(1n << 32n)); this.op(Op.i64_or); }
    this.set(L_T); this.get(P_S); this.get(L_T); this.mem(Op.i64_store, L.HART_F + 8 * i.rd);
    this.dirtyFs();
    this.fsKnownDirty = true;
  }

  private storeValue(i: Extract<Insn, { k: "store" | "fstore" }>): void {
    if (i.k === "fstore") { this.get(P_S); this.mem(Op.i64_load, L.HART_F + 8 * i.rs2); } else this.reg(i.rs2);
  }

  private store(i: Extract<Insn, { k: "store" | "fstore" }>, off: number, idx: number): void {
    if (i.k === "fstore") this.fsOn(off, idx);
    const { track } = this;
    this.emitAddr(i.rs1, i.imm, P_WT, i.size);
    this.open();
    this.get(L_VA); this.get(L_E); this.mem(Op.i64_load, 8); this.op(Op.i64_add, Op.i32_wrap_i64); this.tee(L_H);
    this.storeValue(i);
    this.mem(i.size === 8 ? Op.i64_store : i.size === 4 ? Op.i64_store32 : i.size === 2 ? Op.i64_store16 : Op.i64_store8);
    // A frame holding translated code is marked written (jit.ts markDirty).
    this.i32c(track.dirty); this.get(L_H); this.i32c(12); this.op(Op.i32_shr_u, Op.i32_add); this.tee(L_E);
    this.mem(Op.i32_load8_u); this.i32c(1); this.op(Op.i32_eq, Op.if, T_VOID);
    this.get(L_E); this.i32c(3); this.mem(Op.i32_store8);
    this.i32c(track.flag); this.i32c(1); this.c.byte(Op.atomic_prefix).u32(Op.i32_atomic_store).u32(2).u32(0);
    this.op(Op.end);
    this.op(Op.else);
    this.get(L_VA); this.storeValue(i); this.i32c(i.size); this.call(F_STORE);
    this.open();
    this.exitAt(off, idx);
    this.close();
    this.close();
  }

  // fadd.d/fsub.d in round-to-nearest inline, as the hart's fast path (fpu.ts f64_add_rne): a
  // finite sum means finite operands and no overflow, a subnormal sum is exact, and the sum is
  // exact iff each operand comes back from it (Fast2Sum); anything else branches to the general
  // path (label 0) having changed nothing.
  private addD(args: [number, boolean][], rd: number): void {
    const [fx, fy, fs] = this.f64Temps();
    const [[a], [b, neg]] = args as [[number, boolean], [number, boolean]];
    this.loadF(a); this.op(Op.f64_reinterpret_i64); this.set(fx);
    this.loadF(b); this.op(Op.f64_reinterpret_i64); if (neg) this.op(Op.f64_neg); this.set(fy);
    this.get(fx); this.get(fy); this.op(Op.f64_add); this.tee(fs);
    this.get(fs); this.op(Op.f64_sub); this.f64c(0); this.op(Op.f64_ne); this.brIf(0);
    this.get(fs); this.get(fx); this.op(Op.f64_sub); this.get(fy); this.op(Op.f64_ne);
    this.get(fs); this.get(fy); this.op(Op.f64_sub); this.get(fx); this.op(Op.f64_ne, Op.i32_or);
    this.fpResult(fs, rd);
  }

  // fmul.d in round-to-nearest inline, as fpu.ts f64_mul_rne: a product whose magnitude is above
  // 2^-1022 and finite needs no underflow or overflow handling (else the general path, label 0),
  // and it is exact iff the product of the operands' odd significand parts fits in 53 bits.
  private mulD(args: [number, boolean][], rd: number): void {
    const [fx, fy, fs] = this.f64Temps();
    const [[a], [b]] = args as [[number, boolean], [number, boolean]];
    this.loadF(a); this.tee(L_T); this.op(Op.f64_reinterpret_i64); this.set(fx);
    this.loadF(b); this.tee(L_VA); this.op(Op.f64_reinterpret_i64); this.set(fy);
    this.get(fx); this.get(fy); this.op(Op.f64_mul); this.tee(fs);
    this.op(Op.f64_abs); this.f64c(2.2250738585072014e-308); this.op(Op.f64_gt);
    this.get(fs); this.op(Op.f64_abs); this.f64c(Infinity); this.op(Op.f64_lt, Op.i32_and, Op.i32_eqz); this.brIf(0);
    // The odd significand parts, in place of the operands' bits.
    for (const l of [L_T, L_VA]) {
      this.get(l); this.i64c(0xfffffffffffffn); this.op(Op.i64_and);
      this.i64c(1n << 52n); this.i64c(0); this.get(l); this.i64c(0x7ff0000000000000n); this.op(Op.i64_and, Op.i64_eqz, Op.i32_eqz, Op.select);
      this.op(Op.i64_or); this.tee(l); this.get(l); this.op(Op.i64_ctz, Op.i64_shr_u); this.set(l);
    }
    // n = 128 - clz(oa) - clz(ob) bits; inexact if n > 54, or n == 54 and oa * ob >= 2^53.
    this.i64c(128); this.get(L_T); this.op(Op.i64_clz, Op.i64_sub); this.get(L_VA); this.op(Op.i64_clz, Op.i64_sub, Op.i32_wrap_i64); this.set(L_H);
    this.get(L_H); this.i32c(54); this.op(Op.i32_gt_s);
    this.get(L_H); this.i32c(54); this.op(Op.i32_eq);
    this.get(L_T); this.get(L_VA); this.op(Op.i64_mul); this.i64c(0x20000000000000n); this.op(Op.i64_ge_u, Op.i32_and, Op.i32_or);
    this.fpResult(fs, rd);
  }

  // The three f64 temporaries of an inline operation (operands, result), after the register locals.
  private f64Temps(): [number, number, number] {
    this.usesF64 = true;
    const fx = L_X0 + this.xlocal.size;
    return [fx, fx + 1, fx + 2];
  }

  // With "inexact" on the stack: accumulates NX in fcsr if so, and writes the result to f[rd].
  private fpResult(fs: number, rd: number): void {
    this.open();
    this.get(P_S); this.get(P_S); this.mem(Op.i64_load, L.HART_FCSR); this.i64c(1); this.op(Op.i64_or); this.mem(Op.i64_store, L.HART_FCSR); // NX
    this.close();
    this.get(P_S); this.get(fs); this.op(Op.i64_reinterpret_f64); this.mem(Op.i64_store, L.HART_F + 8 * rd);
  }

  private loadF(f: number): void { this.get(P_S); this.mem(Op.i64_load, L.HART_F + 8 * f); }

  // The double-precision moves and sign injections inline (bit operations; they cannot trap
  // once mstatus.FS is on).
  private fpMove(kind: "sgnj" | "fmvxd" | "fmvdx", w: number): void {
    const f3 = (w >>> 12) & 7, rd = (w >>> 7) & 31, rs1 = (w >>> 15) & 31, rs2 = (w >>> 20) & 31;
    if (kind === "fmvxd") { this.loadF(rs1); this.setReg(rd); return; }
    this.get(P_S);
    if (kind === "fmvdx") this.reg(rs1);
    else if (f3 === 2) { this.loadF(rs1); this.loadF(rs2); this.i64c(MS_SD); this.op(Op.i64_and, Op.i64_xor); } // fsgnjx.d
    else { // fsgnj.d, fsgnjn.d
      this.loadF(rs1); this.i64c(~MS_SD); this.op(Op.i64_and);
      this.loadF(rs2); if (f3 === 1) { this.i64c(-1); this.op(Op.i64_xor); } this.i64c(MS_SD); this.op(Op.i64_and, Op.i64_or);
    }
    this.mem(Op.i64_store, L.HART_F + 8 * rd);
    this.dirtyFs();
  }

  // fle.d, flt.d, feq.d inline: a wasm compare, which for operands that are not NaN is exactly
  // RISC-V's (unprivileged spec 13.8); a NaN operand, which may raise NV, branches to the general
  // path (label 0).
  private fpCompare(w: number): void {
    const f3 = (w >>> 12) & 7, rd = (w >>> 7) & 31, rs1 = (w >>> 15) & 31, rs2 = (w >>> 20) & 31;
    this.loadF(rs1); this.set(L_T); this.loadF(rs2); this.set(L_VA);
    for (const l of [L_T, L_VA]) { this.get(l); this.op(Op.f64_reinterpret_i64); this.get(l); this.op(Op.f64_reinterpret_i64, Op.f64_ne); this.brIf(0); }
    this.get(L_T); this.op(Op.f64_reinterpret_i64); this.get(L_VA); this.op(Op.f64_reinterpret_i64);
    this.op(f3 === 0 ? Op.f64_le : f3 === 1 ? Op.f64_lt : Op.f64_eq, Op.i64_extend_i32_u);
    this.setReg(rd);
  }

  private fp(i: Extract<Insn, { k: "fp" }>, off: number, idx: number): void {
    const kind = inlineFpKind(i.word);
    if (kind !== undefined && kind !== "cmp") {
      this.fsOn(off, idx);
      this.fpMove(kind, i.word);
      return;
    }
    const fast = fastFp(i.word);
    const cmp = kind === "cmp";
    if (cmp) {
      this.fsOn(off, idx);
      this.op(Op.block, T_VOID); this.depth++; // $done
      this.op(Op.block, T_VOID); this.depth++; // $general
      this.fpCompare(i.word);
      this.br(1);
      this.close(); // $general
    } else if (fast) {
      // The common double-precision operations in round-to-nearest: the hart's fast path,
      // or else (an operand or result that needs the exact algorithm) the general call.
      this.fsOn(off, idx);
      this.op(Op.block, T_VOID); this.depth++; // $done
      this.op(Op.block, T_VOID); this.depth++; // $general
      if (fast.dyn) { this.get(P_S); this.mem(Op.i64_load, L.HART_FCSR); this.i64c(0xe0); this.op(Op.i64_and, Op.i64_eqz, Op.i32_eqz); this.brIf(0); }
      if (fast.fn === F_ADDD) this.addD(fast.args, (i.word >>> 7) & 31);
      else if (fast.fn === F_MULD) this.mulD(fast.args, (i.word >>> 7) & 31);
      else {
        for (const [x, neg] of fast.args) { this.get(P_S); this.mem(Op.i64_load, L.HART_F + 8 * x); if (neg) { this.i64c(-(1n << 63n)); this.op(Op.i64_xor); } }
        this.call(fast.fn); this.tee(L_T);
        this.i64c(FAST_MISS); this.op(Op.i64_eq); this.brIf(0);
        this.get(P_S); this.get(L_T); this.mem(Op.i64_store, L.HART_F + 8 * ((i.word >>> 7) & 31));
      }
      this.dirtyFs();
      this.br(1);
      this.close(); // $general
    }
    // The integer source goes to the state block, where fexec.ts reads it; the destination
    // comes back from there.
    if (i.xr !== 0) { this.get(P_S); this.get(this.xl(i.xr)); this.mem(Op.i64_store, L.HART_X + 8 * i.xr); }
    this.i32c(i.word | 0); this.call(F_FP);
    this.open();
    this.exitAt(off, idx);
    this.close();
    if (i.xw !== 0) { this.get(P_S); this.mem(Op.i64_load, L.HART_X + 8 * i.xw); this.set(this.xl(i.xw)); }
    if (fast || cmp) this.close(); // $done
    // Whichever path ran, an instruction that wrote an f register left FS dirty (fexec.ts does
    // it on the general path).
    if (i.xw === 0) this.fsKnownDirty = true;
  }

  private sys(i: Extract<Insn, { k: "sys" }>, off: number, len: number, idx: number): void {
    // The VMM reads its operands from the state block and writes rd there (rd is stored first,
    // so reloading it is right whatever the VMM did).
    const regs = [...new Set([...i.reads, i.rd])].filter((x) => x !== 0);
    for (const x of regs) { this.get(P_S); this.get(this.xl(x)); this.mem(Op.i64_store, L.HART_X + 8 * x); }
    this.i32c(i.word | 0); this.pcAt(off); this.call(F_SYS); this.set(L_E);
    if (i.rd !== 0) { this.get(P_S); this.mem(Op.i64_load, L.HART_X + 8 * i.rd); this.set(this.xl(i.rd)); }
    this.get(L_E); this.i32c(L.BT_INTERP); this.op(Op.i32_eq); this.open();
    this.exitAt(off, idx);
    this.close();
    // Retired unless a trap was reflected (BT_TRAPPED).
    this.get(L_N); if (idx !== 0) { this.i64c(idx); this.op(Op.i64_add); }
    this.get(L_E); this.i32c(L.BT_JUMP); this.op(Op.i32_le_u, Op.i64_extend_i32_u, Op.i64_add); this.set(L_N);
    // Anything but BT_NEXT (and always after sret and ecall): leave at the pc the VMM set.
    if (i.end) { this.leaveAtVmmPc(); return; }
    this.get(L_E); this.open();
    this.leaveAtVmmPc();
    this.close();
    this.goTo(off + len, off);
  }

  private leaveAtVmmPc(): void {
    this.get(P_S); this.mem(Op.i64_load, L.HART_PC); this.set(L_PC); this.br(this.toExit());
  }

  // After the state is stored: if the exit chains and budget is left, leave the map slot of pc's
  // translation (or 0) for run(). The lookup is the module's one function (emitChainLookup).
  private emitChain(): void {
    this.get(L_CH); this.get(L_N); this.get(P_BUDGET); this.op(Op.i64_lt_s, Op.i32_and, Op.if, T_VOID);
    this.get(P_S); this.get(L_PC); this.get(P_VPAGE); this.i32c(this.r.base ?? 0); this.get(P_XT); this.get(P_GEN); this.call(F_CHAIN);
    this.mem(Op.i32_store, L.HART_JIT_NEXT);
    this.op(Op.end);
  }

  // va = rs1 + imm into L_VA; leaves on the stack whether the L1 entry of table `t` hits.
  private emitAddr(rs1: number, imm: number, t: number, size: number): void {
    this.reg(rs1); if (imm !== 0) { this.i64c(imm); this.op(Op.i64_add); } this.set(L_VA);
    this.l1Entry(t, L_VA); this.tee(L_E);
    this.mem(Op.i64_load);
    this.get(L_VA); this.i64c(~0xfffn | BigInt(size - 1)); this.op(Op.i64_and); this.get(P_GEN); this.op(Op.i64_or);
    this.op(Op.i64_eq);
  }

  // Pushes rs1 op (rs2 or imm) (64-bit result) for the integer operations.
  private alu(o: AluOp, rs1: number, rs2: number, imm: number | bigint | undefined): void {
    const simple = SIMPLE_ALU[o];
    const a = (): void => this.reg(rs1);
    const b = (): void => { if (imm === undefined) this.reg(rs2); else this.i64c(imm); };
    if (simple !== undefined) { a(); b(); this.op(simple); return; }
    switch (o) {
      case "slt": a(); b(); this.op(Op.i64_lt_s, Op.i64_extend_i32_u); return;
      case "sltu": a(); b(); this.op(Op.i64_lt_u, Op.i64_extend_i32_u); return;
      case "addw": a(); b(); this.op(Op.i64_add, Op.i64_extend32_s); return;
      case "subw": a(); b(); this.op(Op.i64_sub, Op.i64_extend32_s); return;
      case "mulw": a(); b(); this.op(Op.i64_mul, Op.i64_extend32_s); return;
      case "sllw": a(); this.op(Op.i32_wrap_i64); b(); this.op(Op.i32_wrap_i64, Op.i32_shl, Op.i64_extend_i32_s); return;
      case "srlw": a(); this.op(Op.i32_wrap_i64); b(); this.op(Op.i32_wrap_i64, Op.i32_shr_u, Op.i64_extend_i32_s); return;
      case "sraw": a(); this.op(Op.i32_wrap_i64); b(); this.op(Op.i32_wrap_i64, Op.i32_shr_s, Op.i64_extend_i32_s); return;
      case "mulhu": a(); b(); this.call(F_MULHU); return;
      case "mulh": case "mulhsu":
        // mulhu(a, b) - (a < 0 ? b : 0) - (mulh: b < 0 ? a : 0), as cpu.ts
        a(); b(); this.call(F_MULHU);
        b(); this.i64c(0); a(); this.i64c(0); this.op(Op.i64_lt_s, Op.select, Op.i64_sub);
        if (o === "mulh") { a(); this.i64c(0); b(); this.i64c(0); this.op(Op.i64_lt_s, Op.select, Op.i64_sub); }
        return;
      default:
        this.divRem(o, a, b);
    }
  }

  private divRem(o: AluOp, a: () => void, b: () => void): void {
    switch (o) {
      case "div": // b == 0: -1; b == -1: -a (MIN / -1 = MIN, which wasm would trap on)
        b(); this.set(L_T); a(); this.set(L_VA);
        this.get(L_T); this.op(Op.i64_eqz, Op.if, T_I64); this.i64c(-1);
        this.op(Op.else); this.get(L_T); this.i64c(-1); this.op(Op.i64_eq, Op.if, T_I64); this.i64c(0); this.get(L_VA); this.op(Op.i64_sub);
        this.op(Op.else); this.get(L_VA); this.get(L_T); this.op(Op.i64_div_s, Op.end, Op.end);
        return;
      case "divu":
        b(); this.set(L_T); a(); this.set(L_VA);
        this.get(L_T); this.op(Op.i64_eqz, Op.if, T_I64); this.i64c(-1);
        this.op(Op.else); this.get(L_VA); this.get(L_T); this.op(Op.i64_div_u, Op.end);
        return;
      case "rem": // b == 0: a; b == -1: 0
        b(); this.set(L_T); a(); this.set(L_VA);
        this.get(L_T); this.op(Op.i64_eqz, Op.if, T_I64); this.get(L_VA);
        this.op(Op.else); this.get(L_T); this.i64c(-1); this.op(Op.i64_eq, Op.if, T_I64); this.i64c(0);
        this.op(Op.else); this.get(L_VA); this.get(L_T); this.op(Op.i64_rem_s, Op.end, Op.end);
        return;
      case "remu":
        b(); this.set(L_T); a(); this.set(L_VA);
        this.get(L_T); this.op(Op.i64_eqz, Op.if, T_I64); this.get(L_VA);
        this.op(Op.else); this.get(L_VA); this.get(L_T); this.op(Op.i64_rem_u, Op.end);
        return;
      case "divw": case "divuw": case "remw": case "remuw": {
        // On the low 32 bits (in i64 locals, sign- or zero-extended), the result sign-extended.
        const signed = o === "divw" || o === "remw";
        b(); if (signed) this.op(Op.i64_extend32_s); else { this.i64c(0xffffffff); this.op(Op.i64_and); } this.set(L_T);
        a(); if (signed) this.op(Op.i64_extend32_s); else { this.i64c(0xffffffff); this.op(Op.i64_and); } this.set(L_VA);
        const isDiv = o === "divw" || o === "divuw";
        this.get(L_T); this.op(Op.i64_eqz, Op.if, T_I64);
        if (isDiv) this.i64c(-1); else this.get(L_VA);
        this.op(Op.else);
        // For 32-bit operands in i64, MIN32 / -1 does not overflow; the result is wrapped below.
        this.get(L_VA); this.get(L_T);
        this.op(isDiv ? (signed ? Op.i64_div_s : Op.i64_div_u) : (signed ? Op.i64_rem_s : Op.i64_rem_u));
        this.op(Op.end, Op.i64_extend32_s);
        return;
      }
      default:
        throw new Error(`codegen: no ALU operation ${o}`);
    }
  }
}

const SIMPLE_ALU: Partial<Record<AluOp, number>> = {
  add: Op.i64_add, sub: Op.i64_sub, sll: Op.i64_shl, xor: Op.i64_xor, srl: Op.i64_shr_u, sra: Op.i64_shr_s,
  or: Op.i64_or, and: Op.i64_and, mul: Op.i64_mul,
};

function loadOp(size: number, signed: boolean): number {
  // The signed forms are applied after the slow path too, so the fast path uses them directly.
  if (size === 8) return Op.i64_load;
  if (size === 4) return signed ? Op.i64_load32_s : Op.i64_load32_u;
  if (size === 2) return signed ? Op.i64_load16_s : Op.i64_load16_u;
  return signed ? Op.i64_load8_s : Op.i64_load8_u;
}

function regsOf(i: Insn, used: Set<number>, written: Set<number>): void {
  const r = (x: number): void => { if (x !== 0) used.add(x); };
  const w = (x: number): void => { if (x !== 0) { used.add(x); written.add(x); } };
  switch (i.k) {
    case "alu": r(i.rs1); r(i.rs2); w(i.rd); break;
    case "alui": r(i.rs1); w(i.rd); break;
    case "li": case "auipc": w(i.rd); break;
    case "load": r(i.rs1); w(i.rd); break;
    case "store": r(i.rs1); r(i.rs2); break;
    case "fload": case "fstore": r(i.rs1); break;
    case "fp": r(i.xr); w(i.xw); break;
    case "branch": r(i.rs1); r(i.rs2); break;
    case "jal": w(i.rd); break;
    case "jalr": r(i.rs1); w(i.rd); break;
    case "sys": for (const x of i.reads) r(x); w(i.rd); break;
    default: break;
  }
}

// The module-local helper: the high 64 bits of an unsigned 64x64 product (as cpu.ts mulhu).
export function emitMulhu(): Bytes {
  return new MulhuCode().emit();
}

class MulhuCode extends Code {
  emit(): Bytes {
    const A = 0, B = 1, LL = 2, LH = 3, HL = 4;
    const lo = (l: number): void => { this.get(l); this.i64c(0xffffffffn); this.op(Op.i64_and); };
    const hi = (l: number): void => { this.get(l); this.i64c(32n); this.op(Op.i64_shr_u); };
    lo(A); lo(B); this.op(Op.i64_mul); this.set(LL);
    lo(A); hi(B); this.op(Op.i64_mul); this.set(LH);
    hi(A); lo(B); this.op(Op.i64_mul); this.set(HL);
    hi(A); hi(B); this.op(Op.i64_mul); // hh
    hi(LH); this.op(Op.i64_add);
    hi(HL); this.op(Op.i64_add);
    // mid = (ll >>> 32) + lo(lh) + lo(hl); + mid >>> 32
    hi(LL); lo(LH); this.op(Op.i64_add); lo(HL); this.op(Op.i64_add);
    this.i64c(32n); this.op(Op.i64_shr_u);
    this.op(Op.i64_add);
    return this.c;
  }
}

// The module-local chain lookup (see the top of this file): the map slot of the translation of
// pc, or 0 when pc is on a page's last halfword (an instruction there may straddle it: the
// interpreter fetches those), its page has no fetch translation in the TLB, nothing is
// translated there, or only the stub.
export function emitChainLookup(env: CodeEnv): Bytes {
  return new ChainLookupCode().emit(env);
}

class ChainLookupCode extends Code {
  emit(env: CodeEnv): Bytes {
    const PC = 0, VPAGE = 1, BASE = 2, XT = 3, GEN = 4, H = 5, E = 6; // params, then i32 locals
    this.op(Op.block, T_VOID); // $no
    this.get(PC); this.i64c(0xfff); this.op(Op.i64_and); this.i64c(0xffe); this.op(Op.i64_ge_u); this.brIf(0);
    // On the same page: by the frame the region was translated from.
    this.get(PC); this.get(VPAGE); this.op(Op.i64_sub); this.i64c(4096); this.op(Op.i64_lt_u, Op.if, T_I32);
    this.get(PC); this.get(VPAGE); this.op(Op.i64_sub, Op.i32_wrap_i64); this.get(BASE); this.op(Op.i32_add);
    this.op(Op.else);
    // Another page: its fetch translation as run() finds it (mmu.ts fetchHost).
    this.l1Entry(XT, PC); this.tee(E);
    this.mem(Op.i64_load); this.get(PC); this.i64c(~0xfffn); this.op(Op.i64_and); this.get(GEN); this.op(Op.i64_or, Op.i64_ne); this.brIf(1);
    this.get(PC); this.get(E); this.mem(Op.i64_load, 8); this.op(Op.i64_add, Op.i32_wrap_i64);
    this.op(Op.end);
    this.tee(H);
    // Its slot in the map (jit.ts jitSlot): key, table index, block.
    this.i32c(1); this.op(Op.i32_shr_u); this.get(H); this.i32c(19); this.op(Op.i32_shr_u, Op.i32_xor); this.i32c(L.JIT_MAP_ENTRIES - 1); this.op(Op.i32_and);
    this.i32c(4); this.op(Op.i32_shl); this.i32c(env.map ?? 0); this.op(Op.i32_add); this.tee(E);
    this.mem(Op.i32_load); this.get(H); this.op(Op.i32_ne); this.brIf(0);
    this.get(E); this.mem(Op.i32_load, 4); this.i32c(env.stub ?? -1); this.op(Op.i32_eq); this.brIf(0);
    this.get(E); this.op(Op.return);
    this.op(Op.end); // $no
    this.i32c(0);
    return this.c;
  }
}

// The double-precision F/D instructions the emitter writes out in wasm (the exact encodings; a
// reserved one goes to fexec.ts, which raises illegal-instruction): the sign injections, fmv.x.d,
// fmv.d.x, and the compares (those with a general path for NaN operands).
function inlineFpKind(w: number): "sgnj" | "fmvxd" | "fmvdx" | "cmp" | undefined {
  if ((w & 0x7f) !== 0x53) return undefined;
  const f7 = w >>> 25, f3 = (w >>> 12) & 7, rs2 = (w >>> 20) & 31;
  if (f7 === 0x11 && f3 <= 2) return "sgnj";
  if (f7 === 0x51 && f3 <= 2) return "cmp";
  if (f3 !== 0 || rs2 !== 0) return undefined;
  return f7 === 0x71 ? "fmvxd" : f7 === 0x79 ? "fmvdx" : undefined;
}

// fadd.d, fsub.d, fmul.d and the four fused multiply-adds in double precision, with a static
// round-to-nearest or a dynamic rounding mode (checked at run time to be round-to-nearest): the
// hart function to call and its operands (f registers, negated or not).
function fastFp(w: number): { fn: number; args: [number, boolean][]; dyn: boolean } | undefined {
  const rm = (w >>> 12) & 7;
  if (rm !== 0 && rm !== 7) return undefined;
  const rs1 = (w >>> 15) & 31, rs2 = (w >>> 20) & 31, opc = w & 0x7f, f7 = w >>> 25;
  const dyn = rm === 7;
  if (opc === 0x53) {
    if (f7 === 0x01) return { fn: F_ADDD, args: [[rs1, false], [rs2, false]], dyn };
    if (f7 === 0x05) return { fn: F_ADDD, args: [[rs1, false], [rs2, true]], dyn };
    if (f7 === 0x09) return { fn: F_MULD, args: [[rs1, false], [rs2, false]], dyn };
    return undefined;
  }
  if (((w >>> 25) & 3) !== 1) return undefined; // the fused forms in double precision only
  const rs3 = w >>> 27;
  // fmadd (0x43) a*b+c, fmsub (0x47) a*b-c, fnmsub (0x4b) -a*b+c, fnmadd (0x4f) -a*b-c
  const negProd = opc === 0x4b || opc === 0x4f, negAdd = opc === 0x47 || opc === 0x4f;
  return { fn: F_FMAD, args: [[rs1, negProd], [rs2, false], [rs3, negAdd]], dyn };
}
