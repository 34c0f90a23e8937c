// The RISC-V Supervisor Binary Interface, v2.0: what a supervisor's `ecall` asks of the layer
// below it. In native mode that layer is firmware; under the hypervisor these are hypercalls.
// Extensions: BASE, TIME, IPI, RFENCE, HSM, SRST, PMU (src/vmm/pmu.ts), DBCN and the legacy v0.1
// calls.
import { Pmu, FW_EVENTS, type PmuHart } from "./pmu.js";

export const SBI_SUCCESS = 0n;
export const SBI_ERR_FAILED = -1n;
export const SBI_ERR_NOT_SUPPORTED = -2n;
export const SBI_ERR_INVALID_PARAM = -3n;
export const SBI_ERR_INVALID_ADDRESS = -5n;
export const SBI_ERR_ALREADY_AVAILABLE = -6n;
export const SBI_ERR_ALREADY_STARTED = -7n;
export const SBI_ERR_ALREADY_STOPPED = -8n;
export const SBI_ERR_NO_SHMEM = -9n;

export const EXT_BASE = 0x10n;
export const EXT_TIME = 0x54494d45n;
export const EXT_IPI = 0x735049n;
export const EXT_RFENCE = 0x52464e43n;
export const EXT_HSM = 0x48534dn;
export const EXT_SRST = 0x53525354n;
export const EXT_PMU = 0x504d55n;
export const EXT_DBCN = 0x4442434en;

const EXTENSION_NAMES = new Map<bigint, string>([
  [EXT_BASE, "BASE"], [EXT_TIME, "TIME"], [EXT_IPI, "IPI"], [EXT_RFENCE, "RFENCE"],
  [EXT_HSM, "HSM"], [EXT_SRST, "SRST"], [EXT_PMU, "PMU"], [EXT_DBCN, "DBCN"],
]);

export const SPEC_VERSION = (2n << 24n) | 0n; // 2.0
export const IMPL_ID = 0x5256n; // "RV": not in the SBI registry; identifies Ringvisor to the curious
export const IMPL_VERSION = 1n;

export const HSM_STARTED = 0;
export const HSM_STOPPED = 1;
export const HSM_SUSPENDED = 4;

// SRST (SBI spec 10): reset types and reasons.
export const SRST_SHUTDOWN = 0;
export const SRST_COLD_REBOOT = 1;
export const SRST_WARM_REBOOT = 2;

export interface SbiPlatform {
  readonly hartCount: number;
  setTimer(hart: number, stime: bigint): void;
  sendIpi(hart: number): void;
  clearIpi(hart: number): void;
  // sfence.vma on `hart` for [start, start + size) (everything if size is undefined), in one
  // address space if asid is given.
  remoteSfence(hart: number, start?: bigint, size?: bigint, asid?: bigint): void;
  // fence.i on `hart`: its instruction fetches (translated code included) see earlier stores.
  remoteFenceI(hart: number): void;
  hartStart(hart: number, addr: bigint, opaque: bigint): bigint;
  hartStop(hart: number): bigint;
  hartStatus(hart: number): number;
  hartSuspend(hart: number, type: bigint, resumeAddr: bigint, opaque: bigint): bigint;
  systemReset(type: number, reason: number): void;
  consoleWrite(bytes: Uint8Array): void;
  consoleRead(max: number): Uint8Array;
  readGuest(pa: bigint, len: number): Uint8Array | undefined;
  writeGuest(pa: bigint, bytes: Uint8Array): boolean;
  // The hart's mcycle/minstret as the guest sees them, for the PMU extension.
  counters(hart: number): PmuHart;
  // set_timer calls of hart h served without this object (by the physical CPU running it).
  setTimersElsewhere?(hart: number): number;
}

export interface SbiArgs {
  eid: bigint; // a7
  fid: bigint; // a6
  a: bigint[]; // a0..a5, as unsigned 64-bit values
}

export interface SbiResult {
  error: bigint;
  value: bigint;
  legacy?: boolean; // v0.1 calls return only a0
  noReturn?: boolean; // the calling hart stopped or the system reset
}

const ok = (value = 0n): SbiResult => ({ error: SBI_SUCCESS, value });
const err = (error: bigint): SbiResult => ({ error, value: 0n });

// The firmware events (SBI 11.4) of each remote fence, by RFENCE function ID (and of the legacy
// remote fences, SBI 5.6-5.8): [sent by the caller, received by each target].
const RFENCE_EVENTS: readonly (readonly [number, number])[] = [
  [FW_EVENTS.FENCE_I_SENT, FW_EVENTS.FENCE_I_RECEIVED],
  [FW_EVENTS.SFENCE_VMA_SENT, FW_EVENTS.SFENCE_VMA_RECEIVED],
  [FW_EVENTS.SFENCE_VMA_ASID_SENT, FW_EVENTS.SFENCE_VMA_ASID_RECEIVED],
  [FW_EVENTS.HFENCE_GVMA_VMID_SENT, FW_EVENTS.HFENCE_GVMA_VMID_RECEIVED],
  [FW_EVENTS.HFENCE_GVMA_SENT, FW_EVENTS.HFENCE_GVMA_RECEIVED],
  [FW_EVENTS.HFENCE_VVMA_ASID_SENT, FW_EVENTS.HFENCE_VVMA_ASID_RECEIVED],
  [FW_EVENTS.HFENCE_VVMA_SENT, FW_EVENTS.HFENCE_VVMA_RECEIVED],
];

export class Sbi {
  readonly calls = new Map<string, number>();
  readonly pmu: Pmu;

  constructor(private readonly p: SbiPlatform) {
    this.pmu = new Pmu(p.hartCount, (h) => p.counters(h), (h, code) => (code === FW_EVENTS.SET_TIMER ? p.setTimersElsewhere?.(h) ?? 0 : 0));
  }

  // One request sent from `from` to each of `to`, counted as firmware events for the PMU.
  private sent(from: number, to: number[], [sent, received]: readonly [number, number]): void {
    for (const h of to) {
      this.pmu.event(from, sent);
      this.pmu.event(h, received);
    }
  }

  private count(eid: bigint): void {
    const name = EXTENSION_NAMES.get(eid) ?? (eid <= 8n ? "legacy" : `0x${eid.toString(16)}`);
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
  }

  // The harts selected by an SBI hart mask (SBI spec 3.1): hart_mask_base = -1 means all.
  private maskedHarts(mask: bigint, base: bigint): number[] | undefined {
    const harts: number[] = [];
    if (base === 0xffff_ffff_ffff_ffffn) {
      for (let h = 0; h < this.p.hartCount; h++) harts.push(h);
      return harts;
    }
    for (let i = 0n; i < 64n; i++) {
      if (((mask >> i) & 1n) === 0n) continue;
      const h = base + i;
      if (h >= BigInt(this.p.hartCount)) return undefined;
      harts.push(Number(h));
    }
    return harts;
  }

  call(hart: number, { eid, fid, a }: SbiArgs): SbiResult {
    this.count(eid);
    const p = this.p;
    switch (eid) {
      case EXT_BASE:
        switch (fid) {
          case 0n: return ok(SPEC_VERSION);
          case 1n: return ok(IMPL_ID);
          case 2n: return ok(IMPL_VERSION);
          case 3n: return ok(EXTENSION_NAMES.has(a[0]!) || a[0]! <= 8n ? 1n : 0n);
          case 4n: case 5n: case 6n: return ok(0n); // mvendorid, marchid, mimpid
        }
        return err(SBI_ERR_NOT_SUPPORTED);
      case EXT_TIME:
        if (fid !== 0n) return err(SBI_ERR_NOT_SUPPORTED);
        this.pmu.event(hart, FW_EVENTS.SET_TIMER);
        p.setTimer(hart, a[0]!);
        return ok();
      case EXT_IPI: {
        if (fid !== 0n) return err(SBI_ERR_NOT_SUPPORTED);
        const harts = this.maskedHarts(a[0]!, a[1]!);
        if (!harts) return err(SBI_ERR_INVALID_PARAM);
        this.sent(hart, harts, [FW_EVENTS.IPI_SENT, FW_EVENTS.IPI_RECEIVED]);
        for (const h of harts) p.sendIpi(h);
        return ok();
      }
      case EXT_RFENCE: {
        if (fid > 6n) return err(SBI_ERR_NOT_SUPPORTED);
        const harts = this.maskedHarts(a[0]!, a[1]!);
        if (!harts) return err(SBI_ERR_INVALID_PARAM);
        // fence.i (0) makes a running target look at its translation cache. sfence.vma (1) and
        // sfence.vma.asid (2) pass their range on; the hypervisor fences (3-6) flush everything,
        // which the spec permits.
        // A start and size of 0, or a size of all ones, mean the whole address space.
        const whole = (a[2] === 0n && a[3] === 0n) || a[3] === 0xffff_ffff_ffff_ffffn;
        this.sent(hart, harts, RFENCE_EVENTS[Number(fid)]!);
        for (const h of harts) {
          if (fid === 0n) p.remoteFenceI(h);
          else if (fid === 1n && !whole) p.remoteSfence(h, a[2]!, a[3]!);
          else if (fid === 2n) p.remoteSfence(h, whole ? undefined : a[2]!, whole ? undefined : a[3]!, a[4]!);
          else p.remoteSfence(h);
        }
        return ok();
      }
      case EXT_HSM:
        switch (fid) {
          case 0n: return this.hartIndex(a[0]!, (h) => {
            const e = p.hartStart(h, a[1]!, a[2]!);
            if (e === SBI_SUCCESS) this.pmu.hartStarted(h);
            return { error: e, value: 0n };
          });
          case 1n: {
            const e = p.hartStop(hart);
            return e === SBI_SUCCESS ? { error: e, value: 0n, noReturn: true } : err(e);
          }
          case 2n: return this.hartIndex(a[0]!, (h) => ok(BigInt(p.hartStatus(h))));
          case 3n: return { error: p.hartSuspend(hart, a[0]! & 0xffff_ffffn, a[1]!, a[2]!), value: 0n };
        }
        return err(SBI_ERR_NOT_SUPPORTED);
      case EXT_SRST: {
        if (fid !== 0n) return err(SBI_ERR_NOT_SUPPORTED);
        const type = Number(a[0]! & 0xffff_ffffn);
        const reason = Number(a[1]! & 0xffff_ffffn);
        if (type > SRST_WARM_REBOOT || reason > 1) return err(SBI_ERR_INVALID_PARAM);
        p.systemReset(type, reason);
        return { error: SBI_SUCCESS, value: 0n, noReturn: true };
      }
      case EXT_PMU:
        return this.pmu.call(hart, fid, a);
      case EXT_DBCN:
        switch (fid) {
          case 0n: { // console_write(num_bytes, base_lo, base_hi)
            const bytes = p.readGuest(a[1]! | (a[2]! << 32n), Number(a[0]! & 0xffff_ffffn));
            if (!bytes) return err(SBI_ERR_INVALID_PARAM);
            p.consoleWrite(bytes);
            return ok(BigInt(bytes.length));
          }
          case 1n: { // console_read(num_bytes, base_lo, base_hi)
            const data = p.consoleRead(Number(a[0]! & 0xffff_ffffn));
            if (!p.writeGuest(a[1]! | (a[2]! << 32n), data)) return err(SBI_ERR_INVALID_PARAM);
            return ok(BigInt(data.length));
          }
          case 2n: p.consoleWrite(Uint8Array.of(Number(a[0]! & 0xffn))); return ok();
        }
        return err(SBI_ERR_NOT_SUPPORTED);
    }
    return this.legacy(hart, eid, a);
  }

  private hartIndex(id: bigint, f: (h: number) => SbiResult): SbiResult {
    if (id >= BigInt(this.p.hartCount)) return err(SBI_ERR_INVALID_PARAM);
    return f(Number(id));
  }

  // SBI v0.1 (legacy extensions, SBI spec 5): kept for old kernels and early consoles.
  private legacy(hart: number, eid: bigint, a: bigint[]): SbiResult {
    const p = this.p;
    const done = (value = 0n): SbiResult => ({ error: value, value: 0n, legacy: true });
    switch (eid) {
      case 0n: this.pmu.event(hart, FW_EVENTS.SET_TIMER); p.setTimer(hart, a[0]!); return done();
      case 1n: p.consoleWrite(Uint8Array.of(Number(a[0]! & 0xffn))); return done();
      case 2n: {
        const c = p.consoleRead(1);
        return done(c.length ? BigInt(c[0]!) : 0xffff_ffff_ffff_ffffn);
      }
      case 3n: p.clearIpi(hart); return done();
      case 4n: case 5n: case 6n: case 7n: {
        const maskBytes = p.readGuest(a[0]!, 8);
        if (!maskBytes) return done(SBI_ERR_INVALID_ADDRESS);
        const mask = new DataView(maskBytes.buffer, maskBytes.byteOffset, 8).getBigUint64(0, true);
        const harts: number[] = [];
        for (let h = 0; h < p.hartCount && h < 64; h++) if (((mask >> BigInt(h)) & 1n) !== 0n) harts.push(h);
        // 4 send_ipi, 5 remote_fence_i, 6 remote_sfence_vma, 7 remote_sfence_vma_asid
        this.sent(hart, harts, eid === 4n ? [FW_EVENTS.IPI_SENT, FW_EVENTS.IPI_RECEIVED] : RFENCE_EVENTS[Number(eid) - 5]!);
        for (const h of harts) {
          if (eid === 4n) p.sendIpi(h);
          else if (eid === 5n) p.remoteFenceI(h);
          else p.remoteSfence(h);
        }
        return done();
      }
      case 8n: p.systemReset(SRST_SHUTDOWN, 0); return { error: 0n, value: 0n, legacy: true, noReturn: true };
    }
    return err(SBI_ERR_NOT_SUPPORTED);
  }
}
