// A raw disk image: the file's bytes are the disk's, sector for sector. I/O is positional and
// asynchronous (libuv's thread pool), so the main thread never waits on the disk.
//
// A writable image is locked against a second user (another VM in this host or another
// Ringvisor process): two writers would corrupt it. The lock is a file beside the image, created
// exclusively and holding the owner's pid; one left by a process that no longer runs is taken over.
import { open, type FileHandle } from "node:fs/promises";
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import type { BlockBackend } from "../../devices/virtio/blk.js";
import { SECTOR } from "../../devices/virtio/blk.js";
import { UserError } from "../../errors.js";

// Images this process has open for writing, by absolute path.
const held = new Set<string>();

export function lockPath(image: string): string {
  return `${resolve(image)}.lock`;
}

// Takes the image's write lock, or says who holds it.
export function lockImage(image: string): () => void {
  const abs = resolve(image);
  if (held.has(abs)) throw new UserError(`disk image ${image} is already in use by another VM on this host (a writable image has one user; give the other VM an overlay, or open it read-only)`);
  const lock = lockPath(image);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(lock, "wx", 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new UserError(`disk image ${image} is locked (${lock})`);
        throw new UserError(`cannot lock disk image ${image}: ${(e as Error).message}`);
      }
      const pid = Number.parseInt(safeRead(lock), 10);
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new UserError(`disk image ${image} is in use by Ringvisor process ${pid} (lock ${lock}); a writable image has one user at a time`);
      }
      try { unlinkSync(lock); } catch { /* raced with its owner's cleanup: try again */ }
    }
  }
  held.add(abs);
  return () => {
    held.delete(abs);
    try { unlinkSync(lock); } catch { /* already gone */ }
  };
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class RawImage implements BlockBackend {
  private constructor(private readonly fh: FileHandle, readonly sizeBytes: number, readonly readOnly: boolean, private readonly unlock: (() => void) | undefined) {}

  static async open(path: string, readOnly: boolean): Promise<RawImage> {
    let st;
    try {
      st = statSync(path);
    } catch (e) {
      throw new UserError(`disk image ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
    }
    if (!st.isFile()) throw new UserError(`disk image ${path} is not a regular file`);
    if (st.size < SECTOR) throw new UserError(`disk image ${path} is ${st.size} bytes: smaller than one 512-byte sector`);
    const unlock = readOnly ? undefined : lockImage(path);
    try {
      const fh = await open(path, readOnly ? "r" : "r+");
      return new RawImage(fh, Math.floor(st.size / SECTOR) * SECTOR, readOnly, unlock);
    } catch (e) {
      unlock?.();
      throw new UserError(`cannot open disk image ${path}${readOnly ? "" : " for writing"}: ${(e as Error).message}`);
    }
  }

  async read(offset: number, into: Uint8Array): Promise<void> {
    let at = 0;
    while (at < into.length) {
      const { bytesRead } = await this.fh.read(into, at, into.length - at, offset + at);
      if (bytesRead === 0) {
        into.fill(0, at); // past the file's end (it shrank under us): zeros, as a sparse file reads
        return;
      }
      at += bytesRead;
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    let at = 0;
    while (at < data.length) {
      const { bytesWritten } = await this.fh.write(data, at, data.length - at, offset + at);
      at += bytesWritten;
    }
  }

  // preadv/pwritev (through libuv's thread pool) over views of guest frames; a short transfer
  // goes on from where it stopped.
  async readv(offset: number, into: Uint8Array[]): Promise<void> {
    let iov = into;
    let pos = offset;
    while (iov.length > 0) {
      const { bytesRead } = await this.fh.readv(iov, pos);
      if (bytesRead === 0) {
        for (const b of iov) b.fill(0); // past the file's end: zeros, as read() gives
        return;
      }
      pos += bytesRead;
      iov = advance(iov, bytesRead);
    }
  }

  async writev(offset: number, data: Uint8Array[]): Promise<void> {
    let iov = data;
    let pos = offset;
    while (iov.length > 0) {
      const { bytesWritten } = await this.fh.writev(iov, pos);
      pos += bytesWritten;
      iov = advance(iov, bytesWritten);
    }
  }

  async flush(): Promise<void> {
    await this.fh.sync();
  }

  async close(): Promise<void> {
    try {
      await this.fh.close();
    } finally {
      this.unlock?.();
    }
  }
}

// What is left of an I/O vector after n bytes of it.
function advance(iov: Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  while (i < iov.length && n >= iov[i]!.length) n -= iov[i++]!.length;
  const rest = iov.slice(i);
  if (n > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(n);
  return rest.filter((b) => b.length > 0);
}
