// Placing a Linux kernel, its initrd and the device tree in guest RAM, per the RISC-V Linux boot
// protocol (Documentation/arch/riscv/boot-image-header.rst and boot.rst). The kernel is either a
// flat `Image` (Debian's vmlinuz: an Image whose first bytes are an EFI stub's "MZ") or an ELF.
import { ImageError } from "../errors.js";
import { isElf, loadElf, parseElf } from "./elf.js";
import { contains, type GuestMemory } from "../vmm/guest-memory.js";

const MiB = 1n << 20n;
// boot.rst "Kernel location": RV64 kernels sit on a PMD (2 MiB) boundary.
const KERNEL_ALIGN = 2n * MiB;
// The initrd starts on the next 2 MiB boundary after the kernel's image_size (which covers bss),
// keeping it out of the large pages the kernel maps itself with.
const INITRD_ALIGN = 2n * MiB;
const DTB_ALIGN = 8n;
// Linux maps the early device tree through a fixmap window sized for MAX_FDT_SIZE (one PMD).
const DTB_MAX = 2 * 1024 * 1024;
const HEADER_SIZE = 64;
// Sanity bounds on header fields: Debian's kernel is ~40 MiB with bss.
const IMAGE_SIZE_MIN = 4096n;
const IMAGE_SIZE_MAX = 1024n * MiB;
const TEXT_OFFSET_MAX = 1024n * MiB;

const MAGIC = "RISCV\0\0\0"; // at 48, deprecated since header version 0.2
const MAGIC2 = "RSC\x05"; // at 56

export interface ImageHeader {
  textOffset: bigint;
  imageSize: bigint;
  flags: bigint;
  versionMajor: number;
  versionMinor: number;
  // The Image starts with "MZ": it doubles as a PE/COFF EFI application.
  efiStub: boolean;
}

export interface BootInput {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  dtbSize: number;
  memBase: bigint;
  memSize: bigint;
}

export interface BootPlan {
  format: "image" | "elf";
  kernelAddr: bigint;
  entry: bigint;
  // End of the kernel's memory footprint (image_size, or the highest ELF segment end).
  kernelEnd: bigint;
  initrdStart?: bigint;
  initrdEnd?: bigint;
  dtbAddr: bigint;
  // Copy the kernel (zeroing the rest of its footprint) and the initrd into guest RAM, given as a
  // byte view starting at memBase. The device tree is the caller's to write at dtbAddr, once it
  // has been built with the initrd range.
  load(mem: GuestMemory): void;
}

// The RISC-V Image header, or undefined if the bytes carry neither magic.
export function parseImageHeader(kernel: Uint8Array): ImageHeader | undefined {
  if (kernel.length < HEADER_SIZE) return undefined;
  if (ascii(kernel, 56, 4) !== MAGIC2 && ascii(kernel, 48, 8) !== MAGIC) return undefined;
  const dv = new DataView(kernel.buffer, kernel.byteOffset, kernel.byteLength);
  const version = dv.getUint32(32, true);
  return {
    textOffset: dv.getBigUint64(8, true),
    imageSize: dv.getBigUint64(16, true),
    flags: dv.getBigUint64(24, true),
    versionMajor: version >>> 16,
    versionMinor: version & 0xffff,
    efiStub: kernel[0] === 0x4d && kernel[1] === 0x5a,
  };
}

export function planBoot(input: BootInput): BootPlan {
  const { kernel, initrd, dtbSize, memBase, memSize } = input;
  if (!Number.isInteger(dtbSize) || dtbSize <= 0) throw new RangeError(`dtbSize must be positive, got ${dtbSize}`);
  if (dtbSize > DTB_MAX) {
    throw new ImageError(`the device tree is ${dtbSize} bytes; Linux accepts at most ${DTB_MAX} (2 MiB)`);
  }
  if (initrd && initrd.length === 0) throw new ImageError("the initrd is empty (0 bytes): pass a cpio archive or no initrd");
  const memEnd = memBase + memSize;

  const k = isElf(kernel) ? placeElf(kernel, memBase, memEnd) : placeImage(kernel, memBase);
  let low = k.kernelEnd;
  let initrdStart: bigint | undefined;
  let initrdEnd: bigint | undefined;
  if (initrd) {
    initrdStart = alignUp(k.kernelEnd, INITRD_ALIGN);
    initrdEnd = initrdStart + BigInt(initrd.length);
    low = initrdEnd;
  }
  const dtbAddr = alignDown(memEnd - BigInt(dtbSize), DTB_ALIGN);
  if (dtbAddr < low || k.kernelEnd > memEnd) {
    const need = alignUp(low, DTB_ALIGN) + BigInt(dtbSize) - memBase;
    const parts = [`the kernel (${mib(k.kernelEnd - k.kernelAddr)} with bss, at +${mib(k.kernelAddr - memBase)})`];
    if (initrd) parts.push(`the initrd (${mib(BigInt(initrd.length))})`);
    parts.push(`the device tree (${dtbSize} bytes)`);
    throw new ImageError(
      `${parts.join(", ")} need ${Math.ceil(Number(need) / 2 ** 20)} MiB of RAM but the VM has ${mib(memSize)}; ` +
      `give it more memory (Linux itself wants at least another 64 MiB to run)`,
    );
  }
  return { ...k, initrdStart, initrdEnd, dtbAddr, load: (mem) => loadInto(mem, input, k, initrdStart) };
}

type KernelPlacement = Pick<BootPlan, "format" | "kernelAddr" | "entry" | "kernelEnd">;

function loadInto(mem: GuestMemory, input: BootInput, k: KernelPlacement, initrdStart: bigint | undefined): void {
  const { kernel, initrd } = input;
  const check = (addr: bigint, len: number, what: string): void => {
    if (!contains(mem, addr, len)) {
      throw new ImageError(`${what} (${len} bytes at 0x${addr.toString(16)}) does not fit in guest RAM`);
    }
  };
  if (k.format === "elf") {
    loadElf(parseElf(kernel, "the kernel"), mem, "the kernel");
  } else {
    const size = Number(k.kernelEnd - k.kernelAddr);
    check(k.kernelAddr, size, "the kernel");
    mem.write(k.kernelAddr, kernel);
    // The kernel clears its own bss, but reused RAM should not show old contents there.
    mem.fill(k.kernelAddr + BigInt(kernel.length), size - kernel.length, 0);
  }
  if (initrd && initrdStart !== undefined) {
    check(initrdStart, initrd.length, "the initrd");
    mem.write(initrdStart, initrd);
  }
}

function placeImage(kernel: Uint8Array, memBase: bigint): KernelPlacement {
  const hdr = parseImageHeader(kernel);
  if (!hdr) throw new ImageError(`the kernel is ${describeUnknown(kernel)}`);
  // Flags bit 0 is the endianness (boot-image-header.rst); look at both byte orders of the field
  // since a big-endian kernel would store it big-endian.
  if ((kernel[24]! & 1) !== 0 || (kernel[31]! & 1) !== 0) {
    throw new ImageError("the kernel is a big-endian RISC-V Image; Ringvisor's harts are little-endian: build the kernel little-endian");
  }
  if (hdr.imageSize === 0n) {
    throw new ImageError(
      "the kernel's Image header has image_size 0, so the memory it needs (including bss) is unknown; " +
      "use a kernel from Linux 4.20 or later, or its vmlinux ELF",
    );
  }
  if (hdr.imageSize < IMAGE_SIZE_MIN || hdr.imageSize > IMAGE_SIZE_MAX) {
    throw new ImageError(
      `the kernel's Image header claims image_size ${hdr.imageSize} bytes, which no kernel has; the file is corrupt or not a Linux Image`,
    );
  }
  if (hdr.textOffset > TEXT_OFFSET_MAX) {
    throw new ImageError(`the kernel's Image header claims text_offset 0x${hdr.textOffset.toString(16)}; the file is corrupt`);
  }
  const kernelAddr = alignUp(memBase + hdr.textOffset, KERNEL_ALIGN);
  // A signed kernel may carry data past image_size; reserve whichever is larger.
  const size = hdr.imageSize > BigInt(kernel.length) ? hdr.imageSize : BigInt(kernel.length);
  return { format: "image", kernelAddr, entry: kernelAddr, kernelEnd: kernelAddr + size };
}

function placeElf(kernel: Uint8Array, memBase: bigint, memEnd: bigint): KernelPlacement {
  const elf = parseElf(kernel, "the kernel");
  let lo = elf.segments[0]!.paddr;
  let hi = lo;
  for (const s of elf.segments) {
    if (s.paddr < lo) lo = s.paddr;
    const end = s.paddr + BigInt(s.memSize);
    if (end > hi) hi = end;
  }
  if (lo < memBase || hi > memEnd || elf.entry < memBase || elf.entry >= memEnd) {
    throw new ImageError(
      `the kernel ELF loads at 0x${lo.toString(16)}..0x${hi.toString(16)} (entry 0x${elf.entry.toString(16)}), ` +
      `outside RAM 0x${memBase.toString(16)}..0x${memEnd.toString(16)}; a Linux vmlinux is linked at virtual ` +
      `addresses: pass the flat Image (arch/riscv/boot/Image, Debian's vmlinuz) instead`,
    );
  }
  return { format: "elf", kernelAddr: lo, entry: elf.entry, kernelEnd: hi };
}

// A sentence fragment naming what the bytes look like, with what to do about it.
export function describeUnknown(b: Uint8Array): string {
  const starts = (...sig: number[]): boolean => sig.every((x, i) => b[i] === x);
  const decompress = (fmt: string, cmd: string): string =>
    `${fmt}-compressed; decompress it first (e.g. \`${cmd} < vmlinuz > Image\`) and pass the result`;
  if (b.length === 0) return "empty (0 bytes)";
  if (starts(0x1f, 0x8b)) return decompress("gzip", "zcat");
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return decompress("xz", "xzcat");
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return decompress("zstd", "zstdcat");
  if (starts(0x42, 0x5a, 0x68)) return decompress("bzip2", "bzcat");
  if (starts(0x04, 0x22, 0x4d, 0x18)) return decompress("lz4", "lz4cat");
  if (starts(0x4d, 0x5a) && ascii(b, 4, 4) === "zimg") {
    const comp = cstring(b, 0x18, 32);
    return `an EFI zboot image (a compressed kernel${comp ? ` with a ${comp} payload` : ""}); ` +
      "Ringvisor needs the uncompressed Image (arch/riscv/boot/Image)";
  }
  if (b.length >= 0x206 && ascii(b, 0x202, 4) === "HdrS") return "an x86 Linux kernel (bzImage), not a RISC-V one";
  if (b.length >= HEADER_SIZE && ascii(b, 56, 4) === "ARM\x64") return "an arm64 Linux Image, not a RISC-V one";
  if (starts(0x4d, 0x5a) && b.length >= 0x40) {
    const pe = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0x3c, true);
    if (pe + 6 <= b.length && ascii(b, pe, 4) === "PE\0\0") {
      const machine = b[pe + 4]! | (b[pe + 5]! << 8);
      return `a PE/EFI executable for machine 0x${machine.toString(16)} without a RISC-V Linux Image header`;
    }
  }
  if (b.length < HEADER_SIZE) return `too short (${b.length} bytes) to be a RISC-V Linux Image or an ELF`;
  return 'neither a RISC-V Linux Image (no "RSC\\x05" magic at offset 56) nor an ELF file';
}

function ascii(b: Uint8Array, at: number, len: number): string {
  if (at + len > b.length) return "";
  return String.fromCharCode(...b.subarray(at, at + len));
}

function cstring(b: Uint8Array, at: number, max: number): string {
  let end = at;
  while (end < Math.min(b.length, at + max) && b[end] !== 0) end++;
  const s = ascii(b, at, end - at);
  return /^[ -~]*$/.test(s) ? s : "";
}

function alignUp(v: bigint, a: bigint): bigint {
  return ((v + a - 1n) / a) * a;
}

function alignDown(v: bigint, a: bigint): bigint {
  return (v / a) * a;
}

function mib(bytes: bigint): string {
  const m = Number(bytes) / 2 ** 20;
  return `${Number.isInteger(m) || m >= 10 ? m.toFixed(0) : m.toFixed(1)} MiB`;
}
