// What a memory-mapped device looks like to the machine: register reads and writes at an offset
// inside its window, and interrupt lines it can raise.
export type AccessSize = 1 | 2 | 4 | 8;

export interface MmioDevice {
  readonly name: string;
  read(offset: number, size: AccessSize): bigint;
  write(offset: number, size: AccessSize, value: bigint): void;
}

// A level-triggered interrupt line into an interrupt controller.
export interface IrqLine {
  set(level: boolean): void;
}

export interface BusMapping {
  base: bigint;
  size: bigint;
  device: MmioDevice;
}

// Physical address decoding for MMIO exits.
export class Bus {
  private readonly maps: BusMapping[] = [];

  map(base: bigint, size: bigint, device: MmioDevice): void {
    for (const m of this.maps) {
      if (base < m.base + m.size && m.base < base + size) {
        throw new Error(`${device.name} at 0x${base.toString(16)} overlaps ${m.device.name}`);
      }
    }
    this.maps.push({ base, size, device });
  }

  find(addr: bigint): BusMapping | undefined {
    for (const m of this.maps) if (addr >= m.base && addr < m.base + m.size) return m;
    return undefined;
  }
}
