// From guest code to a WebAssembly function. A region is the code of one 4 KiB page reachable
// from an entry point without leaving the page: basic blocks split at every branch target,
// each block an entry of its own. The function is a state machine (a loop around a br_table
// over the blocks), so a loop within the page runs without leaving wasm; whatever leaves the
// page, jumps through a register, or needs the interpreter ends the function with the next pc.
//
// The function's contract with run() (src/hart/asm/cpu.ts):
//   (s: state block, vpage: virtual address of the page, block: entry block, budget: instructions
//    it may retire, rT/wT: the current read/write L1 TLB tables, gen: the L1 generation) -> retired
// It loads the guest registers it uses into locals, stores those it wrote and the next pc into
// the state block when it leaves, and retires exactly the instructions before that pc. A load or
// store whose TLB lookup misses calls the hart's slow path (jitLoad/jitStore); if that cannot
// finish the access (a fault, MMIO, a watched store) the function leaves at that instruction,
// so the interpreter executes it and takes the trap or exit with precise state.
import * as L from "../layout.js";
import { decodeAt, type AluOp, type Insn } from "./decode.js";
import { Bytes, Op, T_I32, T_I64, T_VOID } from "./wasm.js";

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

// Locals of the generated function.
const P_S = 0, P_VPAGE = 1, P_BLOCK = 2, P_BUDGET = 3, P_RT = 4, P_WT = 5, P_GEN = 6;
const L_N = 7, L_PC = 8, L_VA = 9, L_T = 10, L_E = 11, L_H = 12; // n i64, pc i64, va i64, t i64, e i32, h i32
const L_X0 = 13; // x1..x31 follow (only those used get a local, but numbering is fixed: x_r at L_X0 + r)

export const FN_PARAMS = [T_I32, T_I64, T_I32, T_I64, T_I32, T_I32, T_I64];
export const FN_RESULTS = [T_I64];
// Function indices in the module: imports first.
export const F_LOAD = 0, F_STORE = 1, F_FP = 2, F_ADDD = 3, F_MULD = 4, F_FMAD = 5, F_SYS = 6; // imports
export const F_MULHU = 7; // every module has mulhu first, then its regions
const FAST_MISS = 0x7ff0000000000001n; // fpu.ts F64_FAST_MISS
const MS_FS = 3n << 13n, MS_SD = -(1n << 63n); // mstatus.FS, mstatus.SD (as i64)

export interface Emitted {
  body: Bytes;
  locals: { count: number; type: number }[];
  usesMulh: boolean;
}

// Emits the function of a region. `track`: the machine's code-tracking bytes and flag (jit.ts).
export function emitRegion(r: Region, track: { dirty: number; flag: number }): Emitted {
  const c = new Bytes();
  const used = new Set<number>();
  const written = new Set<number>();
  for (const b of r.blocks) for (const { insn: i } of b.insns) regsOf(i, used, written);
  let usesMulh = false;
  const k = r.blocks.length;
  const index = new Map(r.blocks.map((b, i) => [b.off, i]));

  const op = (...bs: number[]): void => { c.bytes(bs); };
  const i64c = (v: bigint | number): void => {
    c.byte(Op.i64_const);
    if (typeof v === "number" && v === (v | 0)) c.s32(v); // small constants (offsets, counts)
    else c.s64(BigInt(v));
  };
  const i32c = (v: number): void => { c.byte(Op.i32_const).s32(v); };
  const get = (l: number): void => { c.byte(Op.local_get).u32(l); };
  const set = (l: number): void => { c.byte(Op.local_set).u32(l); };
  const tee = (l: number): void => { c.byte(Op.local_tee).u32(l); };
  const mem = (o: number, off = 0): void => { c.byte(o).u32(0).u32(off); };
  const reg = (r: number): void => { if (r === 0) i64c(0); else get(L_X0 + r); };
  const setReg = (r: number): void => { if (r === 0) op(Op.drop); else set(L_X0 + r); };
  const pcAt = (off: number): void => { get(P_VPAGE); if (off !== 0) { i64c(off); op(Op.i64_add); } };

  // Entry: the registers the region uses, the block to start at.
  for (const r of [...used].sort((a, b) => a - b)) {
    get(P_S); mem(Op.i64_load, L.HART_X + 8 * r); set(L_X0 + r);
  }
  op(Op.block, T_VOID); // $exit
  op(Op.loop, T_VOID); // $top
  for (let i = 0; i < k; i++) op(Op.block, T_VOID);
  get(P_BLOCK);
  c.byte(Op.br_table).u32(k);
  for (let i = 0; i < k; i++) c.u32(i);
  c.u32(0);
  // depth: labels open around block i's code, innermost first: $B(i+1)..$B(k-1), $top, $exit.
  let depth = 0; // extra structured depth (ifs) at the point of emission
  let cur = 0;
  const toTop = (): number => k - 1 - cur + depth;
  const toExit = (): number => k - cur + depth;

  // Leaves with pc = vpage + off after `done` more instructions of the current block.
  const exitAt = (off: number, base: number): void => {
    if (base !== 0) { get(L_N); i64c(base); op(Op.i64_add); set(L_N); }
    pcAt(off); set(L_PC);
    c.byte(Op.br).u32(toExit());
  };
  // Leaves at the instruction (the interpreter raises illegal-instruction) when mstatus.FS is off.
  const fsOn = (off: number, base: number): void => {
    get(P_S); mem(Op.i64_load, L.HART_MSTATUS); i64c(MS_FS); op(Op.i64_and, Op.i64_eqz, Op.if, T_VOID); depth++;
    exitAt(off, base);
    op(Op.end); depth--;
  };
  // An f register was written: mstatus.FS becomes dirty (privileged spec 3.1.6.6).
  const dirtyFs = (): void => {
    get(P_S); get(P_S); mem(Op.i64_load, L.HART_MSTATUS); i64c(MS_FS | MS_SD); op(Op.i64_or); mem(Op.i64_store, L.HART_MSTATUS);
  };
  // Control goes to page offset `target` once the block's instructions are counted in n.
  const goTo = (target: number, fromOff: number): void => {
    const j = index.get(target);
    if (j === undefined) { pcAt(target); set(L_PC); c.byte(Op.br).u32(toExit()); return; }
    if (j === cur + 1 && depth === 0) return; // falls into the next block's code
    if (target <= fromOff) { // a backward edge: the budget check that bounds every loop
      get(L_N); get(P_BUDGET); op(Op.i64_ge_s, Op.if, T_VOID); depth++;
      pcAt(target); set(L_PC); c.byte(Op.br).u32(toExit());
      op(Op.end); depth--;
    }
    i32c(j); set(P_BLOCK); c.byte(Op.br).u32(toTop());
  };

  for (cur = 0; cur < k; cur++) {
    const b = r.blocks[cur]!;
    op(Op.end); // closes $B(cur): its code follows
    let idx = 0;
    let ended = false;
    for (const { off, len, insn: i } of b.insns) {
      switch (i.k) {
        case "stop":
          exitAt(off, idx);
          ended = true;
          break;
        case "nop":
          break;
        case "li":
          if (i.rd !== 0) { i64c(i.imm); setReg(i.rd); }
          break;
        case "auipc":
          if (i.rd !== 0) { pcAt(off); i64c(i.imm); op(Op.i64_add); setReg(i.rd); }
          break;
        case "alu":
        case "alui": {
          if (i.rd === 0) break; // a hint: no effect (all of these are free of traps)
          const rhs = i.k === "alu" ? (): void => reg(i.rs2) : (): void => i64c(i.imm);
          if (i.op === "mulh" || i.op === "mulhsu" || i.op === "mulhu") usesMulh = true;
          alu(i.op, () => reg(i.rs1), rhs);
          setReg(i.rd);
          break;
        }
        case "load":
        case "fload": {
          const fp = i.k === "fload";
          if (fp) fsOn(off, idx);
          emitAddr(i.rs1, i.imm, P_RT, i.size);
          op(Op.if, T_I64); depth++;
          get(L_VA); get(L_E); mem(Op.i64_load, 8); op(Op.i64_add, Op.i32_wrap_i64);
          mem(fp ? (i.size === 8 ? Op.i64_load : Op.i64_load32_u) : loadOp(i.size, i.k === "load" && i.signed));
          op(Op.else);
          get(L_VA); i32c(i.size); c.byte(Op.call).u32(F_LOAD);
          get(P_S); mem(Op.i64_load, L.HART_JIT_FAIL); op(Op.i64_eqz, Op.i32_eqz, Op.if, T_VOID); depth++;
          get(P_S); i64c(0); mem(Op.i64_store, L.HART_JIT_FAIL);
          exitAt(off, idx);
          op(Op.end); depth--;
          if (i.k === "load" && i.signed && i.size < 8) op(i.size === 4 ? Op.i64_extend32_s : i.size === 2 ? Op.i64_extend16_s : Op.i64_extend8_s);
          op(Op.end); depth--;
          if (!fp) { setReg(i.rd); break; }
          // An f register: binary32 values NaN-boxed (unprivileged spec 12.2).
          if (i.size === 4) { i64c(0xffffffffn); op(Op.i64_and); i64c(-(1n << 32n)); op(Op.i64_or); }
          set(L_T); get(P_S); get(L_T); mem(Op.i64_store, L.HART_F + 8 * i.rd);
          dirtyFs();
          break;
        }
        case "store":
        case "fstore": {
          const fp = i.k === "fstore";
          if (fp) fsOn(off, idx);
          const value = fp ? (): void => { get(P_S); mem(Op.i64_load, L.HART_F + 8 * i.rs2); } : (): void => reg(i.rs2);
          emitAddr(i.rs1, i.imm, P_WT, i.size);
          op(Op.if, T_VOID); depth++;
          get(L_VA); get(L_E); mem(Op.i64_load, 8); op(Op.i64_add, Op.i32_wrap_i64); tee(L_H);
          value();
          mem(i.size === 8 ? Op.i64_store : i.size === 4 ? Op.i64_store32 : i.size === 2 ? Op.i64_store16 : Op.i64_store8);
          // A frame holding translated code is marked written (jit.ts markDirty).
          i32c(track.dirty); get(L_H); i32c(12); op(Op.i32_shr_u, Op.i32_add); tee(L_E);
          mem(Op.i32_load8_u); i32c(1); op(Op.i32_eq, Op.if, T_VOID);
          get(L_E); i32c(3); mem(Op.i32_store8);
          i32c(track.flag); i32c(1); c.byte(Op.atomic_prefix).u32(Op.i32_atomic_store).u32(2).u32(0);
          op(Op.end);
          op(Op.else);
          get(L_VA); value(); i32c(i.size); c.byte(Op.call).u32(F_STORE);
          op(Op.if, T_VOID); depth++;
          exitAt(off, idx);
          op(Op.end); depth--;
          op(Op.end); depth--;
          break;
        }
        case "fp": {
          const fast = fastFp(i.word);
          if (fast) {
            // The common double-precision operations in round-to-nearest: the hart's fast path,
            // or else (an operand or result that needs the exact algorithm) the general call.
            fsOn(off, idx);
            op(Op.block, T_VOID); depth++; // $done
            op(Op.block, T_VOID); depth++; // $general
            if (fast.dyn) { get(P_S); mem(Op.i64_load, L.HART_FCSR); i64c(0xe0); op(Op.i64_and, Op.i64_eqz, Op.i32_eqz); c.byte(Op.br_if).u32(0); }
            for (const [r, neg] of fast.args) { get(P_S); mem(Op.i64_load, L.HART_F + 8 * r); if (neg) { i64c(-(1n << 63n)); op(Op.i64_xor); } }
            c.byte(Op.call).u32(fast.fn); tee(L_T);
            i64c(FAST_MISS); op(Op.i64_eq); c.byte(Op.br_if).u32(0);
            get(P_S); get(L_T); mem(Op.i64_store, L.HART_F + 8 * ((i.word >>> 7) & 31));
            dirtyFs();
            c.byte(Op.br).u32(1);
            op(Op.end); depth--; // $general
          }
          // The integer source goes to the state block, where fexec.ts reads it; the
          // destination comes back from there.
          if (i.xr !== 0) { get(P_S); get(L_X0 + i.xr); mem(Op.i64_store, L.HART_X + 8 * i.xr); }
          i32c(i.word | 0); c.byte(Op.call).u32(F_FP);
          op(Op.if, T_VOID); depth++;
          exitAt(off, idx);
          op(Op.end); depth--;
          if (i.xw !== 0) { get(P_S); mem(Op.i64_load, L.HART_X + 8 * i.xw); set(L_X0 + i.xw); }
          if (fast) { op(Op.end); depth--; } // $done
          break;
        }
        case "sys": {
          // The VMM reads its operands from the state block and writes rd there (rd is stored
          // first, so reloading it is right whatever the VMM did).
          const regs = [...new Set([...i.reads, i.rd])].filter((r) => r !== 0);
          for (const r of regs) { get(P_S); get(L_X0 + r); mem(Op.i64_store, L.HART_X + 8 * r); }
          i32c(i.word | 0); pcAt(off); c.byte(Op.call).u32(F_SYS); set(L_E);
          if (i.rd !== 0) { get(P_S); mem(Op.i64_load, L.HART_X + 8 * i.rd); set(L_X0 + i.rd); }
          get(L_E); i32c(L.BT_INTERP); op(Op.i32_eq, Op.if, T_VOID); depth++;
          exitAt(off, idx);
          op(Op.end); depth--;
          // Retired unless a trap was reflected (BT_TRAPPED).
          get(L_N); if (idx !== 0) { i64c(idx); op(Op.i64_add); }
          get(L_E); i32c(L.BT_JUMP); op(Op.i32_le_u, Op.i64_extend_i32_u, Op.i64_add); set(L_N);
          // Anything but BT_NEXT (and always after sret and ecall): leave at the pc the VMM set.
          const leaveAtVmmPc = (): void => { get(P_S); mem(Op.i64_load, L.HART_PC); set(L_PC); c.byte(Op.br).u32(toExit()); };
          if (i.end) leaveAtVmmPc();
          else {
            get(L_E); op(Op.if, T_VOID); depth++;
            leaveAtVmmPc();
            op(Op.end); depth--;
            goTo(off + len, off);
          }
          ended = true;
          break;
        }
        case "branch": {
          get(L_N); i64c(idx + 1); op(Op.i64_add); set(L_N);
          reg(i.rs1); reg(i.rs2);
          op(({ eq: Op.i64_eq, ne: Op.i64_ne, lt: Op.i64_lt_s, ge: Op.i64_ge_s, ltu: Op.i64_lt_u, geu: Op.i64_ge_u } as const)[i.cond]);
          op(Op.if, T_VOID); depth++;
          goTo(off + i.imm, off);
          op(Op.end); depth--;
          goTo(off + len, off);
          ended = true;
          break;
        }
        case "jal":
          if (i.rd !== 0) { pcAt(off + len); setReg(i.rd); }
          get(L_N); i64c(idx + 1); op(Op.i64_add); set(L_N);
          goTo(off + i.imm, off);
          ended = true;
          break;
        case "jalr":
          // The target first: rd may be rs1.
          reg(i.rs1); i64c(i.imm); op(Op.i64_add); i64c(-2); op(Op.i64_and); set(L_PC);
          if (i.rd !== 0) { pcAt(off + len); setReg(i.rd); }
          get(L_N); i64c(idx + 1); op(Op.i64_add); set(L_N);
          c.byte(Op.br).u32(toExit());
          ended = true;
          break;
      }
      if (ended) break;
      idx++;
    }
    if (!ended) {
      const last = b.insns[b.insns.length - 1]!;
      get(L_N); i64c(idx); op(Op.i64_add); set(L_N);
      goTo(last.off + last.len, last.off); // forward: no budget check
    }
  }
  op(Op.end); // $top (not reached: every block ends in a branch)
  op(Op.end); // $exit
  for (const r of [...written].sort((a, b) => a - b)) {
    get(P_S); get(L_X0 + r); mem(Op.i64_store, L.HART_X + 8 * r);
  }
  get(P_S); get(L_PC); mem(Op.i64_store, L.HART_PC);
  get(L_N);

  const locals = [{ count: 4, type: T_I64 }, { count: 2, type: T_I32 }, { count: 32, type: T_I64 }];
  return { body: c, locals, usesMulh };

  // va = rs1 + imm into L_VA; leaves on the stack whether the L1 entry of table `t` hits.
  function emitAddr(rs1: number, imm: number, t: number, size: number): void {
    reg(rs1); if (imm !== 0) { i64c(imm); op(Op.i64_add); } set(L_VA);
    get(t);
    get(L_VA); i64c(12); op(Op.i64_shr_u, Op.i32_wrap_i64); i32c(L.L1_ENTRIES - 1); op(Op.i32_and); i32c(4); op(Op.i32_shl, Op.i32_add); tee(L_E);
    mem(Op.i64_load);
    get(L_VA); i64c(~0xfffn | BigInt(size - 1)); op(Op.i64_and); get(P_GEN); op(Op.i64_or);
    op(Op.i64_eq);
  }

  // Pushes a op b (64-bit result) for the integer operations.
  function alu(o: AluOp, a: () => void, b: () => void): void {
    const simple: Partial<Record<AluOp, number>> = {
      add: Op.i64_add, sub: Op.i64_sub, sll: Op.i64_shl, xor: Op.i64_xor, srl: Op.i64_shr_u, sra: Op.i64_shr_s,
      or: Op.i64_or, and: Op.i64_and, mul: Op.i64_mul,
    };
    const s = simple[o];
    if (s !== undefined) { a(); b(); op(s); return; }
    switch (o) {
      case "slt": a(); b(); op(Op.i64_lt_s, Op.i64_extend_i32_u); return;
      case "sltu": a(); b(); op(Op.i64_lt_u, Op.i64_extend_i32_u); return;
      case "addw": a(); b(); op(Op.i64_add, Op.i64_extend32_s); return;
      case "subw": a(); b(); op(Op.i64_sub, Op.i64_extend32_s); return;
      case "mulw": a(); b(); op(Op.i64_mul, Op.i64_extend32_s); return;
      case "sllw": a(); op(Op.i32_wrap_i64); b(); op(Op.i32_wrap_i64, Op.i32_shl, Op.i64_extend_i32_s); return;
      case "srlw": a(); op(Op.i32_wrap_i64); b(); op(Op.i32_wrap_i64, Op.i32_shr_u, Op.i64_extend_i32_s); return;
      case "sraw": a(); op(Op.i32_wrap_i64); b(); op(Op.i32_wrap_i64, Op.i32_shr_s, Op.i64_extend_i32_s); return;
      case "mulhu": a(); b(); c.byte(Op.call).u32(F_MULHU); return;
      case "mulh": case "mulhsu": {
        // mulhu(a, b) - (a < 0 ? b : 0) - (mulh: b < 0 ? a : 0), as cpu.ts
        a(); b(); c.byte(Op.call).u32(F_MULHU);
        b(); i64c(0); a(); i64c(0); op(Op.i64_lt_s, Op.select, Op.i64_sub);
        if (o === "mulh") { a(); i64c(0); b(); i64c(0); op(Op.i64_lt_s, Op.select, Op.i64_sub); }
        return;
      }
      case "div": // b == 0: -1; b == -1: -a (MIN / -1 = MIN, which wasm would trap on)
        b(); set(L_T); a(); set(L_VA);
        get(L_T); op(Op.i64_eqz, Op.if, T_I64); i64c(-1);
        op(Op.else); get(L_T); i64c(-1); op(Op.i64_eq, Op.if, T_I64); i64c(0); get(L_VA); op(Op.i64_sub);
        op(Op.else); get(L_VA); get(L_T); op(Op.i64_div_s, Op.end, Op.end);
        return;
      case "divu":
        b(); set(L_T); a(); set(L_VA);
        get(L_T); op(Op.i64_eqz, Op.if, T_I64); i64c(-1);
        op(Op.else); get(L_VA); get(L_T); op(Op.i64_div_u, Op.end);
        return;
      case "rem": // b == 0: a; b == -1: 0
        b(); set(L_T); a(); set(L_VA);
        get(L_T); op(Op.i64_eqz, Op.if, T_I64); get(L_VA);
        op(Op.else); get(L_T); i64c(-1); op(Op.i64_eq, Op.if, T_I64); i64c(0);
        op(Op.else); get(L_VA); get(L_T); op(Op.i64_rem_s, Op.end, Op.end);
        return;
      case "remu":
        b(); set(L_T); a(); set(L_VA);
        get(L_T); op(Op.i64_eqz, Op.if, T_I64); get(L_VA);
        op(Op.else); get(L_VA); get(L_T); op(Op.i64_rem_u, Op.end);
        return;
      case "divw": case "divuw": case "remw": case "remuw": {
        // On the low 32 bits (in i64 locals, sign- or zero-extended), the result sign-extended.
        const signed = o === "divw" || o === "remw";
        const ext = signed ? Op.i64_extend32_s : undefined;
        b(); if (ext) op(ext); else { i64c(0xffffffff); op(Op.i64_and); } set(L_T);
        a(); if (ext) op(ext); else { i64c(0xffffffff); op(Op.i64_and); } set(L_VA);
        const isDiv = o === "divw" || o === "divuw";
        get(L_T); op(Op.i64_eqz, Op.if, T_I64);
        if (isDiv) i64c(-1); else get(L_VA);
        op(Op.else);
        // For 32-bit operands in i64, MIN32 / -1 does not overflow; the result is wrapped below.
        get(L_VA); get(L_T);
        op(isDiv ? (signed ? Op.i64_div_s : Op.i64_div_u) : (signed ? Op.i64_rem_s : Op.i64_rem_u));
        op(Op.end, Op.i64_extend32_s);
        return;
      }
      default:
        throw new Error(`codegen: no ALU operation ${o}`);
    }
  }
}

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
  const c = new Bytes();
  const A = 0, B = 1, LL = 2, LH = 3, HL = 4;
  const get = (l: number): void => { c.byte(Op.local_get).u32(l); };
  const set = (l: number): void => { c.byte(Op.local_set).u32(l); };
  const lo = (l: number): void => { get(l); c.byte(Op.i64_const).s64(0xffffffffn).byte(Op.i64_and); };
  const hi = (l: number): void => { get(l); c.byte(Op.i64_const).s64(32n).byte(Op.i64_shr_u); };
  lo(A); lo(B); c.byte(Op.i64_mul); set(LL);
  lo(A); hi(B); c.byte(Op.i64_mul); set(LH);
  hi(A); lo(B); c.byte(Op.i64_mul); set(HL);
  hi(A); hi(B); c.byte(Op.i64_mul); // hh
  hi(LH); c.byte(Op.i64_add);
  hi(HL); c.byte(Op.i64_add);
  // mid = (ll >>> 32) + lo(lh) + lo(hl); + mid >>> 32
  hi(LL); lo(LH); c.byte(Op.i64_add); lo(HL); c.byte(Op.i64_add);
  c.byte(Op.i64_const).s64(32n).byte(Op.i64_shr_u);
  c.byte(Op.i64_add);
  return c;
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
