// A host folder served to a guest over 9P2000.L (the dialect Linux's v9fs speaks; see the
// protocol's manual pages intro(5) and Linux's include/net/9p/9p.h for the message numbers). The
// virtio transport (src/devices/virtio/p9.ts) hands each request here as bytes and gets the
// reply's bytes back.
//
// Confinement is the point: a fid is a path of names below the shared folder, never a host path.
// Walking ".." at the top stays at the top (as chroot does), a name with "/" or NUL in it is
// refused, and a symlink is never followed on the host: walking through one, or opening one, is
// refused (the guest's kernel reads a link with readlink and resolves its target itself, inside
// its own mount). Creating symlinks, hard links and device nodes is refused, so the guest cannot
// plant a way out. A read-only share refuses every change with EROFS.
//
// I/O is asynchronous (fs.promises): a slow disk never blocks the host's main thread. Thread:
// the host's main thread.
import { promises as fs, constants as C } from "node:fs";
import { join } from "node:path";

// Message types (9P2000.L and the base protocol).
const T = {
  statfs: 8, lopen: 12, lcreate: 14, symlink: 16, mknod: 18, rename: 20, readlink: 22, getattr: 24, setattr: 26,
  xattrwalk: 30, xattrcreate: 32, readdir: 40, fsync: 50, lock: 52, getlock: 54, link: 70, mkdir: 72, renameat: 74,
  unlinkat: 76, version: 100, auth: 102, attach: 104, flush: 108, walk: 110, read: 116, write: 118, clunk: 120, remove: 122,
} as const;
const RLERROR = 7;

// Linux errno values the guest understands (asm-generic/errno-base.h).
const E = { EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EACCES: 13, EEXIST: 17, EXDEV: 18, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, EFBIG: 27, ENOSPC: 28, EROFS: 30, ENAMETOOLONG: 36, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, EOPNOTSUPP: 95 } as const;
const ERRNO: Record<string, number> = { ...E };

class P9Error extends Error {
  constructor(readonly errno: number) {
    super(`9P error ${errno}`);
  }
}

const QT_DIR = 0x80;
const QT_SYMLINK = 0x02;
const MAX_MSIZE = 512 << 10;
const MAX_FIDS = 4096;
const GETATTR_BASIC = 0x7ffn;

interface Fid {
  path: string[]; // names below the share's root
  fh?: fs.FileHandle;
  dir?: { entries: { name: string; qid: Uint8Array; type: number }[] };
}

// A little-endian reader over one request.
class In {
  at = 0;
  constructor(private readonly b: Buffer) {}
  u8(): number { this.need(1); return this.b[this.at++]!; }
  u16(): number { this.need(2); const v = this.b.readUInt16LE(this.at); this.at += 2; return v; }
  u32(): number { this.need(4); const v = this.b.readUInt32LE(this.at); this.at += 4; return v; }
  u64(): bigint { this.need(8); const v = this.b.readBigUInt64LE(this.at); this.at += 8; return v; }
  str(): string { const n = this.u16(); this.need(n); const s = this.b.toString("utf8", this.at, this.at + n); this.at += n; return s; }
  bytes(n: number): Buffer { this.need(n); const s = this.b.subarray(this.at, this.at + n); this.at += n; return s; }
  private need(n: number): void { if (this.at + n > this.b.length) throw new P9Error(E.EINVAL); }
}

// A little-endian writer for one reply.
class Out {
  private parts: Buffer[] = [];
  u8(v: number): this { this.parts.push(Buffer.from([v & 255])); return this; }
  u16(v: number): this { const b = Buffer.alloc(2); b.writeUInt16LE(v); this.parts.push(b); return this; }
  u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); this.parts.push(b); return this; }
  u64(v: bigint | number): this { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v))); this.parts.push(b); return this; }
  str(s: string): this { const d = Buffer.from(s, "utf8"); this.u16(d.length); this.parts.push(d); return this; }
  raw(b: Uint8Array): this { this.parts.push(Buffer.from(b)); return this; }
  get length(): number { return this.parts.reduce((n, p) => n + p.length, 0); }
  done(type: number, tag: number): Buffer {
    const body = Buffer.concat(this.parts);
    const h = Buffer.alloc(7);
    h.writeUInt32LE(7 + body.length, 0);
    h[4] = type;
    h.writeUInt16LE(tag, 5);
    return Buffer.concat([h, body]);
  }
}

function qidOf(st: import("node:fs").BigIntStats): Uint8Array {
  const q = Buffer.alloc(13);
  q[0] = st.isDirectory() ? QT_DIR : st.isSymbolicLink() ? QT_SYMLINK : 0;
  q.writeUInt32LE(Number(st.mtimeNs & 0xffffffffn), 1);
  q.writeBigUInt64LE(st.ino, 5);
  return q;
}

function errnoOf(e: unknown): number {
  if (e instanceof P9Error) return e.errno;
  const code = (e as NodeJS.ErrnoException).code;
  return (code && ERRNO[code]) || E.EIO;
}

export interface ShareStats {
  requests: number;
  errors: number;
  bytesRead: number;
  bytesWritten: number;
}

export class Share {
  private readonly fids = new Map<number, Fid>();
  private msize = 8192;
  readonly stats: ShareStats = { requests: 0, errors: 0, bytesRead: 0, bytesWritten: 0 };

  constructor(readonly root: string, readonly tag: string, readonly readOnly: boolean) {}

  // The reply to one request (max: the room the driver gave for it).
  async handle(req: Buffer, max: number): Promise<Buffer> {
    this.stats.requests++;
    let tag = 0xffff;
    let type = 0;
    try {
      if (req.length < 7 || req.readUInt32LE(0) !== req.length) throw new P9Error(E.EINVAL);
      type = req[4]!;
      tag = req.readUInt16LE(5);
      const r = new In(req.subarray(7));
      const out = await this.dispatch(type, r, Math.min(max, this.msize));
      const reply = out.done(type + 1, tag);
      if (reply.length > max) throw new P9Error(E.EINVAL);
      return reply;
    } catch (e) {
      this.stats.errors++;
      return new Out().u32(errnoOf(e)).done(RLERROR, tag);
    }
  }

  // The host path of a fid's path (its names were checked when they were walked).
  private host(path: string[]): string {
    return join(this.root, ...path);
  }

  private fid(n: number): Fid {
    const f = this.fids.get(n);
    if (!f) throw new P9Error(E.EBADF);
    return f;
  }

  private setFid(n: number, f: Fid): void {
    if (!this.fids.has(n) && this.fids.size >= MAX_FIDS) throw new P9Error(E.ENOSPC);
    this.fids.set(n, f);
  }

  private name(s: string): string {
    if (s === "" || s === "." || s === ".." || s.includes("/") || s.includes("\0")) throw new P9Error(E.EINVAL);
    if (Buffer.byteLength(s) > 255) throw new P9Error(E.ENAMETOOLONG);
    return s;
  }

  private writable(): void {
    if (this.readOnly) throw new P9Error(E.EROFS);
  }

  private async lstat(path: string[]): Promise<import("node:fs").BigIntStats> {
    return fs.lstat(this.host(path), { bigint: true });
  }

  private async dispatch(type: number, r: In, room: number): Promise<Out> {
    const o = new Out();
    switch (type) {
      case T.version: {
        const msize = r.u32();
        const version = r.str();
        this.msize = Math.max(4096, Math.min(msize, MAX_MSIZE));
        for (const f of this.fids.values()) await f.fh?.close().catch(() => undefined);
        this.fids.clear();
        return o.u32(this.msize).str(version === "9P2000.L" ? "9P2000.L" : "unknown");
      }
      case T.auth: throw new P9Error(E.EOPNOTSUPP);
      case T.attach: {
        const fid = r.u32();
        r.u32(); r.str(); r.str(); // afid, uname, aname
        const st = await this.lstat([]);
        this.setFid(fid, { path: [] });
        return o.raw(qidOf(st));
      }
      case T.flush: return o;
      case T.walk: {
        const fid = this.fid(r.u32());
        const newfid = r.u32();
        const n = r.u16();
        if (n > 16) throw new P9Error(E.EINVAL);
        const names = Array.from({ length: n }, () => r.str());
        let path = [...fid.path];
        const qids: Uint8Array[] = [];
        for (const w of names) {
          // Only directories can be walked through; a symlink never is (it would lead anywhere).
          const here = await this.lstat(path);
          if (!here.isDirectory()) {
            if (qids.length === 0) throw new P9Error(here.isSymbolicLink() ? E.ELOOP : E.ENOTDIR);
            break;
          }
          const next = w === ".." ? path.slice(0, -1) : w === "." ? path : [...path, this.name(w)];
          let st;
          try {
            st = await this.lstat(next);
          } catch (e) {
            if (qids.length === 0) throw e;
            break;
          }
          qids.push(qidOf(st));
          path = next;
        }
        if (qids.length === n) this.setFid(newfid, { path });
        o.u16(qids.length);
        for (const q of qids) o.raw(q);
        return o;
      }
      case T.getattr: {
        const f = this.fid(r.u32());
        r.u64();
        const st = await this.lstat(f.path);
        return o.u64(GETATTR_BASIC).raw(qidOf(st)).u32(Number(st.mode)).u32(Number(st.uid)).u32(Number(st.gid)).u64(st.nlink).u64(st.rdev)
          .u64(st.size).u64(st.blksize).u64(st.blocks)
          .u64(st.atimeNs / 1_000_000_000n).u64(st.atimeNs % 1_000_000_000n).u64(st.mtimeNs / 1_000_000_000n).u64(st.mtimeNs % 1_000_000_000n)
          .u64(st.ctimeNs / 1_000_000_000n).u64(st.ctimeNs % 1_000_000_000n).u64(0).u64(0).u64(0).u64(0);
      }
      case T.statfs: {
        this.fid(r.u32());
        const s = await fs.statfs(this.root, { bigint: true });
        return o.u32(0x01021997).u32(Number(s.bsize)).u64(s.blocks).u64(s.bfree).u64(s.bavail).u64(s.files).u64(s.ffree).u64(0).u32(255);
      }
      case T.lopen: {
        const f = this.fid(r.u32());
        const flags = r.u32();
        const st = await this.lstat(f.path);
        if (st.isSymbolicLink()) throw new P9Error(E.ELOOP);
        if (st.isDirectory()) {
          f.dir = { entries: [] };
          return o.raw(qidOf(st)).u32(0);
        }
        const acc = flags & 3;
        if (acc !== 0 || (flags & 0o1000) !== 0) this.writable(); // O_WRONLY/O_RDWR, O_TRUNC
        const hostFlags = (acc === 1 ? C.O_WRONLY : acc === 2 ? C.O_RDWR : C.O_RDONLY) | ((flags & 0o1000) ? C.O_TRUNC : 0) | ((flags & 0o2000) ? C.O_APPEND : 0) | C.O_NOFOLLOW;
        await f.fh?.close().catch(() => undefined);
        f.fh = await fs.open(this.host(f.path), hostFlags);
        return o.raw(qidOf(st)).u32(0);
      }
      case T.lcreate: {
        const f = this.fid(r.u32());
        const name = this.name(r.str());
        const flags = r.u32();
        const mode = r.u32();
        r.u32(); // gid
        this.writable();
        const path = [...f.path, name];
        const acc = flags & 3;
        const fh = await fs.open(this.host(path), (acc === 2 ? C.O_RDWR : acc === 1 ? C.O_WRONLY : C.O_RDONLY) | C.O_CREAT | ((flags & 0o200) ? C.O_EXCL : 0) | ((flags & 0o1000) ? C.O_TRUNC : 0) | C.O_NOFOLLOW, mode & 0o777);
        await f.fh?.close().catch(() => undefined);
        f.path = path; // the fid now stands for the new file (9P: lcreate turns the directory fid into it)
        f.fh = fh;
        return o.raw(qidOf(await this.lstat(path))).u32(0);
      }
      case T.read: {
        const f = this.fid(r.u32());
        const off = r.u64();
        const count = Math.min(r.u32(), room - 11);
        if (!f.fh) throw new P9Error(E.EBADF);
        const buf = Buffer.alloc(Math.max(0, count));
        const { bytesRead } = await f.fh.read(buf, 0, buf.length, Number(off));
        this.stats.bytesRead += bytesRead;
        return o.u32(bytesRead).raw(buf.subarray(0, bytesRead));
      }
      case T.write: {
        const f = this.fid(r.u32());
        const off = r.u64();
        const count = r.u32();
        const data = r.bytes(count);
        this.writable();
        if (!f.fh) throw new P9Error(E.EBADF);
        const { bytesWritten } = await f.fh.write(data, 0, data.length, Number(off));
        this.stats.bytesWritten += bytesWritten;
        return o.u32(bytesWritten);
      }
      case T.readdir: {
        const f = this.fid(r.u32());
        const off = Number(r.u64());
        const count = Math.min(r.u32(), room - 11);
        if (!f.dir) throw new P9Error(E.EBADF);
        if (off === 0 || f.dir.entries.length === 0) f.dir.entries = await this.listDir(f.path);
        const body = new Out();
        for (let i = off; i < f.dir.entries.length; i++) {
          const e = f.dir.entries[i]!;
          const rec = new Out().raw(e.qid).u64(i + 1).u8(e.type).str(e.name);
          if (body.length + rec.length > count) break;
          body.raw(rec.done(0, 0).subarray(7));
        }
        const data = body.done(0, 0).subarray(7);
        return o.u32(data.length).raw(data);
      }
      case T.clunk: {
        const n = r.u32();
        const f = this.fid(n);
        this.fids.delete(n);
        await f.fh?.close().catch(() => undefined);
        return o;
      }
      case T.remove: {
        const n = r.u32();
        const f = this.fid(n);
        this.fids.delete(n);
        await f.fh?.close().catch(() => undefined);
        this.writable();
        if (f.path.length === 0) throw new P9Error(E.EPERM);
        const st = await this.lstat(f.path);
        if (st.isDirectory()) await fs.rmdir(this.host(f.path));
        else await fs.unlink(this.host(f.path));
        return o;
      }
      case T.mkdir: {
        const f = this.fid(r.u32());
        const name = this.name(r.str());
        const mode = r.u32();
        r.u32();
        this.writable();
        const path = [...f.path, name];
        await fs.mkdir(this.host(path), mode & 0o777);
        return o.raw(qidOf(await this.lstat(path)));
      }
      case T.unlinkat: {
        const f = this.fid(r.u32());
        const name = this.name(r.str());
        const flags = r.u32();
        this.writable();
        const p = this.host([...f.path, name]);
        if (flags & 0x200) await fs.rmdir(p); // AT_REMOVEDIR
        else {
          const st = await fs.lstat(p);
          if (st.isDirectory()) throw new P9Error(E.EISDIR);
          await fs.unlink(p);
        }
        return o;
      }
      case T.renameat: {
        const from = this.fid(r.u32());
        const oldName = this.name(r.str());
        const to = this.fid(r.u32());
        const newName = this.name(r.str());
        this.writable();
        await fs.rename(this.host([...from.path, oldName]), this.host([...to.path, newName]));
        return o;
      }
      case T.rename: {
        const f = this.fid(r.u32());
        const to = this.fid(r.u32());
        const name = this.name(r.str());
        this.writable();
        if (f.path.length === 0) throw new P9Error(E.EPERM);
        const path = [...to.path, name];
        await fs.rename(this.host(f.path), this.host(path));
        f.path = path;
        return o;
      }
      case T.setattr: {
        const f = this.fid(r.u32());
        const valid = r.u32();
        const mode = r.u32();
        r.u32(); r.u32(); // uid, gid: a share's files keep the host user's ownership
        const size = r.u64();
        const at = [r.u64(), r.u64()];
        const mt = [r.u64(), r.u64()];
        this.writable();
        const p = this.host(f.path);
        const st = await this.lstat(f.path);
        if (st.isSymbolicLink()) throw new P9Error(E.ELOOP);
        if (valid & 1) await fs.chmod(p, mode & 0o7777);
        if (valid & 8) await fs.truncate(p, Number(size));
        if (valid & (0x10 | 0x20)) {
          const now = Date.now() / 1000;
          const atime = valid & 0x80 ? Number(at[0]) + Number(at[1]) / 1e9 : (valid & 0x10 ? now : Number(st.atimeMs) / 1000);
          const mtime = valid & 0x100 ? Number(mt[0]) + Number(mt[1]) / 1e9 : (valid & 0x20 ? now : Number(st.mtimeMs) / 1000);
          await fs.utimes(p, atime, mtime);
        }
        return o;
      }
      case T.readlink: {
        const f = this.fid(r.u32());
        return o.str(await fs.readlink(this.host(f.path)));
      }
      case T.fsync: {
        const f = this.fid(r.u32());
        await f.fh?.sync();
        return o;
      }
      case T.lock: return o.u8(0); // LOCK_SUCCESS: the host's own locks are not shared with the guest
      case T.getlock: {
        this.fid(r.u32());
        const type = r.u8();
        const start = r.u64();
        const length = r.u64();
        const procId = r.u32();
        const client = r.str();
        return o.u8(2 /* F_UNLCK */ | (type & 0)).u64(start).u64(length).u32(procId).str(client);
      }
      // Ways out of the folder, or features a share does not have.
      case T.symlink: case T.link: case T.mknod: throw new P9Error(this.readOnly ? E.EROFS : E.EPERM);
      case T.xattrwalk: case T.xattrcreate: throw new P9Error(E.EOPNOTSUPP);
      default: throw new P9Error(E.ENOSYS);
    }
  }

  private async listDir(path: string[]): Promise<{ name: string; qid: Uint8Array; type: number }[]> {
    const names = [".", "..", ...(await fs.readdir(this.host(path)))];
    const out: { name: string; qid: Uint8Array; type: number }[] = [];
    for (const name of names) {
      const p = name === "." ? path : name === ".." ? path.slice(0, -1) : [...path, name];
      try {
        const st = await this.lstat(p);
        out.push({ name, qid: qidOf(st), type: st.isDirectory() ? 4 : st.isSymbolicLink() ? 10 : 8 });
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }

  async close(): Promise<void> {
    for (const f of this.fids.values()) await f.fh?.close().catch(() => undefined);
    this.fids.clear();
  }
}
