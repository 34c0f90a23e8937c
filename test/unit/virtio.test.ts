// The virtio-mmio transport (version 2) and the devices behind it (src/devices/virtio/), driven
// through their 32-bit registers the way Linux's virtio_mmio.c and virtio_ring.c drive them
// (virtio 1.2 sections 3.1.1 and 4.2.3): feature negotiation and the status register, split
// virtqueues built in guest RAM over scattered machine frames (seed 7), used-buffer interrupts
// and their acknowledgement, event-index suppression, indirect descriptors; virtio-rng,
// virtio-blk over a real raw image in a temporary directory (asynchronous completion), and
// virtio-console. Hostile rings and queue configurations must put the device into
// DEVICE_NEEDS_RESET without touching one byte of machine memory outside the guest's RAM frames,
// and a reset (or a disabled queue) must stop late block completions from reaching the guest.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FRAME_BYTES, MachineMemory } from "../../src/machine/memory.js";
import { P2m } from "../../src/vmm/p2m.js";
import { GuestDma } from "../../src/devices/virtio/dma.js";
import { VirtioMmio } from "../../src/devices/virtio/mmio.js";
import type { VirtioDevice } from "../../src/devices/virtio/device.js";
import { VirtioRng } from "../../src/devices/virtio/rng.js";
import { VirtioBlk, type BlockBackend } from "../../src/devices/virtio/blk.js";
import { VirtioConsole } from "../../src/devices/virtio/console.js";
import { RawImage } from "../../src/host/disks/raw.js";

const BASE = 0x8000_0000n;
const RAM_BYTES = 1 << 20;
const RAM_END = BASE + BigInt(RAM_BYTES);

// Registers (4.2.2).
const MAGIC = 0x000, VERSION = 0x004, DEVICE_ID = 0x008, DEVICE_FEATURES = 0x010, DEVICE_FEATURES_SEL = 0x014,
  DRIVER_FEATURES = 0x020, DRIVER_FEATURES_SEL = 0x024, QUEUE_SEL = 0x030, QUEUE_NUM_MAX = 0x034, QUEUE_NUM = 0x038,
  QUEUE_READY = 0x044, QUEUE_NOTIFY = 0x050, INTERRUPT_STATUS = 0x060, INTERRUPT_ACK = 0x064, STATUS = 0x070,
  QUEUE_DESC_LOW = 0x080, QUEUE_DESC_HIGH = 0x084, QUEUE_DRIVER_LOW = 0x090, QUEUE_DRIVER_HIGH = 0x094,
  QUEUE_DEVICE_LOW = 0x0a0, QUEUE_DEVICE_HIGH = 0x0a4, CONFIG_GENERATION = 0x0fc, CONFIG = 0x100;
// Status bits (2.1).
const ACKNOWLEDGE = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8, NEEDS_RESET = 0x40, FAILED = 0x80;
const INT_USED = 1, INT_CONFIG = 2;
// Feature bits.
const F_INDIRECT = 28, F_EVENT_IDX = 29, F_VERSION_1 = 32, F_RING_PACKED = 34;
const BLK_F_SIZE_MAX = 1, BLK_F_SEG_MAX = 2, BLK_F_RO = 5, BLK_F_BLK_SIZE = 6, BLK_F_FLUSH = 9;
const bit = (n: number): bigint => 1n << BigInt(n);
// Descriptor flags.
const NEXT = 1, WRITE = 2, INDIRECT = 4;
// virtio-blk request types and status.
const T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8;
const S_OK = 0, S_IOERR = 1, S_UNSUPP = 2;

// ---- the machine: 64 MiB, one VM account, 1 MiB of guest RAM over scattered frames ----

interface Env {
  mem: MachineMemory;
  ram: P2m;
  dma: GuestDma;
}

function machine(): Env {
  const mem = new MachineMemory(64 << 20);
  const acct = mem.account("t");
  const ram = new P2m(acct, BASE, RAM_BYTES, 7);
  const dma = new GuestDma(mem, ram);
  return { mem, ram, dma };
}

const inRam = (gpa: bigint, len: number): boolean => gpa >= BASE && gpa + BigInt(len) <= RAM_END;

// The tests that watch machine memory share one machine (its 64 MiB touched once, not per test):
// each takes a VM account and guest RAM from it and gives them back at the end.
let shared: { mem: MachineMemory; copy: Uint8Array } | undefined;

interface WatchedEnv extends Env {
  // Fails if any byte of machine memory outside the guest's RAM frames changed since the start.
  unchanged(): void;
  release(): void;
}

function watchedMachine(): WatchedEnv {
  shared ??= { mem: new MachineMemory(64 << 20), copy: new Uint8Array(64 << 20) };
  const { mem, copy } = shared;
  const acct = mem.account("t");
  const ram = new P2m(acct, BASE, RAM_BYTES, 7);
  ram.fill(BASE, RAM_BYTES, 0);
  const env = { mem, ram, dma: new GuestDma(mem, ram) };
  return { ...env, unchanged: watchOutsideRam(env, copy), release: () => acct.release() };
}

// Fills every free machine frame with canaries (so that even a stray write of zeros shows), then
// keeps a copy of all machine memory outside the guest's RAM frames (the module's region, the
// translator's tracking, the p2m table, free frames); the returned check compares every byte.
function watchOutsideRam(env: Env, copy: Uint8Array): () => void {
  const { mem, ram } = env;
  for (const off of mem.freeFrames()) mem.bytesAt(off, FRAME_BYTES).fill(0xa5 ^ ((off / FRAME_BYTES) & 0xff));
  const guest = new Set<number>();
  for (let i = 0; i < ram.frames; i++) guest.add(ram.machineFrame(i));
  const frames = mem.bytes / FRAME_BYTES;
  const ranges: Array<[number, number]> = [];
  let start = -1;
  for (let f = 0; f <= frames; f++) {
    const outside = f < frames && !guest.has(f);
    if (outside && start < 0) start = f;
    if (!outside && start >= 0) {
      ranges.push([start * FRAME_BYTES, f * FRAME_BYTES]);
      start = -1;
    }
  }
  assert.ok(ranges.length > 100, "the guest's frames are scattered through machine memory");
  assert.equal(copy.length, mem.bytes);
  copy.set(mem.bytesAt(0, mem.bytes));
  const copies = ranges.map(([a, b]) => Buffer.from(copy.buffer, a, b - a));
  return () => {
    assert.equal(mem.bytes / FRAME_BYTES, frames, "machine memory did not grow");
    ranges.forEach(([a, b], k) => {
      const now = Buffer.from(mem.buffer, a, b - a);
      if (now.equals(copies[k]!)) return;
      let i = 0;
      while (now[i] === copies[k]![i]) i++;
      assert.fail(`machine byte 0x${(a + i).toString(16)} (frame ${Math.floor((a + i) / FRAME_BYTES)}), outside guest RAM, changed`);
    });
  };
}

// ---- the driver side of a split virtqueue (2.7), in guest RAM ----

interface Seg {
  gpa: bigint;
  len: number;
  write?: boolean;
}

interface Used {
  id: number;
  len: number;
}

function descBytes(addr: bigint, len: number, flags: number, next: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, addr, true);
  v.setUint32(8, len >>> 0, true);
  v.setUint16(12, flags, true);
  v.setUint16(14, next, true);
  return b;
}

const le16 = (v: number): Uint8Array => Uint8Array.of(v & 0xff, (v >>> 8) & 0xff);

class Ring {
  private free: number[];
  private readonly chains = new Map<number, number[]>();
  availIdx = 0;
  lastUsed = 0;

  constructor(private readonly ram: P2m, readonly size: number, readonly desc: bigint, readonly avail: bigint, readonly used: bigint) {
    // The driver's rings start zeroed (Linux allocates them with alloc_pages_exact + memset).
    for (const [gpa, len] of [[desc, 16 * size], [avail, 6 + 2 * size], [used, 6 + 8 * size]] as const) {
      if (inRam(gpa, len)) ram.fill(gpa, len, 0);
    }
    this.free = Array.from({ length: size }, (_, i) => i);
  }

  w16(gpa: bigint, v: number): void {
    this.ram.write(gpa, le16(v));
  }

  r16(gpa: bigint): number {
    const b = this.ram.read(gpa, 2);
    return b[0]! | (b[1]! << 8);
  }

  writeDesc(i: number, addr: bigint, len: number, flags: number, next = 0): void {
    this.ram.write(this.desc + BigInt(16 * i), descBytes(addr, len, flags, next));
  }

  // Puts segs in free descriptors, linked by NEXT; returns the head (not yet made available).
  chain(segs: Seg[]): number {
    assert.ok(segs.length <= this.free.length, "free descriptors");
    const ids = this.free.splice(0, segs.length);
    segs.forEach((s, k) => {
      const last = k === segs.length - 1;
      this.writeDesc(ids[k]!, s.gpa, s.len, (s.write ? WRITE : 0) | (last ? 0 : NEXT), last ? 0 : ids[k + 1]!);
    });
    this.chains.set(ids[0]!, ids);
    return ids[0]!;
  }

  // One descriptor naming an indirect table at `table` that describes segs.
  indirect(table: bigint, segs: Seg[]): number {
    const t = new Uint8Array(16 * segs.length);
    segs.forEach((s, k) => {
      const last = k === segs.length - 1;
      t.set(descBytes(s.gpa, s.len, (s.write ? WRITE : 0) | (last ? 0 : NEXT), last ? 0 : k + 1), 16 * k);
    });
    this.ram.write(table, t);
    const [id] = this.free.splice(0, 1);
    this.writeDesc(id!, table, t.length, INDIRECT);
    this.chains.set(id!, [id!]);
    return id!;
  }

  // Makes chains available: ring entries first, then avail->idx (virtqueue_add_split + kick).
  offer(...heads: number[]): void {
    for (const h of heads) {
      this.w16(this.avail + 4n + BigInt(2 * (this.availIdx % this.size)), h);
      this.availIdx = (this.availIdx + 1) & 0xffff;
    }
    this.setAvailIdx(this.availIdx);
  }

  setAvailIdx(v: number): void {
    this.w16(this.avail + 2n, v);
  }

  setAvailFlags(v: number): void {
    this.w16(this.avail, v);
  }

  setUsedEvent(v: number): void {
    this.w16(this.avail + 4n + BigInt(2 * this.size), v);
  }

  availEvent(): number {
    return this.r16(this.used + 4n + BigInt(8 * this.size));
  }

  usedIdx(): number {
    return this.r16(this.used + 2n);
  }

  pendingUsed(): number {
    return (this.usedIdx() - this.lastUsed) & 0xffff;
  }

  // The used elements since the last call; their descriptors are free again.
  takeUsed(): Used[] {
    const out: Used[] = [];
    const end = this.usedIdx();
    while (this.lastUsed !== end) {
      const e = this.ram.read(this.used + 4n + BigInt(8 * (this.lastUsed % this.size)), 8);
      const v = new DataView(e.buffer);
      const u = { id: v.getUint32(0, true), len: v.getUint32(4, true) };
      out.push(u);
      const ids = this.chains.get(u.id);
      assert.ok(ids, `used id ${u.id} is a head the driver made available`);
      this.chains.delete(u.id);
      this.free.push(...ids);
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    return out;
  }
}

// Ring areas of queue q: deliberately not frame-aligned, so that the descriptor table, the avail
// ring and the used ring of a large queue each cross a guest frame boundary.
function ringAreas(q: number): { desc: bigint; driver: bigint; device: bigint } {
  const at = BASE + BigInt(0x4000 * q);
  return { desc: at + 0x800n, driver: at + 0x1f00n, device: at + 0x2f00n };
}

// Data buffers live from 64 KiB up.
const DATA = BASE + 0x1_0000n;

class FakeIrq {
  level = false;
  raised = 0;
  set(level: boolean): void {
    if (level && !this.level) this.raised++;
    this.level = level;
  }
}

class Driver {
  readonly irq = new FakeIrq();
  readonly t: VirtioMmio;
  readonly rings: Ring[] = [];

  constructor(readonly env: Env, readonly dev: VirtioDevice) {
    this.t = new VirtioMmio(dev, env.dma, this.irq);
  }

  rd(off: number): number {
    return Number(this.t.read(off, 4));
  }

  wr(off: number, v: number | bigint): void {
    this.t.write(off, 4, BigInt(v));
  }

  status(): number {
    return this.rd(STATUS);
  }

  // virtio_add_status: read, or in the bit, write back.
  addStatus(bits: number): void {
    this.wr(STATUS, this.status() | bits);
  }

  // vm_get_features: the high word first, as Linux does.
  deviceFeatures(): bigint {
    this.wr(DEVICE_FEATURES_SEL, 1);
    const hi = BigInt(this.rd(DEVICE_FEATURES));
    this.wr(DEVICE_FEATURES_SEL, 0);
    return (hi << 32n) | BigInt(this.rd(DEVICE_FEATURES));
  }

  // Steps 1 to 6 of 3.1.1: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; whether it stuck.
  negotiate(features: bigint): boolean {
    this.wr(STATUS, 0);
    assert.equal(this.status(), 0, "reset reads back 0");
    this.addStatus(ACKNOWLEDGE);
    this.addStatus(DRIVER);
    this.deviceFeatures();
    this.wr(DRIVER_FEATURES_SEL, 1);
    this.wr(DRIVER_FEATURES, features >> 32n);
    this.wr(DRIVER_FEATURES_SEL, 0);
    this.wr(DRIVER_FEATURES, features & 0xffff_ffffn);
    this.addStatus(FEATURES_OK);
    return (this.status() & FEATURES_OK) !== 0;
  }

  // vm_setup_vq for queue q.
  queue(q: number, size: number, areas: Partial<ReturnType<typeof ringAreas>> = {}): Ring {
    const a = { ...ringAreas(q), ...areas };
    this.wr(QUEUE_SEL, q);
    assert.equal(this.rd(QUEUE_READY), 0, `queue ${q} is not ready before it is set up`);
    const ring = new Ring(this.env.ram, size, a.desc, a.driver, a.device);
    this.wr(QUEUE_NUM, size);
    this.wr(QUEUE_DESC_LOW, a.desc & 0xffff_ffffn);
    this.wr(QUEUE_DESC_HIGH, a.desc >> 32n);
    this.wr(QUEUE_DRIVER_LOW, a.driver & 0xffff_ffffn);
    this.wr(QUEUE_DRIVER_HIGH, a.driver >> 32n);
    this.wr(QUEUE_DEVICE_LOW, a.device & 0xffff_ffffn);
    this.wr(QUEUE_DEVICE_HIGH, a.device >> 32n);
    this.wr(QUEUE_READY, 1);
    this.rings[q] = ring;
    return ring;
  }

  // The whole of 3.1.1: VERSION_1 and `features`, every queue at `sizes` (default 16 or the max).
  init(opts: { features?: bigint; sizes?: number[] } = {}): this {
    const want = bit(F_VERSION_1) | (opts.features ?? 0n);
    assert.equal(this.deviceFeatures() & want, want, "the device offers what the driver wants");
    assert.ok(this.negotiate(want), "FEATURES_OK sticks");
    const sizes = opts.sizes ?? this.dev.queueMax.map((m) => Math.min(m, 16));
    sizes.forEach((size, q) => {
      this.wr(QUEUE_SEL, q);
      assert.ok(size <= this.rd(QUEUE_NUM_MAX));
      this.queue(q, size);
      assert.equal(this.rd(QUEUE_READY), 1, `queue ${q} ready`);
    });
    this.addStatus(DRIVER_OK);
    assert.equal(this.status(), ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    return this;
  }

  kick(q: number): void {
    this.wr(QUEUE_NOTIFY, q);
  }

  isr(): number {
    return this.rd(INTERRUPT_STATUS);
  }

  ack(bits = this.isr()): void {
    this.wr(INTERRUPT_ACK, bits);
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

// Waits (a bounded number of event-loop turns) for n used elements on ring r.
async function waitUsed(r: Ring, n = 1): Promise<Used[]> {
  const deadline = Date.now() + 5000;
  for (let turns = 0; r.pendingUsed() < n; turns++) {
    if (turns > 100_000 || Date.now() > deadline) assert.fail(`${r.pendingUsed()} of ${n} used elements after ${turns} turns`);
    await tick();
  }
  return r.takeUsed();
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  for (let turns = 0; !cond(); turns++) {
    if (turns > 100_000 || Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await tick();
  }
}

const allZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

// One rng request of `len` writable bytes at `gpa`; returns its used element.
function rngRequest(d: Driver, gpa = DATA, len = 64): Used {
  const r = d.rings[0]!;
  const head = r.chain([{ gpa, len, write: true }]);
  r.offer(head);
  d.kick(0);
  const used = r.takeUsed();
  assert.equal(used.length, 1);
  assert.deepEqual(used[0], { id: head, len });
  return used[0]!;
}

// ---- registers, features, status ----

// A backend for tests that only look at registers.
const memDisk = (bytes: number, readOnly = false): BlockBackend => {
  const data = new Uint8Array(bytes);
  return {
    sizeBytes: bytes,
    readOnly,
    read: async (off, into) => { into.set(data.subarray(off, off + into.length)); },
    write: async (off, d) => { data.set(d, off); },
    flush: async () => {},
    close: async () => {},
  };
};

test("registers: magic, version 2, device IDs, and the transport's features offered by every device", () => {
  const env = machine();
  const devices: Array<[VirtioDevice, number, number[]]> = [
    [new VirtioBlk("virtio-blk vda", memDisk(1 << 16), "vda"), 2, [256]],
    [new VirtioConsole(() => {}), 3, [64, 64]],
    [new VirtioRng(), 4, [64]],
  ];
  for (const [dev, id, maxes] of devices) {
    const d = new Driver(env, dev);
    assert.equal(d.rd(MAGIC), 0x74726976, "\"virt\"");
    assert.equal(d.rd(VERSION), 2);
    assert.equal(d.rd(DEVICE_ID), id);
    const f = d.deviceFeatures();
    for (const b of [F_VERSION_1, F_INDIRECT, F_EVENT_IDX]) assert.notEqual(f & bit(b), 0n, `${dev.name} offers bit ${b}`);
    assert.equal(f & bit(F_RING_PACKED), 0n, "no packed rings");
    d.wr(DEVICE_FEATURES_SEL, 2);
    assert.equal(d.rd(DEVICE_FEATURES), 0, "no feature words beyond 64 bits");
    maxes.forEach((m, q) => {
      d.wr(QUEUE_SEL, q);
      assert.equal(d.rd(QUEUE_NUM_MAX), m, `${dev.name} queue ${q} max`);
    });
    d.wr(QUEUE_SEL, maxes.length);
    assert.equal(d.rd(QUEUE_NUM_MAX), 0, "a queue that does not exist has max 0");
    assert.equal(Number(d.t.read(MAGIC, 1)), 0, "registers are 32-bit only");
    assert.equal(d.status(), 0);
  }
});

test("FEATURES_OK is refused without VERSION_1 or for a bit not offered, and accepted for a subset", () => {
  const d = new Driver(machine(), new VirtioRng());
  assert.equal(d.negotiate(bit(F_EVENT_IDX)), false, "legacy driver (no VERSION_1)");
  assert.equal(d.status(), ACKNOWLEDGE | DRIVER);
  assert.equal(d.negotiate(bit(F_VERSION_1) | bit(F_RING_PACKED)), false, "packed rings are not offered");
  assert.equal(d.negotiate(bit(F_VERSION_1) | bit(0)), false, "rng offers no device bits");
  assert.equal(d.negotiate(bit(F_VERSION_1) | bit(F_EVENT_IDX) | bit(F_INDIRECT)), true);
  assert.equal(d.status(), ACKNOWLEDGE | DRIVER | FEATURES_OK);
  assert.equal(d.t.has(F_EVENT_IDX), true);
  // Once FEATURES_OK is set, DriverFeatures is no longer writable.
  const ignored = d.t.stats().transport.ignored;
  d.wr(DRIVER_FEATURES_SEL, 0);
  d.wr(DRIVER_FEATURES, 0);
  assert.equal(d.t.stats().transport.ignored, ignored + 1);
  assert.equal(d.t.has(F_EVENT_IDX), true, "the late write changed nothing");
  assert.equal(d.t.has(F_VERSION_1), true);
});

test("DRIVER_OK without FEATURES_OK puts the device into DEVICE_NEEDS_RESET with a config interrupt", () => {
  const d = new Driver(machine(), new VirtioRng());
  d.addStatus(ACKNOWLEDGE);
  d.addStatus(DRIVER);
  d.addStatus(DRIVER_OK);
  assert.notEqual(d.status() & NEEDS_RESET, 0);
  assert.equal(d.isr() & INT_CONFIG, INT_CONFIG);
  assert.equal(d.irq.level, true);
  assert.match(d.t.stats().lastError ?? "", /FEATURES_OK/);
  // Until a reset, only FAILED can still be set.
  d.addStatus(FEATURES_OK | FAILED);
  assert.equal(d.status() & (FEATURES_OK | FAILED), FAILED);
  d.init();
  rngRequest(d);
});

test("reset (status 0) clears status, interrupts, queues and selectors; the device works after a fresh init", () => {
  const env = machine();
  const d = new Driver(env, new VirtioRng()).init({ features: bit(F_EVENT_IDX) });
  rngRequest(d);
  assert.equal(d.isr(), INT_USED);
  assert.equal(d.irq.level, true);
  d.wr(DEVICE_FEATURES_SEL, 1);
  d.wr(QUEUE_SEL, 5);

  d.wr(STATUS, 0);
  assert.equal(d.status(), 0);
  assert.equal(d.isr(), 0);
  assert.equal(d.irq.level, false, "the interrupt line drops with the reset");
  assert.equal(d.rd(DEVICE_FEATURES), Number(d.deviceFeatures() & 0xffff_ffffn), "DeviceFeaturesSel back to 0");
  assert.equal(d.rd(QUEUE_NUM_MAX), 64, "QueueSel back to 0");
  assert.equal(d.rd(QUEUE_READY), 0);
  assert.equal(d.t.has(F_EVENT_IDX), false, "negotiated features forgotten");
  assert.equal(d.t.stats().transport.resets, 2, "init's own reset, then this one");

  // The old queue is gone: buffers made available on it and notified are not touched.
  const old = d.rings[0]!;
  const used = old.usedIdx();
  env.ram.fill(DATA, 64, 0);
  old.offer(old.chain([{ gpa: DATA, len: 64, write: true }]));
  d.kick(0);
  assert.equal(old.usedIdx(), used);
  assert.ok(allZero(env.ram.read(DATA, 64)));
  assert.equal(d.isr(), 0);

  d.init();
  rngRequest(d);
  assert.equal(d.isr(), INT_USED);
});

test("queue registers are ignored while the queue is ready", () => {
  const d = new Driver(machine(), new VirtioRng()).init({ sizes: [8] });
  const ignored = d.t.stats().transport.ignored;
  d.wr(QUEUE_SEL, 0);
  d.wr(QUEUE_NUM, 4);
  d.wr(QUEUE_DESC_LOW, 0);
  d.wr(QUEUE_DEVICE_HIGH, 1);
  assert.equal(d.t.stats().transport.ignored, ignored + 3);
  for (let i = 0; i < 8; i++) rngRequest(d, DATA, 16); // still 8 entries at the old addresses
  assert.equal(d.status() & NEEDS_RESET, 0);
});

// ---- virtio-rng ----

test("virtio-rng fills a chain across a guest frame boundary, answers in the used ring, and interrupts", () => {
  const env = machine();
  const { ram } = env;
  const d = new Driver(env, new VirtioRng()).init();
  const r = d.rings[0]!;
  // The first buffer crosses from guest frame 0x10 into 0x11, which lie apart in machine memory.
  const a = BASE + 0x1_0f00n;
  const f = Number((a - BASE) / BigInt(FRAME_BYTES));
  assert.notEqual(ram.machineFrame(f) + 1, ram.machineFrame(f + 1), "the boundary is a real discontinuity");
  const b = BASE + 0x2_3456n;
  ram.fill(a - 16n, 0x200 + 32, 0xcc);
  ram.fill(b, 100 + 16, 0xcc);
  ram.fill(a, 0x200, 0);
  ram.fill(b, 100, 0);
  const head = r.chain([{ gpa: a, len: 0x200, write: true }, { gpa: b, len: 100, write: true }]);
  r.offer(head);
  assert.equal(d.irq.level, false);
  d.kick(0);
  assert.deepEqual(r.takeUsed(), [{ id: head, len: 0x200 + 100 }]);
  assert.ok(!allZero(ram.read(a, 0x100)), "before the boundary");
  assert.ok(!allZero(ram.read(a + 0x100n, 0x100)), "after the boundary");
  assert.ok(!allZero(ram.read(b, 100)));
  assert.ok(ram.read(a - 16n, 16).every((x) => x === 0xcc) && ram.read(a + 0x200n, 16).every((x) => x === 0xcc), "nothing around the first buffer");
  assert.ok(ram.read(b + 100n, 16).every((x) => x === 0xcc), "nothing after the second");
  assert.equal(d.irq.level, true);
  assert.equal(d.isr(), INT_USED);
  d.ack(INT_USED);
  assert.equal(d.isr(), 0);
  assert.equal(d.irq.level, false);
  const st = d.t.stats();
  assert.equal(st.queues[0]!.requests, 1);
  assert.equal(st.queues[0]!.bytesOut, 0x200 + 100);
  assert.equal(st.queues[0]!.interrupts, 1);
  assert.equal(st.device.bytes, 0x200 + 100);

  // Several chains in one notification: all answered in order, one interrupt.
  const heads = [0, 1, 2].map((k) => r.chain([{ gpa: DATA + BigInt(0x100 * k), len: 32 + k, write: true }]));
  r.offer(...heads);
  d.kick(0);
  assert.deepEqual(r.takeUsed(), heads.map((id, k) => ({ id, len: 32 + k })));
  assert.equal(d.t.stats().queues[0]!.interrupts, 2);
  assert.equal(d.irq.raised, 2);
});

test("without EVENT_IDX, avail->flags NO_INTERRUPT suppresses used-buffer interrupts", () => {
  const d = new Driver(machine(), new VirtioRng()).init({ sizes: [8] });
  const r = d.rings[0]!;
  r.setAvailFlags(1);
  r.setUsedEvent(0); // meaningless without EVENT_IDX
  rngRequest(d);
  assert.equal(d.isr(), 0);
  assert.equal(d.irq.level, false);
  r.setAvailFlags(0);
  rngRequest(d);
  assert.equal(d.isr(), INT_USED);
  const q = d.t.stats().queues[0]!;
  assert.equal(q.suppressed, 1);
  assert.equal(q.interrupts, 1);
  assert.equal(r.availEvent(), 0, "avail_event is not written without EVENT_IDX");
});

test("EVENT_IDX: used_event holds interrupts back until used->idx passes it; the device writes avail_event", () => {
  const d = new Driver(machine(), new VirtioRng()).init({ features: bit(F_EVENT_IDX), sizes: [8] });
  const r = d.rings[0]!;
  r.setAvailFlags(1); // ignored under EVENT_IDX (2.7.10)
  r.setUsedEvent(2); // interrupt when entry 2 is used, that is when used->idx becomes 3
  rngRequest(d);
  assert.equal(r.availEvent(), 1, "notify me again for avail entry 1");
  assert.equal(d.isr(), 0);
  rngRequest(d);
  assert.equal(r.availEvent(), 2);
  assert.equal(d.isr(), 0);
  assert.equal(d.irq.level, false);
  assert.equal(d.t.stats().queues[0]!.suppressed, 2);
  rngRequest(d);
  assert.equal(r.availEvent(), 3);
  assert.equal(d.isr(), INT_USED);
  assert.equal(d.irq.level, true);
  d.ack();
  let q = d.t.stats().queues[0]!;
  assert.equal(q.interrupts, 1);
  assert.equal(q.suppressed, 2);

  // used_event left behind (2 < 3): no interrupt for 4, nor for 5.
  rngRequest(d);
  rngRequest(d);
  assert.equal(d.isr(), 0);
  // used_event = used->idx (5): the next one interrupts, a batch of two past it interrupts once.
  r.setUsedEvent(5);
  rngRequest(d);
  assert.equal(d.isr(), INT_USED);
  d.ack();
  r.setUsedEvent(6);
  const heads = [r.chain([{ gpa: DATA, len: 8, write: true }]), r.chain([{ gpa: DATA + 64n, len: 8, write: true }])];
  r.offer(...heads);
  d.kick(0);
  assert.equal(r.takeUsed().length, 2);
  assert.equal(d.isr(), INT_USED);
  assert.equal(r.availEvent(), 8);
  q = d.t.stats().queues[0]!;
  assert.equal(q.interrupts, 3);
  assert.equal(q.suppressed, 4);
  assert.equal(q.requests, 8);
  // Wrapping round the 8-entry ring more than once keeps the arithmetic right.
  for (let i = 0; i < 20; i++) {
    r.setUsedEvent(r.usedIdx());
    d.ack();
    rngRequest(d);
    assert.equal(d.isr(), INT_USED, `request ${i}`);
  }
});

// Linux's vm_interrupt reads InterruptStatus, then writes InterruptACK; the physical CPUs post
// that store (src/vmm/vcb.ts), so it can reach the device after a completion that came in
// between raised the bit again. The driver never saw that event: the ACK must leave it raised
// (or the interrupt is lost and the driver waits forever; a disk under load hung so).
test("an InterruptACK clears only events the driver could have read: a late (posted) ACK leaves a newer interrupt raised", () => {
  const d = new Driver(machine(), new VirtioRng()).init({ sizes: [8] });
  rngRequest(d);
  assert.equal(d.isr(), INT_USED, "the driver reads the status");
  rngRequest(d); // completes before the driver's ACK arrives
  d.ack(INT_USED);
  assert.equal(d.irq.level, true, "the second completion's interrupt is still raised");
  assert.equal(d.isr(), INT_USED);
  d.ack(INT_USED);
  assert.equal(d.irq.level, false, "read, then acknowledged: cleared");
  assert.equal(d.isr(), 0);
});

// ---- virtio-blk over a raw image ----

const tmp = mkdtempSync(join(tmpdir(), "ringvisor-virtio-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const SECTORS = 128;
const sectorPattern = (s: number): Uint8Array => new Uint8Array(512).map((_, i) => (s * 31 + i * 7 + 1) & 0xff);
let images = 0;
function image(): string {
  const path = join(tmp, `disk${images++}.img`);
  const b = new Uint8Array(SECTORS * 512);
  for (let s = 0; s < SECTORS; s++) b.set(sectorPattern(s), 512 * s);
  writeFileSync(path, b);
  return path;
}

const HDR = BASE + 0x1_8000n;
const STATUS_GPA = BASE + 0x1_8100n;
const TABLE = BASE + 0x1_8ff0n; // an indirect table that crosses a frame boundary
const BLK_DATA = BASE + 0x2_0e00n; // data that crosses one

interface BlkOpts {
  out?: Uint8Array;
  inLen?: number;
  indirect?: boolean;
  data?: bigint;
  status?: bigint;
}

// Starts one block request (header, data, status; 5.2.6) and returns its head.
function blkStart(d: Driver, type: number, sector: bigint, o: BlkOpts = {}): number {
  const { ram } = d.env;
  const r = d.rings[0]!;
  const hdr = new Uint8Array(16);
  const v = new DataView(hdr.buffer);
  v.setUint32(0, type, true);
  v.setBigUint64(8, sector, true);
  ram.write(HDR, hdr);
  const status = o.status ?? STATUS_GPA;
  if (inRam(status, 1)) ram.fill(status, 1, 0xff);
  const data = o.data ?? BLK_DATA;
  const segs: Seg[] = [{ gpa: HDR, len: 16 }];
  if (o.out) {
    ram.write(data, o.out);
    segs.push({ gpa: data, len: o.out.length });
  }
  if (o.inLen) {
    if (inRam(data, o.inLen)) ram.fill(data, o.inLen, 0xee);
    segs.push({ gpa: data, len: o.inLen, write: true });
  }
  segs.push({ gpa: status, len: 1, write: true });
  const head = o.indirect ? r.indirect(TABLE, segs) : r.chain(segs);
  r.offer(head);
  d.kick(0);
  return head;
}

async function blk(d: Driver, type: number, sector: bigint, o: BlkOpts = {}): Promise<{ status: number; len: number; data: Uint8Array }> {
  const head = blkStart(d, type, sector, o);
  const used = await waitUsed(d.rings[0]!);
  assert.deepEqual(used.map((u) => u.id), [head]);
  const { ram } = d.env;
  return { status: ram.read(STATUS_GPA, 1)[0]!, len: used[0]!.len, data: o.inLen ? ram.read(o.data ?? BLK_DATA, o.inLen) : new Uint8Array(0) };
}

const cfg32 = (d: Driver, off: number): number => d.rd(CONFIG + off);

test("virtio-blk over a raw image: config, writes and reads through the ring, flush, errors", async () => {
  const path = image();
  const backend = await RawImage.open(path, false);
  try {
    assert.ok(existsSync(`${path}.lock`), "a writable image is locked while open");
    const env = machine();
    const dev = new VirtioBlk("virtio-blk vda", backend, "serial-vda");
    const d = new Driver(env, dev);
    assert.equal(d.rd(DEVICE_ID), 2);
    const f = d.deviceFeatures();
    for (const b of [BLK_F_SIZE_MAX, BLK_F_SEG_MAX, BLK_F_BLK_SIZE, BLK_F_FLUSH]) assert.notEqual(f & bit(b), 0n, `offers ${b}`);
    assert.equal(f & bit(BLK_F_RO), 0n, "a writable disk is not RO");
    // struct virtio_blk_config: capacity le64 (two 32-bit reads, as Linux makes them), size_max, seg_max, blk_size.
    assert.equal(cfg32(d, 0), SECTORS);
    assert.equal(cfg32(d, 4), 0);
    assert.equal(d.t.read(CONFIG, 8), BigInt(SECTORS));
    assert.equal(cfg32(d, 8), 1 << 20);
    assert.equal(cfg32(d, 12), 126);
    assert.equal(cfg32(d, 20), 512);
    assert.equal(d.rd(CONFIG + 60), 0, "nothing beyond the config struct");
    d.init({ features: bit(BLK_F_FLUSH) | bit(BLK_F_BLK_SIZE) | bit(BLK_F_SEG_MAX) | bit(BLK_F_SIZE_MAX), sizes: [256] });

    // Write sectors 3 and 4 from a buffer across a guest frame boundary.
    const data = new Uint8Array(1024).map((_, i) => (i * 11 + 3) & 0xff);
    let res = await blk(d, T_OUT, 3n, { out: data });
    assert.equal(res.status, S_OK);
    assert.equal(res.len, 1, "a write returns only its status byte");
    assert.equal(d.isr(), INT_USED);
    d.ack();
    const file = readFileSync(path);
    assert.deepEqual(new Uint8Array(file.subarray(3 * 512, 5 * 512)), data, "the bytes are in the file");
    assert.deepEqual(new Uint8Array(file.subarray(2 * 512, 3 * 512)), sectorPattern(2), "sector 2 untouched");
    assert.deepEqual(new Uint8Array(file.subarray(5 * 512, 6 * 512)), sectorPattern(5), "sector 5 untouched");

    // Read them back, and two sectors the guest never wrote.
    res = await blk(d, T_IN, 3n, { inLen: 1024 });
    assert.equal(res.status, S_OK);
    assert.equal(res.len, 1025);
    assert.deepEqual(res.data, data);
    res = await blk(d, T_IN, 126n, { inLen: 1024 });
    assert.equal(res.status, S_OK);
    assert.deepEqual(res.data, new Uint8Array([...sectorPattern(126), ...sectorPattern(127)]), "the last two sectors");

    res = await blk(d, T_FLUSH, 0n);
    assert.equal(res.status, S_OK);
    assert.equal(res.len, 1);

    // Past the end: IOERR, and no data written into the buffer.
    for (const [sector, len] of [[127n, 1024], [128n, 512], [1n << 63n, 512], [(1n << 64n) - 1n, 512]] as const) {
      res = await blk(d, T_IN, sector, { inLen: len });
      assert.equal(res.status, S_IOERR, `read of ${len} at sector ${sector}`);
      assert.equal(res.len, 1);
      assert.ok(res.data.every((x) => x === 0xee), "buffer untouched");
    }
    res = await blk(d, T_OUT, 128n, { out: new Uint8Array(512) });
    assert.equal(res.status, S_IOERR, "write past the end");
    res = await blk(d, T_IN, 0n, { inLen: 100 });
    assert.equal(res.status, S_IOERR, "a read of less than a sector");

    res = await blk(d, 0x42, 0n, { inLen: 512 });
    assert.equal(res.status, S_UNSUPP);
    assert.equal(res.len, 1);
    res = await blk(d, T_GET_ID, 0n, { inLen: 20 });
    assert.equal(res.status, S_OK);
    assert.equal(new TextDecoder().decode(res.data).replace(/\0+$/, ""), "serial-vda");

    // Several requests in flight at once all complete, each with its own data.
    const r = d.rings[0]!;
    const heads = [10, 20, 30].map((s, k) => {
      const gpa = BASE + BigInt(0x3_0000 + 0x1000 * k);
      env.ram.fill(gpa, 512, 0);
      return r.chain([{ gpa: HDR + BigInt(0x20 * (k + 1)), len: 16 }, { gpa, len: 512, write: true }, { gpa: STATUS_GPA + BigInt(k + 1), len: 1, write: true }]);
    });
    [10, 20, 30].forEach((s, k) => {
      const h = new Uint8Array(16);
      new DataView(h.buffer).setBigUint64(8, BigInt(s), true);
      env.ram.write(HDR + BigInt(0x20 * (k + 1)), h);
      env.ram.fill(STATUS_GPA + BigInt(k + 1), 1, 0xff);
    });
    r.offer(...heads);
    d.kick(0);
    const used = await waitUsed(r, 3);
    assert.deepEqual(used.map((u) => u.id).sort(), [...heads].sort());
    [10, 20, 30].forEach((s, k) => {
      assert.deepEqual(env.ram.read(BASE + BigInt(0x3_0000 + 0x1000 * k), 512), sectorPattern(s));
      assert.equal(env.ram.read(STATUS_GPA + BigInt(k + 1), 1)[0], S_OK);
    });

    const st = dev.stats;
    assert.equal(st.writes, 1);
    assert.equal(st.flushes, 1);
    assert.equal(st.reads, 5);
    assert.equal(st.errors, 7, "4 reads and 1 write past the end, a short read, an unknown type");
    assert.ok(st.inFlightMax >= 1);
    assert.equal(d.status() & NEEDS_RESET, 0, "errors in requests are not protocol errors");
  } finally {
    await backend.close();
  }
  assert.ok(!existsSync(`${path}.lock`), "the lock goes with the close");
});

test("virtio-blk requests described through indirect tables", async () => {
  const path = image();
  const backend = await RawImage.open(path, false);
  try {
    const env = machine();
    const d = new Driver(env, new VirtioBlk("virtio-blk vda", backend, "vda")).init({ features: bit(F_INDIRECT) });
    const data = new Uint8Array(2048).map((_, i) => (i * 5 + 9) & 0xff);
    let res = await blk(d, T_OUT, 40n, { out: data, indirect: true });
    assert.equal(res.status, S_OK);
    assert.deepEqual(new Uint8Array(readFileSync(path).subarray(40 * 512, 44 * 512)), data);
    res = await blk(d, T_IN, 40n, { inLen: 2048, indirect: true });
    assert.equal(res.status, S_OK);
    assert.equal(res.len, 2049);
    assert.deepEqual(res.data, data);
    // An indirect table whose data is split over several descriptors.
    const r = d.rings[0]!;
    const hdr = new Uint8Array(16);
    new DataView(hdr.buffer).setBigUint64(8, 41n, true);
    env.ram.write(HDR, hdr);
    env.ram.fill(BLK_DATA, 1024, 0);
    const head = r.indirect(TABLE, [
      { gpa: HDR, len: 8 }, { gpa: HDR + 8n, len: 8 }, // the header in two pieces
      { gpa: BLK_DATA, len: 100, write: true }, { gpa: BLK_DATA + 0x300n, len: 412, write: true },
      { gpa: STATUS_GPA, len: 1, write: true },
    ]);
    r.offer(head);
    d.kick(0);
    assert.deepEqual(await waitUsed(r), [{ id: head, len: 513 }]);
    assert.equal(env.ram.read(STATUS_GPA, 1)[0], S_OK);
    assert.deepEqual(env.ram.read(BLK_DATA, 100), data.subarray(512, 612));
    assert.deepEqual(env.ram.read(BLK_DATA + 0x300n, 412), data.subarray(612, 1024));
  } finally {
    await backend.close();
  }
});

test("virtio-blk on a read-only image offers RO and refuses writes with IOERR", async () => {
  const path = image();
  const before = readFileSync(path);
  const backend = await RawImage.open(path, true);
  try {
    assert.ok(!existsSync(`${path}.lock`), "read-only images are not locked");
    const d = new Driver(machine(), new VirtioBlk("virtio-blk vdb", backend, "vdb"));
    assert.notEqual(d.deviceFeatures() & bit(BLK_F_RO), 0n);
    d.init({ features: bit(BLK_F_RO) });
    let res = await blk(d, T_OUT, 0n, { out: new Uint8Array(512).fill(0x77) });
    assert.equal(res.status, S_IOERR);
    assert.equal(res.len, 1);
    res = await blk(d, T_IN, 0n, { inLen: 512 });
    assert.equal(res.status, S_OK);
    assert.deepEqual(res.data, sectorPattern(0));
    assert.equal(d.status() & NEEDS_RESET, 0);
  } finally {
    await backend.close();
  }
  assert.deepEqual(readFileSync(path), before, "the image is unchanged");
});

// A block read is left in flight while `restart` tears its queue down and sets a new one up at
// the same addresses. The read goes straight into the guest's frames, so its data lands in the
// old request's buffer (the guest's own RAM, pinned meanwhile), but the late completion answers
// nothing: no status byte, no used entry on the new queue; and the new queue works.
async function lateCompletion(restart: (d: Driver) => Ring, newRingZeroed: boolean): Promise<void> {
  const path = image();
  const backend = await RawImage.open(path, false);
  try {
    const env = machine();
    const dev = new VirtioBlk("virtio-blk vda", backend, "vda");
    const d = new Driver(env, dev).init();
    blkStart(d, T_IN, 7n, { inLen: 1024 });
    assert.equal(dev.stats.reads, 0, "the read is still in flight");
    const frames = [BLK_DATA, BLK_DATA + 1023n].map((g) => env.ram.machineFrame(Number((g - BASE) / 4096n)));
    assert.ok(frames.every((f) => env.dma.pinned(f)), "the buffer's frames are pinned while the read is in flight");
    const r = restart(d);
    await until("the backend read", () => dev.stats.reads === 1);
    for (let i = 0; i < 10; i++) await tick();
    assert.ok(frames.every((f) => !env.dma.pinned(f)), "and unpinned once it is done");
    assert.deepEqual(env.ram.read(BLK_DATA, 1024), new Uint8Array([...sectorPattern(7), ...sectorPattern(8)]), "the data landed in the guest's own buffer");
    assert.equal(r.usedIdx(), 0, "the new queue's used ring is untouched");
    if (newRingZeroed) {
      assert.equal(env.ram.read(STATUS_GPA, 1)[0], 0xff, "nor is its status written");
      assert.ok(allZero(env.ram.read(r.used, 6 + 8 * r.size)));
      assert.equal(d.isr(), 0);
    }
    // The new queue works, and returns only its own request.
    const res = await blk(d, T_IN, 8n, { inLen: 512 });
    assert.equal(res.status, S_OK);
    assert.deepEqual(res.data, sectorPattern(8));
    assert.equal(r.usedIdx(), 1);
  } finally {
    await backend.close();
  }
}

test("a reset while a block read is in flight: the late completion is not answered (no status, no used entry)", async () => {
  // Reset and set the device up again, with its rings at the same addresses (freshly zeroed).
  await lateCompletion((d) => {
    d.wr(STATUS, 0);
    d.init();
    return d.rings[0]!;
  }, true);
});

test("a block read in flight when its queue is disabled and set up again is not answered on the new queue", async () => {
  // QueueReady = 0 (vm_del_vq), then the queue again at the same addresses.
  await lateCompletion((d) => {
    d.wr(QUEUE_SEL, 0);
    d.wr(QUEUE_READY, 0);
    assert.equal(d.rd(QUEUE_READY), 0);
    return d.queue(0, 16);
  }, false);
});

// ---- hostile rings ----

interface Hostile {
  name: string;
  error: RegExp;
  // Builds the bad ring on queue 0 (size 8) and makes it available; the test kicks.
  make(r: Ring, d: Driver): void;
  blk?: boolean; // a block device (the failure shows at completion) instead of rng
  features?: bigint;
}

const W = (gpa: bigint, len: number): Seg => ({ gpa, len, write: true });
const hostile: Hostile[] = [
  { name: "a descriptor whose next points back at itself", error: /loop/, make: (r) => { r.writeDesc(0, DATA, 64, WRITE | NEXT, 0); r.offer(0); } },
  {
    name: "a chain longer than the queue (a cycle through all 8 descriptors)", error: /longer than/,
    make: (r) => { for (let i = 0; i < 8; i++) r.writeDesc(i, DATA + BigInt(64 * i), 64, WRITE | NEXT, (i + 1) % 8); r.offer(3); },
  },
  { name: "a next index outside the table", error: /next 8/, make: (r) => { r.writeDesc(0, DATA, 64, WRITE | NEXT, 8); r.offer(0); } },
  { name: "a head index outside the table", error: /head 8/, make: (r) => { r.writeDesc(0, DATA, 64, WRITE); r.offer(8); } },
  { name: "a head index of 0xffff", error: /head 65535/, make: (r) => { r.offer(0xffff); } },
  { name: "avail->idx more than the queue size ahead", error: /ahead/, make: (r) => { r.chain([W(DATA, 64)]); r.setAvailIdx(9); } },
  { name: "avail->idx run backwards (0xffff ahead)", error: /ahead/, make: (r) => { r.setAvailIdx(0xffff); } },
  { name: "a buffer at address 0", error: /outside guest RAM/, make: (r) => r.offer(r.chain([W(0n, 64)])) },
  { name: "a buffer just past the end of RAM", error: /outside guest RAM/, make: (r) => r.offer(r.chain([W(RAM_END, 64)])) },
  { name: "a buffer running over the end of RAM", error: /outside guest RAM/, make: (r) => r.offer(r.chain([W(RAM_END - 32n, 64)])) },
  { name: "a buffer just below RAM", error: /outside guest RAM/, make: (r) => r.offer(r.chain([W(BASE - 64n, 64)])) },
  { name: "a buffer at 2^63", error: /beyond any RAM/, make: (r) => r.offer(r.chain([W(1n << 63n, 64)])) },
  { name: "a buffer at 2^53", error: /beyond any RAM/, make: (r) => r.offer(r.chain([W(1n << 53n, 64)])) },
  { name: "a buffer at 2^32 + the RAM base", error: /outside guest RAM/, make: (r) => r.offer(r.chain([W((1n << 32n) + BASE, 64)])) },
  { name: "a length of 0xffffffff", error: /describes more than/, make: (r) => r.offer(r.chain([W(DATA, 0xffff_ffff)])) },
  { name: "lengths that add up past the limit", error: /describes more than/, make: (r) => r.offer(r.chain([W(DATA, 40 << 20), W(DATA, 40 << 20)])) },
  {
    name: "an indirect descriptor inside an indirect table", error: /inside an indirect table/,
    make: (r, d) => {
      d.env.ram.write(TABLE, descBytes(TABLE, 16, INDIRECT, 0));
      r.writeDesc(0, TABLE, 16, INDIRECT);
      r.offer(0);
    },
  },
  {
    name: "an indirect descriptor with NEXT set", error: /NEXT/,
    make: (r, d) => {
      d.env.ram.write(TABLE, descBytes(DATA, 64, WRITE, 0));
      r.writeDesc(0, TABLE, 16, INDIRECT | NEXT, 1);
      r.writeDesc(1, DATA, 64, WRITE);
      r.offer(0);
    },
  },
  { name: "an indirect table of 24 bytes", error: /indirect table of 24 bytes/, make: (r) => { r.writeDesc(0, TABLE, 24, INDIRECT); r.offer(0); } },
  { name: "an indirect table of 0 bytes", error: /indirect table of 0 bytes/, make: (r) => { r.writeDesc(0, TABLE, 0, INDIRECT); r.offer(0); } },
  { name: "an indirect table past the end of RAM", error: /outside guest RAM/, make: (r) => { r.writeDesc(0, RAM_END - 16n, 32, INDIRECT); r.offer(0); } },
  {
    name: "a loop inside an indirect table", error: /loop/,
    make: (r, d) => {
      d.env.ram.write(TABLE, new Uint8Array([...descBytes(DATA, 64, WRITE | NEXT, 1), ...descBytes(DATA, 64, WRITE | NEXT, 0)]));
      r.writeDesc(0, TABLE, 32, INDIRECT);
      r.offer(0);
    },
  },
  {
    name: "a next outside an indirect table", error: /next 2, outside its table of 2/,
    make: (r, d) => {
      d.env.ram.write(TABLE, new Uint8Array([...descBytes(DATA, 64, WRITE | NEXT, 1), ...descBytes(DATA, 64, WRITE | NEXT, 2)]));
      r.writeDesc(0, TABLE, 32, INDIRECT);
      r.offer(0);
    },
  },
  { name: "a readable descriptor after a writable one", error: /readable descriptor after a device-writable/, make: (r) => r.offer(r.chain([W(DATA, 64), { gpa: DATA + 64n, len: 64 }])) },
  {
    name: "a block request whose data buffer lies past the end of RAM (found at completion)", error: /outside guest RAM/, blk: true,
    make: (r, d) => { blkStart(d, T_IN, 0n, { inLen: 512, data: RAM_END }); },
  },
  {
    name: "a block request whose status byte lies below RAM (found at completion)", error: /outside guest RAM/, blk: true,
    make: (r, d) => { blkStart(d, T_FLUSH, 0n, { status: BASE - 1n }); },
  },
  {
    name: "a block write whose data lies at 0", error: /outside guest RAM/, blk: true,
    make: (r, d) => {
      d.env.ram.write(HDR, Uint8Array.of(T_OUT, 0, 0, 0));
      r.offer(r.chain([{ gpa: HDR, len: 16 }, { gpa: 0n, len: 512 }, W(STATUS_GPA, 1)]));
    },
  },
  {
    name: "a block request with no room for a status byte", error: /no room/, blk: true,
    make: (r) => r.offer(r.chain([{ gpa: HDR, len: 16 }])),
  },
];

for (const h of hostile) {
  test(`hostile ring: ${h.name} → DEVICE_NEEDS_RESET, nothing outside guest RAM touched`, async () => {
    const env = watchedMachine();
    const { unchanged } = env;
    let backend: RawImage | undefined;
    let dev: VirtioDevice;
    if (h.blk) {
      backend = await RawImage.open(image(), false);
      dev = new VirtioBlk("virtio-blk vda", backend, "vda");
    } else {
      dev = new VirtioRng();
    }
    try {
      const d = new Driver(env, dev).init({ features: bit(F_INDIRECT) | bit(F_EVENT_IDX), sizes: [8] });
      const errors: string[] = [];
      d.t.onError = (reason) => errors.push(reason);
      const r = d.rings[0]!;
      h.make(r, d);
      d.kick(0);
      if (h.blk) await until("the device to fail", () => (d.status() & NEEDS_RESET) !== 0);
      assert.equal(d.status() & NEEDS_RESET, NEEDS_RESET, "DEVICE_NEEDS_RESET");
      assert.equal(d.status() & DRIVER_OK, DRIVER_OK, "the driver's bits stay until it resets");
      assert.equal(d.isr() & INT_CONFIG, INT_CONFIG, "a configuration-change interrupt");
      assert.equal(d.irq.level, true);
      const st = d.t.stats();
      assert.match(st.lastError ?? "", h.error);
      assert.deepEqual(errors, [st.lastError]);
      assert.equal(st.transport.errors, 1);
      assert.equal(r.usedIdx(), 0, "nothing was returned");
      unchanged();
      // A failed device ignores notifications and queue setup until it is reset.
      const ignored = st.transport.ignored;
      d.kick(0);
      d.wr(QUEUE_READY, 1);
      assert.equal(d.t.stats().transport.ignored, ignored + 2);
      assert.equal(d.rd(QUEUE_READY), 0);
      for (let i = 0; i < 5; i++) await tick();
      unchanged();
      assert.equal(d.t.stats().transport.errors, 1);

      d.wr(STATUS, 0);
      assert.equal(d.status(), 0);
      assert.equal(d.isr(), 0);
      assert.equal(d.irq.level, false);
      d.init({ sizes: [8] });
      if (h.blk) {
        const res = await blk(d, T_IN, 5n, { inLen: 512 });
        assert.equal(res.status, S_OK);
        assert.deepEqual(res.data, sectorPattern(5));
      } else {
        env.ram.fill(DATA, 64, 0);
        rngRequest(d);
        assert.ok(!allZero(env.ram.read(DATA, 64)));
      }
      assert.equal(d.isr(), INT_USED);
      unchanged();
    } finally {
      await backend?.close();
      env.release();
    }
  });
}

test("a chain exactly as long as the queue, and avail->idx exactly a queue ahead, are fine", () => {
  const env = machine();
  const d = new Driver(env, new VirtioRng()).init({ sizes: [8] });
  const r = d.rings[0]!;
  const head = r.chain(Array.from({ length: 8 }, (_, i) => W(DATA + BigInt(16 * i), 16)));
  r.offer(head);
  d.kick(0);
  assert.deepEqual(r.takeUsed(), [{ id: head, len: 128 }]);
  const heads = Array.from({ length: 8 }, (_, i) => r.chain([W(DATA + BigInt(16 * i), 16)]));
  r.offer(...heads);
  d.kick(0);
  assert.deepEqual(r.takeUsed().map((u) => u.id), heads);
  assert.equal(d.status() & NEEDS_RESET, 0);
});

test("buffers at the very first and last bytes of guest RAM are reached, through the right frames", () => {
  const env = watchedMachine();
  try {
    const { ram } = env;
    const d = new Driver(env, new VirtioRng()).init({ sizes: [8] });
    ram.fill(BASE, 64, 0);
    ram.fill(RAM_END - 64n, 64, 0);
    rngRequest(d, BASE, 64);
    rngRequest(d, RAM_END - 64n, 64);
    // ram.read translates through the p2m itself: the bytes are where the guest sees them.
    assert.ok(!allZero(ram.read(BASE, 64)));
    assert.ok(!allZero(ram.read(RAM_END - 64n, 64)));
    env.unchanged();
  } finally {
    env.release();
  }
});

interface BadQueue {
  name: string;
  error: RegExp;
  size?: number;
  areas?: Partial<ReturnType<typeof ringAreas>>;
}

const badQueues: BadQueue[] = [
  { name: "a descriptor table at 0", error: /descriptor table at 0x0/, areas: { desc: 0n } },
  { name: "a descriptor table running over the end of RAM", error: /descriptor table/, areas: { desc: RAM_END - 64n } },
  { name: "a driver area just past RAM", error: /driver area/, areas: { driver: RAM_END } },
  { name: "a device area running over the end of RAM", error: /device area/, areas: { device: RAM_END - 60n } },
  { name: "a device area above 4 GiB (QueueDeviceHigh 1)", error: /device area/, areas: { device: (1n << 32n) + ringAreas(0).device } },
  { name: "a descriptor table at 2^63 (QueueDescHigh 0x80000000)", error: /beyond any RAM/, areas: { desc: 1n << 63n } },
  { name: "a descriptor table aligned to 8", error: /not aligned/, areas: { desc: ringAreas(0).desc + 8n } },
  { name: "a driver area at an odd address", error: /not aligned/, areas: { driver: ringAreas(0).driver + 1n } },
  { name: "a device area aligned to 2", error: /not aligned/, areas: { device: ringAreas(0).device + 2n } },
  { name: "a queue size of 3", error: /size 3 is not a power of 2/, size: 3 },
  { name: "a queue size of 0", error: /size 0 is not a power of 2/, size: 0 },
  { name: "a queue size above QueueNumMax (128 > 64)", error: /larger than its maximum 64/, size: 128 },
];

for (const b of badQueues) {
  test(`queue set up with ${b.name} → DEVICE_NEEDS_RESET at QueueReady`, () => {
    const env = watchedMachine();
    const { unchanged } = env;
    try {
      const d = new Driver(env, new VirtioRng());
      assert.ok(d.negotiate(bit(F_VERSION_1)));
      d.queue(0, b.size ?? 8, b.areas);
      assert.equal(d.rd(QUEUE_READY), 0, "the queue did not become ready");
      assert.equal(d.status() & NEEDS_RESET, NEEDS_RESET);
      assert.match(d.t.stats().lastError ?? "", b.error);
      assert.equal(d.isr(), 0, "no interrupt before DRIVER_OK");
      assert.equal(d.irq.level, false);
      // The driver goes on to DRIVER_OK regardless: it does not stick.
      d.addStatus(DRIVER_OK);
      assert.equal(d.status(), ACKNOWLEDGE | DRIVER | FEATURES_OK | NEEDS_RESET);
      d.kick(0);
      unchanged();
      d.init({ sizes: [8] });
      rngRequest(d);
      unchanged();
    } finally {
      env.release();
    }
  });
}

test("a bad queue set up after DRIVER_OK fails the device with a config interrupt", () => {
  const env = machine();
  const d = new Driver(env, new VirtioConsole(() => {}));
  assert.ok(d.negotiate(bit(F_VERSION_1)));
  d.queue(0, 8);
  d.addStatus(DRIVER_OK);
  const gen = d.rd(CONFIG_GENERATION);
  d.queue(1, 8, { desc: RAM_END });
  assert.equal(d.status() & NEEDS_RESET, NEEDS_RESET);
  assert.equal(d.isr(), INT_CONFIG);
  assert.equal(d.irq.level, true);
  assert.equal(d.rd(CONFIG_GENERATION), gen + 1);
  d.ack();
  assert.equal(d.irq.level, false);
});

// ---- virtio-console ----

test("virtio-console: transmit reaches the output, input fills receive buffers in order", () => {
  const env = machine();
  const { ram } = env;
  const out: number[] = [];
  const con = new VirtioConsole((b) => out.push(...b));
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  con.input(enc("early ")); // typed before the driver is up: kept
  const d = new Driver(env, con).init({ sizes: [8, 8] });
  const [rx, tx] = [d.rings[0]!, d.rings[1]!];

  // Transmit: a chain of two readable buffers, one across a frame boundary.
  ram.write(BASE + 0x1_0ffcn, enc("hello, "));
  ram.write(DATA + 0x2000n, enc("world\n"));
  const t = tx.chain([{ gpa: BASE + 0x1_0ffcn, len: 7 }, { gpa: DATA + 0x2000n, len: 6 }]);
  tx.offer(t);
  d.kick(1);
  assert.equal(new TextDecoder().decode(Uint8Array.from(out)), "hello, world\n");
  assert.deepEqual(tx.takeUsed(), [{ id: t, len: 0 }]);
  assert.equal(d.isr(), INT_USED);
  d.ack();

  // Receive: two 4-byte buffers take "early " (typed before DRIVER_OK) between them.
  const rbuf = (k: number): bigint => DATA + 0x3000n + BigInt(0x100 * k);
  const post = (k: number, len = 4): number => {
    ram.fill(rbuf(k), 16, 0);
    const h = rx.chain([W(rbuf(k), len)]);
    rx.offer(h);
    return h;
  };
  const h0 = post(0);
  const h1 = post(1);
  d.kick(0);
  assert.deepEqual(rx.takeUsed(), [{ id: h0, len: 4 }, { id: h1, len: 2 }]);
  assert.equal(new TextDecoder().decode(ram.read(rbuf(0), 4)), "earl");
  assert.equal(new TextDecoder().decode(ram.read(rbuf(1), 2)), "y ");
  assert.equal(ram.read(rbuf(1) + 2n, 1)[0], 0);
  assert.equal(d.isr(), INT_USED);
  d.ack();

  // Input larger than a buffer spans several, in order; what does not fit waits.
  con.input(enc("abcdefghij"));
  assert.equal(d.isr(), 0, "no buffers posted: input waits");
  const hs = [post(2), post(3), post(4, 16)];
  d.kick(0);
  assert.deepEqual(rx.takeUsed(), [{ id: hs[0], len: 4 }, { id: hs[1], len: 4 }, { id: hs[2], len: 2 }]);
  const got = [2, 3].map((k) => new TextDecoder().decode(ram.read(rbuf(k), 4))).join("") + new TextDecoder().decode(ram.read(rbuf(4), 2));
  assert.equal(got, "abcdefghij");
  assert.equal(ram.read(rbuf(4) + 2n, 1)[0], 0, "no more than the input");
  d.ack();

  // A buffer already posted takes input at once, as it is typed.
  const h5 = post(5, 8);
  d.kick(0);
  assert.deepEqual(rx.takeUsed(), [], "nothing to deliver yet");
  con.input(enc("xy"));
  assert.deepEqual(rx.takeUsed(), [{ id: h5, len: 2 }]);
  assert.equal(new TextDecoder().decode(ram.read(rbuf(5), 2)), "xy");
  assert.equal(d.isr(), INT_USED);
  assert.deepEqual(con.stats, { bytesIn: 6 + 10 + 2, bytesOut: 13, dropped: 0 });
});

test("virtio-console input into a receive buffer outside RAM fails the device, not the host", () => {
  const env = watchedMachine();
  const { unchanged } = env;
  try {
    const con = new VirtioConsole(() => {});
    const d = new Driver(env, con).init({ sizes: [8, 8] });
    const rx = d.rings[0]!;
    rx.offer(rx.chain([W(RAM_END, 16)]));
    d.kick(0); // nothing to deliver yet
    assert.equal(d.status() & NEEDS_RESET, 0);
    assert.doesNotThrow(() => con.input(new TextEncoder().encode("hi")));
    assert.equal(d.status() & NEEDS_RESET, NEEDS_RESET);
    assert.equal(d.isr() & INT_CONFIG, INT_CONFIG);
    assert.match(d.t.stats().lastError ?? "", /outside guest RAM/);
    unchanged();
    assert.doesNotThrow(() => con.input(new TextEncoder().encode("more")), "a failed device takes input quietly");
    d.init({ sizes: [8, 8] });
    env.ram.fill(DATA, 16, 0);
    const rx2 = d.rings[0]!;
    const h = rx2.chain([W(DATA, 16)]);
    rx2.offer(h);
    d.kick(0);
    assert.deepEqual(rx2.takeUsed(), [{ id: h, len: 4 }]);
    assert.equal(new TextDecoder().decode(env.ram.read(DATA, 4)), "more", "what was typed after the failure waits for the new driver");
    unchanged();
  } finally {
    env.release();
  }
});
