// A bare machine for test programs: one hart in M-mode with real M-mode traps, RAM at
// 0x8000_0000, a CLINT and HTIF. Time is virtual and deterministic: mtime advances one tick per
// TICK_INSTRUCTIONS retired, and jumps ahead to the next timer event while the hart sleeps in WFI.
import { MachineMemory } from "../machine/memory.js";
import { Hart, Exit, instantiateHart, jitOf } from "../hart/hart.js";
import type { Jit } from "../hart/jit/cache.js";
import * as L from "../hart/layout.js";
import { JIT_REGION_BYTES } from "../hart/jit/cache.js";
import { parseElf, loadElf } from "./elf.js";
import { ContiguousRam } from "../vmm/guest-memory.js";
import { Clint, CLINT_BASE, CLINT_SIZE } from "../devices/clint.js";
import { Htif } from "../devices/htif.js";
import { Bus } from "../devices/bus.js";
import { UserError } from "../errors.js";

export const RAM_BASE = 0x8000_0000n;
const TICK_INSTRUCTIONS = 10;
const SLICE = 1_000_000;
const MIP_MSIP = 1n << 3n;
const MIP_MTIP = 1n << 7n;

export interface BareOptions {
  memBytes?: number;
  maxInstructions?: number;
  out?: (bytes: Uint8Array) => void;
  markers?: boolean; // record each marker instruction (slti x0, x0, 0x7a5)
  jit?: boolean | "eager"; // translate hot code (src/hart/jit; default on), or all code (eager)
  jitThreshold?: number; // samples before hot code is translated (tests of the translator lower it)
}

export interface BareMarker {
  instret: bigint;
  seconds: number;
}

export interface BareResult {
  exitCode: number;
  instructions: bigint;
  seconds: number;
  stats: Record<string, number>;
}

export class BareMachine {
  readonly mem: MachineMemory;
  readonly hart: Hart;
  readonly ram: Uint8Array;
  readonly ramOffset: number;
  private readonly clint: Clint;
  private readonly bus = new Bus();
  private htif: Htif | undefined;
  private timeBias = 0n; // ticks added by WFI skips and mtime writes
  readonly markers: BareMarker[] = [];
  readonly jit: Jit | undefined; // the hart's translation cache (undefined with jit off)

  constructor(private readonly opts: BareOptions = {}) {
    const memBytes = opts.memBytes ?? 64 << 20;
    this.mem = new MachineMemory(memBytes + L.HART_STATE_BYTES + JIT_REGION_BYTES + (2 << 20));
    const jit = opts.jit ?? true;
    const wasm = instantiateHart(this.mem, jit !== false ? this.mem.allocHost(JIT_REGION_BYTES / 4096) : undefined, { eager: jit === "eager", threshold: opts.jitThreshold });
    this.jit = jitOf(wasm);
    const hartBase = this.mem.allocContiguous(L.HART_STATE_BYTES / 4096);
    this.ramOffset = this.mem.allocContiguous(memBytes / 4096, 16);
    this.ram = this.mem.bytesAt(this.ramOffset, memBytes);
    this.hart = new Hart(this.mem, wasm, hartBase, 0);
    this.hart.setRam(RAM_BASE, memBytes, this.ramOffset);
    if (opts.markers) this.hart.setFlags(L.FLAG_MARKERS);
    this.clint = new Clint(() => this.mtime(), (t) => { this.timeBias += t - this.mtime(); });
    this.bus.map(CLINT_BASE, CLINT_SIZE, this.clint);
  }

  mtime(): bigint {
    return this.hart.instret / BigInt(TICK_INSTRUCTIONS) + this.timeBias;
  }

  load(image: Uint8Array, name: string): void {
    const elf = parseElf(image, name);
    loadElf(elf, new ContiguousRam(RAM_BASE, this.ram), name);
    this.mem.codeWritten(this.ramOffset, this.ram.length); // a second program must not run the first one's translations
    this.hart.pc = elf.entry;
    const tohost = elf.symbols.get("tohost");
    if (tohost !== undefined) {
      this.htif = new Htif(tohost, elf.symbols.get("fromhost"), this.memAccess(), this.opts.out ?? ((b) => process.stdout.write(b)));
      this.hart.setWatch(tohost);
    }
  }

  private ramIndex(addr: bigint, len: number): number {
    const off = addr - RAM_BASE;
    if (off < 0n || off + BigInt(len) > BigInt(this.ram.length)) {
      throw new UserError(`HTIF access at 0x${addr.toString(16)} is outside RAM`);
    }
    return Number(off);
  }

  private memAccess() {
    const view = new DataView(this.ram.buffer, this.ram.byteOffset, this.ram.byteLength);
    return {
      read64: (a: bigint) => view.getBigUint64(this.ramIndex(a, 8), true),
      write64: (a: bigint, v: bigint) => view.setBigUint64(this.ramIndex(a, 8), BigInt.asUintN(64, v), true),
      bytes: (a: bigint, len: number) => this.ram.subarray(this.ramIndex(a, len), this.ramIndex(a, len) + len),
    };
  }

  private updateInterrupts(): void {
    let mip = this.hart.mip & ~(MIP_MTIP | MIP_MSIP);
    if (this.mtime() >= this.clint.mtimecmp) mip |= MIP_MTIP;
    if (this.clint.msip) mip |= MIP_MSIP;
    this.hart.mip = mip;
    this.hart.setClock(this.timeBias, 0n, 1n, BigInt(TICK_INSTRUCTIONS));
  }

  run(): BareResult {
    if (!this.htif) throw new UserError("the program has no `tohost` symbol, so it cannot report an exit code (HTIF)");
    const max = BigInt(this.opts.maxInstructions ?? 20_000_000_000);
    const t0 = process.hrtime.bigint();
    let stalls = 0;
    for (;;) {
      this.updateInterrupts();
      let budget = SLICE;
      const left = max - this.hart.instret + 1n;
      if (left < BigInt(budget)) budget = Number(left);
      const toTimer = this.clint.mtimecmp - this.mtime();
      if (toTimer > 0n && toTimer * BigInt(TICK_INSTRUCTIONS) < BigInt(budget)) budget = Number(toTimer) * TICK_INSTRUCTIONS;
      const before = this.hart.instret;
      this.jit?.check(); // what the host wrote since the last run (a loaded program, HTIF replies)
      const code = this.hart.run(budget);
      if (this.hart.instret > max) {
        throw new UserError(`the program did not finish within ${max} instructions (pc 0x${this.hart.pc.toString(16)})`);
      }
      if (code === Exit.Budget) {
        if (this.hart.instret === before) {
          if (++stalls > 100) throw new UserError(`the hart makes no progress: it keeps trapping (pc 0x${this.hart.pc.toString(16)}, mcause ${this.hart.csr(L.HART_MCAUSE)})`);
        } else stalls = 0;
        continue;
      }
      if (code === Exit.Marker) {
        this.markers.push({ instret: this.hart.instret, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
        continue;
      }
      if (code === Exit.Watch) {
        const r = this.htif.poll();
        if (r) return this.result(r.exit, t0);
        continue;
      }
      if (code === Exit.Mmio) {
        this.bus.serve(this.hart);
        continue;
      }
      if (code === Exit.Wfi) {
        this.updateInterrupts();
        if ((this.hart.mip & this.hart.mie) !== 0n) continue;
        if (this.clint.mtimecmp === 0xffff_ffff_ffff_ffffn || (this.hart.mie & MIP_MTIP) === 0n) {
          throw new UserError(`the hart waits for an interrupt that can never come (wfi at 0x${(this.hart.pc - 4n).toString(16)})`);
        }
        this.timeBias += this.clint.mtimecmp - this.mtime();
        continue;
      }
      throw new Error(`unexpected hart exit ${code}`);
    }
  }

  private result(exitCode: number, t0: bigint): BareResult {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { exitCode, instructions: this.hart.instret, seconds, stats: this.hart.stats() };
  }
}
