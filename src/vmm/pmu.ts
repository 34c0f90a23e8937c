// The SBI Performance Monitoring Unit extension (SBI v2.0 chapter 11, EID 0x504D55 "PMU"): how a
// supervisor finds, programs, starts and stops the hart's counters through its firmware. Linux's
// drivers/perf/riscv_pmu_sbi.c is the consumer: it configures a counter with
// sbi_pmu_counter_config_matching, starts it with an initial value through sbi_pmu_counter_start,
// then reads the counter's CSR (cycle, instret) itself, in S-mode, and stops it with
// sbi_pmu_counter_stop around context switches.
//
// The counters:
//  - 0 and 2, the hardware counters mcycle and minstret (read as cycle and instret), numbered by
//    their CSR's offset from cycle as OpenSBI does and Linux expects (its legacy user-access mode
//    asks for counter BIT(CSR_INSTRET - CSR_CYCLE) by number). 1 would be time, which is not a
//    performance counter: asking for it is an invalid counter. The hart keeps the guest's view of
//    both (an offset from its own instruction count, frozen while mcountinhibit stops it,
//    src/hart/asm/csr.ts), so programming them never disturbs the count that the time CSR,
//    budgets and statistics run on. SBI_PMU_HW_CPU_CYCLES and SBI_PMU_HW_INSTRUCTIONS are the only
//    hardware events: the hart retires one instruction per cycle and models no caches, branch
//    predictor or stalls, so every other hardware event has no counter (NOT_SUPPORTED).
//  - 3 and up, firmware counters of the firmware events (SBI 11.4) this firmware sees: set_timer,
//    IPIs and remote fences, per hart. The trap events (misaligned, access fault, illegal
//    instruction) are valid but stay 0: those traps go straight to the supervisor, and
//    misaligned accesses are done by the hart, so the firmware never emulates one.
//
// Not provided:
//  - Sscofpmf (counter overflow interrupts, the sampling half of perf): counting works without
//    it, and Linux then marks the PMU PERF_PMU_CAP_NO_INTERRUPT | PERF_PMU_CAP_NO_EXCLUDE (no
//    `perf record`, no exclude_user/exclude_kernel). With it the hart's inner loop would have to
//    stop at the instruction where a counter overflows, for a feature nothing here uses yet.
//  - The config_matching filter flags (SET_UINH, SET_SINH, ...): SBI 11.7 lets the firmware
//    ignore them; obeying them would need counting by privilege mode in the hart.
//  - Snapshot shared memory (sbi_pmu_snapshot_set_shmem, SBI 11.12): optional; NOT_SUPPORTED, and
//    the snapshot flags of start and stop get SBI_ERR_NO_SHMEM.
import type { HartCounter } from "../hart/hart.js";

// SBI 11.4: firmware event codes (event type 15).
export const FW_EVENTS = {
  MISALIGNED_LOAD: 0, MISALIGNED_STORE: 1, ACCESS_LOAD: 2, ACCESS_STORE: 3, ILLEGAL_INSN: 4,
  SET_TIMER: 5, IPI_SENT: 6, IPI_RECEIVED: 7, FENCE_I_SENT: 8, FENCE_I_RECEIVED: 9,
  SFENCE_VMA_SENT: 10, SFENCE_VMA_RECEIVED: 11, SFENCE_VMA_ASID_SENT: 12, SFENCE_VMA_ASID_RECEIVED: 13,
  HFENCE_GVMA_SENT: 14, HFENCE_GVMA_RECEIVED: 15, HFENCE_GVMA_VMID_SENT: 16, HFENCE_GVMA_VMID_RECEIVED: 17,
  HFENCE_VVMA_SENT: 18, HFENCE_VVMA_RECEIVED: 19, HFENCE_VVMA_ASID_SENT: 20, HFENCE_VVMA_ASID_RECEIVED: 21,
} as const;
const FW_EVENT_COUNT = 22; // codes 22-255 are reserved, 256-65534 implementation specific (none)

// SBI 11 (the chapter's introduction): event_idx = type << 16 | code.
const EVENT_TYPE_HW = 0;
const EVENT_TYPE_FW = 15;
const HW_CPU_CYCLES = 1;
const HW_INSTRUCTIONS = 2;

// SBI 11.7, 11.8, 11.9: the flags of config_matching, start and stop.
const CFG_FLAG_SKIP_MATCH = 1n << 0n;
const CFG_FLAG_CLEAR_VALUE = 1n << 1n;
const CFG_FLAG_AUTO_START = 1n << 2n;
const START_FLAG_SET_INIT_VALUE = 1n << 0n;
const START_FLAG_INIT_SNAPSHOT = 1n << 1n;
const STOP_FLAG_RESET = 1n << 0n;
const STOP_FLAG_TAKE_SNAPSHOT = 1n << 1n;

// SBI 3 (binary encoding): the errors this extension returns.
const SUCCESS = 0n;
const ERR_NOT_SUPPORTED = -2n;
const ERR_INVALID_PARAM = -3n;
const ERR_ALREADY_STARTED = -7n;
const ERR_ALREADY_STOPPED = -8n;
const ERR_NO_SHMEM = -9n;

const CSR_CYCLE = 0xc00;
const HW_COUNTERS: ReadonlyMap<number, { csr: number; counter: HartCounter; event: number }> = new Map([
  [0, { csr: CSR_CYCLE, counter: "cycle", event: HW_CPU_CYCLES }],
  [2, { csr: CSR_CYCLE + 2, counter: "instret", event: HW_INSTRUCTIONS }],
]);
const FIRST_FW = 3;
export const FW_COUNTERS = 16;
export const NUM_COUNTERS = FIRST_FW + FW_COUNTERS;
const WIDTH_64 = 63n; // counter_info.width: one less than the counter's bits

// The hart's counters as the firmware programs them (src/hart/hart.ts).
export interface PmuHart {
  counter(c: HartCounter): bigint;
  setCounter(c: HartCounter, v: bigint): void;
  counterStopped(c: HartCounter): boolean;
  stopCounter(c: HartCounter, stop: boolean): void;
}

interface FwCounter {
  event: number | undefined; // firmware event code it counts, undefined while unconfigured
  running: boolean;
  value: bigint; // while stopped: the count; while running: the count at `since`
  since: number; // the event's tally when it started
}

interface HartPmu {
  hwEvent: Map<number, number | undefined>; // counter index -> configured event_idx
  fw: FwCounter[];
  tally: number[]; // firmware events seen on this hart, by code
}

export interface PmuResult {
  error: bigint;
  value: bigint;
}

const MASK64 = (1n << 64n) - 1n;
const result = (error: bigint, value = 0n): PmuResult => ({ error, value });

export class Pmu {
  private readonly harts: HartPmu[];

  // `elsewhere(h, code)`: events of hart h counted outside this object (a physical CPU serves
  // set_timer itself and counts it in the vCPU's control block).
  constructor(hartCount: number, private readonly hart: (h: number) => PmuHart, private readonly elsewhere: (h: number, code: number) => number = () => 0) {
    this.harts = Array.from({ length: hartCount }, () => ({
      hwEvent: new Map(),
      fw: Array.from({ length: FW_COUNTERS }, () => ({ event: undefined, running: false, value: 0n, since: 0 })),
      tally: new Array<number>(FW_EVENT_COUNT).fill(0),
    }));
    for (let h = 0; h < hartCount; h++) this.configureFixed(h);
  }

  // What a hart's firmware sets up before it enters the supervisor (cold boot, HSM hart_start),
  // as OpenSBI does (sbi_pmu_init and mstatus_init): cycle and instret configured for their
  // events and counting (mcountinhibit.CY and IR clear), firmware counters unconfigured.
  hartStarted(h: number): void {
    const p = this.harts[h]!;
    for (const c of p.fw) Object.assign(c, { event: undefined, running: false, value: 0n, since: 0 });
    this.configureFixed(h);
    for (const { counter } of HW_COUNTERS.values()) this.hart(h).stopCounter(counter, false);
  }

  private configureFixed(h: number): void {
    for (const [i, { event }] of HW_COUNTERS) this.harts[h]!.hwEvent.set(i, (EVENT_TYPE_HW << 16) | event);
  }

  // A firmware event happened on hart h.
  event(h: number, code: number): void {
    this.harts[h]!.tally[code]!++;
  }

  call(h: number, fid: bigint, a: bigint[]): PmuResult {
    switch (fid) {
      case 0n: return result(SUCCESS, BigInt(NUM_COUNTERS)); // num_counters
      case 1n: return this.getInfo(a[0]!);
      case 2n: return this.configMatching(h, a[0]!, a[1]!, a[2]!, a[3]!);
      case 3n: return this.start(h, a[0]!, a[1]!, a[2]!, a[3]!);
      case 4n: return this.stop(h, a[0]!, a[1]!, a[2]!);
      case 5n: case 6n: { // counter_fw_read, counter_fw_read_hi (the high half is 0 on RV64)
        const c = this.fwCounter(h, a[0]!);
        if (!c || c.event === undefined) return result(ERR_INVALID_PARAM);
        return result(SUCCESS, fid === 5n ? this.fwValue(h, c) : 0n);
      }
    }
    return result(ERR_NOT_SUPPORTED); // snapshot_set_shmem (7) and anything newer
  }

  private getInfo(idx: bigint): PmuResult {
    // counter_info (SBI 11.6): CSR in [11:0], width - 1 in [17:12], type in [XLEN-1] (1 firmware).
    const i = Number(idx);
    const hw = idx < BigInt(NUM_COUNTERS) ? HW_COUNTERS.get(i) : undefined;
    if (hw) return result(SUCCESS, BigInt(hw.csr) | (WIDTH_64 << 12n));
    if (idx >= BigInt(FIRST_FW) && idx < BigInt(NUM_COUNTERS)) return result(SUCCESS, (1n << 63n) | (WIDTH_64 << 12n));
    return result(ERR_INVALID_PARAM);
  }

  // The counters that counter_idx_base and counter_idx_mask name (SBI 11.7), or undefined if one
  // of them does not exist.
  private counterSet(base: bigint, mask: bigint): number[] | undefined {
    const set: number[] = [];
    for (let i = 0n; i < 64n; i++) {
      if (((mask >> i) & 1n) === 0n) continue;
      const idx = base + i;
      if (idx >= BigInt(NUM_COUNTERS) || (idx < BigInt(FIRST_FW) && !HW_COUNTERS.has(Number(idx)))) return undefined;
      set.push(Number(idx));
    }
    return set;
  }

  private configMatching(h: number, base: bigint, mask: bigint, flags: bigint, eventIdx: bigint): PmuResult {
    const set = this.counterSet(base, mask);
    if (!set) return result(ERR_INVALID_PARAM);
    const type = Number((eventIdx >> 16n) & 0xfn);
    const code = Number(eventIdx & 0xffffn);
    const canCount = (i: number): boolean => {
      if (eventIdx >> 20n !== 0n) return false; // event_idx is 20 bits (SBI 11)
      if (type === EVENT_TYPE_HW) return HW_COUNTERS.get(i)?.event === code;
      return type === EVENT_TYPE_FW && code < FW_EVENT_COUNT && i >= FIRST_FW;
    };
    // SBI 11.7: the counter found must not be started. Nor is a configured one taken: it belongs
    // to whoever configured it until a stop with RESET (Linux keeps the counter of a stopped
    // event, and refuses a counter it already holds, as OpenSBI never offers one). With
    // SKIP_MATCH the caller names the counter (the first of the set) and it is taken as it is.
    const free = (i: number): boolean => canCount(i) && !this.running(h, i) && !this.configured(h, BigInt(i));
    const idx = (flags & CFG_FLAG_SKIP_MATCH) !== 0n ? set[0] : set.find(free);
    if (idx === undefined || !canCount(idx)) return result(ERR_NOT_SUPPORTED);
    const p = this.harts[h]!;
    if (idx < FIRST_FW) {
      p.hwEvent.set(idx, Number(eventIdx));
      // CLEAR_VALUE clears the counter; AUTO_START has no effect on its value.
      if ((flags & CFG_FLAG_CLEAR_VALUE) !== 0n) this.hart(h).setCounter(HW_COUNTERS.get(idx)!.counter, 0n);
    } else {
      const c = p.fw[idx - FIRST_FW]!;
      if (c.event !== code) Object.assign(c, { event: code, running: false, value: 0n });
      if ((flags & CFG_FLAG_CLEAR_VALUE) !== 0n) this.setFwValue(h, c, 0n);
    }
    if ((flags & CFG_FLAG_AUTO_START) !== 0n) this.startOne(h, idx);
    return result(SUCCESS, BigInt(idx));
  }

  // Start and stop act on every valid counter of the set and report the first kind of failure
  // (an invalid or unconfigured counter, then one already started or stopped): Linux stops
  // every counter it knows at once with SBI_PMU_STOP_FLAG_RESET, configured or not.
  private start(h: number, base: bigint, mask: bigint, flags: bigint, initial: bigint): PmuResult {
    if ((flags & START_FLAG_INIT_SNAPSHOT) !== 0n) return result(ERR_NO_SHMEM);
    return this.each(h, base, mask, (i) => {
      if (this.running(h, i)) return ERR_ALREADY_STARTED;
      if ((flags & START_FLAG_SET_INIT_VALUE) !== 0n) this.setValue(h, i, initial & MASK64);
      this.startOne(h, i);
      return SUCCESS;
    });
  }

  private stop(h: number, base: bigint, mask: bigint, flags: bigint): PmuResult {
    if ((flags & STOP_FLAG_TAKE_SNAPSHOT) !== 0n) return result(ERR_NO_SHMEM);
    const p = this.harts[h]!;
    return this.each(h, base, mask, (i) => {
      const was = this.running(h, i);
      if (i < FIRST_FW) this.hart(h).stopCounter(HW_COUNTERS.get(i)!.counter, true);
      else {
        const c = p.fw[i - FIRST_FW]!;
        c.value = this.fwValue(h, c);
        c.running = false;
      }
      // RESET drops the counter-to-event mapping: the counter must be configured again.
      if ((flags & STOP_FLAG_RESET) !== 0n) {
        if (i < FIRST_FW) p.hwEvent.set(i, undefined);
        else p.fw[i - FIRST_FW]!.event = undefined;
      }
      return was ? SUCCESS : ERR_ALREADY_STOPPED;
    });
  }

  private each(h: number, base: bigint, mask: bigint, f: (i: number) => bigint): PmuResult {
    let invalid = this.counterSet(base, mask) === undefined;
    let other = SUCCESS;
    for (let b = 0n; b < 64n; b++) {
      if (((mask >> b) & 1n) === 0n) continue;
      const i = base + b;
      if (!this.configured(h, i)) { invalid = true; continue; }
      const e = f(Number(i));
      if (other === SUCCESS) other = e;
    }
    return result(invalid ? ERR_INVALID_PARAM : other);
  }

  private configured(h: number, idx: bigint): boolean {
    if (idx < 0n || idx >= BigInt(NUM_COUNTERS)) return false;
    const i = Number(idx);
    const p = this.harts[h]!;
    return i < FIRST_FW ? p.hwEvent.get(i) !== undefined : p.fw[i - FIRST_FW]!.event !== undefined;
  }

  private running(h: number, i: number): boolean {
    const hw = HW_COUNTERS.get(i);
    if (hw) return !this.hart(h).counterStopped(hw.counter);
    return i >= FIRST_FW && this.harts[h]!.fw[i - FIRST_FW]!.running;
  }

  private startOne(h: number, i: number): void {
    const hw = HW_COUNTERS.get(i);
    if (hw) { this.hart(h).stopCounter(hw.counter, false); return; }
    const c = this.harts[h]!.fw[i - FIRST_FW]!;
    if (c.running) return;
    c.since = this.tally(h, c.event!);
    c.running = true;
  }

  private setValue(h: number, i: number, v: bigint): void {
    const hw = HW_COUNTERS.get(i);
    if (hw) this.hart(h).setCounter(hw.counter, v);
    else this.setFwValue(h, this.harts[h]!.fw[i - FIRST_FW]!, v);
  }

  private fwCounter(h: number, idx: bigint): FwCounter | undefined {
    return idx >= BigInt(FIRST_FW) && idx < BigInt(NUM_COUNTERS) ? this.harts[h]!.fw[Number(idx) - FIRST_FW] : undefined;
  }

  private fwValue(h: number, c: FwCounter): bigint {
    if (!c.running || c.event === undefined) return c.value;
    return (c.value + BigInt(this.tally(h, c.event) - c.since)) & MASK64;
  }

  private setFwValue(h: number, c: FwCounter, v: bigint): void {
    c.value = v;
    if (c.event !== undefined) c.since = this.tally(h, c.event);
  }

  private tally(h: number, code: number): number {
    return this.harts[h]!.tally[code]! + this.elsewhere(h, code);
  }
}
