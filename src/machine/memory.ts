// Machine memory: one shared WebAssembly.Memory that every hart (and every physical-CPU worker)
// addresses directly, carved into 4 KiB frames by one allocator that every VM draws from. The
// bottom MODULE_RESERVED_BYTES belong to the wasm module itself. The memory has a fixed capacity
// (the host's machine size); its buffer grows lazily towards it, so an unused capacity costs no
// host RAM. Who holds which frames is kept in accounts (one per VM, by kind), so that a VM's
// overhead can be shown and every frame it held can be given back.
//
// Ownership: the allocator belongs to the thread that created the memory (the host's main
// thread); workers only read and write frames they were handed.
import { MODULE_RESERVED_BYTES } from "../hart/layout.js";
import { UserError } from "../errors.js";

export const FRAME_BYTES = 4096;
const WASM_PAGE = 65536;
const FRAMES_PER_PAGE = WASM_PAGE / FRAME_BYTES;
export const MAX_MACHINE_BYTES = 65536 * WASM_PAGE; // 4 GiB: the limit of a 32-bit wasm memory

export class OutOfMachineMemory extends UserError {
  override name = "OutOfMachineMemory";
}

export const mib = (frames: number): string => `${((frames * FRAME_BYTES) / 2 ** 20).toFixed(frames * FRAME_BYTES >= 2 ** 24 ? 0 : 1)} MiB`;

// The code map's bits (src/hart/asm/jit.ts).
const CODE_TRANSLATED = 1;
const CODE_WRITTEN = 2;

export class MachineMemory {
  readonly memory: WebAssembly.Memory;
  // Frames the machine may ever have.
  readonly capacityFrames: number;
  private used: Uint8Array; // one byte per frame of the current buffer: 1 = allocated
  private frames: number; // frames in the current buffer
  private hint = 0; // no free frame below this index
  allocatedFrames = 0;
  private readonly accounts = new Set<FrameAccount>();

  // `bytes` is the capacity; the buffer starts at `initialBytes` (default: all of it, up to 64 MiB).
  constructor(bytes: number, initialBytes = Math.min(bytes, 64 << 20)) {
    const maxPages = Math.ceil(bytes / WASM_PAGE);
    if (bytes > MAX_MACHINE_BYTES) throw new UserError(`machine memory of ${bytes} bytes exceeds the 4 GiB limit of a 32-bit wasm memory`);
    const trackBytes = 64 + maxPages * FRAMES_PER_PAGE * 5;
    const pages = Math.max(Math.ceil(Math.max(initialBytes, MODULE_RESERVED_BYTES + trackBytes + FRAME_BYTES) / WASM_PAGE), 1);
    this.memory = new WebAssembly.Memory({ initial: Math.min(pages, maxPages), maximum: 65536, shared: true });
    this.capacityFrames = maxPages * FRAMES_PER_PAGE;
    this.frames = Math.min(pages, maxPages) * FRAMES_PER_PAGE;
    this.used = new Uint8Array(this.frames);
    // After the module's region: what the translator tracks machine-wide (src/hart/jit/cache.ts):
    // a code byte and a u32 content generation per frame, a flag set when translated code is
    // written, and a count of generation changes.
    const frames0 = MODULE_RESERVED_BYTES / FRAME_BYTES;
    const reserved = frames0 + Math.ceil(trackBytes / FRAME_BYTES);
    if (reserved > this.frames) throw new UserError(`machine memory of ${bytes} bytes is too small`);
    this.codeTrack = {
      flag: MODULE_RESERVED_BYTES,
      genEpoch: MODULE_RESERVED_BYTES + 4,
      gen: MODULE_RESERVED_BYTES + 64,
      dirty: MODULE_RESERVED_BYTES + 64 + this.capacityFrames * 4,
    };
    this.used.fill(1, 0, reserved);
    this.hint = reserved;
    this.reservedFrames = reserved;
  }

  readonly reservedFrames: number;
  // Byte offsets: flag (u32), genEpoch (u32), gen (u32 per frame), dirty (u8 per frame).
  readonly codeTrack: { flag: number; genEpoch: number; gen: number; dirty: number };

  get bytes(): number {
    return this.frames * FRAME_BYTES;
  }

  get capacityBytes(): number {
    return this.capacityFrames * FRAME_BYTES;
  }

  // Frames not allocated, counting capacity the buffer has not grown into yet.
  get freeFrameCount(): number {
    return this.capacityFrames - this.reservedFrames - this.allocatedFrames - this.hostFrames;
  }

  // Frames the host itself holds (each physical CPU's translation map), in no VM's account.
  hostFrames = 0;

  allocHost(n: number): number {
    const at = this.allocContiguous(n);
    this.allocatedFrames -= n;
    this.hostFrames += n;
    return at;
  }

  // The current buffer: growing shared memory gives a longer buffer; old views stay valid.
  get buffer(): SharedArrayBuffer {
    return this.memory.buffer as unknown as SharedArrayBuffer;
  }

  account(name: string): FrameAccount {
    const a = new FrameAccount(this, name);
    this.accounts.add(a);
    return a;
  }

  // Every account with frames, for the host's counters.
  accountList(): FrameAccount[] {
    return [...this.accounts];
  }

  forget(a: FrameAccount): void {
    this.accounts.delete(a);
  }

  // n physically contiguous frames, aligned to `alignFrames`; returns the byte offset.
  allocContiguous(n: number, alignFrames = 1): number {
    for (;;) {
      let start = Math.ceil(this.hint / alignFrames) * alignFrames;
      while (start + n <= this.frames) {
        let clash = -1;
        for (let i = start + n - 1; i >= start; i--) {
          if (this.used[i]) {
            clash = i;
            break;
          }
        }
        if (clash < 0) {
          this.used.fill(1, start, start + n);
          this.allocatedFrames += n;
          if (start === this.hint) this.advanceHint();
          return start * FRAME_BYTES;
        }
        start = Math.ceil((clash + 1) / alignFrames) * alignFrames;
      }
      this.grow(n + alignFrames, `${n} contiguous frames`);
    }
  }

  // n frames wherever they are free; returns their byte offsets. `scattered` picks them in a
  // deterministic pseudo-random order, so that nothing can depend on machine frames being
  // contiguous (tests use it to prove that guests see contiguous RAM anyway).
  allocFrames(n: number, scattered = false, seed = 1): number[] {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`cannot allocate ${n} frames`);
    if (n > this.freeFrameCount) this.refuse(n, `${n} frames`);
    if (scattered) return this.allocScattered(n, seed);
    const picked: number[] = [];
    for (;;) {
      for (let i = this.hint; i < this.frames && picked.length < n; i++) {
        if (!this.used[i]) {
          this.used[i] = 1;
          picked.push(i);
        }
      }
      if (picked.length === n) break;
      this.grow(n - picked.length, `${n} frames`);
    }
    this.allocatedFrames += n;
    this.advanceHint();
    return picked.map((f) => f * FRAME_BYTES);
  }

  private allocScattered(n: number, seed: number): number[] {
    const free: number[] = [];
    for (let i = this.hint; i < this.frames; i++) if (!this.used[i]) free.push(i);
    if (free.length < n) {
      this.grow(n - free.length, `${n} frames`);
      return this.allocScattered(n, seed);
    }
    let x = seed >>> 0 || 1;
    for (let i = free.length - 1; i > 0; i--) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; // xorshift32
      const j = x % (i + 1);
      [free[i], free[j]] = [free[j]!, free[i]!];
    }
    const picked = free.slice(0, n);
    for (const f of picked) this.used[f] = 1;
    this.allocatedFrames += n;
    this.advanceHint();
    return picked.map((f) => f * FRAME_BYTES);
  }

  // Byte offsets of every frame nobody holds, in the current buffer (tests fill them with canaries).
  freeFrames(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.frames; i++) if (!this.used[i]) out.push(i * FRAME_BYTES);
    return out;
  }

  isAllocated(offset: number): boolean {
    return this.used[offset / FRAME_BYTES] === 1;
  }

  free(offset: number, n: number): void {
    const start = offset / FRAME_BYTES;
    for (let i = start; i < start + n; i++) {
      if (!this.used[i]) throw new Error(`frame ${i} freed twice`);
    }
    this.used.fill(0, start, start + n);
    this.allocatedFrames -= n;
    if (start < this.hint) this.hint = start;
    // Whoever gets these frames next writes them from the host or from another VM's harts:
    // translations of what they held must not outlive them.
    this.codeWritten(offset, n * FRAME_BYTES);
  }

  // The host wrote [offset, offset + bytes) other than through a hart (loading an image, a
  // device's DMA, freeing): frames holding translated code are marked written, so every
  // translator drops those translations at its next check (src/hart/jit/cache.ts).
  codeWritten(offset: number, bytes: number): void {
    if (bytes <= 0) return;
    const buf = this.memory.buffer as unknown as SharedArrayBuffer;
    const marks = new Uint8Array(buf, this.codeTrack.dirty, this.capacityFrames);
    let any = false;
    for (let f = Math.floor(offset / FRAME_BYTES); f <= Math.floor((offset + bytes - 1) / FRAME_BYTES); f++) {
      if ((Atomics.load(marks, f) & CODE_TRANSLATED) !== 0) {
        Atomics.or(marks, f, CODE_WRITTEN);
        any = true;
      }
    }
    if (any) Atomics.store(new Uint32Array(buf, this.codeTrack.flag, 1), 0, 1);
  }

  private advanceHint(): void {
    while (this.hint < this.frames && this.used[this.hint]) this.hint++;
  }

  private refuse(frames: number, what: string): never {
    throw new OutOfMachineMemory(
      `machine memory is full: ${what} (${mib(frames)}) asked for, ${mib(this.freeFrameCount)} free of ${mib(this.capacityFrames)}`,
    );
  }

  private grow(frames: number, what: string): void {
    const pages = Math.ceil(frames / FRAMES_PER_PAGE);
    const now = this.memory.buffer.byteLength / WASM_PAGE;
    if ((now + pages) * FRAMES_PER_PAGE > this.capacityFrames) {
      const room = this.capacityFrames - now * FRAMES_PER_PAGE;
      if (room <= 0) this.refuse(frames, what);
      this.memory.grow(room / FRAMES_PER_PAGE);
    } else {
      // Grow in steps of at least 16 MiB: each grow is a syscall and a new buffer.
      this.memory.grow(Math.min(Math.max(pages, 256), this.capacityFrames / FRAMES_PER_PAGE - now));
    }
    const used = new Uint8Array(this.memory.buffer.byteLength / FRAME_BYTES);
    used.set(this.used);
    this.used = used;
    this.frames = used.length;
  }

  bytesAt(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.buffer, offset, length);
  }
}

// Frame kinds an account keeps apart: guest RAM, and the hypervisor's own structures for the VM.
export type FrameKind = "ram" | "p2m" | "hart" | "vmm" | "shadow";

// The frames one owner (a VM) holds, by kind. release() gives every one of them back.
export class FrameAccount {
  private readonly runs = new Map<number, { n: number; kind: FrameKind }>(); // byte offset -> contiguous run
  private readonly singles = new Map<FrameKind, Set<number>>(); // frames allocated one by one
  private readonly byKind = new Map<FrameKind, number>();

  constructor(readonly mem: MachineMemory, readonly name: string) {}

  contiguous(kind: FrameKind, n: number, alignFrames = 1): number {
    const off = this.mem.allocContiguous(n, alignFrames);
    this.runs.set(off, { n, kind });
    this.add(kind, n);
    return off;
  }

  frames(kind: FrameKind, n: number, scattered = false, seed = 1): number[] {
    const offs = this.mem.allocFrames(n, scattered, seed);
    const set = this.singles.get(kind) ?? new Set<number>();
    for (const off of offs) set.add(off);
    this.singles.set(kind, set);
    this.add(kind, n);
    return offs;
  }

  // Gives back one frame this account allocated alone.
  freeFrame(kind: FrameKind, offset: number): void {
    const set = this.singles.get(kind);
    if (!set?.delete(offset)) throw new Error(`${this.name} holds no single ${kind} frame at 0x${offset.toString(16)}`);
    this.add(kind, -1);
    this.mem.free(offset, 1);
  }

  // Gives back a contiguous run this account allocated.
  free(offset: number): void {
    const run = this.runs.get(offset);
    if (!run) throw new Error(`${this.name} holds no run of frames at 0x${offset.toString(16)}`);
    this.runs.delete(offset);
    this.add(run.kind, -run.n);
    this.mem.free(offset, run.n);
  }

  get total(): number {
    let n = 0;
    for (const v of this.byKind.values()) n += v;
    return n;
  }

  counts(): Record<FrameKind, number> {
    const out: Record<FrameKind, number> = { ram: 0, p2m: 0, hart: 0, vmm: 0, shadow: 0 };
    for (const [k, v] of this.byKind) out[k] = v;
    return out;
  }

  release(): void {
    for (const [off, run] of this.runs) this.mem.free(off, run.n);
    for (const set of this.singles.values()) for (const off of set) this.mem.free(off, 1);
    this.runs.clear();
    this.singles.clear();
    this.byKind.clear();
    this.mem.forget(this);
  }

  private add(kind: FrameKind, n: number): void {
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + n);
  }
}
