// The vCPU control block: the few words through which other threads reach a vCPU while a
// physical CPU (a worker thread) runs it. It lives in machine memory, one per vCPU.
//
// Who writes what (so nothing is shared by luck):
// - PENDING: interrupt lines raised from outside the vCPU: devices (the PLIC's output, SEIP, a
//   level) and other vCPUs' IPIs (SSIP, an edge). Set and cleared only with Atomics.or/and; the
//   thread that holds the vCPU merges them into the hart's mip before it runs it.
// - KICK: set with Atomics.or by the host to make the holder look at PENDING and FENCE now
//   (KICK_LOOK) or give the vCPU back (KICK_STOP); the hart's run loop reads it atomically at each
//   slow path (HART_KICK_ADDR), the holder clears it with Atomics.exchange.
// - FENCE: a remote sfence.vma (FENCE_ALL), fence.i (FENCE_I) or p2m change (FENCE_P2M) asked of a running vCPU; the
//   holder performs it, clears the word and notifies it, which is how the asking vCPU learns it
//   is done. (For fence.i there is nothing to do but look at the translation cache, which the
//   holder does before it runs the vCPU again.)
// - STIMECMP, T0, IPS: written by whoever holds the vCPU; T0 is set once at boot. The worker
//   serves SBI set_timer itself (the commonest hypercall by far; it only touches this vCPU's own
//   state) and counts it in SET_TIMERS; IPS is its measure of the guest's speed.
// The hart blocks themselves belong to whoever holds the vCPU: the host's main thread, or the
// worker it handed the vCPU to, until the worker hands it back.
export const VCB_BYTES = 4096;
export const VCB_PENDING = 0; // i32
export const VCB_KICK = 4; // i32
export const VCB_FENCE = 8; // i32
export const VCB_SET_TIMERS = 12; // i32: SBI set_timer calls the worker served itself (it alone writes it)
export const VCB_STIMECMP = 16; // i64: SBI set_timer's value, in guest time
export const VCB_T0 = 24; // f64: host clock (ms since the epoch) at guest time 0
export const VCB_IPS = 32; // f64: guest instructions per second, measured
export const VCB_TIME_FLOOR = 40; // i64: in vCPU 0's block only: the VM's time floor (HART_TIME_FLOOR_ADDR)
// Posted MMIO stores: one ring per VM, in vCPU 0's block, that every physical CPU running one of
// the VM's vCPUs appends to and the host drains (PostRing below), so a store to a device register
// costs the guest no trip to the host. One ring for all the VM's vCPUs, not one each: a guest
// orders its vCPUs' accesses to a device with locks (the 8250 driver's port lock around its IER
// writes, a virtqueue's lock), and only a single order of reservation keeps that order; rings
// drained one vCPU after another let a store made later under the lock overtake an earlier one.
// Only stores that decode to a device (RANGES, guest-physical [base, end), the same in every
// block) are posted, so a store that would fault never is; loads still go to the host, which
// drains the ring first, so each vCPU's accesses reach the devices in program order.
export const VCB_POST_HEAD = 64; // i32, in vCPU 0's block: written by the host
export const VCB_POST_TAIL = 68; // i32, in vCPU 0's block: reserved by the workers (compare-exchange)
export const VCB_RANGES_N = 72; // i32
export const VCB_POST_AT = 76; // u32: byte offset in machine memory of the block holding the VM's ring
export const VCB_MMIO_ALIAS = 80; // i64: what the executing hart adds to a guest-physical MMIO address
export const VCB_RANGES = 96; // up to POST_RANGES pairs of i64
export const POST_RANGES = 8;
export const VCB_POST_RING = 256;
// i64 address | size << 56, i64 value, i32 ticket + 1 once the entry is written, i32 unused
export const POST_ENTRY = 24;
// A power of two, so that slot = ticket & (POST_SLOTS - 1) stays right when the i32 tickets wrap.
export const POST_SLOTS = 128;
const POST_MASK = POST_SLOTS - 1;
// How long the host spins on an entry a worker has reserved but not yet written before it waits.
const POST_SPINS = 1000;
const POST_WAIT_MS = 0.05;

export const PENDING_SSIP = 1 << 1;
export const PENDING_SEIP = 1 << 9;
export const KICK_LOOK = 1;
export const KICK_STOP = 2;
export const FENCE_ALL = 1;
export const FENCE_I = 2;
// The VM's p2m changed (ballooning): drop every shadow and every cached translation, including
// the guest-physical ones the VMM's own walker and the hart's physical context keep.
export const FENCE_P2M = 4;

// Views of one control block (any thread: the buffer is shared).
export class Vcb {
  readonly i32: Int32Array;
  readonly i64: BigInt64Array;
  readonly f64: Float64Array;

  constructor(buffer: SharedArrayBuffer, readonly offset: number) {
    this.i32 = new Int32Array(buffer, offset, VCB_BYTES / 4);
    this.i64 = new BigInt64Array(buffer, offset, VCB_BYTES / 8);
    this.f64 = new Float64Array(buffer, offset, VCB_BYTES / 8);
  }

  get stimecmp(): bigint {
    return BigInt.asUintN(64, this.i64[VCB_STIMECMP / 8]!);
  }

  set stimecmp(v: bigint) {
    this.i64[VCB_STIMECMP / 8] = BigInt.asIntN(64, v);
  }

  get t0(): number {
    return this.f64[VCB_T0 / 8]!;
  }

  set t0(ms: number) {
    this.f64[VCB_T0 / 8] = ms;
  }

  get ips(): number {
    return this.f64[VCB_IPS / 8]!;
  }

  set ips(v: number) {
    this.f64[VCB_IPS / 8] = v;
  }

  raise(bits: number): void {
    Atomics.or(this.i32, VCB_PENDING / 4, bits);
  }

  lower(bits: number): void {
    Atomics.and(this.i32, VCB_PENDING / 4, ~bits);
  }

  // Also wakes a worker that waits in place for this vCPU's interrupt (halt polling).
  kick(how: number): void {
    Atomics.or(this.i32, VCB_KICK / 4, how);
    Atomics.notify(this.i32, VCB_KICK / 4);
  }

  // The host: where stores may be posted (device windows), the alias of MMIO addresses, and the
  // block that holds the VM's ring.
  setPostable(ranges: { base: bigint; size: bigint }[], alias: bigint, ringAt: number): void {
    if (ranges.length > POST_RANGES) throw new Error(`at most ${POST_RANGES} device windows`);
    ranges.forEach((r, i) => {
      this.i64[VCB_RANGES / 8 + 2 * i] = r.base;
      this.i64[VCB_RANGES / 8 + 2 * i + 1] = r.base + r.size;
    });
    this.i32[VCB_RANGES_N / 4] = ranges.length;
    this.i64[VCB_MMIO_ALIAS / 8] = alias;
    this.i32[VCB_POST_AT / 4] = ringAt | 0;
  }

  // The worker: posts a store if it may, and says whether it did.
  post(addr: bigint, size: number, value: bigint): boolean {
    const n = this.i32[VCB_RANGES_N / 4]!;
    let ok = false;
    for (let i = 0; i < n && !ok; i++) ok = addr >= this.i64[VCB_RANGES / 8 + 2 * i]! && addr < this.i64[VCB_RANGES / 8 + 2 * i + 1]!;
    if (!ok) return false;
    this.ringView ??= new PostRing(this.i32.buffer as SharedArrayBuffer, this.i32[VCB_POST_AT / 4]! >>> 0);
    return this.ringView.post(addr, size, value);
  }

  private ringView: PostRing | undefined;

  get alias(): bigint {
    return this.i64[VCB_MMIO_ALIAS / 8]!;
  }

  get setTimers(): number {
    return Atomics.load(this.i32, VCB_SET_TIMERS / 4);
  }

  takeKick(): number {
    return Atomics.exchange(this.i32, VCB_KICK / 4, 0);
  }

  // Asks the holder for a full fence (or a fence.i); resolves once it has done it.
  requestFence(kind: number = FENCE_ALL): Promise<void> {
    const was = Atomics.or(this.i32, VCB_FENCE / 4, kind);
    this.kick(KICK_LOOK);
    const w = Atomics.waitAsync(this.i32, VCB_FENCE / 4, was | kind);
    return w.async ? w.value.then(() => undefined) : Promise.resolve();
  }

  // The holder: a fence asked for, which the caller must now perform, or 0.
  takeFence(): number {
    const f = Atomics.exchange(this.i32, VCB_FENCE / 4, 0);
    if (f !== 0) Atomics.notify(this.i32, VCB_FENCE / 4);
    return f;
  }

  // The holder: merges the lines raised from outside into mip (SEIP follows the line, an SSIP
  // request is consumed).
  mergeInto(mip: bigint): bigint {
    const p = Atomics.load(this.i32, VCB_PENDING / 4);
    let m = (mip & ~BigInt(PENDING_SEIP)) | BigInt(p & PENDING_SEIP);
    if ((p & PENDING_SSIP) !== 0) {
      Atomics.and(this.i32, VCB_PENDING / 4, ~PENDING_SSIP);
      m |= BigInt(PENDING_SSIP);
    }
    return m;
  }
}

// Guest time (10 MHz ticks) from a host clock reading in ms since the epoch.
export function guestTicks(t0Ms: number, nowMs: number, hz: number): bigint {
  const t = Math.floor((nowMs - t0Ms) * (hz / 1000));
  return BigInt(t > 0 ? t : 0);
}

// Every thread's clock, in ms since the epoch (sub-microsecond resolution).
export function hostClockMs(): number {
  return performance.timeOrigin + performance.now();
}

// The ring of a VM's posted stores (the block at `at`, vCPU 0's). Producers are the workers that
// run the VM's vCPUs, any number at once: each reserves a ticket by compare-exchange on TAIL, writes
// its entry, then publishes it by storing ticket + 1 in the entry (release). The one consumer is
// the host's main thread: it applies entries in ticket order, waiting for one reserved but not yet
// published (a worker is between the two steps for a few instructions), and frees each slot by
// advancing HEAD. A store the guest made after another (in its program order, or after it under
// a lock another vCPU released) took its ticket after the other's: the ring holds them in order.
export class PostRing {
  private readonly i32: Int32Array;
  private readonly i64: BigInt64Array;

  constructor(buffer: SharedArrayBuffer, readonly at: number) {
    this.i32 = new Int32Array(buffer, at, VCB_BYTES / 4);
    this.i64 = new BigInt64Array(buffer, at, VCB_BYTES / 8);
  }

  // A worker: false when the ring is full (the store then goes to the host as an exit).
  post(addr: bigint, size: number, value: bigint): boolean {
    let t: number;
    for (;;) {
      t = Atomics.load(this.i32, VCB_POST_TAIL / 4);
      if (((t - Atomics.load(this.i32, VCB_POST_HEAD / 4)) | 0) >= POST_SLOTS) return false;
      if (Atomics.compareExchange(this.i32, VCB_POST_TAIL / 4, t, (t + 1) | 0) === t) break;
    }
    const e = VCB_POST_RING + (t & POST_MASK) * POST_ENTRY;
    this.i64[e / 8] = addr | (BigInt(size) << 56n);
    this.i64[e / 8 + 1] = value;
    Atomics.store(this.i32, e / 4 + 4, (t + 1) | 0);
    return true;
  }

  // The host: hands each posted store, oldest first, to `write`; returns how many. HEAD is read
  // afresh for each entry and advanced before the entry is applied, so a drain that a device's
  // write sets off from inside this one applies each entry once, and in order.
  drain(write: (addr: bigint, size: number, value: bigint) => void): number {
    const tail = Atomics.load(this.i32, VCB_POST_TAIL / 4);
    let n = 0;
    for (let head = this.i32[VCB_POST_HEAD / 4]!; ((tail - head) | 0) > 0; head = this.i32[VCB_POST_HEAD / 4]!) {
      const e = VCB_POST_RING + (head & POST_MASK) * POST_ENTRY;
      const ready = (head + 1) | 0;
      for (let spins = 0, v = Atomics.load(this.i32, e / 4 + 4); v !== ready; v = Atomics.load(this.i32, e / 4 + 4)) {
        if (++spins > POST_SPINS) Atomics.wait(this.i32, e / 4 + 4, v, POST_WAIT_MS);
      }
      const a = BigInt.asUintN(64, this.i64[e / 8]!);
      const value = this.i64[e / 8 + 1]!;
      Atomics.store(this.i32, VCB_POST_HEAD / 4, ready);
      n++;
      write(a & ((1n << 56n) - 1n), Number(a >> 56n), value);
    }
    return n;
  }
}
