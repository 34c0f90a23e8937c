// The VM's ring of posted MMIO stores (src/vmm/vcb.ts PostRing), with real threads: workers that
// post under a lock the way a guest's vCPUs write a device's registers under its driver's lock,
// the main thread draining as the host does. The stores must come out in the order the lock
// handed them out, whatever the interleaving; a full ring refuses a store (it then goes to the
// host as an exit) and loses none; tickets that wrap past 2^31 keep their order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { PostRing, Vcb, VCB_BYTES, VCB_POST_HEAD, VCB_POST_TAIL, POST_SLOTS } from "../../src/vmm/vcb.js";

const VCB_URL = new URL("../../src/vmm/vcb.js", import.meta.url).href;
const BASE = 0x1000_0000n;

// Two vCPU blocks (vCPU 0's holds the ring) and, after them, a lock word and a counter.
function blocks(): { buffer: SharedArrayBuffer; vcbs: Vcb[]; ring: PostRing; lockAt: number } {
  const buffer = new SharedArrayBuffer(2 * VCB_BYTES + 64);
  const vcbs = [0, 1].map((i) => new Vcb(buffer, i * VCB_BYTES));
  for (const v of vcbs) v.setPostable([{ base: BASE, size: 0x100n }], 0n, 0);
  return { buffer, vcbs, ring: new PostRing(buffer, 0), lockAt: 2 * VCB_BYTES };
}

// A worker that, STORES times, takes the spin lock, bumps the counter, posts its value to the
// device window from its own vCPU block (retrying while the ring is full) and releases the lock.
const PRODUCER = `
const { workerData } = require("node:worker_threads");
import(workerData.url).then(({ Vcb }) => {
  const { buffer, vcbAt, lockAt, stores } = workerData;
  const vcb = new Vcb(buffer, vcbAt);
  const w = new Int32Array(buffer, lockAt, 2);
  for (let i = 0; i < stores; i++) {
    while (Atomics.compareExchange(w, 0, 0, 1) !== 0);
    const n = Atomics.add(w, 1, 1) + 1;
    while (!vcb.post(${BASE}n + BigInt(vcbAt === 0 ? 0 : 8), 4, BigInt(n)));
    Atomics.store(w, 0, 0);
  }
});
`;

test("stores posted by two threads under a lock come out in lock order", async () => {
  const { buffer, ring, lockAt } = blocks();
  const STORES = 20_000;
  const workers = [0, VCB_BYTES].map((vcbAt) => new Worker(PRODUCER, { eval: true, workerData: { url: VCB_URL, buffer, vcbAt, lockAt, stores: STORES } }));
  const ended = workers.map((w) => new Promise<void>((res, rej) => { w.on("exit", () => res()); w.on("error", rej); }));
  const seen: bigint[] = [];
  const from = new Set<bigint>();
  const take = (addr: bigint, size: number, value: bigint): void => {
    assert.equal(size, 4);
    from.add(addr);
    seen.push(value);
  };
  let done = false;
  void Promise.all(ended).then(() => { done = true; });
  // Drain while the workers post, as the host does when a doorbell rings; then what is left.
  while (!done) {
    ring.drain(take);
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(ended);
  ring.drain(take);
  assert.equal(seen.length, 2 * STORES, "every store came out once");
  assert.deepEqual([...from].sort(), [BASE, BASE + 8n], "both threads posted");
  for (let i = 0; i < seen.length; i++) {
    if (seen[i] !== BigInt(i + 1)) assert.fail(`store ${i} carries ${seen[i]}: out of lock order`);
  }
});

test("a full ring refuses a store and loses none; tickets wrapping past 2^31 keep their order", () => {
  const { buffer, vcbs, ring } = blocks();
  const i32 = new Int32Array(buffer, 0, VCB_BYTES / 4);
  // Start just below the i32 wrap, so that the tickets wrap while the ring is full.
  i32[VCB_POST_HEAD / 4] = 0x7fff_ffff - 10;
  i32[VCB_POST_TAIL / 4] = 0x7fff_ffff - 10;
  let posted = 0;
  for (let i = 0; i < POST_SLOTS; i++) assert.ok(vcbs[i & 1]!.post(BASE, 1, BigInt(posted++)), `slot ${i} free`);
  assert.equal(vcbs[0]!.post(BASE, 1, 999n), false, "a full ring refuses");
  assert.equal(vcbs[1]!.post(BASE + 0x100n, 1, 0n), false, "outside the device windows nothing is posted");
  const out: bigint[] = [];
  const half = POST_SLOTS / 2;
  // Drain half from inside a device write (a drain set off by a device) and the rest after it.
  let nested = false;
  assert.equal(ring.drain((_a, _s, v) => {
    out.push(v);
    if (!nested && out.length === half) {
      nested = true;
      ring.drain((_a2, _s2, v2) => out.push(v2));
    }
  }), half);
  for (let i = 0; i < 5; i++) assert.ok(vcbs[1]!.post(BASE, 1, BigInt(posted++)), "room again after a drain");
  ring.drain((_a, _s, v) => out.push(v));
  assert.deepEqual(out, Array.from({ length: posted }, (_, i) => BigInt(i)), "each store once, in order, across the wrap");
  assert.ok(i32[VCB_POST_TAIL / 4]! < 0, "the tickets did wrap");
});
