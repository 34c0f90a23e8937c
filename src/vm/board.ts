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

// The PLIC's register window grows with the number of harts (two contexts each).
export function plicSize(harts: number): bigint {
  return plicWindowSize(harts);
}

// The device tree a guest with `harts` harts and `memBytes` of RAM is given.
export function boardTree(opts: { harts: number; memBytes: number; bootargs: string; initrd?: { start: bigint; end: bigint } }): DeviceTreeConfig {
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
    virtio: [],
  };
}
