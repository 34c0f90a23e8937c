// What a virtio device model is to its transport (mmio.ts): an ID, feature bits, a config space,
// queues, and handlers the transport calls when the driver notifies a queue, finishes
// initialisation (DRIVER_OK) or resets the device. Device models know nothing of MMIO.
import type { GuestDma } from "./dma.js";
import { VirtioError, type Chain, type Virtqueue, type QueueCounters } from "./queue.js";

// Device IDs (virtio 1.2 section 5).
export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;
export const VIRTIO_ID_ENTROPY = 4;
export const VIRTIO_ID_BALLOON = 5;
export const VIRTIO_ID_VSOCK = 19;

// Feature bits every device here offers (section 6): the modern interface, indirect descriptors
// and event-index notification suppression.
export const VIRTIO_F_RING_INDIRECT_DESC = 28;
export const VIRTIO_F_RING_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;

export const bit = (n: number): bigint => 1n << BigInt(n);

// What the transport gives a device once the driver has set it up.
export interface DeviceHost {
  readonly dma: GuestDma;
  // Queue q, if the driver made it ready.
  queue(q: number): Virtqueue | undefined;
  // The driver negotiated feature bit n.
  has(n: number): boolean;
  // Tell the driver about used buffers on queue q (if it wants to be told).
  usedBuffers(q: number): void;
  // The device config space changed.
  configChanged(): void;
  // The driver broke the protocol: the device goes into DEVICE_NEEDS_RESET and stops.
  fail(reason: string): void;
  // Incremented by every reset: work begun before a reset must not finish into the guest after it.
  readonly generation: number;
}

export abstract class VirtioDevice {
  abstract readonly deviceId: number;
  // For logs and counters, e.g. "virtio-blk vda".
  abstract readonly name: string;
  // Maximum size of each queue (the driver may choose smaller).
  abstract readonly queueMax: readonly number[];
  // Device-specific feature bits; the transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX.
  abstract readonly features: bigint;
  // The device configuration space (little-endian fields, section 4.2.2 offset 0x100 on).
  abstract readonly config: Uint8Array;
  protected host: DeviceHost | undefined;

  // Whether the driver may write `size` bytes at `offset` of the config space. Fields are
  // read-only unless a device says otherwise (a writable one comes with a feature, e.g. virtio-blk's
  // writeback with CONFIG_WCE, which no device here offers); a write to a read-only field is
  // ignored, or the guest could change what the device reports about itself (a disk's capacity).
  configWritable(_offset: number, _size: number): boolean {
    return false;
  }

  // The driver wrote `size` bytes at `offset` of the config space (already stored in `config`).
  configWritten(_offset: number, _size: number): void {}

  // DRIVER_OK: the queues the driver made ready may now be used.
  activate(host: DeviceHost): void {
    this.host = host;
  }

  // The driver notified queue q (QueueNotify).
  abstract notify(q: number): void;

  // The device was reset (status 0) or failed: forget every request in flight. Work already
  // handed to a backend must not write into the guest when it completes (see `generation`).
  reset(): void {
    this.host = undefined;
  }

  // Serves the chains the driver made available on queue q, one at a time while `more()` holds:
  // `serve` fills or reads a chain and returns the bytes it wrote into it (the used length).
  // One used-buffer notification for the whole batch.
  protected serveQueue(q: number, serve: (vq: Virtqueue, c: Chain) => number, more: () => boolean = () => true): void {
    const host = this.host;
    const vq = host?.queue(q);
    if (!host || !vq) return;
    let any = false;
    while (more()) {
      const c = vq.pop();
      if (!c) break;
      vq.push(c.head, serve(vq, c));
      any = true;
    }
    if (any) host.usedBuffers(q);
  }

  // Device work the host started (input typed, a frame arrived), not the transport: a protocol
  // error it finds fails the device instead of reaching the host's caller.
  protected fromHost(work: () => void): void {
    const host = this.host;
    try {
      work();
    } catch (e) {
      if (!(e instanceof VirtioError)) throw e;
      host?.fail(e.message);
    }
  }

  // Device-specific counters, for stats.
  counters(): Record<string, number> {
    return {};
  }

  // The host is done with the device (the VM is gone): close backends.
  async close(): Promise<void> {}
}

export type { QueueCounters };
