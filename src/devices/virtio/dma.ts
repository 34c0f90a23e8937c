// A device's view of its VM's guest-physical memory: every address a driver hands a device
// (a ring's base, a descriptor's buffer) goes through the VM's p2m and is bounds-checked here, so
// a device can reach the guest's RAM and nothing else: not another VM's frames, not the
// hypervisor's. Anything outside RAM is a DmaFault, which the virtio transport turns into the
// device's error state (DEVICE_NEEDS_RESET) without having touched memory.
//
// Threads: devices run on the host's main thread while the guest's vCPUs run on physical-CPU
// workers, so ring words the driver publishes are read with Atomics (avail->idx: an acquire that
// orders the descriptor reads after it) and the words the device publishes are written with
// Atomics (used->idx: a release after the used elements and the data). The guest's side orders
// its accesses with fence instructions, which the hart runs as wasm atomic.fence.
import { FRAME_BYTES, type MachineMemory } from "../../machine/memory.js";

export class DmaFault extends Error {
  override name = "DmaFault";
}

// What the device model needs of a VM's RAM: its base and size and, per guest frame, the machine
// frame behind it (the p2m; src/vmm/p2m.ts).
export interface GuestFrames {
  readonly base: bigint;
  readonly bytes: number;
  machineFrame(guestFrame: number): number;
}

// One piece of a guest buffer that lies in one machine frame: a machine byte offset and length.
export interface Piece {
  at: number;
  len: number;
}

export class GuestDma {
  private readonly base: number;
  private readonly end: number;
  // Guest bytes the host copied in and out, for the device counters' sake.
  bytesRead = 0;
  bytesWritten = 0;

  constructor(private readonly mem: MachineMemory, private readonly ram: GuestFrames) {
    this.base = Number(ram.base);
    this.end = this.base + ram.bytes;
  }

  // True if [gpa, gpa + len) lies inside guest RAM (gpa a Number; callers convert u64s with u64()).
  inRam(gpa: number, len: number): boolean {
    return Number.isSafeInteger(gpa) && len >= 0 && gpa >= this.base && gpa + len <= this.end;
  }

  check(gpa: number, len: number, what: string): void {
    if (!this.inRam(gpa, len)) throw new DmaFault(`${what} at 0x${gpa.toString(16)}+${len} is outside guest RAM`);
  }

  // Machine offset of one guest byte (the range check is the caller's).
  private machine(gpa: number): number {
    const off = gpa - this.base;
    const frame = Math.floor(off / FRAME_BYTES);
    return this.ram.machineFrame(frame) * FRAME_BYTES + (off % FRAME_BYTES);
  }

  // The machine pieces of [gpa, gpa + len), frame by frame.
  pieces(gpa: number, len: number, what: string): Piece[] {
    this.check(gpa, len, what);
    const out: Piece[] = [];
    let a = gpa;
    let left = len;
    while (left > 0) {
      const inFrame = FRAME_BYTES - ((a - this.base) % FRAME_BYTES);
      const n = Math.min(inFrame, left);
      out.push({ at: this.machine(a), len: n });
      a += n;
      left -= n;
    }
    return out;
  }

  // Views of the whole machine memory, renewed when it has grown (old views stay valid but
  // short). Guest RAM and ring words are little-endian, as is every host Node runs on here.
  private buf: SharedArrayBuffer | undefined;
  private w16: Uint16Array<ArrayBufferLike> = new Uint16Array(0);
  private w32: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

  private renew(): void {
    const b = this.mem.buffer;
    if (b === this.buf) return;
    this.buf = b;
    this.w16 = new Uint16Array(b);
    this.w32 = new Uint32Array(b);
  }

  // Ring words are naturally aligned, so never straddle a frame (the transport checks ring
  // alignment); the range check is the caller's.
  u16(gpa: number): number {
    this.renew();
    return this.w16[this.machine(gpa) >>> 1]!;
  }

  u16Acquire(gpa: number): number {
    this.renew();
    return Atomics.load(this.w16, this.machine(gpa) >>> 1);
  }

  u32(gpa: number): number {
    this.renew();
    return this.w32[this.machine(gpa) >>> 2]!;
  }

  // A descriptor's 64-bit address as a Number, or NaN when it cannot be a RAM address (any
  // address at or above 2^53 is outside RAM, which ends below 2^33).
  u64(gpa: number): number {
    this.renew();
    const i = this.machine(gpa) >>> 2;
    const hi = this.w32[i + 1]!;
    return hi >= 0x20_0000 ? NaN : hi * 2 ** 32 + this.w32[i]!;
  }

  setU16Release(gpa: number, v: number): void {
    this.renew();
    Atomics.store(this.w16, this.machine(gpa) >>> 1, v);
  }

  setU16(gpa: number, v: number): void {
    this.renew();
    this.w16[this.machine(gpa) >>> 1] = v;
  }

  setU32(gpa: number, v: number): void {
    this.renew();
    this.w32[this.machine(gpa) >>> 2] = v;
  }

  // Host I/O straight between a file and guest frames (a disk read lands in the guest's buffer
  // with no copy; a write goes out of it): the I/O runs on libuv's thread pool, so the frames
  // must stay this VM's until it is done, even if the guest gives the page to its balloon or the
  // VM is destroyed meanwhile. pin() counts each machine frame of the pieces; the frames' owner
  // (the VM: balloon and dispose) asks pinned() before it frees one and hears onUnpinned when the
  // last pin goes. Main thread only, as every device.
  private readonly pins = new Map<number, number>(); // machine frame number -> pins
  private idleWaiters: Array<() => void> = [];
  onUnpinned: ((frame: number) => void) | undefined;

  // Views of the machine bytes behind pieces, for readv/writev.
  views(pieces: readonly Piece[]): Uint8Array[] {
    return pieces.map((p) => this.mem.bytesAt(p.at, p.len));
  }

  // Pins the frames of `pieces`; the function returned unpins them (once; later calls do nothing).
  pin(pieces: readonly Piece[]): () => void {
    const frames = new Set<number>();
    for (const p of pieces) for (let f = Math.floor(p.at / FRAME_BYTES); f * FRAME_BYTES < p.at + p.len; f++) frames.add(f);
    for (const f of frames) this.pins.set(f, (this.pins.get(f) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const f of frames) {
        const n = this.pins.get(f)! - 1;
        if (n > 0) {
          this.pins.set(f, n);
          continue;
        }
        this.pins.delete(f);
        this.onUnpinned?.(f);
      }
      if (this.pins.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
  }

  get busy(): boolean {
    return this.pins.size > 0;
  }

  pinned(machineFrame: number): boolean {
    return this.pins.has(machineFrame);
  }

  // Resolves once no frame is pinned.
  idle(): Promise<void> {
    return this.pins.size === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }

  // Data that host I/O put straight into guest frames has landed: count it, and mark frames that
  // hold translated code written (as write() does).
  landed(pieces: readonly Piece[]): void {
    for (const p of pieces) {
      this.mem.codeWritten(p.at, p.len);
      this.bytesWritten += p.len;
    }
  }

  // Copies [gpa, gpa + len) out of guest RAM.
  read(gpa: number, len: number, what = "buffer"): Uint8Array {
    const out = new Uint8Array(len);
    let at = 0;
    for (const p of this.pieces(gpa, len, what)) {
      out.set(this.mem.bytesAt(p.at, p.len), at);
      at += p.len;
    }
    this.bytesRead += len;
    return out;
  }

  // Copies data into guest RAM at gpa. Frames that hold translated code are marked written, as
  // for any store the harts did not make (DMA into code: src/hart/jit/cache.ts).
  write(gpa: number, data: Uint8Array, what = "buffer"): void {
    let at = 0;
    for (const p of this.pieces(gpa, data.length, what)) {
      this.mem.bytesAt(p.at, p.len).set(data.subarray(at, at + p.len));
      this.mem.codeWritten(p.at, p.len);
      at += p.len;
    }
    this.bytesWritten += data.length;
  }
}
