// The board: Ringvisor's "virt" machine, as one table. The bus maps devices from it and the device
// tree describes them from it, so the two cannot disagree. Addresses follow QEMU's virt board
// where it has the same device, so a guest configured for one finds its way on the other.
import { plicWindowSize } from "../devices/plic.js";
import { UART_SIZE } from "../devices/uart16550.js";
import { GOLDFISH_RTC_SIZE } from "../devices/goldfish-rtc.js";
import type { DeviceTreeConfig } from "./devicetree.js";

export const RAM_BASE = 0x8000_0000n;
export const TIMEBASE_HZ = 10_000_000;
export const MMU_TYPE = "riscv,sv48";

export const RTC = { base: 0x0010_1000n, size: GOLDFISH_RTC_SIZE, irq: 11 } as const;
export const UART = { base: 0x1000_0000n, size: UART_SIZE, irq: 10 } as const;
export const PLIC = { base: 0x0c00_0000n, ndev: 31 } as const;
// virtio-mmio slots, as on QEMU's virt board: 4 KiB windows from 0x1000_1000, PLIC sources 1-8.
// A VM's virtio devices fill them in order (disks first), and the device tree lists them in that
// order, which is the order Linux probes them: the first disk is /dev/vda.
export const VIRTIO = { base: 0x1000_1000n, stride: 0x1000n, slots: 8, irq: 1 } as const;

export function virtioSlot(i: number): { base: bigint; irq: number } {
  if (!Number.isInteger(i) || i < 0 || i >= VIRTIO.slots) throw new RangeError(`virtio slot ${i} outside 0..${VIRTIO.slots - 1}`);
  return { base: VIRTIO.base + BigInt(i) * VIRTIO.stride, irq: VIRTIO.irq + i };
}

// The PLIC's register window grows with the number of harts (two contexts each).
export function plicSize(harts: number): bigint {
  return plicWindowSize(harts);
}

// The device tree a guest with `harts` harts and `memBytes` of RAM is given.
export function boardTree(opts: { harts: number; memBytes: number; bootargs: string; initrd?: { start: bigint; end: bigint }; virtioDevices?: number }): DeviceTreeConfig {
  return {
    memBase: RAM_BASE,
    memSize: BigInt(opts.memBytes),
    harts: opts.harts,
    mmuType: MMU_TYPE,
    timebaseFrequency: TIMEBASE_HZ,
    bootargs: opts.bootargs,
    initrd: opts.initrd,
    uart: { base: UART.base, irq: UART.irq },
    rtc: { base: RTC.base, irq: RTC.irq },
    plic: { base: PLIC.base, ndev: PLIC.ndev },
    virtio: Array.from({ length: opts.virtioDevices ?? 0 }, (_, i) => virtioSlot(i)),
  };
}
