// The RISC-V Linux boot image header (Documentation/arch/riscv/boot-image-header.rst): 64 bytes
// at the start of a flat `Image`. With an EFI stub, code0 begins with "MZ" and res3 holds the
// offset of the PE header, so one file is both a bootable Image and an EFI application.
import { gunzipSync } from "node:zlib";
import { ImageError } from "../../errors.js";

export interface RiscvImageHeader {
  textOffset: bigint;
  imageSize: bigint;
  flags: bigint;
  version: { major: number; minor: number };
  efiStub: boolean;
}

const MAGIC2 = 0x05435352; // "RSC\x05"

export function parseImageHeader(data: Uint8Array, what = "kernel"): RiscvImageHeader {
  if (data.length < 64) throw new ImageError(`${what} is too short (${data.length} bytes) for a RISC-V Image header`);
  const dv = new DataView(data.buffer, data.byteOffset, 64);
  if (dv.getUint32(56, true) !== MAGIC2) throw new ImageError(`${what} is not a RISC-V Linux Image (no "RSC\\x05" magic at offset 56)`);
  const version = dv.getUint32(32, true);
  return {
    textOffset: dv.getBigUint64(8, true),
    imageSize: dv.getBigUint64(16, true),
    flags: dv.getBigUint64(24, true),
    version: { major: version >>> 16, minor: version & 0xffff },
    efiStub: data[0] === 0x4d && data[1] === 0x5a,
  };
}

// Debian's riscv64 kernel package ships the plain Image (named vmlinux-<version>); a gzip'd
// Image (vmlinuz, Image.gz) is unpacked so the loader always gets the flat form.
export function flatKernelImage(data: Uint8Array, what = "kernel"): { image: Buffer; header: RiscvImageHeader; wasGzip: boolean } {
  const wasGzip = data[0] === 0x1f && data[1] === 0x8b;
  let image: Buffer;
  try {
    image = wasGzip ? gunzipSync(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  } catch (e) {
    throw new ImageError(`${what} is a corrupt gzip file: ${(e as Error).message}`);
  }
  const header = parseImageHeader(image, what);
  if (!header.efiStub) throw new ImageError(`${what} has no "MZ" EFI stub magic at offset 0`);
  return { image, header, wasGzip };
}
