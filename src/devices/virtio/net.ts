// virtio-net (virtio 1.2 section 5.1), one queue pair, no offloads: the guest computes its own
// checksums and sends frames of at most one MTU, which keeps the host's side a plain Ethernet
// port. receiveq1 (0) holds buffers the driver posts for frames to it, transmitq1 (1) frames it
// sends. Every buffer starts with struct virtio_net_hdr (12 bytes with VERSION_1, 5.1.6): the
// device skips it on transmit and writes a zero header (num_buffers = 1) on receive.
//
// The other end is a NetPort (src/host/net): a switch port, later NAT. Frames that arrive while
// the guest has posted no buffers wait in a bounded backlog; beyond it they are dropped and
// counted, as a NIC's full ring would drop them, so a guest that stops reading costs the host
// a bounded amount of memory.
import { VirtioDevice, bit, VIRTIO_ID_NET } from "./device.js";

const VIRTIO_NET_F_MTU = 3;
const VIRTIO_NET_F_MAC = 5;
const VIRTIO_NET_F_STATUS = 16;
const VIRTIO_NET_S_LINK_UP = 1;

const RECEIVEQ = 0;
const TRANSMITQ = 1;
const HDR_BYTES = 12;
export const MTU = 1500;
// An Ethernet frame without FCS: header, MTU, one VLAN tag.
export const MAX_FRAME = 14 + MTU + 4;
const BACKLOG_FRAMES = 256;

// What a NIC is plugged into. Frames are whole Ethernet frames (destination MAC first, no FCS).
export interface NetPort {
  // The guest sent a frame.
  send(frame: Uint8Array): void;
  // Frames for the guest: the port calls this once the NIC is attached.
  attach(deliver: (frame: Uint8Array) => void): void;
  detach(): void;
}

export interface NetCounters {
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  rxDropped: number; // no room: the guest posted no buffers and the backlog was full
  txErrors: number; // frames too short or too long
}

export class VirtioNet extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_NET;
  readonly queueMax = [256, 256];
  readonly features = bit(VIRTIO_NET_F_MAC) | bit(VIRTIO_NET_F_STATUS) | bit(VIRTIO_NET_F_MTU);
  // struct virtio_net_config: mac[6], status, max_virtqueue_pairs, mtu.
  readonly config = new Uint8Array(12);
  private backlog: Uint8Array[] = [];
  readonly stats: NetCounters = { txFrames: 0, txBytes: 0, rxFrames: 0, rxBytes: 0, rxDropped: 0, txErrors: 0 };

  constructor(readonly name: string, readonly mac: Uint8Array, private readonly port: NetPort) {
    super();
    this.config.set(mac, 0);
    const v = new DataView(this.config.buffer);
    v.setUint16(6, VIRTIO_NET_S_LINK_UP, true);
    v.setUint16(8, 1, true);
    v.setUint16(10, MTU, true);
    port.attach((f) => this.receive(f));
  }

  override counters(): Record<string, number> {
    return { ...this.stats };
  }

  notify(q: number): void {
    if (q === TRANSMITQ) this.transmit();
    else if (q === RECEIVEQ) this.deliver();
  }

  private transmit(): void {
    this.serveQueue(TRANSMITQ, (vq, c) => {
      const len = c.readBytes - HDR_BYTES;
      if (len < 14 || len > MAX_FRAME) {
        this.stats.txErrors++;
        return 0;
      }
      const frame = vq.readAll(c).subarray(HDR_BYTES);
      this.stats.txFrames++;
      this.stats.txBytes += frame.length;
      this.port.send(frame);
      return 0;
    });
  }

  // A frame for the guest, from the port (a receive ring the driver broke fails the device here,
  // not in the sender's call).
  receive(frame: Uint8Array): void {
    if (this.backlog.length >= BACKLOG_FRAMES) {
      this.stats.rxDropped++;
      return;
    }
    this.backlog.push(frame);
    this.fromHost(() => this.deliver());
  }

  private deliver(): void {
    this.serveQueue(RECEIVEQ, (vq, c) => {
      const frame = this.backlog.shift()!;
      if (c.writeBytes < HDR_BYTES + frame.length) {
        // A buffer too small for the frame (the driver must post at least one MTU's worth).
        this.stats.rxDropped++;
        return 0;
      }
      const out = new Uint8Array(HDR_BYTES + frame.length);
      new DataView(out.buffer).setUint16(10, 1, true); // num_buffers
      out.set(frame, HDR_BYTES);
      vq.writeAll(c, out);
      this.stats.rxFrames++;
      this.stats.rxBytes += frame.length;
      return out.length;
    }, () => this.backlog.length > 0);
  }

  override reset(): void {
    super.reset();
    this.backlog = [];
  }

  override async close(): Promise<void> {
    this.port.detach();
  }
}
