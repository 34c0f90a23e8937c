// virtio-console (virtio 1.2 section 5.3), one port (no MULTIPORT): receiveq0 carries bytes from
// the host to the guest (/dev/hvc0), transmitq0 from the guest to the host. Where the 16550
// takes an MMIO exit per byte, the guest hands this device a whole buffer per notification: the
// counters show bytes per exit for both.
import { VirtioDevice, VIRTIO_ID_CONSOLE } from "./device.js";
import { VirtioError } from "./queue.js";

const RECEIVEQ = 0;
const TRANSMITQ = 1;
// Host input waiting for the guest to post buffers; beyond it the guest is not reading: drop.
const INPUT_MAX = 1 << 20;

export class VirtioConsole extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_CONSOLE;
  readonly name = "virtio-console";
  readonly queueMax = [64, 64];
  readonly features = 0n;
  // struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr (unused without features).
  readonly config = new Uint8Array(12);
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  readonly stats = { bytesIn: 0, bytesOut: 0, dropped: 0 };

  constructor(private readonly out: (bytes: Uint8Array) => void) {
    super();
  }

  // Bytes typed at the host's end of the console.
  input(bytes: Uint8Array): void {
    if (this.pendingBytes + bytes.length > INPUT_MAX) {
      this.stats.dropped += bytes.length;
      return;
    }
    this.pending.push(bytes.slice());
    this.pendingBytes += bytes.length;
    // The host calls this, not the transport: a protocol error found in the receive queue must
    // fail the device here, not reach the host's input handler.
    const host = this.host;
    try {
      this.deliver();
    } catch (e) {
      if (!(e instanceof VirtioError)) throw e;
      host?.fail(e.message);
    }
  }

  notify(q: number): void {
    if (q === RECEIVEQ) this.deliver();
    else if (q === TRANSMITQ) this.transmit();
  }

  private transmit(): void {
    const host = this.host;
    const vq = host?.queue(TRANSMITQ);
    if (!host || !vq) return;
    let any = false;
    for (let c = vq.pop(); c; c = vq.pop()) {
      const bytes = vq.readAll(c);
      this.stats.bytesOut += bytes.length;
      if (bytes.length > 0) this.out(bytes);
      vq.push(c.head, 0);
      any = true;
    }
    if (any) host.usedBuffers(TRANSMITQ);
  }

  private deliver(): void {
    const host = this.host;
    const vq = host?.queue(RECEIVEQ);
    if (!host || !vq || this.pendingBytes === 0) return;
    let any = false;
    while (this.pendingBytes > 0) {
      const c = vq.pop();
      if (!c) break;
      const data = this.take(c.writeBytes);
      const n = vq.writeAll(c, data);
      this.stats.bytesIn += n;
      vq.push(c.head, n);
      any = true;
    }
    if (any) host.usedBuffers(RECEIVEQ);
  }

  // Up to n bytes of pending input, oldest first.
  private take(n: number): Uint8Array {
    const out = new Uint8Array(Math.min(n, this.pendingBytes));
    let at = 0;
    while (at < out.length) {
      const head = this.pending[0]!;
      const k = Math.min(head.length, out.length - at);
      out.set(head.subarray(0, k), at);
      at += k;
      if (k === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(k);
    }
    this.pendingBytes -= out.length;
    return out;
  }

  override counters(): Record<string, number> {
    return { ...this.stats };
  }
}
