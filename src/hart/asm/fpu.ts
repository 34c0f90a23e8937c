// IEEE 754 binary32 / binary64 arithmetic for the RISC-V F and D extensions.
//
// Operands and results are raw bit patterns (u32 for binary32, u64 for
// binary64). `rm` is an already resolved rounding mode (0 RNE, 1 RTZ, 2 RDN,
// 3 RUP, 4 RMM). Exception flags are OR-ed into `fpFlags` using the fflags
// bit layout; the caller clears and reads it.
//
// Structure: every operation first tries a fast path built on the native
// (round-to-nearest-even) wasm float instructions, taken only when it provably
// yields the same bits and flags as the exact algorithm: rm == RNE, finite
// operands, and a result that is normal (so neither tininess nor overflow can
// arise); inexactness is then decided by an exact test. Everything else goes
// to a generic slow path that works on unpacked integer significands, forms
// the exact result (or one with a sticky bit below at least two guard bits)
// and rounds once in `roundPack`.
//
// RISC-V specifics (unprivileged ISA 20191213, chapter 11 "F", 12 "D"):
//  - every NaN result is the canonical NaN (11.3 "NaN Generation and
//    Propagation"); a signalling NaN input to an arithmetic op raises NV;
//  - tininess is detected after rounding (11.4 "Subnormal Arithmetic"), so UF
//    is raised when the result rounded with an unbounded exponent is below
//    the smallest normal and the delivered result is inexact;
//  - fma raises NV for inf*0 even when the addend is a quiet NaN (11.6);
//  - fmin/fmax follow IEEE 754-2019 minimumNumber/maximumNumber (11.6);
//  - fcvt to integer saturates per table 11.4 (in 11.7) and raises NV, not NX.

export let fpFlags: u32 = 0;

const NV: u32 = 16;
const DZ: u32 = 8;
const OF: u32 = 4;
const UF: u32 = 2;
const NX: u32 = 1;

const RNE: i32 = 0;
const RTZ: i32 = 1;
const RDN: i32 = 2;
const RUP: i32 = 3;
const RMM: i32 = 4;

const F64_SIGN: u64 = 0x8000000000000000;
const F64_ABS: u64 = 0x7fffffffffffffff;
const F64_INF: u64 = 0x7ff0000000000000;
const F64_QNAN: u64 = 0x7ff8000000000000;
const F64_QUIET: u64 = 0x0008000000000000;
const F64_MIN_NORMAL: f64 = 2.2250738585072014e-308; // 2^-1022

const F32_SIGN: u32 = 0x80000000;
const F32_ABS: u32 = 0x7fffffff;
const F32_INF: u32 = 0x7f800000;
const F32_QNAN: u32 = 0x7fc00000;
const F32_QUIET: u32 = 0x00400000;
const F32_MIN_NORMAL: f32 = 1.1754943508222875e-38; // 2^-126
const F32_MIN_NORMAL_AS_F64: f64 = 1.1754943508222875e-38;

// ---------------------------------------------------------------------------
// Small helpers

@inline function isNaN64(a: u64): bool {
  return (a & F64_ABS) > F64_INF;
}
@inline function isSNaN64(a: u64): bool {
  return isNaN64(a) && (a & F64_QUIET) == 0;
}
@inline function isNaN32(a: u32): bool {
  return (a & F32_ABS) > F32_INF;
}
@inline function isSNaN32(a: u32): bool {
  return isNaN32(a) && (a & F32_QUIET) == 0;
}

/** Odd part of the integer significand of a nonzero finite binary64. */
@inline function oddSig64(a: u64): u64 {
  let m = a & 0x000fffffffffffff;
  if ((a & F64_INF) != 0) m |= 0x0010000000000000;
  return m >> ctz(m);
}

/** Number of significant bits of x (from highest to lowest set bit). */
@inline function sigBits(x: u64): i32 {
  return 64 - <i32>clz(x) - <i32>ctz(x);
}

/** x >> n, OR-ing every bit shifted out into bit 0 ("sticky"). */
function shiftRightJam(x: u64, n: i32): u64 {
  if (n <= 0) return x;
  if (n >= 64) return <u64>(x != 0);
  return (x >> <u64>n) | <u64>((x << <u64>(64 - n)) != 0);
}

// 128-bit values are handled as (hi, lo) pairs of u64; helpers return them in
// these globals because the hart is built without a GC runtime.
let wHi: u64 = 0;
let wLo: u64 = 0;

/** Full 64x64 -> 128-bit unsigned product into (wHi, wLo). */
function mul128(a: u64, b: u64): void {
  const a0 = a & 0xffffffff, a1 = a >> 32;
  const b0 = b & 0xffffffff, b1 = b >> 32;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >> 32) + (p01 & 0xffffffff) + (p10 & 0xffffffff);
  wLo = (mid << 32) | (p00 & 0xffffffff);
  wHi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/** (hi, lo) >> n with sticky, into (wHi, wLo). */
function shr128Jam(hi: u64, lo: u64, n: i32): void {
  if (n <= 0) {
    wHi = hi;
    wLo = lo;
  } else if (n < 64) {
    wLo = (lo >> <u64>n) | (hi << <u64>(64 - n)) | <u64>((lo << <u64>(64 - n)) != 0);
    wHi = hi >> <u64>n;
  } else if (n < 128) {
    wLo = shiftRightJam(hi, n - 64) | <u64>(lo != 0);
    wHi = 0;
  } else {
    wLo = <u64>((hi | lo) != 0);
    wHi = 0;
  }
}

let nSig: u64 = 0;

/**
 * Normalises a nonzero 128-bit value: sets nSig to its top 63 significant bits
 * with the leading one at bit 62 and the rest jammed into bit 0; returns the
 * position (0..127) of the leading one.
 */
function norm128(hi: u64, lo: u64): i32 {
  if (hi == 0) {
    const p = 63 - <i32>clz(lo);
    nSig = p > 62 ? (lo >> 1) | (lo & 1) : lo << <u64>(62 - p);
    return p;
  }
  const p = 63 - <i32>clz(hi);
  if (p == 63) {
    nSig = (hi >> 1) | <u64>(((hi & 1) | lo) != 0);
  } else if (p == 62) {
    nSig = hi | <u64>(lo != 0);
  } else {
    const s = <u64>(62 - p);
    nSig = (hi << s) | (lo >> (64 - s)) | <u64>((lo << s) != 0);
  }
  return p + 64;
}

// ---------------------------------------------------------------------------
// Unpacking and the shared rounding routine. Both formats use the same
// unpacked form: value = (-1)^sign * sig * 2^(exp - 62), sig in [2^62, 2^63).

const C_ZERO: i32 = 0;
const C_FINITE: i32 = 1;
const C_INF: i32 = 2;
const C_QNAN: i32 = 3;
const C_SNAN: i32 = 4;

let uSign: u64 = 0;
let uExp: i32 = 0;
let uSig: u64 = 0;

/** Classifies `bits` (binary64 if is64, else binary32 in the low half) and unpacks finite nonzero values. */
function unpack(bits: u64, is64: bool): i32 {
  const mb: i32 = is64 ? 52 : 23;
  const emax: i32 = is64 ? 0x7ff : 0xff;
  const bias: i32 = is64 ? 1023 : 127;
  uSign = (bits >> <u64>(is64 ? 63 : 31)) & 1;
  const ef = <i32>(bits >> <u64>mb) & emax;
  const frac = bits & ((<u64>1 << <u64>mb) - 1);
  if (ef == emax) {
    if (frac == 0) return C_INF;
    return (frac >> <u64>(mb - 1)) != 0 ? C_QNAN : C_SNAN;
  }
  if (ef == 0) {
    if (frac == 0) return C_ZERO;
    // Subnormal: frac * 2^(1 - bias - mb); normalise the leading one to bit 62.
    const lz = <i32>clz(frac);
    uSig = frac << <u64>(lz - 1);
    uExp = 64 - lz - bias - mb;
    return C_FINITE;
  }
  uSig = (frac | (<u64>1 << <u64>mb)) << <u64>(62 - mb);
  uExp = ef - bias;
  return C_FINITE;
}

@inline function signShift(is64: bool): u64 {
  return is64 ? 63 : 31;
}
@inline function qnan(is64: bool): u64 {
  return is64 ? F64_QNAN : <u64>F32_QNAN;
}
@inline function packZero(sign: u64, is64: bool): u64 {
  return sign << signShift(is64);
}
@inline function packInf(sign: u64, is64: bool): u64 {
  return (sign << signShift(is64)) | (is64 ? F64_INF : <u64>F32_INF);
}

/** Whether a value with round bits `rb` (half = the tie value) rounds away from zero. */
@inline function roundsUp(rm: i32, sign: u64, rb: u64, half: u64, lsb: u64): bool {
  if (rm == RNE) return rb > half || (rb == half && lsb != 0);
  if (rm == RMM) return rb >= half;
  if (rm == RTZ || rb == 0) return false;
  return (rm == RDN) == (sign != 0);
}

/** IEEE 7.4: overflow gives infinity or the largest finite value depending on rm. */
function overflowResult(sign: u64, rm: i32, is64: bool): u64 {
  fpFlags |= OF | NX;
  const toInf = rm == RNE || rm == RMM || (rm == RDN && sign != 0) || (rm == RUP && sign == 0);
  const mag: u64 = is64 ? (toInf ? F64_INF : F64_INF - 1) : <u64>(toInf ? F32_INF : F32_INF - 1);
  return (sign << signShift(is64)) | mag;
}

/**
 * Rounds the nonzero value (-1)^sign * sig * 2^(exp - 62) (sig in [2^62, 2^63),
 * anything below the representable bits jammed into bit 0) to the format,
 * sets NX/UF/OF and returns the packed bits.
 */
function roundPack(sign: u64, exp: i32, sig: u64, rm: i32, is64: bool): u64 {
  const mb: i32 = is64 ? 52 : 23;
  const emax: i32 = is64 ? 0x7ff : 0xff;
  const sh = <u64>(62 - mb);
  const rmask = (<u64>1 << sh) - 1;
  const half = <u64>1 << (sh - 1);
  let e = exp + (is64 ? 1023 : 127);
  if (e >= emax) return overflowResult(sign, rm, is64);
  let tiny = false;
  if (e < 1) {
    // Tininess after rounding: the value is tiny unless rounding it to full
    // precision with an unbounded exponent reaches 2^emin, which is only
    // possible from the binade just below (e == 0) with an all-ones significand.
    tiny = !(e == 0 && (sig >> sh) == (<u64>1 << <u64>(mb + 1)) - 1 && roundsUp(rm, sign, sig & rmask, half, 1));
    sig = shiftRightJam(sig, 1 - e);
    e = 1;
  }
  const rb = sig & rmask;
  let m = sig >> sh;
  if (rb != 0) {
    fpFlags |= tiny ? NX | UF : NX;
    if (roundsUp(rm, sign, rb, half, m & 1)) m++;
  }
  // m includes the implicit bit, so adding it to (e - 1) << mb yields the right
  // exponent field, also when rounding carries into the next binade or a
  // subnormal rounds up to the smallest normal.
  const mag = (<u64>(e - 1) << <u64>mb) + m;
  if (mag >= (<u64>emax << <u64>mb)) return overflowResult(sign, rm, is64);
  return (sign << signShift(is64)) | mag;
}

// ---------------------------------------------------------------------------
// Generic (slow) paths, shared by both formats.

function addSlow(a: u64, b: u64, rm: i32, is64: bool): u64 {
  const ca = unpack(a, is64);
  let sA = uSign, eA = uExp, mA = uSig;
  const cb = unpack(b, is64);
  let sB = uSign, eB = uExp, mB = uSig;
  if (ca >= C_QNAN || cb >= C_QNAN) {
    if (ca == C_SNAN || cb == C_SNAN) fpFlags |= NV;
    return qnan(is64);
  }
  if (ca == C_INF) {
    if (cb == C_INF && sA != sB) {
      fpFlags |= NV;
      return qnan(is64);
    }
    return a;
  }
  if (cb == C_INF) return b;
  if (ca == C_ZERO) {
    // IEEE 6.3: x + (-x) and (+0) + (-0) are +0, except -0 under RDN.
    if (cb == C_ZERO) return packZero(sA == sB ? sA : <u64>(rm == RDN), is64);
    return b;
  }
  if (cb == C_ZERO) return a;
  if (eA < eB || (eA == eB && mA < mB)) {
    const ts = sA; sA = sB; sB = ts;
    const te = eA; eA = eB; eB = te;
    const tm = mA; mA = mB; mB = tm;
  }
  // |A| >= |B|. Put the leading one at bit 61 (one bit of headroom for the
  // carry) and align B. Bits shifted out of B are jammed: a large shift means
  // at most one bit of cancellation, and all shifts by <= 9 are exact.
  mA >>= 1;
  mB = shiftRightJam(mB >> 1, eA - eB);
  const r = sA == sB ? mA + mB : mA - mB;
  if (r == 0) return packZero(<u64>(rm == RDN), is64);
  const lz = <i32>clz(r);
  return roundPack(sA, eA + 2 - lz, r << <u64>(lz - 1), rm, is64);
}

function mulSlow(a: u64, b: u64, rm: i32, is64: bool): u64 {
  const ca = unpack(a, is64);
  const sA = uSign, eA = uExp, mA = uSig;
  const cb = unpack(b, is64);
  const sign = sA ^ uSign, eB = uExp, mB = uSig;
  if (ca >= C_QNAN || cb >= C_QNAN) {
    if (ca == C_SNAN || cb == C_SNAN) fpFlags |= NV;
    return qnan(is64);
  }
  if (ca == C_INF || cb == C_INF) {
    if (ca == C_ZERO || cb == C_ZERO) {
      fpFlags |= NV;
      return qnan(is64);
    }
    return packInf(sign, is64);
  }
  if (ca == C_ZERO || cb == C_ZERO) return packZero(sign, is64);
  // Exact 126-bit product with its leading one at bit 124 or 125.
  mul128(mA, mB);
  const pos = norm128(wHi, wLo);
  return roundPack(sign, eA + eB - 124 + pos, nSig, rm, is64);
}

function divSlow(a: u64, b: u64, rm: i32, is64: bool): u64 {
  const ca = unpack(a, is64);
  const sA = uSign, eA = uExp, mA = uSig;
  const cb = unpack(b, is64);
  const sign = sA ^ uSign, eB = uExp, mB = uSig;
  if (ca >= C_QNAN || cb >= C_QNAN) {
    if (ca == C_SNAN || cb == C_SNAN) fpFlags |= NV;
    return qnan(is64);
  }
  if (ca == C_INF) {
    if (cb == C_INF) {
      fpFlags |= NV;
      return qnan(is64);
    }
    return packInf(sign, is64);
  }
  if (cb == C_INF) return packZero(sign, is64);
  if (cb == C_ZERO) {
    if (ca == C_ZERO) {
      fpFlags |= NV;
      return qnan(is64);
    }
    fpFlags |= DZ;
    return packInf(sign, is64);
  }
  if (ca == C_ZERO) return packZero(sign, is64);
  // Long division on 53-bit significands (exact: the low 10 bits are zero
  // for binary64, 39 for binary32), 11 quotient bits per native division.
  const x = mA >> 10, y = mB >> 10;
  let q: u64 = 0;
  let r = x;
  if (r >= y) {
    q = 1;
    r -= y;
  }
  for (let i = 0; i < 5; i++) {
    r <<= 11;
    const t = r / y;
    q = (q << 11) | t;
    r -= t * y;
  }
  // q = floor(x * 2^55 / y) has 55 or 56 bits: >= 2 guard bits plus sticky.
  const pos = 63 - <i32>clz(q);
  return roundPack(sign, eA - eB + pos - 55, (q << <u64>(62 - pos)) | <u64>(r != 0), rm, is64);
}

function fmaSlow(a: u64, b: u64, c: u64, rm: i32, is64: bool): u64 {
  const ca = unpack(a, is64);
  const sA = uSign, eA = uExp, mA = uSig;
  const cb = unpack(b, is64);
  const sP = sA ^ uSign, eB = uExp, mB = uSig;
  const cc = unpack(c, is64);
  const sC = uSign, eC = uExp, mC = uSig;
  const infTimesZero = (ca == C_INF && cb == C_ZERO) || (ca == C_ZERO && cb == C_INF);
  if (ca >= C_QNAN || cb >= C_QNAN || cc >= C_QNAN) {
    // 11.6: inf*0 raises NV even if the addend is a quiet NaN.
    if (ca == C_SNAN || cb == C_SNAN || cc == C_SNAN || infTimesZero) fpFlags |= NV;
    return qnan(is64);
  }
  if (ca == C_INF || cb == C_INF) {
    if (infTimesZero || (cc == C_INF && sC != sP)) {
      fpFlags |= NV;
      return qnan(is64);
    }
    return packInf(sP, is64);
  }
  if (cc == C_INF) return c;
  if (ca == C_ZERO || cb == C_ZERO) {
    if (cc != C_ZERO) return c;
    return packZero(sP == sC ? sP : <u64>(rm == RDN), is64);
  }
  // Exact product P = mA*mB, value P * 2^(eA + eB - 124), leading one at bit 124/125.
  mul128(mA, mB);
  let hi = wHi, lo = wLo;
  const eP = eA + eB;
  if (cc == C_ZERO) {
    const pos = norm128(hi, lo);
    return roundPack(sP, eP - 124 + pos, nSig, rm, is64);
  }
  // Addend as 128 bits with its leading one at bit 124: value C * 2^(eC - 124).
  let chi = mC >> 2, clo = mC << 62;
  let base = eP;
  // Align the smaller exponent with sticky. P has >= 20 trailing zero bits and C
  // >= 72, so a jam only happens when the other term dominates by far and the
  // result keeps its leading one near bit 124, well above the jammed bit.
  if (eP >= eC) {
    shr128Jam(chi, clo, eP - eC);
    chi = wHi;
    clo = wLo;
  } else {
    shr128Jam(hi, lo, eC - eP);
    hi = wHi;
    lo = wLo;
    base = eC;
  }
  let sign = sP;
  if (sP == sC) {
    lo += clo;
    hi += chi + <u64>(lo < clo);
  } else if (hi > chi || (hi == chi && lo >= clo)) {
    hi = hi - chi - <u64>(lo < clo);
    lo -= clo;
  } else {
    hi = chi - hi - <u64>(clo < lo);
    lo = clo - lo;
    sign = sC;
  }
  if ((hi | lo) == 0) return packZero(<u64>(rm == RDN), is64);
  const pos = norm128(hi, lo);
  return roundPack(sign, base - 124 + pos, nSig, rm, is64);
}

/** Rounds the integer (-1)^sign * mag (mag != 0) to the format. */
function intToFloat(sign: u64, mag: u64, rm: i32, is64: bool): u64 {
  const p = 63 - <i32>clz(mag);
  const sig = p == 63 ? (mag >> 1) | (mag & 1) : mag << <u64>(62 - p);
  return roundPack(sign, p, sig, rm, is64);
}

// ---------------------------------------------------------------------------
// binary64 arithmetic

// The round-to-nearest fast paths below return F64_FAST_MISS (a signalling NaN, which they never
// produce) when they do not apply; they make no calls, so the hart's call-free inner loop can use
// them directly (src/hart/asm/cpu.ts).
export const F64_FAST_MISS: u64 = 0x7ff0000000000001;

@inline export function f64_add_rne(a: u64, b: u64): u64 {
  const x = reinterpret<f64>(a), y = reinterpret<f64>(b);
  const s = x + y;
  // A finite sum implies finite operands and no overflow. A sum that is
  // subnormal is exact, so UF cannot arise. Exactness: if |x| >= |y| then
  // s - x is computed exactly (Dekker's Fast2Sum), and symmetrically, so
  // the sum is exact iff both differences give back the other operand.
  if (s - s != 0) return F64_FAST_MISS;
  if (s - x != y || s - y != x) fpFlags |= NX;
  return reinterpret<u64>(s);
}

export function f64_add(a: u64, b: u64, rm: i32): u64 {
  if (rm == RNE) {
    const r = f64_add_rne(a, b);
    if (r != F64_FAST_MISS) return r;
  }
  return addSlow(a, b, rm, true);
}
export function f64_sub(a: u64, b: u64, rm: i32): u64 {
  return f64_add(a, b ^ F64_SIGN, rm);
}

@inline export function f64_mul_rne(a: u64, b: u64): u64 {
  const x = reinterpret<f64>(a), y = reinterpret<f64>(b);
  const p = abs<f64>(x * y);
  // A result above 2^emin (strictly: a product rounding up to exactly 2^emin
  // may still be tiny) and below infinity needs no UF/OF handling.
  if (!(p > F64_MIN_NORMAL && p < Infinity)) return F64_FAST_MISS;
  // Exact iff the product of the odd significand parts fits in 53 bits.
  const oa = oddSig64(a), ob = oddSig64(b);
  const n = 128 - <i32>clz(oa) - <i32>clz(ob);
  if (n > 54 || (n == 54 && oa * ob >= 0x20000000000000)) fpFlags |= NX;
  return reinterpret<u64>(x * y);
}

export function f64_mul(a: u64, b: u64, rm: i32): u64 {
  if (rm == RNE) {
    const r = f64_mul_rne(a, b);
    if (r != F64_FAST_MISS) return r;
  }
  return mulSlow(a, b, rm, true);
}

@inline export function f64_div_rne(a: u64, b: u64): u64 {
  const x = reinterpret<f64>(a), y = reinterpret<f64>(b);
  const q = abs<f64>(x / y);
  if (!(q > F64_MIN_NORMAL && q < Infinity)) return F64_FAST_MISS;
  // x/y = (oa/ob) * 2^k with odd oa, ob: exact iff ob divides oa (the
  // quotient then has at most 53 bits and the result is normal).
  const oa = oddSig64(a), ob = oddSig64(b);
  if (ob != 1 && (ob > oa || oa % ob != 0)) fpFlags |= NX;
  return reinterpret<u64>(x / y);
}

export function f64_div(a: u64, b: u64, rm: i32): u64 {
  if (rm == RNE) {
    const r = f64_div_rne(a, b);
    if (r != F64_FAST_MISS) return r;
  }
  return divSlow(a, b, rm, true);
}

/**
 * Square root. The native sqrt is correctly rounded (RNE) for every positive
 * input; the other modes only need to know on which side of the exact root it
 * lies, which an exact integer comparison of r*r against a tells. Ties cannot
 * occur (a midpoint has p+1 significant bits and its square is not
 * representable), so RMM equals RNE; the result is always normal.
 */
@inline export function f64_sqrt_rne(a: u64): u64 {
  const x = reinterpret<f64>(a);
  if (!(x > 0 && x < Infinity)) return F64_FAST_MISS;
  const r = reinterpret<u64>(sqrt<f64>(x));
  // r*r == a iff the odd parts match (exponents then agree since r ~ sqrt(a));
  // an odd part >= 2^27 squares to more than 53 bits.
  const ro = oddSig64(r);
  if (ro >= 0x8000000 || ro * ro != oddSig64(a)) fpFlags |= NX;
  return r;
}

export function f64_sqrt(a: u64, rm: i32): u64 {
  const x = reinterpret<f64>(a);
  if (x > 0 && x < Infinity) {
    if (rm == RNE || rm == RMM) return f64_sqrt_rne(a);
    const r = reinterpret<u64>(sqrt<f64>(x));
    const c = sqrtCompare64(a, r);
    if (c != 0) {
      fpFlags |= NX;
      if (c < 0 && (rm == RTZ || rm == RDN)) return r - 1;
      if (c > 0 && rm == RUP) return r + 1;
    }
    return r;
  }
  if (isNaN64(a)) {
    if (isSNaN64(a)) fpFlags |= NV;
    return F64_QNAN;
  }
  if (x == 0 || x == Infinity) return a;
  fpFlags |= NV;
  return F64_QNAN;
}

/** Sign of a - r*r for positive finite a and normal positive r, computed exactly. */
function sqrtCompare64(a: u64, r: u64): i32 {
  unpack(a, true);
  const ma = uSig >> 10, ea = uExp - 52; // a = ma * 2^ea
  const mr = (r & 0x000fffffffffffff) | 0x0010000000000000;
  const er = <i32>(r >> 52) - 1075; // r = mr * 2^er
  mul128(mr, mr); // 105/106 bits
  // a vs r*r  <=>  ma * 2^s vs mr^2 with s = ea - 2*er, which is 51..54 since r ~ sqrt(a).
  const s = <u64>(ea - 2 * er);
  const xhi = ma >> (64 - s), xlo = ma << s;
  if (xhi != wHi) return xhi > wHi ? 1 : -1;
  if (xlo != wLo) return xlo > wLo ? 1 : -1;
  return 0;
}

/**
 * Fused multiply-add. RNE fast path (the emulated FMA of Boldo & Melquiond,
 * 2008, section 5): a*b = uh + ul exactly (Dekker's product), c + uh = th + tl
 * exactly (TwoSum), v = tl + ul rounded to odd, result = RN(th + v).
 * Why it is exact: either c + uh cancels by Sterbenz (tl = 0, so v = ul
 * exactly), or |tl + ul| <= 1.5 ulp(th); then ulp(v) is at least 2^-49 times
 * finer than the result's rounding breakpoints, th lies on that breakpoint
 * grid, and rounding to odd keeps th + v and the exact sum strictly between
 * the same breakpoints. The range guards keep Dekker's product exact (normal
 * operands, no overflow in the splitting, error term above the subnormal
 * range) and the result normal, so no UF/OF handling is needed.
 */
@inline export function f64_fma_rne(a: u64, b: u64, c: u64): u64 {
  const x = reinterpret<f64>(a), y = reinterpret<f64>(b), z = reinterpret<f64>(c);
  const uh = x * y;
  const ax = abs<f64>(x), ay = abs<f64>(y), au = abs<f64>(uh);
  // 1e297 < 2^990, 1e-270 > 2^-900, 1e300 < 2^1000
  if (!(ax >= F64_MIN_NORMAL && ax < 1e297 && ay >= F64_MIN_NORMAL && ay < 1e297 &&
      au >= 1e-270 && au < 1e300 && abs<f64>(z) < 1e300)) return F64_FAST_MISS;
  // Veltkamp split into 26-bit halves, then Dekker's exact error term.
  const sx = x * 134217729.0, sy = y * 134217729.0;
  const xh = sx - (sx - x), yh = sy - (sy - y);
  const xl = x - xh, yl = y - yh;
  const ul = (((xh * yh - uh) + xh * yl) + xl * yh) + xl * yl;
  const th = uh + z;
  const tz = th - uh;
  const tl = (uh - (th - tz)) + (z - tz);
  const w = tl + ul;
  const wz = w - tl;
  const ew = (tl - (w - wz)) + (ul - wz);
  let v = w;
  if (ew != 0 && (reinterpret<u64>(w) & 1) == 0) {
    v = reinterpret<f64>(reinterpret<u64>(w) + ((ew > 0) == (w > 0) ? 1 : -1));
  }
  const r = th + v;
  const ar = abs<f64>(r);
  if (!(ar > F64_MIN_NORMAL && ar < Infinity)) return F64_FAST_MISS;
  if (ew != 0 || r - th != v || r - v != th) fpFlags |= NX;
  return reinterpret<u64>(r);
}

export function f64_fma(a: u64, b: u64, c: u64, rm: i32): u64 {
  if (rm == RNE) {
    const r = f64_fma_rne(a, b, c);
    if (r != F64_FAST_MISS) return r;
  }
  return fmaSlow(a, b, c, rm, true);
}

/** fmin.d (IEEE 754-2019 minimumNumber, with -0 < +0). */
export function f64_min(a: u64, b: u64): u64 {
  const x = reinterpret<f64>(a), y = reinterpret<f64>(b);
  if (x < y) return a;
  if (y < x) return b;
  return minMax64(a, b, a | b);
}

/** fmax.d (IEEE 754-2019 maximumNumber, with -0 < +0). */
export function f64_max(a: u64, b: u64): u64 {
  const x = reinterpret<f64>(a), y = reinterpret<f64>(b);
  if (x > y) return a;
  if (y > x) return b;
  return minMax64(a, b, a & b);
}

/** Equal or unordered operands; `same` is the result for equal ones (a|b picks -0 of ±0, a&b picks +0). */
function minMax64(a: u64, b: u64, same: u64): u64 {
  const na = isNaN64(a), nb = isNaN64(b);
  if (!na && !nb) return same;
  if (isSNaN64(a) || isSNaN64(b)) fpFlags |= NV;
  if (na && nb) return F64_QNAN;
  return na ? b : a;
}

/** feq.d: quiet comparison, NV only for signalling NaNs. */
export function f64_eq(a: u64, b: u64): i32 {
  if (reinterpret<f64>(a) == reinterpret<f64>(b)) return 1;
  if (isSNaN64(a) || isSNaN64(b)) fpFlags |= NV;
  return 0;
}

/** flt.d: signalling comparison, NV for any NaN. */
export function f64_lt(a: u64, b: u64): i32 {
  if (reinterpret<f64>(a) < reinterpret<f64>(b)) return 1;
  if (isNaN64(a) || isNaN64(b)) fpFlags |= NV;
  return 0;
}

/** fle.d: signalling comparison, NV for any NaN. */
export function f64_le(a: u64, b: u64): i32 {
  if (reinterpret<f64>(a) <= reinterpret<f64>(b)) return 1;
  if (isNaN64(a) || isNaN64(b)) fpFlags |= NV;
  return 0;
}

/** fclass.d: one-hot mask, table 11.5 (11.9). */
export function f64_class(a: u64): u32 {
  const neg = (a >> 63) != 0;
  const e = a & F64_INF, f = a & 0x000fffffffffffff;
  if (e == F64_INF) {
    if (f == 0) return neg ? 1 : 128;
    return (f & F64_QUIET) != 0 ? 512 : 256;
  }
  if (e == 0) {
    if (f == 0) return neg ? 8 : 16;
    return neg ? 4 : 32;
  }
  return neg ? 2 : 64;
}

// ---------------------------------------------------------------------------
// binary32 arithmetic

export function f32_add(a: u32, b: u32, rm: i32): u32 {
  if (rm == RNE) {
    const x = reinterpret<f32>(a), y = reinterpret<f32>(b);
    const s = x + y;
    // Same reasoning as f64_add.
    if (s - s == 0) {
      if (s - x != y || s - y != x) fpFlags |= NX;
      return reinterpret<u32>(s);
    }
  }
  return <u32>addSlow(<u64>a, <u64>b, rm, false);
}

export function f32_sub(a: u32, b: u32, rm: i32): u32 {
  return f32_add(a, b ^ F32_SIGN, rm);
}

export function f32_mul(a: u32, b: u32, rm: i32): u32 {
  if (rm == RNE) {
    const x = reinterpret<f32>(a), y = reinterpret<f32>(b);
    const p = x * y;
    const ap = abs<f32>(p);
    if (ap > F32_MIN_NORMAL && ap < <f32>Infinity) {
      // The binary64 product of two binary32 values is exact.
      if (<f64>p != <f64>x * <f64>y) fpFlags |= NX;
      return reinterpret<u32>(p);
    }
  }
  return <u32>mulSlow(<u64>a, <u64>b, rm, false);
}

export function f32_div(a: u32, b: u32, rm: i32): u32 {
  if (rm == RNE) {
    const x = reinterpret<f32>(a), y = reinterpret<f32>(b);
    const q = x / y;
    const aq = abs<f32>(q);
    if (aq > F32_MIN_NORMAL && aq < <f32>Infinity) {
      // q*y is exact in binary64, so q is exact iff q*y == x.
      if (<f64>q * <f64>y != <f64>x) fpFlags |= NX;
      return reinterpret<u32>(q);
    }
  }
  return <u32>divSlow(<u64>a, <u64>b, rm, false);
}

/** See f64_sqrt; here r*r is exact in binary64, so the comparison is native. */
export function f32_sqrt(a: u32, rm: i32): u32 {
  const x = reinterpret<f32>(a);
  if (x > 0 && x < <f32>Infinity) {
    const r = sqrt<f32>(x);
    const rr = <f64>r * <f64>r, xx = <f64>x;
    let bits = reinterpret<u32>(r);
    if (rr != xx) {
      fpFlags |= NX;
      if (rr > xx && (rm == RTZ || rm == RDN)) bits--;
      else if (rr < xx && rm == RUP) bits++;
    }
    return bits;
  }
  if (isNaN32(a)) {
    if (isSNaN32(a)) fpFlags |= NV;
    return F32_QNAN;
  }
  if (x == 0 || x == <f32>Infinity) return a;
  fpFlags |= NV;
  return F32_QNAN;
}

export function f32_fma(a: u32, b: u32, c: u32, rm: i32): u32 {
  if (rm == RNE) {
    // The product is exact in binary64. Round the sum to odd in binary64
    // (53 >= 24 + 2 bits), after which the native RNE narrowing is correctly
    // rounded (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums:
    // proved algorithms using rounding to odd", 2008). Operand magnitudes are
    // far from binary64 overflow/underflow, so TwoSum is exact.
    const p = <f64>reinterpret<f32>(a) * <f64>reinterpret<f32>(b);
    const z = <f64>reinterpret<f32>(c);
    const s = p + z;
    if (s - s == 0) {
      const bv = s - p;
      const err = (p - (s - bv)) + (z - bv);
      let t = s;
      if (err != 0 && (reinterpret<u64>(s) & 1) == 0) {
        // Step to the odd neighbour on the side of the exact value.
        t = reinterpret<f64>(reinterpret<u64>(s) + ((err > 0) == (s > 0) ? 1 : -1));
      }
      const r = <f32>t;
      const ar = abs<f32>(r);
      if (ar > F32_MIN_NORMAL && ar < <f32>Infinity) {
        if (err != 0 || <f64>r != t) fpFlags |= NX;
        return reinterpret<u32>(r);
      }
    }
  }
  return <u32>fmaSlow(<u64>a, <u64>b, <u64>c, rm, false);
}

export function f32_min(a: u32, b: u32): u32 {
  const x = reinterpret<f32>(a), y = reinterpret<f32>(b);
  if (x < y) return a;
  if (y < x) return b;
  return minMax32(a, b, a | b);
}

export function f32_max(a: u32, b: u32): u32 {
  const x = reinterpret<f32>(a), y = reinterpret<f32>(b);
  if (x > y) return a;
  if (y > x) return b;
  return minMax32(a, b, a & b);
}

function minMax32(a: u32, b: u32, same: u32): u32 {
  const na = isNaN32(a), nb = isNaN32(b);
  if (!na && !nb) return same;
  if (isSNaN32(a) || isSNaN32(b)) fpFlags |= NV;
  if (na && nb) return F32_QNAN;
  return na ? b : a;
}

export function f32_eq(a: u32, b: u32): i32 {
  if (reinterpret<f32>(a) == reinterpret<f32>(b)) return 1;
  if (isSNaN32(a) || isSNaN32(b)) fpFlags |= NV;
  return 0;
}

export function f32_lt(a: u32, b: u32): i32 {
  if (reinterpret<f32>(a) < reinterpret<f32>(b)) return 1;
  if (isNaN32(a) || isNaN32(b)) fpFlags |= NV;
  return 0;
}

export function f32_le(a: u32, b: u32): i32 {
  if (reinterpret<f32>(a) <= reinterpret<f32>(b)) return 1;
  if (isNaN32(a) || isNaN32(b)) fpFlags |= NV;
  return 0;
}

export function f32_class(a: u32): u32 {
  const neg = (a >> 31) != 0;
  const e = a & F32_INF, f = a & 0x007fffff;
  if (e == F32_INF) {
    if (f == 0) return neg ? 1 : 128;
    return (f & F32_QUIET) != 0 ? 512 : 256;
  }
  if (e == 0) {
    if (f == 0) return neg ? 8 : 16;
    return neg ? 4 : 32;
  }
  return neg ? 2 : 64;
}

// ---------------------------------------------------------------------------
// Float -> integer. The value is first rounded to an integral binary64 with
// the exact native instructions (binary32 inputs widen exactly), then range
// checked; out-of-range and NaN inputs saturate per table 11.4 with NV only.

@inline function roundToIntegral(x: f64, rm: i32): f64 {
  if (rm == RNE) return nearest<f64>(x);
  if (rm == RTZ) return trunc<f64>(x);
  if (rm == RDN) return floor<f64>(x);
  if (rm == RUP) return ceil<f64>(x);
  // RMM: x - trunc(x) is exact; a nonzero fraction implies |t| < 2^52, so t +- 1 is exact.
  const t = trunc<f64>(x);
  return abs<f64>(x - t) >= 0.5 ? t + copysign<f64>(1.0, x) : t;
}

@inline function cvtToI32(x: f64, rm: i32): i64 {
  const r = roundToIntegral(x, rm);
  if (r >= -2147483648.0 && r <= 2147483647.0) {
    if (r != x) fpFlags |= NX;
    return <i64><i32>r;
  }
  fpFlags |= NV;
  return x < 0 ? -2147483648 : 2147483647;
}

@inline function cvtToU32(x: f64, rm: i32): i64 {
  const r = roundToIntegral(x, rm);
  if (r >= 0.0 && r <= 4294967295.0) {
    if (r != x) fpFlags |= NX;
    return <i64><i32><u32>r; // RV64 sign-extends the 32-bit result
  }
  fpFlags |= NV;
  return x < 0 ? 0 : -1;
}

@inline function cvtToI64(x: f64, rm: i32): i64 {
  const r = roundToIntegral(x, rm);
  if (r >= -9223372036854775808.0 && r < 9223372036854775808.0) {
    if (r != x) fpFlags |= NX;
    return <i64>r;
  }
  fpFlags |= NV;
  return x < 0 ? i64.MIN_VALUE : i64.MAX_VALUE;
}

@inline function cvtToU64(x: f64, rm: i32): i64 {
  const r = roundToIntegral(x, rm);
  if (r >= 0.0 && r < 18446744073709551616.0) {
    if (r != x) fpFlags |= NX;
    return <i64><u64>r;
  }
  fpFlags |= NV;
  return x < 0 ? 0 : -1;
}

export function f64_to_i32(a: u64, rm: i32): i64 {
  return cvtToI32(reinterpret<f64>(a), rm);
}
export function f64_to_u32(a: u64, rm: i32): i64 {
  return cvtToU32(reinterpret<f64>(a), rm);
}
export function f64_to_i64(a: u64, rm: i32): i64 {
  return cvtToI64(reinterpret<f64>(a), rm);
}
export function f64_to_u64(a: u64, rm: i32): i64 {
  return cvtToU64(reinterpret<f64>(a), rm);
}
export function f32_to_i32(a: u32, rm: i32): i64 {
  return cvtToI32(<f64>reinterpret<f32>(a), rm);
}
export function f32_to_u32(a: u32, rm: i32): i64 {
  return cvtToU32(<f64>reinterpret<f32>(a), rm);
}
export function f32_to_i64(a: u32, rm: i32): i64 {
  return cvtToI64(<f64>reinterpret<f32>(a), rm);
}
export function f32_to_u64(a: u32, rm: i32): i64 {
  return cvtToU64(<f64>reinterpret<f32>(a), rm);
}

// ---------------------------------------------------------------------------
// Integer -> float. The native conversions round to nearest-even; values with
// more significant bits than the format holds are inexact.

export function i32_to_f64(x: i32, rm: i32): u64 {
  return reinterpret<u64>(<f64>x);
}
export function u32_to_f64(x: u32, rm: i32): u64 {
  return reinterpret<u64>(<f64>x);
}

export function i64_to_f64(x: i64, rm: i32): u64 {
  const mag = <u64>(x < 0 ? -x : x);
  if (sigBits(mag) <= 53) return reinterpret<u64>(<f64>x);
  if (rm == RNE) {
    fpFlags |= NX;
    return reinterpret<u64>(<f64>x);
  }
  return intToFloat(<u64>(x < 0), mag, rm, true);
}

export function u64_to_f64(x: u64, rm: i32): u64 {
  if (sigBits(x) <= 53) return reinterpret<u64>(<f64>x);
  if (rm == RNE) {
    fpFlags |= NX;
    return reinterpret<u64>(<f64>x);
  }
  return intToFloat(0, x, rm, true);
}

export function i32_to_f32(x: i32, rm: i32): u32 {
  return i64_to_f32(<i64>x, rm);
}
export function u32_to_f32(x: u32, rm: i32): u32 {
  return u64_to_f32(<u64>x, rm);
}

export function i64_to_f32(x: i64, rm: i32): u32 {
  const mag = <u64>(x < 0 ? -x : x);
  if (sigBits(mag) <= 24) return reinterpret<u32>(<f32>x);
  if (rm == RNE) {
    fpFlags |= NX;
    return reinterpret<u32>(<f32>x);
  }
  return <u32>intToFloat(<u64>(x < 0), mag, rm, false);
}

export function u64_to_f32(x: u64, rm: i32): u32 {
  if (sigBits(x) <= 24) return reinterpret<u32>(<f32>x);
  if (rm == RNE) {
    fpFlags |= NX;
    return reinterpret<u32>(<f32>x);
  }
  return <u32>intToFloat(0, x, rm, false);
}

// ---------------------------------------------------------------------------
// Between formats

/** fcvt.d.s: exact; NaNs become the canonical NaN (NV for sNaN). */
export function f32_to_f64(a: u32): u64 {
  const x = reinterpret<f32>(a);
  if (x != x) {
    if (isSNaN32(a)) fpFlags |= NV;
    return F64_QNAN;
  }
  return reinterpret<u64>(<f64>x);
}

/** fcvt.s.d */
export function f64_to_f32(a: u64, rm: i32): u32 {
  const x = reinterpret<f64>(a);
  if (rm == RNE) {
    const r = <f32>x;
    const ax = abs<f64>(x);
    // |x| >= 2^-126 rules out tininess, a finite r rules out overflow.
    if (ax >= F32_MIN_NORMAL_AS_F64 && abs<f32>(r) < <f32>Infinity) {
      if (<f64>r != x) fpFlags |= NX;
      return reinterpret<u32>(r);
    }
  }
  const cl = unpack(a, true);
  if (cl == C_FINITE) return <u32>roundPack(uSign, uExp, uSig, rm, false);
  if (cl == C_ZERO) return <u32>packZero(uSign, false);
  if (cl == C_INF) return <u32>packInf(uSign, false);
  if (cl == C_SNAN) fpFlags |= NV;
  return F32_QNAN;
}
