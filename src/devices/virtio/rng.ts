// virtio-rng, the entropy device (virtio 1.2 section 5.4): one queue of device-writable buffers
// that the device fills with random bytes from the host's CSPRNG.
import { randomFillSync } from "node:crypto";
import { VirtioDevice, VIRTIO_ID_ENTROPY } from "./device.js";

// Bytes given for one request at most: the guest asks again for more.
const MAX_PER_REQUEST = 64 << 10;

export class VirtioRng extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_ENTROPY;
  readonly name = "virtio-rng";
  readonly queueMax = [64];
  readonly features = 0n;
  readonly config = new Uint8Array(0);
  private bytes = 0;

  notify(q: number): void {
    this.serveQueue(q, (vq, c) => {
      const written = vq.writeAll(c, randomFillSync(new Uint8Array(Math.min(c.writeBytes, MAX_PER_REQUEST))));
      this.bytes += written;
      return written;
    });
  }

  override counters(): Record<string, number> {
    return { bytes: this.bytes };
  }
}
