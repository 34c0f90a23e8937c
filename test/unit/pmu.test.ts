// The SBI PMU extension (src/vmm/pmu.ts) through the SBI dispatcher, on a stand-in for the
// hart's counters: the calls Linux's riscv_pmu_sbi.c makes at CPU start and around a perf event,
// the firmware events of IPIs and remote fences on two harts, and the error rules of SBI 11.7-11.12.
// The hart side (mcountinhibit, offsets from the instruction count) is checked by
// tests/programs/strict.c and the guest kernel tests/guests/pmu.c.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { HartCounter } from "../../src/hart/hart.js";
import { EXT_PMU, EXT_IPI, EXT_RFENCE, EXT_TIME, EXT_HSM, EXT_BASE, type SbiResult } from "../../src/vmm/sbi.js";
import { sbiOn } from "./sbi-fake.js";
import { FW_COUNTERS, NUM_COUNTERS, FW_EVENTS, type PmuHart } from "../../src/vmm/pmu.js";

const SUCCESS = 0n, NOT_SUPPORTED = -2n, INVALID_PARAM = -3n, ALREADY_STARTED = -7n, ALREADY_STOPPED = -8n, NO_SHMEM = -9n;
const HW_CPU_CYCLES = 1n, HW_INSTRUCTIONS = 2n, HW_CACHE_L1D_READ = 1n << 16n;
const FW = (code: number): bigint => (15n << 16n) | BigInt(code);
const CYCLE = 0n, INSTRET = 2n, FIRST_FW = 3n;
const ALL = ((1n << BigInt(NUM_COUNTERS)) - 1n) & ~2n; // every counter but 1 (time is not one)
const FW_MASK = ((1n << BigInt(FW_COUNTERS)) - 1n) << FIRST_FW;

// A hart that has retired `retired` instructions: counters are offsets from it or frozen.
class FakeHart implements PmuHart {
  retired = 1000n;
  private slot = { cycle: 0n, instret: 0n };
  private stopped = { cycle: false, instret: false };
  counter(c: HartCounter): bigint { return BigInt.asUintN(64, this.stopped[c] ? this.slot[c] : this.retired + this.slot[c]); }
  setCounter(c: HartCounter, v: bigint): void { this.slot[c] = this.stopped[c] ? v : v - this.retired; }
  counterStopped(c: HartCounter): boolean { return this.stopped[c]; }
  stopCounter(c: HartCounter, stop: boolean): void {
    if (this.stopped[c] === stop) return;
    const v = this.counter(c);
    this.stopped[c] = stop;
    this.setCounter(c, v);
  }
}

function setup(harts = 2) {
  const hw = Array.from({ length: harts }, () => new FakeHart());
  const { sbi, call } = sbiOn(harts, { counters: (h) => hw[h]! });
  const pmu = (fid: bigint, ...a: bigint[]): SbiResult => call(0, EXT_PMU, fid, ...a);
  return { sbi, hw, call, pmu };
}

test("probe, num_counters and counter_get_info", () => {
  const { pmu, call } = setup();
  assert.equal(call(0, EXT_BASE, 3n, EXT_PMU).value, 1n);
  assert.deepEqual(pmu(0n), { error: SUCCESS, value: BigInt(NUM_COUNTERS) });
  assert.equal(pmu(1n, CYCLE).value, 0xc00n | (63n << 12n));
  assert.equal(pmu(1n, INSTRET).value, 0xc02n | (63n << 12n));
  assert.equal(pmu(1n, 1n).error, INVALID_PARAM);
  assert.equal(pmu(1n, FIRST_FW).value, (1n << 63n) | (63n << 12n));
  assert.equal(pmu(1n, BigInt(NUM_COUNTERS)).error, INVALID_PARAM);
});

test("Linux at CPU start: stop everything with RESET, then check which standard events match", () => {
  const { pmu, hw } = setup();
  // Unconfigured firmware counters in the set make the call INVALID_PARAM, but cycle and
  // instret, which run from hart start, are stopped and reset all the same.
  assert.equal(pmu(4n, 0n, ALL, 1n).error, INVALID_PARAM);
  assert.ok(hw[0]!.counterStopped("cycle") && hw[0]!.counterStopped("instret"));
  assert.ok(!hw[1]!.counterStopped("cycle"), "only the calling hart");
  assert.equal(pmu(3n, INSTRET, 1n, 0n, 0n).error, INVALID_PARAM, "reset: no event any more");
  for (const [event, counter] of [[HW_CPU_CYCLES, CYCLE], [HW_INSTRUCTIONS, INSTRET]] as const) {
    assert.deepEqual(pmu(2n, 0n, ALL, 0n, event, 0n), { error: SUCCESS, value: counter });
    assert.equal(pmu(4n, counter, 1n, 1n).error, ALREADY_STOPPED);
  }
  for (const event of [3n, 4n, 5n, 6n, 7n, 8n, 9n, 10n, HW_CACHE_L1D_READ, 2n << 16n]) {
    assert.equal(pmu(2n, 0n, ALL, 0n, event, 0n).error, NOT_SUPPORTED, `event 0x${event.toString(16)}`);
  }
});

test("a perf event: configure, start with an initial value, read, stop, and the hart's count untouched", () => {
  const { pmu, hw } = setup();
  pmu(4n, 0n, ALL, 1n);
  const h = hw[0]!;
  const idx = pmu(2n, 0n, ALL, 0n, HW_INSTRUCTIONS, 0n).value;
  assert.equal(pmu(3n, idx, 1n, 1n, (1n << 64n) - 10n).error, SUCCESS);
  assert.equal(h.counter("instret"), (1n << 64n) - 10n);
  h.retired += 25n;
  assert.equal(h.counter("instret"), 15n, "the counter wraps at 64 bits");
  assert.equal(pmu(3n, idx, 1n, 0n, 0n).error, ALREADY_STARTED);
  assert.equal(pmu(2n, 0n, ALL, 0n, HW_INSTRUCTIONS, 0n).error, NOT_SUPPORTED, "the only instret counter is started");
  assert.equal(pmu(4n, idx, 1n, 0n).error, SUCCESS);
  assert.equal(pmu(2n, 0n, ALL, 0n, HW_INSTRUCTIONS, 0n).error, NOT_SUPPORTED, "stopped, but still configured");
  assert.equal(pmu(3n, idx, 1n, 0n, 0n).error, SUCCESS);
  assert.equal(pmu(4n, idx, 1n, 0n).error, SUCCESS);
  h.retired += 100n;
  assert.equal(h.counter("instret"), 15n, "stopped");
  assert.equal(h.retired, 1125n);
  // CLEAR_VALUE and AUTO_START in one config_matching.
  assert.equal(pmu(2n, 0n, ALL, 6n, HW_CPU_CYCLES, 0n).value, CYCLE);
  assert.equal(h.counter("cycle"), 0n);
  assert.ok(!h.counterStopped("cycle"));
  // SKIP_MATCH takes the named counter as it is, started or not.
  assert.deepEqual(pmu(2n, CYCLE, 1n, 1n, HW_CPU_CYCLES, 0n), { error: SUCCESS, value: CYCLE });
  assert.equal(pmu(2n, CYCLE, 1n, 1n, HW_INSTRUCTIONS, 0n).error, NOT_SUPPORTED, "cycle cannot count instructions");
  assert.equal(pmu(2n, BigInt(NUM_COUNTERS), 1n, 0n, HW_INSTRUCTIONS, 0n).error, INVALID_PARAM);
});

test("firmware counters count the firmware events of their own hart", () => {
  const { pmu, call } = setup();
  const ipi = pmu(2n, 0n, FW_MASK, 2n, FW(FW_EVENTS.IPI_SENT), 0n).value;
  const sfence = pmu(2n, 0n, FW_MASK, 2n, FW(FW_EVENTS.SFENCE_VMA_RECEIVED), 0n).value;
  const timer = pmu(2n, 0n, FW_MASK, 2n, FW(FW_EVENTS.SET_TIMER), 0n).value;
  assert.deepEqual(new Set([ipi, sfence, timer]).size, 3, "three different counters");
  assert.equal(pmu(3n, ipi, 1n, 0n, 0n).error, SUCCESS);
  assert.equal(pmu(3n, sfence, 1n, 1n, 100n).error, SUCCESS);
  assert.equal(pmu(3n, timer, 1n, 0n, 0n).error, SUCCESS);
  call(0, EXT_IPI, 0n, 0b11n, 0n); // to both harts: two sent by hart 0
  call(1, EXT_IPI, 0n, 0b1n, 0n); // sent by hart 1: not hart 0's
  call(0, EXT_RFENCE, 1n, 0b1n, 0n, 0x1000n, 0x1000n); // received by hart 0 only
  call(1, EXT_RFENCE, 1n, 0b11n, 0n, 0x1000n, 0x1000n); // received by both
  call(0, EXT_TIME, 0n, 123n);
  call(0, 0n, 0n, 456n); // legacy set_timer
  assert.deepEqual(pmu(5n, ipi), { error: SUCCESS, value: 2n });
  assert.deepEqual(pmu(5n, sfence), { error: SUCCESS, value: 102n });
  assert.deepEqual(pmu(5n, timer), { error: SUCCESS, value: 2n });
  assert.deepEqual(pmu(6n, timer), { error: SUCCESS, value: 0n }, "fw_read_hi: 0 on RV64");
  assert.equal(pmu(4n, timer, 1n, 0n).error, SUCCESS);
  call(0, EXT_TIME, 0n, 789n);
  assert.equal(pmu(5n, timer).value, 2n, "not counted while stopped");
  assert.equal(pmu(3n, timer, 1n, 0n, 0n).error, SUCCESS);
  call(0, EXT_TIME, 0n, 789n);
  assert.equal(pmu(5n, timer).value, 3n, "counts on from its value");
  assert.equal(pmu(5n, CYCLE).error, INVALID_PARAM, "fw_read of a hardware counter");
  assert.equal(pmu(4n, timer, 1n, 1n).error, SUCCESS);
  assert.equal(pmu(5n, timer).error, INVALID_PARAM, "reset: unconfigured");
  // Hart 1's own counter saw hart 1's sends.
  const other = call(1, EXT_PMU, 2n, 0n, FW_MASK, 4n, FW(FW_EVENTS.IPI_SENT), 0n).value;
  call(1, EXT_IPI, 0n, 0b1n, 0n);
  assert.equal(call(1, EXT_PMU, 5n, other).value, 1n);
  assert.equal(call(0, EXT_PMU, 5n, ipi).value, 2n);
  assert.equal(pmu(2n, 0n, FW_MASK, 0n, FW(22), 0n).error, NOT_SUPPORTED, "reserved firmware event");
  assert.equal(pmu(2n, 0n, FW_MASK, 0n, FW(0xffff), 0n).error, NOT_SUPPORTED, "platform firmware events");
});

test("snapshot shared memory is not offered; HSM hart_start resets that hart's PMU", () => {
  const { pmu, call, hw, sbi } = setup();
  assert.equal(pmu(7n, 0x8000_0000n, 0n, 0n).error, NOT_SUPPORTED);
  assert.equal(pmu(3n, INSTRET, 1n, 2n, 0n).error, NO_SHMEM);
  assert.equal(pmu(4n, INSTRET, 1n, 2n).error, NO_SHMEM);
  assert.equal(pmu(99n).error, NOT_SUPPORTED);
  // Hart 1 stops its counters and configures a firmware counter, then is started again.
  call(1, EXT_PMU, 4n, CYCLE, 0b101n, 1n);
  const f = call(1, EXT_PMU, 2n, 0n, FW_MASK, 4n, FW(FW_EVENTS.SET_TIMER), 0n).value;
  assert.ok(hw[1]!.counterStopped("instret"));
  assert.equal(call(0, EXT_HSM, 0n, 1n, 0x8020_0000n, 0n).error, SUCCESS);
  assert.ok(!hw[1]!.counterStopped("cycle") && !hw[1]!.counterStopped("instret"), "counting again");
  assert.equal(call(1, EXT_PMU, 3n, INSTRET, 1n, 0n, 0n).error, ALREADY_STARTED, "configured again");
  assert.equal(call(1, EXT_PMU, 5n, f).error, INVALID_PARAM, "firmware counters unconfigured");
  assert.equal(sbi.calls.get("PMU"), 8);
});
