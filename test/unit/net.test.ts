// The host's networking without a guest: packet.ts's parsers and builders (round trips, the
// Internet checksum against known vectors, rejection of every malformed header it guards
// against), a fixed-seed fuzz of the NAT and of the switch (no throw, counters that add up, no
// frame back to its sender, the NAT still serving DHCP afterwards), and the user-mode NAT driven
// by a fake guest that builds its frames with packet.ts: DHCP, ARP, ICMP echo, the DNS relay, UDP
// to the host's loopback, TCP from the guest (a small guest-side TCP in this file moving 1 MiB each
// way, SHA-256 checked, MSS, RST from a closed port, retransmission after a dropped segment, a
// zero window, half-close from either side, a guest that ignores the NAT's window), port forwards
// into the guest, the connection limits under a SYN flood and a thousand connections, and
// nat.close() releasing every host socket. Only 127.0.0.1 is ever reached.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as dgram from "node:dgram";
import * as P from "../../src/host/net/packet.js";
import { Nat, GATEWAY, DNS, GUEST } from "../../src/host/net/nat.js";
import { Switch } from "../../src/host/net/switch.js";
import type { NetPort } from "../../src/devices/virtio/net.js";
import { UserError } from "../../src/errors.js";
import { freePort } from "../helpers.js";

// ---- constants, helpers ----

const GUEST_MAC = Uint8Array.from([0x52, 0x56, 0x00, 0x00, 0x00, 0x01]);
const GATEWAY_MAC = Uint8Array.from([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]); // what the NAT answers ARP with
const ip = (s: string): number => P.ipFromString(s)!;

// Limits nat.ts keeps private, read from its source so the test follows them.
const natSource = readFileSync(new URL("../../../src/host/net/nat.ts", import.meta.url), "utf8");
function natConst(name: string): number {
  const m = new RegExp(`const ${name} = ([0-9_]+);`).exec(natSource);
  assert.ok(m, `nat.ts defines ${name} as a number`);
  return Number(m[1]!.replace(/_/g, ""));
}
const MAX_CONNECTIONS = natConst("MAX_CONNECTIONS");
const MAX_HALF_OPEN = natConst("MAX_HALF_OPEN");
const NAT_MSS = natConst("MSS");
const RTO_MS = natConst("RTO_MS");
const RECV_WINDOW = natConst("RECV_WINDOW");

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const add = (a: number, n: number): number => (a + n) >>> 0;
const seqLt = (a: number, b: number): boolean => ((a - b) | 0) < 0;
const seqLe = (a: number, b: number): boolean => ((a - b) | 0) <= 0;

async function waitUntil(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

function listen(server: net.Server | dgram.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    if (server instanceof net.Server) {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
    } else {
      server.once("error", reject);
      server.bind(0, "127.0.0.1", () => resolve(server.address().port));
    }
  });
}

const closeServer = (s: net.Server): Promise<void> => new Promise((r) => s.close(() => r()));

// A port nothing listens on (listened on, then closed).

// Marsaglia's xorshift32, for fuzzing that a failure can replay from its seed.
function prng(seed: number): { u32: () => number; int: (n: number) => number; bytes: (n: number) => Uint8Array } {
  let x = seed >>> 0 || 1;
  const u32 = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const int = (n: number): number => Math.floor((u32() / 2 ** 32) * n);
  const bytes = (n: number): Uint8Array => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = u32() & 255;
    return b;
  };
  return { u32, int, bytes };
}

function pseudo(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

// Recomputes the IPv4 header checksum of `p` in place (after a test edited the header).
function fixIpSum(p: Uint8Array): Uint8Array {
  const ihl = (p[0]! & 15) * 4;
  p[10] = p[11] = 0;
  const c = P.checksum(p.subarray(0, Math.min(ihl, p.length)));
  p[10] = c >>> 8;
  p[11] = c & 255;
  return p;
}

// Recomputes the TCP checksum of the IPv4 packet `p` (20-byte IP header) in place.
function fixTcpSum(p: Uint8Array): Uint8Array {
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  const seg = p.subarray(20);
  seg[16] = seg[17] = 0;
  const c = P.checksum(seg, pseudo(v.getUint32(12), v.getUint32(16), P.PROTO_TCP, seg.length));
  seg[16] = c >>> 8;
  seg[17] = c & 255;
  return p;
}

// A frame the NAT delivered, parsed all the way down.
interface Rx {
  frame: Uint8Array;
  eth: P.Ethernet;
  arp?: P.Arp;
  ip?: P.Ipv4;
  udp?: P.Udp;
  tcp?: P.Tcp;
  icmp?: P.Icmp;
}

function parseRx(frame: Uint8Array): Rx | undefined {
  const eth = P.parseEthernet(frame);
  if (!eth) return undefined;
  if (eth.type === P.ETH_ARP) {
    const arp = P.parseArp(eth.payload);
    return arp && { frame, eth, arp };
  }
  if (eth.type !== P.ETH_IPV4) return undefined;
  const ipv4 = P.parseIpv4(eth.payload);
  if (!ipv4) return undefined;
  if (ipv4.proto === P.PROTO_UDP) {
    const udp = P.parseUdp(ipv4);
    return udp && { frame, eth, ip: ipv4, udp };
  }
  if (ipv4.proto === P.PROTO_TCP) {
    const tcp = P.parseTcp(ipv4);
    return tcp && { frame, eth, ip: ipv4, tcp };
  }
  if (ipv4.proto === P.PROTO_ICMP) {
    const icmp = P.parseIcmp(ipv4);
    return icmp && { frame, eth, ip: ipv4, icmp };
  }
  return undefined;
}

// ---- DHCP messages as a client sends them ----

function dhcpMessage(type: number, xid: number, extra: number[] = []): Uint8Array {
  const b = new Uint8Array(300);
  const v = new DataView(b.buffer);
  b[0] = 1; // BOOTREQUEST
  b[1] = 1;
  b[2] = 6;
  v.setUint32(4, xid);
  v.setUint16(10, 0x8000); // broadcast
  b.set(GUEST_MAC, 28);
  v.setUint32(236, 0x63825363);
  const opts = [53, 1, type, ...extra, 255];
  b.set(opts, 240);
  return b;
}

const dhcpFrame = (type: number, xid: number, extra: number[] = []): Uint8Array =>
  P.ethernet(P.BROADCAST, GUEST_MAC, P.ETH_IPV4, P.udp(0, 0xffffffff, 68, 67, dhcpMessage(type, xid, extra)));

function dhcpOptions(b: Uint8Array): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (let i = 240; i < b.length;) {
    const code = b[i]!;
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    const len = b[i + 1]!;
    m.set(code, b.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return m;
}

const be32 = (b: Uint8Array | undefined): number => (b ? new DataView(b.buffer, b.byteOffset, b.length).getUint32(0) : -1);

// ---- the fake guest ----

interface TcpOpts {
  mss?: number; // the MSS option in our SYN / SYN-ACK
  cap?: number; // receive buffer: the window is cap minus bytes not yet read
  autoRead?: boolean; // read everything as it arrives (the window stays open)
}

// A guest-side TCP, just enough of one: in-order receive only (anything else is dropped and
// acknowledged again), go-back-N retransmission, a one-byte probe into a zero window.
class GuestTcp {
  state: "closed" | "listen" | "syn-sent" | "syn-received" | "established" | "reset";
  readonly iss = randomInt(0, 2 ** 32);
  sndUna: number;
  sndNxt: number;
  rcvNxt = 0;
  irs = 0;
  peerWnd = 0;
  peerMss: number | undefined;
  out: Buffer = Buffer.alloc(0); // from sndUna: sent and unacknowledged, then unsent
  finQueued = false;
  finSent = false;
  finAcked = false;
  peerFin = false;
  readonly cap: number;
  autoRead: boolean;
  private unread: Buffer[] = [];
  unreadBytes = 0;
  readonly chunks: Buffer[] = [];
  receivedBytes = 0;
  // Every segment that arrived, before `drop` saw it.
  readonly log: Array<{ at: number; seq: number; ack: number; len: number; flags: number; window: number; mss?: number }> = [];
  drop: ((t: P.Tcp) => boolean) | undefined;
  onData: ((d: Buffer) => void) | undefined;
  onFin: (() => void) | undefined;
  lastProgress = Date.now();
  readonly key: string;

  constructor(
    readonly guest: Guest,
    readonly localPort: number,
    readonly remoteIp: number,
    readonly remotePort: number,
    passive: boolean,
    readonly opts: TcpOpts = {},
  ) {
    this.state = passive ? "listen" : "closed";
    this.sndUna = this.sndNxt = this.iss;
    this.cap = opts.cap ?? 65535;
    this.autoRead = opts.autoRead ?? true;
    this.key = `${localPort}|${remoteIp}|${remotePort}`;
    guest.conns.set(this.key, this);
  }

  get rcvWnd(): number {
    return Math.max(0, Math.min(65535, this.cap - this.unreadBytes));
  }

  get inFlight(): number {
    return (this.sndNxt - this.sndUna) >>> 0;
  }

  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  segment(flags: number, seq: number, payload?: Uint8Array, mss?: number): void {
    this.guest.sendIp(P.tcp(GUEST, this.remoteIp, {
      srcPort: this.localPort, dstPort: this.remotePort, seq, ack: (flags & P.TCP_ACK) !== 0 ? this.rcvNxt : 0,
      flags, window: this.rcvWnd, mss, payload,
    }));
  }

  connect(): void {
    this.state = "syn-sent";
    this.segment(P.TCP_SYN, this.iss, undefined, this.opts.mss ?? 1460);
    this.sndNxt = add(this.iss, 1);
    this.lastProgress = Date.now();
  }

  write(b: Uint8Array): void {
    this.out = this.out.length === 0 ? Buffer.from(b) : Buffer.concat([this.out, b]);
    this.pump();
  }

  end(): void {
    this.finQueued = true;
    this.pump();
  }

  // The application reads what is buffered: the window opens, and the guest says so.
  read(): Buffer {
    const b = Buffer.concat(this.unread);
    this.unread = [];
    this.unreadBytes = 0;
    if (this.state === "established") this.segment(P.TCP_ACK, this.sndNxt);
    return b;
  }

  rst(): void {
    this.segment(P.TCP_RST | P.TCP_ACK, this.sndNxt);
    this.state = "reset";
    this.dispose();
  }

  dispose(): void {
    if (this.guest.conns.get(this.key) === this) this.guest.conns.delete(this.key);
  }

  private pump(): void {
    if (this.state !== "established") return;
    const seg = Math.min(this.peerMss ?? 536, 1460);
    while (!this.finSent) {
      const inFlight = this.inFlight;
      const unsent = this.out.length - inFlight;
      const room = this.peerWnd - inFlight;
      if (unsent <= 0 || room <= 0) break;
      if (inFlight === 0) this.lastProgress = Date.now();
      const n = Math.min(seg, room, unsent);
      this.segment(P.TCP_ACK | P.TCP_PSH, this.sndNxt, this.out.subarray(inFlight, inFlight + n));
      this.sndNxt = add(this.sndNxt, n);
    }
    if (this.finQueued && !this.finSent && this.inFlight === this.out.length) {
      if (this.inFlight === 0) this.lastProgress = Date.now();
      this.segment(P.TCP_FIN | P.TCP_ACK, this.sndNxt);
      this.sndNxt = add(this.sndNxt, 1);
      this.finSent = true;
    }
  }

  // Every 50 ms: go back to sndUna after 300 ms without progress; probe a zero window.
  tick(now: number): void {
    if (now - this.lastProgress < 300) return;
    if (this.state === "syn-sent") {
      this.segment(P.TCP_SYN, this.iss, undefined, this.opts.mss ?? 1460);
      this.lastProgress = now;
      return;
    }
    if (this.state !== "established") return;
    if (this.inFlight > 0) {
      this.sndNxt = this.sndUna;
      this.finSent = false;
      this.lastProgress = now;
      this.pump();
    }
    if (this.peerWnd === 0 && this.inFlight === 0 && this.out.length > 0) {
      this.segment(P.TCP_ACK, this.sndNxt, this.out.subarray(0, 1));
      this.sndNxt = add(this.sndNxt, 1);
      this.lastProgress = now;
    }
  }

  onSegment(t: P.Tcp): void {
    this.log.push({ at: Date.now(), seq: t.seq, ack: t.ack, len: t.payload.length, flags: t.flags, window: t.window, mss: t.mss });
    if (this.drop?.(t)) return;
    if ((t.flags & P.TCP_RST) !== 0) {
      this.state = "reset";
      this.dispose();
      return;
    }
    const synAck = P.TCP_SYN | P.TCP_ACK;
    if (this.state === "syn-sent") {
      if ((t.flags & synAck) === synAck && t.ack === add(this.iss, 1)) {
        this.irs = t.seq;
        this.rcvNxt = add(t.seq, 1);
        this.sndUna = this.sndNxt = t.ack;
        this.peerWnd = t.window;
        this.peerMss = t.mss;
        this.state = "established";
        this.segment(P.TCP_ACK, this.sndNxt);
        this.pump();
      }
      return;
    }
    if (this.state === "listen") {
      if ((t.flags & synAck) === P.TCP_SYN) {
        this.irs = t.seq;
        this.rcvNxt = add(t.seq, 1);
        this.peerWnd = t.window;
        this.peerMss = t.mss;
        this.state = "syn-received";
        this.segment(synAck, this.iss, undefined, this.opts.mss ?? 1460);
        this.sndNxt = add(this.iss, 1);
      }
      return;
    }
    if (this.state === "syn-received") {
      if ((t.flags & P.TCP_SYN) !== 0) {
        this.segment(synAck, this.iss, undefined, this.opts.mss ?? 1460);
        return;
      }
      if ((t.flags & P.TCP_ACK) === 0 || t.ack !== add(this.iss, 1)) return;
      this.state = "established";
      this.sndUna = t.ack;
    }
    if (this.state !== "established") return;
    if ((t.flags & P.TCP_SYN) !== 0) {
      this.segment(P.TCP_ACK, this.sndNxt); // a repeated SYN-ACK: our ACK again
      return;
    }
    if ((t.flags & P.TCP_ACK) !== 0) {
      if (seqLt(this.sndUna, t.ack) && seqLe(t.ack, this.sndNxt)) {
        let n = (t.ack - this.sndUna) >>> 0;
        if (this.finSent && t.ack === this.sndNxt) {
          n -= 1;
          this.finAcked = true;
        }
        this.out = this.out.subarray(Math.min(n, this.out.length));
        this.sndUna = t.ack;
        this.lastProgress = Date.now();
      }
      this.peerWnd = t.window;
    }
    let ack = false;
    let whole = true;
    if (t.payload.length > 0) {
      ack = true;
      const skip = seqLt(t.seq, this.rcvNxt) ? (this.rcvNxt - t.seq) >>> 0 : 0;
      if (!seqLe(t.seq, this.rcvNxt) || this.peerFin) whole = false;
      else if (skip < t.payload.length) {
        const fits = Math.min(t.payload.length - skip, this.rcvWnd);
        if (skip + fits < t.payload.length) whole = false;
        if (fits > 0) {
          const d = Buffer.from(t.payload.subarray(skip, skip + fits));
          this.rcvNxt = add(this.rcvNxt, fits);
          this.receivedBytes += fits;
          this.chunks.push(d);
          if (this.autoRead) this.onData?.(d);
          else {
            this.unread.push(d);
            this.unreadBytes += fits;
          }
        }
      }
    }
    if ((t.flags & P.TCP_FIN) !== 0 && whole && add(t.seq, t.payload.length) === this.rcvNxt && !this.peerFin) {
      this.peerFin = true;
      this.rcvNxt = add(this.rcvNxt, 1);
      ack = true;
      this.onFin?.();
    }
    if (ack) this.segment(P.TCP_ACK, this.sndNxt);
    this.pump();
  }
}

// The guest's side of the link: a NIC with GUEST_MAC plugged into a NAT. Frames from the NAT are
// handled a turn of the event loop later (as a guest's driver would see them), TCP segments go to
// the GuestTcp they belong to, everything else waits in `inbox` for take().
class Guest {
  readonly nat: Nat;
  readonly inbox: Rx[] = [];
  readonly conns = new Map<string, GuestTcp>();
  readonly listeners = new Map<number, (c: GuestTcp) => void>();
  readonly bad: string[] = []; // frames from the NAT that did not parse, or went to a wrong MAC
  checkMac = true; // frames must go to GUEST_MAC or broadcast (the fuzz sends ARP from other MACs)
  delivered = 0;
  private queue: Uint8Array[] = [];
  private scheduled = false;
  private readonly timer: NodeJS.Timeout;

  constructor(opts: { resolver?: string; resolverPort?: number } = {}) {
    this.nat = new Nat({ resolver: "127.0.0.1", resolverPort: 9, ...opts });
    this.nat.attach((f) => {
      this.queue.push(f);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.drain());
      }
    });
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const c of [...this.conns.values()]) c.tick(now);
    }, 50);
    this.timer.unref();
  }

  private drain(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const f of batch) this.handle(f);
  }

  private handle(f: Uint8Array): void {
    this.delivered++;
    const rx = parseRx(f);
    if (!rx) return void this.bad.push(`unparsable ${hex(f.subarray(0, 64))}`);
    const dst = hex(rx.eth.dst);
    if (this.checkMac && dst !== hex(GUEST_MAC) && dst !== hex(P.BROADCAST)) this.bad.push(`to ${dst}`);
    if (hex(rx.eth.src) !== hex(GATEWAY_MAC)) this.bad.push(`from ${hex(rx.eth.src)}`);
    if (rx.tcp && rx.ip) {
      const c = this.conns.get(`${rx.tcp.dstPort}|${rx.ip.src}|${rx.tcp.srcPort}`);
      if (c) return c.onSegment(rx.tcp);
      const l = this.listeners.get(rx.tcp.dstPort);
      if (l && (rx.tcp.flags & (P.TCP_SYN | P.TCP_ACK)) === P.TCP_SYN) {
        const nc = new GuestTcp(this, rx.tcp.dstPort, rx.ip.src, rx.tcp.srcPort, true);
        l(nc);
        nc.onSegment(rx.tcp);
        return;
      }
    }
    this.inbox.push(rx);
  }

  sendEth(type: number, payload: Uint8Array, dst: Uint8Array = GATEWAY_MAC): void {
    this.nat.send(P.ethernet(dst, GUEST_MAC, type, payload));
  }

  sendIp(packet: Uint8Array): void {
    this.sendEth(P.ETH_IPV4, packet);
  }

  arpRequest(target: number): void {
    this.sendEth(P.ETH_ARP, P.arp({ op: 1, senderMac: GUEST_MAC, senderIp: GUEST, targetMac: new Uint8Array(6), targetIp: target }), P.BROADCAST);
  }

  tcp(localPort: number, remoteIp: number, remotePort: number, opts?: TcpOpts): GuestTcp {
    return new GuestTcp(this, localPort, remoteIp, remotePort, false, opts);
  }

  // The first frame in the inbox that matches, waiting for it if need be.
  async take(pred: (rx: Rx) => boolean, what: string, ms = 3000): Promise<Rx> {
    let found: Rx | undefined;
    await waitUntil(() => {
      const i = this.inbox.findIndex(pred);
      if (i < 0) return false;
      found = this.inbox.splice(i, 1)[0];
      return true;
    }, what, ms);
    return found!;
  }

  // Waits `ms` and checks that nothing matching arrived.
  async none(pred: (rx: Rx) => boolean, what: string, ms = 100): Promise<void> {
    await sleep(ms);
    assert.equal(this.inbox.filter(pred).length, 0, `no ${what}`);
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of [...this.conns.values()]) c.dispose();
    this.nat.close();
    assert.deepEqual(this.bad, [], "every frame from the NAT parses, checksums included, and goes to the guest");
  }
}

// A host TCP server; `onConn` gets each accepted socket.
async function hostServer(onConn: (s: net.Socket) => void, opts: net.ServerOpts = {}): Promise<{ server: net.Server; port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer(opts, (s) => {
    sockets.push(s);
    s.on("error", () => {});
    onConn(s);
  });
  const port = await listen(server);
  return { server, port, sockets };
}

async function stopServer(h: { server: net.Server; sockets: net.Socket[] }): Promise<void> {
  for (const s of h.sockets) s.destroy();
  await closeServer(h.server);
}

// Reads a socket to its end: the bytes and their hash.
function drainSocket(s: net.Socket): Promise<{ n: number; hash: string }> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    let n = 0;
    s.on("data", (d: Buffer) => {
      h.update(d);
      n += d.length;
    });
    s.on("end", () => resolve({ n, hash: h.digest("hex") }));
    s.on("error", reject);
  });
}

// ---- 1. packet.ts ----

test("the Internet checksum: RFC 1071's example, a real IPv4 header, odd lengths, end-around carry", () => {
  const rfc = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(P.onesSum(rfc), 0xddf2, "RFC 1071 section 3's sum");
  assert.equal(P.checksum(rfc), 0x220d);
  // An IPv4 header with its checksum (0xb861) zeroed, and then with it in place.
  const hdr = Uint8Array.from(Buffer.from("450000730000400040110000c0a80001c0a800c7", "hex"));
  assert.equal(P.checksum(hdr), 0xb861);
  hdr[10] = 0xb8;
  hdr[11] = 0x61;
  assert.equal(P.onesSum(hdr), 0xffff, "a header with its checksum sums to all ones");
  assert.equal(P.onesSum(Uint8Array.from([0x12])), 0x1200, "an odd last byte is the high half of a word");
  assert.equal(P.onesSum(Uint8Array.from([0xff, 0xff, 0x00, 0x02])), 0x0002, "carries wrap around");
  assert.equal(P.onesSum(Uint8Array.from([0x00, 0x01]), 0xffff), 0x0001, "a starting sum is folded in");
  assert.equal(P.checksum(new Uint8Array(0)), 0xffff);
});

test("addresses: ipFromString/ipToString round trip and reject junk", () => {
  assert.equal(P.ipFromString("10.0.2.15"), 0x0a00020f);
  assert.equal(P.ipFromString("255.255.255.255"), 0xffffffff);
  assert.equal(P.ipToString(0xc0a80001), "192.168.0.1");
  assert.equal(P.ipToString(GUEST), "10.0.2.15");
  for (const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.5", "a.b.c.d", " 1.2.3.4", ""]) assert.equal(P.ipFromString(bad), undefined, bad);
});

test("packet.ts: build then parse round trips for Ethernet, ARP, IPv4, UDP, TCP and ICMP", () => {
  const payload = Uint8Array.from([1, 2, 3, 4, 5]);
  const f = P.ethernet(P.BROADCAST, GUEST_MAC, 0x1234, payload);
  assert.equal(f.length, 19);
  const e = P.parseEthernet(f)!;
  assert.deepEqual([hex(e.dst), hex(e.src), e.type, hex(e.payload)], ["ffffffffffff", hex(GUEST_MAC), 0x1234, "0102030405"]);

  const a = P.parseArp(P.arp({ op: 1, senderMac: GUEST_MAC, senderIp: GUEST, targetMac: GATEWAY_MAC, targetIp: GATEWAY }))!;
  assert.deepEqual([a.op, hex(a.senderMac), a.senderIp, hex(a.targetMac), a.targetIp], [1, hex(GUEST_MAC), GUEST, hex(GATEWAY_MAC), GATEWAY]);

  const p1 = P.ipv4(GUEST, GATEWAY, 99, payload, 17);
  const p2 = P.ipv4(GUEST, GATEWAY, 99, payload);
  const i1 = P.parseIpv4(p1)!;
  assert.deepEqual([i1.src, i1.dst, i1.proto, i1.ttl, hex(i1.payload)], [GUEST, GATEWAY, 99, 17, "0102030405"]);
  assert.equal(P.parseIpv4(p2)!.ttl, 64);
  assert.equal(P.parseIpv4(p2)!.id, (i1.id + 1) & 0xffff, "identifiers count up");
  // Trailing bytes after the IP total length (Ethernet padding) are not payload.
  const padded = new Uint8Array(p1.length + 10);
  padded.set(p1);
  assert.equal(hex(P.parseIpv4(padded)!.payload), "0102030405");
  // Options (IHL 6) are skipped.
  const opt = new Uint8Array(24 + 5);
  opt.set(p1.subarray(0, 20));
  opt[0] = 0x46;
  opt[3] = 29;
  opt.set([1, 1, 1, 0], 20);
  opt.set(payload, 24);
  assert.equal(hex(P.parseIpv4(fixIpSum(opt))!.payload), "0102030405");

  const u = P.parseUdp(P.parseIpv4(P.udp(GUEST, DNS, 5353, 53, payload))!)!;
  assert.deepEqual([u.srcPort, u.dstPort, hex(u.payload)], [5353, 53, "0102030405"]);
  // A zero checksum means "none" in UDP.
  const nosum = P.udp(GUEST, DNS, 1, 2, payload);
  nosum[26] = nosum[27] = 0;
  assert.ok(P.parseUdp(P.parseIpv4(nosum)!), "UDP checksum 0: not checked");
  // A checksum that computes to 0 is sent as 0xffff: find the two payload bytes that make it so.
  const zero = P.udp(GUEST, DNS, 1000, 2000, new Uint8Array(2));
  const s = P.onesSum(zero.subarray(20, 28).map((x, i) => (i === 6 || i === 7 ? 0 : x)), pseudo(GUEST, DNS, P.PROTO_UDP, 10));
  const w = 0xffff - s;
  const zeroed = P.udp(GUEST, DNS, 1000, 2000, Uint8Array.from([w >>> 8, w & 255]));
  assert.equal((zeroed[26]! << 8) | zeroed[27]!, 0xffff, "a computed checksum of 0 is sent as all ones");
  assert.ok(P.parseUdp(P.parseIpv4(zeroed)!));

  const data = randomBytes(100);
  const t = P.parseTcp(P.parseIpv4(P.tcp(GUEST, GATEWAY, { srcPort: 40000, dstPort: 80, seq: 0xfffffff0, ack: 12345, flags: P.TCP_SYN | P.TCP_ACK, window: 1000, mss: 1400, payload: data }))!)!;
  assert.deepEqual([t.srcPort, t.dstPort, t.seq, t.ack, t.flags, t.window, t.mss], [40000, 80, 0xfffffff0, 12345, P.TCP_SYN | P.TCP_ACK, 1000, 1400]);
  assert.equal(hex(t.payload), hex(data));
  const t2 = P.parseTcp(P.parseIpv4(P.tcp(GUEST, GATEWAY, { srcPort: 1, dstPort: 2, seq: 3, ack: 4, flags: P.TCP_ACK, window: 99999 }))!)!;
  assert.equal(t2.mss, undefined);
  assert.equal(t2.payload.length, 0);
  assert.equal(t2.window, 0xffff, "windows above 16 bits are clamped");

  const m = P.parseIcmp(P.parseIpv4(P.icmp(GUEST, GATEWAY, 8, 0, Uint8Array.from([0x12, 0x34, 0, 7, 9, 9, 9])))!)!;
  assert.deepEqual([m.type, m.code, hex(m.rest)], [8, 0, "12340007090909"]);
});

test("packet.ts: truncated and malformed headers parse as undefined", () => {
  assert.equal(P.parseEthernet(new Uint8Array(13)), undefined, "Ethernet shorter than 14");
  assert.ok(P.parseEthernet(new Uint8Array(14)));

  const arp = P.arp({ op: 1, senderMac: GUEST_MAC, senderIp: GUEST, targetMac: GATEWAY_MAC, targetIp: GATEWAY });
  assert.equal(P.parseArp(arp.subarray(0, 27)), undefined, "ARP truncated");
  for (const [at, v] of [[1, 6], [3, 0xdd], [4, 8], [5, 16]] as const) {
    const b = arp.slice();
    b[at] = v;
    assert.equal(P.parseArp(b), undefined, `ARP with byte ${at} = ${v}`);
  }

  const good = P.ipv4(GUEST, GATEWAY, P.PROTO_UDP, new Uint8Array(8));
  assert.ok(P.parseIpv4(good));
  const edit = (f: (p: Uint8Array, v: DataView) => void, fix = true): P.Ipv4 | undefined => {
    const p = good.slice();
    f(p, new DataView(p.buffer));
    return P.parseIpv4(fix ? fixIpSum(p) : p);
  };
  assert.equal(P.parseIpv4(good.subarray(0, 19)), undefined, "IPv4 shorter than 20");
  assert.equal(edit((p) => { p[0] = 0x65; }), undefined, "IP version 6");
  assert.equal(edit((p) => { p[0] = 0x44; }), undefined, "IHL 4 (16 bytes)");
  assert.equal(edit((p) => { p[0] = 0x4f; }), undefined, "IHL 15: a header longer than the packet");
  assert.equal(edit((_, v) => v.setUint16(2, good.length + 1)), undefined, "total length past the frame");
  assert.equal(edit((_, v) => v.setUint16(2, 19)), undefined, "total length shorter than the header");
  assert.equal(edit((p) => { p[11] ^= 1; }, false), undefined, "bad header checksum");
  assert.equal(edit((p) => { p[15] ^= 0x80; }, false), undefined, "a flipped bit in the source address");
  assert.equal(edit((_, v) => v.setUint16(6, 0x2000)), undefined, "more-fragments set");
  assert.equal(edit((_, v) => v.setUint16(6, 0x0001)), undefined, "a fragment offset");
  assert.equal(edit((_, v) => v.setUint16(6, 0x4001)), undefined, "DF with a fragment offset");
  assert.ok(edit((_, v) => v.setUint16(6, 0)), "not fragmented, DF clear");

  // UDP
  const udp = P.parseIpv4(P.udp(GUEST, GATEWAY, 1, 2, Uint8Array.from([1, 2, 3, 4])))!;
  const udpEdit = (f: (u: Uint8Array, v: DataView) => void): P.Udp | undefined => {
    const u = udp.payload.slice();
    f(u, new DataView(u.buffer));
    return P.parseUdp({ ...udp, payload: u });
  };
  assert.ok(P.parseUdp(udp));
  assert.equal(P.parseUdp({ ...udp, payload: udp.payload.subarray(0, 7) }), undefined, "UDP shorter than 8");
  assert.equal(udpEdit((_, v) => v.setUint16(4, 7)), undefined, "UDP length below 8");
  assert.equal(udpEdit((_, v) => v.setUint16(4, 13)), undefined, "UDP length past the packet");
  assert.equal(udpEdit((u) => { u[9] ^= 4; }), undefined, "UDP data corrupted: bad checksum");
  assert.equal(P.parseUdp({ ...udp, src: ip("10.0.2.16") }), undefined, "the pseudo-header is checksummed (source address)");

  // TCP: a segment with room for options, rebuilt with a given data offset and options.
  const tcpWith = (offWords: number, options: number[], payloadLen = 0): P.Tcp | undefined => {
    const seg = new Uint8Array(Math.max(20 + options.length, 20) + payloadLen);
    const v = new DataView(seg.buffer);
    v.setUint16(0, 40000);
    v.setUint16(2, 80);
    v.setUint32(4, 1);
    seg[12] = offWords << 4;
    seg[13] = P.TCP_SYN;
    v.setUint16(14, 1000);
    seg.set(options, 20);
    const p = P.ipv4(GUEST, GATEWAY, P.PROTO_TCP, seg);
    return P.parseTcp(P.parseIpv4(fixTcpSum(p))!);
  };
  assert.equal(tcpWith(7, [1, 1, 2, 4, 0x05, 0xb4, 0, 0])?.mss, 1460, "NOPs, then MSS, then end of options");
  assert.equal(tcpWith(6, [0, 9, 9, 9])?.mss, undefined, "end of options stops the scan");
  assert.equal(tcpWith(6, [8, 3, 0, 1])?.mss, undefined, "an unknown option is skipped");
  assert.equal(tcpWith(6, [2, 3, 0, 1])?.mss, undefined, "an MSS option of the wrong length is ignored");
  assert.equal(tcpWith(4, []), undefined, "data offset 4 (16 bytes)");
  assert.equal(tcpWith(6, []), undefined, "data offset past the segment");
  assert.equal(tcpWith(15, [], 20), undefined, "data offset 15 past a 40-byte segment");
  assert.equal(tcpWith(6, [2, 0, 1, 1]), undefined, "option length 0");
  assert.equal(tcpWith(6, [2, 1, 1, 1]), undefined, "option length 1");
  assert.equal(tcpWith(6, [1, 1, 2, 8]), undefined, "an option running past the header");
  assert.equal(tcpWith(6, [1, 1, 1, 2], 4), undefined, "an option kind in the header's last byte, its length beyond it");
  const tcp = P.parseIpv4(P.tcp(GUEST, GATEWAY, { srcPort: 1, dstPort: 2, seq: 3, ack: 4, flags: P.TCP_ACK, window: 5, payload: Uint8Array.from([7]) }))!;
  assert.ok(P.parseTcp(tcp));
  assert.equal(P.parseTcp({ ...tcp, payload: tcp.payload.subarray(0, 19) }), undefined, "TCP shorter than 20");
  const bad = tcp.payload.slice();
  bad[20] ^= 1;
  assert.equal(P.parseTcp({ ...tcp, payload: bad }), undefined, "TCP data corrupted: bad checksum");
  assert.equal(P.parseTcp({ ...tcp, dst: ip("10.0.2.3") }), undefined, "the pseudo-header is checksummed (destination address)");

  // ICMP
  const icmp = P.parseIpv4(P.icmp(GUEST, GATEWAY, 8, 0, new Uint8Array(4)))!;
  assert.ok(P.parseIcmp(icmp));
  assert.equal(P.parseIcmp({ ...icmp, payload: icmp.payload.subarray(0, 7) }), undefined, "ICMP shorter than 8");
  const badIcmp = icmp.payload.slice();
  badIcmp[1] = 1;
  assert.equal(P.parseIcmp({ ...icmp, payload: badIcmp }), undefined, "bad ICMP checksum");
});

// ---- 2. fuzzing ----

test("fuzz: 20,000 random and mutated frames never make the NAT throw; counters add up; DHCP still works", async () => {
  const SEED = 0x5eed1234;
  const r = prng(SEED);
  const sink = dgram.createSocket("udp4");
  let sunk = 0;
  sink.on("message", () => sunk++);
  const sinkPort = await listen(sink);
  const tcpSrv = await hostServer(() => {});
  const closedPort = await freePort();
  const g = new Guest({ resolver: "127.0.0.1", resolverPort: sinkPort });
  g.checkMac = false;
  try {
    // The guest's first frame: the NAT learns its MAC from it.
    g.nat.send(dhcpFrame(1, 0x1111));
    const templates: Uint8Array[] = [
      dhcpFrame(1, 7),
      dhcpFrame(3, 8, [50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2]),
      P.ethernet(P.BROADCAST, GUEST_MAC, P.ETH_ARP, P.arp({ op: 1, senderMac: GUEST_MAC, senderIp: GUEST, targetMac: new Uint8Array(6), targetIp: GATEWAY })),
      P.ethernet(P.BROADCAST, GUEST_MAC, P.ETH_ARP, P.arp({ op: 1, senderMac: GUEST_MAC, senderIp: GUEST, targetMac: new Uint8Array(6), targetIp: ip("10.0.2.99") })),
      P.ethernet(GATEWAY_MAC, GUEST_MAC, P.ETH_IPV4, P.icmp(GUEST, GATEWAY, 8, 0, r.bytes(40))),
      P.ethernet(GATEWAY_MAC, GUEST_MAC, P.ETH_IPV4, P.icmp(GUEST, ip("8.8.8.8"), 8, 0, r.bytes(40))),
      P.ethernet(GATEWAY_MAC, GUEST_MAC, P.ETH_IPV4, P.udp(GUEST, GATEWAY, 4000, sinkPort, r.bytes(30))),
      P.ethernet(GATEWAY_MAC, GUEST_MAC, P.ETH_IPV4, P.udp(GUEST, DNS, 4001, 53, r.bytes(30))),
      P.ethernet(GATEWAY_MAC, GUEST_MAC, P.ETH_IPV4, P.tcp(GUEST, GATEWAY, { srcPort: 5000, dstPort: tcpSrv.port, seq: 1, ack: 0, flags: P.TCP_SYN, window: 65535, mss: 1460 })),
      P.ethernet(GATEWAY_MAC, GUEST_MAC, P.ETH_IPV4, P.tcp(GUEST, GATEWAY, { srcPort: 5000, dstPort: tcpSrv.port, seq: 2, ack: 1, flags: P.TCP_ACK | P.TCP_PSH, window: 65535, payload: r.bytes(50) })),
      P.ethernet(GATEWAY_MAC, GUEST_MAC, P.ETH_IPV4, P.tcp(GUEST, GATEWAY, { srcPort: 5001, dstPort: closedPort, seq: 1, ack: 0, flags: P.TCP_SYN, window: 65535 })),
      P.ethernet(GATEWAY_MAC, GUEST_MAC, P.ETH_IPV4, P.tcp(GUEST, GATEWAY, { srcPort: 5002, dstPort: tcpSrv.port, seq: 9, ack: 9, flags: P.TCP_FIN | P.TCP_ACK, window: 0 })),
      P.ethernet(GATEWAY_MAC, GUEST_MAC, 0x86dd, r.bytes(60)), // IPv6
    ];
    // Where a frame that survives mutation may lead the NAT: only to our sockets on 127.0.0.1.
    const allowed = (f: Uint8Array): boolean => {
      const e = P.parseEthernet(f);
      if (!e || e.type !== P.ETH_IPV4) return true;
      const i = P.parseIpv4(e.payload);
      if (!i || i.src !== GUEST) return true;
      if (i.proto === P.PROTO_UDP) {
        const u = P.parseUdp(i);
        return !u || (u.srcPort === 68 && u.dstPort === 67) || i.dst === DNS || (i.dst === GATEWAY && u.dstPort === sinkPort);
      }
      if (i.proto === P.PROTO_TCP) {
        const t = P.parseTcp(i);
        return !t || i.dst === DNS || (i.dst === GATEWAY && (t.dstPort === tcpSrv.port || t.dstPort === closedPort)) || ((i.dst & 0xffffff00) >>> 0 === ip("10.0.2.0") && i.dst !== GATEWAY);
      }
      return true;
    };
    // What the NAT should count as malformed, by packet.ts's parsers and DHCP's framing.
    const malformedByParsers = (f: Uint8Array): boolean => {
      const e = P.parseEthernet(f);
      if (!e) return true;
      if (e.type === P.ETH_ARP) return !P.parseArp(e.payload);
      if (e.type !== P.ETH_IPV4) return false;
      const i = P.parseIpv4(e.payload);
      if (!i) return true;
      if (i.proto === P.PROTO_UDP) {
        const u = P.parseUdp(i);
        if (!u) return true;
        if (u.dstPort !== 67 || u.srcPort !== 68) return false;
        const b = u.payload;
        if (b.length < 240 || b[0] !== 1 || b[1] !== 1 || b[2] !== 6) return true;
        if (new DataView(b.buffer, b.byteOffset, b.length).getUint32(236) !== 0x63825363) return true;
        for (let k = 240; k < b.length;) {
          if (b[k] === 255) break;
          if (b[k] === 0) { k++; continue; }
          const len = b[k + 1];
          if (len === undefined || k + 2 + len > b.length) return true;
          k += 2 + len;
        }
        return false;
      }
      if (i.proto === P.PROTO_TCP) return !P.parseTcp(i);
      if (i.proto === P.PROTO_ICMP) return !P.parseIcmp(i);
      return false;
    };
    const unsupportedAtLeast = (f: Uint8Array): boolean => {
      const e = P.parseEthernet(f);
      if (!e) return false;
      if (e.type !== P.ETH_IPV4) return e.type !== P.ETH_ARP;
      const i = P.parseIpv4(e.payload);
      return !!i && i.proto !== P.PROTO_UDP && i.proto !== P.PROTO_TCP && i.proto !== P.PROTO_ICMP;
    };

    const N = 20_000;
    const before = { ...g.nat.counters };
    let sent = 0;
    let skipped = 0;
    let expectMalformed = 0;
    let expectUnsupported = 0;
    const t0 = Date.now();
    for (let n = 0; n < N; n++) {
      let f: Uint8Array;
      const mode = r.int(10);
      if (mode < 2) {
        f = r.bytes(r.int(1600)); // noise
      } else if (mode < 4) {
        // Noise behind plausible headers: IPv4 or ARP, a valid IP header, random protocol and body.
        f = r.bytes(14 + 20 + r.int(200));
        f.set(GATEWAY_MAC, 0);
        f.set(GUEST_MAC, 6);
        const arpType = r.int(4) === 0;
        f[12] = 0x08;
        f[13] = arpType ? 0x06 : 0x00;
        if (!arpType) {
          const p = f.subarray(14);
          p[0] = 0x45;
          const v = new DataView(p.buffer, p.byteOffset, p.length);
          v.setUint16(2, r.int(8) === 0 ? r.int(0x10000) : p.length);
          v.setUint16(6, r.int(4) === 0 ? r.int(0x10000) : 0x4000);
          p[9] = [P.PROTO_UDP, P.PROTO_TCP, P.PROTO_ICMP, r.int(256)][r.int(4)]!;
          v.setUint32(12, r.int(3) === 0 ? r.u32() : GUEST);
          v.setUint32(16, [GATEWAY, DNS, r.u32()][r.int(3)]!);
          fixIpSum(p);
        }
      } else {
        f = templates[r.int(templates.length)]!.slice();
        const how = r.int(4);
        if (how <= 1) {
          for (let k = 1 + r.int(8); k > 0; k--) f[r.int(f.length)] ^= 1 << r.int(8);
        } else if (how === 2) {
          f = f.subarray(0, r.int(f.length + 1));
        } else {
          const longer = new Uint8Array(f.length + 1 + r.int(100));
          longer.set(f);
          longer.set(r.bytes(longer.length - f.length), f.length);
          f = longer;
          if (r.int(2) === 0 && f.length > 20) {
            // A mangled total length, the header checksum fixed so that the length is what fails.
            new DataView(f.buffer, f.byteOffset + 14).setUint16(2, r.int(0x10000));
            fixIpSum(f.subarray(14));
          }
        }
      }
      if (!allowed(f)) {
        skipped++;
        continue;
      }
      if (malformedByParsers(f)) expectMalformed++;
      if (unsupportedAtLeast(f)) expectUnsupported++;
      try {
        g.nat.send(f);
      } catch (e) {
        assert.fail(`seed ${SEED.toString(16)}, frame ${n} (${hex(f)}) threw: ${String(e)}`);
      }
      sent++;
      if (n % 2000 === 0) await new Promise((res) => setImmediate(res)); // let sockets and replies move
    }
    const fuzzMs = Date.now() - t0;
    const c = g.nat.counters;
    assert.ok(skipped < N / 100, `few mutated frames lead off 127.0.0.1 (${skipped})`);
    assert.equal(c.framesIn - before.framesIn, sent, "every frame counted in");
    const malformed = c.malformed - before.malformed;
    const unsupported = c.unsupported - before.unsupported;
    assert.equal(malformed, expectMalformed, "malformed: exactly the frames packet.ts's parsers (or DHCP's framing) reject");
    assert.ok(unsupported >= expectUnsupported, `unsupported ${unsupported} >= ${expectUnsupported} (other EtherTypes and IP protocols)`);
    assert.ok(malformed + unsupported <= sent, "no frame counted twice");
    assert.ok(malformed > sent / 4 && unsupported > sent / 20, `both counters see plenty (${malformed}, ${unsupported} of ${sent})`);
    assert.ok(c.tcpOpen <= MAX_CONNECTIONS && c.tcpOpen >= 0);
    assert.ok(fuzzMs < 5000, `fuzzing took ${fuzzMs} ms`);
    // The mutated templates that stayed valid reached the deep paths.
    assert.ok(c.arpReplies > 0 && c.dhcpLeases > 0 && c.dnsQueries > 0 && c.tcpConnections > 0, JSON.stringify(c));
    await waitUntil(() => sunk > 0, "relayed UDP datagrams to reach the host");

    // The NAT still works: a DHCP exchange, ARP and ping.
    await sleep(20);
    g.inbox.length = 0;
    g.nat.send(dhcpFrame(1, 0xabcdef));
    const offer = await g.take((x) => x.udp?.dstPort === 68 && new DataView(x.udp.payload.buffer, x.udp.payload.byteOffset).getUint32(4) === 0xabcdef, "an OFFER after the fuzz");
    assert.equal(be32(offer.udp!.payload.subarray(16, 20)), GUEST);
    g.arpRequest(GATEWAY);
    await g.take((x) => x.arp?.op === 2, "an ARP reply after the fuzz");
    g.sendIp(P.icmp(GUEST, GATEWAY, 8, 0, Uint8Array.from([0xfe, 0xed, 0, 1])));
    await g.take((x) => x.icmp?.type === 0 && hex(x.icmp.rest) === "feed0001", "an echo reply after the fuzz");
  } finally {
    g.close();
    sink.close();
    await stopServer(tcpSrv);
  }
});

test("fuzz: the switch never throws and never sends a frame back out of the port it came from", async () => {
  const SEED = 0xc0ffee;
  const r = prng(SEED);
  const sw = new Switch();
  const PORTS = 4;
  const ports: NetPort[] = [];
  const sender = new Map<Uint8Array, number>();
  const got: number[][] = []; // per port, the ids of frames delivered to it
  const ids = new Map<Uint8Array, number>();
  const violations: string[] = [];
  for (let i = 0; i < PORTS; i++) {
    const p = sw.port(`p${i}`);
    got.push([]);
    p.attach((f) => {
      if (sender.get(f) === i) violations.push(`frame ${ids.get(f)} back to port ${i}`);
      if (f.length < 14) violations.push(`runt frame ${ids.get(f)} delivered`);
      got[i]!.push(ids.get(f) ?? -1);
    });
    ports.push(p);
  }
  // Three MACs behind each port (so learning has something to learn), and some random ones.
  const macs = Array.from({ length: 3 * PORTS }, (_, k) => Uint8Array.from([0x52, 0x56, 0, 0, 0, k]));
  const N = 20_000;
  let expectedDeliveries = 0;
  // The same learning rule, to know where each frame must go (no aging within a test this short).
  const table = new Map<string, number>();
  for (let n = 0; n < N; n++) {
    const from = r.int(PORTS);
    const len = r.int(10) === 0 ? r.int(14) : 14 + r.int(200);
    const f = r.bytes(len);
    // Mostly one of the sending port's own MACs, sometimes another port's (a MAC that moved).
    if (len >= 12 && r.int(4) !== 0) f.set(r.int(5) === 0 ? macs[r.int(macs.length)]! : macs[3 * from + r.int(3)]!, 6);
    if (len >= 6 && r.int(3) !== 0) f.set(r.int(4) === 0 ? P.BROADCAST : macs[r.int(macs.length)]!, 0);
    sender.set(f, from);
    ids.set(f, n);
    if (len >= 14) {
      if ((f[6]! & 1) === 0) table.set(hex(f.subarray(6, 12)), from);
      const to = (f[0]! & 1) === 1 ? undefined : table.get(hex(f.subarray(0, 6)));
      expectedDeliveries += to === undefined ? PORTS - 1 : to === from ? 0 : 1;
    }
    try {
      ports[from]!.send(f);
    } catch (e) {
      assert.fail(`seed ${SEED.toString(16)}, frame ${n} threw: ${String(e)}`);
    }
    if (n % 100 === 99) await Promise.resolve(); // deliveries are microtasks: let them run
  }
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(violations, []);
  const stats = sw.stats();
  assert.equal(stats.ports.reduce((s, p) => s + p.framesIn, 0), N);
  assert.equal(stats.ports.reduce((s, p) => s + p.dropped, 0), 0, "no queue overflowed at 100 frames a turn");
  assert.equal(got.reduce((s, g) => s + g.length, 0), expectedDeliveries, "each frame went where the learned table says");
  assert.ok(stats.macs <= 4096);
  for (const p of ports) p.detach();
  assert.equal(sw.stats().ports.length, 0);
});

test("the switch: unicast to a learned port only, flooding otherwise, bounded queues, detach forgets", async () => {
  const sw = new Switch();
  const a = sw.port("a"), b = sw.port("b"), c = sw.port("c");
  const rx: Record<string, Uint8Array[]> = { a: [], b: [], c: [] };
  a.attach((f) => rx.a!.push(f));
  b.attach((f) => rx.b!.push(f));
  c.attach((f) => rx.c!.push(f));
  const macA = Uint8Array.from([2, 0, 0, 0, 0, 0xa]);
  const macB = Uint8Array.from([2, 0, 0, 0, 0, 0xb]);
  const tick = (): Promise<void> => new Promise((res) => setImmediate(res));
  a.send(P.ethernet(macB, macA, 0x88b5, new Uint8Array(46))); // B unknown: flooded
  await tick();
  assert.deepEqual([rx.a!.length, rx.b!.length, rx.c!.length], [0, 1, 1]);
  b.send(P.ethernet(macA, macB, 0x88b5, new Uint8Array(46))); // A learned: only to a
  await tick();
  assert.deepEqual([rx.a!.length, rx.b!.length, rx.c!.length], [1, 1, 1]);
  a.send(P.ethernet(macB, macA, 0x88b5, new Uint8Array(46))); // B learned now
  await tick();
  assert.deepEqual([rx.a!.length, rx.b!.length, rx.c!.length], [1, 2, 1]);
  // A flood of broadcasts in one turn: each other port takes QUEUE_FRAMES, the rest is dropped.
  const Q = Number(/const QUEUE_FRAMES = (\d+);/.exec(readFileSync(new URL("../../../src/host/net/switch.ts", import.meta.url), "utf8"))![1]);
  assert.ok(Q > 0 && Q < 1000);
  for (let i = 0; i < 1000; i++) a.send(P.ethernet(P.BROADCAST, macA, 0x88b5, new Uint8Array(46)));
  await tick();
  const s = sw.stats().ports;
  assert.equal(rx.b!.length - 2, Q);
  assert.equal(s.find((p) => p.name === "b")!.dropped, 1000 - Q);
  assert.equal(s.find((p) => p.name === "a")!.dropped, 0, "the sender's own queue is untouched");
  b.detach();
  a.send(P.ethernet(macB, macA, 0x88b5, new Uint8Array(46)));
  await tick();
  assert.equal(rx.b!.length - 2, Q, "a detached port gets nothing");
  assert.equal(rx.c!.length, 1 + Q + 1, "B's address was forgotten with its port: flooded to c");
});

// ---- 3-5. DHCP, ARP, ICMP ----

test("DHCP: DISCOVER gets an OFFER of 10.0.2.15 (router, DNS, /24, server id), REQUEST an ACK, both broadcast", async () => {
  const g = new Guest();
  try {
    const check = (rx: Rx, xid: number, type: number): void => {
      assert.equal(hex(rx.eth.dst), "ffffffffffff", "to the broadcast MAC");
      assert.equal(rx.ip!.src, GATEWAY);
      assert.equal(rx.ip!.dst, 0xffffffff);
      assert.deepEqual([rx.udp!.srcPort, rx.udp!.dstPort], [67, 68]);
      const b = rx.udp!.payload;
      const v = new DataView(b.buffer, b.byteOffset, b.length);
      assert.equal(b[0], 2, "BOOTREPLY");
      assert.equal(v.getUint32(4), xid);
      assert.equal(v.getUint32(16), GUEST, "yiaddr");
      assert.equal(hex(b.subarray(28, 34)), hex(GUEST_MAC), "chaddr");
      assert.equal(v.getUint32(236), 0x63825363);
      const o = dhcpOptions(b);
      assert.deepEqual([...o.get(53)!], [type]);
      assert.equal(be32(o.get(54)), GATEWAY, "server identifier");
      assert.equal(be32(o.get(1)), ip("255.255.255.0"), "subnet mask");
      assert.equal(be32(o.get(3)), GATEWAY, "router");
      assert.equal(be32(o.get(6)), DNS, "DNS server");
      assert.ok(be32(o.get(51)) >= 3600, "a lease time");
    };
    g.nat.send(dhcpFrame(1, 0x12345678));
    check(await g.take((x) => x.udp?.dstPort === 68, "a DHCPOFFER"), 0x12345678, 2);
    assert.equal(g.nat.counters.dhcpLeases, 0, "an offer is not a lease");
    g.nat.send(dhcpFrame(3, 0x9abcdef0, [50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2]));
    check(await g.take((x) => x.udp?.dstPort === 68, "a DHCPACK"), 0x9abcdef0, 5);
    assert.equal(g.nat.counters.dhcpLeases, 1);
    // DHCPINFORM (8) and RELEASE (7) are not answered; a message cut short is malformed.
    g.nat.send(dhcpFrame(8, 1));
    g.nat.send(dhcpFrame(7, 2));
    const m0 = g.nat.counters.malformed;
    g.nat.send(P.ethernet(P.BROADCAST, GUEST_MAC, P.ETH_IPV4, P.udp(0, 0xffffffff, 68, 67, dhcpMessage(1, 3).subarray(0, 239))));
    const cut = dhcpMessage(1, 4);
    cut.set([12, 200], 243); // an option running past the message
    g.nat.send(P.ethernet(P.BROADCAST, GUEST_MAC, P.ETH_IPV4, P.udp(0, 0xffffffff, 68, 67, cut)));
    assert.equal(g.nat.counters.malformed, m0 + 2);
    await g.none((x) => x.udp?.dstPort === 68, "reply to INFORM, RELEASE or malformed messages");
  } finally {
    g.close();
  }
});

test("ARP: 10.0.2.2 and 10.0.2.3 are answered with the gateway's MAC; 10.0.2.99 is not", async () => {
  const g = new Guest();
  try {
    for (const target of [GATEWAY, DNS]) {
      g.arpRequest(target);
      const rx = await g.take((x) => x.arp !== undefined, `an ARP reply for ${P.ipToString(target)}`);
      const a = rx.arp!;
      assert.equal(a.op, 2);
      assert.equal(a.senderIp, target);
      assert.equal(hex(a.senderMac), hex(GATEWAY_MAC));
      assert.equal(hex(a.targetMac), hex(GUEST_MAC));
      assert.equal(a.targetIp, GUEST);
      assert.equal(hex(rx.eth.dst), hex(GUEST_MAC));
    }
    g.arpRequest(ip("10.0.2.99"));
    g.sendEth(P.ETH_ARP, P.arp({ op: 2, senderMac: GUEST_MAC, senderIp: GUEST, targetMac: GATEWAY_MAC, targetIp: GATEWAY })); // a reply: ignored
    await g.none((x) => x.arp !== undefined, "ARP reply for 10.0.2.99 or to a reply");
    assert.equal(g.nat.counters.arpReplies, 2);
    const m0 = g.nat.counters.malformed;
    g.sendEth(P.ETH_ARP, new Uint8Array(20), P.BROADCAST);
    assert.equal(g.nat.counters.malformed, m0 + 1, "a short ARP packet is malformed");
  } finally {
    g.close();
  }
});

test("ICMP: echo to 10.0.2.2 and 10.0.2.3 is answered with the same id, sequence and data; 8.8.8.8 is not", async () => {
  const g = new Guest();
  try {
    const data = randomBytes(56);
    for (const [dst, seqNo] of [[GATEWAY, 1], [DNS, 2]] as const) {
      const rest = Buffer.concat([Buffer.from([0x4a, 0x21, 0, seqNo]), data]);
      g.sendIp(P.icmp(GUEST, dst, 8, 0, rest));
      const rx = await g.take((x) => x.icmp !== undefined, "an echo reply");
      assert.deepEqual([rx.icmp!.type, rx.icmp!.code], [0, 0]);
      assert.equal(rx.ip!.src, dst);
      assert.equal(rx.ip!.dst, GUEST);
      assert.equal(hex(rx.icmp!.rest), hex(rest), "identifier, sequence and data echoed");
    }
    const u0 = g.nat.counters.unsupported;
    g.sendIp(P.icmp(GUEST, ip("8.8.8.8"), 8, 0, Buffer.concat([Buffer.from([0, 1, 0, 3]), data])));
    g.sendIp(P.icmp(GUEST, GATEWAY, 13, 0, new Uint8Array(16))); // a timestamp request
    await g.none((x) => x.icmp !== undefined, "echo reply from beyond the NAT");
    assert.equal(g.nat.counters.unsupported, u0 + 2);
    const m0 = g.nat.counters.malformed;
    const bad = P.icmp(GUEST, GATEWAY, 8, 0, new Uint8Array(8));
    bad[24] ^= 0xff;
    g.sendIp(bad);
    assert.equal(g.nat.counters.malformed, m0 + 1, "a bad ICMP checksum is malformed");
    // Another IP protocol (GRE) is unsupported.
    g.sendIp(P.ipv4(GUEST, GATEWAY, 47, new Uint8Array(8)));
    assert.equal(g.nat.counters.unsupported, u0 + 3);
  } finally {
    g.close();
  }
});

// ---- 6-7. UDP ----

test("DNS relay: a query to 10.0.2.3:53 reaches the configured resolver; its answer comes from 10.0.2.3:53", async () => {
  const resolver = dgram.createSocket("udp4");
  const queries: Buffer[] = [];
  resolver.on("message", (m, rinfo) => {
    queries.push(m);
    resolver.send(Buffer.concat([m.subarray(0, 2), Buffer.from("answer")]), rinfo.port, rinfo.address);
  });
  const port = await listen(resolver);
  const g = new Guest({ resolver: "127.0.0.1", resolverPort: port });
  try {
    const query = Buffer.from("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01", "latin1");
    g.sendIp(P.udp(GUEST, DNS, 33333, 53, query));
    const rx = await g.take((x) => x.udp !== undefined, "the DNS answer");
    assert.equal(hex(queries[0]!), hex(query), "the query reached the resolver unchanged");
    assert.equal(rx.ip!.src, DNS);
    assert.equal(rx.ip!.dst, GUEST);
    assert.deepEqual([rx.udp!.srcPort, rx.udp!.dstPort], [53, 33333]);
    assert.equal(Buffer.from(rx.udp!.payload).toString("latin1"), "\x12\x34answer");
    assert.equal(g.nat.counters.dnsQueries, 1);
    const u0 = g.nat.counters.unsupported;
    g.sendIp(P.udp(GUEST, DNS, 33334, 5353, query)); // 10.0.2.3 serves port 53 only
    g.sendIp(P.udp(ip("10.0.2.16"), GATEWAY, 33335, port, query)); // not the guest's address
    assert.equal(g.nat.counters.unsupported, u0 + 2);
    await sleep(50);
    assert.equal(queries.length, 1);
  } finally {
    g.close();
    resolver.close();
  }
});

test("UDP to 10.0.2.2:<port> reaches 127.0.0.1:<port>; replies, from any host port, come back from 10.0.2.2", async () => {
  const server = dgram.createSocket("udp4");
  const other = dgram.createSocket("udp4");
  const got: Array<{ m: Buffer; port: number }> = [];
  server.on("message", (m, rinfo) => {
    got.push({ m, port: rinfo.port });
    server.send(Buffer.concat([Buffer.from("re:"), m]), rinfo.port, rinfo.address);
    server.send(Buffer.from("second"), rinfo.port, rinfo.address);
  });
  const port = await listen(server);
  const otherPort = await listen(other);
  const g = new Guest();
  try {
    g.sendIp(P.udp(GUEST, GATEWAY, 4444, port, Buffer.from("hello")));
    const r1 = await g.take((x) => x.udp !== undefined, "the first reply");
    const r2 = await g.take((x) => x.udp !== undefined, "the second reply");
    for (const rx of [r1, r2]) {
      assert.equal(rx.ip!.src, GATEWAY);
      assert.deepEqual([rx.udp!.srcPort, rx.udp!.dstPort], [port, 4444]);
    }
    assert.deepEqual([Buffer.from(r1.udp!.payload).toString(), Buffer.from(r2.udp!.payload).toString()], ["re:hello", "second"]);
    // The same guest port keeps its host socket (one mapping)...
    g.sendIp(P.udp(GUEST, GATEWAY, 4444, port, Buffer.from("again")));
    await g.take((x) => x.udp?.payload.length === 8, "the reply to the second datagram");
    assert.equal(got[1]!.port, got[0]!.port);
    assert.equal(g.nat.counters.udpMappings, 1);
    // ...and another host socket may answer on it: it shows as 10.0.2.2:<its port>.
    other.send(Buffer.from("from elsewhere"), got[0]!.port, "127.0.0.1");
    const r3 = await g.take((x) => x.udp?.srcPort === otherPort, "a datagram from another host port");
    assert.equal(r3.ip!.src, GATEWAY);
    assert.equal(Buffer.from(r3.udp!.payload).toString(), "from elsewhere");
    // A datagram with a bad checksum is malformed and not relayed.
    const m0 = g.nat.counters.malformed;
    const bad = P.udp(GUEST, GATEWAY, 4445, port, Buffer.from("corrupt"));
    bad[30] ^= 1;
    g.sendIp(bad);
    assert.equal(g.nat.counters.malformed, m0 + 1);
    await sleep(50);
    assert.equal(got.length, 2);
  } finally {
    g.close();
    server.close();
    other.close();
  }
});

// ---- 8. TCP from the guest ----

test("TCP from the guest: 1 MiB each way to a host server, SHA-256 checked; MSS both ways", async () => {
  const up = randomBytes(1 << 20);
  const down = randomBytes(1 << 20);
  let serverGot: Promise<{ n: number; hash: string }> | undefined;
  // A request/response server: read everything, then answer and close.
  const srv = await hostServer((s) => {
    serverGot = drainSocket(s);
    void serverGot.then(() => s.end(down));
  }, { allowHalfOpen: true });
  const g = new Guest();
  try {
    const t0 = Date.now();
    const c = g.tcp(40000, GATEWAY, srv.port, { mss: 1200 });
    c.connect();
    await waitUntil(() => c.state === "established", "the handshake");
    const synAck = c.log[0]!;
    assert.equal(synAck.flags, P.TCP_SYN | P.TCP_ACK);
    assert.equal(synAck.ack, add(c.iss, 1));
    assert.equal(synAck.mss, NAT_MSS, "the NAT's SYN-ACK carries its MSS");
    c.write(up);
    c.end();
    await waitUntil(() => c.peerFin && c.finAcked, "both directions to finish", 10_000);
    const ms = Date.now() - t0;
    const got = await serverGot!;
    assert.equal(got.n, up.length);
    assert.equal(got.hash, sha(up), "the host received what the guest sent");
    assert.equal(c.receivedBytes, down.length);
    assert.equal(sha(c.received()), sha(down), "the guest received what the host sent");
    const sizes = c.log.map((s) => s.len);
    assert.equal(Math.max(...sizes), 1200, "the NAT's segments respect the guest's MSS, and fill it");
    assert.equal(g.nat.counters.bytesFromGuest, up.length);
    assert.ok(g.nat.counters.bytesToGuest >= down.length);
    await waitUntil(() => g.nat.counters.tcpOpen === 0, "the connection to be forgotten");
    assert.ok(ms < 5000, `2 MiB took ${ms} ms`);
  } finally {
    g.close();
    await stopServer(srv);
  }
});

test("TCP: the host closes first (half-close): the guest still sends, its FIN is acknowledged", async () => {
  let serverGot: Promise<{ n: number; hash: string }> | undefined;
  // A server that sends a greeting and shuts down its side at once, then reads to the end.
  const srv = await hostServer((s) => {
    serverGot = drainSocket(s);
    s.end("greeting");
  }, { allowHalfOpen: true });
  const g = new Guest();
  try {
    const c = g.tcp(40001, GATEWAY, srv.port);
    c.connect();
    await waitUntil(() => c.peerFin, "the host's FIN");
    assert.equal(c.received().toString(), "greeting");
    const up = randomBytes(300_000);
    c.write(up);
    c.end();
    await waitUntil(() => c.finAcked || c.state === "reset", "the guest's FIN to be acknowledged");
    const got = await serverGot!;
    assert.equal(got.n, up.length, "the host got all the guest sent after the host's FIN");
    assert.equal(got.hash, sha(up));
    assert.ok(c.finAcked, "the guest's last FIN is acknowledged (not left to be answered with RST)");
    await waitUntil(() => g.nat.counters.tcpOpen === 0, "the connection to be forgotten");
  } finally {
    g.close();
    await stopServer(srv);
  }
});

test("TCP: bytes the NAT acknowledged reach a slow host reader even when the guest closes at once", async () => {
  // The host reads nothing until the guest has finished, so the NAT holds a window's worth of
  // the guest's bytes when the guest's FIN arrives; they must still reach the host.
  let hostSocket: net.Socket | undefined;
  let serverGot: Promise<{ n: number; hash: string }> | undefined;
  const srv = await hostServer((s) => {
    hostSocket = s;
    serverGot = drainSocket(s);
    s.pause();
    s.end(); // the host closes its side first
  }, { allowHalfOpen: true });
  const g = new Guest();
  try {
    const c = g.tcp(40002, GATEWAY, srv.port);
    c.connect();
    await waitUntil(() => c.peerFin && hostSocket !== undefined, "the host's FIN");
    const up = randomBytes(32 << 20);
    c.write(up);
    // Send until the NAT's window closes (its socket to the host is backed up), then finish.
    await waitUntil(() => c.state !== "established" || (c.peerWnd === 0 && c.inFlight === 0), "the NAT's window to close", 10_000);
    assert.equal(c.state, "established", "not reset: the NAT keeps taking data after the host's FIN");
    const sent = (c.sndNxt - c.iss - 1) >>> 0;
    c.out = c.out.subarray(0, 0);
    c.end();
    await waitUntil(() => c.finAcked || c.state === "reset", "the guest's FIN to be acknowledged");
    assert.ok(c.finAcked, "the FIN is acknowledged");
    hostSocket!.resume();
    const got = await serverGot!;
    assert.equal(got.n, sent, `the host gets every byte the NAT acknowledged (${sent})`);
    assert.equal(got.hash, sha(up.subarray(0, sent)));
    await waitUntil(() => g.nat.counters.tcpOpen === 0, "the connection to be forgotten");
  } finally {
    g.close();
    await stopServer(srv);
  }
});

test("TCP: a connection to a closed port gets RST; a segment for no connection gets RST", async () => {
  const port = await freePort();
  const g = new Guest();
  try {
    const c = g.tcp(40003, GATEWAY, port);
    c.connect();
    await waitUntil(() => c.state === "reset", "RST from a closed port");
    const rst = c.log.at(-1)!;
    assert.equal(rst.flags, P.TCP_RST | P.TCP_ACK);
    assert.equal(rst.ack, add(c.iss, 1), "the RST acknowledges the SYN");
    assert.equal(g.nat.counters.tcpRefused, 1);
    assert.equal(g.nat.counters.tcpOpen, 0);
    // An ACK for a connection that does not exist: RST with its acknowledgment number as sequence.
    g.sendIp(P.tcp(GUEST, GATEWAY, { srcPort: 40004, dstPort: port, seq: 1000, ack: 777, flags: P.TCP_ACK, window: 100, payload: new Uint8Array(10) }));
    const rx = await g.take((x) => x.tcp?.dstPort === 40004, "RST for a stray segment");
    assert.equal(rx.tcp!.flags, P.TCP_RST);
    assert.equal(rx.tcp!.seq, 777);
    // An RST for nothing is not answered; neither are SYNs to 10.0.2.3 or to other 10.0.2.x, which get RST.
    g.sendIp(P.tcp(GUEST, GATEWAY, { srcPort: 40005, dstPort: port, seq: 1, ack: 0, flags: P.TCP_RST, window: 0 }));
    await g.none((x) => x.tcp?.dstPort === 40005, "answer to an RST");
    for (const dst of [DNS, ip("10.0.2.77")]) {
      g.sendIp(P.tcp(GUEST, dst, { srcPort: 40006, dstPort: 80, seq: 5, ack: 0, flags: P.TCP_SYN, window: 100 }));
      const r2 = await g.take((x) => x.tcp?.dstPort === 40006, `RST from ${P.ipToString(dst)}`);
      assert.equal(r2.tcp!.flags, P.TCP_RST | P.TCP_ACK);
      assert.equal(r2.tcp!.ack, 6);
      assert.equal(r2.ip!.src, dst);
    }
    assert.equal(g.nat.counters.tcpRefused, 3);
  } finally {
    g.close();
  }
});

test("TCP: a data segment the guest drops is sent again after the retransmission timeout", async () => {
  const down = randomBytes(200_000);
  const srv = await hostServer((s) => s.end(down));
  const g = new Guest();
  try {
    const c = g.tcp(40007, GATEWAY, srv.port);
    let dropped: { seq: number; at: number; payload: Buffer } | undefined;
    c.drop = (t) => {
      if (dropped || t.payload.length === 0) return false;
      dropped = { seq: t.seq, at: Date.now(), payload: Buffer.from(t.payload) };
      return true;
    };
    c.connect();
    await waitUntil(() => c.peerFin, "the whole stream", 5000);
    assert.ok(dropped);
    assert.equal(sha(c.received()), sha(down));
    const again = c.log.filter((s) => s.seq === dropped!.seq && s.len > 0);
    assert.ok(again.length >= 2, "the dropped segment's sequence number was sent again");
    const delay = again[1]!.at - dropped.at;
    assert.ok(delay >= RTO_MS * 0.8 && delay < RTO_MS * 4, `resent after ${delay} ms (RTO ${RTO_MS} ms)`);
    const off = (dropped.seq - c.irs - 1) >>> 0;
    assert.equal(off, 0, "the first data segment was the one dropped");
    assert.equal(hex(c.received().subarray(off, off + dropped.payload.length)), hex(dropped.payload), "with the same bytes");
  } finally {
    g.close();
    await stopServer(srv);
  }
});

test("TCP: a zero window from the guest stops the NAT sending until a window update", async () => {
  const down = randomBytes(512 << 10);
  const srv = await hostServer((s) => s.end(down));
  const g = new Guest();
  try {
    const c = g.tcp(40008, GATEWAY, srv.port, { cap: 65535, autoRead: false });
    c.connect();
    await waitUntil(() => c.receivedBytes >= 65535, "a window's worth");
    await sleep(RTO_MS * 2.5); // long enough for retransmissions or probes, were there any
    assert.equal(c.receivedBytes, 65535, "nothing beyond the guest's window");
    assert.equal(c.rcvWnd, 0);
    const beyond = c.log.filter((s) => s.len > 0 && ((s.seq - c.irs - 1) >>> 0) + s.len > 65535);
    assert.deepEqual(beyond, [], "no data segment (nor probe) beyond the window");
    assert.equal(g.nat.counters.bytesToGuest, 65535);
    const first = c.read();
    assert.equal(first.length, 65535);
    c.autoRead = true;
    await waitUntil(() => c.peerFin, "the rest of the stream after the window update");
    assert.equal(sha(c.received()), sha(down));
  } finally {
    g.close();
    await stopServer(srv);
  }
});

test("TCP: a batch of the guest's data segments gets one ACK, for all of them (delayed ACK); a FIN with data, one ACK of both", async () => {
  let serverGot: Promise<{ n: number; hash: string }> | undefined;
  const srv = await hostServer((s) => { serverGot = drainSocket(s); }, { allowHalfOpen: true });
  const g = new Guest();
  try {
    const c = g.tcp(40010, GATEWAY, srv.port);
    c.connect();
    await waitUntil(() => c.state === "established", "the handshake");
    const before = c.log.length;
    // Ten segments in one go, as a driver hands over a notification's worth of frames.
    const data = randomBytes(10 * 1000);
    const start = c.sndNxt;
    for (let i = 0; i < 10; i++) c.segment(P.TCP_ACK | P.TCP_PSH, add(start, i * 1000), data.subarray(i * 1000, (i + 1) * 1000));
    await sleep(50);
    const acks = c.log.slice(before);
    assert.deepEqual(acks.map((a) => [(a.ack - start) >>> 0, a.len]), [[10_000, 0]], "one ACK, of all ten");
    // Then the same in two batches: an ACK after each.
    const b2 = c.log.length;
    const next = add(start, 10_000);
    c.segment(P.TCP_ACK, next, data.subarray(0, 500));
    await new Promise((res) => setImmediate(res));
    c.segment(P.TCP_ACK, add(next, 500), data.subarray(500, 1000));
    await sleep(50);
    assert.deepEqual(c.log.slice(b2).map((a) => (a.ack - next) >>> 0), [500, 1000]);
    // A FIN with data: acknowledged at once, the data and the FIN in one.
    const b3 = c.log.length;
    const fin = add(next, 1000);
    c.segment(P.TCP_ACK | P.TCP_FIN, fin, data.subarray(0, 100));
    await sleep(50);
    assert.deepEqual(c.log.slice(b3).map((a) => [(a.ack - fin) >>> 0, a.flags & P.TCP_FIN]), [[101, 0]], "one ACK of the data and the FIN");
    assert.equal((await serverGot!).n, 11_100);
  } finally {
    g.close();
    await stopServer(srv);
  }
});

test("TCP: a guest that ignores the NAT's window cannot make it buffer without bound", async () => {
  // The host never reads; the guest sends 24 MiB regardless of the window the NAT advertises.
  // The NAT must drop what is beyond its window (and acknowledge no more than it took).
  const srv = await hostServer((s) => s.pause());
  const g = new Guest();
  try {
    const c = g.tcp(40009, GATEWAY, srv.port);
    c.connect();
    await waitUntil(() => c.state === "established", "the handshake");
    const chunk = randomBytes(1460);
    let seq = c.sndNxt;
    for (let i = 0; i < (24 << 20) / 1460; i++) {
      c.segment(P.TCP_ACK, seq, chunk);
      seq = add(seq, chunk.length);
      if (i % 500 === 0) await new Promise((res) => setImmediate(res));
    }
    await sleep(50);
    const acked = (c.log.at(-1)!.ack - c.sndUna) >>> 0;
    const taken = g.nat.counters.bytesFromGuest;
    assert.equal(acked, taken, "the NAT acknowledges exactly what it took");
    assert.ok(taken < 12 << 20, `the NAT took ${taken} of 24 MiB while the host read nothing`);
    assert.equal(c.log.at(-1)!.window, 0, "and advertises a zero window");
  } finally {
    g.close();
    await stopServer(srv);
  }
});

// ---- 9. port forwards ----

test("a port forward: a host client's connection becomes a SYN into the guest; 1 MiB echoed back", async () => {
  const g = new Guest();
  const hostPort = await freePort();
  try {
    g.arpRequest(GATEWAY); // the NAT learns the guest's MAC from its frames
    await g.nat.forward({ hostPort, guestPort: 8080 });
    assert.deepEqual(g.nat.forwards(), [{ hostPort, guestPort: 8080 }]);
    let conn: GuestTcp | undefined;
    g.listeners.set(8080, (c) => {
      conn = c;
      c.onData = (d) => c.write(d); // an echo server in the guest
      c.onFin = () => c.end();
    });
    const data = randomBytes(1 << 20);
    const client = net.connect({ port: hostPort, host: "127.0.0.1" });
    const back = drainSocket(client);
    client.write(data);
    client.end(); // half-close: the echo still comes back
    const got = await back;
    assert.ok(conn);
    const syn = conn.log[0]!;
    assert.equal(syn.flags, P.TCP_SYN);
    assert.equal(syn.mss, NAT_MSS);
    assert.equal(conn.remoteIp, GATEWAY, "the connection comes from 10.0.2.2");
    assert.ok(conn.remotePort >= 1024);
    assert.equal(got.n, data.length);
    assert.equal(got.hash, sha(data));
    assert.equal(g.nat.counters.forwardedConnections, 1);
    await waitUntil(() => g.nat.counters.tcpOpen === 0, "the forwarded connection to be forgotten");
    // Unforwarding stops the listener.
    assert.equal(g.nat.unforward(hostPort), true);
    assert.equal(g.nat.unforward(hostPort), false);
    await new Promise<void>((resolve) => {
      const s = net.connect({ port: hostPort, host: "127.0.0.1" });
      s.on("error", (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, "ECONNREFUSED");
        resolve();
      });
    });
  } finally {
    g.close();
  }
});

test("a port forward: host data before the guest answers waits; a guest that never answers gets the client dropped", async () => {
  const g = new Guest();
  const hostPort = await freePort();
  try {
    // No frame from the guest yet: the NAT does not know where to send a SYN and refuses.
    await g.nat.forward({ hostPort, guestPort: 22 });
    const early = net.connect({ port: hostPort, host: "127.0.0.1" });
    await new Promise<void>((resolve) => { early.on("close", () => resolve()); early.on("error", () => {}); });
    assert.equal(g.nat.counters.tcpRefused, 1);
    g.arpRequest(GATEWAY);
    let conn: GuestTcp | undefined;
    g.listeners.set(22, (c) => {
      conn = c;
      c.drop = (t) => (t.flags & P.TCP_SYN) !== 0 && c.log.length < 2; // ignore the first SYN
      c.onData = (d) => c.write(Buffer.from(d.toString().toUpperCase()));
    });
    const client = net.connect({ port: hostPort, host: "127.0.0.1" });
    const chunks: Buffer[] = [];
    client.on("data", (d: Buffer) => chunks.push(d));
    client.write("sent before the handshake");
    await waitUntil(() => Buffer.concat(chunks).toString() === "SENT BEFORE THE HANDSHAKE", "the echo", 5000);
    assert.ok(conn!.log.filter((s) => s.flags === P.TCP_SYN).length >= 2, "the SYN was retransmitted");
    client.destroy();
    await waitUntil(() => conn!.state === "reset" || conn!.peerFin, "the guest to hear of the client's close");
  } finally {
    g.close();
  }
});

test("forwarding a host port in use, or twice, is a clear UserError", async () => {
  const g = new Guest();
  const blocker = net.createServer();
  const port = await listen(blocker);
  try {
    await assert.rejects(g.nat.forward({ hostPort: port, guestPort: 80 }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, new RegExp(`${port}.*in use`));
      return true;
    });
    assert.deepEqual(g.nat.forwards(), []);
    const free = await freePort();
    await g.nat.forward({ hostPort: free, guestPort: 80 });
    await assert.rejects(g.nat.forward({ hostPort: free, guestPort: 81 }), (e: unknown) => e instanceof UserError && /already forwarded/.test(e.message));
  } finally {
    g.close();
    await closeServer(blocker);
  }
});

// ---- 10. limits ----

test("limits: a flood of 2,000 SYNs stays within the half-open limit, the rest get RST, the host stays responsive", async () => {
  const srv = await hostServer((s) => s.on("data", (d) => s.write(d)));
  const g = new Guest();
  try {
    g.arpRequest(GATEWAY);
    let late = -1;
    const due = Date.now() + 20;
    setTimeout(() => { late = Date.now() - due; }, 20);
    const t0 = Date.now();
    let maxOpen = 0;
    for (let i = 0; i < 2000; i++) {
      g.sendIp(P.tcp(GUEST, GATEWAY, { srcPort: 20000 + i, dstPort: srv.port, seq: 1000 * i, ack: 0, flags: P.TCP_SYN, window: 65535, mss: 1460 }));
      maxOpen = Math.max(maxOpen, g.nat.counters.tcpOpen);
    }
    const floodMs = Date.now() - t0;
    assert.ok(maxOpen <= MAX_HALF_OPEN && maxOpen <= MAX_CONNECTIONS, `at most ${MAX_HALF_OPEN} half-open (${maxOpen})`);
    const answered = (): { synAck: Set<number>; rst: Set<number> } => {
      const synAck = new Set<number>(), rst = new Set<number>();
      for (const x of g.inbox) {
        if (!x.tcp) continue;
        if (x.tcp.flags === (P.TCP_SYN | P.TCP_ACK)) synAck.add(x.tcp.dstPort);
        else if ((x.tcp.flags & P.TCP_RST) !== 0) rst.add(x.tcp.dstPort);
      }
      return { synAck, rst };
    };
    await waitUntil(() => { const a = answered(); return a.synAck.size + a.rst.size >= 2000; }, "every SYN answered");
    await waitUntil(() => late >= 0, "the timer");
    const { synAck, rst } = answered();
    assert.equal(synAck.size, MAX_HALF_OPEN, "exactly the half-open limit got SYN-ACKs");
    assert.equal(rst.size, 2000 - MAX_HALF_OPEN, "the rest got RST");
    for (const p of synAck) assert.ok(!rst.has(p), "no port got both");
    assert.ok(g.nat.counters.tcpOpen <= MAX_HALF_OPEN);
    assert.equal(g.nat.counters.tcpRefused, 2000 - MAX_HALF_OPEN);
    assert.ok(floodMs < 1000 && late < 500, `the flood took ${floodMs} ms; a 20 ms timer fired ${late} ms late`);
    // The guest resets its half-open connections; then a normal connection works.
    for (const p of synAck) g.sendIp(P.tcp(GUEST, GATEWAY, { srcPort: p, dstPort: srv.port, seq: 1000 * (p - 20000) + 1, ack: 0, flags: P.TCP_RST, window: 0 }));
    assert.equal(g.nat.counters.tcpOpen, 0, "the RSTs closed them");
    g.inbox.length = 0;
    const c = g.tcp(30000, GATEWAY, srv.port);
    c.connect();
    await waitUntil(() => c.state === "established", "a normal connection after the flood");
    c.write(Buffer.from("still here"));
    await waitUntil(() => c.received().toString() === "still here", "the echo");
    c.rst();
  } finally {
    g.close();
    await stopServer(srv);
  }
});

test("limits: 1,000 concurrent connections work; beyond the limit connections are refused with RST", async () => {
  const srv = await hostServer((s) => s.on("data", (d) => s.write(d)));
  const g = new Guest();
  try {
    const t0 = Date.now();
    const conns: GuestTcp[] = [];
    // Batches below the half-open limit, as a guest's connect() calls would come.
    for (let b = 0; b < 10; b++) {
      const batch: GuestTcp[] = [];
      for (let i = 0; i < 100; i++) {
        const c = g.tcp(10000 + conns.length + i, GATEWAY, srv.port);
        c.connect();
        batch.push(c);
      }
      await waitUntil(() => batch.every((c) => c.state === "established"), `batch ${b} established`);
      conns.push(...batch);
    }
    assert.equal(g.nat.counters.tcpOpen, 1000);
    await waitUntil(() => srv.sockets.length === 1000, "the host to accept 1,000");
    for (const c of conns) c.write(Buffer.from(`conn ${c.localPort}`));
    await waitUntil(() => conns.every((c) => c.received().toString() === `conn ${c.localPort}`), "1,000 echoes");
    // Up to the limit, and past it.
    const extra: GuestTcp[] = [];
    for (let i = 0; i < MAX_CONNECTIONS - 1000 + 20; i++) {
      const c = g.tcp(15000 + i, GATEWAY, srv.port);
      c.connect();
      extra.push(c);
    }
    await waitUntil(() => extra.every((c) => c.state === "established" || c.state === "reset"), "the extra connections to settle");
    assert.equal(extra.filter((c) => c.state === "established").length, MAX_CONNECTIONS - 1000);
    assert.equal(extra.filter((c) => c.state === "reset").length, 20);
    assert.equal(g.nat.counters.tcpOpen, MAX_CONNECTIONS);
    // Everything closes cleanly: the guest's FINs, the host's FINs in return.
    for (const s of srv.sockets) s.on("end", () => s.end());
    for (const c of [...conns, ...extra]) if (c.state === "established") c.end();
    await waitUntil(() => g.nat.counters.tcpOpen === 0, "every connection closed", 10_000);
    assert.ok(conns.every((c) => c.peerFin && c.finAcked));
    const ms = Date.now() - t0;
    assert.ok(ms < 8000, `1,024 connections took ${ms} ms`);
  } finally {
    g.close();
    await stopServer(srv);
  }
});

// ---- 11. close ----

// The NAT's host-side handles (private; the test looks at them to see they are released).
function internals(nat: Nat): { sockets: net.Socket[]; udp: dgram.Socket[]; servers: net.Server[] } {
  const n = nat as unknown as { conns: Map<string, { socket: net.Socket }>; udp: Map<number, { sock: dgram.Socket }>; servers: Map<number, net.Server> };
  return { sockets: [...n.conns.values()].map((c) => c.socket), udp: [...n.udp.values()].map((m) => m.sock), servers: [...n.servers.values()] };
}

const liveHandles = (): number => process.getActiveResourcesInfo().filter((r) => /TCP|UDP|Pipe/.test(r)).length;

test("nat.close() closes every host socket and server; nothing of it keeps the process alive", async () => {
  const srv = await hostServer(() => {});
  const udpSrv = dgram.createSocket("udp4");
  const seen: number[] = [];
  udpSrv.on("message", (_m, rinfo) => seen.push(rinfo.port));
  const udpPort = await listen(udpSrv);
  const baseline = liveHandles();
  const g = new Guest();
  const hostPort = await freePort();
  try {
    g.arpRequest(GATEWAY);
    // A connection from the guest, one forwarded into it, a UDP mapping, and a listener.
    const c = g.tcp(40010, GATEWAY, srv.port);
    c.connect();
    await waitUntil(() => c.state === "established", "a guest connection");
    await g.nat.forward({ hostPort, guestPort: 9000 });
    g.listeners.set(9000, () => {});
    const client = net.connect({ port: hostPort, host: "127.0.0.1" });
    client.on("error", () => {});
    await waitUntil(() => g.nat.counters.forwardedConnections === 1 && g.conns.size === 2, "a forwarded connection");
    g.sendIp(P.udp(GUEST, GATEWAY, 7777, udpPort, Buffer.from("x")));
    await waitUntil(() => seen.length === 1, "the datagram");
    const h = internals(g.nat);
    assert.equal(h.sockets.length, 2);
    assert.equal(h.udp.length, 1);
    assert.equal(h.servers.length, 1);
    assert.ok(liveHandles() > baseline, "the NAT's TCP connections are live handles");

    g.nat.close();
    assert.ok(h.sockets.every((s) => s.destroyed), "every host TCP socket destroyed");
    assert.ok(h.servers.every((s) => !s.listening), "every forward's server closed");
    for (const u of h.udp) assert.throws(() => u.address(), /Not running/i, "every UDP socket closed");
    assert.deepEqual(g.nat.forwards(), []);
    assert.equal(g.nat.counters.tcpOpen, 0);
    // The far ends see it.
    const hs = srv.sockets[0]!;
    await waitUntil(() => hs.readableEnded || hs.destroyed, "the host server's socket to end");
    await new Promise<void>((resolve) => { if (client.destroyed) resolve(); else client.on("close", () => resolve()); });
    // A closed NAT takes no frames and sends none.
    const inBefore = g.nat.counters.framesIn;
    const delivered = g.delivered;
    g.arpRequest(GATEWAY);
    g.nat.send(dhcpFrame(1, 5));
    await sleep(20);
    assert.equal(g.nat.counters.framesIn, inBefore);
    assert.equal(g.delivered, delivered);
    await waitUntil(() => liveHandles() <= baseline, "the NAT's handles to be gone");
  } finally {
    g.close();
    udpSrv.close();
    await stopServer(srv);
  }
});
