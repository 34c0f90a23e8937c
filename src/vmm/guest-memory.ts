// Guest-physical memory as loaders see it: a range from `base`, written by guest-physical
// address. Native mode backs it with one contiguous run of machine memory; the hypervisor's
// p2m (p2m.ts) backs it with machine frames from anywhere.
export interface GuestMemory {
  readonly base: bigint;
  readonly bytes: number;
  // Both throw a RangeError for any part of the range outside guest RAM.
  write(gpa: bigint, data: Uint8Array): void;
  fill(gpa: bigint, length: number, value: number): void;
}

export function contains(mem: GuestMemory, gpa: bigint, length: number): boolean {
  return gpa >= mem.base && gpa + BigInt(length) <= mem.base + BigInt(mem.bytes);
}

export function checkRange(mem: GuestMemory, gpa: bigint, length: number): number {
  if (!contains(mem, gpa, length)) {
    throw new RangeError(`guest-physical range 0x${gpa.toString(16)}+${length} is outside guest RAM`);
  }
  return Number(gpa - mem.base);
}

// Guest RAM that is one contiguous byte range (native mode, the bare machine).
export class ContiguousRam implements GuestMemory {
  constructor(readonly base: bigint, readonly ram: Uint8Array) {}

  get bytes(): number {
    return this.ram.length;
  }

  write(gpa: bigint, data: Uint8Array): void {
    this.ram.set(data, checkRange(this, gpa, data.length));
  }

  fill(gpa: bigint, length: number, value: number): void {
    const off = checkRange(this, gpa, length);
    this.ram.fill(value, off, off + length);
  }

  read(gpa: bigint, length: number): Uint8Array {
    const off = checkRange(this, gpa, length);
    return this.ram.slice(off, off + length);
  }
}
