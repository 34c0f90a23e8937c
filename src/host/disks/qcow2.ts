// qcow2 images, version 3 (QEMU's docs/interop/qcow2.txt): the format QEMU writes and reads, so an
// image made by `qemu-img create -f qcow2 [-b BASE]` works here and an image made here passes
// `qemu-img check`.
//
// The disk is cut into clusters (64 KiB by default). A two-level table maps a guest cluster to a
// host cluster in the file: the L1 table (in memory, always) names L2 tables, whose entries name
// data clusters. A guest cluster with no L2 entry reads as the backing file's bytes (or zeros),
// so an overlay holds only what its VM wrote and many overlays share one read-only base. Every
// host cluster in use has a reference count (refcount table -> refcount blocks -> 16-bit counts);
// a cluster with count 1 may be written in place (the COPIED flag says so in the tables).
//
// Writing a guest cluster that is not yet the image's own allocates a host cluster at the end of
// the file, fills it (the guest's bytes over the old contents: backing file, zeros, or a
// compressed cluster), then raises its refcount, then points the L2 entry at it. The order means a
// crash leaves at worst a leaked cluster (a count with no reference: qemu-img check calls it a
// leak, harmless), never a reference to a cluster whose count is 0. Allocation is serialised by
// one lock per image; writes into clusters the image already owns go straight to the file.
//
// What is refused, with a message: encryption, external data files, extended L2 entries, zstd
// compression, and internal snapshots when opening for writing. The refcount table grows when the
// file outgrows it (growRefTable: with 64 KiB clusters one cluster of table covers 16 TiB, with
// 512-byte clusters only 8 MiB).
import { open, type FileHandle } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { inflateRawSync } from "node:zlib";
import type { BlockBackend } from "../../devices/virtio/blk.js";
import { UserError } from "../../errors.js";
import { lockImage } from "./raw.js";

export const QCOW2_MAGIC = 0x514649fb;
const HEADER_V3_BYTES = 112;
const EXT_END = 0;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_FEATURE_NAMES = 0x6803f857;

const INCOMPAT_DIRTY = 1n;
const INCOMPAT_CORRUPT = 2n;
const INCOMPAT_EXTERNAL_DATA = 4n;
const INCOMPAT_COMPRESSION = 8n;
const INCOMPAT_EXTENDED_L2 = 16n;

const OFLAG_COPIED = 1n << 63n;
const OFLAG_COMPRESSED = 1n << 62n;
const OFLAG_ZERO = 1n;
const L1E_OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
const L2E_OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
const REFT_OFFSET_MASK = 0xffff_ffff_ffff_fe00n;

export interface Qcow2Info {
  format: "qcow2";
  version: number;
  virtualSize: number;
  clusterSize: number;
  backingFile?: string; // as written in the image
  backingPath?: string; // resolved against the image's directory
  backingFormat?: string;
  fileSize: number;
  allocatedClusters: number;
  snapshots: number;
  dirty: boolean;
}

interface Header {
  version: number;
  backingOffset: number;
  backingSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1Offset: number;
  refTableOffset: number;
  refTableClusters: number;
  snapshots: number;
  incompatible: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  backingFile?: string;
  backingFormat?: string;
}

function fail(path: string, why: string): never {
  throw new UserError(`qcow2 image ${path}: ${why}`);
}

// Reads and checks the header; `path` names the file in errors.
function parseHeader(path: string, b: Buffer): Header {
  if (b.length < 72 || b.readUInt32BE(0) !== QCOW2_MAGIC) fail(path, "not a qcow2 image (bad magic)");
  const version = b.readUInt32BE(4);
  if (version !== 2 && version !== 3) fail(path, `version ${version} is not supported (2 or 3)`);
  const num = (off: number): number => {
    const v = b.readBigUInt64BE(off);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(path, `header field at ${off} is out of range`);
    return Number(v);
  };
  const h: Header = {
    version,
    backingOffset: num(8),
    backingSize: b.readUInt32BE(16),
    clusterBits: b.readUInt32BE(20),
    size: num(24),
    cryptMethod: b.readUInt32BE(32),
    l1Size: b.readUInt32BE(36),
    l1Offset: num(40),
    refTableOffset: num(48),
    refTableClusters: b.readUInt32BE(56),
    snapshots: b.readUInt32BE(60),
    incompatible: 0n,
    refcountOrder: 4,
    headerLength: 72,
    compressionType: 0,
  };
  if (version === 3) {
    if (b.length < 104) fail(path, "truncated version 3 header");
    h.incompatible = b.readBigUInt64BE(72);
    h.refcountOrder = b.readUInt32BE(96);
    h.headerLength = b.readUInt32BE(100);
    if (h.headerLength > 104) h.compressionType = b[104]!;
  }
  if (h.clusterBits < 9 || h.clusterBits > 21) fail(path, `cluster_bits ${h.clusterBits} is outside 9..21`);
  if (h.cryptMethod !== 0) fail(path, "encrypted images are not supported");
  if (h.refcountOrder !== 4) fail(path, `refcount_order ${h.refcountOrder} is not supported (only 16-bit refcounts, QEMU's default)`);
  const unknown = h.incompatible & ~(INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION);
  if (h.incompatible & INCOMPAT_EXTERNAL_DATA) fail(path, "external data files are not supported");
  if (h.incompatible & INCOMPAT_EXTENDED_L2) fail(path, "extended L2 entries (subclusters) are not supported");
  if (unknown !== 0n) fail(path, `unknown incompatible features 0x${unknown.toString(16)}`);
  if (h.incompatible & INCOMPAT_CORRUPT) fail(path, "QEMU marked it corrupt; repair it with qemu-img check -r all");
  if (h.compressionType !== 0) fail(path, "zstd-compressed clusters are not supported (only zlib)");
  const cluster = 2 ** h.clusterBits;
  const l2Entries = cluster / 8;
  const need = Math.ceil(h.size / (cluster * l2Entries));
  if (h.l1Size < need) fail(path, `L1 table of ${h.l1Size} entries is too small for a ${h.size}-byte disk`);
  if (h.l1Offset % cluster !== 0 || h.refTableOffset % cluster !== 0) fail(path, "L1 or refcount table is not cluster-aligned");
  // Header extensions follow the header, up to the end of the first cluster.
  if (version === 3) {
    let at = h.headerLength;
    while (at + 8 <= Math.min(b.length, cluster)) {
      const type = b.readUInt32BE(at);
      const len = b.readUInt32BE(at + 4);
      if (type === EXT_END) break;
      if (at + 8 + len > b.length) fail(path, "a header extension runs past the first cluster");
      if (type === EXT_BACKING_FORMAT) h.backingFormat = b.subarray(at + 8, at + 8 + len).toString("utf8");
      at += 8 + Math.ceil(len / 8) * 8;
    }
  }
  if (h.backingOffset !== 0) {
    if (h.backingSize === 0 || h.backingSize > 1023 || h.backingOffset + h.backingSize > b.length) fail(path, "backing file name is out of bounds");
    h.backingFile = b.subarray(h.backingOffset, h.backingOffset + h.backingSize).toString("utf8");
  }
  return h;
}

// Serialises the operations that allocate (one at a time per image).
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(f: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => { release = r; });
    await prev;
    try {
      return await f();
    } finally {
      release();
    }
  }
}

export class Qcow2Image implements BlockBackend {
  readonly sizeBytes: number;
  private readonly cluster: number;
  private readonly l2Entries: number;
  private readonly l1: BigUint64Array; // host order; written through to the file
  private readonly l2Cache = new Map<number, BigUint64Array>(); // by host offset (an LRU)
  private refTable: BigUint64Array; // replaced when it grows
  private readonly refBlocks = new Map<number, Uint16Array>(); // by host offset
  private fileEnd: number; // next cluster to allocate
  // How often the refcount table grew while this image was open.
  refTableGrowths = 0;
  private readonly lock = new Mutex();

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly h: Header,
    fileSize: number,
    l1: BigUint64Array,
    refTable: BigUint64Array,
    readonly readOnly: boolean,
    private readonly backing: BlockBackend | undefined,
    private readonly unlock: (() => void) | undefined,
  ) {
    this.sizeBytes = Math.floor(h.size / 512) * 512;
    this.cluster = 2 ** h.clusterBits;
    this.l2Entries = this.cluster / 8;
    this.l1 = l1;
    this.refTable = refTable;
    this.fileEnd = Math.ceil(fileSize / this.cluster) * this.cluster;
  }

  // `openBacking` opens a backing file read-only (raw or qcow2, by its content).
  static async open(path: string, readOnly: boolean, openBacking: (path: string, format?: string) => Promise<BlockBackend>, depth = 0): Promise<Qcow2Image> {
    if (depth > 16) fail(path, "a chain of more than 16 backing files (a loop?)");
    const unlock = readOnly ? undefined : lockImage(path);
    let fh: FileHandle | undefined;
    let backing: BlockBackend | undefined;
    try {
      fh = await open(path, readOnly ? "r" : "r+");
      const size = (await fh.stat()).size;
      const first = Buffer.alloc(Math.min(size, 1 << 21));
      await fh.read(first, 0, first.length, 0);
      const h = parseHeader(path, first);
      if (!readOnly && h.snapshots > 0) fail(path, `it has ${h.snapshots} internal snapshots, which this version opens only read-only`);
      if (!readOnly && h.version < 3) fail(path, "version 2 images are opened read-only here; upgrade it with qemu-img amend -o compat=1.1");
      if (!readOnly && (h.incompatible & INCOMPAT_DIRTY) !== 0n) fail(path, "it is marked dirty (lazy refcounts were not written back); run qemu-img check -r all first");
      const l1 = await readTable(fh, h.l1Offset, h.l1Size);
      const refTable = await readTable(fh, h.refTableOffset, (h.refTableClusters * 2 ** h.clusterBits) / 8);
      if (h.backingFile !== undefined) {
        const bpath = isAbsolute(h.backingFile) ? h.backingFile : resolve(dirname(path), h.backingFile);
        backing = await openBacking(bpath, h.backingFormat);
      }
      return new Qcow2Image(path, fh, h, size, l1, refTable, readOnly, backing, unlock);
    } catch (e) {
      await fh?.close().catch(() => undefined);
      await backing?.close().catch(() => undefined);
      unlock?.();
      if (e instanceof UserError) throw e;
      throw new UserError(`cannot open qcow2 image ${path}: ${(e as Error).message}`);
    }
  }

  async read(offset: number, into: Uint8Array): Promise<void> {
    let at = 0;
    while (at < into.length) {
      const pos = offset + at;
      const inCluster = pos % this.cluster;
      const n = Math.min(this.cluster - inCluster, into.length - at);
      await this.readInCluster(pos, into.subarray(at, at + n));
      at += n;
    }
  }

  // A read within one guest cluster.
  private async readInCluster(pos: number, into: Uint8Array): Promise<void> {
    const e = await this.l2Entry(pos, false);
    if (e === undefined || ((e & L2E_OFFSET_MASK) === 0n && (e & OFLAG_COMPRESSED) === 0n)) {
      if (e !== undefined && (e & OFLAG_ZERO) !== 0n) return void into.fill(0);
      return this.readBacking(pos, into);
    }
    if ((e & OFLAG_COMPRESSED) !== 0n) {
      const c = await this.decompress(e);
      into.set(c.subarray(pos % this.cluster, (pos % this.cluster) + into.length));
      return;
    }
    if ((e & OFLAG_ZERO) !== 0n) return void into.fill(0);
    await readFull(this.fh, into, Number(e & L2E_OFFSET_MASK) + (pos % this.cluster));
  }

  private async readBacking(pos: number, into: Uint8Array): Promise<void> {
    into.fill(0);
    if (!this.backing || pos >= this.backing.sizeBytes) return;
    const n = Math.min(into.length, this.backing.sizeBytes - pos);
    // The backing device reads whole sectors; its size is a whole number of them.
    const start = pos - (pos % 512);
    const end = Math.min(Math.ceil((pos + n) / 512) * 512, this.backing.sizeBytes);
    const tmp = new Uint8Array(end - start);
    await this.backing.read(start, tmp);
    into.set(tmp.subarray(pos - start, pos - start + n));
  }

  // A compressed cluster (zlib deflate without header, as QEMU writes it).
  private async decompress(e: bigint): Promise<Uint8Array> {
    const x = 62 - (this.h.clusterBits - 8);
    const offMask = (1n << BigInt(x)) - 1n;
    const off = Number(e & offMask);
    const sectors = Number(((e & ~OFLAG_COMPRESSED & ~OFLAG_COPIED) >> BigInt(x))) + 1;
    const len = sectors * 512 - (off % 512);
    const buf = Buffer.alloc(len);
    const { bytesRead } = await this.fh.read(buf, 0, len, off);
    try {
      const out = inflateRawSync(buf.subarray(0, bytesRead), { finishFlush: 2 /* Z_SYNC_FLUSH */ });
      const c = new Uint8Array(this.cluster);
      c.set(out.subarray(0, this.cluster));
      return c;
    } catch (err) {
      throw new Error(`compressed cluster at ${off} does not inflate: ${(err as Error).message}`);
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.readOnly) throw new Error("read-only image");
    let at = 0;
    while (at < data.length) {
      const pos = offset + at;
      const n = Math.min(this.cluster - (pos % this.cluster), data.length - at);
      await this.writeInCluster(pos, data.subarray(at, at + n));
      at += n;
    }
  }

  private async writeInCluster(pos: number, data: Uint8Array): Promise<void> {
    const e = await this.l2Entry(pos, false);
    if (e !== undefined && (e & OFLAG_COPIED) !== 0n && (e & OFLAG_COMPRESSED) === 0n && (e & L2E_OFFSET_MASK) !== 0n && (e & OFLAG_ZERO) === 0n) {
      return writeFull(this.fh, data, Number(e & L2E_OFFSET_MASK) + (pos % this.cluster));
    }
    await this.lock.run(async () => {
      // Looked up again under the lock: another write may have allocated it meanwhile.
      const again = await this.l2Entry(pos, false);
      if (again !== undefined && (again & OFLAG_COPIED) !== 0n && (again & OFLAG_COMPRESSED) === 0n && (again & L2E_OFFSET_MASK) !== 0n && (again & OFLAG_ZERO) === 0n) {
        return writeFull(this.fh, data, Number(again & L2E_OFFSET_MASK) + (pos % this.cluster));
      }
      // The cluster's new contents: what a read gives now, with the guest's bytes over it.
      const base = pos - (pos % this.cluster);
      const full = new Uint8Array(this.cluster);
      if (data.length < this.cluster) await this.readInCluster(base, full);
      full.set(data, pos % this.cluster);
      const old = again ?? 0n;
      const oldHost = Number(old & L2E_OFFSET_MASK);
      if ((old & OFLAG_COMPRESSED) === 0n && oldHost !== 0 && (old & OFLAG_COPIED) !== 0n) {
        // A zero cluster the image owns (ZERO flag over an allocated cluster): fill it in place.
        await writeFull(this.fh, full, oldHost);
        await this.setL2Entry(pos, BigInt(oldHost) | OFLAG_COPIED);
        return;
      }
      const host = await this.allocate();
      await writeFull(this.fh, full, host);
      await this.setRefcount(host, 1);
      await this.setL2Entry(pos, BigInt(host) | OFLAG_COPIED);
      // What the entry named before loses this reference: a cluster shared with a snapshot
      // (count > 1), or the host clusters a compressed cluster's bytes lie in.
      for (const o of this.clustersOf(old)) await this.setRefcount(o, Math.max(0, (await this.refcount(o)) - 1));
    });
  }

  // Host clusters an L2 entry holds a reference to, when the image does not own it alone.
  private clustersOf(e: bigint): number[] {
    if ((e & OFLAG_COMPRESSED) !== 0n) {
      const x = 62 - (this.h.clusterBits - 8);
      const off = Number(e & ((1n << BigInt(x)) - 1n));
      const sectors = Number((e & ~OFLAG_COMPRESSED & ~OFLAG_COPIED) >> BigInt(x)) + 1;
      const end = off - (off % 512) + sectors * 512;
      const out: number[] = [];
      for (let c = off - (off % this.cluster); c < end; c += this.cluster) out.push(c);
      return out;
    }
    const host = Number(e & L2E_OFFSET_MASK);
    return host !== 0 && (e & OFLAG_COPIED) === 0n ? [host] : [];
  }

  async flush(): Promise<void> {
    await this.lock.run(async () => undefined); // allocations begun before the flush are done
    await this.fh.sync();
  }

  async close(): Promise<void> {
    try {
      await this.lock.run(async () => undefined);
      await this.fh.close();
      await this.backing?.close();
    } finally {
      this.unlock?.();
    }
  }

  // ---- tables ----

  // The L2 entry for guest byte `pos`, or undefined when no L2 table covers it. With `create`, a
  // missing L2 table is allocated (under the lock).
  private async l2Entry(pos: number, create: boolean): Promise<bigint | undefined> {
    const t = await this.l2Table(pos, create);
    if (!t) return undefined;
    return t.table[t.index]!;
  }

  private async l2Table(pos: number, create: boolean): Promise<{ table: BigUint64Array; offset: number; index: number } | undefined> {
    if (pos >= this.h.size) throw new Error(`offset ${pos} is past the disk's end`);
    const c = Math.floor(pos / this.cluster);
    const l1i = Math.floor(c / this.l2Entries);
    const index = c % this.l2Entries;
    let l1e = this.l1[l1i]!;
    let offset = Number(l1e & L1E_OFFSET_MASK);
    if (offset === 0) {
      if (!create) return undefined;
      offset = await this.allocate();
      const zero = new BigUint64Array(this.l2Entries);
      await writeFull(this.fh, new Uint8Array(this.cluster), offset);
      await this.setRefcount(offset, 1);
      l1e = BigInt(offset) | OFLAG_COPIED;
      this.l1[l1i] = l1e;
      await writeU64(this.fh, this.h.l1Offset + 8 * l1i, l1e);
      this.cacheL2(offset, zero);
      return { table: zero, offset, index };
    }
    let table = this.l2Cache.get(offset);
    if (table) {
      this.l2Cache.delete(offset); // LRU: to the back
      this.l2Cache.set(offset, table);
    } else {
      if (offset % this.cluster !== 0 || offset + this.cluster > this.fileEnd) throw new Error(`L1 entry ${l1i} points outside the image`);
      table = await readTable(this.fh, offset, this.l2Entries);
      this.cacheL2(offset, table);
    }
    return { table, offset, index };
  }

  private cacheL2(offset: number, table: BigUint64Array): void {
    this.l2Cache.set(offset, table);
    if (this.l2Cache.size > 512) this.l2Cache.delete(this.l2Cache.keys().next().value!);
  }

  private async setL2Entry(pos: number, e: bigint): Promise<void> {
    const t = (await this.l2Table(pos, true))!;
    t.table[t.index] = e;
    await writeU64(this.fh, t.offset + 8 * t.index, e);
  }

  // A new host cluster at the end of the file (its refcount is the caller's to set).
  private async allocate(): Promise<number> {
    const at = this.fileEnd;
    this.fileEnd += this.cluster;
    return at;
  }

  private refPlace(host: number): { ti: number; bi: number } {
    const c = Math.floor(host / this.cluster);
    const perBlock = this.cluster / 2;
    return { ti: Math.floor(c / perBlock), bi: c % perBlock };
  }

  private async refBlock(ti: number, create: boolean): Promise<{ block: Uint16Array; offset: number } | undefined> {
    if (ti >= this.refTable.length) {
      if (!create) return undefined;
      await this.growRefTable(ti);
    }
    let offset = Number(this.refTable[ti]! & REFT_OFFSET_MASK);
    if (offset === 0) {
      if (!create) return undefined;
      // A new refcount block; it counts itself if it lies in its own range, else its count goes
      // into the block that covers it.
      offset = await this.allocate();
      const block = new Uint16Array(this.cluster / 2);
      await writeFull(this.fh, new Uint8Array(this.cluster), offset);
      this.refBlocks.set(offset, block);
      this.refTable[ti] = BigInt(offset);
      await writeU64(this.fh, this.h.refTableOffset + 8 * ti, BigInt(offset));
      await this.setRefcount(offset, 1);
      return { block, offset };
    }
    let block = this.refBlocks.get(offset);
    if (!block) {
      const raw = Buffer.alloc(this.cluster);
      await readFull(this.fh, raw, offset);
      block = new Uint16Array(this.cluster / 2);
      for (let i = 0; i < block.length; i++) block[i] = raw.readUInt16BE(2 * i);
      this.refBlocks.set(offset, block);
    }
    return { block, offset };
  }

  // The refcount table grows when a cluster beyond what it covers is counted (small clusters,
  // a large disk). The larger table, and the refcount blocks that its own clusters need, go past
  // the end of the file, counted; they reach stable storage before the header is pointed at them
  // in one write; then the old table's clusters are freed. Until that write the old table is the
  // image's: a crash leaves only clusters no table refers to, which qemu-img check reports as
  // leaked, never a cluster in use with a count too low.
  private async growRefTable(needTi: number): Promise<void> {
    const cluster = this.cluster;
    const perBlock = cluster / 2;
    const oldLen = this.refTable.length;
    const first = this.fileEnd / cluster; // the first new cluster
    let tableClusters = Math.max(2 * this.h.refTableClusters, Math.ceil(((needTi + 1) * 8) / cluster));
    let blocks: number[] = []; // the table index of each new block, in the clusters after the table
    for (;;) {
      const end = first + tableClusters + blocks.length;
      const lastTi = Math.floor((end - 1) / perBlock);
      if (lastTi >= (tableClusters * cluster) / 8) {
        tableClusters = Math.ceil(((lastTi + 1) * 8) / cluster);
        continue;
      }
      const need: number[] = [];
      for (let ti = Math.floor(first / perBlock); ti <= lastTi; ti++) {
        if (ti >= oldLen || (this.refTable[ti]! & REFT_OFFSET_MASK) === 0n) need.push(ti);
      }
      const settled = need.length === blocks.length;
      blocks = need;
      if (settled) break;
    }
    const table = new BigUint64Array((tableClusters * cluster) / 8);
    table.set(this.refTable);
    const fresh = new Map<number, { offset: number; block: Uint16Array }>();
    blocks.forEach((ti, i) => {
      const offset = (first + tableClusters + i) * cluster;
      table[ti] = BigInt(offset);
      fresh.set(ti, { offset, block: new Uint16Array(perBlock) });
    });
    const total = tableClusters + blocks.length;
    for (let c = first; c < first + total; c++) {
      const ti = Math.floor(c / perBlock);
      const f = fresh.get(ti);
      if (f) f.block[c % perBlock] = 1;
      else await this.setRefcount(c * cluster, 1); // a block the old table has
    }
    this.fileEnd = (first + total) * cluster;
    for (const { offset, block } of fresh.values()) {
      const raw = Buffer.alloc(cluster);
      block.forEach((n, i) => raw.writeUInt16BE(n, 2 * i));
      await writeFull(this.fh, raw, offset);
    }
    const raw = Buffer.alloc(tableClusters * cluster);
    table.forEach((e, i) => raw.writeBigUInt64BE(e, 8 * i));
    await writeFull(this.fh, raw, first * cluster);
    await this.fh.sync();
    const hdr = Buffer.alloc(12); // refcount_table_offset (u64 at 48), refcount_table_clusters (u32 at 56)
    hdr.writeBigUInt64BE(BigInt(first * cluster), 0);
    hdr.writeUInt32BE(tableClusters, 8);
    await writeFull(this.fh, hdr, 48);
    const old = { offset: this.h.refTableOffset, clusters: this.h.refTableClusters };
    this.refTable = table;
    this.h.refTableOffset = first * cluster;
    this.h.refTableClusters = tableClusters;
    for (const { offset, block } of fresh.values()) this.refBlocks.set(offset, block);
    for (let i = 0; i < old.clusters; i++) await this.setRefcount(old.offset + i * cluster, 0);
    this.refTableGrowths++;
  }

  private async refcount(host: number): Promise<number> {
    const { ti, bi } = this.refPlace(host);
    const b = await this.refBlock(ti, false);
    return b ? b.block[bi]! : 0;
  }

  private async setRefcount(host: number, n: number): Promise<void> {
    const { ti, bi } = this.refPlace(host);
    const b = (await this.refBlock(ti, true))!;
    b.block[bi] = n;
    const two = Buffer.alloc(2);
    two.writeUInt16BE(n);
    await writeFull(this.fh, two, b.offset + 2 * bi);
  }

  async info(): Promise<Qcow2Info> {
    return inspect(this.path, this.h, this.fileEnd, this.l1.length, async () => this.countAllocated());
  }

  private async countAllocated(): Promise<number> {
    let n = 0;
    for (let i = 0; i < this.l1.length; i++) {
      const off = Number(this.l1[i]! & L1E_OFFSET_MASK);
      if (off === 0) continue;
      const t = this.l2Cache.get(off) ?? (await readTable(this.fh, off, this.l2Entries));
      for (const e of t) if ((e & L2E_OFFSET_MASK) !== 0n || (e & OFLAG_COMPRESSED) !== 0n) n++;
    }
    return n;
  }
}

function inspect(path: string, h: Header, fileSize: number, _l1: number, allocated: () => Promise<number>): Promise<Qcow2Info> {
  return allocated().then((n) => ({
    format: "qcow2",
    version: h.version,
    virtualSize: h.size,
    clusterSize: 2 ** h.clusterBits,
    backingFile: h.backingFile,
    backingPath: h.backingFile === undefined ? undefined : isAbsolute(h.backingFile) ? h.backingFile : resolve(dirname(path), h.backingFile),
    backingFormat: h.backingFormat,
    fileSize,
    allocatedClusters: n,
    snapshots: h.snapshots,
    dirty: (h.incompatible & INCOMPAT_DIRTY) !== 0n,
  }));
}

// The header's facts without opening for I/O (for `disk info` and `disk ls`).
export async function qcow2Info(path: string): Promise<Qcow2Info> {
  const fh = await open(path, "r");
  try {
    const size = (await fh.stat()).size;
    const first = Buffer.alloc(Math.min(size, 1 << 21));
    await fh.read(first, 0, first.length, 0);
    const h = parseHeader(path, first);
    const cluster = 2 ** h.clusterBits;
    const l1 = await readTable(fh, h.l1Offset, h.l1Size);
    return await inspect(path, h, size, l1.length, async () => {
      let n = 0;
      for (const l1e of l1) {
        const off = Number(l1e & L1E_OFFSET_MASK);
        if (off === 0 || off + cluster > size) continue;
        for (const e of await readTable(fh, off, cluster / 8)) if ((e & L2E_OFFSET_MASK) !== 0n || (e & OFLAG_COMPRESSED) !== 0n) n++;
      }
      return n;
    });
  } finally {
    await fh.close();
  }
}

export interface CreateOptions {
  sizeBytes: number;
  clusterBits?: number;
  backingFile?: string; // written as given (relative to the new image's directory, or absolute)
  backingFormat?: "raw" | "qcow2";
}

// Writes a new, empty qcow2 v3 image: header (and the backing file's name and format) in cluster
// 0, the refcount table in cluster 1, the first refcount block in cluster 2, the L1 table after.
export async function createQcow2(path: string, o: CreateOptions): Promise<void> {
  const bits = o.clusterBits ?? 16;
  const cluster = 2 ** bits;
  if (!Number.isSafeInteger(o.sizeBytes) || o.sizeBytes <= 0 || o.sizeBytes % 512 !== 0) throw new UserError(`disk size must be a positive whole number of 512-byte sectors (got ${o.sizeBytes} bytes)`);
  const l2Entries = cluster / 8;
  const l1Size = Math.ceil(o.sizeBytes / (cluster * l2Entries));
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / cluster));
  const refTableOffset = cluster;
  const refBlockOffset = 2 * cluster;
  const l1Offset = 3 * cluster;
  const metaClusters = 3 + l1Clusters;
  const header = Buffer.alloc(cluster);
  header.writeUInt32BE(QCOW2_MAGIC, 0);
  header.writeUInt32BE(3, 4);
  header.writeUInt32BE(bits, 20);
  header.writeBigUInt64BE(BigInt(o.sizeBytes), 24);
  header.writeUInt32BE(0, 32);
  header.writeUInt32BE(l1Size, 36);
  header.writeBigUInt64BE(BigInt(l1Offset), 40);
  header.writeBigUInt64BE(BigInt(refTableOffset), 48);
  header.writeUInt32BE(1, 56);
  header.writeUInt32BE(0, 60);
  header.writeBigUInt64BE(0n, 64);
  header.writeBigUInt64BE(0n, 72); // incompatible
  header.writeBigUInt64BE(0n, 80); // compatible
  header.writeBigUInt64BE(0n, 88); // autoclear
  header.writeUInt32BE(4, 96); // refcount_order: 16 bits
  header.writeUInt32BE(HEADER_V3_BYTES, 100);
  header[104] = 0; // compression type: zlib
  let at = HEADER_V3_BYTES;
  const ext = (type: number, data: Buffer): void => {
    header.writeUInt32BE(type, at);
    header.writeUInt32BE(data.length, at + 4);
    data.copy(header, at + 8);
    at += 8 + Math.ceil(data.length / 8) * 8;
  };
  if (o.backingFile !== undefined) ext(EXT_BACKING_FORMAT, Buffer.from(o.backingFormat ?? "raw"));
  // The names of the incompatible features QEMU knows, for a reader that finds one set.
  const names = Buffer.alloc(48 * 3);
  [[0, 0, "dirty bit"], [0, 1, "corrupt bit"], [0, 3, "compression type"]].forEach(([type, b, name], i) => {
    names[48 * i] = type as number;
    names[48 * i + 1] = b as number;
    names.write(name as string, 48 * i + 2, "utf8");
  });
  ext(EXT_FEATURE_NAMES, names);
  header.writeUInt32BE(EXT_END, at);
  header.writeUInt32BE(0, at + 4);
  at += 8;
  if (o.backingFile !== undefined) {
    const name = Buffer.from(o.backingFile, "utf8");
    if (name.length > 1023) throw new UserError("backing file name is longer than 1023 bytes");
    header.writeBigUInt64BE(BigInt(at), 8);
    header.writeUInt32BE(name.length, 16);
    name.copy(header, at);
  }
  const refTable = Buffer.alloc(cluster);
  refTable.writeBigUInt64BE(BigInt(refBlockOffset), 0);
  const refBlock = Buffer.alloc(cluster);
  for (let i = 0; i < metaClusters; i++) refBlock.writeUInt16BE(1, 2 * i);
  const fh = await open(path, "wx", 0o644).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(e.code === "EEXIST" ? `${path} already exists` : `cannot create ${path}: ${e.message}`);
  });
  try {
    await writeFull(fh, header, 0);
    await writeFull(fh, refTable, refTableOffset);
    await writeFull(fh, refBlock, refBlockOffset);
    await writeFull(fh, new Uint8Array(l1Clusters * cluster), l1Offset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readTable(fh: FileHandle, offset: number, entries: number): Promise<BigUint64Array> {
  const raw = Buffer.alloc(entries * 8);
  await readFull(fh, raw, offset);
  const out = new BigUint64Array(entries);
  for (let i = 0; i < entries; i++) out[i] = raw.readBigUInt64BE(8 * i);
  return out;
}

async function readFull(fh: FileHandle, into: Uint8Array, pos: number): Promise<void> {
  let at = 0;
  while (at < into.length) {
    const { bytesRead } = await fh.read(into, at, into.length - at, pos + at);
    if (bytesRead === 0) {
      into.fill(0, at); // past the file's end: an allocated but never written tail reads as zeros
      return;
    }
    at += bytesRead;
  }
}

async function writeFull(fh: FileHandle, data: Uint8Array, pos: number): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const { bytesWritten } = await fh.write(data, at, data.length - at, pos + at);
    at += bytesWritten;
  }
}

async function writeU64(fh: FileHandle, pos: number, v: bigint): Promise<void> {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  await writeFull(fh, b, pos);
}
