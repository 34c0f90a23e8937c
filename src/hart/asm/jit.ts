// The interpreter's side of the translator (src/hart/jit): finding translated code for a pc,
// counting how hot untranslated code is, and the slow paths that translated code calls.
//
// Ownership: the map and the hotness table belong to one wasm instance (one physical CPU's
// thread); only that thread's run() and its translator (through the `jit` imports, on the same
// thread) touch them. The dirty map is machine-wide: every thread's stores set bytes in it, and
// the translators clear them with atomics (see src/hart/jit/cache.ts).
import {
  HART_JIT_FAIL, HART_STAT_MMIO, HART_MSTATUS, HART_FCSR, JIT_MAP_ENTRIES, JIT_MAP_ENTRY_BYTES, JIT_HOT_ENTRIES, JIT_HOT_ENTRY_BYTES,
  JIT_HOT_THRESHOLD, JIT_TICK,
} from "../layout";
import { S, excCause, clearExc, EXC_MMIO, MS_FS } from "./state";
import { fpInsn } from "./fexec";
import * as fpu from "./fpu";
import { loadSlow, storeSlow } from "./mmu";

// Asks this thread's translator to translate the code at machine address `host`. It installs
// what it made in the map (or marks the address as not worth trying again) before returning.
@external("jit", "translate") export declare function jitTranslate(host: u32): void;
// The hart executed fence.i: the translator drops translations of frames whose contents changed.
@external("jit", "fenceI") export declare function jitFenceI(): void;

export let jitMap: usize = 0; // 0: this instance has no translator
// Set by the host for a run of a vCPU that has been idle: run() then neither calls translated
// code nor counts hotness (fence.i still reaches the translator). An idle guest's code runs
// once per timer tick with the caches cold, where translated code costs more than the
// interpreter (docs/binary-translation.md).
export let jitQuiet: bool = false;
export function jitSetQuiet(quiet: bool): void { jitQuiet = quiet; }
export let jitHot: usize = 0;
// Samples before code is translated, and taken branches between the interpreter's looks for
// translated code, set by the translator (cache.ts): JIT_HOT_THRESHOLD and JIT_TICK, a lower
// threshold in the translator's own tests (whose programs are short), or 1 and 1 in eager mode
// (--jit eager: everything is translated the first time it runs, which tests use to run nearly
// all code translated).
export let jitThreshold: i32 = JIT_HOT_THRESHOLD;
export let jitTick: i32 = JIT_TICK;
export function jitSetHotness(threshold: i32, tick: i32): void {
  jitThreshold = threshold;
  jitTick = tick;
}
// One byte per machine frame: CODE_TRANSLATED once a translator has translated code in it,
// CODE_WRITTEN added by the first store after that. `codeFlag`: a u32 set to 1 by such a store,
// so that a translator can tell in one load whether any translated frame has been written.
export let dirtyMap: usize = 0; // 0: no translator anywhere on this machine memory
export let codeFlag: usize = 0;
export const CODE_TRANSLATED: u8 = 1;
export const CODE_WRITTEN: u8 = 2;

// Called once per instance by the host (every instance of a machine gets the same dirty map).
export function jitSetup(map: usize, hot: usize, dirty: usize, flag: usize): void {
  jitMap = map;
  jitHot = hot;
  dirtyMap = dirty;
  codeFlag = flag;
}

@inline export function jitSlot(h: u32): usize {
  return jitMap + (<usize>((h >>> 1) ^ (h >>> 19)) & (JIT_MAP_ENTRIES - 1)) * JIT_MAP_ENTRY_BYTES;
}

// One more sample of the code at `h`; true once it is hot enough to translate.
export function hotBump(h: u32): bool {
  const e = jitHot + (<usize>((h >>> 1) ^ (h >>> 15)) & (JIT_HOT_ENTRIES - 1)) * JIT_HOT_ENTRY_BYTES;
  if (load<u32>(e) != h) {
    store<u32>(e, h);
    store<i32>(e, 1, 4);
    return jitThreshold <= 1;
  }
  const c = load<i32>(e, 4) + 1;
  store<i32>(e, c, 4);
  return c >= jitThreshold;
}

// A store reached frame h >>> 12: if the frame holds translated code not yet marked written,
// mark it. Only a load on the common path, so that threads storing to frames whose bytes share a
// cache line do not take that line from each other on every store.
@inline export function markDirty(h: i64): void {
  const d = dirtyMap;
  if (d != 0) {
    const a = d + (<usize>h >>> 12);
    if (load<u8>(a) == CODE_TRANSLATED) codeWritten(a);
  }
}

export function codeWritten(a: usize): void {
  store<u8>(a, CODE_TRANSLATED | CODE_WRITTEN);
  atomic.store<u32>(codeFlag, 1);
}

// The slow path of a load in translated code (a TLB miss, a misaligned or MMIO access). When the
// access cannot complete here it sets HART_JIT_FAIL and raises nothing: the translated code
// leaves at that instruction and the interpreter executes it, taking the trap or the exit.
export function jitLoad(va: i64, size: i32): i64 {
  const v = loadSlow(va, size);
  if (excCause >= 0) {
    if (excCause == EXC_MMIO) store<i64>(S + HART_STAT_MMIO, load<i64>(S + HART_STAT_MMIO) - 1); // counted again by the interpreter
    clearExc();
    store<i64>(S + HART_JIT_FAIL, 1);
    return 0;
  }
  return v;
}

// The same for a store; returns nonzero when the translated code must leave. A store that hit
// the watched address has been done; the interpreter does it again and then exits.
export function jitStore(va: i64, v: i64, size: i32): i32 {
  storeSlow(va, v, size);
  if (excCause >= 0) {
    if (excCause == EXC_MMIO) store<i64>(S + HART_STAT_MMIO, load<i64>(S + HART_STAT_MMIO) - 1);
    clearExc();
    return 1;
  }
  return 0;
}

// A floating-point computation in translated code (fexec.ts does it on the state block; the
// translated code stores an integer source register there first and reloads a destination).
// Returns nonzero, having changed nothing, when the instruction traps (the FP unit is off, a
// reserved rounding mode, an illegal encoding): the translated code leaves at it and the
// interpreter executes it, taking the trap.
export function jitFp(insn: u32): i32 {
  if ((load<i64>(S + HART_MSTATUS) & MS_FS) == 0) return 1;
  fpInsn(insn); // checks every operand field before it writes anything
  if (excCause >= 0) {
    clearExc();
    return 1;
  }
  return 0;
}

// The round-to-nearest fast paths of the common double-precision operations (fpu.ts), for
// translated code that has checked the rounding mode: the result, with its flags accumulated
// in fcsr, or F64_FAST_MISS, having changed nothing (the caller then uses jitFp).
@inline function flagged(r: u64): u64 {
  if (r != fpu.F64_FAST_MISS && fpu.fpFlags != 0) store<i64>(S + HART_FCSR, load<i64>(S + HART_FCSR) | <i64>fpu.fpFlags);
  return r;
}
export function jitAddD(a: u64, b: u64): u64 { fpu.fpFlags = 0; return flagged(fpu.f64_add_rne(a, b)); }
export function jitMulD(a: u64, b: u64): u64 { fpu.fpFlags = 0; return flagged(fpu.f64_mul_rne(a, b)); }
export function jitFmaD(a: u64, b: u64, c: u64): u64 { fpu.fpFlags = 0; return flagged(fpu.f64_fma_rne(a, b, c)); }
