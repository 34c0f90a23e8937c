// A split virtqueue, the device's side (virtio 1.2 section 2.7): the descriptor table
// (struct virtq_desc), the driver area (struct virtq_avail) and the device area (struct
// virtq_used), all in guest RAM, all written by a driver that is not trusted.
//
// What the driver can get wrong, and what this does about it (every case a VirtioError, which
// puts the device in DEVICE_NEEDS_RESET; nothing outside the guest's RAM is ever touched):
// - avail->idx running more than the queue size ahead of the buffers we have seen (2.7.13);
// - a head or `next` index outside the table;
// - a chain longer than the queue size, which is also how a loop shows (2.7.5.3.1: "the driver
//   MUST NOT create a descriptor chain longer than the Queue Size");
// - an indirect descriptor with NEXT set, one inside an indirect table, or a table whose length
//   is not a whole number of descriptors or is longer than MAX_INDIRECT (2.7.5.3.1);
// - a readable descriptor after a writable one (2.7.4.2: device-writable ones come last);
// - buffer addresses and lengths outside RAM (checked when a device touches them, via GuestDma).
import { DmaFault, type GuestDma, type Piece } from "./dma.js";

export class VirtioError extends Error {
  override name = "VirtioError";
}

// virtq_desc.flags
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
// virtq_avail.flags / virtq_used.flags
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;

const DESC_BYTES = 16;
// Descriptors in one indirect table: Linux uses at most a request's segments plus two.
export const MAX_INDIRECT = 1024;
// Bytes one chain may describe in total: no request of any device here needs more.
export const MAX_CHAIN_BYTES = 64 << 20;

// One guest buffer of a chain (guest-physical address and length, not yet range-checked).
export interface Buffer {
  gpa: number;
  len: number;
}

// A descriptor chain the driver made available: its head (the id returned in the used ring), the
// device-readable buffers, then the device-writable ones.
export interface Chain {
  head: number;
  readable: Buffer[];
  writable: Buffer[];
  readBytes: number;
  writeBytes: number;
}

export interface QueueCounters {
  notifications: number; // the driver's QueueNotify writes (each an MMIO exit)
  requests: number; // chains taken from the avail ring
  bytesIn: number; // bytes the device read from the driver's buffers
  bytesOut: number; // bytes the device wrote into them
  interrupts: number; // used-buffer notifications sent
  suppressed: number; // used buffers that the driver asked not to be interrupted for
}

export interface QueueConfig {
  size: number;
  desc: number; // guest-physical addresses of the three areas
  driver: number;
  device: number;
}

// Bytes of each area for a queue of `size` entries (2.7: the trailing u16 is used_event /
// avail_event, present whether or not VIRTIO_F_EVENT_IDX is negotiated).
export const areaBytes = (size: number): { desc: number; driver: number; device: number } => ({
  desc: DESC_BYTES * size,
  driver: 6 + 2 * size,
  device: 6 + 8 * size,
});

// wrapping 16-bit arithmetic
const u16 = (x: number): number => x & 0xffff;

export class Virtqueue {
  readonly size: number;
  private readonly desc: number;
  private readonly avail: number;
  private readonly used: number;
  // The next avail ring entry to take, and the used index we publish.
  private lastAvail = 0;
  private usedIdx = 0;
  // used->idx when we last signalled (or decided not to): event-index arithmetic (2.7.10).
  private signalledUsed = 0;
  readonly counters: QueueCounters = { notifications: 0, requests: 0, bytesIn: 0, bytesOut: 0, interrupts: 0, suppressed: 0 };

  constructor(private readonly dma: GuestDma, cfg: QueueConfig, private readonly eventIdx: boolean) {
    const { size } = cfg;
    if (!Number.isInteger(size) || size < 1 || size > 32768 || (size & (size - 1)) !== 0) throw new VirtioError(`queue size ${size} is not a power of 2 from 1 to 32768`);
    if (![cfg.desc, cfg.driver, cfg.device].every(Number.isSafeInteger)) throw new VirtioError("queue areas lie beyond any RAM");
    // Alignment (2.7, table "Virtqueue Part Alignment"): 16, 2 and 4 bytes.
    if (cfg.desc % 16 !== 0 || cfg.driver % 2 !== 0 || cfg.device % 4 !== 0) throw new VirtioError("queue areas are not aligned (descriptor table 16, driver area 2, device area 4 bytes)");
    const b = areaBytes(size);
    try {
      dma.check(cfg.desc, b.desc, "descriptor table");
      dma.check(cfg.driver, b.driver, "driver area (virtq_avail)");
      dma.check(cfg.device, b.device, "device area (virtq_used)");
    } catch (e) {
      throw e instanceof DmaFault ? new VirtioError(e.message) : e;
    }
    this.size = size;
    this.desc = cfg.desc;
    this.avail = cfg.driver;
    this.used = cfg.device;
    // Both indexes start at 0 (2.7.13: the driver zeroes the rings before it makes them ready).
  }

  // How many chains the driver has made available that we have not taken.
  private pending(): number {
    const n = u16(this.dma.u16Acquire(this.avail + 2) - this.lastAvail);
    if (n > this.size) throw new VirtioError(`avail->idx is ${n} entries ahead of the device, more than the queue size ${this.size}`);
    return n;
  }

  hasWork(): boolean {
    return this.pending() > 0;
  }

  // The next available chain, or undefined when there is none.
  pop(): Chain | undefined {
    if (this.pending() === 0) return undefined;
    const head = this.dma.u16(this.avail + 4 + 2 * (this.lastAvail % this.size));
    this.lastAvail = u16(this.lastAvail + 1);
    // avail_event (2.7.10): notify us again for the entry after this one. A sequentially
    // consistent store, so the next pop's read of avail->idx comes after it.
    if (this.eventIdx) this.dma.setU16Release(this.used + 4 + 8 * this.size, this.lastAvail);
    this.counters.requests++;
    return this.walk(head);
  }

  private walk(head: number): Chain {
    if (head >= this.size) throw new VirtioError(`descriptor head ${head} is outside the table of ${this.size}`);
    const chain: Chain = { head, readable: [], writable: [], readBytes: 0, writeBytes: 0 };
    let table = this.desc;
    let tableSize = this.size;
    let i = head;
    let seen = 0;
    let indirect = false;
    for (;;) {
      if (++seen > tableSize) throw new VirtioError(`descriptor chain from ${head} is longer than its table (${tableSize}): a loop`);
      const d = table + DESC_BYTES * i;
      const addr = this.dma.u64(d);
      const len = this.dma.u32(d + 8);
      const flags = this.dma.u16(d + 12);
      const next = this.dma.u16(d + 14);
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (indirect) throw new VirtioError("an indirect descriptor inside an indirect table");
        if ((flags & VIRTQ_DESC_F_NEXT) !== 0) throw new VirtioError("an indirect descriptor with NEXT set");
        if (chain.readable.length + chain.writable.length > 0) throw new VirtioError("an indirect descriptor after direct ones in a chain");
        if (len === 0 || len % DESC_BYTES !== 0 || len / DESC_BYTES > MAX_INDIRECT) throw new VirtioError(`indirect table of ${len} bytes (a whole number of 16-byte descriptors, 1 to ${MAX_INDIRECT})`);
        if (Number.isNaN(addr) || addr % 8 !== 0 || !this.dma.inRam(addr, len)) throw new VirtioError(`indirect table at 0x${addr.toString(16)} is outside guest RAM or misaligned`);
        indirect = true;
        table = addr;
        tableSize = len / DESC_BYTES;
        i = 0;
        seen = 0;
        continue;
      }
      if (Number.isNaN(addr)) throw new VirtioError(`descriptor ${i} addresses beyond any RAM`);
      const buf = { gpa: addr, len };
      if ((flags & VIRTQ_DESC_F_WRITE) !== 0) {
        chain.writable.push(buf);
        chain.writeBytes += len;
      } else {
        if (chain.writable.length > 0) throw new VirtioError("a device-readable descriptor after a device-writable one");
        chain.readable.push(buf);
        chain.readBytes += len;
      }
      if (chain.readBytes + chain.writeBytes > MAX_CHAIN_BYTES) throw new VirtioError(`descriptor chain from ${head} describes more than ${MAX_CHAIN_BYTES >> 20} MiB`);
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) return chain;
      if (next >= tableSize) throw new VirtioError(`descriptor ${i} names next ${next}, outside its table of ${tableSize}`);
      i = next;
    }
  }

  // Gathers up to `max` bytes of the chain's readable buffers (a request's header and payload).
  readAll(c: Chain, max = c.readBytes): Uint8Array {
    const n = Math.min(max, c.readBytes);
    const out = new Uint8Array(n);
    let at = 0;
    for (const b of c.readable) {
      if (at >= n) break;
      const len = Math.min(b.len, n - at);
      out.set(this.guard(() => this.dma.read(b.gpa, len)), at);
      at += len;
    }
    this.counters.bytesIn += n;
    return out;
  }

  // Scatters `data` over the chain's writable buffers, from `skip` bytes into them; returns the
  // bytes written (no more than fit).
  writeAll(c: Chain, data: Uint8Array, skip = 0): number {
    let at = 0;
    let pos = 0;
    for (const b of c.writable) {
      if (at >= data.length) break;
      const start = Math.max(0, skip - pos);
      pos += b.len;
      if (start >= b.len) continue;
      const len = Math.min(b.len - start, data.length - at);
      this.guard(() => this.dma.write(b.gpa + start, data.subarray(at, at + len)));
      at += len;
    }
    this.counters.bytesOut += at;
    return at;
  }

  // The machine pieces of `len` bytes of the chain's readable (or writable) buffers from `skip`
  // bytes into them, range-checked through the p2m now: for I/O straight into or out of guest
  // frames (GuestDma.pin first).
  pieces(c: Chain, which: "readable" | "writable", skip: number, len: number): Piece[] {
    const out: Piece[] = [];
    let pos = 0;
    let left = len;
    for (const b of c[which]) {
      if (left <= 0) break;
      const start = Math.max(0, skip - pos);
      pos += b.len;
      if (start >= b.len) continue;
      const n = Math.min(b.len - start, left);
      for (const p of this.guard(() => this.dma.pieces(b.gpa + start, n, "buffer"))) out.push(p);
      left -= n;
    }
    if (which === "readable") this.counters.bytesIn += len - left;
    else this.counters.bytesOut += len - left;
    return out;
  }

  private guard<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw e instanceof DmaFault ? new VirtioError(e.message) : e;
    }
  }

  // Returns a chain to the driver with `written` bytes put in its writable buffers.
  push(head: number, written: number): void {
    const e = this.used + 4 + 8 * (this.usedIdx % this.size);
    this.dma.setU32(e, head);
    this.dma.setU32(e + 4, written);
    this.usedIdx = u16(this.usedIdx + 1);
    this.dma.setU16Release(this.used + 2, this.usedIdx);
  }

  // After pushing: does the driver want an interrupt for what was pushed since the last one?
  // (2.7.7.2 without event index: unless avail->flags says NO_INTERRUPT; 2.7.10 with it: when
  // used->idx has passed used_event.)
  wantsInterrupt(): boolean {
    const now = this.usedIdx;
    const old = this.signalledUsed;
    if (now === old) return false;
    this.signalledUsed = now;
    let want: boolean;
    if (this.eventIdx) {
      const usedEvent = this.dma.u16Acquire(this.avail + 4 + 2 * this.size);
      want = u16(now - usedEvent - 1) < u16(now - old);
    } else {
      want = (this.dma.u16Acquire(this.avail) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    }
    if (want) this.counters.interrupts++;
    else this.counters.suppressed++;
    return want;
  }
}
