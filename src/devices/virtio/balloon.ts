// virtio-balloon, the traditional balloon (virtio 1.2 section 5.5): the host asks the guest to
// give back memory by raising num_pages in the config space; the guest's driver allocates that
// many pages inside the guest and sends their page frame numbers on the inflate queue, and the
// host takes the machine frames behind them back into its pool. Lowering num_pages makes the
// driver deflate: it sends PFNs on the deflate queue and, with VIRTIO_BALLOON_F_MUST_TELL_HOST,
// does not touch a page before the host has answered, so the host backs it with a fresh frame
// first. The statistics queue carries the guest's memory statistics (5.5.6.3): the device keeps
// the driver's buffer and returns it when it wants fresh numbers.
//
// What the frames are and how they come back is the VM's business (BalloonHost, src/vm/vm.ts):
// the device only parses requests, which come from a guest that is not trusted (a PFN outside
// RAM, a length that is not a whole number of PFNs, a page given twice: all checked there or
// here, none harmful).
import { VirtioDevice, bit, VIRTIO_ID_BALLOON } from "./device.js";
import { VirtioError, type Chain, type Virtqueue } from "./queue.js";

const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
const VIRTIO_BALLOON_F_STATS_VQ = 1;

const INFLATEQ = 0;
const DEFLATEQ = 1;
const STATSQ = 2;
// Linux sends at most 256 PFNs per buffer (VIRTIO_BALLOON_ARRAY_PFNS_MAX); allow more, bounded.
const MAX_PFNS_PER_REQUEST = 4096;

// Statistics tags (5.5.6.3), by name.
export const BALLOON_STATS = ["swapIn", "swapOut", "majorFaults", "minorFaults", "freeMemory", "totalMemory", "availableMemory", "diskCaches", "hugetlbAllocations", "hugetlbFailures"] as const;

export interface BalloonHost {
  // Take the frames behind these guest page numbers back (resolves once no vCPU can reach them).
  inflate(pfns: number[]): Promise<void>;
  // Back these guest page numbers with frames again (resolves once every vCPU sees the new ones).
  deflate(pfns: number[]): Promise<void>;
}

export class VirtioBalloon extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_BALLOON;
  readonly name = "virtio-balloon";
  readonly queueMax = [128, 128, 4];
  readonly features = bit(VIRTIO_BALLOON_F_MUST_TELL_HOST) | bit(VIRTIO_BALLOON_F_STATS_VQ);
  // struct virtio_balloon_config: num_pages (the host's target), actual (the driver's count).
  readonly config = new Uint8Array(8);
  private statsChain: Chain | undefined;
  private busy: Promise<void> = Promise.resolve();
  // The guest's last statistics, by name (bytes for the memory figures, counts for the rest).
  stats: Partial<Record<(typeof BALLOON_STATS)[number], number>> = {};
  statsAt = 0; // host clock (ms) of the last statistics
  readonly counters_ = { inflated: 0, deflated: 0, requests: 0 };

  constructor(private readonly vm: BalloonHost) {
    super();
  }

  get target(): number {
    return new DataView(this.config.buffer).getUint32(0, true);
  }

  // Pages the driver says the balloon holds.
  get actual(): number {
    return new DataView(this.config.buffer).getUint32(4, true);
  }

  // The host's wish: `pages` 4 KiB pages in the balloon. The caller tells the driver (configChanged).
  setTarget(pages: number): void {
    new DataView(this.config.buffer).setUint32(0, pages, true);
  }

  override configWritable(offset: number, size: number): boolean {
    return offset >= 4 && offset + size <= 8; // actual
  }

  override counters(): Record<string, number> {
    return { ...this.counters_, target: this.target, actual: this.actual };
  }

  notify(q: number): void {
    const host = this.host;
    const vq = host?.queue(q);
    if (!host || !vq) return;
    if (q === STATSQ) return this.takeStats(vq);
    // Requests are done one after another, in order: a deflate must not overtake the inflate of
    // the same page.
    for (let c = vq.pop(); c; c = vq.pop()) {
      const chain = c;
      if (chain.readBytes % 4 !== 0 || chain.readBytes / 4 > MAX_PFNS_PER_REQUEST) throw new VirtioError(`balloon request of ${chain.readBytes} bytes (a whole number of 4-byte PFNs, at most ${MAX_PFNS_PER_REQUEST})`);
      const raw = vq.readAll(chain);
      const v = new DataView(raw.buffer);
      const pfns = Array.from({ length: raw.length / 4 }, (_, i) => v.getUint32(4 * i, true));
      this.counters_.requests++;
      const gen = host.generation;
      this.busy = this.busy.then(async () => {
        try {
          if (q === INFLATEQ) await this.vm.inflate(pfns);
          else if (q === DEFLATEQ) await this.vm.deflate(pfns);
        } catch (e) {
          if (this.host === host && host.generation === gen) host.fail(`balloon ${q === INFLATEQ ? "inflate" : "deflate"}: ${(e as Error).message}`);
          return;
        }
        if (q === INFLATEQ) this.counters_.inflated += pfns.length;
        else this.counters_.deflated += pfns.length;
        if (this.host !== host || host.generation !== gen) return;
        const now = host.queue(q);
        if (!now) return;
        now.push(chain.head, 0);
        host.usedBuffers(q);
      });
    }
  }

  private takeStats(vq: Virtqueue): void {
    for (let c = vq.pop(); c; c = vq.pop()) {
      const raw = vq.readAll(c, 10 * 64);
      const v = new DataView(raw.buffer);
      const stats: typeof this.stats = {};
      for (let at = 0; at + 10 <= raw.length; at += 10) {
        const name = BALLOON_STATS[v.getUint16(at, true)];
        if (name) stats[name] = Number(v.getBigUint64(at + 2, true));
      }
      this.stats = stats;
      this.statsAt = Date.now();
      // Keep the buffer: returning it is how the host asks for the next statistics.
      if (this.statsChain) vq.push(this.statsChain.head, 0);
      this.statsChain = c;
    }
  }

  // Asks the driver for fresh statistics (they arrive on the stats queue).
  requestStats(): void {
    const host = this.host;
    const vq = host?.queue(STATSQ);
    if (!host || !vq || !this.statsChain) return;
    vq.push(this.statsChain.head, 0);
    this.statsChain = undefined;
    host.usedBuffers(STATSQ);
  }

  override reset(): void {
    super.reset();
    this.statsChain = undefined;
  }
}
