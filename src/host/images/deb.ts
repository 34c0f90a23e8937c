// Reading .deb packages (deb(5)): an ar archive whose members are debian-binary ("2.0\n"),
// control.tar.* and data.tar.*, the latter holding the package's files.
import { gunzipSync } from "node:zlib";
import { xz } from "@napi-rs/lzma";
import tar from "tar-stream";
import { ImageError } from "../../errors.js";

export interface ArMember {
  name: string;
  data: Uint8Array;
}

const AR_MAGIC = "!<arch>\n";
const AR_HEADER = 60;

// The common ar format (ar(5)): an 8-byte magic, then per member a 60-byte header of
// space-padded ASCII fields (name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\n") and the
// data, padded to an even offset. GNU ar ends short names with "/"; dpkg does not.
export function parseAr(buf: Uint8Array, what = "archive"): ArMember[] {
  const ascii = (a: number, b: number): string => Buffer.from(buf.buffer, buf.byteOffset + a, b - a).toString("latin1");
  if (buf.length < 8 || ascii(0, 8) !== AR_MAGIC) throw new ImageError(`${what} is not an ar archive (no !<arch> magic)`);
  const members: ArMember[] = [];
  let off = 8;
  while (off < buf.length) {
    if (buf.length - off === 1 && buf[off] === 0x0a) break;
    if (off + AR_HEADER > buf.length) throw new ImageError(`${what} is truncated inside an ar member header at offset ${off}`);
    if (ascii(off + 58, off + 60) !== "`\n") throw new ImageError(`${what} is corrupt: bad ar member header at offset ${off}`);
    const name = ascii(off, off + 16).trimEnd().replace(/\/$/, "");
    const size = Number(ascii(off + 48, off + 58).trim());
    if (!Number.isSafeInteger(size) || size < 0) throw new ImageError(`${what} is corrupt: bad size for ar member ${name}`);
    const start = off + AR_HEADER;
    if (start + size > buf.length) throw new ImageError(`${what} is truncated: member ${name} needs ${size} bytes`);
    members.push({ name, data: buf.subarray(start, start + size) });
    off = start + size + (size & 1);
  }
  return members;
}

// The package's data.tar, decompressed.
export async function debDataTar(deb: Uint8Array, what = "package"): Promise<Buffer> {
  const members = parseAr(deb, what);
  const version = members[0]?.name === "debian-binary" ? Buffer.from(members[0].data).toString("latin1").trim() : "";
  if (!version.startsWith("2.")) throw new ImageError(`${what} is not a Debian binary package (debian-binary is ${JSON.stringify(version)})`);
  const data = members.find((m) => m.name.startsWith("data.tar"));
  if (!data) throw new ImageError(`${what} has no data.tar member`);
  return decompress(data.data, `${what}: ${data.name}`);
}

// Decompresses by content (magic numbers), not by name: xz, gzip, or none.
export async function decompress(data: Uint8Array, what: string): Promise<Buffer> {
  const has = (...magic: number[]): boolean => magic.every((b, i) => data[i] === b);
  try {
    if (has(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return await xz.decompress(data);
    if (has(0x1f, 0x8b)) return gunzipSync(data);
  } catch (e) {
    throw new ImageError(`${what} is corrupt: ${(e as Error).message}`);
  }
  if (has(0x28, 0xb5, 0x2f, 0xfd)) throw new ImageError(`${what} is zstd-compressed, which this version of Node cannot decode`);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export interface TarFile {
  // Path without a leading "./" or "/".
  name: string;
  type: "file" | "symlink" | "link" | "directory" | "other";
  mode: number;
  linkname?: string;
  data: Buffer;
}

// Walks a tar archive and returns the entries `want` accepts (with contents for files).
export async function extractTar(archive: Buffer, want: (name: string) => boolean): Promise<TarFile[]> {
  const out: TarFile[] = [];
  const ex = tar.extract();
  ex.end(archive);
  try {
    for await (const entry of ex) {
      const h = entry.header;
      const name = h.name.replace(/^\.?\/+/, "").replace(/^\.$/, "");
      if (!want(name)) {
        entry.resume();
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const type = h.type === "file" || h.type === "contiguous-file" ? "file" : h.type === "symlink" || h.type === "link" || h.type === "directory" ? h.type : "other";
      out.push({ name, type, mode: h.mode ?? 0o644, data: Buffer.concat(chunks), ...(h.linkname ? { linkname: h.linkname } : {}) });
    }
  } catch (e) {
    throw new ImageError(`corrupt tar archive: ${(e as Error).message}`);
  }
  return out;
}
