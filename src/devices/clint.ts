// Core-local interruptor (SiFive CLINT layout, as on QEMU's virt and spike boards): msip at +0,
// mtimecmp at +0x4000, mtime at +0xBFF8. One hart for now. Time is supplied by the owner.
import type { MmioDevice } from "./bus.js";

export const CLINT_BASE = 0x0200_0000n;
export const CLINT_SIZE = 0x1_0000n;

export class Clint implements MmioDevice {
  readonly name = "clint";
  msip = 0;
  mtimecmp = 0xffff_ffff_ffff_ffffn;

  constructor(private readonly now: () => bigint, private readonly setTime: (t: bigint) => void) {}

  read(off: number, size: number): bigint {
    if (off === 0) return BigInt(this.msip);
    if (off >= 0x4000 && off < 0x4008) return slice(this.mtimecmp, off - 0x4000, size);
    if (off >= 0xbff8 && off < 0xc000) return slice(this.now(), off - 0xbff8, size);
    return 0n;
  }

  write(off: number, size: number, value: bigint): void {
    if (off === 0) this.msip = Number(value & 1n);
    else if (off >= 0x4000 && off < 0x4008) this.mtimecmp = merge(this.mtimecmp, off - 0x4000, size, value);
    else if (off >= 0xbff8 && off < 0xc000) this.setTime(merge(this.now(), off - 0xbff8, size, value));
  }
}

function slice(v: bigint, byte: number, size: number): bigint {
  return (v >> BigInt(8 * byte)) & ((1n << BigInt(8 * size)) - 1n);
}

function merge(old: bigint, byte: number, size: number, value: bigint): bigint {
  const sh = BigInt(8 * byte);
  const mask = ((1n << BigInt(8 * size)) - 1n) << sh;
  return BigInt.asUintN(64, (old & ~mask) | ((value << sh) & mask));
}
