// Flattened devicetree (DTB) writer, Devicetree Specification v0.4 chapter 5: a header, the memory
// reservation block, the structure block (FDT_BEGIN_NODE / FDT_PROP / FDT_END_NODE / FDT_END) and
// a strings block holding each property name once. Everything is big-endian.
//
// Build a tree of FdtNode, then call Fdt.toBytes(). Values are encoded when they are set, so the
// blob's size does not depend on when it is written.

export const FDT_MAGIC = 0xd00dfeed;
export const FDT_BEGIN_NODE = 0x1;
export const FDT_END_NODE = 0x2;
export const FDT_PROP = 0x3;
export const FDT_NOP = 0x4;
export const FDT_END = 0x9;
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;
const HEADER_SIZE = 40;

// §2.2.1 node names and §2.2.4 property names: 1..31 characters from a small set.
const NODE_NAME = /^[0-9A-Za-z,._+-]{1,31}(@[0-9A-Za-z,._+-]+)?$/;
const PROP_NAME = /^[0-9A-Za-z,._+?#-]{1,31}$/;

export interface FdtProperty {
  readonly name: string;
  readonly value: Uint8Array;
}

export interface FdtReservation {
  address: bigint;
  size: bigint;
}

const utf8 = new TextEncoder();

export class FdtNode {
  readonly props: FdtProperty[] = [];
  readonly children: FdtNode[] = [];

  constructor(readonly name: string) {
    if (name !== "" && !NODE_NAME.test(name)) throw new Error(`invalid devicetree node name "${name}"`);
  }

  child(name: string): FdtNode {
    if (this.children.some((c) => c.name === name)) throw new Error(`duplicate devicetree node "${name}"`);
    const node = new FdtNode(name);
    this.children.push(node);
    return node;
  }

  find(name: string): FdtNode | undefined {
    return this.children.find((c) => c.name === name);
  }

  prop(name: string): FdtProperty | undefined {
    return this.props.find((p) => p.name === name);
  }

  bytes(name: string, value: Uint8Array): this {
    if (!PROP_NAME.test(name)) throw new Error(`invalid devicetree property name "${name}"`);
    if (this.prop(name)) throw new Error(`duplicate property "${name}" in node "${this.name}"`);
    this.props.push({ name, value: value.slice() });
    return this;
  }

  // A property with no value, such as `interrupt-controller` or an empty `ranges` (§2.2.4.2).
  empty(name: string): this {
    return this.bytes(name, new Uint8Array(0));
  }

  // <u32> cells (§2.2.4.2 prop-encoded-array).
  u32(name: string, ...cells: number[]): this {
    const b = new Uint8Array(4 * cells.length);
    const dv = new DataView(b.buffer);
    cells.forEach((c, i) => {
      if (!Number.isInteger(c) || c < 0 || c > 0xffff_ffff) throw new Error(`${name}: cell ${c} is not a u32`);
      dv.setUint32(4 * i, c);
    });
    return this.bytes(name, b);
  }

  // <u64> values, each as two cells, most significant first.
  u64(name: string, ...values: bigint[]): this {
    const b = new Uint8Array(8 * values.length);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => {
      if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new Error(`${name}: ${v} is not a u64`);
      dv.setBigUint64(8 * i, v);
    });
    return this.bytes(name, b);
  }

  string(name: string, value: string): this {
    return this.strings(name, [value]);
  }

  // <stringlist>: NUL-terminated strings back to back.
  strings(name: string, values: string[]): this {
    const parts = values.map((s) => {
      if (s.includes("\0")) throw new Error(`${name}: string contains NUL`);
      return utf8.encode(s);
    });
    const b = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0));
    let at = 0;
    for (const p of parts) {
      b.set(p, at);
      at += p.length + 1;
    }
    return this.bytes(name, b);
  }

  phandle(value: number): this {
    return this.u32("phandle", value);
  }
}

export class Fdt {
  readonly root = new FdtNode("");
  readonly reservations: FdtReservation[] = [];
  bootCpuidPhys = 0;
  private nextPhandle = 1;

  // Phandles are any u32 other than 0 and 0xffffffff (§2.3.3); handing them out in order keeps
  // blobs reproducible.
  allocPhandle(): number {
    return this.nextPhandle++;
  }

  toBytes(): Uint8Array {
    const strings = new StringTable();
    const struct = new ByteWriter();
    emitNode(this.root, struct, strings);
    struct.u32(FDT_END);

    // §5.1: the reservation block is 8-byte aligned, the structure block 4-byte aligned.
    const offRsvmap = align(HEADER_SIZE, 8);
    const rsvSize = 16 * (this.reservations.length + 1);
    const offStruct = align(offRsvmap + rsvSize, 4);
    const structBytes = struct.bytes();
    const offStrings = offStruct + structBytes.length;
    const stringBytes = strings.bytes();
    const total = align(offStrings + stringBytes.length, 8);

    const out = new Uint8Array(total);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, FDT_MAGIC);
    dv.setUint32(4, total);
    dv.setUint32(8, offStruct);
    dv.setUint32(12, offStrings);
    dv.setUint32(16, offRsvmap);
    dv.setUint32(20, FDT_VERSION);
    dv.setUint32(24, FDT_LAST_COMP_VERSION);
    dv.setUint32(28, this.bootCpuidPhys);
    dv.setUint32(32, stringBytes.length);
    dv.setUint32(36, structBytes.length);
    this.reservations.forEach((r, i) => {
      dv.setBigUint64(offRsvmap + 16 * i, r.address);
      dv.setBigUint64(offRsvmap + 16 * i + 8, r.size);
    });
    // The list ends with an all-zero entry, already there.
    out.set(structBytes, offStruct);
    out.set(stringBytes, offStrings);
    return out;
  }
}

function emitNode(node: FdtNode, w: ByteWriter, strings: StringTable): void {
  w.u32(FDT_BEGIN_NODE);
  w.raw(utf8.encode(node.name));
  w.raw(new Uint8Array(1));
  w.pad4();
  for (const p of node.props) {
    w.u32(FDT_PROP);
    w.u32(p.value.length);
    w.u32(strings.offset(p.name));
    w.raw(p.value);
    w.pad4();
  }
  for (const c of node.children) emitNode(c, w, strings);
  w.u32(FDT_END_NODE);
}

// §5.5: property names live once in the strings block; FDT_PROP refers to them by offset.
class StringTable {
  private readonly offsets = new Map<string, number>();
  private readonly w = new ByteWriter();

  offset(name: string): number {
    let off = this.offsets.get(name);
    if (off === undefined) {
      off = this.w.length;
      this.offsets.set(name, off);
      this.w.raw(utf8.encode(name));
      this.w.raw(new Uint8Array(1));
    }
    return off;
  }

  bytes(): Uint8Array {
    return this.w.bytes();
  }
}

class ByteWriter {
  private buf = new Uint8Array(1024);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u32(v: number): void {
    this.reserve(4);
    new DataView(this.buf.buffer).setUint32(this.length, v);
    this.length += 4;
  }

  raw(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  pad4(): void {
    const n = align(this.length, 4) - this.length;
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
