// A small WebAssembly binary writer for the translator: just what translated code needs (one
// function type per module, imported shared memory and functions, i32/i64 integer code).
// Binary format: WebAssembly core specification 2.0, chapter 5.

export const T_I32 = 0x7f;
export const T_I64 = 0x7e;
export const T_F64 = 0x7c;
export const T_VOID = 0x40; // the empty block type

// Opcodes (core spec 5.4), named as in the text format.
export const Op = {
  unreachable: 0x00, block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, br_if: 0x0d,
  br_table: 0x0e, return: 0x0f, call: 0x10, return_call_indirect: 0x13, drop: 0x1a, select: 0x1b,
  local_get: 0x20, local_set: 0x21, local_tee: 0x22,
  i32_load: 0x28, i64_load: 0x29, i32_load8_u: 0x2d,
  i64_load8_s: 0x30, i64_load8_u: 0x31, i64_load16_s: 0x32, i64_load16_u: 0x33, i64_load32_s: 0x34, i64_load32_u: 0x35,
  i32_store: 0x36, i64_store: 0x37, i32_store8: 0x3a, i64_store8: 0x3c, i64_store16: 0x3d, i64_store32: 0x3e,
  i32_const: 0x41, i64_const: 0x42,
  i32_eqz: 0x45, i32_eq: 0x46, i32_ne: 0x47, i32_gt_s: 0x4a, i32_le_u: 0x4d,
  i64_eqz: 0x50, i64_eq: 0x51, i64_ne: 0x52, i64_lt_s: 0x53, i64_lt_u: 0x54, i64_gt_s: 0x55, i64_gt_u: 0x56,
  i64_le_s: 0x57, i64_le_u: 0x58, i64_ge_s: 0x59, i64_ge_u: 0x5a,
  i32_add: 0x6a, i32_sub: 0x6b, i32_mul: 0x6c, i32_div_s: 0x6d, i32_div_u: 0x6e, i32_rem_s: 0x6f, i32_rem_u: 0x70,
  i32_and: 0x71, i32_or: 0x72, i32_xor: 0x73, i32_shl: 0x74, i32_shr_s: 0x75, i32_shr_u: 0x76,
  i64_add: 0x7c, i64_sub: 0x7d, i64_mul: 0x7e, i64_div_s: 0x7f, i64_div_u: 0x80, i64_rem_s: 0x81, i64_rem_u: 0x82,
  i64_and: 0x83, i64_or: 0x84, i64_xor: 0x85, i64_shl: 0x86, i64_shr_s: 0x87, i64_shr_u: 0x88,
  i32_wrap_i64: 0xa7, i64_extend_i32_s: 0xac, i64_extend_i32_u: 0xad,
  f64_const: 0x44, f64_eq: 0x61, f64_ne: 0x62, f64_lt: 0x63, f64_gt: 0x64, f64_le: 0x65, f64_abs: 0x99, f64_neg: 0x9a,
  f64_add: 0xa0, f64_sub: 0xa1, f64_mul: 0xa2, i64_clz: 0x79, i64_ctz: 0x7a,
  i64_reinterpret_f64: 0xbd, f64_reinterpret_i64: 0xbf,
  i64_extend8_s: 0xc2, i64_extend16_s: 0xc3, i64_extend32_s: 0xc4,
  atomic_prefix: 0xfe, i32_atomic_store: 0x17, atomic_fence: 0x03, // threads proposal: 0xfe, then the op as a u32
} as const;

// A growable byte buffer with the format's integer encodings.
export class Bytes {
  private buf = new Uint8Array(1024);
  length = 0;

  byte(b: number): this {
    if (this.length === this.buf.length) {
      const n = new Uint8Array(this.buf.length * 2);
      n.set(this.buf);
      this.buf = n;
    }
    this.buf[this.length++] = b;
    return this;
  }

  bytes(bs: ArrayLike<number>): this {
    for (let i = 0; i < bs.length; i++) this.byte(bs[i]!);
    return this;
  }

  u32(v: number): this { // unsigned LEB128
    let x = v >>> 0;
    do {
      const b = x & 0x7f;
      x >>>= 7;
      this.byte(x !== 0 ? b | 0x80 : b);
    } while (x !== 0);
    return this;
  }

  s32(v: number): this { // signed LEB128
    let x = v | 0;
    for (;;) {
      const b = x & 0x7f;
      x >>= 7;
      if ((x === 0 && (b & 0x40) === 0) || (x === -1 && (b & 0x40) !== 0)) return this.byte(b);
      this.byte(b | 0x80);
    }
  }

  s64(v: bigint): this {
    // Constants are mostly small: encode those with 32-bit arithmetic, no BigInt.
    if (v >= -0x80000000n && v <= 0x7fffffffn) return this.s32(Number(v));
    let x = BigInt.asIntN(64, v);
    for (;;) {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      if ((x === 0n && (b & 0x40) === 0) || (x === -1n && (b & 0x40) !== 0)) return this.byte(b);
      this.byte(b | 0x80);
    }
  }

  name(s: string): this { // ASCII names only (the module's own)
    this.u32(s.length);
    for (let i = 0; i < s.length; i++) this.byte(s.charCodeAt(i));
    return this;
  }

  vec(b: Bytes): this { // a length-prefixed blob (sections, function bodies)
    return this.u32(b.length).bytes(b.view());
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

export interface FuncType {
  params: number[];
  results: number[];
}

export interface ModuleSpec {
  types: FuncType[];
  // Imports in order: the shared memory first, a function table, then functions (their indices
  // come first).
  memory?: { module: string; name: string; maxPages: number };
  table?: { module: string; name: string }; // funcref, no minimum size

  funcImports: { module: string; name: string; type: number }[];
  funcs: { type: number; locals: { count: number; type: number }[]; body: Bytes; export?: string }[];
}

export function encodeModule(m: ModuleSpec): Uint8Array<ArrayBuffer> {
  const out = new Bytes().bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  const section = (id: number, b: Bytes): void => {
    out.byte(id).vec(b);
  };
  const types = new Bytes().u32(m.types.length);
  for (const t of m.types) {
    types.byte(0x60).u32(t.params.length).bytes(t.params).u32(t.results.length).bytes(t.results);
  }
  section(1, types);
  const imports = new Bytes().u32((m.memory ? 1 : 0) + (m.table ? 1 : 0) + m.funcImports.length);
  if (m.memory) imports.name(m.memory.module).name(m.memory.name).byte(0x02).byte(0x03).u32(1).u32(m.memory.maxPages); // shared, min 1
  if (m.table) imports.name(m.table.module).name(m.table.name).byte(0x01).byte(0x70).byte(0x00).u32(0); // funcref, min 0
  for (const f of m.funcImports) imports.name(f.module).name(f.name).byte(0x00).u32(f.type);
  section(2, imports);
  const funcs = new Bytes().u32(m.funcs.length);
  for (const f of m.funcs) funcs.u32(f.type);
  section(3, funcs);
  const exported = m.funcs.map((f, i) => ({ f, i })).filter((x) => x.f.export !== undefined);
  const exports = new Bytes().u32(exported.length);
  for (const { f, i } of exported) exports.name(f.export!).byte(0x00).u32(m.funcImports.length + i);
  section(7, exports);
  const code = new Bytes().u32(m.funcs.length);
  for (const f of m.funcs) {
    const body = new Bytes().u32(f.locals.length);
    for (const l of f.locals) body.u32(l.count).byte(l.type);
    body.bytes(f.body.view()).byte(Op.end);
    code.vec(body);
  }
  section(10, code);
  return out.view().slice() as Uint8Array<ArrayBuffer>;
}
