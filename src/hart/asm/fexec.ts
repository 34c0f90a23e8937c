// F and D instructions other than loads and stores (unprivileged spec chapters 11-12): operand
// unboxing, rounding-mode resolution, flag accumulation; arithmetic lives in fpu.ts.
import { HART_F, HART_FCSR, HART_MSTATUS } from "../layout";
import { S, raise, getX, setX, dirtyFS, NAN_BOX, SIGN64, CAUSE_ILLEGAL } from "./state";
import * as fpu from "./fpu";

const SIGN32: u32 = 0x8000_0000;

@inline function F(r: u32): i64 { return load<i64>(S + HART_F + (<usize>r << 3)); }
@inline function setF(r: u32, v: i64): void { store<i64>(S + HART_F + (<usize>r << 3), v); }
@inline function box(v: u32): i64 { return NAN_BOX | <i64>v; }
// A binary32 operand that is not properly NaN-boxed reads as the canonical NaN (11.2).
@inline function unbox(v: i64): u32 { return (v & NAN_BOX) == NAN_BOX ? <u32>v : 0x7FC00000; }

// fsgnj.d (f3 0), fsgnjn.d (1), fsgnjx.d (2): a's magnitude with a sign from b.
@inline export function fsgnj64(a: u64, b: u64, f3: u32): u64 {
  const sb = f3 == 0 ? b : f3 == 1 ? ~b : a ^ b;
  return (a & ~SIGN64) | (sb & SIGN64);
}

function illegal(insn: u32): void { raise(CAUSE_ILLEGAL, insn); }

export function fpInsn(insn: u32): void {
  const rd = (insn >>> 7) & 31;
  const rs1 = (insn >>> 15) & 31;
  const rs2 = (insn >>> 20) & 31;
  const f3 = (insn >>> 12) & 7;
  const fcsr = load<i64>(S + HART_FCSR);
  const rm = f3 == 7 ? <i32>((fcsr >>> 5) & 7) : <i32>f3;
  const op = insn & 0x7F;
  const isD = ((insn >>> 25) & 1) != 0;
  fpu.fpFlags = 0;

  if (op != 0x53) { // fmadd, fmsub, fnmsub, fnmadd
    const fmt = (insn >>> 25) & 3;
    if (fmt > 1 || rm > 4) { illegal(insn); return; }
    const rs3 = insn >>> 27;
    const negProd = op == 0x4B || op == 0x4F;
    const negAdd = op == 0x47 || op == 0x4F;
    if (isD) {
      const a = <u64>F(rs1), b = <u64>F(rs2), c = <u64>F(rs3);
      setF(rd, <i64>fpu.f64_fma(negProd ? a ^ SIGN64 : a, b, negAdd ? c ^ SIGN64 : c, rm));
    } else {
      const a = unbox(F(rs1)), b = unbox(F(rs2)), c = unbox(F(rs3));
      setF(rd, box(fpu.f32_fma(negProd ? a ^ SIGN32 : a, b, negAdd ? c ^ SIGN32 : c, rm)));
    }
    finish();
    return;
  }

  const f7 = insn >>> 25;
  switch (f7 >>> 1) { // operation, format in bit 0
    case 0x00: case 0x02: case 0x04: case 0x06: { // fadd, fsub, fmul, fdiv
      if (rm > 4) { illegal(insn); return; }
      const k = f7 >>> 2;
      if (isD) {
        const a = <u64>F(rs1), b = <u64>F(rs2);
        setF(rd, <i64>(k == 0 ? fpu.f64_add(a, b, rm) : k == 1 ? fpu.f64_sub(a, b, rm)
          : k == 2 ? fpu.f64_mul(a, b, rm) : fpu.f64_div(a, b, rm)));
      } else {
        const a = unbox(F(rs1)), b = unbox(F(rs2));
        setF(rd, box(k == 0 ? fpu.f32_add(a, b, rm) : k == 1 ? fpu.f32_sub(a, b, rm)
          : k == 2 ? fpu.f32_mul(a, b, rm) : fpu.f32_div(a, b, rm)));
      }
      break;
    }
    case 0x16: { // fsqrt
      if (rm > 4 || rs2 != 0) { illegal(insn); return; }
      if (isD) setF(rd, <i64>fpu.f64_sqrt(<u64>F(rs1), rm));
      else setF(rd, box(fpu.f32_sqrt(unbox(F(rs1)), rm)));
      break;
    }
    case 0x08: { // fsgnj, fsgnjn, fsgnjx
      if (f3 > 2) { illegal(insn); return; }
      if (isD) {
        setF(rd, <i64>fsgnj64(<u64>F(rs1), <u64>F(rs2), f3));
      } else {
        const a = unbox(F(rs1)), b = unbox(F(rs2));
        const sb = f3 == 0 ? b & SIGN32 : f3 == 1 ? ~b & SIGN32 : (a ^ b) & SIGN32;
        setF(rd, box((a & ~SIGN32) | sb));
      }
      break;
    }
    case 0x0A: { // fmin, fmax
      if (f3 > 1) { illegal(insn); return; }
      if (isD) {
        const a = <u64>F(rs1), b = <u64>F(rs2);
        setF(rd, <i64>(f3 == 0 ? fpu.f64_min(a, b) : fpu.f64_max(a, b)));
      } else {
        const a = unbox(F(rs1)), b = unbox(F(rs2));
        setF(rd, box(f3 == 0 ? fpu.f32_min(a, b) : fpu.f32_max(a, b)));
      }
      break;
    }
    case 0x10: { // fcvt.s.d (f7 0x20, rs2 1), fcvt.d.s (f7 0x21, rs2 0)
      if (rm > 4) { illegal(insn); return; }
      if (f7 == 0x20 && rs2 == 1) setF(rd, box(fpu.f64_to_f32(<u64>F(rs1), rm)));
      else if (f7 == 0x21 && rs2 == 0) setF(rd, <i64>fpu.f32_to_f64(unbox(F(rs1))));
      else { illegal(insn); return; }
      break;
    }
    case 0x28: { // fle, flt, feq
      if (f3 > 2) { illegal(insn); return; }
      let r: i32;
      if (isD) {
        const a = <u64>F(rs1), b = <u64>F(rs2);
        r = f3 == 0 ? fpu.f64_le(a, b) : f3 == 1 ? fpu.f64_lt(a, b) : fpu.f64_eq(a, b);
      } else {
        const a = unbox(F(rs1)), b = unbox(F(rs2));
        r = f3 == 0 ? fpu.f32_le(a, b) : f3 == 1 ? fpu.f32_lt(a, b) : fpu.f32_eq(a, b);
      }
      setX(rd, <i64>r);
      finishFlagsOnly();
      return;
    }
    case 0x30: { // fcvt.{w,wu,l,lu}.{s,d}
      if (rm > 4 || rs2 > 3) { illegal(insn); return; }
      let r: i64;
      if (isD) {
        const a = <u64>F(rs1);
        r = rs2 == 0 ? fpu.f64_to_i32(a, rm) : rs2 == 1 ? fpu.f64_to_u32(a, rm)
          : rs2 == 2 ? fpu.f64_to_i64(a, rm) : fpu.f64_to_u64(a, rm);
      } else {
        const a = unbox(F(rs1));
        r = rs2 == 0 ? fpu.f32_to_i32(a, rm) : rs2 == 1 ? fpu.f32_to_u32(a, rm)
          : rs2 == 2 ? fpu.f32_to_i64(a, rm) : fpu.f32_to_u64(a, rm);
      }
      setX(rd, r);
      finishFlagsOnly();
      return;
    }
    case 0x34: { // fcvt.{s,d}.{w,wu,l,lu}
      if (rm > 4 || rs2 > 3) { illegal(insn); return; }
      const x = getX(rs1);
      if (isD) {
        setF(rd, <i64>(rs2 == 0 ? fpu.i32_to_f64(<i32>x, rm) : rs2 == 1 ? fpu.u32_to_f64(<u32>x, rm)
          : rs2 == 2 ? fpu.i64_to_f64(x, rm) : fpu.u64_to_f64(<u64>x, rm)));
      } else {
        setF(rd, box(rs2 == 0 ? fpu.i32_to_f32(<i32>x, rm) : rs2 == 1 ? fpu.u32_to_f32(<u32>x, rm)
          : rs2 == 2 ? fpu.i64_to_f32(x, rm) : fpu.u64_to_f32(<u64>x, rm)));
      }
      break;
    }
    case 0x38: { // fmv.x.{w,d}, fclass
      if (rs2 != 0 || f3 > 1) { illegal(insn); return; }
      if (f3 == 0) setX(rd, isD ? F(rs1) : <i64><i32>F(rs1));
      else setX(rd, <i64>(isD ? fpu.f64_class(<u64>F(rs1)) : fpu.f32_class(unbox(F(rs1)))));
      return;
    }
    case 0x3C: { // fmv.{w,d}.x
      if (rs2 != 0 || f3 != 0) { illegal(insn); return; }
      const x = getX(rs1);
      setF(rd, isD ? x : box(<u32>x));
      dirtyFS();
      return;
    }
    default:
      illegal(insn);
      return;
  }
  finish();
}

// An instruction that wrote an f register: accumulate flags and mark the FP state dirty.
function finish(): void {
  store<i64>(S + HART_FCSR, load<i64>(S + HART_FCSR) | <i64>fpu.fpFlags);
  dirtyFS();
}

// An instruction that wrote an x register: flags may change, which also dirties FP state.
function finishFlagsOnly(): void {
  const fl = fpu.fpFlags;
  if (fl != 0) {
    store<i64>(S + HART_FCSR, load<i64>(S + HART_FCSR) | <i64>fl);
    dirtyFS();
  }
}
