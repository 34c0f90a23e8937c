// The default guest's root disk: the initramfs's tree (busybox, the driver modules, the same
// /init) as an ext4 filesystem image, made by e2fsprogs' mke2fs -d without any privileges (no
// mount, no loop device). Booted with root=/dev/vda, the initramfs loads the drivers and hands
// over to the disk (src/host/images/initramfs.ts); what the guest writes then stays on the disk.
// VMs should get copy-on-write overlays of it (ringvisor disk create NAME --backing ROOTFS), so
// the cached image stays as built.
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, rm, symlink, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type { CpioEntry } from "./cpio.js";
import { ImageError } from "../../errors.js";

const run = promisify(execFile);
export const ROOTFS_MIB = 256;

export async function buildRootfs(entries: CpioEntry[], out: string, sizeMiB = ROOTFS_MIB): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "ringvisor-rootfs-"));
  try {
    for (const e of entries) {
      const p = join(dir, e.path);
      await mkdir(dirname(p), { recursive: true });
      if (e.type === "dir") await mkdir(p, { recursive: true });
      else if (e.type === "file") await writeFile(p, e.data ?? new Uint8Array(0));
      else if (e.type === "symlink") await symlink(e.target!, p);
      else continue; // device nodes: devtmpfs provides them, and making one needs privileges
      if (e.type !== "symlink") await chmod(p, e.perm);
    }
    await rm(out, { force: true });
    try {
      await run("mke2fs", ["-q", "-F", "-t", "ext4", "-L", "ringvisor-root", "-E", "root_owner=0:0", "-d", dir, out, `${sizeMiB}M`]);
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: string };
      if (err.code === "ENOENT") throw new ImageError("mke2fs is not installed (Debian package e2fsprogs): it builds the default guest's root disk");
      throw new ImageError(`mke2fs could not build the root disk: ${(err.stderr ?? err.message).trim()}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
