// The host's virtual switch: a learning Ethernet bridge between the NICs of the VMs that join it
// (and, later, the NAT's port). It learns which port each source MAC address lives behind and
// forwards a frame only there; broadcast, multicast and unknown destinations go to every other
// port. A frame is never sent back out of the port it came from.
//
// Delivery is asynchronous (queueMicrotask), so a guest's transmit never runs another guest's
// receive path inside it, and a loop of ports cannot recurse. Frames waiting for delivery are
// bounded per destination port; a flood from one guest drops its own excess frames, counted,
// and the other ports' traffic goes on.
//
// Thread: the host's main thread, like the devices.
import type { NetPort } from "../../devices/virtio/net.js";

const MAC_AGE_MS = 300_000;
const QUEUE_FRAMES = 512;
const MAX_MACS = 4096;

export interface SwitchPortStats {
  name: string;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
}

const macKey = (f: Uint8Array, at: number): string => {
  let s = "";
  for (let i = 0; i < 6; i++) s += (f[at + i]! < 16 ? "0" : "") + f[at + i]!.toString(16) + (i < 5 ? ":" : "");
  return s;
};

class Port implements NetPort {
  deliver: ((frame: Uint8Array) => void) | undefined;
  readonly stats: SwitchPortStats;
  queued = 0;

  constructor(private readonly sw: Switch, name: string) {
    this.stats = { name, framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 };
  }

  send(frame: Uint8Array): void {
    this.stats.framesIn++;
    this.stats.bytesIn += frame.length;
    this.sw.forward(this, frame);
  }

  attach(deliver: (frame: Uint8Array) => void): void {
    this.deliver = deliver;
  }

  detach(): void {
    this.deliver = undefined;
    this.sw.remove(this);
  }
}

export class Switch {
  private readonly ports = new Set<Port>();
  private readonly macs = new Map<string, { port: Port; seenMs: number }>();

  constructor(readonly name = "switch0") {}

  // A new port, for a NIC to attach to.
  port(name: string): NetPort {
    const p = new Port(this, name);
    this.ports.add(p);
    return p;
  }

  remove(p: Port): void {
    this.ports.delete(p);
    for (const [mac, e] of this.macs) if (e.port === p) this.macs.delete(mac);
  }

  forward(from: Port, frame: Uint8Array): void {
    if (frame.length < 14) return;
    const now = Date.now();
    const src = macKey(frame, 6);
    // Learn the source (unicast sources only: a multicast source address is bogus).
    if ((frame[6]! & 1) === 0) {
      if (this.macs.size >= MAX_MACS && !this.macs.has(src)) this.expire(now, true);
      this.macs.set(src, { port: from, seenMs: now });
    }
    const broadcast = (frame[0]! & 1) === 1;
    const known = broadcast ? undefined : this.macs.get(macKey(frame, 0));
    if (known && now - known.seenMs < MAC_AGE_MS && this.ports.has(known.port)) {
      if (known.port !== from) this.enqueue(known.port, frame);
      return;
    }
    for (const p of this.ports) if (p !== from) this.enqueue(p, frame);
  }

  private enqueue(to: Port, frame: Uint8Array): void {
    if (!to.deliver) return;
    if (to.queued >= QUEUE_FRAMES) {
      to.stats.dropped++;
      return;
    }
    to.queued++;
    queueMicrotask(() => {
      to.queued--;
      if (!to.deliver) return;
      to.stats.framesOut++;
      to.stats.bytesOut += frame.length;
      to.deliver(frame);
    });
  }

  // Forgets old entries (or, when the table is full, the oldest quarter).
  private expire(now: number, full: boolean): void {
    for (const [mac, e] of this.macs) if (now - e.seenMs >= MAC_AGE_MS) this.macs.delete(mac);
    if (full && this.macs.size >= MAX_MACS) {
      const byAge = [...this.macs.entries()].sort((a, b) => a[1].seenMs - b[1].seenMs);
      for (const [mac] of byAge.slice(0, MAX_MACS / 4)) this.macs.delete(mac);
    }
  }

  stats(): { ports: SwitchPortStats[]; macs: number } {
    return { ports: [...this.ports].map((p) => ({ ...p.stats })), macs: this.macs.size };
  }
}

// A locally administered unicast MAC address for a VM's NIC, stable for its name and index.
export function macFor(vmName: string, nic: number): Uint8Array {
  let h = 2166136261;
  for (const c of `${vmName}#${nic}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return Uint8Array.from([0x52, 0x56, 0x00, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff]);
}
