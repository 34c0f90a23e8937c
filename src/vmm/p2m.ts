// The p2m ("physical to machine") table: for each 4 KiB frame of a VM's guest-physical RAM, the
// machine frame that backs it. The guest sees RAM contiguous from its base; underneath, machine
// frames come from wherever the frame allocator has them. The table is the isolation boundary:
// a guest-physical address outside it, or a machine frame not in it, is never reachable by the
// guest. It lives in machine memory as a flat u32 array (machine frame numbers, 0 = none) so that
// wasm code (shadow paging) can read it without calling the host.
import type { FrameAccount, MachineMemory } from "../machine/memory.js";
import { FRAME_BYTES } from "../machine/memory.js";
import { checkRange, type GuestMemory } from "./guest-memory.js";

export interface P2mStats {
  frames: number; // guest frames backed
  contiguousRuns: number; // maximal runs of guest frames whose machine frames are consecutive
}

export class P2m implements GuestMemory {
  readonly frames: number;
  private readonly table: Uint32Array;
  private readonly mem: MachineMemory;
  readonly tableOffset: number; // byte offset of the table in machine memory

  // RAM frames come from `account`, wherever the allocator has them; `scatterSeed` shuffles them
  // deterministically (tests use it to show that nothing depends on contiguous frames).
  constructor(account: FrameAccount, readonly base: bigint, readonly bytes: number, scatterSeed?: number) {
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % FRAME_BYTES !== 0) throw new Error(`guest RAM of ${bytes} bytes is not a positive whole number of frames`);
    this.mem = account.mem;
    this.frames = bytes / FRAME_BYTES;
    const tableFrames = Math.ceil((this.frames * 4) / FRAME_BYTES);
    this.tableOffset = account.contiguous("p2m", tableFrames);
    const machine = account.frames("ram", this.frames, scatterSeed !== undefined, scatterSeed);
    this.table = new Uint32Array(this.mem.buffer, this.tableOffset, this.frames);
    machine.forEach((offset, i) => { this.table[i] = offset / FRAME_BYTES; });
  }

  // Machine byte offset of guest-physical address gpa, or undefined outside guest RAM.
  machine(gpa: bigint): number | undefined {
    const off = gpa - this.base;
    if (off < 0n || off >= BigInt(this.bytes)) return undefined;
    const frame = Number(off / BigInt(FRAME_BYTES));
    return this.table[frame]! * FRAME_BYTES + Number(off % BigInt(FRAME_BYTES));
  }

  machineFrame(guestFrame: number): number {
    return this.table[guestFrame]!;
  }

  // Points guest frame `guestFrame` at machine frame number `machineFrame` (ballooning). The
  // caller keeps the frames' accounts and makes every vCPU forget cached translations of it.
  remap(guestFrame: number, machineFrame: number): void {
    if (!Number.isInteger(guestFrame) || guestFrame < 0 || guestFrame >= this.frames) throw new RangeError(`guest frame ${guestFrame} outside 0..${this.frames - 1}`);
    if (!Number.isInteger(machineFrame) || machineFrame <= 0) throw new RangeError(`machine frame ${machineFrame} is not a frame`);
    this.table[guestFrame] = machineFrame;
  }

  // Copy bytes into guest-physical memory, frame by frame.
  write(gpa: bigint, data: Uint8Array): void {
    this.forEachPiece(gpa, data.length, (machine, at, len) => {
      this.mem.bytesAt(machine, len).set(data.subarray(at, at + len));
      this.mem.codeWritten(machine, len);
    });
  }

  fill(gpa: bigint, length: number, value: number): void {
    this.forEachPiece(gpa, length, (machine, _at, len) => {
      this.mem.bytesAt(machine, len).fill(value);
      this.mem.codeWritten(machine, len);
    });
  }

  read(gpa: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.forEachPiece(gpa, length, (machine, at, len) => out.set(this.mem.bytesAt(machine, len), at));
    return out;
  }

  private forEachPiece(gpa: bigint, length: number, f: (machine: number, at: number, len: number) => void): void {
    checkRange(this, gpa, length);
    let at = 0;
    while (at < length) {
      const a = gpa + BigInt(at);
      const inFrame = FRAME_BYTES - Number((a - this.base) % BigInt(FRAME_BYTES));
      const len = Math.min(inFrame, length - at);
      f(this.machine(a)!, at, len);
      at += len;
    }
  }

  stats(): P2mStats {
    let runs = 0;
    for (let i = 0; i < this.frames; i++) {
      if (i === 0 || this.table[i] !== this.table[i - 1]! + 1) runs++;
    }
    return { frames: this.frames, contiguousRuns: runs };
  }
}
