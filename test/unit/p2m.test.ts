// The p2m table: contiguous guest-physical RAM over discontiguous machine frames.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MachineMemory, FRAME_BYTES } from "../../src/machine/memory.js";
import { P2m } from "../../src/vmm/p2m.js";

const BASE = 0x8000_0000n;

test("scattered frames: guest RAM is contiguous, machine frames are not", () => {
  const mem = new MachineMemory(16 << 20);
  const p2m = new P2m(mem.account("vm"), BASE, 4 << 20, 7);
  const st = p2m.stats();
  assert.equal(st.frames, 1024);
  assert.ok(st.contiguousRuns > 900, `frames are scattered (${st.contiguousRuns} runs)`);
  const seen = new Set<number>();
  for (let i = 0; i < p2m.frames; i++) seen.add(p2m.machineFrame(i));
  assert.equal(seen.size, p2m.frames, "no machine frame backs two guest frames");
  assert.ok(!seen.has(0), "the module's reserved frames are never handed out");
});

test("bytes written across frame boundaries read back, and land in the mapped machine frames", () => {
  const mem = new MachineMemory(16 << 20);
  const p2m = new P2m(mem.account("vm"), BASE, 1 << 20, 3);
  const data = new Uint8Array(3 * FRAME_BYTES + 100).map((_, i) => (i * 7 + 3) & 0xff);
  const gpa = BASE + 0x1f00n; // straddles four frames
  p2m.write(gpa, data);
  assert.deepEqual(p2m.read(gpa, data.length), data);
  for (const probe of [0, 255, 256, FRAME_BYTES + 1, data.length - 1]) {
    const m = p2m.machine(gpa + BigInt(probe))!;
    assert.equal(mem.bytesAt(m, 1)[0], data[probe]);
  }
});

test("addresses outside guest RAM have no machine address and cannot be touched", () => {
  const mem = new MachineMemory(8 << 20);
  const p2m = new P2m(mem.account("vm"), BASE, 1 << 20);
  assert.equal(p2m.machine(BASE - 1n), undefined);
  assert.equal(p2m.machine(BASE + (1n << 20n)), undefined);
  assert.notEqual(p2m.machine(BASE + (1n << 20n) - 1n), undefined);
  assert.throws(() => p2m.write(BASE + (1n << 20n) - 2n, new Uint8Array(4)), RangeError);
  assert.throws(() => p2m.read(BASE - 4n, 8), RangeError);
});

test("two VMs get disjoint machine frames, and releasing their accounts returns every frame", () => {
  const mem = new MachineMemory(16 << 20);
  const before = mem.allocatedFrames;
  const accA = mem.account("a");
  const accB = mem.account("b");
  const a = new P2m(accA, BASE, 2 << 20, 11);
  const b = new P2m(accB, BASE, 2 << 20, 12);
  assert.deepEqual(accA.counts(), { ram: 512, p2m: 1, hart: 0, vmm: 0, shadow: 0 });
  const framesA = new Set(Array.from({ length: a.frames }, (_, i) => a.machineFrame(i)));
  for (let i = 0; i < b.frames; i++) assert.ok(!framesA.has(b.machineFrame(i)), "frame shared between VMs");
  assert.equal(mem.allocatedFrames, before + accA.total + accB.total);
  accA.release();
  accB.release();
  assert.equal(mem.allocatedFrames, before);
  assert.equal(mem.accountList().length, 0);
});

test("a machine refuses what does not fit and says how much is free; freed frames are reused", () => {
  const mem = new MachineMemory(8 << 20);
  const acc = mem.account("big");
  assert.throws(() => acc.frames("ram", 4096), /machine memory is full: 4096 frames \(16 MiB\) asked for, [\d.]+ MiB free of 8.0 MiB/);
  const run = acc.contiguous("vmm", 256);
  const free = mem.freeFrameCount;
  acc.free(run);
  assert.equal(mem.freeFrameCount, free + 256);
  assert.equal(acc.contiguous("vmm", 256), run, "the lowest free run is handed out again");
});
