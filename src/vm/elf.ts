// ELF64 reader for RISC-V images (System V gABI; RISC-V psABI for e_machine and flags): enough to
// place PT_LOAD segments in guest RAM and to find symbols such as HTIF's tohost.
import { ImageError } from "../errors.js";
import { contains, type GuestMemory } from "../vmm/guest-memory.js";

const EM_RISCV = 243;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;

export interface ElfSegment {
  paddr: bigint;
  fileOffset: number;
  fileSize: number;
  memSize: number;
}

export interface ElfImage {
  entry: bigint;
  segments: ElfSegment[];
  symbols: Map<string, bigint>;
  data: Uint8Array;
}

export function isElf(data: Uint8Array): boolean {
  return data.length >= 4 && data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46;
}

export function parseElf(data: Uint8Array, name = "image"): ElfImage {
  if (!isElf(data)) throw new ImageError(`${name} is not an ELF file (no \\x7fELF magic)`);
  if (data.length < 64) throw new ImageError(`${name} is truncated: ${data.length} bytes is shorter than an ELF64 header`);
  if (data[4] !== 2) throw new ImageError(`${name} is a 32-bit ELF; Ringvisor runs RV64 (ELFCLASS64) images`);
  if (data[5] !== 1) throw new ImageError(`${name} is big-endian; RISC-V images are little-endian`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_RISCV) throw new ImageError(`${name} is an ELF for machine ${machine}, not RISC-V (${EM_RISCV})`);
  const entry = dv.getBigUint64(24, true);
  const phoff = Number(dv.getBigUint64(32, true));
  const shoff = Number(dv.getBigUint64(40, true));
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  const shentsize = dv.getUint16(58, true);
  const shnum = dv.getUint16(60, true);
  if (phnum > 0 && (phentsize < 56 || phoff + phnum * phentsize > data.length)) {
    throw new ImageError(`${name} is truncated or corrupt: program headers lie outside the file`);
  }

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (dv.getUint32(o, true) !== PT_LOAD) continue;
    const fileOffset = Number(dv.getBigUint64(o + 8, true));
    const paddr = dv.getBigUint64(o + 24, true);
    const fileSize = Number(dv.getBigUint64(o + 32, true));
    const memSize = Number(dv.getBigUint64(o + 40, true));
    if (fileOffset + fileSize > data.length) {
      throw new ImageError(`${name} is truncated: segment ${i} needs bytes up to ${fileOffset + fileSize}, file has ${data.length}`);
    }
    if (memSize < fileSize) throw new ImageError(`${name} is corrupt: segment ${i} has memsz < filesz`);
    segments.push({ paddr, fileOffset, fileSize, memSize });
  }
  if (segments.length === 0) throw new ImageError(`${name} has no loadable (PT_LOAD) segments`);

  const symbols = new Map<string, bigint>();
  if (shoff > 0 && shentsize >= 64 && shoff + shnum * shentsize <= data.length) {
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * shentsize;
      if (dv.getUint32(o + 4, true) !== SHT_SYMTAB) continue;
      const symOff = Number(dv.getBigUint64(o + 24, true));
      const symSize = Number(dv.getBigUint64(o + 32, true));
      const link = dv.getUint32(o + 40, true);
      const strHdr = shoff + link * shentsize;
      if (link >= shnum) continue;
      const strOff = Number(dv.getBigUint64(strHdr + 24, true));
      const strSize = Number(dv.getBigUint64(strHdr + 32, true));
      if (symOff + symSize > data.length || strOff + strSize > data.length) continue;
      for (let s = symOff; s + 24 <= symOff + symSize; s += 24) {
        const nameOff = dv.getUint32(s, true);
        if (nameOff === 0 || nameOff >= strSize) continue;
        let end = strOff + nameOff;
        while (end < strOff + strSize && data[end] !== 0) end++;
        const sym = new TextDecoder().decode(data.subarray(strOff + nameOff, end));
        symbols.set(sym, dv.getBigUint64(s + 8, true));
      }
    }
  }
  return { entry, segments, symbols, data };
}

// Copy the segments into guest RAM, zeroing what the file leaves out (bss).
export function loadElf(img: ElfImage, mem: GuestMemory, name = "image"): void {
  for (const seg of img.segments) {
    if (!contains(mem, seg.paddr, seg.memSize)) {
      throw new ImageError(
        `${name}: segment at 0x${seg.paddr.toString(16)} (${seg.memSize} bytes) does not fit in RAM ` +
        `0x${mem.base.toString(16)}..0x${(mem.base + BigInt(mem.bytes)).toString(16)}`,
      );
    }
    mem.write(seg.paddr, img.data.subarray(seg.fileOffset, seg.fileOffset + seg.fileSize));
    mem.fill(seg.paddr + BigInt(seg.fileSize), seg.memSize - seg.fileSize, 0);
  }
}
