// virtio-vsock (virtio 1.2 section 5.10): stream sockets between the host (CID 2) and the
// guest (its CID, 3 here) with no network in between. Each packet is a struct
// virtio_vsock_hdr (44 bytes, little-endian) followed by its payload; rx (0) carries packets to
// the guest in buffers the driver posts, tx (1) packets from it, and the event queue (2) is only
// for transport resets, which this device never needs.
//
// Flow control is by credit (5.10.6.3): each side says how much buffer space it has (buf_alloc)
// and how many bytes it has consumed (fwd_cnt); a sender keeps what is in flight within the
// peer's space. Host-side connections are made with connect(port), to a guest that listens.
// Everything is bounded: connections per device, bytes queued per connection.
import { VirtioDevice, VIRTIO_ID_VSOCK } from "./device.js";
import { VirtioError } from "./queue.js";

const RXQ = 0;
const TXQ = 1;
const HDR = 44;
export const HOST_CID = 2;
const TYPE_STREAM = 1;
const OP_REQUEST = 1;
const OP_RESPONSE = 2;
const OP_RST = 3;
const OP_SHUTDOWN = 4;
const OP_RW = 5;
const OP_CREDIT_UPDATE = 6;
const OP_CREDIT_REQUEST = 7;
const SHUTDOWN_RCV = 1;
const SHUTDOWN_SEND = 2;
// What the host side buffers for a connection (its buf_alloc), and connections at most.
const HOST_BUF = 256 << 10;
const MAX_CONNECTIONS = 64;
const MAX_PAYLOAD = 64 << 10;

interface Packet {
  srcCid: bigint;
  dstCid: bigint;
  srcPort: number;
  dstPort: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
  payload: Uint8Array;
}

// A header-only packet waiting for a receive buffer.
interface Control {
  stream: VsockStream;
  op: number;
  flags: number;
}

// One host-side stream connection to a guest port.
export class VsockStream {
  onData: ((d: Uint8Array) => void) | undefined;
  onEnd: (() => void) | undefined; // the guest will send no more
  onClose: ((reason: string) => void) | undefined;
  connected = false;
  closed = false;
  accepted: (() => void) | undefined;
  // Credit: what the guest told us, and what we have sent and consumed.
  peerBufAlloc = 0;
  peerFwdCnt = 0;
  txCnt = 0;
  fwdCnt = 0;
  readonly outbox: Uint8Array[] = [];
  outboxBytes = 0;
  endAfterOutbox = false;

  constructor(private readonly dev: VirtioVsock, readonly localPort: number, readonly guestPort: number) {}

  write(d: Uint8Array): void {
    if (this.closed) throw new Error("vsock connection is closed");
    if (d.length === 0) return;
    this.outbox.push(d.slice());
    this.outboxBytes += d.length;
    this.dev.pump();
  }

  // No more bytes from the host (SHUTDOWN with SEND once the outbox has gone).
  end(): void {
    this.endAfterOutbox = true;
    this.dev.pump();
  }

  close(): void {
    this.dev.reset1(this, "closed by the host");
  }
}

export class VirtioVsock extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_VSOCK;
  readonly name = "virtio-vsock";
  readonly queueMax = [128, 128, 16];
  readonly features = 0n;
  readonly config = new Uint8Array(8);
  private readonly conns = new Map<string, VsockStream>(); // `${hostPort}:${guestPort}`
  private readonly control: Control[] = []; // headers to send (requests, credit updates, resets)
  private nextPort = 49152;
  readonly stats = { connections: 0, packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, resets: 0 };

  constructor(readonly guestCid: number) {
    super();
    new DataView(this.config.buffer).setBigUint64(0, BigInt(guestCid), true);
  }

  override counters(): Record<string, number> {
    return { ...this.stats };
  }

  // Opens a stream to `port` in the guest; resolves when the guest accepts, rejects on RST.
  connect(port: number): Promise<VsockStream> {
    if (!this.host) return Promise.reject(new Error("the guest's vsock driver is not running"));
    if (this.conns.size >= MAX_CONNECTIONS) return Promise.reject(new Error("too many vsock connections"));
    let local = this.nextPort;
    while (this.conns.has(`${local}:${port}`)) local = local >= 65535 ? 49152 : local + 1;
    this.nextPort = local >= 65535 ? 49152 : local + 1;
    const s = new VsockStream(this, local, port);
    this.conns.set(`${local}:${port}`, s);
    this.stats.connections++;
    return new Promise((resolve, reject) => {
      s.onClose = (why) => reject(new Error(`vsock connect to guest port ${port}: ${why}`));
      s.accepted = (): void => {
        s.onClose = undefined;
        resolve(s);
      };
      this.sendControl(s, OP_REQUEST, 0);
    });
  }

  private header(s: VsockStream, op: number, flags: number, len: number): Uint8Array {
    const h = new Uint8Array(HDR + len);
    const v = new DataView(h.buffer);
    v.setBigUint64(0, BigInt(HOST_CID), true);
    v.setBigUint64(8, BigInt(this.guestCid), true);
    v.setUint32(16, s.localPort, true);
    v.setUint32(20, s.guestPort, true);
    v.setUint32(24, len, true);
    v.setUint16(28, TYPE_STREAM, true);
    v.setUint16(30, op, true);
    v.setUint32(32, flags, true);
    v.setUint32(36, HOST_BUF, true);
    v.setUint32(40, s.fwdCnt, true);
    return h;
  }

  private sendControl(s: VsockStream, op: number, flags: number): void {
    this.control.push({ stream: s, op, flags });
    this.pump();
  }

  // Sends what can go: control packets first, then data within each connection's credit.
  pump(): void {
    const host = this.host;
    const vq = host?.queue(RXQ);
    if (!host || !vq) return;
    let any = false;
    try {
      while (this.control.length > 0) {
        const c = this.control[0]!;
        const chain = vq.pop();
        if (!chain) break;
        this.control.shift();
        const pkt = this.header(c.stream, c.op, c.flags, 0);
        vq.push(chain.head, vq.writeAll(chain, pkt));
        this.stats.packetsOut++;
        any = true;
        if (c.op === OP_RST) this.conns.delete(`${c.stream.localPort}:${c.stream.guestPort}`);
      }
      for (const s of this.conns.values()) {
        if (!s.connected) continue;
        while (s.outbox.length > 0) {
          const credit = s.peerBufAlloc - (s.txCnt - s.peerFwdCnt);
          if (credit <= 0) break;
          const chain = vq.pop();
          if (!chain) return;
          const room = Math.min(chain.writeBytes - HDR, credit, MAX_PAYLOAD);
          if (room <= 0) throw new VirtioError(`vsock receive buffer of ${chain.writeBytes} bytes has no room after its header`);
          const head = s.outbox[0]!;
          const n = Math.min(room, head.length);
          const pkt = this.header(s, OP_RW, 0, n);
          pkt.set(head.subarray(0, n), HDR);
          if (n === head.length) s.outbox.shift();
          else s.outbox[0] = head.subarray(n);
          s.outboxBytes -= n;
          s.txCnt += n;
          vq.push(chain.head, vq.writeAll(chain, pkt));
          this.stats.packetsOut++;
          this.stats.bytesOut += n;
          any = true;
        }
        if (s.endAfterOutbox && s.outbox.length === 0) {
          s.endAfterOutbox = false;
          this.control.push({ stream: s, op: OP_SHUTDOWN, flags: SHUTDOWN_SEND });
        }
      }
    } finally {
      if (any) host.usedBuffers(RXQ);
    }
    if (this.control.length > 0 && vq.hasWork()) this.pump();
  }

  notify(q: number): void {
    if (q === RXQ) return this.pump();
    if (q !== TXQ) return;
    const host = this.host;
    const vq = host?.queue(TXQ);
    if (!host || !vq) return;
    let any = false;
    for (let c = vq.pop(); c; c = vq.pop()) {
      any = true;
      if (c.readBytes < HDR) throw new VirtioError(`vsock packet of ${c.readBytes} bytes is shorter than its header`);
      const raw = vq.readAll(c, HDR + MAX_PAYLOAD);
      vq.push(c.head, 0);
      this.receive(raw);
    }
    if (any) host.usedBuffers(TXQ);
    this.pump();
  }

  private receive(raw: Uint8Array): void {
    const v = new DataView(raw.buffer, raw.byteOffset, raw.length);
    const len = v.getUint32(24, true);
    const p: Packet = {
      srcCid: v.getBigUint64(0, true), dstCid: v.getBigUint64(8, true), srcPort: v.getUint32(16, true), dstPort: v.getUint32(20, true),
      op: v.getUint16(30, true), flags: v.getUint32(32, true), bufAlloc: v.getUint32(36, true), fwdCnt: v.getUint32(40, true),
      payload: raw.subarray(HDR, HDR + Math.min(len, raw.length - HDR)),
    };
    this.stats.packetsIn++;
    if (p.srcCid !== BigInt(this.guestCid) || p.dstCid !== BigInt(HOST_CID) || v.getUint16(28, true) !== TYPE_STREAM) return; // not ours: dropped
    const s = this.conns.get(`${p.dstPort}:${p.srcPort}`);
    if (!s) {
      // Nothing listens on the host side: refuse (a guest connect, or a stale connection).
      if (p.op !== OP_RST) this.control.push({ stream: new VsockStream(this, p.dstPort, p.srcPort), op: OP_RST, flags: 0 });
      return;
    }
    s.peerBufAlloc = p.bufAlloc;
    s.peerFwdCnt = p.fwdCnt;
    switch (p.op) {
      case OP_RESPONSE:
        if (!s.connected) {
          s.connected = true;
          s.accepted?.();
        }
        break;
      case OP_RW:
        this.stats.bytesIn += p.payload.length;
        s.fwdCnt += p.payload.length; // consumed as soon as it is handed on
        s.onData?.(p.payload.slice());
        // Tell the guest about the space we freed once in a while (it may also ask).
        if (s.fwdCnt % (HOST_BUF / 4) < p.payload.length) this.sendControl(s, OP_CREDIT_UPDATE, 0);
        break;
      case OP_CREDIT_REQUEST:
        this.sendControl(s, OP_CREDIT_UPDATE, 0);
        break;
      case OP_CREDIT_UPDATE:
        break;
      case OP_SHUTDOWN:
        if (p.flags & SHUTDOWN_SEND) s.onEnd?.();
        if ((p.flags & (SHUTDOWN_SEND | SHUTDOWN_RCV)) === (SHUTDOWN_SEND | SHUTDOWN_RCV)) this.reset1(s, "the guest closed it");
        break;
      case OP_RST:
        this.stats.resets++;
        this.finish(s, s.connected ? "reset by the guest" : "refused by the guest (nothing listens there)");
        break;
      case OP_REQUEST:
        this.reset1(s, "unexpected request");
        break;
      default:
        break;
    }
  }

  // Ends a connection from the host's side with RST.
  reset1(s: VsockStream, why: string): void {
    if (s.closed) return;
    this.sendControl(s, OP_RST, 0);
    this.finish(s, why);
  }

  private finish(s: VsockStream, why: string): void {
    if (s.closed) return;
    s.closed = true;
    this.conns.delete(`${s.localPort}:${s.guestPort}`);
    s.onClose?.(why);
  }

  override reset(): void {
    super.reset();
    for (const s of [...this.conns.values()]) this.finish(s, "the guest reset its vsock device");
    this.control.length = 0;
  }

  override async close(): Promise<void> {
    for (const s of [...this.conns.values()]) this.finish(s, "the VM is gone");
  }
}
