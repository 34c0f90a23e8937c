// RISC-V Platform-Level Interrupt Controller, riscv-plic-spec 1.0.0 (the SiFive layout that Linux's
// irq-sifive-plic.c drives). Sources 1..ndev with level-triggered gateways; two contexts per hart,
// 2h for M-mode and 2h+1 for S-mode, as on QEMU's virt board. Each context's output (its
// external-interrupt line) is reported through onChange; the machine maps it to mip.MEIP/SEIP.
import type { AccessSize, IrqLine, MmioDevice } from "./bus.js";

export const PLIC_BASE = 0x0c00_0000n;
const PRIORITY_BASE = 0x0;
const PENDING_BASE = 0x1000;
const ENABLE_BASE = 0x2000;
const ENABLE_STRIDE = 0x80;
const CONTEXT_BASE = 0x20_0000;
const CONTEXT_STRIDE = 0x1000;
const MAX_SOURCES = 1023;
const MAX_CONTEXTS = 15872;

// Priorities and thresholds are WARL (spec "Interrupt Priorities"): 3 writable bits, as on SiFive
// parts. Linux masks a context by writing threshold 7 (PLIC_DISABLE_THRESHOLD), which only works
// if no priority can exceed 7.
export const PLIC_MAX_PRIORITY = 7;

// Window covering the context registers of every hart, for the bus mapping and the device tree.
export function plicWindowSize(harts: number): bigint {
  return BigInt(CONTEXT_BASE + CONTEXT_STRIDE * 2 * harts);
}

export interface PlicCounters {
  claims: number;
  completes: number;
  // Claims that found nothing to hand out: a sign of spurious or raced interrupts.
  emptyClaims: number;
}

const SAVE_VERSION = 1;

export class Plic implements MmioDevice {
  readonly name = "plic";
  readonly ndev: number;
  readonly contexts: number;
  readonly counters: PlicCounters = { claims: 0, completes: 0, emptyClaims: 0 };

  private readonly words: number;
  private readonly priority: Uint32Array;
  private readonly pending: Uint32Array;
  // Gateway state: a claimed source stays closed until completion (spec "Interrupt Gateways").
  private readonly inService: Uint32Array;
  private readonly level: Uint32Array;
  private readonly enable: Uint32Array;
  private readonly threshold: Uint32Array;
  private readonly output: Uint8Array;
  private readonly onChange: (ctx: number, asserted: boolean) => void;

  // `contexts` is 2 * harts on this board: context 2h is hart h's M-mode, 2h+1 its S-mode.
  constructor(ndev: number, contexts: number, onChange: (ctx: number, asserted: boolean) => void) {
    if (!Number.isInteger(ndev) || ndev < 1 || ndev > MAX_SOURCES) {
      throw new RangeError(`PLIC ndev ${ndev} outside 1..${MAX_SOURCES}`);
    }
    if (!Number.isInteger(contexts) || contexts < 1 || contexts > MAX_CONTEXTS) {
      throw new RangeError(`PLIC contexts ${contexts} outside 1..${MAX_CONTEXTS}`);
    }
    this.ndev = ndev;
    this.contexts = contexts;
    this.onChange = onChange;
    this.words = (ndev + 1 + 31) >>> 5;
    this.priority = new Uint32Array(ndev + 1);
    this.pending = new Uint32Array(this.words);
    this.inService = new Uint32Array(this.words);
    this.level = new Uint32Array(this.words);
    this.enable = new Uint32Array(this.words * this.contexts);
    this.threshold = new Uint32Array(this.contexts);
    this.output = new Uint8Array(this.contexts);
  }

  // The gateway of source `src` (1..ndev), driven by a device's level-triggered line.
  irqLine(src: number): IrqLine {
    if (!Number.isInteger(src) || src < 1 || src > this.ndev) {
      throw new RangeError(`PLIC source ${src} outside 1..${this.ndev}`);
    }
    return { set: (level: boolean) => this.setLevel(src, level) };
  }

  // True if context `ctx` currently asserts its external-interrupt output.
  asserted(ctx: number): boolean {
    return this.output[ctx] === 1;
  }

  read(offset: number, size: AccessSize): bigint {
    if (size === 8) {
      const lo = this.read32(offset);
      const hi = this.read32(offset + 4);
      return (BigInt(hi) << 32n) | BigInt(lo);
    }
    if (size === 4) return BigInt(this.read32(offset));
    // Linux only does 32-bit accesses; narrower ones see their bytes of the word.
    const word = this.read32(offset & ~3);
    return BigInt((word >>> (8 * (offset & 3))) & ((1 << (8 * size)) - 1));
  }

  write(offset: number, size: AccessSize, value: bigint): void {
    if (size === 8) {
      this.write32(offset, Number(value & 0xffff_ffffn));
      this.write32(offset + 4, Number((value >> 32n) & 0xffff_ffffn));
      return;
    }
    if (size === 4) {
      this.write32(offset, Number(value & 0xffff_ffffn));
      return;
    }
    const base = offset & ~3;
    const shift = 8 * (offset & 3);
    const mask = ((1 << (8 * size)) - 1) << shift;
    const old = this.peek32(base);
    this.write32(base, ((old & ~mask) | ((Number(value) << shift) & mask)) >>> 0);
  }

  private read32(offset: number): number {
    if ((offset & 3) !== 0) return 0;
    const ctx = this.contextOf(offset);
    if (ctx !== undefined && (offset & (CONTEXT_STRIDE - 1)) === 4) return this.claim(ctx);
    return this.peek32(offset);
  }

  // Register value without side effects (a claim read has one).
  private peek32(offset: number): number {
    if (offset < PENDING_BASE) {
      const src = (offset - PRIORITY_BASE) >>> 2;
      return src >= 1 && src <= this.ndev ? this.priority[src]! : 0;
    }
    if (offset < ENABLE_BASE) {
      const w = (offset - PENDING_BASE) >>> 2;
      return w < this.words ? this.pending[w]! : 0;
    }
    if (offset < CONTEXT_BASE) {
      const ctx = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE_BASE) % ENABLE_STRIDE) >>> 2;
      return ctx < this.contexts && w < this.words ? this.enable[ctx * this.words + w]! : 0;
    }
    const ctx = this.contextOf(offset);
    if (ctx !== undefined && (offset & (CONTEXT_STRIDE - 1)) === 0) return this.threshold[ctx]!;
    return 0;
  }

  private write32(offset: number, value: number): void {
    if ((offset & 3) !== 0) return;
    if (offset < PENDING_BASE) {
      const src = (offset - PRIORITY_BASE) >>> 2;
      if (src >= 1 && src <= this.ndev) this.priority[src] = value & PLIC_MAX_PRIORITY;
    } else if (offset < ENABLE_BASE) {
      return; // pending bits change only through gateways and claims
    } else if (offset < CONTEXT_BASE) {
      const ctx = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE_BASE) % ENABLE_STRIDE) >>> 2;
      if (ctx >= this.contexts || w >= this.words) return;
      this.enable[ctx * this.words + w] = (value & this.validMask(w)) >>> 0;
    } else {
      const ctx = this.contextOf(offset);
      if (ctx === undefined) return;
      const reg = offset & (CONTEXT_STRIDE - 1);
      if (reg === 0) this.threshold[ctx] = value & PLIC_MAX_PRIORITY;
      else if (reg === 4) this.complete(ctx, value >>> 0);
      else return;
    }
    this.update();
  }

  private contextOf(offset: number): number | undefined {
    if (offset < CONTEXT_BASE) return undefined;
    const ctx = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
    return ctx < this.contexts ? ctx : undefined;
  }

  // Bits of enable/pending word w that name real sources: source 0 does not exist (spec "Interrupt
  // Enables").
  private validMask(w: number): number {
    let mask = 0xffff_ffff;
    if (w === 0) mask &= ~1;
    const last = this.ndev - 32 * w; // highest valid bit index in this word
    if (last < 31) mask &= (2 ** (last + 1) - 1);
    return mask >>> 0;
  }

  private setLevel(src: number, level: boolean): void {
    const w = src >>> 5;
    const bit = 1 << (src & 31);
    if (level) this.level[w]! |= bit;
    else this.level[w]! &= ~bit;
    // A level-triggered gateway forwards one request and then waits for completion; a request
    // already forwarded is not withdrawn when the level drops (spec "Interrupt Gateways").
    if (level && (this.inService[w]! & bit) === 0 && (this.pending[w]! & bit) === 0) {
      this.pending[w]! |= bit;
      this.update();
    }
  }

  // Highest-priority pending source enabled for ctx with priority above `floor`; ties go to the
  // lowest ID (spec "Interrupt Identifiers"). 0 when there is none. Priority 0 never interrupts.
  private best(ctx: number, floor: number): number {
    let bestSrc = 0;
    let bestPrio = floor;
    const en = ctx * this.words;
    for (let w = 0; w < this.words; w++) {
      let bits = this.pending[w]! & this.enable[en + w]!;
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const src = 32 * w + b;
        const p = this.priority[src]!;
        if (p > bestPrio) {
          bestPrio = p;
          bestSrc = src;
        }
      }
    }
    return bestSrc;
  }

  // The threshold gates only the notification: "the claim operation is not affected by the setting
  // of the priority threshold register" (spec "Interrupt Claim Process").
  private claim(ctx: number): number {
    const src = this.best(ctx, 0);
    this.counters.claims++;
    if (src === 0) {
      this.counters.emptyClaims++;
      return 0;
    }
    const w = src >>> 5;
    const bit = 1 << (src & 31);
    this.pending[w]! &= ~bit;
    this.inService[w]! |= bit;
    this.update();
    return src;
  }

  // A completion for a source not enabled for this context is silently ignored (spec "Interrupt
  // Completion"); Linux relies on this, enabling a masked source around its completion write.
  private complete(ctx: number, src: number): void {
    if (src < 1 || src > this.ndev) return;
    const w = src >>> 5;
    const bit = 1 << (src & 31);
    if ((this.enable[ctx * this.words + w]! & bit) === 0) return;
    this.counters.completes++;
    this.inService[w]! &= ~bit;
    if ((this.level[w]! & bit) !== 0) this.pending[w]! |= bit;
  }

  // EIP: some enabled pending source has a priority above the context's threshold.
  private notify(ctx: number): boolean {
    return this.best(ctx, this.threshold[ctx]!) !== 0;
  }

  private update(): void {
    for (let ctx = 0; ctx < this.contexts; ctx++) {
      const now = this.notify(ctx) ? 1 : 0;
      if (now !== this.output[ctx]) {
        this.output[ctx] = now;
        this.onChange(ctx, now === 1);
      }
    }
  }

  save(): Uint8Array {
    const parts = [this.priority, this.pending, this.inService, this.level, this.enable, this.threshold];
    const size = 12 + parts.reduce((n, p) => n + p.byteLength, 0);
    const out = new Uint8Array(size);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, SAVE_VERSION, true);
    dv.setUint32(4, this.ndev, true);
    dv.setUint32(8, this.contexts, true);
    let at = 12;
    for (const p of parts) {
      for (let i = 0; i < p.length; i++, at += 4) dv.setUint32(at, p[i]!, true);
    }
    return out;
  }

  // Restores every register and gateway, then reports each context's output through onChange
  // (all of them, since the receiver's own state may or may not have been restored yet).
  restore(b: Uint8Array): void {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (b.byteLength < 12 || dv.getUint32(0, true) !== SAVE_VERSION) throw new Error("PLIC state: unknown format");
    if (dv.getUint32(4, true) !== this.ndev || dv.getUint32(8, true) !== this.contexts) {
      throw new Error(`PLIC state is for ndev ${dv.getUint32(4, true)} and ${dv.getUint32(8, true)} contexts`);
    }
    const parts = [this.priority, this.pending, this.inService, this.level, this.enable, this.threshold];
    const size = 12 + parts.reduce((n, p) => n + p.byteLength, 0);
    if (b.byteLength !== size) throw new Error(`PLIC state has ${b.byteLength} bytes, expected ${size}`);
    let at = 12;
    for (const p of parts) {
      for (let i = 0; i < p.length; i++, at += 4) p[i] = dv.getUint32(at, true);
    }
    for (let ctx = 0; ctx < this.contexts; ctx++) {
      this.output[ctx] = this.notify(ctx) ? 1 : 0;
      this.onChange(ctx, this.output[ctx] === 1);
    }
  }
}
