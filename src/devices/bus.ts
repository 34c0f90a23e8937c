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
  // Register accesses by device: each is an MMIO exit (a posted store is a cheaper one).
  private readonly counts = new Map<MmioDevice, { loads: number; stores: number }>();

  accessCounts(): Record<string, { loads: number; stores: number }> {
    return Object.fromEntries(this.maps.map((m) => [m.device.name, { ...(this.counts.get(m.device) ?? { loads: 0, stores: 0 }) }]));
  }

  private count(d: MmioDevice, store: boolean): void {
    let c = this.counts.get(d);
    if (!c) this.counts.set(d, (c = { loads: 0, stores: 0 }));
    if (store) c.stores++;
    else c.loads++;
  }

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

  // The device windows, for a physical CPU that posts stores to them; windows that touch are
  // merged (the virtio slots are one range).
  windows(): { base: bigint; size: bigint }[] {
    const sorted = this.maps.map((m) => ({ base: m.base, size: m.size })).sort((a, b) => (a.base < b.base ? -1 : 1));
    const out: { base: bigint; size: bigint }[] = [];
    for (const w of sorted) {
      const last = out[out.length - 1];
      if (last && last.base + last.size === w.base) last.size += w.size;
      else out.push(w);
    }
    return out;
  }

  // A store that was posted (it decoded to a device when it was made).
  write(addr: bigint, size: AccessSize, value: bigint): void {
    const m = this.find(addr);
    if (!m) return;
    this.count(m.device, true);
    m.device.write(Number(addr - m.base), size, value);
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
    this.count(m.device, a.isStore);
    if (a.isStore) {
      m.device.write(off, a.size as AccessSize, a.value);
      h.mmioDone();
    } else {
      h.mmioDone(m.device.read(off, a.size as AccessSize));
    }
  }
}
