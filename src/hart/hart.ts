// The TypeScript face of the wasm hart: loads the module once, binds a state block in machine
// memory, and exposes the architectural state through typed views.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as L from "./layout.js";
import type { MachineMemory } from "../machine/memory.js";
import { Jit, type JitExports, type JitOptions } from "./jit/cache.js";
import { tuneEngine } from "./engine.js";

export interface CodeTrack {
  flag: number;
  genEpoch: number;
  gen: number;
  dirty: number;
}

// The hart's exports: the run loop and its helpers, and the translator's side (jit/cache.ts).
export interface HartExports extends JitExports {
  reset(state: number, hartid: bigint): void;
  run(state: number, budget: bigint): number;
  mmioDone(state: number, value: bigint): void;
  hostTrap(state: number, cause: bigint, tval: bigint): number;
  flushTlb(state: number): void;
  pendingIrq(state: number): bigint;
  jitSetQuiet(quiet: number): void;
}

export const Exit = {
  Budget: L.EXIT_BUDGET,
  Wfi: L.EXIT_WFI,
  Trap: L.EXIT_TRAP,
  Mmio: L.EXIT_MMIO,
  Watch: L.EXIT_WATCH,
  Marker: L.EXIT_MARKER,
} as const;

let compiled: WebAssembly.Module | undefined;

export function hartModule(): WebAssembly.Module {
  if (!compiled) {
    tuneEngine();
    const path = fileURLToPath(new URL("../../../build/hart.wasm", import.meta.url));
    compiled = new WebAssembly.Module(readFileSync(path));
  }
  return compiled;
}

// One wasm instance per thread and machine memory; it can run any hart in that memory. With
// `jitRegion` (JIT_REGION_BYTES of machine memory this thread owns), the instance translates hot
// code (src/hart/jit); without, it only interprets, but its stores still mark the machine's
// dirty map, since other threads' translators rely on it.
export function instantiateHart(mem: MachineMemory, jitRegion?: number, jitOpts?: JitOptions): HartExports {
  return instantiateOn(hartModule(), mem.memory, mem.codeTrack, jitRegion, jitOpts).wasm;
}

// The same for a thread that has only the memory and the module (a physical-CPU worker).
export function instantiateOn(module: WebAssembly.Module, memory: WebAssembly.Memory, track: CodeTrack, jitRegion?: number, jitOpts?: JitOptions): { wasm: HartExports; jit?: Jit } {
  let jit: Jit | undefined;
  const inst = new WebAssembly.Instance(module, { env: { memory }, jit: Jit.imports(() => jit) });
  const wasm = inst.exports as unknown as HartExports;
  if (jitRegion !== undefined) jit = new Jit(memory, wasm, track, jitRegion, jitOpts);
  else wasm.jitSetup(0, 0, track.dirty, track.flag);
  jits.set(wasm, jit);
  return { wasm, jit };
}

const jits = new WeakMap<object, Jit | undefined>();

// The translation cache of an instance made by instantiateHart, if it has one.
export function jitOf(wasm: object): Jit | undefined {
  return jits.get(wasm);
}

export interface MmioAccess {
  addr: bigint; // physical
  va: bigint; // virtual (the access fault's tval if nothing decodes addr)
  size: number;
  isStore: boolean;
  value: bigint; // store data
}

export type HartCounter = "cycle" | "instret";
const COUNTER_SLOT: Record<HartCounter, number> = { cycle: L.HART_CYCLE_DELTA, instret: L.HART_INSTRET_DELTA };
const COUNTER_INHIBIT: Record<HartCounter, bigint> = { cycle: 1n << 0n, instret: 1n << 2n };

export class Hart {
  private regs: BigInt64Array;

  constructor(readonly mem: MachineMemory, readonly wasm: HartExports, readonly base: number, readonly id: number) {
    this.regs = new BigInt64Array(mem.buffer, base, L.HART_STATE_BYTES / 8);
    wasm.reset(base, BigInt(id));
  }

  private field(off: number): bigint { return this.regs[off / 8]!; }
  private setField(off: number, v: bigint): void { this.regs[off / 8] = v; }

  run(budget: number): number { return this.wasm.run(this.base, BigInt(budget)); }

  get pc(): bigint { return BigInt.asUintN(64, this.field(L.HART_PC)); }
  set pc(v: bigint) { this.setField(L.HART_PC, BigInt.asIntN(64, v)); }
  get priv(): number { return Number(this.field(L.HART_PRIV)); }
  set priv(v: number) { this.setField(L.HART_PRIV, BigInt(v)); }
  x(i: number): bigint { return this.regs[i]!; }
  setX(i: number, v: bigint): void { if (i !== 0) this.regs[i] = BigInt.asIntN(64, v); }
  f(i: number): bigint { return this.regs[32 + i]!; }
  // The hart's own count of retired instructions (time, budgets, markers, statistics). The
  // guest's minstret is counter("instret"): the guest may write and stop that one.
  get instret(): bigint { return this.field(L.HART_INSTRET); }

  // mcycle and minstret as the instruction at pc will read them, and their mcountinhibit bits
  // (privileged spec 3.1.11, 3.1.13): the host-side twin of the hart's CSR code (csr.ts), for
  // firmware that programs the counters while the hart is stopped.
  counter(c: HartCounter): bigint {
    const slot = this.field(COUNTER_SLOT[c]);
    return BigInt.asUintN(64, this.counterStopped(c) ? slot : this.instret + slot);
  }

  setCounter(c: HartCounter, v: bigint): void {
    this.setField(COUNTER_SLOT[c], BigInt.asIntN(64, this.counterStopped(c) ? v : v - this.instret));
  }

  counterStopped(c: HartCounter): boolean {
    return (this.field(L.HART_MCOUNTINHIBIT) & COUNTER_INHIBIT[c]) !== 0n;
  }

  // Stopping or restarting a counter keeps the value it reads.
  stopCounter(c: HartCounter, stop: boolean): void {
    if (this.counterStopped(c) === stop) return;
    const v = this.counter(c);
    const inhibit = this.field(L.HART_MCOUNTINHIBIT);
    this.setField(L.HART_MCOUNTINHIBIT, stop ? inhibit | COUNTER_INHIBIT[c] : inhibit & ~COUNTER_INHIBIT[c]);
    this.setCounter(c, v);
  }
  // The time CSR now: it runs on from the last setClock() at num/den ticks per instruction.
  get time(): bigint {
    const den = this.field(L.HART_TIME_DEN);
    if (den <= 0n) return this.field(L.HART_TIME);
    const ticks = ((this.instret - this.field(L.HART_TIME_INSTRET)) * this.field(L.HART_TIME_NUM)) / den;
    return this.field(L.HART_TIME) + (ticks > 0n ? ticks : 0n);
  }

  setClock(time: bigint, atInstret: bigint, num: bigint, den: bigint): void {
    this.setField(L.HART_TIME, time);
    this.setField(L.HART_TIME_INSTRET, atInstret);
    this.setField(L.HART_TIME_NUM, num);
    this.setField(L.HART_TIME_DEN, den);
  }
  get mip(): bigint { return this.field(L.HART_MIP); }
  set mip(v: bigint) { this.setField(L.HART_MIP, v); }
  get mie(): bigint { return this.field(L.HART_MIE); }
  get waiting(): boolean { return this.field(L.HART_WFI) !== 0n; }
  csr(off: number): bigint { return this.field(off); }
  setCsr(off: number, v: bigint): void { this.setField(off, v); }

  setRam(guestBase: bigint, size: number, hostOffset: number): void {
    this.setField(L.HART_RAM_BASE, guestBase);
    this.setField(L.HART_RAM_SIZE, BigInt(size));
    this.setField(L.HART_RAM_HOST, BigInt(hostOffset));
    this.wasm.flushTlb(this.base);
  }

  setWatch(addr: bigint | undefined): void {
    this.setField(L.HART_WATCH, addr === undefined ? -1n : addr);
    this.wasm.flushTlb(this.base);
  }

  setFlags(flags: number): void { this.setField(L.HART_FLAGS, BigInt(flags)); }
  addFlags(flags: number): void { this.setField(L.HART_FLAGS, this.field(L.HART_FLAGS) | BigInt(flags)); }

  // The MMIO access that the last EXIT_MMIO describes.
  mmio(): MmioAccess {
    const info = Number(this.field(L.HART_EXIT_INFO) & 0xffffffffn);
    return {
      addr: BigInt.asUintN(64, this.field(L.HART_EXIT_ADDR)),
      va: BigInt.asUintN(64, this.field(L.HART_EXIT_TVAL)),
      size: info & 0xff,
      isStore: ((info >> 8) & 1) === 1,
      value: BigInt.asUintN(64, this.field(L.HART_EXIT_DATA)),
    };
  }

  mmioDone(value = 0n): void { this.wasm.mmioDone(this.base, BigInt.asIntN(64, value)); }

  trap(cause: bigint, tval: bigint): number { return this.wasm.hostTrap(this.base, cause, BigInt.asIntN(64, tval)); }

  get exitCause(): bigint { return BigInt.asUintN(64, this.field(L.HART_EXIT_CAUSE)); }
  get exitTval(): bigint { return BigInt.asUintN(64, this.field(L.HART_EXIT_TVAL)); }

  stats(): Record<string, number> {
    return {
      tlbMisses: Number(this.field(L.HART_STAT_TLB_MISS)),
      pageWalks: Number(this.field(L.HART_STAT_WALK)),
      l2TlbHits: Number(this.field(L.HART_STAT_L2_HIT)),
      traps: Number(this.field(L.HART_STAT_TRAP)),
      interrupts: Number(this.field(L.HART_STAT_IRQ)),
      mmioExits: Number(this.field(L.HART_STAT_MMIO)),
      tlbFlushes: Number(this.field(L.HART_STAT_FLUSH)),
      sfences: Number(this.field(L.HART_STAT_SFENCE)),
      satpWrites: Number(this.field(L.HART_STAT_SATP)),
      translatedRuns: Number(this.field(L.HART_STAT_JIT_RUNS)),
      translatedInsns: Number(this.field(L.HART_STAT_JIT_INSNS)),
      translatedChains: Number(this.field(L.HART_STAT_JIT_CHAINS)),
    };
  }
}
