// A small RV64IMC assembler and ELF writer for tests that make their own bare-metal programs
// (test/unit/jit-diff.test.ts, jit-smc.test.ts): instruction encoders (unprivileged spec
// chapter 2 and 34, "RV32/64G Instruction Set Listings", and chapter 16 for C), an emitter with
// labels and fixups into one flat image, and a minimal ELF64 (one PT_LOAD segment and a symbol
// table, which is what src/vm/elf.ts reads).

export const X = {
  zero: 0, ra: 1, sp: 2, gp: 3, tp: 4, t0: 5, t1: 6, t2: 7, s0: 8, s1: 9, a0: 10, a1: 11, a2: 12, a3: 13,
  a4: 14, a5: 15, a6: 16, a7: 17, s2: 18, s3: 19, s4: 20, s5: 21, s6: 22, s7: 23, s8: 24, s9: 25, s10: 26,
  s11: 27, t3: 28, t4: 29, t5: 30, t6: 31,
} as const;

const u = (v: number): number => v >>> 0;
const fits = (v: number, bits: number): boolean => v >= -(2 ** (bits - 1)) && v < 2 ** (bits - 1);
const ufits = (v: number, bits: number): boolean => v >= 0 && v < 2 ** bits;
const bit = (v: number, hi: number, lo: number): number => (v >> lo) & ((1 << (hi - lo + 1)) - 1);

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`rv-asm: ${what}`);
}

// ---- 32-bit formats
export function encR(op: number, f3: number, f7: number, rd: number, rs1: number, rs2: number): number {
  return u((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op);
}
export function encI(op: number, f3: number, rd: number, rs1: number, imm: number): number {
  check(fits(imm, 12), `I immediate ${imm}`);
  return u(((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op);
}
export function encS(op: number, f3: number, rs1: number, rs2: number, imm: number): number {
  check(fits(imm, 12), `S immediate ${imm}`);
  return u((bit(imm, 11, 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (bit(imm, 4, 0) << 7) | op);
}
export function encB(f3: number, rs1: number, rs2: number, imm: number): number {
  check(fits(imm, 13) && (imm & 1) === 0, `branch offset ${imm}`);
  return u((bit(imm, 12, 12) << 31) | (bit(imm, 10, 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (bit(imm, 4, 1) << 8) | (bit(imm, 11, 11) << 7) | 0x63);
}
export function encU(op: number, rd: number, imm20: number): number {
  check(ufits(imm20, 20), `U immediate ${imm20}`);
  return u((imm20 << 12) | (rd << 7) | op);
}
export function encJ(rd: number, imm: number): number {
  check(fits(imm, 21) && (imm & 1) === 0, `jal offset ${imm}`);
  return u((bit(imm, 20, 20) << 31) | (bit(imm, 10, 1) << 21) | (bit(imm, 11, 11) << 20) | (bit(imm, 19, 12) << 12) | (rd << 7) | 0x6f);
}

export const ALU_R: Record<string, [number, number, number]> = { // [opcode, funct3, funct7]
  add: [0x33, 0, 0], sub: [0x33, 0, 0x20], sll: [0x33, 1, 0], slt: [0x33, 2, 0], sltu: [0x33, 3, 0],
  xor: [0x33, 4, 0], srl: [0x33, 5, 0], sra: [0x33, 5, 0x20], or: [0x33, 6, 0], and: [0x33, 7, 0],
  mul: [0x33, 0, 1], mulh: [0x33, 1, 1], mulhsu: [0x33, 2, 1], mulhu: [0x33, 3, 1],
  div: [0x33, 4, 1], divu: [0x33, 5, 1], rem: [0x33, 6, 1], remu: [0x33, 7, 1],
  addw: [0x3b, 0, 0], subw: [0x3b, 0, 0x20], sllw: [0x3b, 1, 0], srlw: [0x3b, 5, 0], sraw: [0x3b, 5, 0x20],
  mulw: [0x3b, 0, 1], divw: [0x3b, 4, 1], divuw: [0x3b, 5, 1], remw: [0x3b, 6, 1], remuw: [0x3b, 7, 1],
};
export const ALU_I: Record<string, [number, number]> = { // [opcode, funct3]
  addi: [0x13, 0], slti: [0x13, 2], sltiu: [0x13, 3], xori: [0x13, 4], ori: [0x13, 6], andi: [0x13, 7], addiw: [0x1b, 0],
};
export const SHIFT_I: Record<string, [number, number, number, number]> = { // [opcode, funct3, high bits, shamt bits]
  slli: [0x13, 1, 0x00, 6], srli: [0x13, 5, 0x00, 6], srai: [0x13, 5, 0x10, 6],
  slliw: [0x1b, 1, 0x00, 5], srliw: [0x1b, 5, 0x00, 5], sraiw: [0x1b, 5, 0x20, 5],
};
export const LOADS: Record<string, number> = { lb: 0, lh: 1, lw: 2, ld: 3, lbu: 4, lhu: 5, lwu: 6 }; // funct3
export const STORES: Record<string, number> = { sb: 0, sh: 1, sw: 2, sd: 3 };
export const BRANCHES: Record<string, number> = { beq: 0, bne: 1, blt: 4, bge: 5, bltu: 6, bgeu: 7 };

export function encAluR(name: string, rd: number, rs1: number, rs2: number): number {
  const e = ALU_R[name];
  check(e !== undefined, `no R operation ${name}`);
  return encR(e![0], e![1], e![2], rd, rs1, rs2);
}
export function encAluI(name: string, rd: number, rs1: number, imm: number): number {
  const sh = SHIFT_I[name];
  if (sh) {
    check(ufits(imm, sh[3]), `shift amount ${imm} for ${name}`);
    const high = sh[3] === 6 ? sh[2] << 26 : sh[2] << 25; // funct6 or funct7 above the shift amount
    return u(high | (imm << 20) | (rs1 << 15) | (sh[1] << 12) | (rd << 7) | sh[0]);
  }
  const e = ALU_I[name];
  check(e !== undefined, `no I operation ${name}`);
  return encI(e![0], e![1], rd, rs1, imm);
}
export const encLoad = (name: string, rd: number, rs1: number, imm: number): number => encI(0x03, LOADS[name]!, rd, rs1, imm);
export const encStore = (name: string, rs2: number, rs1: number, imm: number): number => encS(0x23, STORES[name]!, rs1, rs2, imm);
export const encJalr = (rd: number, rs1: number, imm: number): number => encI(0x67, 0, rd, rs1, imm);
export const encCsr = (f3: number, rd: number, csr: number, rs1: number): number => u((csr << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x73);

export const ECALL = 0x00000073;
export const EBREAK = 0x00100073;
export const MRET = 0x30200073;
export const FENCE = 0x0ff0000f; // fence iorw, iorw
export const FENCE_I = 0x0000100f;
export const C_EBREAK = 0x9002;
export const C_UNIMP = 0x0000; // defined illegal
export const CSR = { fflags: 0x001, frm: 0x002, fcsr: 0x003, mstatus: 0x300, mie: 0x304, mtvec: 0x305, mscratch: 0x340, mepc: 0x341, mcause: 0x342, mtval: 0x343, mcycle: 0xb00, minstret: 0xb02 } as const;

// ---- 16-bit formats (C extension). Register arguments are full numbers; rd'/rs' must be 8..15.
const p = (r: number): number => { check(r >= 8 && r <= 15, `x${r} is not a compressed register`); return r - 8; };
const nz = (r: number, what: string): number => { check(r !== 0, `${what} needs a nonzero register`); return r; };

export const C = {
  addi4spn(rd: number, uimm: number): number {
    check(uimm > 0 && uimm < 1024 && (uimm & 3) === 0, `c.addi4spn ${uimm}`);
    return (bit(uimm, 5, 4) << 11) | (bit(uimm, 9, 6) << 7) | (bit(uimm, 2, 2) << 6) | (bit(uimm, 3, 3) << 5) | (p(rd) << 2);
  },
  lw(rd: number, rs1: number, uimm: number): number {
    check(uimm >= 0 && uimm < 128 && (uimm & 3) === 0, `c.lw ${uimm}`);
    return (2 << 13) | (bit(uimm, 5, 3) << 10) | (p(rs1) << 7) | (bit(uimm, 2, 2) << 6) | (bit(uimm, 6, 6) << 5) | (p(rd) << 2);
  },
  ld(rd: number, rs1: number, uimm: number): number {
    check(uimm >= 0 && uimm < 256 && (uimm & 7) === 0, `c.ld ${uimm}`);
    return (3 << 13) | (bit(uimm, 5, 3) << 10) | (p(rs1) << 7) | (bit(uimm, 7, 6) << 5) | (p(rd) << 2);
  },
  sw(rs2: number, rs1: number, uimm: number): number { return C.lw(rs2, rs1, uimm) | (4 << 13); },
  sd(rs2: number, rs1: number, uimm: number): number { return C.ld(rs2, rs1, uimm) | (4 << 13); },
  ci(f3: number, rd: number, imm: number, op: number): number {
    return (f3 << 13) | (bit(imm, 5, 5) << 12) | (rd << 7) | (bit(imm, 4, 0) << 2) | op;
  },
  addi(rd: number, imm: number): number { check(fits(imm, 6), `c.addi ${imm}`); return C.ci(0, rd, imm, 1); },
  addiw(rd: number, imm: number): number { check(fits(imm, 6), `c.addiw ${imm}`); return C.ci(1, nz(rd, "c.addiw"), imm, 1); },
  li(rd: number, imm: number): number { check(fits(imm, 6), `c.li ${imm}`); return C.ci(2, rd, imm, 1); },
  lui(rd: number, imm6: number): number { // rd = sext(imm6) << 12
    check(fits(imm6, 6) && imm6 !== 0 && rd !== 2, `c.lui ${imm6}`);
    return C.ci(3, rd, imm6, 1);
  },
  addi16sp(imm: number): number {
    check(fits(imm, 10) && imm !== 0 && (imm & 15) === 0, `c.addi16sp ${imm}`);
    return (3 << 13) | (bit(imm, 9, 9) << 12) | (2 << 7) | (bit(imm, 4, 4) << 6) | (bit(imm, 6, 6) << 5) |
      (bit(imm, 8, 7) << 3) | (bit(imm, 5, 5) << 2) | 1;
  },
  srli(rd: number, sh: number): number { check(ufits(sh, 6), `c.srli ${sh}`); return (4 << 13) | (bit(sh, 5, 5) << 12) | (0 << 10) | (p(rd) << 7) | (bit(sh, 4, 0) << 2) | 1; },
  srai(rd: number, sh: number): number { check(ufits(sh, 6), `c.srai ${sh}`); return (4 << 13) | (bit(sh, 5, 5) << 12) | (1 << 10) | (p(rd) << 7) | (bit(sh, 4, 0) << 2) | 1; },
  andi(rd: number, imm: number): number { check(fits(imm, 6), `c.andi ${imm}`); return (4 << 13) | (bit(imm, 5, 5) << 12) | (2 << 10) | (p(rd) << 7) | (bit(imm, 4, 0) << 2) | 1; },
  ca(w: number, f2: number, rd: number, rs2: number): number {
    return (4 << 13) | (w << 12) | (3 << 10) | (p(rd) << 7) | (f2 << 5) | (p(rs2) << 2) | 1;
  },
  sub: (rd: number, rs2: number): number => C.ca(0, 0, rd, rs2),
  xor: (rd: number, rs2: number): number => C.ca(0, 1, rd, rs2),
  or: (rd: number, rs2: number): number => C.ca(0, 2, rd, rs2),
  and: (rd: number, rs2: number): number => C.ca(0, 3, rd, rs2),
  subw: (rd: number, rs2: number): number => C.ca(1, 0, rd, rs2),
  addw: (rd: number, rs2: number): number => C.ca(1, 1, rd, rs2),
  j(imm: number): number {
    check(fits(imm, 12) && (imm & 1) === 0, `c.j offset ${imm}`);
    return (5 << 13) | (bit(imm, 11, 11) << 12) | (bit(imm, 4, 4) << 11) | (bit(imm, 9, 8) << 9) | (bit(imm, 10, 10) << 8) |
      (bit(imm, 6, 6) << 7) | (bit(imm, 7, 7) << 6) | (bit(imm, 3, 1) << 3) | (bit(imm, 5, 5) << 2) | 1;
  },
  bz(f3: number, rs1: number, imm: number): number {
    check(fits(imm, 9) && (imm & 1) === 0, `c.beqz/c.bnez offset ${imm}`);
    return (f3 << 13) | (bit(imm, 8, 8) << 12) | (bit(imm, 4, 3) << 10) | (p(rs1) << 7) | (bit(imm, 7, 6) << 5) |
      (bit(imm, 2, 1) << 3) | (bit(imm, 5, 5) << 2) | 1;
  },
  beqz: (rs1: number, imm: number): number => C.bz(6, rs1, imm),
  bnez: (rs1: number, imm: number): number => C.bz(7, rs1, imm),
  slli(rd: number, sh: number): number { check(ufits(sh, 6), `c.slli ${sh}`); return (bit(sh, 5, 5) << 12) | (rd << 7) | (bit(sh, 4, 0) << 2) | 2; },
  lwsp(rd: number, uimm: number): number {
    check(uimm >= 0 && uimm < 256 && (uimm & 3) === 0, `c.lwsp ${uimm}`);
    return (2 << 13) | (bit(uimm, 5, 5) << 12) | (nz(rd, "c.lwsp") << 7) | (bit(uimm, 4, 2) << 4) | (bit(uimm, 7, 6) << 2) | 2;
  },
  ldsp(rd: number, uimm: number): number {
    check(uimm >= 0 && uimm < 512 && (uimm & 7) === 0, `c.ldsp ${uimm}`);
    return (3 << 13) | (bit(uimm, 5, 5) << 12) | (nz(rd, "c.ldsp") << 7) | (bit(uimm, 4, 3) << 5) | (bit(uimm, 8, 6) << 2) | 2;
  },
  swsp(rs2: number, uimm: number): number {
    check(uimm >= 0 && uimm < 256 && (uimm & 3) === 0, `c.swsp ${uimm}`);
    return (6 << 13) | (bit(uimm, 5, 2) << 9) | (bit(uimm, 7, 6) << 7) | (rs2 << 2) | 2;
  },
  sdsp(rs2: number, uimm: number): number {
    check(uimm >= 0 && uimm < 512 && (uimm & 7) === 0, `c.sdsp ${uimm}`);
    return (7 << 13) | (bit(uimm, 5, 3) << 10) | (bit(uimm, 8, 6) << 7) | (rs2 << 2) | 2;
  },
  jr: (rs1: number): number => (4 << 13) | (nz(rs1, "c.jr") << 7) | 2,
  mv: (rd: number, rs2: number): number => (4 << 13) | (rd << 7) | (nz(rs2, "c.mv") << 2) | 2,
  jalr: (rs1: number): number => (4 << 13) | (1 << 12) | (nz(rs1, "c.jalr") << 7) | 2,
  add: (rd: number, rs2: number): number => (4 << 13) | (1 << 12) | (rd << 7) | (nz(rs2, "c.add") << 2) | 2,
};

// ---- F and D (chapters 21, 22): fmt 0 = single, 1 = double; rm 7 = dynamic (frm).
export const FP_OP: Record<string, number> = { // funct5 of OP-FP
  fadd: 0x00, fsub: 0x01, fmul: 0x02, fdiv: 0x03, fsgnj: 0x04, fminmax: 0x05, fcvtff: 0x08, fsqrt: 0x0b,
  fcmp: 0x14, fcvtif: 0x18, fcvtfi: 0x1a, fmvxf: 0x1c, fmvfx: 0x1e,
};
export const encFp = (f5: number, fmt: number, rd: number, rs1: number, rs2: number, f3: number): number =>
  encR(0x53, f3, (f5 << 2) | fmt, rd, rs1, rs2);
export const encFma = (op: "fmadd" | "fmsub" | "fnmsub" | "fnmadd", fmt: number, rd: number, rs1: number, rs2: number, rs3: number, rm: number): number =>
  u((rs3 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | { fmadd: 0x43, fmsub: 0x47, fnmsub: 0x4b, fnmadd: 0x4f }[op]);
export const encFload = (size: 4 | 8, rd: number, rs1: number, imm: number): number => encI(0x07, size === 8 ? 3 : 2, rd, rs1, imm);
export const encFstore = (size: 4 | 8, rs2: number, rs1: number, imm: number): number => encS(0x27, size === 8 ? 3 : 2, rs1, rs2, imm);
const f3of = (w: number, f3: number): number => (w & ~(7 << 13)) | (f3 << 13);
export const CF = {
  fld: (rd: number, rs1: number, uimm: number): number => f3of(C.ld(rd, rs1, uimm), 1),
  fsd: (rs2: number, rs1: number, uimm: number): number => f3of(C.ld(rs2, rs1, uimm), 5),
  fldsp: (rd: number, uimm: number): number => f3of(C.ldsp(rd === 0 ? 1 : rd, uimm), 1) & ~(rd === 0 ? 31 << 7 : 0),
  fsdsp: (rs2: number, uimm: number): number => f3of(C.sdsp(rs2, uimm), 5),
};

// ---- The emitter: one flat image at `base`; `at` moves the cursor (several code areas).
type FixKind = "b" | "j" | "cb" | "cj" | "pcrel";
interface Fixup { at: number; kind: FixKind; label: string; word: number; rd?: number }

export class Asm {
  readonly image: Uint8Array;
  private readonly view: DataView;
  pos: number;
  readonly labels = new Map<string, number>();
  private readonly fixups: Fixup[] = [];
  private n = 0;

  constructor(readonly base: number, size: number) {
    this.image = new Uint8Array(size);
    this.view = new DataView(this.image.buffer);
    this.pos = base;
  }

  at(addr: number): this { this.pos = addr; return this; }
  align(n: number): this { while (this.pos % n !== 0) this.h16(0x0001); return this; } // c.nop
  fresh(prefix = "L"): string { return `.${prefix}${this.n++}`; }
  label(name: string): this {
    check(!this.labels.has(name), `label ${name} defined twice`);
    this.labels.set(name, this.pos);
    return this;
  }
  // A label at a fixed address (data, devices).
  define(name: string, addr: number): this {
    check(!this.labels.has(name), `label ${name} defined twice`);
    this.labels.set(name, addr);
    return this;
  }
  addr(name: string): number {
    const a = this.labels.get(name);
    check(a !== undefined, `undefined label ${name}`);
    return a!;
  }

  private off(): number {
    const o = this.pos - this.base;
    check(o >= 0 && o + 4 <= this.image.length, `emission at 0x${this.pos.toString(16)} is outside the image`);
    return o;
  }
  h16(v: number): this { this.view.setUint16(this.off(), v & 0xffff, true); this.pos += 2; return this; }
  w32(v: number): this { this.view.setUint32(this.off(), v >>> 0, true); this.pos += 4; return this; }
  d64(v: bigint): this { this.view.setBigUint64(this.off(), BigInt.asUintN(64, v), true); this.pos += 8; return this; }
  // Any instruction word: 16-bit if its low bits say so.
  insn(v: number): this { return (v & 3) === 3 ? this.w32(v) : this.h16(v); }

  // Control transfer to a label (resolved by finish()).
  branch(name: string, rs1: number, rs2: number, label: string): this {
    this.fixups.push({ at: this.pos, kind: "b", label, word: encB(BRANCHES[name]!, rs1, rs2, 0) });
    return this.w32(0);
  }
  jal(rd: number, label: string): this {
    this.fixups.push({ at: this.pos, kind: "j", label, word: encJ(rd, 0) });
    return this.w32(0);
  }
  cbz(name: "beqz" | "bnez", rs1: number, label: string): this {
    this.fixups.push({ at: this.pos, kind: "cb", label, word: C[name](rs1, 0) });
    return this.h16(0);
  }
  cj(label: string): this {
    this.fixups.push({ at: this.pos, kind: "cj", label, word: C.j(0) });
    return this.h16(0);
  }
  // auipc rd, %pcrel_hi(label); then `word` with %pcrel_lo in its I-immediate (addi rd, rd / jalr ra, rd / ld rd, rd).
  pcrel(rd: number, label: string, lo: number = encI(0x13, 0, rd, rd, 0)): this {
    this.fixups.push({ at: this.pos, kind: "pcrel", label, word: lo, rd });
    this.w32(0);
    return this.w32(0);
  }
  la(rd: number, label: string): this { return this.pcrel(rd, label); }

  // Loads a 64-bit constant (the usual lui/addiw/slli/addi expansion).
  li(rd: number, value: bigint | number): this {
    const v = BigInt.asIntN(64, BigInt(value));
    if (v >= -2048n && v < 2048n) return this.w32(encI(0x13, 0, rd, 0, Number(v)));
    if (v >= -(1n << 31n) && v < (1n << 31n)) {
      const lo = Number(BigInt.asIntN(12, v));
      const hi = Number(BigInt.asUintN(20, (v - BigInt(lo)) >> 12n));
      this.w32(encU(0x37, rd, hi));
      if (lo !== 0) this.w32(encI(0x1b, 0, rd, rd, lo));
      return this;
    }
    const lo = BigInt.asIntN(12, v);
    let hi = (v - lo) >> 12n;
    let sh = 12;
    while ((hi & 1n) === 0n) { hi >>= 1n; sh++; }
    this.li(rd, hi);
    this.w32(encAluI("slli", rd, rd, sh));
    if (lo !== 0n) this.w32(encI(0x13, 0, rd, rd, Number(lo)));
    return this;
  }

  finish(): Uint8Array {
    for (const f of this.fixups) {
      const target = this.addr(f.label);
      const d = target - f.at;
      const o = f.at - this.base;
      if (f.kind === "b") {
        const w = f.word;
        this.view.setUint32(o, encB((w >>> 12) & 7, (w >>> 15) & 31, (w >>> 20) & 31, d), true);
      } else if (f.kind === "j") {
        this.view.setUint32(o, encJ((f.word >>> 7) & 31, d), true);
      } else if (f.kind === "cb") {
        this.view.setUint16(o, C.bz(f.word >>> 13, 8 + ((f.word >>> 7) & 7), d), true);
      } else if (f.kind === "cj") {
        this.view.setUint16(o, C.j(d), true);
      } else {
        const lo = ((d & 0xfff) ^ 0x800) - 0x800;
        const hi = ((d - lo) / 4096) & 0xfffff;
        this.view.setUint32(o, encU(0x17, f.rd!, hi), true);
        this.view.setUint32(o + 4, u((f.word & 0x000fffff) | ((lo & 0xfff) << 20)), true);
      }
    }
    return this.image;
  }
}

// A minimal ELF64 executable for RISC-V: `image` loaded at `base`, entry `entry`, and symbols.
export function elf64(image: Uint8Array, base: number, entry: number, symbols: Record<string, number>): Uint8Array {
  const names = Object.keys(symbols);
  const strtab: number[] = [0];
  const nameOff: number[] = [];
  for (const n of names) {
    nameOff.push(strtab.length);
    for (const ch of Buffer.from(n, "latin1")) strtab.push(ch);
    strtab.push(0);
  }
  const dataOff = 0x1000;
  const symOff = dataOff + image.length;
  const symSize = 24 * (names.length + 1);
  const strOff = symOff + symSize;
  const shOff = (strOff + strtab.length + 7) & ~7;
  const total = shOff + 3 * 64;
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 243, true); // EM_RISCV
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(entry), true);
  v.setBigUint64(32, 64n, true); // phoff
  v.setBigUint64(40, BigInt(shOff), true);
  v.setUint32(48, 0x5, true); // RVC, double-float ABI
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 1, true);
  v.setUint16(58, 64, true);
  v.setUint16(60, 3, true);
  v.setUint16(62, 0, true);
  // PT_LOAD
  v.setUint32(64, 1, true);
  v.setUint32(68, 7, true);
  v.setBigUint64(72, BigInt(dataOff), true);
  v.setBigUint64(80, BigInt(base), true);
  v.setBigUint64(88, BigInt(base), true);
  v.setBigUint64(96, BigInt(image.length), true);
  v.setBigUint64(104, BigInt(image.length), true);
  v.setBigUint64(112, 0x1000n, true);
  out.set(image, dataOff);
  names.forEach((n, i) => {
    const s = symOff + 24 * (i + 1);
    v.setUint32(s, nameOff[i]!, true);
    out[s + 4] = 0x11; // STB_GLOBAL, STT_OBJECT
    v.setUint16(s + 6, 0xfff1, true); // SHN_ABS
    v.setBigUint64(s + 8, BigInt(symbols[n]!), true);
    v.setBigUint64(s + 16, 8n, true);
  });
  out.set(strtab, strOff);
  // Section headers: null, .symtab (link 2), .strtab.
  const sh = (i: number, type: number, off: number, size: number, link: number, entsize: number): void => {
    const o = shOff + 64 * i;
    v.setUint32(o + 4, type, true);
    v.setBigUint64(o + 24, BigInt(off), true);
    v.setBigUint64(o + 32, BigInt(size), true);
    v.setUint32(o + 40, link, true);
    v.setUint32(o + 44, 1, true);
    v.setBigUint64(o + 48, 8n, true);
    v.setBigUint64(o + 56, BigInt(entsize), true);
  };
  sh(1, 2, symOff, symSize, 2, 24);
  sh(2, 3, strOff, strtab.length, 0, 0);
  return out;
}

// A deterministic PRNG (sfc32) with the helpers generators need.
export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9; this.b = seed >>> 0; this.c = 0x243f6a88 ^ seed; this.d = 1;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  int(lo: number, hi: number): number { return lo + (this.u32() % (hi - lo + 1)); } // inclusive
  chance(p: number): boolean { return this.u32() / 2 ** 32 < p; }
  pick<T>(a: readonly T[]): T { return a[this.u32() % a.length]!; }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
  weighted<T>(items: readonly [number, T][]): T {
    let total = 0;
    for (const [w] of items) total += w;
    let r = (this.u32() / 2 ** 32) * total;
    for (const [w, v] of items) { if ((r -= w) < 0) return v; }
    return items[items.length - 1]![1];
  }
}
