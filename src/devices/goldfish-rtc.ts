// Goldfish RTC, the real-time clock of QEMU's virt board ("google,goldfish-rtc"), as Linux's
// drivers/rtc/rtc-goldfish.c drives it and QEMU's hw/rtc/goldfish_rtc.c models it: a 64-bit count
// of nanoseconds since the Unix epoch read and written as two 32-bit halves, one alarm, and one
// level-triggered interrupt line.
//
// The guest-visible state is plain data (GoldfishRtcState): the guest's time as an offset from the
// host's wall clock, the alarm, the interrupt enable and pending bits. What the host lends it (the
// wall clock and a timer that fires the alarm) is kept apart, so the state can be saved, restored
// and compared without them.
import type { AccessSize, IrqLine, MmioDevice } from "./bus.js";

// The window QEMU's virt tree declares for it (the registers use the first 0x20 bytes).
export const GOLDFISH_RTC_SIZE = 0x1000n;

// Register offsets (rtc-goldfish.c's TIMER_*, goldfish_rtc.c's RTC_*).
const TIME_LOW = 0x00; // read: low half of the count, latching the high half into TIME_HIGH
const TIME_HIGH = 0x04;
const ALARM_LOW = 0x08; // write: low half of the alarm, and arm it
const ALARM_HIGH = 0x0c;
const IRQ_ENABLED = 0x10;
const CLEAR_ALARM = 0x14;
const ALARM_STATUS = 0x18; // read: 1 while an alarm is armed and has not fired
const CLEAR_INTERRUPT = 0x1c;

const U32 = 0xffff_ffffn;
const U64 = (1n << 64n) - 1n;
// setTimeout's longest delay (a signed 32-bit count of ms); a longer one fires at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface GoldfishRtcState {
  // Guest time minus host wall-clock time, in ns (signed 64-bit: the count wraps at 2^64).
  offsetNs: bigint;
  // The alarm's count (alarm_next) and whether it is armed (alarm_running).
  alarmNs: bigint;
  alarmRunning: boolean;
  irqEnabled: boolean;
  irqPending: boolean;
  // The high half latched by the last TIME_LOW read.
  timeHigh: number;
}

// What the host lends the device: its wall clock and a one-shot timer.
export interface RtcHost {
  // Nanoseconds since the Unix epoch.
  nowNs(): bigint;
  setTimer(fn: () => void, ms: number): () => void; // returns a cancel function
}

// The host's wall clock read once, then advanced by the monotonic clock: the guest's time never
// goes back when the host's clock is stepped under it.
export function hostRtc(): RtcHost {
  const wall0 = BigInt(Date.now()) * 1_000_000n;
  const mono0 = process.hrtime.bigint();
  return {
    nowNs: () => wall0 + (process.hrtime.bigint() - mono0),
    setTimer: (fn, ms) => {
      const t = setTimeout(fn, ms);
      // An armed alarm must not keep the host process alive once the VM is gone.
      t.unref();
      return () => clearTimeout(t);
    },
  };
}

export function initialRtcState(): GoldfishRtcState {
  return { offsetNs: 0n, alarmNs: 0n, alarmRunning: false, irqEnabled: false, irqPending: false, timeHigh: 0 };
}

export interface RtcCounters {
  alarmsFired: number;
  // Accesses other than 32-bit ones, which QEMU refuses (goldfish_rtc_ops .valid) and Linux never makes.
  badAccesses: number;
}

const SAVE_VERSION = 1;
const SAVE_BYTES = 1 + 8 + 8 + 4 + 1;

export class GoldfishRtc implements MmioDevice {
  readonly name = "goldfish-rtc";
  readonly counters: RtcCounters = { alarmsFired: 0, badAccesses: 0 };
  private s: GoldfishRtcState = initialRtcState();
  private cancelTimer: (() => void) | undefined;
  private level = false;

  constructor(private readonly irq: IrqLine, private readonly host: RtcHost = hostRtc()) {}

  // The count the guest reads: host wall-clock time plus the guest's offset.
  timeNs(): bigint {
    return (this.host.nowNs() + this.s.offsetNs) & U64;
  }

  read(offset: number, size: AccessSize): bigint {
    if (size !== 4) {
      this.counters.badAccesses++;
      return 0n;
    }
    switch (offset) {
      case TIME_LOW: {
        const t = this.timeNs();
        this.s.timeHigh = Number(t >> 32n);
        return t & U32;
      }
      case TIME_HIGH:
        return BigInt(this.s.timeHigh);
      case ALARM_LOW:
        return this.s.alarmNs & U32;
      case ALARM_HIGH:
        return this.s.alarmNs >> 32n;
      case IRQ_ENABLED:
        return this.s.irqEnabled ? 1n : 0n;
      case ALARM_STATUS:
        return this.s.alarmRunning ? 1n : 0n;
      default:
        return 0n;
    }
  }

  write(offset: number, size: AccessSize, value: bigint): void {
    if (size !== 4) {
      this.counters.badAccesses++;
      return;
    }
    const v = value & U32;
    switch (offset) {
      case TIME_LOW:
      case TIME_HIGH: {
        // Each half replaces its bits of the current count (QEMU's deposit64): Linux writes
        // TIME_HIGH then TIME_LOW, and the pair sets the whole count.
        const now = this.timeNs();
        const t = offset === TIME_LOW ? (now & ~U32) | v : (now & U32) | (v << 32n);
        this.s.offsetNs = BigInt.asIntN(64, this.s.offsetNs + t - now);
        // The alarm is a count, not a host time: moving the count moves when it is due (QEMU keeps
        // the host time computed when it was armed). Checked on TIME_LOW, the write that completes
        // Linux's pair, so the half-set count between the two cannot fire it.
        if (offset === TIME_LOW && this.s.alarmRunning) this.arm();
        break;
      }
      case ALARM_LOW:
        this.s.alarmNs = (this.s.alarmNs & ~U32) | v;
        this.arm();
        break;
      case ALARM_HIGH:
        this.s.alarmNs = (this.s.alarmNs & U32) | (v << 32n);
        break;
      case IRQ_ENABLED:
        this.s.irqEnabled = (v & 1n) === 1n;
        this.update();
        break;
      case CLEAR_ALARM:
        this.disarm();
        break;
      case CLEAR_INTERRUPT:
        this.s.irqPending = false;
        this.update();
        break;
      default:
        return;
    }
  }

  // The guest-visible state, as a copy.
  state(): GoldfishRtcState {
    return { ...this.s };
  }

  // Takes the state as the guest last saw it: re-arms a running alarm on this host's clock (one
  // whose time passed while the state was stored fires at once) and drives the line to match.
  setState(st: GoldfishRtcState): void {
    this.stopTimer();
    this.s = { ...st };
    if (this.s.alarmRunning) this.arm();
    this.update(true);
  }

  save(): Uint8Array {
    const out = new Uint8Array(SAVE_BYTES);
    const dv = new DataView(out.buffer);
    out[0] = SAVE_VERSION;
    dv.setBigInt64(1, this.s.offsetNs, true);
    dv.setBigUint64(9, this.s.alarmNs, true);
    dv.setUint32(17, this.s.timeHigh, true);
    out[21] = (this.s.alarmRunning ? 1 : 0) | (this.s.irqEnabled ? 2 : 0) | (this.s.irqPending ? 4 : 0);
    return out;
  }

  restore(b: Uint8Array): void {
    if (b.length !== SAVE_BYTES || b[0] !== SAVE_VERSION) throw new Error("RTC state: unknown format");
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const flags = b[21]!;
    if (flags > 7) throw new Error("RTC state: corrupt");
    this.setState({
      offsetNs: dv.getBigInt64(1, true),
      alarmNs: dv.getBigUint64(9, true),
      timeHigh: dv.getUint32(17, true),
      alarmRunning: (flags & 1) !== 0,
      irqEnabled: (flags & 2) !== 0,
      irqPending: (flags & 4) !== 0,
    });
  }

  // Releases the host timer; the state is kept.
  close(): void {
    this.stopTimer();
  }

  // An alarm at or before the current count fires at once; a later one when the host clock gets
  // there (goldfish_rtc_set_alarm).
  private arm(): void {
    this.stopTimer();
    const now = this.timeNs();
    if (this.s.alarmNs <= now) {
      this.fire();
      return;
    }
    this.s.alarmRunning = true;
    // Rounded up, so the timer does not wake a hair early and find the alarm still ahead; the
    // callback checks anyway (timers can fire early, and long delays are done in steps).
    const ms = Math.min(MAX_TIMER_MS, Math.ceil(Number(this.s.alarmNs - now) / 1e6));
    this.cancelTimer = this.host.setTimer(() => {
      this.cancelTimer = undefined;
      if (this.s.alarmRunning) this.arm();
    }, ms);
  }

  private disarm(): void {
    this.stopTimer();
    this.s.alarmRunning = false;
  }

  private fire(): void {
    this.s.alarmRunning = false;
    this.s.irqPending = true;
    this.counters.alarmsFired++;
    this.update();
  }

  private stopTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  // The line is pending AND enabled (goldfish_rtc_update), so enabling the interrupt with an alarm
  // already fired raises it, and disabling lowers it without losing the pending bit.
  private update(force = false): void {
    const level = this.s.irqPending && this.s.irqEnabled;
    if (level !== this.level || force) {
      this.level = level;
      this.irq.set(level);
    }
  }
}
