// Opening the disks a VM is given, and the user's disk store. The image format is read from the
// file itself (a qcow2 image starts with its magic), never guessed from the name; a backing file
// is opened with the format its overlay names, when it names one.
//
// Disks a user creates by name live in the disk store: $RINGVISOR_DISKS, else
// $XDG_DATA_HOME/ringvisor/disks (~/.local/share/ringvisor/disks), one NAME.qcow2 each. Anything
// with a '/' or an extension in it is a path instead.
import { openSync, readSync, closeSync, existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../errors.js";
import type { BlockBackend } from "../../devices/virtio/blk.js";
import { RawImage } from "./raw.js";
import { Qcow2Image, QCOW2_MAGIC } from "./qcow2.js";

export interface DiskSpec {
  path: string;
  readOnly?: boolean;
}

export function diskStore(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RINGVISOR_DISKS) return env.RINGVISOR_DISKS;
  return join(env.XDG_DATA_HOME || join(homedir(), ".local", "share"), "ringvisor", "disks");
}

export const DISK_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

// A disk the user named: a name in the store (my-disk, also my-disk.qcow2) or a path.
export function resolveDisk(nameOrPath: string, env: NodeJS.ProcessEnv = process.env): string {
  if (nameOrPath.includes("/")) return nameOrPath;
  const inStore = join(diskStore(env), nameOrPath.endsWith(".qcow2") ? nameOrPath : `${nameOrPath}.qcow2`);
  if (existsSync(inStore) || !existsSync(nameOrPath)) return inStore;
  return nameOrPath;
}

// `--disk NAME|FILE[,ro]`: the flag's value as a DiskSpec.
export function parseDiskArg(v: string): DiskSpec {
  const parts = v.split(",");
  const opts = new Set(parts.length > 1 ? parts.splice(1) : []);
  const path = parts[0]!;
  if (path === "") throw new UserError("--disk needs a disk name or an image file (--disk NAME, --disk FILE or --disk FILE,ro)");
  const readOnly = opts.delete("ro") || opts.delete("readonly");
  if (opts.size > 0) throw new UserError(`--disk ${v}: unknown option${opts.size > 1 ? "s" : ""} ${[...opts].join(", ")} (the only option is ro)`);
  return { path: resolveDisk(path), readOnly };
}

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
    return n === 4 && b.readUInt32BE(0) === QCOW2_MAGIC ? "qcow2" : "raw";
  } finally {
    closeSync(fd);
  }
}

export async function openImage(path: string, readOnly: boolean, format?: string): Promise<BlockBackend> {
  const f = format ?? imageFormat(path);
  if (f === "qcow2") return Qcow2Image.open(path, readOnly, (p, fmt) => openImage(p, true, fmt));
  if (f === "raw") return RawImage.open(path, readOnly);
  throw new UserError(`disk image ${path}: format ${f} is not supported (raw or qcow2)`);
}

export async function openDisk(d: DiskSpec): Promise<BlockBackend> {
  return openImage(d.path, d.readOnly ?? false);
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
