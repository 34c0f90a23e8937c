// The cpio "newc" format, as the kernel unpacks it into the initramfs (Linux
// Documentation/driver-api/early-userspace/buffer-format.rst). Each entry is a header of ASCII
// fields, all but the magic 8 hex digits:
//   c_magic "070701", c_ino, c_mode, c_uid, c_gid, c_nlink, c_mtime, c_filesize,
//   c_maj, c_min (device of the file), c_rmaj, c_rmin (device it names, for chr/blk),
//   c_namesize (including the terminating NUL), c_chksum (0 for "070701")
// followed by the NUL-terminated name, padded so the data starts on a 4-byte boundary, then the
// data (a symlink's target, none for directories and devices), padded to 4 bytes. The archive
// ends with an entry named "TRAILER!!!".

export type CpioType = "file" | "dir" | "symlink" | "char" | "block";

export interface CpioEntry {
  // Without a leading "/", e.g. "bin/busybox".
  path: string;
  type: CpioType;
  // Permission bits only (e.g. 0o755); the file type bits come from `type`.
  perm: number;
  data?: Uint8Array;
  // Symlink target.
  target?: string;
  // Device numbers for "char" and "block".
  rdev?: [number, number];
  uid?: number;
  gid?: number;
  mtime?: number;
}

const MAGIC = "070701";
const HEADER = 110;
const TRAILER = "TRAILER!!!";

const TYPE_BITS: Record<CpioType, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
};

const pad4 = (n: number): number => (4 - (n % 4)) % 4;
const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, "0");

// Inodes are numbered in entry order and mtimes default to 0, so equal inputs give equal bytes.
export function writeNewc(entries: CpioEntry[], opts: { mtime?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  const push = (path: string, mode: number, nlink: number, mtime: number, body: Uint8Array, ino: number, rdev: [number, number], uid = 0, gid = 0): void => {
    const name = Buffer.from(`${path}\0`, "utf8");
    const fields = [ino, mode, uid, gid, nlink, mtime, body.length, 0, 0, rdev[0], rdev[1], name.length, 0];
    parts.push(Buffer.from(MAGIC + fields.map(hex8).join(""), "latin1"), name, Buffer.alloc(pad4(HEADER + name.length)));
    parts.push(Buffer.from(body.buffer, body.byteOffset, body.byteLength), Buffer.alloc(pad4(body.length)));
  };
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    const path = e.path.replace(/^\/+/, "");
    if (path === "" || path === TRAILER) throw new Error(`cpio: invalid path ${JSON.stringify(e.path)}`);
    if (seen.has(path)) throw new Error(`cpio: duplicate path ${path}`);
    seen.add(path);
    const body = e.type === "file" ? (e.data ?? new Uint8Array()) : e.type === "symlink" ? Buffer.from(e.target ?? "", "utf8") : new Uint8Array();
    const rdev: [number, number] = e.type === "char" || e.type === "block" ? (e.rdev ?? [0, 0]) : [0, 0];
    push(path, TYPE_BITS[e.type] | (e.perm & 0o7777), e.type === "dir" ? 2 : 1, e.mtime ?? opts.mtime ?? 0, body, i + 1, rdev, e.uid, e.gid);
  });
  push(TRAILER, 0, 1, 0, new Uint8Array(), 0, [0, 0]);
  return Buffer.concat(parts);
}

// Reads a newc archive back (for tests and `image` inspection); stops at the trailer.
export function readNewc(buf: Uint8Array): CpioEntry[] {
  const out: CpioEntry[] = [];
  const text = (a: number, n: number): string => Buffer.from(buf.buffer, buf.byteOffset + a, n).toString("latin1");
  let off = 0;
  for (;;) {
    if (off + HEADER > buf.length) throw new Error(`cpio: truncated header at offset ${off}`);
    if (text(off, 6) !== MAGIC) throw new Error(`cpio: bad magic ${JSON.stringify(text(off, 6))} at offset ${off}`);
    const f = (i: number): number => parseInt(text(off + 6 + i * 8, 8), 16);
    const [mode, uid, gid, mtime, size, rmaj, rmin, namesize] = [f(1), f(2), f(3), f(5), f(6), f(9), f(10), f(11)];
    const name = text(off + HEADER, namesize - 1);
    const dataStart = off + HEADER + namesize + pad4(HEADER + namesize);
    if (dataStart + size > buf.length) throw new Error(`cpio: ${name} is truncated`);
    const data = buf.subarray(dataStart, dataStart + size);
    off = dataStart + size + pad4(size);
    if (name === TRAILER) return out;
    const type = (Object.keys(TYPE_BITS) as CpioType[]).find((t) => TYPE_BITS[t] === (mode & 0o170000));
    if (!type) throw new Error(`cpio: ${name} has unsupported mode ${mode.toString(8)}`);
    out.push({
      path: name,
      type,
      perm: mode & 0o7777,
      uid,
      gid,
      mtime,
      ...(type === "file" ? { data } : {}),
      ...(type === "symlink" ? { target: Buffer.from(data).toString("utf8") } : {}),
      ...(type === "char" || type === "block" ? { rdev: [rmaj, rmin] as [number, number] } : {}),
    });
  }
}
