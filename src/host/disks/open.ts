// Opening the disks a VM is given: the image format is read from the file itself (a qcow2 image
// starts with its magic), never guessed from the name.
import { openSync, readSync, closeSync } from "node:fs";
import { UserError } from "../../errors.js";
import type { BlockBackend } from "../../devices/virtio/blk.js";
import { RawImage } from "./raw.js";

export interface DiskSpec {
  path: string;
  readOnly?: boolean;
}

// `--disk FILE[,ro]`: the flag's value as a DiskSpec.
export function parseDiskArg(v: string): DiskSpec {
  const parts = v.split(",");
  const opts = new Set(parts.length > 1 ? parts.splice(1) : []);
  const path = parts[0]!;
  if (path === "") throw new UserError("--disk needs an image file (--disk FILE or --disk FILE,ro)");
  const readOnly = opts.delete("ro") || opts.delete("readonly");
  if (opts.size > 0) throw new UserError(`--disk ${v}: unknown option${opts.size > 1 ? "s" : ""} ${[...opts].join(", ")} (the only option is ro)`);
  return { path, readOnly };
}

const QCOW_MAGIC = 0x514649fb; // "QFI\xfb"

export function imageFormat(path: string): "raw" | "qcow2" {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`disk image ${path}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message}`);
  }
  try {
    const b = Buffer.alloc(4);
    const n = readSync(fd, b, 0, 4, 0);
    return n === 4 && b.readUInt32BE(0) === QCOW_MAGIC ? "qcow2" : "raw";
  } finally {
    closeSync(fd);
  }
}

export async function openDisk(d: DiskSpec): Promise<BlockBackend> {
  const format = imageFormat(d.path);
  if (format === "qcow2") throw new UserError(`disk image ${d.path} is qcow2, which this version cannot open yet; convert it with: qemu-img convert -O raw ${d.path} ${d.path.replace(/\.qcow2$/, "")}.raw`);
  return RawImage.open(d.path, d.readOnly ?? false);
}

// Opens every disk or none: on a failure the ones already open are closed (and unlocked).
export async function openDisks(specs: DiskSpec[]): Promise<BlockBackend[]> {
  const open: BlockBackend[] = [];
  try {
    for (const s of specs) open.push(await openDisk(s));
    return open;
  } catch (e) {
    await Promise.allSettled(open.map((b) => b.close()));
    throw e;
  }
}
