// Ethernet, ARP, IPv4, ICMP, UDP and TCP headers as the NAT reads and writes them: parsing
// that returns undefined for anything malformed (a guest's frame is input from a stranger), and
// builders that fill in lengths and checksums. No options are kept beyond TCP's MSS; no IPv4
// fragments are reassembled (the guest sees a 1500-byte MTU and TCP segments below it).
// References: RFC 826 (ARP), RFC 791 (IPv4), RFC 792 (ICMP), RFC 768 (UDP), RFC 9293 (TCP),
// RFC 1071 (the Internet checksum).

export const ETH_IPV4 = 0x0800;
export const ETH_ARP = 0x0806;
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export type Mac = Uint8Array; // 6 bytes
export const BROADCAST: Mac = new Uint8Array([255, 255, 255, 255, 255, 255]);

export const ipToString = (ip: number): string => `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
export function ipFromString(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return undefined;
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

// The 16-bit one's complement sum of `b`, starting from `sum` (for pseudo-headers).
export function onesSum(b: Uint8Array, sum = 0): number {
  let s = sum;
  const n = b.length & ~1;
  for (let i = 0; i < n; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export const checksum = (b: Uint8Array, sum = 0): number => ~onesSum(b, sum) & 0xffff;

function pseudo(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

export interface Ethernet {
  dst: Mac;
  src: Mac;
  type: number;
  payload: Uint8Array;
}

export function parseEthernet(f: Uint8Array): Ethernet | undefined {
  if (f.length < 14) return undefined;
  return { dst: f.subarray(0, 6), src: f.subarray(6, 12), type: (f[12]! << 8) | f[13]!, payload: f.subarray(14) };
}

export function ethernet(dst: Mac, src: Mac, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >>> 8;
  f[13] = type & 255;
  f.set(payload, 14);
  return f;
}

export interface Arp {
  op: number; // 1 request, 2 reply
  senderMac: Mac;
  senderIp: number;
  targetMac: Mac;
  targetIp: number;
}

export function parseArp(p: Uint8Array): Arp | undefined {
  if (p.length < 28) return undefined;
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  if (v.getUint16(0) !== 1 || v.getUint16(2) !== ETH_IPV4 || p[4] !== 6 || p[5] !== 4) return undefined;
  return { op: v.getUint16(6), senderMac: p.subarray(8, 14), senderIp: v.getUint32(14), targetMac: p.subarray(18, 24), targetIp: v.getUint32(24) };
}

export function arp(a: Arp): Uint8Array {
  const p = new Uint8Array(28);
  const v = new DataView(p.buffer);
  v.setUint16(0, 1);
  v.setUint16(2, ETH_IPV4);
  p[4] = 6;
  p[5] = 4;
  v.setUint16(6, a.op);
  p.set(a.senderMac, 8);
  v.setUint32(14, a.senderIp);
  p.set(a.targetMac, 18);
  v.setUint32(24, a.targetIp);
  return p;
}

export interface Ipv4 {
  src: number;
  dst: number;
  proto: number;
  ttl: number;
  id: number;
  payload: Uint8Array;
}

// An IPv4 packet with a valid header checksum, not a fragment, its length within the frame.
export function parseIpv4(p: Uint8Array): Ipv4 | undefined {
  if (p.length < 20 || p[0]! >>> 4 !== 4) return undefined;
  const ihl = (p[0]! & 15) * 4;
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  const total = v.getUint16(2);
  if (ihl < 20 || total < ihl || total > p.length) return undefined;
  if (onesSum(p.subarray(0, ihl)) !== 0xffff) return undefined;
  const frag = v.getUint16(6);
  if ((frag & 0x2000) !== 0 || (frag & 0x1fff) !== 0) return undefined; // a fragment
  return { src: v.getUint32(12), dst: v.getUint32(16), proto: p[9]!, ttl: p[8]!, id: v.getUint16(4), payload: p.subarray(ihl, total) };
}

let nextId = 1;

export function ipv4(src: number, dst: number, proto: number, payload: Uint8Array, ttl = 64): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  v.setUint16(4, nextId++ & 0xffff);
  v.setUint16(6, 0x4000); // don't fragment
  p[8] = ttl;
  p[9] = proto;
  v.setUint32(12, src);
  v.setUint32(16, dst);
  v.setUint16(10, checksum(p.subarray(0, 20)));
  p.set(payload, 20);
  return p;
}

export interface Udp {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export function parseUdp(ip: Ipv4): Udp | undefined {
  const p = ip.payload;
  if (p.length < 8) return undefined;
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  const len = v.getUint16(4);
  if (len < 8 || len > p.length) return undefined;
  const sum = v.getUint16(6);
  if (sum !== 0 && onesSum(p.subarray(0, len), pseudo(ip.src, ip.dst, PROTO_UDP, len)) !== 0xffff) return undefined;
  return { srcPort: v.getUint16(0), dstPort: v.getUint16(2), payload: p.subarray(8, len) };
}

export function udp(src: number, dst: number, srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(8 + payload.length);
  const v = new DataView(p.buffer);
  v.setUint16(0, srcPort);
  v.setUint16(2, dstPort);
  v.setUint16(4, p.length);
  p.set(payload, 8);
  const c = checksum(p, pseudo(src, dst, PROTO_UDP, p.length));
  v.setUint16(6, c === 0 ? 0xffff : c);
  return ipv4(src, dst, PROTO_UDP, p);
}

export const TCP_FIN = 1;
export const TCP_SYN = 2;
export const TCP_RST = 4;
export const TCP_PSH = 8;
export const TCP_ACK = 16;

export interface Tcp {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  mss?: number;
  payload: Uint8Array;
}

export function parseTcp(ip: Ipv4): Tcp | undefined {
  const p = ip.payload;
  if (p.length < 20) return undefined;
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  const off = (p[12]! >>> 4) * 4;
  if (off < 20 || off > p.length) return undefined;
  if (onesSum(p, pseudo(ip.src, ip.dst, PROTO_TCP, p.length)) !== 0xffff) return undefined;
  let mss: number | undefined;
  for (let i = 20; i < off;) {
    const kind = p[i]!;
    if (kind === 0) break;
    if (kind === 1) { i++; continue; }
    const len = p[i + 1];
    if (len === undefined || len < 2 || i + len > off) return undefined;
    if (kind === 2 && len === 4) mss = v.getUint16(i + 2);
    i += len;
  }
  return { srcPort: v.getUint16(0), dstPort: v.getUint16(2), seq: v.getUint32(4), ack: v.getUint32(8), flags: p[13]! & 0x3f, window: v.getUint16(14), mss, payload: p.subarray(off) };
}

export function tcp(src: number, dst: number, t: Omit<Tcp, "payload"> & { payload?: Uint8Array }): Uint8Array {
  const opts = t.mss !== undefined ? 4 : 0;
  const data = t.payload ?? new Uint8Array(0);
  const p = new Uint8Array(20 + opts + data.length);
  const v = new DataView(p.buffer);
  v.setUint16(0, t.srcPort);
  v.setUint16(2, t.dstPort);
  v.setUint32(4, t.seq >>> 0);
  v.setUint32(8, t.ack >>> 0);
  p[12] = ((20 + opts) / 4) << 4;
  p[13] = t.flags;
  v.setUint16(14, Math.max(0, Math.min(0xffff, t.window)));
  if (t.mss !== undefined) {
    p[20] = 2;
    p[21] = 4;
    v.setUint16(22, t.mss);
  }
  p.set(data, 20 + opts);
  v.setUint16(16, checksum(p, pseudo(src, dst, PROTO_TCP, p.length)));
  return ipv4(src, dst, PROTO_TCP, p);
}

export interface Icmp {
  type: number;
  code: number;
  rest: Uint8Array; // from byte 4 on (identifier, sequence, data for an echo)
}

export function parseIcmp(ip: Ipv4): Icmp | undefined {
  const p = ip.payload;
  if (p.length < 8 || onesSum(p) !== 0xffff) return undefined;
  return { type: p[0]!, code: p[1]!, rest: p.subarray(4) };
}

export function icmp(src: number, dst: number, type: number, code: number, rest: Uint8Array): Uint8Array {
  const p = new Uint8Array(4 + rest.length);
  p[0] = type;
  p[1] = code;
  p.set(rest, 4);
  const c = checksum(p);
  p[2] = c >>> 8;
  p[3] = c & 255;
  return ipv4(src, dst, PROTO_ICMP, p);
}
