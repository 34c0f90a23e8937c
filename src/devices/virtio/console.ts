// virtio-console (virtio 1.2 section 5.3), one port (no MULTIPORT): receiveq0 carries bytes from
// the host to the guest (/dev/hvc0), transmitq0 from the guest to the host. Where the 16550
// takes an MMIO exit per byte, the guest hands this device a whole buffer per notification: the
// counters show bytes per exit for both.
import { VirtioDevice, VIRTIO_ID_CONSOLE } from "./device.js";

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
    this.fromHost(() => this.deliver());
  }

  notify(q: number): void {
    if (q === RECEIVEQ) this.deliver();
    else if (q === TRANSMITQ) this.transmit();
  }

  private transmit(): void {
    this.serveQueue(TRANSMITQ, (vq, c) => {
      const bytes = vq.readAll(c);
      this.stats.bytesOut += bytes.length;
      if (bytes.length > 0) this.out(bytes);
      return 0;
    });
  }

  private deliver(): void {
    this.serveQueue(RECEIVEQ, (vq, c) => {
      const n = vq.writeAll(c, this.take(c.writeBytes));
      this.stats.bytesIn += n;
      return n;
    }, () => this.pendingBytes > 0);
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
