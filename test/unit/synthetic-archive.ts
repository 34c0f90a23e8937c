// Synthetic pieces of a Debian archive for the offline tests, laid out as Debian's tools lay
// them out: ar archives and tar members, .deb packages, kernel modules (ELF with .modinfo), a
// RISC-V kernel Image, and Packages stanzas that point at the packages.
import { createHash } from "node:crypto";
import { xz } from "@napi-rs/lzma";
import tar from "tar-stream";

export const sha256 = (b: Uint8Array | string): string => createHash("sha256").update(b).digest("hex");

export function arArchive(members: Array<[string, Uint8Array]>): Buffer {
  const parts: Buffer[] = [Buffer.from("!<arch>\n")];
  for (const [name, data] of members) {
    const field = (s: string | number, n: number): string => String(s).padEnd(n, " ");
    parts.push(Buffer.from(field(name, 16) + field(0, 12) + field(0, 6) + field(0, 6) + field("100644", 8) + field(data.length, 10) + "`\n", "latin1"));
    parts.push(Buffer.from(data));
    if (data.length % 2) parts.push(Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

export async function tarOf(files: Array<[string, Uint8Array]>): Promise<Buffer> {
  const pack = tar.pack();
  // A fixed mtime: the same files make the same bytes, as a republished package does.
  for (const [name, data] of files) pack.entry({ name: `./${name}`, mode: 0o644, mtime: new Date(0) }, Buffer.from(data));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

// A relocatable ELF64 with just .shstrtab and .modinfo, like a .ko as far as modinfo() cares.
export function fakeKo(info: string[]): Buffer {
  const names = Buffer.from("\0.shstrtab\0.modinfo\0");
  const body = Buffer.from(info.map((s) => `${s}\0`).join(""));
  const shoff = 64 + names.length + body.length;
  const buf = Buffer.alloc(shoff + 3 * 64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(buf);
  buf.writeUInt16LE(1, 16);
  buf.writeUInt16LE(243, 18);
  buf.writeBigUInt64LE(BigInt(shoff), 40);
  buf.writeUInt16LE(64, 58);
  buf.writeUInt16LE(3, 60);
  buf.writeUInt16LE(1, 62);
  names.copy(buf, 64);
  body.copy(buf, 64 + names.length);
  const sh = (i: number, name: number, type: number, off: number, size: number): void => {
    const o = shoff + i * 64;
    buf.writeUInt32LE(name, o);
    buf.writeUInt32LE(type, o + 4);
    buf.writeBigUInt64LE(BigInt(off), o + 24);
    buf.writeBigUInt64LE(BigInt(size), o + 32);
  };
  sh(1, 1, 3, 64, names.length);
  sh(2, 11, 1, 64 + names.length, body.length);
  return buf;
}

// A flat RISC-V Linux Image: the 64-byte header (EFI stub "MZ", text_offset, image_size,
// version 0.2, "RISCV" and "RSC\x05" magics), then `tag` so that two kernels differ.
export function riscvImage(tag: string, size = 4096): Buffer {
  const img = Buffer.alloc(size);
  img.write("MZ", 0, "latin1");
  img.writeBigUInt64LE(0x200000n, 8);
  img.writeBigUInt64LE(BigInt(size), 16);
  img.writeUInt32LE(0x00000002, 32);
  img.write("RISCV\0\0\0", 48, "latin1");
  img.write("RSC\x05", 56, "latin1");
  img.write(tag, 64, "latin1");
  return img;
}

export async function debPackage(control: string, files: Array<[string, Uint8Array]>): Promise<Buffer> {
  return arArchive([
    ["debian-binary", Buffer.from("2.0\n")],
    ["control.tar.xz", await xz.compress(await tarOf([["control", Buffer.from(control)]]))],
    ["data.tar.xz", await xz.compress(await tarOf(files))],
  ]);
}

export interface SyntheticPackage {
  name: string;
  version: string;
  depends?: string;
  // Relative to the mirror's root: pool/main/...
  filename: string;
  deb: Buffer;
}

// What Debian's riscv64 kernel package holds that the image builder reads: the Image as
// boot/vmlinux-<kver>, modules.builtin, and the virtio modules (.ko.xz, as trixie ships them)
// with their dependencies in .modinfo. virtio_console is built in, as in Debian's kernel.
export async function kernelPackages(kver: string, version: string): Promise<{ meta: SyntheticPackage; image: SyntheticPackage }> {
  const dir = `lib/modules/${kver}`;
  const ko = (name: string, depends: string): Buffer => fakeKo([`name=${name}`, `depends=${depends}`, `vermagic=${kver} SMP mod_unload riscv`]);
  const mods: Array<[string, string, string]> = [
    ["drivers/virtio/virtio_mmio", "virtio_mmio", "virtio,virtio_ring"],
    ["drivers/block/virtio_blk", "virtio_blk", "virtio,virtio_ring"],
    ["net/core/failover", "failover", ""],
    ["drivers/net/net_failover", "net_failover", "failover"],
    ["drivers/net/virtio_net", "virtio_net", "net_failover,virtio,virtio_ring"],
    ["drivers/virtio/virtio_balloon", "virtio_balloon", "virtio,virtio_ring"],
    ["drivers/char/hw_random/virtio-rng", "virtio_rng", "virtio,virtio_ring"],
    ["fs/jbd2/jbd2", "jbd2", ""],
    ["fs/mbcache", "mbcache", ""],
    ["lib/crc16", "crc16", ""],
    ["fs/ext4/ext4", "ext4", "mbcache,jbd2,crc16"],
    ["crypto/crc32c_generic", "crc32c_generic", ""],
    ["fs/netfs/netfs", "netfs", ""],
    ["net/9p/9pnet", "9pnet", ""],
    ["net/9p/9pnet_virtio", "9pnet_virtio", "9pnet,virtio,virtio_ring"],
    ["fs/9p/9p", "9p", "9pnet,netfs"],
    ["net/vmw_vsock/vsock", "vsock", ""],
    ["net/vmw_vsock/vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport_common", "vsock"],
    ["net/vmw_vsock/vmw_vsock_virtio_transport", "vmw_vsock_virtio_transport", "vmw_vsock_virtio_transport_common,virtio,virtio_ring,vsock"],
  ];
  const files: Array<[string, Uint8Array]> = [
    [`boot/vmlinux-${kver}`, riscvImage(kver)],
    [`${dir}/modules.builtin`, Buffer.from("kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/char/virtio_console.ko\n")],
  ];
  for (const [path, name, depends] of mods) files.push([`${dir}/kernel/${path}.ko.xz`, await xz.compress(ko(name, depends))]);
  const imageName = `linux-image-${kver}`;
  const image: SyntheticPackage = {
    name: imageName,
    version,
    depends: "kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool",
    filename: `pool/main/l/linux-signed-riscv64/${imageName}_${version}_riscv64.deb`,
    deb: await debPackage(`Package: ${imageName}\nVersion: ${version}\nArchitecture: riscv64\n`, files),
  };
  const meta: SyntheticPackage = {
    name: "linux-image-riscv64",
    version,
    depends: `${imageName} (= ${version})`,
    filename: `pool/main/l/linux-signed-riscv64/linux-image-riscv64_${version}_riscv64.deb`,
    deb: await debPackage(`Package: linux-image-riscv64\nVersion: ${version}\nArchitecture: riscv64\n`, [["usr/share/doc/linux-image-riscv64/README", Buffer.from("meta\n")]]),
  };
  return { meta, image };
}

export async function busyboxPackage(version: string): Promise<SyntheticPackage> {
  return {
    name: "busybox-static",
    version,
    filename: `pool/main/b/busybox/busybox-static_${version.replace(/^\d+:/, "")}_riscv64.deb`,
    deb: await debPackage(`Package: busybox-static\nVersion: ${version}\nArchitecture: riscv64\n`, [["bin/busybox", Buffer.from("\x7fELF not really busybox\n", "latin1")]]),
  };
}

// A Packages index (deb822 stanzas) for the given packages.
export function packagesIndex(pkgs: SyntheticPackage[]): string {
  return pkgs
    .map(
      (p) =>
        `Package: ${p.name}\nVersion: ${p.version}\nArchitecture: riscv64\n${p.depends ? `Depends: ${p.depends}\n` : ""}` +
        `Filename: ${p.filename}\nSize: ${p.deb.length}\nSHA256: ${sha256(p.deb)}\nDescription: synthetic ${p.name}\n`,
    )
    .join("\n");
}
