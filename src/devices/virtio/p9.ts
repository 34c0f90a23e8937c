// virtio-9p: the 9P transport over virtio (one request queue; each chain is a T-message in its
// readable buffers and room for the R-message in its writable ones). The device config is the
// mount tag (VIRTIO_9P_MOUNT_TAG): the guest mounts it with
// `mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt`. The server behind it (src/host/share.ts)
// is asynchronous, so requests complete out of order, each with its own used-ring entry.
import { VirtioDevice, bit } from "./device.js";
import { VirtioError } from "./queue.js";

export const VIRTIO_ID_9P = 9;
const VIRTIO_9P_MOUNT_TAG = 0;
const MAX_REQUEST = 1 << 20;

// The server's side: one request's bytes in, the reply's bytes out (at most `max`).
export interface P9Server {
  readonly tag: string;
  handle(request: Buffer, max: number): Promise<Buffer>;
  close(): Promise<void>;
}

export class Virtio9p extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_9P;
  readonly queueMax = [128];
  readonly features = bit(VIRTIO_9P_MOUNT_TAG);
  readonly config: Uint8Array;
  readonly name: string;

  constructor(private readonly server: P9Server) {
    super();
    const tag = Buffer.from(server.tag, "utf8");
    if (tag.length === 0 || tag.length > 64) throw new RangeError(`9p mount tag "${server.tag}" must be 1 to 64 bytes`);
    this.config = new Uint8Array(2 + tag.length);
    new DataView(this.config.buffer).setUint16(0, tag.length, true);
    this.config.set(tag, 2);
    this.name = `virtio-9p ${server.tag}`;
  }

  notify(q: number): void {
    const host = this.host;
    const vq = host?.queue(q);
    if (!host || !vq) return;
    for (let c = vq.pop(); c; c = vq.pop()) {
      const chain = c;
      if (chain.readBytes < 7 || chain.readBytes > MAX_REQUEST || chain.writeBytes < 7) throw new VirtioError(`9p request of ${chain.readBytes} bytes with ${chain.writeBytes} bytes for the reply`);
      const req = Buffer.from(vq.readAll(chain));
      const gen = host.generation;
      void this.server.handle(req, Math.min(chain.writeBytes, MAX_REQUEST)).then((reply) => {
        if (this.host !== host || host.generation !== gen) return;
        const now = host.queue(q);
        if (now !== vq) return;
        try {
          now.push(chain.head, now.writeAll(chain, reply));
          host.usedBuffers(q);
        } catch (e) {
          if (!(e instanceof VirtioError)) throw e;
          host.fail(e.message);
        }
      });
    }
  }

  override async close(): Promise<void> {
    await this.server.close();
  }
}
