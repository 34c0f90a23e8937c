// The run loop: fetch, decode and execute RV64IMAC (+ F/D through fexec.ts) until the budget is
// spent or something needs the host. Hot state (pc, instruction count, TLB table bases, the
// current fetch page) lives in locals; everything rare is a call.
import {
  HART_PC, HART_PRIV, HART_INSTRET, HART_JIT_NEXT, HART_FENCE_WORD, HART_STAT_JIT_CHAINS, HART_WFI, HART_MIP, HART_MIE, HART_MSTATUS, HART_EXIT_INFO,
  HART_X, HART_F, HART_FCSR, HART_EXIT_DATA, HART_EXIT_TVAL, HART_RES_ADDR, HART_RES_VALUE, HART_FLAGS, FLAG_MARKERS, HART_KICK_ADDR, EXIT_MARKER, L1_ENTRIES, EXIT_BUDGET, EXIT_WFI, EXIT_MMIO, EXIT_WATCH,
  HART_STAT_JIT_RUNS, HART_STAT_JIT_INSNS,
} from "../layout";
import { jitMap, jitQuiet, jitTick, dirtyMap, jitSlot, hotBump, jitTranslate, jitFenceI, markDirty, codeFlag, CODE_TRANSLATED, CODE_WRITTEN } from "./jit";
import {
  S, gPC, setPC, gExit, setExit, excCause, excTval, clearExc, raise, EXC_MMIO, EXC_WATCH, attn,
  clearAttn, ctxDirty, clearCtx, irqCheck, clearIrq, markCtx, markIrq,
  setCount, setBase, gBase, CAUSE_ILLEGAL, CAUSE_BREAKPOINT, CAUSE_ECALL_U, MS_TSR, MS_TW, MS_TVM,
  MS_FS, dirtyFS, NAN_BOX, SIGN64,
} from "./state";
import {
  KIND_R, KIND_W, KIND_X, l1Table, l1Gen, ctxOf, dataPriv, loadSlow, storeSlow, fetchHost, sfence,
  atomicHost,
} from "./mmu";
import { takeTrap, checkInterrupts, mret, sret } from "./trap";
import { csrInsn } from "./csr";
import { fpInsn, fsgnj64 } from "./fexec";
import * as fpu from "./fpu";


// Marker instruction `slti x0, x0, 0x7a5`: a no-op that the host may ask to be told about.
const MARKER: u32 = 0x7a502013;

@inline function X(s: usize, r: u32): i64 { return load<i64>(s + (<usize>r << 3)); }
@inline function setXr(s: usize, r: u32, v: i64): void { if (r != 0) store<i64>(s + (<usize>r << 3), v); }

// A store by the inner loop reached machine address h: mark its frame if it holds translated
// code (jit.ts markDirty; the call is on the rare path only).
@inline function dirty(dmap: usize, h: i64): void {
  if (dmap != 0) {
    const a = dmap + (<usize>h >>> 12);
    if (load<u8>(a) == CODE_TRANSLATED) {
      store<u8>(a, CODE_TRANSLATED | CODE_WRITTEN); // as jit.ts codeWritten, without a call
      atomic.store<u32>(codeFlag, 1);
    }
  }
}

// An L1 hit: the tag is the page with the current generation (mmu.ts l1Gen); a misaligned va
// keeps low bits that no tag has, so it misses and takes the slow path.
@inline function tlb(t: usize, va: i64, alignMask: i64, gen: i64): i64 {
  const e = t + ((<usize>(va >>> 12) & (L1_ENTRIES - 1)) << 4);
  if (load<i64>(e) == ((va & (~0xFFF | alignMask)) | gen)) return va + load<i64>(e, 8);
  return -1;
}

// MMIO exit description: size | isStore << 8 | rd << 16 | signed << 24 | fp << 25 (see layout.ts)
@inline function info(size: i32, isStore: i32, rd: u32, signed: i32, fp: i32): i64 {
  return <i64>(size | (isStore << 8) | (<i32>rd << 16) | (signed << 24) | (fp << 25));
}

// A memory access at pc raised excCause: trap, or leave for the host. Returns the next pc.
function memFault(pc: i64, inf: i64, len: i32): i64 {
  const c = excCause;
  clearExc();
  if (c == EXC_WATCH) { setExit(EXIT_WATCH); return pc + len; }
  if (c == EXC_MMIO) {
    store<i64>(S + HART_EXIT_INFO, inf | (<i64>len << 28));
    store<i64>(S + HART_EXIT_TVAL, excTval); // the virtual address, for an access fault
    setExit(EXIT_MMIO);
    return pc;
  }
  setPC(pc);
  takeTrap(c, excTval);
  return gPC;
}

function except(pc: i64, cause: i64, tval: i64): i64 {
  clearExc();
  setPC(pc);
  takeTrap(cause, tval);
  return gPC;
}

@inline function fsOff(): bool { return (load<i64>(S + HART_MSTATUS) & MS_FS) == 0; }
@inline function mulhu(a: i64, b: i64): i64 {
  const al = a & 0xFFFFFFFF, ah = a >>> 32, bl = b & 0xFFFFFFFF, bh = b >>> 32;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 32) + (lh & 0xFFFFFFFF) + (hl & 0xFFFFFFFF);
  return hh + (lh >>> 32) + (hl >>> 32) + (mid >>> 32);
}
@inline function mulh(a: i64, b: i64): i64 {
  let r = mulhu(a, b);
  if (a < 0) r -= b;
  if (b < 0) r -= a;
  return r;
}
@inline function mulhsu(a: i64, b: i64): i64 {
  let r = mulhu(a, b);
  if (a < 0) r -= b;
  return r;
}

@inline function div(a: i64, b: i64): i64 {
  if (b == 0) return -1;
  if (b == -1) return -a; // also MIN / -1 = MIN without the wasm trap
  return a / b;
}
@inline function rem(a: i64, b: i64): i64 {
  if (b == 0) return a;
  if (b == -1) return 0;
  return a % b;
}
@inline function divu(a: i64, b: i64): i64 { return b == 0 ? -1 : <i64>(<u64>a / <u64>b); }
@inline function remu(a: i64, b: i64): i64 { return b == 0 ? a : <i64>(<u64>a % <u64>b); }
@inline function sx32(v: i64): i64 { return <i64><i32>v; }

// AMOs, LR and SC (A extension). Memory is shared with other harts' threads, so these are real
// wasm atomics; SC succeeds if the reserved word still holds the value LR saw.
function amo(insn: u32): void {
  const s = S;
  const f3 = (insn >>> 12) & 7;
  const f5 = insn >>> 27;
  const rd = (insn >>> 7) & 31;
  const va = X(s, (insn >>> 15) & 31);
  const b = X(s, (insn >>> 20) & 31);
  if (f3 != 2 && f3 != 3) { raise(CAUSE_ILLEGAL, insn); return; }
  const size: i32 = f3 == 3 ? 8 : 4;
  if (f5 == 2) { // LR
    if (((insn >>> 20) & 31) != 0) { raise(CAUSE_ILLEGAL, insn); return; }
    const h = atomicHost(va, size, KIND_R);
    if (h < 0) return;
    const v = size == 8 ? atomic.load<i64>(<usize>h) : sx32(<i64>atomic.load<i32>(<usize>h));
    store<i64>(s + HART_RES_ADDR, h);
    store<i64>(s + HART_RES_VALUE, v);
    setXr(s, rd, v);
    return;
  }
  if (f5 == 3) { // SC
    const h = atomicHost(va, size, KIND_W);
    if (h < 0) return;
    let okc = false;
    if (load<i64>(s + HART_RES_ADDR) == h) {
      const expect = load<i64>(s + HART_RES_VALUE);
      if (size == 8) okc = atomic.cmpxchg<i64>(<usize>h, expect, b) == expect;
      else okc = atomic.cmpxchg<i32>(<usize>h, <i32>expect, <i32>b) == <i32>expect;
    }
    store<i64>(s + HART_RES_ADDR, -1);
    if (okc) markDirty(h);
    setXr(s, rd, okc ? 0 : 1);
    return;
  }
  const h = atomicHost(va, size, KIND_W);
  if (h < 0) return;
  let old: i64 = 0;
  if (size == 8) {
    const p = <usize>h;
    switch (f5) {
      case 0x01: old = atomic.xchg<i64>(p, b); break;
      case 0x00: old = atomic.add<i64>(p, b); break;
      case 0x04: old = atomic.xor<i64>(p, b); break;
      case 0x0C: old = atomic.and<i64>(p, b); break;
      case 0x08: old = atomic.or<i64>(p, b); break;
      case 0x10: case 0x14: case 0x18: case 0x1C: {
        while (true) {
          old = atomic.load<i64>(p);
          const n = f5 == 0x10 ? (old < b ? old : b) : f5 == 0x14 ? (old > b ? old : b)
            : f5 == 0x18 ? (<u64>old < <u64>b ? old : b) : (<u64>old > <u64>b ? old : b);
          if (atomic.cmpxchg<i64>(p, old, n) == old) break;
        }
        break;
      }
      default: raise(CAUSE_ILLEGAL, insn); return;
    }
  } else {
    const p = <usize>h;
    const bw = <i32>b;
    let o: i32 = 0;
    switch (f5) {
      case 0x01: o = atomic.xchg<i32>(p, bw); break;
      case 0x00: o = atomic.add<i32>(p, bw); break;
      case 0x04: o = atomic.xor<i32>(p, bw); break;
      case 0x0C: o = atomic.and<i32>(p, bw); break;
      case 0x08: o = atomic.or<i32>(p, bw); break;
      case 0x10: case 0x14: case 0x18: case 0x1C: {
        while (true) {
          o = atomic.load<i32>(p);
          const n = f5 == 0x10 ? (o < bw ? o : bw) : f5 == 0x14 ? (o > bw ? o : bw)
            : f5 == 0x18 ? (<u32>o < <u32>bw ? o : bw) : (<u32>o > <u32>bw ? o : bw);
          if (atomic.cmpxchg<i32>(p, o, n) == o) break;
        }
        break;
      }
      default: raise(CAUSE_ILLEGAL, insn); return;
    }
    old = <i64>o;
  }
  // Another hart's reservation on this word is broken by the value change (SC compares values).
  if (load<i64>(s + HART_RES_ADDR) == h) store<i64>(s + HART_RES_ADDR, -1);
  markDirty(h);
  setXr(s, rd, old);
}

// SYSTEM instructions with funct3 = 0. Returns the next pc (excCause set on a trap).
function system(insn: u32, pc: i64): i64 {
  const p = <i32>load<i64>(S + HART_PRIV);
  const ms = load<i64>(S + HART_MSTATUS);
  if (insn == 0x00000073) { raise(CAUSE_ECALL_U + <i64>p, 0); return pc; }
  if (insn == 0x00100073) { raise(CAUSE_BREAKPOINT, pc); return pc; }
  if (insn == 0x30200073) {
    if (p < 3) { raise(CAUSE_ILLEGAL, insn); return pc; }
    mret();
    return gPC;
  }
  if (insn == 0x10200073) {
    if (p < 1 || (p == 1 && (ms & MS_TSR) != 0)) { raise(CAUSE_ILLEGAL, insn); return pc; }
    sret();
    return gPC;
  }
  if (insn == 0x10500073) {
    if (p == 0 || (p == 1 && (ms & MS_TW) != 0)) { raise(CAUSE_ILLEGAL, insn); return pc; }
    // WFI completes when any interrupt is pending and locally enabled, whatever the global
    // enables say (privileged spec 3.3.3); otherwise the hart sleeps until the host wakes it.
    if ((load<i64>(S + HART_MIP) & load<i64>(S + HART_MIE)) == 0) {
      store<i64>(S + HART_WFI, 1);
      setExit(EXIT_WFI);
    }
    return pc + 4;
  }
  if ((insn >>> 25) == 0x09 && ((insn >>> 7) & 31) == 0) { // sfence.vma
    if (p == 0 || (p == 1 && (ms & MS_TVM) != 0)) { raise(CAUSE_ILLEGAL, insn); return pc; }
    const rs1 = (insn >>> 15) & 31, rs2 = (insn >>> 20) & 31;
    sfence(X(S, rs1), rs1 == 0, X(S, rs2) & 0xFFFF, rs2 == 0);
    return pc + 4;
  }
  raise(CAUSE_ILLEGAL, insn);
  return pc;
}

// The pc just changed by a taken branch or jump: every JIT_TICK of them the outer loop looks for
// translated code at pc (SLOW_HOT).
// Why two loops: TurboFan keeps a loop's variables in registers only if the loop makes no calls
// (every call clobbers every register, and values are then spilled on each iteration). The inner
// loop below executes instructions whose work is register arithmetic or a TLB hit; anything that
// needs a call (a TLB miss, MMIO, a trap, CSRs, SYSTEM, AMOs, FP arithmetic, a new code page)
// leaves it with a SLOW_* reason and its operands, and the outer loop finishes that instruction.
const SLOW_FETCH = 1; // pc left the cached code page, or sits on its last halfword
const SLOW_LOAD = 2; // sVa, sInfo, sLen
const SLOW_STORE = 3; // sVa, sVal, sInfo, sLen
const SLOW_EXC = 4; // sCause, sTval
const SLOW_SYSTEM = 5; // sInsn
const SLOW_AMO = 6; // sInsn
const SLOW_FP = 7; // sInsn
const SLOW_MARKER = 8;
const SLOW_HOT = 9; // a taken branch or jump, one of every JIT_TICK: look for translated code at pc
const SLOW_FENCEI = 10;

export function run(state: usize, budget: i64): i32 {
  S = state;
  const s = state;
  setExit(-1);
  clearExc();
  setBase(load<i64>(s + HART_INSTRET));
  let pc = load<i64>(s + HART_PC);
  let count: i64 = 0; // instructions completed in this call
  // Traps and interrupts retire nothing but still spend budget, so that a trap storm (say, a
  // trap vector that itself faults) cannot keep run() from returning to the host.
  let limit = budget;
  // A per-hart flag, not a module global: one instance runs the harts of many VMs.
  const markers = (load<i64>(s + HART_FLAGS) & FLAG_MARKERS) != 0;
  const kick = <usize>load<i64>(s + HART_KICK_ADDR);
  // The translator of this instance (jit.ts), if it has one.
  const jmap: usize = jitQuiet ? <usize>0 : jitMap;
  const dmap = dirtyMap;
  let tick: i32 = jmap != 0 ? jitTick : 0x7FFFFFFF;
  let jitLook = jmap != 0; // look for translated code at pc once the fetch page is known
  if (load<i64>(s + HART_WFI) != 0) {
    if ((load<i64>(s + HART_MIP) & load<i64>(s + HART_MIE)) == 0) return EXIT_WFI;
    store<i64>(s + HART_WFI, 0);
  }
  markCtx();
  markIrq();
  let rT: usize = 0, wT: usize = 0, xT: usize = 0; // the L1 tables translated code uses
  let gen: i64 = 0; // the L1 generation, reloaded whenever a flush may have started a new one
  // The virtual base of the cached code page and its host addend. Invalidation points fpage at
  // a page next to pc's, which a fetch from pc cannot match.
  let fpage: i64 = 0, fadd: i64 = 0;
  // An instruction on the last halfword of a page, fetched by the outer loop for the inner one.
  let pendPc: i64 = -1;
  let pendInsn: u32 = 0;
  let result: i32 = EXIT_BUDGET;
  let sVa: i64 = 0, sVal: i64 = 0, sInfo: i64 = 0, sCause: i64 = 0, sTval: i64 = 0;
  let sLen: i32 = 4;
  let sInsn: u32 = 0;

  while (true) {
    if (attn) {
      clearAttn();
      if (gExit >= 0) { result = gExit; break; }
      if (ctxDirty) {
        clearCtx();
        const dctx = ctxOf(dataPriv(), KIND_R);
        rT = l1Table(dctx, KIND_R);
        wT = l1Table(dctx, KIND_W);
        xT = l1Table(ctxOf(<i32>load<i64>(s + HART_PRIV), KIND_X), KIND_X);
        gen = l1Gen();
        fpage = (pc & ~0xFFF) ^ 0x1000;
        pendPc = -1;
      }
      if (irqCheck) {
        clearIrq();
        setPC(pc);
        if (checkInterrupts()) { limit--; pc = gPC; continue; }
      }
    }
    // Another thread wants this hart stopped (an interrupt to deliver, a fence, preemption).
    if (kick != 0 && atomic.load<i32>(kick) != 0) break;
    if (count >= limit) break;

    let slow = 0;
    while (count < limit) {
      let insn: u32 = 0;
      if (<u64>(pc - fpage) < 0xFFE) insn = load<u32>(<usize>(pc + fadd));
      else if (pc == pendPc) { insn = pendInsn; pendPc = -1; }
      else { slow = SLOW_FETCH; break; }

      if ((insn & 3) == 3) {
        const rd = (insn >>> 7) & 31;
        const rs1 = (insn >>> 15) & 31;
        const f3 = (insn >>> 12) & 7;
        switch ((insn >>> 2) & 31) {
          case 0x00: { // LOAD
            const va = X(s, rs1) + <i64>(<i32>insn >> 20);
            if (f3 == 7) { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break; }
            const size = 1 << (f3 & 3);
            const h = tlb(rT, va, <i64>(size - 1), gen);
            if (h < 0) { sVa = va; sInfo = info(size, 0, rd, f3 < 4 ? 1 : 0, 0); sLen = 4; slow = SLOW_LOAD; break; }
            let v: i64;
            switch (f3) {
              case 0: v = <i64>load<i8>(<usize>h); break;
              case 1: v = <i64>load<i16>(<usize>h); break;
              case 2: v = <i64>load<i32>(<usize>h); break;
              case 3: v = load<i64>(<usize>h); break;
              case 4: v = <i64>load<u8>(<usize>h); break;
              case 5: v = <i64>load<u16>(<usize>h); break;
              default: v = <i64>load<u32>(<usize>h); break;
            }
            setXr(s, rd, v);
            pc += 4;
            count++;
            continue;
          }
          case 0x08: { // STORE
            const va = X(s, rs1) + <i64>(((<i32>insn >> 20) & ~31) | <i32>rd);
            const v = X(s, (insn >>> 20) & 31);
            if (f3 > 3) { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break; }
            const size = 1 << f3;
            const h = tlb(wT, va, <i64>(size - 1), gen);
            if (h < 0) { sVa = va; sVal = v; sInfo = info(size, 1, 0, 0, 0); sLen = 4; slow = SLOW_STORE; break; }
            if (f3 == 3) store<i64>(<usize>h, v);
            else if (f3 == 2) store<u32>(<usize>h, <u32>v);
            else if (f3 == 1) store<u16>(<usize>h, <u16>v);
            else store<u8>(<usize>h, <u8>v);
            dirty(dmap, h);
            pc += 4;
            count++;
            continue;
          }
          case 0x04: { // OP-IMM
            const a = X(s, rs1);
            const imm = <i64>(<i32>insn >> 20);
            let v: i64 = 0;
            switch (f3) {
              case 0: v = a + imm; break;
              case 1:
                if ((insn >>> 26) != 0) { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break; }
                v = a << (imm & 63);
                break;
              case 2:
                if (insn == MARKER && markers) { slow = SLOW_MARKER; break; }
                v = a < imm ? 1 : 0;
                break;
              case 3: v = <u64>a < <u64>imm ? 1 : 0; break;
              case 4: v = a ^ imm; break;
              case 5: {
                const f6 = insn >>> 26;
                if (f6 == 0) v = a >>> (imm & 63);
                else if (f6 == 0x10) v = a >> (imm & 63);
                else { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; }
                break;
              }
              case 6: v = a | imm; break;
              default: v = a & imm; break;
            }
            if (slow != 0) break;
            setXr(s, rd, v);
            pc += 4;
            count++;
            continue;
          }
          case 0x0C: { // OP
            const a = X(s, rs1);
            const b = X(s, (insn >>> 20) & 31);
            const f7 = insn >>> 25;
            let v: i64 = 0;
            if (f7 == 0) {
              switch (f3) {
                case 0: v = a + b; break;
                case 1: v = a << (b & 63); break;
                case 2: v = a < b ? 1 : 0; break;
                case 3: v = <u64>a < <u64>b ? 1 : 0; break;
                case 4: v = a ^ b; break;
                case 5: v = a >>> (b & 63); break;
                case 6: v = a | b; break;
                default: v = a & b; break;
              }
            } else if (f7 == 1) {
              switch (f3) {
                case 0: v = a * b; break;
                case 1: v = mulh(a, b); break;
                case 2: v = mulhsu(a, b); break;
                case 3: v = mulhu(a, b); break;
                case 4: v = div(a, b); break;
                case 5: v = divu(a, b); break;
                case 6: v = rem(a, b); break;
                default: v = remu(a, b); break;
              }
            } else if (f7 == 0x20 && f3 == 0) {
              v = a - b;
            } else if (f7 == 0x20 && f3 == 5) {
              v = a >> (b & 63);
            } else { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break; }
            setXr(s, rd, v);
            pc += 4;
            count++;
            continue;
          }
          case 0x18: { // BRANCH
            const a = X(s, rs1);
            const b = X(s, (insn >>> 20) & 31);
            let taken = false;
            switch (f3) {
              case 0: taken = a == b; break;
              case 1: taken = a != b; break;
              case 4: taken = a < b; break;
              case 5: taken = a >= b; break;
              case 6: taken = <u64>a < <u64>b; break;
              case 7: taken = <u64>a >= <u64>b; break;
              default: sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break;
            }
            if (slow != 0) break;
            count++;
            if (taken) {
              pc += <i64>((<i32>(insn & 0x80000000) >> 19) | <i32>((insn & 0x80) << 4) |
                <i32>((insn >>> 20) & 0x7E0) | <i32>((insn >>> 7) & 0x1E));
              if (--tick == 0) { slow = SLOW_HOT; break; }
            } else pc += 4;
            continue;
          }
          case 0x19: { // JALR
            if (f3 != 0) { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break; }
            const t = (X(s, rs1) + <i64>(<i32>insn >> 20)) & ~1;
            setXr(s, rd, pc + 4);
            pc = t;
            count++;
            if (--tick == 0) { slow = SLOW_HOT; break; }
            continue;
          }
          case 0x1B: { // JAL
            setXr(s, rd, pc + 4);
            pc += <i64>((<i32>(insn & 0x80000000) >> 11) | <i32>(insn & 0xFF000) |
              <i32>((insn >>> 9) & 0x800) | <i32>((insn >>> 20) & 0x7FE));
            count++;
            if (--tick == 0) { slow = SLOW_HOT; break; }
            continue;
          }
          case 0x0D: // LUI
            setXr(s, rd, <i64><i32>(insn & 0xFFFFF000));
            pc += 4;
            count++;
            continue;
          case 0x05: // AUIPC
            setXr(s, rd, pc + <i64><i32>(insn & 0xFFFFF000));
            pc += 4;
            count++;
            continue;
          case 0x06: { // OP-IMM-32
            const a = X(s, rs1);
            const imm = <i64>(<i32>insn >> 20);
            const sh = <i32>(imm & 31);
            let v: i64 = 0;
            if (f3 == 0) v = sx32(a + imm);
            else if (f3 == 1 && (insn >>> 25) == 0) v = <i64>(<i32>a << sh);
            else if (f3 == 5 && (insn >>> 25) == 0) v = <i64><i32>(<u32>a >>> sh);
            else if (f3 == 5 && (insn >>> 25) == 0x20) v = <i64>(<i32>a >> sh);
            else { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break; }
            setXr(s, rd, v);
            pc += 4;
            count++;
            continue;
          }
          case 0x0E: { // OP-32
            const a = X(s, rs1);
            const b = X(s, (insn >>> 20) & 31);
            const f7 = insn >>> 25;
            const aw = <i32>a, bw = <i32>b;
            let v: i64 = 0;
            if (f7 == 0 && f3 == 0) v = <i64>(aw + bw);
            else if (f7 == 0x20 && f3 == 0) v = <i64>(aw - bw);
            else if (f7 == 0 && f3 == 1) v = <i64>(aw << (bw & 31));
            else if (f7 == 0 && f3 == 5) v = <i64><i32>(<u32>aw >>> (bw & 31));
            else if (f7 == 0x20 && f3 == 5) v = <i64>(aw >> (bw & 31));
            else if (f7 == 1) {
              switch (f3) {
                case 0: v = <i64>(aw * bw); break;
                case 4: v = bw == 0 ? -1 : bw == -1 ? <i64><i32>(0 - aw) : <i64>(aw / bw); break;
                case 5: v = bw == 0 ? -1 : <i64><i32>(<u32>aw / <u32>bw); break;
                case 6: v = bw == 0 ? <i64>aw : bw == -1 ? 0 : <i64>(aw % bw); break;
                case 7: v = bw == 0 ? <i64>aw : <i64><i32>(<u32>aw % <u32>bw); break;
                default: sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break;
              }
              if (slow != 0) break;
            } else { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break; }
            setXr(s, rd, v);
            pc += 4;
            count++;
            continue;
          }
          case 0x03: // MISC-MEM: fence, fence.i (translated code may need dropping: SLOW_FENCEI)
            if (f3 > 1) { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break; }
            if (f3 == 1 && jitMap != 0) { slow = SLOW_FENCEI; break; }
            // A guest's fence orders its accesses for device models on the host's main thread
            // (virtio: descriptors before avail->idx), which plain wasm accesses alone do not.
            if (f3 == 0) atomic.add<i64>(s + HART_FENCE_WORD, 0);
            pc += 4;
            count++;
            continue;
          case 0x01: { // LOAD-FP
            if (fsOff() || (f3 != 2 && f3 != 3)) { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break; }
            const va = X(s, rs1) + <i64>(<i32>insn >> 20);
            const size = f3 == 3 ? 8 : 4;
            const h = tlb(rT, va, <i64>(size - 1), gen);
            if (h < 0) { sVa = va; sInfo = info(size, 0, rd, 0, 1); sLen = 4; slow = SLOW_LOAD; break; }
            store<i64>(s + HART_F + (<usize>rd << 3), size == 8 ? load<i64>(<usize>h) : <i64>load<u32>(<usize>h) | NAN_BOX);
            dirtyFS();
            pc += 4;
            count++;
            continue;
          }
          case 0x09: { // STORE-FP
            if (fsOff() || (f3 != 2 && f3 != 3)) { sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break; }
            const va = X(s, rs1) + <i64>(((<i32>insn >> 20) & ~31) | <i32>rd);
            const v = load<i64>(s + HART_F + (<usize>((insn >>> 20) & 31) << 3));
            const size = f3 == 3 ? 8 : 4;
            const h = tlb(wT, va, <i64>(size - 1), gen);
            if (h < 0) { sVa = va; sVal = v; sInfo = info(size, 1, 0, 0, 1); sLen = 4; slow = SLOW_STORE; break; }
            if (size == 8) store<i64>(<usize>h, v); else store<u32>(<usize>h, <u32>v);
            dirty(dmap, h);
            pc += 4;
            count++;
            continue;
          }
          case 0x1C: sInsn = insn; slow = SLOW_SYSTEM; break;
          case 0x0B: sInsn = insn; slow = SLOW_AMO; break;
          case 0x10: case 0x11: case 0x12: case 0x13: case 0x14: {
            // The common double-precision cases in round-to-nearest stay here (fpu.ts fast paths,
            // which make no calls); everything else goes to fexec.ts through the outer loop.
            if (fsOff()) { sInsn = insn; slow = SLOW_FP; break; }
            const fcsr = load<i64>(s + HART_FCSR);
            const rm = f3 == 7 ? <u32>((fcsr >>> 5) & 7) : f3;
            const rs2 = (insn >>> 20) & 31;
            const a = <u64>load<i64>(s + HART_F + (<usize>rs1 << 3));
            const b = <u64>load<i64>(s + HART_F + (<usize>rs2 << 3));
            const op = (insn >>> 2) & 31;
            const f7 = insn >>> 25;
            let r: u64 = fpu.F64_FAST_MISS;
            fpu.fpFlags = 0;
            if (op == 0x14) {
              if (f7 == 0x11 && f3 <= 2) { // fsgnj.d, fsgnjn.d, fsgnjx.d (fmv.d, fneg.d, fabs.d)
                r = fsgnj64(a, b, f3);
              } else if (rm == 0) {
                if (f7 == 0x01) r = fpu.f64_add_rne(a, b);
                else if (f7 == 0x05) r = fpu.f64_add_rne(a, b ^ SIGN64);
                else if (f7 == 0x09) r = fpu.f64_mul_rne(a, b);
                else if (f7 == 0x0D) r = fpu.f64_div_rne(a, b);
                else if (f7 == 0x2D && rs2 == 0) r = fpu.f64_sqrt_rne(a);
              }
            } else if (((insn >>> 25) & 3) == 1 && rm == 0) { // fmadd.d, fmsub.d, fnmsub.d, fnmadd.d
              const c = <u64>load<i64>(s + HART_F + (<usize>(insn >>> 27) << 3));
              r = fpu.f64_fma_rne(op >= 0x12 ? a ^ SIGN64 : a, b, (op & 1) != 0 ? c ^ SIGN64 : c);
            }
            if (r == fpu.F64_FAST_MISS) { sInsn = insn; slow = SLOW_FP; break; }
            store<i64>(s + HART_F + (<usize>rd << 3), <i64>r);
            if (fpu.fpFlags != 0) store<i64>(s + HART_FCSR, fcsr | <i64>fpu.fpFlags);
            dirtyFS();
            pc += 4;
            count++;
            continue;
          }
          default: sCause = CAUSE_ILLEGAL; sTval = insn; slow = SLOW_EXC; break;
        }
        break;
      }

      // Compressed instructions (RVC, unprivileged spec chapter 16).
      const c = insn & 0xFFFF; // the fast fetch loads 32 bits; keep only the halfword
      const rdc = (c >>> 7) & 31;
      const rs2c = (c >>> 2) & 31;
      const rdp = 8 + ((c >>> 2) & 7); // rd' / rs2'
      const rs1p = 8 + ((c >>> 7) & 7); // rs1' / rd'
      const imm6 = <i64>(((<i32>(c << 19)) >> 26 & ~31) | <i32>((c >>> 2) & 31)); // sext(c[12], c[6:2])
      switch (((c & 3) << 3) | (c >>> 13)) {
        case 0x00: { // c.addi4spn
          const imm = ((c >>> 7) & 0x30) | ((c >>> 1) & 0x3C0) | ((c >>> 4) & 4) | ((c >>> 2) & 8);
          if (imm == 0) { sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC; break; }
          setXr(s, rdp, X(s, 2) + <i64>imm);
          pc += 2;
          count++;
          continue;
        }
        case 0x01: case 0x03: case 0x02: { // c.fld, c.ld, c.lw
          const f = c >>> 13;
          if (f == 1 && fsOff()) { sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC; break; }
          const imm = f == 2 ? ((c >>> 7) & 0x38) | ((c >>> 4) & 4) | ((c << 1) & 0x40)
            : ((c >>> 7) & 0x38) | ((c << 1) & 0xC0);
          const va = X(s, rs1p) + <i64>imm;
          const size = f == 2 ? 4 : 8;
          const h = tlb(rT, va, <i64>(size - 1), gen);
          if (h < 0) { sVa = va; sInfo = info(size, 0, rdp, 1, f == 1 ? 1 : 0); sLen = 2; slow = SLOW_LOAD; break; }
          if (f == 1) { store<i64>(s + HART_F + (<usize>rdp << 3), load<i64>(<usize>h)); dirtyFS(); }
          else setXr(s, rdp, size == 4 ? <i64>load<i32>(<usize>h) : load<i64>(<usize>h));
          pc += 2;
          count++;
          continue;
        }
        case 0x05: case 0x06: case 0x07: { // c.fsd, c.sw, c.sd
          const f = c >>> 13;
          if (f == 5 && fsOff()) { sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC; break; }
          const imm = f == 6 ? ((c >>> 7) & 0x38) | ((c >>> 4) & 4) | ((c << 1) & 0x40)
            : ((c >>> 7) & 0x38) | ((c << 1) & 0xC0);
          const va = X(s, rs1p) + <i64>imm;
          const v = f == 5 ? load<i64>(s + HART_F + (<usize>rdp << 3)) : X(s, rdp);
          const size = f == 6 ? 4 : 8;
          const h = tlb(wT, va, <i64>(size - 1), gen);
          if (h < 0) { sVa = va; sVal = v; sInfo = info(size, 1, 0, 0, f == 5 ? 1 : 0); sLen = 2; slow = SLOW_STORE; break; }
          if (size == 4) store<u32>(<usize>h, <u32>v); else store<i64>(<usize>h, v);
          dirty(dmap, h);
          pc += 2;
          count++;
          continue;
        }
        case 0x08: // c.addi (c.nop)
          setXr(s, rdc, X(s, rdc) + imm6);
          pc += 2;
          count++;
          continue;
        case 0x09: // c.addiw
          if (rdc == 0) { sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC; break; }
          setXr(s, rdc, sx32(X(s, rdc) + imm6));
          pc += 2;
          count++;
          continue;
        case 0x0A: // c.li
          setXr(s, rdc, imm6);
          pc += 2;
          count++;
          continue;
        case 0x0B: { // c.addi16sp / c.lui
          if (rdc == 2) {
            const imm = (<i32>(c << 19) >> 22 & ~0x1FF) | <i32>((c >>> 2) & 0x10) | <i32>((c << 1) & 0x40) |
              <i32>((c << 4) & 0x180) | <i32>((c << 3) & 0x20);
            if (imm == 0) { sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC; break; }
            setXr(s, 2, X(s, 2) + <i64>imm);
          } else {
            if (imm6 == 0) { sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC; break; }
            setXr(s, rdc, imm6 << 12);
          }
          pc += 2;
          count++;
          continue;
        }
        case 0x0C: { // misc ALU
          const a = X(s, rs1p);
          const f2 = (c >>> 10) & 3;
          let v: i64 = 0;
          if (f2 == 0) v = a >>> (imm6 & 63);
          else if (f2 == 1) v = a >> (imm6 & 63);
          else if (f2 == 2) v = a & imm6;
          else {
            const b = X(s, rdp);
            switch (((c >>> 10) & 4) | ((c >>> 5) & 3)) {
              case 0: v = a - b; break;
              case 1: v = a ^ b; break;
              case 2: v = a | b; break;
              case 3: v = a & b; break;
              case 4: v = sx32(a - b); break;
              case 5: v = sx32(a + b); break;
              default: sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC; break;
            }
            if (slow != 0) break;
          }
          setXr(s, rs1p, v);
          pc += 2;
          count++;
          continue;
        }
        case 0x0D: // c.j
          pc += <i64>((<i32>(c << 19) >> 20 & ~0x7FF) | <i32>((c >>> 7) & 0x10) | <i32>((c >>> 1) & 0x300) |
            <i32>((c << 2) & 0x400) | <i32>((c >>> 1) & 0x40) | <i32>((c << 1) & 0x80) |
            <i32>((c >>> 2) & 0xE) | <i32>((c << 3) & 0x20));
          count++;
          if (--tick == 0) { slow = SLOW_HOT; break; }
          continue;
        case 0x0E: case 0x0F: { // c.beqz, c.bnez
          count++;
          if ((X(s, rs1p) == 0) == ((c >>> 13) == 6)) {
            pc += <i64>((<i32>(c << 19) >> 23 & ~0xFF) | <i32>((c >>> 7) & 0x18) | <i32>((c << 1) & 0xC0) |
              <i32>((c >>> 2) & 6) | <i32>((c << 3) & 0x20));
            if (--tick == 0) { slow = SLOW_HOT; break; }
          } else pc += 2;
          continue;
        }
        case 0x10: // c.slli
          setXr(s, rdc, X(s, rdc) << (imm6 & 63));
          pc += 2;
          count++;
          continue;
        case 0x11: case 0x13: case 0x12: { // c.fldsp, c.ldsp, c.lwsp
          const f = c >>> 13;
          if ((f == 1 && fsOff()) || (f != 1 && rdc == 0)) { sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC; break; }
          const imm = f == 2 ? ((c >>> 7) & 0x20) | ((c >>> 2) & 0x1C) | ((c << 4) & 0xC0)
            : ((c >>> 7) & 0x20) | ((c >>> 2) & 0x18) | ((c << 4) & 0x1C0);
          const va = X(s, 2) + <i64>imm;
          const size = f == 2 ? 4 : 8;
          const h = tlb(rT, va, <i64>(size - 1), gen);
          if (h < 0) { sVa = va; sInfo = info(size, 0, rdc, 1, f == 1 ? 1 : 0); sLen = 2; slow = SLOW_LOAD; break; }
          if (f == 1) { store<i64>(s + HART_F + (<usize>rdc << 3), load<i64>(<usize>h)); dirtyFS(); }
          else setXr(s, rdc, size == 4 ? <i64>load<i32>(<usize>h) : load<i64>(<usize>h));
          pc += 2;
          count++;
          continue;
        }
        case 0x14: { // c.jr, c.mv, c.ebreak, c.jalr, c.add
          if ((c & 0x1000) == 0) {
            if (rs2c == 0) {
              if (rdc == 0) { sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC; break; }
              pc = X(s, rdc) & ~1;
              count++;
              if (--tick == 0) { slow = SLOW_HOT; break; }
              continue;
            }
            setXr(s, rdc, X(s, rs2c));
          } else if (rs2c == 0) {
            if (rdc == 0) { sCause = CAUSE_BREAKPOINT; sTval = pc; slow = SLOW_EXC; break; }
            const t = X(s, rdc) & ~1;
            setXr(s, 1, pc + 2);
            pc = t;
            count++;
            if (--tick == 0) { slow = SLOW_HOT; break; }
            continue;
          } else {
            setXr(s, rdc, X(s, rdc) + X(s, rs2c));
          }
          pc += 2;
          count++;
          continue;
        }
        case 0x15: case 0x16: case 0x17: { // c.fsdsp, c.swsp, c.sdsp
          const f = c >>> 13;
          if (f == 5 && fsOff()) { sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC; break; }
          const imm = f == 6 ? ((c >>> 7) & 0x3C) | ((c >>> 1) & 0xC0) : ((c >>> 7) & 0x38) | ((c >>> 1) & 0x1C0);
          const va = X(s, 2) + <i64>imm;
          const v = f == 5 ? load<i64>(s + HART_F + (<usize>rs2c << 3)) : X(s, rs2c);
          const size = f == 6 ? 4 : 8;
          const h = tlb(wT, va, <i64>(size - 1), gen);
          if (h < 0) { sVa = va; sVal = v; sInfo = info(size, 1, 0, 0, f == 5 ? 1 : 0); sLen = 2; slow = SLOW_STORE; break; }
          if (size == 4) store<u32>(<usize>h, <u32>v); else store<i64>(<usize>h, v);
          dirty(dmap, h);
          pc += 2;
          count++;
          continue;
        }
        default: // c.0x04 is reserved
          sCause = CAUSE_ILLEGAL; sTval = c; slow = SLOW_EXC;
          break;
      }
      break;
    }

    // The outer loop: finish the instruction the inner loop left, with whatever calls it needs.
    switch (slow) {
      case 0: break; // budget reached
      case SLOW_FETCH: {
        if ((pc & ~0xFFF) != fpage) {
          setPC(pc);
          const h = fetchHost(pc);
          if (h < 0) { limit--; pc = except(pc, excCause, excTval); break; }
          fpage = pc & ~0xFFF;
          fadd = (h - (pc & 0xFFF)) - fpage;
          jitLook = jmap != 0;
        }
        if ((pc & 0xFFF) == 0xFFE) {
          let i = <u32>load<u16>(<usize>(pc + fadd));
          if ((i & 3) == 3) {
            setPC(pc);
            const h2 = fetchHost(pc + 2);
            if (h2 < 0) { limit--; pc = except(pc, excCause, excTval); break; }
            i |= <u32>load<u16>(<usize>h2) << 16;
          }
          pendPc = pc;
          pendInsn = i;
        }
        break;
      }
      case SLOW_LOAD: {
        const v = loadSlow(sVa, <i32>(sInfo & 0xFF));
        if (excCause >= 0) { limit--; pc = memFault(pc, sInfo, sLen); break; }
        writeLoaded(s, sInfo, v);
        pc += sLen;
        count++;
        break;
      }
      case SLOW_STORE: {
        storeSlow(sVa, sVal, <i32>(sInfo & 0xFF));
        if (excCause >= 0) {
          if (excCause == EXC_WATCH) count++;
          store<i64>(s + HART_EXIT_DATA, sVal);
          limit--; pc = memFault(pc, sInfo, sLen);
          break;
        }
        pc += sLen;
        count++;
        break;
      }
      case SLOW_EXC:
        limit--; pc = except(pc, sCause, sTval);
        break;
      case SLOW_SYSTEM: {
        setPC(pc);
        setCount(count + 1);
        const f3 = (sInsn >>> 12) & 7;
        if (f3 == 0) {
          const npc = system(sInsn, pc);
          if (excCause >= 0) { limit--; pc = except(pc, excCause, excTval); break; }
          pc = npc;
        } else if (f3 == 4) {
          limit--; pc = except(pc, CAUSE_ILLEGAL, sInsn);
          break;
        } else {
          csrInsn(sInsn);
          if (excCause >= 0) { limit--; pc = except(pc, excCause, excTval); break; }
          pc += 4;
        }
        count++;
        break;
      }
      case SLOW_AMO: case SLOW_FP:
        if (slow == SLOW_AMO) amo(sInsn);
        else if (fsOff()) raise(CAUSE_ILLEGAL, sInsn);
        else fpInsn(sInsn);
        if (excCause >= 0) { limit--; pc = except(pc, excCause, excTval); break; }
        pc += 4;
        count++;
        break;
      case SLOW_MARKER:
        setExit(EXIT_MARKER);
        pc += 4;
        count++;
        break;
      case SLOW_HOT:
        tick = jitTick;
        jitLook = true;
        break;
      case SLOW_FENCEI:
        jitFenceI();
        pc += 4;
        count++;
        break;
    }
    // Translated code (src/hart/jit): run it while there is some for pc on the fetch page. It
    // reads and writes registers in the state block and leaves the next pc there.
    if (jitLook) {
      jitLook = false;
      while (count < limit && <u64>(pc - fpage) < 0xFFE) {
        const h = <u32>(pc + fadd);
        const e = jitSlot(h);
        if (load<u32>(e) != h) {
          if (!hotBump(h)) break;
          jitTranslate(h);
          if (load<u32>(e) != h) break;
        }
        store<i64>(s + HART_PC, pc); // where the stub (which retires nothing) leaves pc
        let n = call_indirect<i64>(load<u32>(e, 4), s, pc & ~0xFFF, load<i32>(e, 8), limit - count, rT, wT, gen, <i64>0, xT);
        // Chaining (codegen.ts): translated code that ended in an ordinary jump to other
        // translated code leaves that code's map slot here; call it at once, with the count so
        // far, until one leaves no slot, the budget is spent or something needs the outer loop.
        let next = load<u32>(s + HART_JIT_NEXT);
        if (next != 0) {
          let chains: i64 = 0;
          do {
            store<u32>(s + HART_JIT_NEXT, 0);
            chains++;
            n = call_indirect<i64>(load<u32>(next, 4), s, load<i64>(s + HART_PC) & ~0xFFF, load<i32>(next, 8), limit - count, rT, wT, gen, n, xT);
            next = load<u32>(s + HART_JIT_NEXT);
          } while (next != 0 && !attn);
          store<u32>(s + HART_JIT_NEXT, 0);
          store<i64>(s + HART_STAT_JIT_CHAINS, load<i64>(s + HART_STAT_JIT_CHAINS) + chains);
        }
        const npc = load<i64>(s + HART_PC);
        if (n == 0) {
          // Nothing retired and pc where it was: the first instruction needs the interpreter (a
          // slow access, or an address the translator left to it).
          if (npc == pc) break;
          // A trap taken at the first instruction (under --virt bt the VMM reflects one into the
          // guest from translated code): it spends budget, as the interpreter's traps do.
          limit--;
        }
        store<i64>(s + HART_STAT_JIT_RUNS, load<i64>(s + HART_STAT_JIT_RUNS) + 1);
        store<i64>(s + HART_STAT_JIT_INSNS, load<i64>(s + HART_STAT_JIT_INSNS) + n);
        count += n;
        pc = npc;
        pendPc = -1;
        // A call from translated code changed what this loop holds (under --virt bt the VMM's
        // emulation can switch the shadow root): the outer loop reloads it first.
        if (attn) break;
      }
    }
  }
  store<i64>(s + HART_PC, pc);
  store<i64>(s + HART_INSTRET, gBase + count);
  return result;
}

// Finish an MMIO access that run() left for the host: write the loaded value (for loads) and
// step past the instruction.
// Write a loaded value to the destination an access description names (see info()): extended
// to 64 bits as the load instruction says, NaN-boxed for flw.
function writeLoaded(s: usize, inf: i64, value: i64): void {
  const size = <i32>(inf & 0xFF);
  const rd = <u32>((inf >>> 16) & 31);
  let v = value;
  if (size < 8) {
    const sh = 64 - 8 * size;
    v = ((inf >>> 24) & 1) != 0 ? (v << sh) >> sh : (v << sh) >>> sh;
  }
  if (((inf >>> 25) & 1) != 0) {
    store<i64>(s + HART_F + (<usize>rd << 3), size == 4 ? v | NAN_BOX : v);
    dirtyFS();
  } else setXr(s + HART_X, rd, v);
}

export function mmioDone(state: usize, value: i64): void {
  S = state;
  const inf = load<i64>(state + HART_EXIT_INFO);
  if (((inf >>> 8) & 1) == 0) writeLoaded(state, inf, value);
  store<i64>(state + HART_PC, load<i64>(state + HART_PC) + ((inf >>> 28) & 0xF));
  store<i64>(state + HART_INSTRET, load<i64>(state + HART_INSTRET) + 1);
}

// Raise an exception at the current pc on behalf of the host (for example an access fault for an
// MMIO address with no device behind it). Returns the exit code if the trap itself exits.
export function hostTrap(state: usize, cause: i64, tval: i64): i32 {
  S = state;
  setExit(-1);
  setPC(load<i64>(state + HART_PC));
  takeTrap(cause, tval);
  store<i64>(state + HART_PC, gPC);
  return gExit;
}
