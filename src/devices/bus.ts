import type { MmioAccess } from "../hart/hart.js";

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

const CAUSE_LOAD_ACCESS = 5n;
const CAUSE_STORE_ACCESS = 7n;

export interface BusMapping {
  base: bigint;
  size: bigint;
  device: MmioDevice;
}

// What completes an MMIO exit: a hart, or a trap-and-emulate vCPU.
export interface MmioCpu {
  mmio(): MmioAccess;
  mmioDone(value?: bigint): void;
  trap(cause: bigint, tval: bigint): number;
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

  // The device windows, for a physical CPU that posts stores to them.
  windows(): { base: bigint; size: bigint }[] {
    return this.maps.map((m) => ({ base: m.base, size: m.size }));
  }

  // A store that was posted (it decoded to a device when it was made).
  write(addr: bigint, size: AccessSize, value: bigint): void {
    const m = this.find(addr);
    if (m) m.device.write(Number(addr - m.base), size, value);
  }

  // Complete the MMIO access that the hart's last EXIT_MMIO describes. An address nothing decodes
  // is an access fault at the virtual address, delivered to the guest as hardware would.
  serve(h: MmioCpu): void {
    const a = h.mmio();
    const m = this.find(a.addr);
    if (!m) {
      h.trap(a.isStore ? CAUSE_STORE_ACCESS : CAUSE_LOAD_ACCESS, a.va);
      return;
    }
    const off = Number(a.addr - m.base);
    if (a.isStore) {
      m.device.write(off, a.size as AccessSize, a.value);
      h.mmioDone();
    } else {
      h.mmioDone(m.device.read(off, a.size as AccessSize));
    }
  }
}
