// The image cache: $RINGVISOR_CACHE, else $XDG_CACHE_HOME/ringvisor, else ~/.cache/ringvisor.
//   debs/<sha256>.deb                 packages as downloaded, named by their index checksum
//   index/<mirror>/<suite>/           Release (the text its signature covers), Packages.xz, state.json
//   guests/<name>/manifest.json       what was built from what (written last)
//   guests/<name>/Image-<kver>        the flat kernel Image
//   guests/<name>/initramfs-<kver>.cpio.gz
// Every file is written to a temporary name and renamed, so a reader never sees half a file;
// a lock directory keeps two pulls from doing the same work at once.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../errors.js";

export interface DebRecord {
  package: string;
  version: string;
  filename: string;
  size: number;
  sha256: string;
}

export interface FileRecord {
  // Relative to the guest's directory.
  file: string;
  size: number;
  sha256: string;
}

export interface GuestManifest {
  format: 1;
  name: string;
  suite: string;
  arch: string;
  mirror: string;
  releaseSignature: string;
  createdAt: string;
  // initramfsRecipe() of the builder that made initrd.
  recipe: string;
  kernel: FileRecord & { version: string; textOffset: string; imageSize: string; gzipInPackage: boolean };
  initrd: FileRecord & { modules: string[]; builtin: string[] };
  // The root disk (an ext4 image of the initramfs's tree; raw, sparse).
  rootfs?: FileRecord;
  busybox: { version: string };
  debs: { kernel: DebRecord; busybox: DebRecord };
}

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RINGVISOR_CACHE) return env.RINGVISOR_CACHE;
  const base = env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "ringvisor");
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

// True if the file exists with exactly this size and checksum.
export async function verifyFile(path: string, size: number, sha256: string): Promise<boolean> {
  try {
    if ((await stat(path)).size !== size) return false;
    return (await sha256File(path)) === sha256;
  } catch {
    return false;
  }
}

export async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export class ImageCache {
  constructor(readonly root: string = cacheRoot()) {}

  debPath(sha256: string): string {
    return join(this.root, "debs", `${sha256}.deb`);
  }

  indexDir(mirror: string, suite: string): string {
    const key = mirror.replace(/^https?:\/\//, "").replace(/[^A-Za-z0-9.-]+/g, "_");
    return join(this.root, "index", key, suite);
  }

  guestDir(name: string): string {
    return join(this.root, "guests", name);
  }

  async prepare(): Promise<void> {
    for (const d of ["debs", "index", "guests"]) await mkdir(join(this.root, d), { recursive: true });
  }

  async readManifest(name: string): Promise<GuestManifest | undefined> {
    try {
      const m = JSON.parse(await readFile(join(this.guestDir(name), "manifest.json"), "utf8")) as GuestManifest;
      // guests/ also holds root disks (a manifest of another shape): a guest is a kernel to boot.
      return m.format === 1 && typeof m.kernel?.file === "string" && typeof m.initrd?.file === "string" ? m : undefined;
    } catch {
      return undefined;
    }
  }

  async writeManifest(m: GuestManifest): Promise<void> {
    await mkdir(this.guestDir(m.name), { recursive: true });
    await writeAtomic(join(this.guestDir(m.name), "manifest.json"), `${JSON.stringify(m, null, 2)}\n`);
  }

  async guests(): Promise<GuestManifest[]> {
    const names = await readdir(join(this.root, "guests")).catch(() => [] as string[]);
    const out: GuestManifest[] = [];
    for (const n of names.sort()) {
      const m = await this.readManifest(n);
      if (m) out.push(m);
    }
    return out;
  }

  async debs(): Promise<Array<{ sha256: string; size: number; path: string }>> {
    const dir = join(this.root, "debs");
    const names = await readdir(dir).catch(() => [] as string[]);
    const out = [];
    for (const n of names.sort()) {
      const m = /^([0-9a-f]{64})\.deb$/.exec(n);
      if (m) out.push({ sha256: m[1], size: (await stat(join(dir, n))).size, path: join(dir, n) });
    }
    return out;
  }

  // Removes what `dir` holds beyond `keep`: older kernels, superseded debs, temporaries left by
  // dead processes (those of a live process are its work in progress).
  async prune(dir: string, keep: Set<string>): Promise<void> {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names) {
      if (keep.has(n)) continue;
      const pid = /\.(?:tmp|part)-(\d+)$/.exec(n)?.[1];
      if (pid !== undefined && isAlive(Number(pid))) continue;
      await rm(join(dir, n), { force: true, recursive: true });
    }
  }

  // Runs fn while holding the cache's lock; a lock left by a dead process is taken over.
  async withLock<T>(fn: () => Promise<T>, onWait?: (pid: number) => void, timeoutMs = 15 * 60_000): Promise<T> {
    await mkdir(this.root, { recursive: true });
    const lock = join(this.root, "lock");
    const t0 = Date.now();
    let told = false;
    for (;;) {
      try {
        await mkdir(lock);
        await writeFile(join(lock, "pid"), String(process.pid));
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const pid = Number(await readFile(join(lock, "pid"), "utf8").catch(() => "0"));
      if (pid > 0 && !isAlive(pid)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (pid > 0 && !told) {
        onWait?.(pid);
        told = true;
      }
      if (Date.now() - t0 > timeoutMs) throw new UserError(`the image cache ${this.root} is locked by process ${pid}; remove ${lock} if that process is gone`);
      await new Promise((r) => setTimeout(r, 250));
    }
    try {
      return await fn();
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
