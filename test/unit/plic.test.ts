// The PLIC as Linux's irq-sifive-plic.c drives it: 32-bit register accesses, priorities, per-context
// enables and thresholds, claim/complete, and the level-triggered gateways.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Plic, plicWindowSize } from "../../src/devices/plic.js";

const PRIORITY = (src: number): number => 4 * src;
const PENDING = 0x1000;
const ENABLE = (ctx: number, word = 0): number => 0x2000 + 0x80 * ctx + 4 * word;
const THRESHOLD = (ctx: number): number => 0x20_0000 + 0x1000 * ctx;
const CLAIM = (ctx: number): number => THRESHOLD(ctx) + 4;

function setup(harts = 2, ndev = 63) {
  const outputs = new Map<number, boolean>();
  const log: Array<[number, boolean]> = [];
  const plic = new Plic(ndev, 2 * harts, (ctx, on) => {
    outputs.set(ctx, on);
    log.push([ctx, on]);
  });
  const rd = (off: number): number => Number(plic.read(off, 4));
  const wr = (off: number, v: number): void => plic.write(off, 4, BigInt(v));
  const out = (ctx: number): boolean => outputs.get(ctx) ?? false;
  return { plic, rd, wr, out, log };
}

test("window size covers the contexts of every hart", () => {
  assert.equal(plicWindowSize(1), 0x20_2000n);
  assert.equal(plicWindowSize(4), 0x20_8000n);
});

test("priority registers are WARL with 3 bits; source 0 does not exist", () => {
  const { rd, wr } = setup();
  wr(PRIORITY(5), 3);
  assert.equal(rd(PRIORITY(5)), 3);
  wr(PRIORITY(5), 0xffff_ffff);
  assert.equal(rd(PRIORITY(5)), 7);
  wr(PRIORITY(0), 5);
  assert.equal(rd(PRIORITY(0)), 0);
  wr(PRIORITY(64), 5); // beyond ndev = 63
  assert.equal(rd(PRIORITY(64)), 0);
  wr(ENABLE(1), 0xffff_ffff);
  assert.equal(rd(ENABLE(1)), 0xffff_fffe, "bit 0 of enable word 0 is hardwired to zero");
  wr(ENABLE(1, 1), 0xffff_ffff);
  assert.equal(rd(ENABLE(1, 1)), 0xffff_ffff);
  wr(ENABLE(1, 2), 0xffff_ffff);
  assert.equal(rd(ENABLE(1, 2)), 0, "no sources above ndev");
});

test("a pending enabled source above threshold raises only that context", () => {
  const { plic, rd, wr, out } = setup();
  const uart = plic.irqLine(10);
  wr(PRIORITY(10), 1);
  wr(ENABLE(1), 1 << 10); // hart 0 S-mode
  uart.set(true);
  assert.equal(rd(PENDING) >>> 0, 1 << 10);
  assert.equal(out(1), true);
  assert.equal(out(0), false, "M-mode context has it disabled");
  assert.equal(out(3), false, "other hart has it disabled");

  wr(THRESHOLD(1), 1);
  assert.equal(out(1), false, "priority must exceed the threshold");
  wr(THRESHOLD(1), 0);
  assert.equal(out(1), true);
  wr(PRIORITY(10), 0);
  assert.equal(out(1), false, "priority 0 never interrupts");
});

test("claim returns the highest priority, ties to the lowest ID, and clears pending", () => {
  const { plic, rd, wr, out } = setup();
  for (const s of [3, 4, 40]) {
    wr(PRIORITY(s), s === 40 ? 5 : 2);
    plic.irqLine(s).set(true);
  }
  wr(ENABLE(1), (1 << 3) | (1 << 4));
  wr(ENABLE(1, 1), 1 << (40 - 32));
  assert.equal(rd(CLAIM(1)), 40);
  assert.equal(rd(PENDING + 4) & (1 << 8), 0, "claim clears the pending bit");
  assert.equal(rd(CLAIM(1)), 3);
  assert.equal(rd(CLAIM(1)), 4);
  assert.equal(out(1), false);
  assert.equal(rd(CLAIM(1)), 0, "nothing left");
  assert.equal(plic.counters.emptyClaims, 1);
});

test("the threshold gates notification, not claims (spec: Interrupt Claim Process)", () => {
  const { plic, rd, wr, out } = setup();
  wr(PRIORITY(7), 1);
  wr(ENABLE(1), 1 << 7);
  wr(THRESHOLD(1), 7);
  plic.irqLine(7).set(true);
  assert.equal(out(1), false);
  assert.equal(rd(CLAIM(1)), 7);
});

test("level-triggered gateway: no new request until completion, then again if still high", () => {
  const { plic, rd, wr, out } = setup();
  const line = plic.irqLine(10);
  wr(PRIORITY(10), 1);
  wr(ENABLE(1), 1 << 10);
  line.set(true);
  assert.equal(rd(CLAIM(1)), 10);
  assert.equal(out(1), false, "in service: the high level does not re-raise");
  line.set(false);
  line.set(true);
  assert.equal(rd(PENDING) & (1 << 10), 0, "gateway stays closed until completion");
  wr(CLAIM(1), 10);
  assert.equal(out(1), true, "completion with the level still high re-raises");
  assert.equal(rd(CLAIM(1)), 10);
  line.set(false);
  wr(CLAIM(1), 10);
  assert.equal(out(1), false, "completion with the level low leaves it quiet");
  assert.equal(rd(PENDING) & (1 << 10), 0);
});

test("a request is not withdrawn when the level drops before the claim (spec: Interrupt Gateways)", () => {
  const { plic, rd, wr, out } = setup();
  const line = plic.irqLine(2);
  wr(PRIORITY(2), 1);
  wr(ENABLE(1), 1 << 2);
  line.set(true);
  line.set(false);
  assert.equal(out(1), true);
  assert.equal(rd(CLAIM(1)), 2);
});

test("completion for a source not enabled in that context is ignored", () => {
  const { plic, rd, wr, out } = setup();
  const line = plic.irqLine(9);
  wr(PRIORITY(9), 1);
  wr(ENABLE(1), 1 << 9);
  line.set(true);
  assert.equal(rd(CLAIM(1)), 9);
  wr(CLAIM(3), 9); // hart 1's S context does not enable 9
  assert.equal(out(1), false, "still in service");
  // Linux's eoi for a masked irq: enable, complete, disable.
  wr(ENABLE(1), 0);
  wr(CLAIM(1), 9);
  assert.equal(rd(PENDING) & (1 << 9), 0, "ignored while disabled");
  wr(ENABLE(1), 1 << 9);
  wr(CLAIM(1), 9);
  wr(ENABLE(1), 0);
  assert.equal(rd(PENDING) & (1 << 9), 1 << 9, "the accepted completion re-opened the gateway");
});

test("every enabled context is notified; the first claim wins", () => {
  const { plic, rd, wr, out } = setup();
  wr(PRIORITY(1), 1);
  wr(ENABLE(1), 2);
  wr(ENABLE(3), 2);
  plic.irqLine(1).set(true);
  assert.equal(out(1), true);
  assert.equal(out(3), true);
  assert.equal(rd(CLAIM(3)), 1);
  assert.equal(out(1), false);
  assert.equal(rd(CLAIM(1)), 0);
});

test("onChange reports transitions only", () => {
  const { plic, wr, log } = setup(1);
  wr(PRIORITY(1), 1);
  wr(PRIORITY(2), 1);
  wr(ENABLE(1), 6);
  plic.irqLine(1).set(true);
  plic.irqLine(2).set(true);
  assert.deepEqual(log, [[1, true]]);
});

test("narrow and wide accesses are lenient", () => {
  const { plic } = setup();
  plic.write(PRIORITY(3), 1, 5n);
  assert.equal(plic.read(PRIORITY(3), 4), 5n);
  assert.equal(plic.read(PRIORITY(3), 1), 5n);
  plic.write(PRIORITY(4), 8, (2n << 32n) | 6n); // sources 4 and 5
  assert.equal(plic.read(PRIORITY(4), 4), 6n);
  assert.equal(plic.read(PRIORITY(5), 4), 2n);
  assert.equal(plic.read(PRIORITY(4), 8), (2n << 32n) | 6n);
  assert.equal(plic.read(PRIORITY(4) + 1, 4), 0n, "misaligned word access reads zero");
});

test("save and restore carry everything, including in-service gateways", () => {
  const a = setup();
  a.wr(PRIORITY(10), 3);
  a.wr(PRIORITY(11), 2);
  a.wr(ENABLE(1), (1 << 10) | (1 << 11));
  a.wr(THRESHOLD(3), 4);
  a.plic.irqLine(10).set(true);
  a.plic.irqLine(11).set(true);
  assert.equal(a.rd(CLAIM(1)), 10);
  const state = a.plic.save();

  const b = setup();
  b.plic.restore(state);
  assert.equal(b.out(1), true, "restore reports outputs");
  assert.equal(b.rd(THRESHOLD(3)), 4);
  assert.equal(b.rd(PRIORITY(10)), 3);
  assert.equal(b.rd(CLAIM(1)), 11);
  b.wr(CLAIM(1), 10); // 10 was in service at save time and its level is still high
  assert.equal(b.rd(CLAIM(1)), 10);
  assert.throws(() => setup(1).plic.restore(state), /contexts/);
});
