// User-mode NAT: a guest's network card plugged into the host's own sockets, needing no
// privileges (QEMU's "user" networking has the same shape and the same addresses):
//
//   10.0.2.0/24   the guest's network
//   10.0.2.2      the gateway, which is also the host: connections to it reach the host's loopback
//   10.0.2.3      the DNS server: queries are relayed to the host's resolver (/etc/resolv.conf)
//   10.0.2.15     the guest, handed out by the built-in DHCP server
//
// The NAT is the other end of the guest's Ethernet link. It answers ARP for its two addresses
// and ICMP echo to them, serves DHCP, carries UDP through one host datagram socket per guest
// source port, and terminates the guest's TCP connections in a small TCP of its own whose other
// side is a host socket (net.Socket), relaying bytes both ways with flow control: a slow reader
// on either side stops the other (the advertised window, socket pause/resume) instead of
// buffering without bound. Port forwards listen on host ports and open TCP connections into the
// guest.
//
// Everything is bounded (connections, half-open connections, UDP mappings, bytes queued per
// connection), so a guest that floods SYNs or opens a thousand connections costs the host a
// bounded amount and other guests (each has its own NAT) never notice.
//
// The guest's link is a virtio ring, so segments are lost only when the guest stops taking them;
// the TCP here retransmits from the oldest unacknowledged byte after a timeout (go-back-N), which
// is all such a link needs. Thread: the host's main thread.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, connect, type Server, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import { randomInt } from "node:crypto";
import type { NetPort } from "../../devices/virtio/net.js";
import { UserError } from "../../errors.js";
import * as P from "./packet.js";

export const NAT_NET = P.ipFromString("10.0.2.0")!;
export const GATEWAY = P.ipFromString("10.0.2.2")!;
export const DNS = P.ipFromString("10.0.2.3")!;
export const GUEST = P.ipFromString("10.0.2.15")!;
const MASK = P.ipFromString("255.255.255.0")!;
const GATEWAY_MAC = Uint8Array.from([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]);
const LOOPBACK = "127.0.0.1";

const MSS = 1460;
const MAX_CONNECTIONS = 1024;
const MAX_HALF_OPEN = 128;
const MAX_UDP = 256;
const UDP_IDLE_MS = 60_000;
const RTO_MS = 400;
const MAX_RETRIES = 12;
// Bytes a connection holds from the host side before it pauses the host socket.
const SEND_HIGH = 256 << 10;
const SEND_LOW = 64 << 10;
const RECV_WINDOW = 65535;
const LEASE_S = 86400;

export interface Forward {
  hostPort: number;
  guestPort: number;
  hostAddress?: string; // default 127.0.0.1
}

export interface NatCounters {
  framesIn: number;
  framesOut: number;
  malformed: number; // frames, packets or segments that did not parse (bad lengths, checksums)
  unsupported: number; // IPv6, fragments, ICMP beyond echo to the gateway, ...
  arpReplies: number;
  dhcpLeases: number;
  dnsQueries: number;
  udpMappings: number;
  tcpConnections: number; // opened, in total
  tcpOpen: number; // open now
  tcpRefused: number; // refused by the host, or over the limits
  forwardedConnections: number;
  bytesToGuest: number;
  bytesFromGuest: number;
}

const seqLt = (a: number, b: number): boolean => ((a - b) | 0) < 0;
const seqLe = (a: number, b: number): boolean => ((a - b) | 0) <= 0;
const add = (a: number, n: number): number => (a + n) >>> 0;

type State = "connecting" | "syn-received" | "syn-sent" | "established" | "closed";

// One TCP connection between the guest and a host socket.
class Conn {
  state: State;
  rcvNxt = 0; // next sequence number expected from the guest
  iss: number;
  sndUna: number; // oldest byte the guest has not acknowledged
  sndNxt: number; // next byte to send
  sndWnd = 0; // the guest's window
  mss = 536;
  pending: Buffer = Buffer.alloc(0); // bytes from sndUna on: sent and not acknowledged, then not yet sent
  hostEnded = false; // the host side sent its last byte (FIN to send after pending)
  finSent = false;
  guestFin = false; // the guest sent FIN (we acknowledged it)
  paused = false;
  retries = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly nat: Nat,
    readonly key: string,
    readonly guestPort: number,
    readonly remoteIp: number, // the address the guest sees on the other end
    readonly remotePort: number,
    readonly socket: Socket,
    state: State,
  ) {
    this.state = state;
    this.iss = randomInt(0, 2 ** 32);
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
  }

  segment(flags: number, seq: number, payload?: Uint8Array, mss?: number): void {
    const window = Math.max(0, RECV_WINDOW - this.socket.writableLength);
    this.nat.sendIp(P.tcp(this.remoteIp, GUEST, { srcPort: this.remotePort, dstPort: this.guestPort, seq, ack: this.rcvNxt, flags, window, mss, payload }));
  }

  // Sends what the guest's window allows, and the FIN once everything before it is out.
  pump(): void {
    if (this.state !== "established") return;
    for (;;) {
      const inFlight = (this.sndNxt - this.sndUna) >>> 0;
      const room = Math.min(this.sndWnd, this.pending.length) - inFlight;
      if (room <= 0 || inFlight >= this.pending.length) break;
      const n = Math.min(room, this.mss, this.pending.length - inFlight);
      const data = this.pending.subarray(inFlight, inFlight + n);
      this.segment(P.TCP_ACK | P.TCP_PSH, this.sndNxt, data);
      this.nat.counters.bytesToGuest += n;
      this.sndNxt = add(this.sndNxt, n);
    }
    const allOut = ((this.sndNxt - this.sndUna) >>> 0) === this.pending.length;
    if (this.hostEnded && !this.finSent && allOut) {
      this.segment(P.TCP_ACK | P.TCP_FIN, this.sndNxt);
      this.sndNxt = add(this.sndNxt, 1);
      this.finSent = true;
    }
    if (this.sndNxt !== this.sndUna) this.arm();
    if (this.paused && this.pending.length < SEND_LOW) {
      this.paused = false;
      this.socket.resume();
    }
  }

  fromHost(data: Buffer): void {
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    if (this.pending.length > SEND_HIGH && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.pump();
  }

  arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timeout();
    }, RTO_MS);
    this.timer.unref();
  }

  private timeout(): void {
    if (this.state === "closed") return;
    if (++this.retries > MAX_RETRIES) {
      this.reset();
      return;
    }
    if (this.state === "syn-received") {
      this.segment(P.TCP_SYN | P.TCP_ACK, this.iss, undefined, MSS);
      this.arm();
      return;
    }
    if (this.state === "syn-sent") {
      this.segment(P.TCP_SYN, this.iss, undefined, MSS);
      this.arm();
      return;
    }
    // Go back to the oldest unacknowledged byte; a zero window gets a one-byte probe this way too.
    if (this.sndNxt !== this.sndUna) {
      this.sndNxt = this.sndUna;
      this.finSent = false;
      if (this.sndWnd === 0 && this.pending.length > 0) {
        this.segment(P.TCP_ACK, this.sndNxt, this.pending.subarray(0, 1));
        this.sndNxt = add(this.sndNxt, 1);
        this.arm();
      }
      this.pump();
    }
  }

  // The guest acknowledged up to `ack`.
  acked(ack: number, window: number): void {
    this.sndWnd = window;
    if (seqLt(this.sndUna, ack) && seqLe(ack, this.sndNxt)) {
      let n = (ack - this.sndUna) >>> 0;
      if (this.finSent && ack === this.sndNxt) n -= 1; // the FIN's sequence number
      this.pending = this.pending.subarray(Math.min(n, this.pending.length));
      this.sndUna = ack;
      this.retries = 0;
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    }
    this.pump();
    this.closeIfDone();
  }

  // Both directions are over: our FIN acknowledged, the guest's taken, and every byte from the
  // guest handed to the host's socket (destroying it sooner would drop what it still queues).
  closeIfDone(): void {
    if (this.finSent && this.sndUna === this.sndNxt && this.guestFin && this.socket.writableFinished) this.close();
  }

  reset(): void {
    if (this.state === "closed") return;
    this.segment(P.TCP_RST | P.TCP_ACK, this.sndNxt);
    this.close();
  }

  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    if (this.timer) clearTimeout(this.timer);
    this.socket.destroy();
    this.nat.forget(this);
  }
}

export class Nat implements NetPort {
  readonly counters: NatCounters = {
    framesIn: 0, framesOut: 0, malformed: 0, unsupported: 0, arpReplies: 0, dhcpLeases: 0, dnsQueries: 0, udpMappings: 0,
    tcpConnections: 0, tcpOpen: 0, tcpRefused: 0, forwardedConnections: 0, bytesToGuest: 0, bytesFromGuest: 0,
  };
  private deliver: ((frame: Uint8Array) => void) | undefined;
  private guestMac: Uint8Array | undefined;
  private readonly conns = new Map<string, Conn>();
  private readonly udp = new Map<number, { sock: UdpSocket; lastMs: number }>();
  private readonly servers = new Map<number, { server: Server; forward: Forward }>(); // by host port
  private readonly resolver: string;
  private readonly resolverPort: number;
  private udpSweep: NodeJS.Timeout | undefined;
  private closed = false;
  // Connections owed an ACK at the end of the current batch of the guest's frames.
  private readonly owed = new Set<Conn>();

  // `resolver`: where DNS queries to 10.0.2.3 go (default: the host's, port 53).
  constructor(opts: { resolver?: string; resolverPort?: number } = {}) {
    this.resolver = opts.resolver ?? hostResolver();
    this.resolverPort = opts.resolverPort ?? 53;
  }

  private ackLater(c: Conn): void {
    if (this.owed.size === 0) queueMicrotask(() => this.sendOwedAcks());
    this.owed.add(c);
  }

  private sendOwedAcks(): void {
    for (const c of this.owed) if (c.state !== "closed") c.segment(P.TCP_ACK, c.sndNxt);
    this.owed.clear();
  }

  // ---- NetPort ----
  attach(deliver: (frame: Uint8Array) => void): void {
    this.deliver = deliver;
  }

  detach(): void {
    this.close();
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    this.counters.framesIn++;
    const eth = P.parseEthernet(frame);
    if (!eth) return void this.counters.malformed++;
    if ((eth.src[0]! & 1) === 0) this.guestMac ??= eth.src.slice();
    if (eth.type === P.ETH_ARP) return this.onArp(eth);
    if (eth.type !== P.ETH_IPV4) return void this.counters.unsupported++;
    const ip = P.parseIpv4(eth.payload);
    if (!ip) return void this.counters.malformed++;
    if (ip.proto === P.PROTO_UDP) return this.onUdp(ip);
    if (ip.proto === P.PROTO_TCP) return this.onTcp(ip);
    if (ip.proto === P.PROTO_ICMP) return this.onIcmp(ip);
    this.counters.unsupported++;
  }

  sendIp(packet: Uint8Array, dstMac?: Uint8Array): void {
    const mac = dstMac ?? this.guestMac;
    if (!mac || !this.deliver || this.closed) return;
    this.counters.framesOut++;
    this.deliver(P.ethernet(mac, GATEWAY_MAC, P.ETH_IPV4, packet));
  }

  // ---- ARP, ICMP ----
  private onArp(eth: P.Ethernet): void {
    const a = P.parseArp(eth.payload);
    if (!a) return void this.counters.malformed++;
    if (a.op !== 1 || (a.targetIp !== GATEWAY && a.targetIp !== DNS)) return;
    this.counters.arpReplies++;
    this.deliver?.(P.ethernet(a.senderMac, GATEWAY_MAC, P.ETH_ARP, P.arp({ op: 2, senderMac: GATEWAY_MAC, senderIp: a.targetIp, targetMac: a.senderMac, targetIp: a.senderIp })));
    this.counters.framesOut++;
  }

  private onIcmp(ip: P.Ipv4): void {
    const m = P.parseIcmp(ip);
    if (!m) return void this.counters.malformed++;
    // Echo requests to the NAT's own addresses are answered; beyond them there is no way to send
    // ICMP from an unprivileged process.
    if (m.type !== 8 || (ip.dst !== GATEWAY && ip.dst !== DNS)) return void this.counters.unsupported++;
    this.sendIp(P.icmp(ip.dst, ip.src, 0, 0, m.rest));
  }

  // ---- UDP, DHCP, DNS ----
  private onUdp(ip: P.Ipv4): void {
    const u = P.parseUdp(ip);
    if (!u) return void this.counters.malformed++;
    if (u.dstPort === 67 && u.srcPort === 68) return this.onDhcp(u.payload);
    if (ip.src !== GUEST) return void this.counters.unsupported++;
    // Nothing but the gateway lives on the guest's network, and broadcast or multicast must not
    // leave it onto the host's.
    const local = ((ip.dst & MASK) >>> 0) === NAT_NET;
    if ((local && ip.dst !== GATEWAY && ip.dst !== DNS) || ip.dst >>> 28 >= 14) return void this.counters.unsupported++;
    if (ip.dst === DNS && u.dstPort === 53) this.counters.dnsQueries++;
    else if (ip.dst === DNS) return void this.counters.unsupported++;
    let m = this.udp.get(u.srcPort);
    if (!m) {
      if (this.udp.size >= MAX_UDP) this.sweepUdp(true);
      const sock = createSocket("udp4");
      const guestPort = u.srcPort;
      sock.on("message", (data, rinfo) => {
        const from = rinfo.address === this.resolver && rinfo.port === this.resolverPort ? DNS : rinfo.address === LOOPBACK ? GATEWAY : P.ipFromString(rinfo.address);
        if (from === undefined) return;
        const mm = this.udp.get(guestPort);
        if (mm) mm.lastMs = Date.now();
        this.sendIp(P.udp(from, GUEST, from === DNS ? 53 : rinfo.port, guestPort, data));
      });
      sock.on("error", () => this.dropUdp(guestPort));
      sock.unref();
      m = { sock, lastMs: Date.now() };
      this.udp.set(guestPort, m);
      this.counters.udpMappings++;
      this.udpSweep ??= setInterval(() => this.sweepUdp(false), UDP_IDLE_MS / 2).unref();
    }
    m.lastMs = Date.now();
    const to = ip.dst === DNS ? this.resolver : ip.dst === GATEWAY ? LOOPBACK : P.ipToString(ip.dst);
    m.sock.send(u.payload, ip.dst === DNS ? this.resolverPort : u.dstPort, to);
  }

  private dropUdp(port: number): void {
    const m = this.udp.get(port);
    if (!m) return;
    this.udp.delete(port);
    try { m.sock.close(); } catch { /* already closed */ }
  }

  private sweepUdp(full: boolean): void {
    const now = Date.now();
    const byAge = [...this.udp.entries()].sort((a, b) => a[1].lastMs - b[1].lastMs);
    for (const [port, m] of byAge) if (now - m.lastMs > UDP_IDLE_MS) this.dropUdp(port);
    if (full) for (const [port] of byAge.slice(0, MAX_UDP / 4)) this.dropUdp(port);
  }

  // BOOTP/DHCP (RFC 2131, options RFC 2132): one lease, the guest's address, for whoever asks.
  private onDhcp(b: Uint8Array): void {
    if (b.length < 240 || b[0] !== 1 || b[1] !== 1 || b[2] !== 6) return void this.counters.malformed++;
    const v = new DataView(b.buffer, b.byteOffset, b.length);
    if (v.getUint32(236) !== 0x63825363) return void this.counters.malformed++;
    let type = 0;
    for (let i = 240; i < b.length;) {
      const code = b[i]!;
      if (code === 255) break;
      if (code === 0) { i++; continue; }
      const len = b[i + 1];
      if (len === undefined || i + 2 + len > b.length) return void this.counters.malformed++;
      if (code === 53 && len === 1) type = b[i + 2]!;
      i += 2 + len;
    }
    const reply = type === 1 ? 2 : type === 3 ? 5 : 0; // DISCOVER -> OFFER, REQUEST -> ACK
    if (reply === 0) return;
    const chaddr = b.subarray(28, 34);
    const out = new Uint8Array(300);
    const o = new DataView(out.buffer);
    out[0] = 2; // BOOTREPLY
    out[1] = 1;
    out[2] = 6;
    o.setUint32(4, v.getUint32(4)); // xid
    o.setUint16(10, v.getUint16(10)); // flags
    o.setUint32(16, GUEST); // yiaddr
    o.setUint32(20, GATEWAY); // siaddr
    out.set(chaddr, 28);
    o.setUint32(236, 0x63825363);
    let at = 240;
    const opt = (code: number, data: number[]): void => {
      out[at] = code;
      out[at + 1] = data.length;
      out.set(data, at + 2);
      at += 2 + data.length;
    };
    const ip4 = (x: number): number[] => [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255];
    opt(53, [reply]);
    opt(54, ip4(GATEWAY));
    opt(51, ip4(LEASE_S));
    opt(1, ip4(MASK));
    opt(3, ip4(GATEWAY));
    opt(6, ip4(DNS));
    out[at] = 255;
    if (reply === 5) this.counters.dhcpLeases++;
    this.sendIp(P.udp(GATEWAY, 0xffffffff, 67, 68, out), P.BROADCAST);
  }

  // ---- TCP ----
  private onTcp(ip: P.Ipv4): void {
    const t = P.parseTcp(ip);
    if (!t) return void this.counters.malformed++;
    if (ip.src !== GUEST) return void this.counters.unsupported++;
    const key = `${t.srcPort}|${ip.dst}|${t.dstPort}`;
    const c = this.conns.get(key);
    if (!c) {
      if ((t.flags & (P.TCP_SYN | P.TCP_ACK | P.TCP_RST)) === P.TCP_SYN) return this.open(ip, t, key);
      // A segment for nothing: RST (RFC 9293 3.10.7.1), unless it is one.
      if ((t.flags & P.TCP_RST) === 0) this.rstFor(ip, t);
      return;
    }
    if ((t.flags & P.TCP_RST) !== 0) {
      c.close();
      return;
    }
    if (c.state === "syn-sent") {
      // Our SYN into the guest (a forwarded port): its SYN-ACK.
      if ((t.flags & (P.TCP_SYN | P.TCP_ACK)) === (P.TCP_SYN | P.TCP_ACK) && t.ack === add(c.iss, 1)) {
        c.rcvNxt = add(t.seq, 1);
        c.sndUna = c.sndNxt = add(c.iss, 1);
        c.sndWnd = t.window;
        c.mss = Math.min(t.mss ?? 536, MSS);
        c.state = "established";
        c.retries = 0;
        c.segment(P.TCP_ACK, c.sndNxt);
        c.socket.resume();
      }
      return;
    }
    if ((t.flags & P.TCP_SYN) !== 0) {
      // A retransmitted SYN: answer again if we already did.
      if (c.state === "syn-received") c.segment(P.TCP_SYN | P.TCP_ACK, c.iss, undefined, MSS);
      return;
    }
    if ((t.flags & P.TCP_ACK) === 0) return;
    if (c.state === "syn-received") {
      if (t.ack !== add(c.iss, 1)) return c.reset();
      c.state = "established";
      c.sndUna = c.sndNxt = t.ack;
      c.retries = 0;
    }
    if (c.state !== "established") return;
    // Data in order (anything else is dropped and acknowledged again: the guest resends).
    let data = t.payload;
    let seq = t.seq;
    if (seqLt(seq, c.rcvNxt) && data.length > 0) {
      const skip = (c.rcvNxt - seq) >>> 0;
      data = skip >= data.length ? data.subarray(data.length) : data.subarray(skip);
      seq = c.rcvNxt;
    }
    let ackNow = false;
    if (data.length > 0) {
      // No more than the window we advertised: a guest that ignores it cannot make us queue more.
      const room = Math.max(0, RECV_WINDOW - c.socket.writableLength);
      if (seq === c.rcvNxt && !c.guestFin && room > 0) {
        if (data.length > room) data = data.subarray(0, room);
        c.rcvNxt = add(c.rcvNxt, data.length);
        this.counters.bytesFromGuest += data.length;
        c.socket.write(data);
      }
      ackNow = true;
    }
    if ((t.flags & P.TCP_FIN) !== 0 && add(t.seq, t.payload.length) === c.rcvNxt && !c.guestFin) {
      c.guestFin = true;
      c.rcvNxt = add(c.rcvNxt, 1);
      c.socket.end();
      ackNow = true;
    }
    // The ACK goes first: acked() may finish the connection, and the guest's FIN needs it. Data
    // alone is acknowledged once per batch of frames (delayed ACK, RFC 1122 4.2.3.2): the guest's
    // driver hands over every segment of a notification at once, and one ACK after the last
    // answers them all, instead of a frame (and an interrupt) into the guest per segment.
    if (ackNow && (t.flags & P.TCP_FIN) !== 0) c.segment(P.TCP_ACK, c.sndNxt);
    else if (ackNow) this.ackLater(c);
    c.acked(t.ack, t.window);
  }

  private rstFor(ip: P.Ipv4, t: P.Tcp): void {
    const flags = (t.flags & P.TCP_ACK) !== 0 ? P.TCP_RST : P.TCP_RST | P.TCP_ACK;
    const seq = (t.flags & P.TCP_ACK) !== 0 ? t.ack : 0;
    const ack = add(t.seq, t.payload.length + ((t.flags & P.TCP_SYN) !== 0 ? 1 : 0) + ((t.flags & P.TCP_FIN) !== 0 ? 1 : 0));
    this.sendIp(P.tcp(ip.dst, ip.src, { srcPort: t.dstPort, dstPort: t.srcPort, seq, ack, flags, window: 0 }));
  }

  // The guest's SYN: connect a host socket, and answer SYN-ACK once it is connected.
  private open(ip: P.Ipv4, t: P.Tcp, key: string): void {
    let halfOpen = 0;
    for (const c of this.conns.values()) if (c.state === "connecting" || c.state === "syn-received") halfOpen++;
    if (this.conns.size >= MAX_CONNECTIONS || halfOpen >= MAX_HALF_OPEN || ip.dst === DNS || ((ip.dst & MASK) >>> 0 === NAT_NET && ip.dst !== GATEWAY)) {
      this.counters.tcpRefused++;
      return this.rstFor(ip, t);
    }
    const host = ip.dst === GATEWAY ? LOOPBACK : P.ipToString(ip.dst);
    const socket = connect({ host, port: t.dstPort, noDelay: true, allowHalfOpen: true });
    const c = new Conn(this, key, t.srcPort, ip.dst, t.dstPort, socket, "connecting");
    c.rcvNxt = add(t.seq, 1);
    c.mss = Math.min(t.mss ?? 536, MSS);
    c.sndWnd = t.window;
    this.conns.set(key, c);
    this.counters.tcpConnections++;
    this.counters.tcpOpen++;
    socket.on("connect", () => {
      if (c.state !== "connecting") return;
      c.state = "syn-received";
      c.segment(P.TCP_SYN | P.TCP_ACK, c.iss, undefined, MSS);
      c.sndNxt = add(c.iss, 1);
      c.arm();
    });
    this.wire(c);
  }

  private wire(c: Conn): void {
    c.socket.on("data", (d: Buffer) => c.fromHost(d));
    c.socket.on("end", () => {
      c.hostEnded = true;
      c.pump();
    });
    c.socket.on("drain", () => { if (c.state === "established") c.segment(P.TCP_ACK, c.sndNxt); }); // a window update
    c.socket.on("finish", () => c.closeIfDone()); // the guest's bytes are all with the host's kernel
    c.socket.on("error", () => {
      if (c.state === "connecting") this.counters.tcpRefused++;
      c.reset();
    });
    c.socket.on("close", () => {
      if (c.state === "connecting" || c.state === "syn-sent") c.reset();
    });
  }

  forget(c: Conn): void {
    if (this.conns.get(c.key) === c) {
      this.conns.delete(c.key);
      this.counters.tcpOpen--;
    }
  }

  // ---- port forwarding ----
  // Listens on the host and opens a connection into the guest for each one accepted.
  async forward(f: Forward): Promise<void> {
    if (this.servers.has(f.hostPort)) throw new UserError(`host port ${f.hostPort} is already forwarded`);
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => this.accepted(socket, f.guestPort));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e: NodeJS.ErrnoException) => reject(new UserError(`cannot forward host port ${f.hostPort}: ${e.code === "EADDRINUSE" ? "it is in use" : e.code === "EACCES" ? "permission denied (ports below 1024 need privileges)" : e.message}`)));
      server.listen(f.hostPort, f.hostAddress ?? LOOPBACK, () => resolve());
    });
    server.unref();
    this.servers.set(f.hostPort, { server, forward: { ...f } });
  }

  unforward(hostPort: number): boolean {
    const s = this.servers.get(hostPort);
    if (!s) return false;
    s.server.close();
    this.servers.delete(hostPort);
    return true;
  }

  forwards(): Forward[] {
    return [...this.servers.values()].map((s) => s.forward);
  }

  private accepted(socket: Socket, guestPort: number): void {
    if (!this.guestMac || this.conns.size >= MAX_CONNECTIONS) {
      this.counters.tcpRefused++;
      socket.destroy();
      return;
    }
    let port = 0;
    for (let i = 0; i < 16 && (port === 0 || this.conns.has(`${guestPort}|${GATEWAY}|${port}`)); i++) port = randomInt(32768, 61000);
    // Keyed as the guest's segments will come: its port (the forward's target) first.
    const key = `${guestPort}|${GATEWAY}|${port}`;
    if (this.conns.has(key)) return void socket.destroy();
    socket.setNoDelay(true);
    const c = new Conn(this, key, guestPort, GATEWAY, port, socket, "syn-sent");
    this.conns.set(key, c);
    this.counters.tcpConnections++;
    this.counters.forwardedConnections++;
    this.counters.tcpOpen++;
    this.wire(c);
    c.segment(P.TCP_SYN, c.iss, undefined, MSS);
    c.arm();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.conns.values()]) c.close();
    for (const port of [...this.udp.keys()]) this.dropUdp(port);
    for (const s of this.servers.values()) s.server.close();
    this.servers.clear();
    if (this.udpSweep) clearInterval(this.udpSweep);
    this.deliver = undefined;
  }
}

// The host's first IPv4 name server, where the guest's DNS queries go.
export function hostResolver(path = "/etc/resolv.conf"): string {
  try {
    for (const line of readFileSync(path, "utf8").split("\n")) {
      const m = /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(line);
      if (m) return m[1]!;
    }
  } catch {
    // no resolv.conf: a resolver on the host itself is the best guess
  }
  return LOOPBACK;
}
