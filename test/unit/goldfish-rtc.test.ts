// The Goldfish RTC at register level, as Linux's rtc-goldfish.c uses it: the TIME_LOW latch, setting
// the time (TIME_HIGH then TIME_LOW), the alarm and its interrupt line, and the state save/restore.
// A fake host clock and timer make the alarm tests exact; one test uses the real host timer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GoldfishRtc, hostRtc, type RtcHost } from "../../src/devices/goldfish-rtc.js";

const TIME_LOW = 0x00, TIME_HIGH = 0x04, ALARM_LOW = 0x08, ALARM_HIGH = 0x0c, IRQ_ENABLED = 0x10,
  CLEAR_ALARM = 0x14, ALARM_STATUS = 0x18, CLEAR_INTERRUPT = 0x1c;
const SEC = 1_000_000_000n;
// 2024-01-01T00:00:00Z: its count has a nonzero high half, as every time since 1974 does.
const T0 = 1_704_067_200n * SEC;

interface FakeTimer {
  fn: () => void;
  ms: number;
  due: bigint;
  live: boolean;
}

interface FakeHost extends RtcHost {
  ns: bigint;
  timers: FakeTimer[];
  // Moves the clock on and runs the timers that are due by then.
  advance(ns: bigint): void;
}

function fakeHost(start = T0): FakeHost {
  const h: FakeHost = {
    ns: start,
    timers: [],
    nowNs: () => h.ns,
    setTimer: (fn, ms) => {
      const t: FakeTimer = { fn, ms, due: h.ns + BigInt(ms) * 1_000_000n, live: true };
      h.timers.push(t);
      return () => { t.live = false; };
    },
    advance: (ns) => {
      h.ns += ns;
      for (let t = h.timers.find((x) => x.live && x.due <= h.ns); t; t = h.timers.find((x) => x.live && x.due <= h.ns)) {
        t.live = false;
        t.fn();
      }
    },
  };
  return h;
}

function setup(start = T0) {
  const host = fakeHost(start);
  let level = false;
  const irqLog: boolean[] = [];
  const rtc = new GoldfishRtc({ set: (l) => { level = l; irqLog.push(l); } }, host);
  const rd = (off: number): bigint => rtc.read(off, 4);
  const wr = (off: number, v: bigint): void => rtc.write(off, 4, v);
  // goldfish_rtc_read_time: TIME_LOW first, then the TIME_HIGH it latched.
  const readTime = (): bigint => { const lo = rd(TIME_LOW); return (rd(TIME_HIGH) << 32n) | lo; };
  // goldfish_rtc_set_time / set_alarm: the high half first, then the low half.
  const setTime = (t: bigint): void => { wr(TIME_HIGH, t >> 32n); wr(TIME_LOW, t & 0xffff_ffffn); };
  const setAlarm = (t: bigint): void => { wr(ALARM_HIGH, t >> 32n); wr(ALARM_LOW, t & 0xffff_ffffn); };
  const live = (): number => host.timers.filter((t) => t.live).length;
  return { rtc, host, rd, wr, readTime, setTime, setAlarm, live, irq: () => level, irqLog };
}

test("reset: the count is the host's wall-clock time; no alarm, interrupt disabled, line low", () => {
  const { rd, readTime, irq } = setup();
  assert.equal(readTime(), T0);
  assert.equal(rd(ALARM_STATUS), 0n);
  assert.equal(rd(IRQ_ENABLED), 0n);
  assert.equal(irq(), false);
});

test("the default host clock is the host's wall clock, in ns since the epoch", () => {
  const rtc = new GoldfishRtc({ set: () => {} });
  const lo = rtc.read(TIME_LOW, 4);
  const t = (rtc.read(TIME_HIGH, 4) << 32n) | lo;
  const host = BigInt(Date.now()) * 1_000_000n;
  assert.ok(t - host < SEC && host - t < SEC, `RTC ${t} vs host ${host}`);
});

test("reading TIME_LOW latches TIME_HIGH: a carry between the two reads does not tear the count", () => {
  // Just below a carry into the high half.
  const { host, rd } = setup((0x6000_0000n << 32n) | 0xffff_fff0n);
  assert.equal(rd(TIME_LOW), 0xffff_fff0n);
  host.advance(0x100n); // the count carries into the high half now
  assert.equal(rd(TIME_HIGH), 0x6000_0000n, "TIME_HIGH is the half that goes with the TIME_LOW read");
  assert.equal(rd(TIME_HIGH), 0x6000_0000n, "reading TIME_HIGH does not relatch");
  assert.equal(rd(TIME_LOW), 0xf0n);
  assert.equal(rd(TIME_HIGH), 0x6000_0001n);
});

test("setting the time (TIME_HIGH then TIME_LOW) moves the count, which then runs with the host clock", () => {
  const { rtc, host, readTime, setTime } = setup();
  const want = 946_684_800n * SEC + 123n; // 2000-01-01, earlier than the host
  setTime(want);
  assert.equal(readTime(), want);
  assert.equal(rtc.state().offsetNs, want - T0, "kept as an offset from the host's clock");
  host.advance(5n * SEC);
  assert.equal(readTime(), want + 5n * SEC);
  const later = 4_102_444_800n * SEC; // 2100-01-01
  setTime(later);
  host.advance(SEC);
  assert.equal(readTime(), later + SEC);
});

test("an alarm fires at its time: ALARM_STATUS drops, the line rises, CLEAR_INTERRUPT lowers it", () => {
  const { host, rd, wr, setAlarm, irq, irqLog, live } = setup();
  wr(IRQ_ENABLED, 1n);
  setAlarm(T0 + 2n * SEC);
  assert.equal(rd(ALARM_LOW), (T0 + 2n * SEC) & 0xffff_ffffn);
  assert.equal(rd(ALARM_HIGH), (T0 + 2n * SEC) >> 32n);
  assert.equal(rd(ALARM_STATUS), 1n, "armed");
  assert.equal(live(), 1, "one host timer");
  assert.ok(host.timers[0]!.ms >= 2000 && host.timers[0]!.ms <= 2001, `timer ${host.timers[0]!.ms} ms`);
  host.advance(SEC);
  assert.equal(irq(), false, "not yet");
  host.advance(SEC);
  assert.equal(irq(), true, "fired at the alarm time");
  assert.equal(rd(ALARM_STATUS), 0n, "a fired alarm is no longer running");
  // goldfish_rtc_interrupt: CLEAR_INTERRUPT in the handler.
  wr(CLEAR_INTERRUPT, 1n);
  assert.equal(irq(), false);
  assert.deepEqual(irqLog, [true, false]);
  assert.equal(live(), 0);
});

test("a host timer that fires early re-arms instead of firing the alarm", () => {
  const { host, rd, wr, setAlarm, irq } = setup();
  wr(IRQ_ENABLED, 1n);
  setAlarm(T0 + SEC);
  const t = host.timers[0]!;
  host.ns += SEC / 2n;
  t.live = false;
  t.fn(); // as if the host timer ran half a second early
  assert.equal(irq(), false);
  assert.equal(rd(ALARM_STATUS), 1n);
  host.advance(SEC / 2n);
  assert.equal(irq(), true);
});

test("an alarm in the past fires as soon as ALARM_LOW is written; the count is the guest's, not the host's", () => {
  const { setTime, setAlarm, wr, rd, irq, live } = setup();
  wr(IRQ_ENABLED, 1n);
  setTime(T0 + 3600n * SEC);
  setAlarm(T0 + 60n * SEC); // ahead of the host clock, behind the guest's
  assert.equal(irq(), true);
  assert.equal(rd(ALARM_STATUS), 0n);
  assert.equal(live(), 0, "no host timer for it");
});

test("an armed alarm follows the count when the time is set", () => {
  const { host, rd, wr, setTime, setAlarm, irq } = setup();
  wr(IRQ_ENABLED, 1n);
  setAlarm(T0 + 100n * SEC);
  setTime(T0 + 50n * SEC);
  host.advance(49n * SEC);
  assert.equal(irq(), false);
  host.advance(SEC);
  assert.equal(irq(), true, "due 50 s after the count was moved 50 s on");
  wr(CLEAR_INTERRUPT, 1n);
  setAlarm(T0 + 1000n * SEC);
  setTime(T0 + 2000n * SEC);
  assert.equal(irq(), true, "a count moved past the alarm fires it at once");
  assert.equal(rd(ALARM_STATUS), 0n);
});

test("ALARM_HIGH alone does not arm; CLEAR_ALARM disarms and cancels the host timer", () => {
  const { host, rd, wr, setAlarm, irq, live } = setup();
  wr(IRQ_ENABLED, 1n);
  wr(ALARM_HIGH, (T0 + SEC) >> 32n);
  assert.equal(rd(ALARM_STATUS), 0n);
  setAlarm(T0 + SEC);
  assert.equal(rd(ALARM_STATUS), 1n);
  wr(CLEAR_ALARM, 1n);
  assert.equal(rd(ALARM_STATUS), 0n);
  assert.equal(live(), 0);
  host.advance(10n * SEC);
  assert.equal(irq(), false, "a cleared alarm never fires");
});

test("with IRQ_ENABLED off a fired alarm raises no line; enabling it then does, disabling lowers it", () => {
  const { host, rd, wr, setAlarm, irq, irqLog } = setup();
  setAlarm(T0 + SEC);
  host.advance(SEC);
  assert.equal(rd(ALARM_STATUS), 0n, "the alarm fired");
  assert.equal(irq(), false, "but the interrupt is disabled");
  assert.deepEqual(irqLog, []);
  wr(IRQ_ENABLED, 1n);
  assert.equal(irq(), true, "the pending interrupt shows once enabled");
  wr(IRQ_ENABLED, 0n);
  assert.equal(irq(), false);
  wr(CLEAR_INTERRUPT, 1n);
  wr(IRQ_ENABLED, 1n);
  assert.equal(irq(), false, "cleared while disabled: nothing left pending");
  assert.equal(rd(IRQ_ENABLED), 1n);
});

test("a new alarm replaces the armed one", () => {
  const { host, wr, setAlarm, irq, live } = setup();
  wr(IRQ_ENABLED, 1n);
  setAlarm(T0 + 10n * SEC);
  setAlarm(T0 + 20n * SEC);
  assert.equal(live(), 1, "the first host timer was cancelled");
  host.advance(15n * SEC);
  assert.equal(irq(), false);
  host.advance(5n * SEC);
  assert.equal(irq(), true);
});

test("an alarm beyond setTimeout's range is reached in steps", () => {
  const { host, wr, setAlarm, irq } = setup();
  wr(IRQ_ENABLED, 1n);
  const days40 = 40n * 86_400n * SEC;
  setAlarm(T0 + days40);
  assert.equal(host.timers[0]!.ms, 2 ** 31 - 1);
  host.advance(days40 - SEC);
  assert.equal(irq(), false);
  host.advance(SEC);
  assert.equal(irq(), true);
});

test("only 32-bit accesses reach the registers; unknown offsets read 0", () => {
  const { rtc, rd, readTime } = setup();
  assert.equal(rtc.read(TIME_LOW, 8), 0n);
  rtc.write(TIME_HIGH, 1, 0xffn);
  assert.equal(readTime(), T0, "a byte write changed nothing");
  assert.equal(rtc.counters.badAccesses, 2);
  assert.equal(rd(0x20), 0n);
  assert.equal(rd(0xffc), 0n);
});

test("save/restore carries offset, alarm and interrupt state, and re-arms a running alarm", () => {
  const a = setup();
  a.setTime(T0 + 1000n * SEC);
  a.wr(IRQ_ENABLED, 1n);
  a.setAlarm(T0 + 1005n * SEC);
  a.rd(TIME_LOW);
  const blob = a.rtc.save();
  a.rtc.close();
  assert.equal(a.live(), 0, "close releases the host timer");

  const b = setup();
  b.rtc.restore(blob);
  assert.deepEqual(b.rtc.state(), a.rtc.state());
  assert.equal(b.readTime(), T0 + 1000n * SEC);
  assert.equal(b.rd(ALARM_STATUS), 1n);
  assert.equal(b.live(), 1, "the running alarm has a timer on the new host");
  b.host.advance(5n * SEC);
  assert.equal(b.irq(), true);

  // A pending, enabled interrupt drives the line as soon as it is restored.
  const c = setup();
  c.rtc.restore(b.rtc.save());
  assert.equal(c.irq(), true);
  assert.throws(() => c.rtc.restore(new Uint8Array(3)), /RTC state/);
});

test("the alarm really fires on the host's timer", async () => {
  let raised!: () => void;
  const fired = new Promise<void>((r) => { raised = r; });
  const rtc = new GoldfishRtc({ set: (l) => { if (l) raised(); } }, hostRtc());
  rtc.write(IRQ_ENABLED, 4, 1n);
  const lo = rtc.read(TIME_LOW, 4);
  const at = ((rtc.read(TIME_HIGH, 4) << 32n) | lo) + 30_000_000n; // 30 ms on
  const t0 = performance.now();
  rtc.write(ALARM_HIGH, 4, at >> 32n);
  rtc.write(ALARM_LOW, 4, at & 0xffff_ffffn);
  // The timer is unref'd, so keep the event loop alive while waiting for it.
  const guard = setTimeout(() => assert.fail("the alarm did not fire within 2 s"), 2000);
  await fired;
  clearTimeout(guard);
  const ms = performance.now() - t0;
  assert.ok(ms >= 25, `fired after ${ms.toFixed(1)} ms`);
  assert.equal(rtc.read(ALARM_STATUS, 4), 0n);
});
