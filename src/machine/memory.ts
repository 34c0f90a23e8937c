// Machine memory: one shared WebAssembly.Memory that every hart (and, later, every pCPU worker)
// addresses directly, carved into 4 KiB frames. The bottom MODULE_RESERVED_BYTES belong to the
// wasm module itself.
import { MODULE_RESERVED_BYTES } from "../hart/layout.js";
import { UserError } from "../errors.js";

export const FRAME_BYTES = 4096;
const WASM_PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB: the limit of a 32-bit wasm memory

export class MachineMemory {
  readonly memory: WebAssembly.Memory;
  private used: Uint8Array; // one byte per frame: 1 = allocated
  private frames: number;
  allocatedFrames = 0;

  constructor(bytes: number) {
    const pages = Math.ceil(bytes / WASM_PAGE);
    if (pages > MAX_PAGES) throw new UserError(`machine memory of ${bytes} bytes exceeds the 4 GiB limit`);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
    this.frames = (pages * WASM_PAGE) / FRAME_BYTES;
    this.used = new Uint8Array(this.frames);
    this.used.fill(1, 0, MODULE_RESERVED_BYTES / FRAME_BYTES);
  }

  get bytes(): number {
    return this.frames * FRAME_BYTES;
  }

  // The current buffer: growing shared memory gives a longer buffer; old views stay valid.
  get buffer(): SharedArrayBuffer {
    return this.memory.buffer as unknown as SharedArrayBuffer;
  }

  // n physically contiguous frames, aligned to `alignFrames`; returns the byte offset.
  allocContiguous(n: number, alignFrames = 1): number {
    for (let start = 0; start + n <= this.frames; start += alignFrames) {
      let free = true;
      for (let i = start; i < start + n; i++) {
        if (this.used[i]) {
          free = false;
          start = Math.floor(i / alignFrames) * alignFrames;
          break;
        }
      }
      if (free) {
        this.used.fill(1, start, start + n);
        this.allocatedFrames += n;
        return start * FRAME_BYTES;
      }
    }
    this.grow(n + alignFrames);
    return this.allocContiguous(n, alignFrames);
  }

  // n frames wherever they are free; returns their byte offsets. `scattered` picks them in a
  // deterministic pseudo-random order, so that nothing can depend on machine frames being
  // contiguous (tests use it to prove that guests see contiguous RAM anyway).
  allocFrames(n: number, scattered = false, seed = 1): number[] {
    const free: number[] = [];
    for (let i = 0; i < this.frames && (scattered || free.length < n); i++) if (!this.used[i]) free.push(i);
    if (free.length < n) {
      this.grow(n - free.length);
      return this.allocFrames(n, scattered, seed);
    }
    if (scattered) {
      let x = seed >>> 0 || 1;
      for (let i = free.length - 1; i > 0; i--) {
        x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; // xorshift32
        const j = x % (i + 1);
        [free[i], free[j]] = [free[j]!, free[i]!];
      }
    }
    const picked = free.slice(0, n);
    for (const f of picked) this.used[f] = 1;
    this.allocatedFrames += n;
    return picked.map((f) => f * FRAME_BYTES);
  }

  // Byte offsets of every frame nobody holds (tests fill them with canaries).
  freeFrames(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.frames; i++) if (!this.used[i]) out.push(i * FRAME_BYTES);
    return out;
  }

  free(offset: number, n: number): void {
    const start = offset / FRAME_BYTES;
    this.used.fill(0, start, start + n);
    this.allocatedFrames -= n;
  }

  private grow(frames: number): void {
    const pages = Math.ceil((frames * FRAME_BYTES) / WASM_PAGE);
    const now = this.memory.buffer.byteLength / WASM_PAGE;
    if (now + pages > MAX_PAGES) throw new UserError("machine memory exhausted (4 GiB limit)");
    this.memory.grow(pages);
    const used = new Uint8Array((now + pages) * (WASM_PAGE / FRAME_BYTES));
    used.set(this.used);
    this.used = used;
    this.frames = used.length;
  }

  bytesAt(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.buffer, offset, length);
  }
}
