// Decoding for the translator: RV64I, M and the integer part of C (unprivileged spec chapters
// 2, 4, 7 and 16) into one small form, with F and D loads and stores, and the rest of F and D
// as calls into the hart's own implementation (fexec.ts), and the sensitive SYSTEM instructions
// as calls into the VMM ("sys"). Anything else (other CSRs and SYSTEM instructions, AMOs, fence.i,
// illegal encodings, the marker instruction) decodes as "stop": translated code ends before it
// and the interpreter executes it, so those never need a second implementation.

export type AluOp =
  | "add" | "sub" | "sll" | "slt" | "sltu" | "xor" | "srl" | "sra" | "or" | "and"
  | "mul" | "mulh" | "mulhsu" | "mulhu" | "div" | "divu" | "rem" | "remu"
  | "addw" | "subw" | "sllw" | "srlw" | "sraw" | "mulw" | "divw" | "divuw" | "remw" | "remuw";
export type Cond = "eq" | "ne" | "lt" | "ge" | "ltu" | "geu";

export type Insn =
  | { k: "alu"; op: AluOp; rd: number; rs1: number; rs2: number } // rd = rs1 op rs2
  | { k: "alui"; op: AluOp; rd: number; rs1: number; imm: bigint } // rd = rs1 op imm
  | { k: "li"; rd: number; imm: bigint } // lui, c.li, c.lui
  | { k: "auipc"; rd: number; imm: bigint }
  | { k: "load"; rd: number; rs1: number; imm: number; size: 1 | 2 | 4 | 8; signed: boolean }
  | { k: "store"; rs1: number; rs2: number; imm: number; size: 1 | 2 | 4 | 8 }
  | { k: "branch"; cond: Cond; rs1: number; rs2: number; imm: number }
  | { k: "jal"; rd: number; imm: number }
  | { k: "jalr"; rd: number; rs1: number; imm: number }
  | { k: "fload"; rd: number; rs1: number; imm: number; size: 4 | 8 } // flw, fld (rd an f register)
  | { k: "fstore"; rs1: number; rs2: number; imm: number; size: 4 | 8 } // fsw, fsd (rs2 an f register)
  // Any other F/D instruction, done by the hart's fexec.ts; xr/xw: the integer register it reads
  // or writes (0: none).
  | { k: "fp"; word: number; xr: number; xw: number }
  // A SYSTEM instruction that a deprivileged guest kernel traps on: S-level CSR accesses, sret,
  // sfence.vma, ecall. Translated as a call into the VMM (src/vmm/asm/vcpu.ts btSys), which
  // emulates it in place under --virt bt and otherwise declines (the interpreter executes it).
  // reads: the integer registers it reads; rd: the one it may write; end: control never simply
  // falls through (sret, ecall).
  | { k: "sys"; word: number; reads: number[]; rd: number; end: boolean }
  | { k: "fence" } // fence: an atomic.fence, so device models on other threads see stores in order
  | { k: "stop" };

export interface Decoded {
  insn: Insn;
  len: 2 | 4;
}

const MARKER = 0x7a502013; // slti x0, x0, 0x7a5: the host may want to see it (cpu.ts)
const STOP: Insn = { k: "stop" };

const sext = (v: number, bits: number): number => (v << (32 - bits)) >> (32 - bits);

const OP: (AluOp | undefined)[] = ["add", "sll", "slt", "sltu", "xor", "srl", "or", "and"];
const MULDIV: AluOp[] = ["mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"];
const MULDIVW: (AluOp | undefined)[] = ["mulw", undefined, undefined, undefined, "divw", "divuw", "remw", "remuw"];
const BR: (Cond | undefined)[] = ["eq", "ne", undefined, undefined, "lt", "ge", "ltu", "geu"];

export function decode32(i: number): Insn {
  const rd = (i >>> 7) & 31, rs1 = (i >>> 15) & 31, rs2 = (i >>> 20) & 31, f3 = (i >>> 12) & 7, f7 = i >>> 25;
  const immI = i >> 20;
  switch ((i >>> 2) & 31) {
    case 0x00: // LOAD
      if (f3 === 7) return STOP;
      return { k: "load", rd, rs1, imm: immI, size: (1 << (f3 & 3)) as 1 | 2 | 4 | 8, signed: f3 < 4 };
    case 0x08: // STORE
      if (f3 > 3) return STOP;
      return { k: "store", rs1, rs2, imm: ((i >> 20) & ~31) | rd, size: (1 << f3) as 1 | 2 | 4 | 8 };
    case 0x04: { // OP-IMM
      if (i === MARKER) return STOP;
      const imm = BigInt(immI);
      if (f3 === 1) return (i >>> 26) !== 0 ? STOP : { k: "alui", op: "sll", rd, rs1, imm: imm & 63n };
      if (f3 === 5) {
        const f6 = i >>> 26;
        if (f6 === 0) return { k: "alui", op: "srl", rd, rs1, imm: imm & 63n };
        if (f6 === 0x10) return { k: "alui", op: "sra", rd, rs1, imm: imm & 63n };
        return STOP;
      }
      return { k: "alui", op: OP[f3]!, rd, rs1, imm };
    }
    case 0x0c: { // OP
      if (f7 === 0) return { k: "alu", op: OP[f3]!, rd, rs1, rs2 };
      if (f7 === 1) return { k: "alu", op: MULDIV[f3]!, rd, rs1, rs2 };
      if (f7 === 0x20 && f3 === 0) return { k: "alu", op: "sub", rd, rs1, rs2 };
      if (f7 === 0x20 && f3 === 5) return { k: "alu", op: "sra", rd, rs1, rs2 };
      return STOP;
    }
    case 0x06: { // OP-IMM-32
      const sh = BigInt(immI & 31);
      if (f3 === 0) return { k: "alui", op: "addw", rd, rs1, imm: BigInt(immI) };
      if (f3 === 1 && f7 === 0) return { k: "alui", op: "sllw", rd, rs1, imm: sh };
      if (f3 === 5 && f7 === 0) return { k: "alui", op: "srlw", rd, rs1, imm: sh };
      if (f3 === 5 && f7 === 0x20) return { k: "alui", op: "sraw", rd, rs1, imm: sh };
      return STOP;
    }
    case 0x0e: { // OP-32
      if (f7 === 0 && f3 === 0) return { k: "alu", op: "addw", rd, rs1, rs2 };
      if (f7 === 0x20 && f3 === 0) return { k: "alu", op: "subw", rd, rs1, rs2 };
      if (f7 === 0 && f3 === 1) return { k: "alu", op: "sllw", rd, rs1, rs2 };
      if (f7 === 0 && f3 === 5) return { k: "alu", op: "srlw", rd, rs1, rs2 };
      if (f7 === 0x20 && f3 === 5) return { k: "alu", op: "sraw", rd, rs1, rs2 };
      if (f7 === 1 && MULDIVW[f3]) return { k: "alu", op: MULDIVW[f3]!, rd, rs1, rs2 };
      return STOP;
    }
    case 0x18: { // BRANCH
      const cond = BR[f3];
      if (!cond) return STOP;
      const imm = ((i >> 19) & ~0xfff) | ((i & 0x80) << 4) | ((i >>> 20) & 0x7e0) | ((i >>> 7) & 0x1e);
      return { k: "branch", cond, rs1, rs2, imm };
    }
    case 0x19: // JALR
      return f3 !== 0 ? STOP : { k: "jalr", rd, rs1, imm: immI };
    case 0x1b: { // JAL
      const imm = ((i >> 11) & ~0xfffff) | (i & 0xff000) | ((i >>> 9) & 0x800) | ((i >>> 20) & 0x7fe);
      return { k: "jal", rd, imm };
    }
    case 0x0d: return { k: "li", rd, imm: BigInt(i & 0xfffff000) }; // LUI (i is a signed 32-bit value)
    case 0x05: return { k: "auipc", rd, imm: BigInt(i & 0xfffff000) };
    case 0x03: return f3 === 0 ? { k: "fence" } : STOP; // fence; fence.i goes to the interpreter
    case 0x01: // LOAD-FP
      return f3 === 2 || f3 === 3 ? { k: "fload", rd, rs1, imm: immI, size: f3 === 3 ? 8 : 4 } : STOP;
    case 0x09: // STORE-FP
      return f3 === 2 || f3 === 3 ? { k: "fstore", rs1, rs2, imm: ((i >> 20) & ~31) | rd, size: f3 === 3 ? 8 : 4 } : STOP;
    case 0x10: case 0x11: case 0x12: case 0x13: // fmadd, fmsub, fnmsub, fnmadd
      return { k: "fp", word: i >>> 0, xr: 0, xw: 0 };
    case 0x14: { // OP-FP: fexec.ts decides what is legal
      const g = f7 >>> 1;
      const xw = g === 0x28 || g === 0x30 || g === 0x38 ? rd : 0; // compares, fcvt to integer, fmv.x, fclass
      const xr = g === 0x34 || g === 0x3c ? rs1 : 0; // fcvt from integer, fmv from x
      return { k: "fp", word: i >>> 0, xr, xw };
    }
    case 0x1c: { // SYSTEM
      const w = i >>> 0;
      if (f3 === 0) {
        if (w === 0x00000073 || w === 0x10200073) return { k: "sys", word: w, reads: [], rd: 0, end: true }; // ecall, sret
        if (f7 === 0x09 && rd === 0) return { k: "sys", word: w, reads: [rs1, rs2], rd: 0, end: false }; // sfence.vma
        return STOP; // wfi, mret, ebreak, ...
      }
      if (f3 === 4 || ((w >>> 28) & 3) !== 1) return STOP; // only the S-level CSRs (0x1xx, 0x5xx, 0x9xx, 0xdxx)
      return { k: "sys", word: w, reads: f3 < 4 ? [rs1] : [], rd, end: false };
    }
    default: return STOP;
  }
}

export function decode16(c: number): Insn {
  const rdc = (c >>> 7) & 31, rs2c = (c >>> 2) & 31;
  const rdp = 8 + ((c >>> 2) & 7), rs1p = 8 + ((c >>> 7) & 7);
  const imm6 = (sext(c >>> 12, 1) << 5) | ((c >>> 2) & 31);
  switch (((c & 3) << 3) | (c >>> 13)) {
    case 0x00: { // c.addi4spn
      const imm = ((c >>> 7) & 0x30) | ((c >>> 1) & 0x3c0) | ((c >>> 4) & 4) | ((c >>> 2) & 8);
      return imm === 0 ? STOP : { k: "alui", op: "add", rd: rdp, rs1: 2, imm: BigInt(imm) };
    }
    case 0x01: // c.fld
      return { k: "fload", rd: rdp, rs1: rs1p, imm: ((c >>> 7) & 0x38) | ((c << 1) & 0xc0), size: 8 };
    case 0x05: // c.fsd
      return { k: "fstore", rs1: rs1p, rs2: rdp, imm: ((c >>> 7) & 0x38) | ((c << 1) & 0xc0), size: 8 };
    case 0x11: // c.fldsp
      return { k: "fload", rd: rdc, rs1: 2, imm: ((c >>> 7) & 0x20) | ((c >>> 2) & 0x18) | ((c << 4) & 0x1c0), size: 8 };
    case 0x15: // c.fsdsp
      return { k: "fstore", rs1: 2, rs2: rs2c, imm: ((c >>> 7) & 0x38) | ((c >>> 1) & 0x1c0), size: 8 };
    case 0x02: // c.lw
      return { k: "load", rd: rdp, rs1: rs1p, imm: ((c >>> 7) & 0x38) | ((c >>> 4) & 4) | ((c << 1) & 0x40), size: 4, signed: true };
    case 0x03: // c.ld
      return { k: "load", rd: rdp, rs1: rs1p, imm: ((c >>> 7) & 0x38) | ((c << 1) & 0xc0), size: 8, signed: true };
    case 0x06: // c.sw
      return { k: "store", rs1: rs1p, rs2: rdp, imm: ((c >>> 7) & 0x38) | ((c >>> 4) & 4) | ((c << 1) & 0x40), size: 4 };
    case 0x07: // c.sd
      return { k: "store", rs1: rs1p, rs2: rdp, imm: ((c >>> 7) & 0x38) | ((c << 1) & 0xc0), size: 8 };
    case 0x08: // c.addi, c.nop
      return { k: "alui", op: "add", rd: rdc, rs1: rdc, imm: BigInt(imm6) };
    case 0x09: // c.addiw
      return rdc === 0 ? STOP : { k: "alui", op: "addw", rd: rdc, rs1: rdc, imm: BigInt(imm6) };
    case 0x0a: // c.li
      return { k: "li", rd: rdc, imm: BigInt(imm6) };
    case 0x0b: { // c.addi16sp, c.lui
      if (rdc === 2) {
        const imm = (sext(c >>> 12, 1) << 9) | ((c >>> 2) & 0x10) | ((c << 1) & 0x40) | ((c << 4) & 0x180) | ((c << 3) & 0x20);
        return imm === 0 ? STOP : { k: "alui", op: "add", rd: 2, rs1: 2, imm: BigInt(imm) };
      }
      return imm6 === 0 ? STOP : { k: "li", rd: rdc, imm: BigInt(imm6) << 12n };
    }
    case 0x0c: { // misc ALU
      const f2 = (c >>> 10) & 3;
      if (f2 === 0) return { k: "alui", op: "srl", rd: rs1p, rs1: rs1p, imm: BigInt(imm6 & 63) };
      if (f2 === 1) return { k: "alui", op: "sra", rd: rs1p, rs1: rs1p, imm: BigInt(imm6 & 63) };
      if (f2 === 2) return { k: "alui", op: "and", rd: rs1p, rs1: rs1p, imm: BigInt(imm6) };
      const ops: (AluOp | undefined)[] = ["sub", "xor", "or", "and", "subw", "addw", undefined, undefined];
      const op = ops[((c >>> 10) & 4) | ((c >>> 5) & 3)];
      return op ? { k: "alu", op, rd: rs1p, rs1: rs1p, rs2: rdp } : STOP;
    }
    case 0x0d: { // c.j
      const imm = (sext(c >>> 12, 1) << 11) | ((c >>> 7) & 0x10) | ((c >>> 1) & 0x300) | ((c << 2) & 0x400) |
        ((c >>> 1) & 0x40) | ((c << 1) & 0x80) | ((c >>> 2) & 0xe) | ((c << 3) & 0x20);
      return { k: "jal", rd: 0, imm };
    }
    case 0x0e: case 0x0f: { // c.beqz, c.bnez
      const imm = (sext(c >>> 12, 1) << 8) | ((c >>> 7) & 0x18) | ((c << 1) & 0xc0) | ((c >>> 2) & 6) | ((c << 3) & 0x20);
      return { k: "branch", cond: (c >>> 13) === 6 ? "eq" : "ne", rs1: rs1p, rs2: 0, imm };
    }
    case 0x10: // c.slli
      return { k: "alui", op: "sll", rd: rdc, rs1: rdc, imm: BigInt(imm6 & 63) };
    case 0x12: // c.lwsp
      if (rdc === 0) return STOP;
      return { k: "load", rd: rdc, rs1: 2, imm: ((c >>> 7) & 0x20) | ((c >>> 2) & 0x1c) | ((c << 4) & 0xc0), size: 4, signed: true };
    case 0x13: // c.ldsp
      if (rdc === 0) return STOP;
      return { k: "load", rd: rdc, rs1: 2, imm: ((c >>> 7) & 0x20) | ((c >>> 2) & 0x18) | ((c << 4) & 0x1c0), size: 8, signed: true };
    case 0x14: { // c.jr, c.mv, c.ebreak, c.jalr, c.add
      if ((c & 0x1000) === 0) {
        if (rs2c === 0) return rdc === 0 ? STOP : { k: "jalr", rd: 0, rs1: rdc, imm: 0 };
        return { k: "alu", op: "add", rd: rdc, rs1: 0, rs2: rs2c };
      }
      if (rs2c === 0) return rdc === 0 ? STOP : { k: "jalr", rd: 1, rs1: rdc, imm: 0 };
      return { k: "alu", op: "add", rd: rdc, rs1: rdc, rs2: rs2c };
    }
    case 0x16: // c.swsp
      return { k: "store", rs1: 2, rs2: rs2c, imm: ((c >>> 7) & 0x3c) | ((c >>> 1) & 0xc0), size: 4 };
    case 0x17: // c.sdsp
      return { k: "store", rs1: 2, rs2: rs2c, imm: ((c >>> 7) & 0x38) | ((c >>> 1) & 0x1c0), size: 8 };
    default: // reserved encodings
      return STOP;
  }
}

// The instruction at byte offset `off` of a 4 KiB page of code, or stop if it is not all there.
export function decodeAt(page: Uint8Array, off: number): Decoded {
  if (off + 2 > 4096) return { insn: STOP, len: 2 };
  const lo = page[off]! | (page[off + 1]! << 8);
  if ((lo & 3) !== 3) return { insn: decode16(lo), len: 2 };
  if (off + 4 > 4096) return { insn: STOP, len: 4 };
  const i = lo | (page[off + 2]! << 16) | (page[off + 3]! << 24);
  return { insn: decode32(i), len: 4 };
}
