// virtio-blk (virtio 1.2 section 5.2): one request queue; each request is a chain of a 16-byte
// header (struct virtio_blk_req: type, reserved, sector), data buffers, and a one-byte status the
// device writes last. The backend (a raw or qcow2 image, src/host/disks) is asynchronous: a
// request's I/O runs on libuv's thread pool while the guest goes on, and its completion is an
// interrupt. So a slow disk never stalls a physical CPU, and the guest can have many requests in
// flight.
//
// Data moves straight between the image file and guest frames when the backend can do vectored
// I/O (raw images: preadv/pwritev into views of the guest's frames, no copy on the host). The
// buffers are resolved through the p2m when the request starts, and their frames are pinned
// (GuestDma.pin) until the I/O is done: a guest that balloons the page meanwhile, or a VM
// destroyed meanwhile, does not get the frame back into the host's pool before then, so a late
// transfer only ever touches this VM's own frames. A request that completes after a reset lands
// its data in the guest's buffer but is not answered. Other backends (qcow2) go through bounce
// buffers, copied into the guest at completion.
//
// Flushes are honest (5.2.6.2 VIRTIO_BLK_T_FLUSH): the device waits for every write completed
// before it, then the backend's flush, which reaches stable storage (fsync), before it answers.
import { VirtioDevice, bit, VIRTIO_ID_BLOCK, type DeviceHost } from "./device.js";
import { VirtioError, type Chain } from "./queue.js";
import type { GuestDma, Piece } from "./dma.js";

// Feature bits (5.2.3).
const VIRTIO_BLK_F_SIZE_MAX = 1;
const VIRTIO_BLK_F_SEG_MAX = 2;
const VIRTIO_BLK_F_RO = 5;
const VIRTIO_BLK_F_BLK_SIZE = 6;
const VIRTIO_BLK_F_FLUSH = 9;

// Request types and status (5.2.6).
const VIRTIO_BLK_T_IN = 0;
const VIRTIO_BLK_T_OUT = 1;
const VIRTIO_BLK_T_FLUSH = 4;
const VIRTIO_BLK_T_GET_ID = 8;
const VIRTIO_BLK_S_OK = 0;
const VIRTIO_BLK_S_IOERR = 1;
const VIRTIO_BLK_S_UNSUPP = 2;

export const SECTOR = 512;
const QUEUE_SIZE = 256;
const SEG_MAX = 126;
const SIZE_MAX = 1 << 20; // bytes per segment
const ID_BYTES = 20; // VIRTIO_BLK_ID_BYTES
// One request's data: SEG_MAX segments of SIZE_MAX at most, which Linux never comes near.
const MAX_REQUEST = 8 << 20;

// What a disk image gives the device. Offsets and lengths are in bytes, whole sectors.
export interface BlockBackend {
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  read(offset: number, into: Uint8Array): Promise<void>;
  write(offset: number, data: Uint8Array): Promise<void>;
  // Vectored forms, if the backend has them: the buffers are views of guest frames.
  readv?(offset: number, into: Uint8Array[]): Promise<void>;
  writev?(offset: number, data: Uint8Array[]): Promise<void>;
  // Everything written so far reaches stable storage.
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface BlkCounters {
  reads: number;
  writes: number;
  flushes: number;
  bytesRead: number;
  bytesWritten: number;
  errors: number; // requests answered IOERR or UNSUPP
  inFlightMax: number;
}

export class VirtioBlk extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly queueMax = [QUEUE_SIZE];
  readonly features: bigint;
  readonly config = new Uint8Array(60);
  private inFlight = 0;
  private writesInFlight = new Set<Promise<unknown>>();
  readonly stats: BlkCounters = { reads: 0, writes: 0, flushes: 0, bytesRead: 0, bytesWritten: 0, errors: 0, inFlightMax: 0 };

  constructor(readonly name: string, private readonly backend: BlockBackend, private readonly serial: string) {
    super();
    this.features = bit(VIRTIO_BLK_F_SIZE_MAX) | bit(VIRTIO_BLK_F_SEG_MAX) | bit(VIRTIO_BLK_F_BLK_SIZE) | bit(VIRTIO_BLK_F_FLUSH) | (backend.readOnly ? bit(VIRTIO_BLK_F_RO) : 0n);
    // struct virtio_blk_config (5.2.4): capacity (sectors), size_max, seg_max, geometry, blk_size.
    const v = new DataView(this.config.buffer);
    v.setBigUint64(0, BigInt(Math.floor(backend.sizeBytes / SECTOR)), true);
    v.setUint32(8, SIZE_MAX, true);
    v.setUint32(12, SEG_MAX, true);
    v.setUint32(20, SECTOR, true);
  }

  override counters(): Record<string, number> {
    return { ...this.stats };
  }

  notify(q: number): void {
    const host = this.host;
    const vq = host?.queue(q);
    if (!host || !vq) return;
    for (let c = vq.pop(); c; c = vq.pop()) this.start(host, q, c);
  }

  private start(host: DeviceHost, q: number, c: Chain): void {
    const vq = host.queue(q)!;
    // The header is 16 readable bytes, the status the last writable byte (5.2.6).
    if (c.readBytes < 16 || c.writeBytes < 1) throw new VirtioError(`block request ${c.head} has ${c.readBytes} readable and ${c.writeBytes} writable bytes: no room for its header and status`);
    const hdr = new DataView(vq.readAll(c, 16).buffer);
    const type = hdr.getUint32(0, true);
    const sector = hdr.getBigUint64(8, true);
    const dataIn = c.writeBytes - 1; // device-writable data before the status byte
    const dataOut = c.readBytes - 16;
    const gen = host.generation;
    let work: Promise<{ status: number; written: number; data?: Uint8Array }>;
    const direct = (which: "readable" | "writable", skip: number, len: number): Piece[] | undefined =>
      this.range(sector, len) !== undefined && len > 0 && len <= MAX_REQUEST ? vq.pieces(c, which, skip, len) : undefined;
    switch (type) {
      case VIRTIO_BLK_T_IN: {
        const pieces = this.backend.readv ? direct("writable", 0, dataIn) : undefined;
        work = pieces ? this.pinned(host.dma, pieces, () => this.readInto(sector, dataIn, host.dma, pieces)) : this.read(sector, dataIn);
        break;
      }
      case VIRTIO_BLK_T_OUT: {
        const pieces = this.backend.writev && !this.backend.readOnly ? direct("readable", 16, dataOut) : undefined;
        if (pieces) {
          work = this.pinned(host.dma, pieces, () => this.write(sector, host.dma.views(pieces), dataOut));
          break;
        }
        const data = dataOut > 0 && dataOut <= MAX_REQUEST ? vq.readAll(c).subarray(16) : undefined;
        work = this.write(sector, data && [data], dataOut);
        break;
      }
      case VIRTIO_BLK_T_FLUSH:
        work = this.flush();
        break;
      case VIRTIO_BLK_T_GET_ID: {
        const id = new Uint8Array(ID_BYTES);
        id.set(new TextEncoder().encode(this.serial).subarray(0, ID_BYTES));
        work = Promise.resolve({ status: VIRTIO_BLK_S_OK, written: Math.min(ID_BYTES, dataIn), data: id.subarray(0, Math.min(ID_BYTES, dataIn)) });
        break;
      }
      default:
        work = Promise.resolve({ status: VIRTIO_BLK_S_UNSUPP, written: 0 });
    }
    this.inFlight++;
    if (this.inFlight > this.stats.inFlightMax) this.stats.inFlightMax = this.inFlight;
    void work.then((r) => {
      this.inFlight--;
      // The device was reset, failed or closed meanwhile: the chain is no longer ours to answer.
      if (this.host !== host || host.generation !== gen) return;
      // So was the queue, if the driver disabled it (QueueReady = 0), even if it set it up again.
      const vqNow = host.queue(q);
      if (vqNow !== vq) return;
      if (r.status !== VIRTIO_BLK_S_OK) this.stats.errors++;
      try {
        const written = r.data ? vqNow.writeAll(c, r.data) : r.written;
        const status = new Uint8Array([r.status]);
        vqNow.writeAll(c, status, c.writeBytes - 1);
        vqNow.push(c.head, written + 1);
        host.usedBuffers(q);
      } catch (e) {
        if (!(e instanceof VirtioError)) throw e;
        host.fail(e.message);
      }
    });
  }

  // Bytes at `sector` that lie inside the disk, or undefined.
  private range(sector: bigint, len: number): number | undefined {
    const off = Number(sector) * SECTOR;
    if (sector > BigInt(Number.MAX_SAFE_INTEGER) / BigInt(SECTOR) || len % SECTOR !== 0 || off + len > this.backend.sizeBytes) return undefined;
    return off;
  }

  private async read(sector: bigint, len: number): Promise<{ status: number; written: number; data?: Uint8Array }> {
    const off = this.range(sector, len);
    if (off === undefined || len > MAX_REQUEST) return { status: VIRTIO_BLK_S_IOERR, written: 0 };
    const buf = new Uint8Array(len);
    try {
      await this.backend.read(off, buf);
    } catch {
      return { status: VIRTIO_BLK_S_IOERR, written: 0 };
    }
    this.stats.reads++;
    this.stats.bytesRead += len;
    return { status: VIRTIO_BLK_S_OK, written: len, data: buf };
  }

  // Straight into the guest's frames (pinned by the caller).
  private async readInto(sector: bigint, len: number, dma: GuestDma, pieces: Piece[]): Promise<{ status: number; written: number }> {
    try {
      await this.backend.readv!(this.range(sector, len)!, dma.views(pieces));
    } catch {
      return { status: VIRTIO_BLK_S_IOERR, written: 0 };
    } finally {
      dma.landed(pieces);
    }
    this.stats.reads++;
    this.stats.bytesRead += len;
    return { status: VIRTIO_BLK_S_OK, written: len };
  }

  // Runs io with the frames of `pieces` pinned until it has finished.
  private async pinned<T>(dma: GuestDma, pieces: Piece[], io: () => Promise<T>): Promise<T> {
    const unpin = dma.pin(pieces);
    try {
      return await io();
    } finally {
      unpin();
    }
  }

  // `data`: one bounce buffer, or views of the guest's frames (pinned by the caller).
  private async write(sector: bigint, data: Uint8Array[] | undefined, len: number): Promise<{ status: number; written: number }> {
    const off = this.range(sector, len);
    if (this.backend.readOnly || off === undefined || !data) return { status: VIRTIO_BLK_S_IOERR, written: 0 };
    const p = data.length === 1 ? this.backend.write(off, data[0]!) : this.backend.writev!(off, data);
    this.writesInFlight.add(p);
    try {
      await p;
    } catch {
      return { status: VIRTIO_BLK_S_IOERR, written: 0 };
    } finally {
      this.writesInFlight.delete(p);
    }
    this.stats.writes++;
    this.stats.bytesWritten += len;
    return { status: VIRTIO_BLK_S_OK, written: 0 };
  }

  // Every write the driver has seen completed was awaited already; writes still in flight when
  // the flush arrives are waited for too (Linux does not rely on it, but a flush after them is
  // what a reader of "flush" expects).
  private async flush(): Promise<{ status: number; written: number }> {
    try {
      await Promise.allSettled([...this.writesInFlight]);
      await this.backend.flush();
    } catch {
      return { status: VIRTIO_BLK_S_IOERR, written: 0 };
    }
    this.stats.flushes++;
    return { status: VIRTIO_BLK_S_OK, written: 0 };
  }

  override async close(): Promise<void> {
    this.host = undefined;
    await Promise.allSettled([...this.writesInFlight]);
    await this.backend.close();
  }
}
