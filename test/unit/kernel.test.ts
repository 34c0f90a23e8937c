// Kernel recognition and boot placement (Documentation/arch/riscv/boot-image-header.rst, boot.rst)
// with synthetic images and every error a user can provoke (the real Debian kernel: test/system/pull.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { planBoot, parseImageHeader, describeUnknown } from "../../src/vm/kernel.js";
import { ImageError } from "../../src/errors.js";
import { ContiguousRam } from "../../src/vmm/guest-memory.js";
import { P2m } from "../../src/vmm/p2m.js";
import { MachineMemory } from "../../src/machine/memory.js";

const MiB = 1n << 20n;
const RAM = 0x8000_0000n;

function image(o: { textOffset?: bigint; imageSize?: bigint; flags?: bigint; len?: number; efi?: boolean; magic?: "both" | "magic2" | "magic" } = {}): Uint8Array {
  const b = new Uint8Array(o.len ?? 8192);
  const dv = new DataView(b.buffer);
  if (o.efi ?? true) b.set([0x4d, 0x5a]); // "MZ", as Debian's EFI-stub Image begins
  dv.setBigUint64(8, o.textOffset ?? 0x20_0000n, true);
  dv.setBigUint64(16, o.imageSize ?? 0x140_0000n, true);
  dv.setBigUint64(24, o.flags ?? 0n, true);
  dv.setUint32(32, 2, true); // version 0.2
  const magic = o.magic ?? "both";
  if (magic !== "magic2") b.set(new TextEncoder().encode("RISCV\0\0\0"), 48);
  if (magic !== "magic") b.set([0x52, 0x53, 0x43, 0x05], 56);
  b.fill(0xaa, 64);
  return b;
}

// A minimal RISC-V ELF64 with one PT_LOAD segment.
function elf(paddr: bigint, entry: bigint, machine = 243): Uint8Array {
  const b = new Uint8Array(0x200);
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, 2, true);
  dv.setUint16(18, machine, true);
  dv.setBigUint64(24, entry, true);
  dv.setBigUint64(32, 64n, true); // phoff
  dv.setUint16(54, 56, true);
  dv.setUint16(56, 1, true);
  dv.setUint32(64, 1, true); // PT_LOAD
  dv.setBigUint64(64 + 8, 0x100n, true);
  dv.setBigUint64(64 + 16, paddr, true);
  dv.setBigUint64(64 + 24, paddr, true);
  dv.setBigUint64(64 + 32, 0x100n, true);
  dv.setBigUint64(64 + 40, 0x3000n, true);
  b.fill(0x13, 0x100);
  return b;
}

function expectImageError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ImageError, `expected ImageError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

const plan = (kernel: Uint8Array, extra: { initrd?: Uint8Array; memSize?: bigint; dtbSize?: number } = {}) =>
  planBoot({ kernel, initrd: extra.initrd, dtbSize: extra.dtbSize ?? 4096, memBase: RAM, memSize: extra.memSize ?? 256n * MiB });

test("the Image header is parsed per boot-image-header.rst", () => {
  const h = parseImageHeader(image())!;
  assert.equal(h.textOffset, 0x20_0000n);
  assert.equal(h.imageSize, 0x140_0000n);
  assert.equal(h.versionMajor, 0);
  assert.equal(h.versionMinor, 2);
  assert.equal(h.efiStub, true);
  assert.ok(parseImageHeader(image({ magic: "magic" })), "the deprecated magic alone is enough");
  assert.ok(parseImageHeader(image({ magic: "magic2" })));
  assert.equal(parseImageHeader(new Uint8Array(100)), undefined);
});

test("kernel at RAM + text_offset, initrd after image_size on 2 MiB, DTB at the top", () => {
  const initrd = new Uint8Array(3 * 1024 * 1024 + 5);
  const p = plan(image(), { initrd, dtbSize: 3000 });
  assert.equal(p.format, "image");
  assert.equal(p.kernelAddr, 0x8020_0000n);
  assert.equal(p.entry, 0x8020_0000n);
  assert.equal(p.kernelEnd, 0x8160_0000n, "image_size includes bss");
  assert.equal(p.initrdStart, 0x8160_0000n);
  assert.equal(p.initrdEnd, 0x8160_0000n + BigInt(initrd.length));
  assert.equal(p.dtbAddr % 8n, 0n);
  assert.ok(p.dtbAddr + 3000n <= RAM + 256n * MiB && p.dtbAddr > RAM + 256n * MiB - 3008n);
});

test("an unaligned load address is raised to the next 2 MiB boundary", () => {
  const p = plan(image({ textOffset: 0x1000n, imageSize: 0x30_0001n }));
  assert.equal(p.kernelAddr, 0x8020_0000n);
  assert.equal(p.kernelEnd, 0x8050_0001n);
  const q = plan(image({ textOffset: 0x1000n, imageSize: 0x30_0001n }), { initrd: new Uint8Array(10) });
  assert.equal(q.initrdStart, 0x8060_0000n);
});

test("load() copies kernel and initrd and zeroes the kernel's bss", () => {
  const kernel = image({ imageSize: 0x4000n, len: 0x2000 });
  const initrd = new Uint8Array(100).fill(7);
  const p = plan(kernel, { initrd, memSize: 8n * MiB });
  const ram = new Uint8Array(8 * 1024 * 1024).fill(0xee);
  p.load(new ContiguousRam(RAM, ram));
  const k = Number(p.kernelAddr - RAM);
  assert.deepEqual(ram.subarray(k, k + kernel.length), kernel);
  assert.ok(ram.subarray(k + kernel.length, k + 0x4000).every((x) => x === 0), "bss zeroed");
  assert.equal(ram[k + 0x4000], 0xee, "nothing past image_size touched");
  const i = Number(p.initrdStart! - RAM);
  assert.deepEqual(ram.subarray(i, i + 100), initrd);
});

test("an ELF kernel is placed by its segments", () => {
  const p = plan(elf(0x8020_0000n, 0x8020_0000n));
  assert.equal(p.format, "elf");
  assert.equal(p.kernelAddr, 0x8020_0000n);
  assert.equal(p.kernelEnd, 0x8020_3000n);
  assert.equal(p.entry, 0x8020_0000n);
  const ram = new Uint8Array(256 * 1024 * 1024);
  p.load(new ContiguousRam(RAM, ram));
  assert.equal(ram[0x20_0000], 0x13);
});

test("the same kernel and initrd load identically into scattered machine frames (p2m)", () => {
  const kernel = image({ imageSize: 0x6000n, len: 0x5000 });
  kernel.forEach((_, i) => { if (i >= 64) kernel[i] = (i * 13) & 0xff; });
  const initrd = new Uint8Array(20_000).map((_, i) => (i * 7 + 1) & 0xff);
  const p = plan(kernel, { initrd, memSize: 8n * MiB });
  const flat = new Uint8Array(8 * 1024 * 1024);
  p.load(new ContiguousRam(RAM, flat));
  const mem = new MachineMemory(32 << 20);
  const p2m = new P2m(mem.account("vm"), RAM, 8 << 20, 5);
  assert.ok(p2m.stats().contiguousRuns > 1000, "frames are scattered");
  p.load(p2m);
  for (const [addr, len] of [[p.kernelAddr, 0x6000], [p.initrdStart!, initrd.length]] as const) {
    const off = Number(addr - RAM);
    assert.deepEqual(p2m.read(addr, len), flat.subarray(off, off + len));
  }
});

test("a vmlinux linked at virtual addresses is refused with advice", () => {
  expectImageError(() => plan(elf(0xffff_ffff_8000_0000n, 0xffff_ffff_8000_0000n)), /outside RAM.*flat Image/);
});

test("compressed kernels are recognised and the fix is named", () => {
  expectImageError(() => plan(Uint8Array.of(0x1f, 0x8b, 8, 0, ...new Uint8Array(100))), /gzip-compressed; decompress it first.*zcat/);
  expectImageError(() => plan(Uint8Array.of(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, ...new Uint8Array(100))), /xz-compressed/);
  expectImageError(() => plan(Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, ...new Uint8Array(100))), /zstd-compressed/);
  const zboot = new Uint8Array(256);
  zboot.set(new TextEncoder().encode("MZ\0\0zimg")); // .long MZ_MAGIC, then the image type
  zboot.set(new TextEncoder().encode("gzip\0"), 0x18);
  expectImageError(() => plan(zboot), /EFI zboot image .*gzip payload.*uncompressed Image/);
});

test("kernels for other architectures are named as such", () => {
  const bz = new Uint8Array(1024);
  bz.set([0x4d, 0x5a]);
  bz.set(new TextEncoder().encode("HdrS"), 0x202);
  expectImageError(() => plan(bz), /x86 Linux kernel \(bzImage\)/);
  const arm = new Uint8Array(1024);
  arm.set(new TextEncoder().encode("ARM\x64"), 56);
  expectImageError(() => plan(arm), /arm64 Linux Image/);
  expectImageError(() => plan(elf(0x8020_0000n, 0x8020_0000n, 62)), /not RISC-V/);
});

test("random bytes, short and empty files are refused", () => {
  const rnd = new Uint8Array(4096);
  for (let i = 0; i < rnd.length; i++) rnd[i] = (i * 2654435761) >>> 24;
  expectImageError(() => plan(rnd), /neither a RISC-V Linux Image .* nor an ELF/);
  expectImageError(() => plan(new Uint8Array(10)), /too short/);
  expectImageError(() => plan(new Uint8Array(0)), /empty/);
});

test("a big-endian Image is refused", () => {
  expectImageError(() => plan(image({ flags: 1n })), /big-endian/);
});

test("image_size 0 or absurd is refused", () => {
  expectImageError(() => plan(image({ imageSize: 0n })), /image_size 0/);
  expectImageError(() => plan(image({ imageSize: 8n << 30n })), /image_size .* corrupt/);
  expectImageError(() => plan(image({ textOffset: 1n << 40n })), /text_offset/);
});

test("too little memory says how much is needed", () => {
  const initrd = new Uint8Array(40 * 1024 * 1024);
  expectImageError(() => plan(image(), { initrd, memSize: 32n * MiB }), /need 63 MiB of RAM but the VM has 32 MiB/);
  expectImageError(() => plan(image({ imageSize: 64n * MiB }), { memSize: 32n * MiB }), /need \d+ MiB of RAM but the VM has 32 MiB/);
  // Just enough: kernel at +2 MiB, 20 MiB image, then the DTB.
  assert.ok(plan(image(), { memSize: 23n * MiB }));
});

test("other bad inputs", () => {
  expectImageError(() => plan(image(), { initrd: new Uint8Array(0) }), /initrd is empty/);
  expectImageError(() => plan(image(), { dtbSize: 3 << 20 }), /at most/);
  assert.match(describeUnknown(Uint8Array.of(0x42, 0x5a, 0x68, 0x39)), /bzip2/);
});
