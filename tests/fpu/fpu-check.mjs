#!/usr/bin/env node
// Standalone check of src/hart/asm/fpu.ts (the hart's IEEE 754 unit).
//
// Compiles tests/fpu/entry.ts with asc (same flags as the hart) and compares
// every exported operation against
//   1. JS native doubles / Math.fround for round-to-nearest-even results,
//   2. an exact reference written here with BigInt rationals, for results
//      and all five exception flags in all five rounding modes,
//   3. hand-picked cases from the RISC-V spec (fcvt saturation, fmin/fmax,
//      fclass, NaN canonicalisation, sNaN),
//   4. optionally real RISC-V semantics: if riscv64-linux-gnu-gcc and
//      qemu-riscv64 are installed, a small C program using the F/D
//      instructions with static rounding modes is run under qemu-user.
// Exits non-zero on any mismatch. Env: FPU_SEED (PRNG seed), ASC (path to the
// asc binary), FPU_NO_QEMU=1 (skip part 4), FPU_SCALE (case count factor).

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const started = Date.now();
const SCALE = Number(process.env.FPU_SCALE || 1);

// ---------------------------------------------------------------------------
// Build and instantiate

function findAsc() {
  const candidates = [process.env.ASC, join(root, "node_modules/.bin/asc")].filter(Boolean);
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error("asc not found: run npm install in the project root or set ASC=/path/to/asc");
}

const tmp = mkdtempSync(join(tmpdir(), "fpu-check-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const wasmPath = join(tmp, "fpu.wasm");
// Run from the project root so asc applies the project's asconfig.json, as for the hart.
execFileSync(findAsc(), [join(here, "entry.ts"), "--runtime", "stub", "-O3", "--enable", "threads",
  "--noAssert", "-o", wasmPath], { stdio: "inherit", cwd: root });

/** Memory for a module built with importMemory (limits from asconfig.json when present). */
function importedMemory() {
  let cfg = {};
  try {
    const j = JSON.parse(readFileSync(join(root, "asconfig.json"), "utf8"));
    cfg = { ...j.options, ...(j.targets && j.targets.release) };
  } catch { /* no config: defaults below */ }
  return new WebAssembly.Memory({ initial: cfg.initialMemory ?? 1, maximum: cfg.maximumMemory ?? 65536,
    shared: cfg.sharedMemory ?? true });
}
const wasmModule = new WebAssembly.Module(readFileSync(wasmPath));
const env = { abort() { throw new Error("wasm abort"); } };
if (WebAssembly.Module.imports(wasmModule).some((i) => i.kind === "memory")) env.memory = importedMemory();
const X = new WebAssembly.Instance(wasmModule, { env }).exports;
if (X._initialize) X._initialize();

// ---------------------------------------------------------------------------
// Formats, flags, PRNG

const NV = 16, DZ = 8, OF = 4, UF = 2, NX = 1;
const RNE = 0, RTZ = 1, RDN = 2, RUP = 3, RMM = 4;
const RM_NAMES = ["rne", "rtz", "rdn", "rup", "rmm"];

function makeFmt(name, w, eb, mb) {
  const bias = (1 << (eb - 1)) - 1;
  const F = { name, w, eb, mb, p: mb + 1, bias, emin: 1 - bias, emax: bias };
  F.sign = 1n << BigInt(w - 1);
  F.fracMask = (1n << BigInt(mb)) - 1n;
  F.expField = (1 << eb) - 1;
  F.inf = BigInt(F.expField) << BigInt(mb);
  F.qnan = F.inf | (1n << BigInt(mb - 1));
  F.maxFinite = F.inf - 1n;
  F.minNormal = 1n << BigInt(mb);
  return F;
}
const F64 = makeFmt("f64", 64, 11, 52);
const F32 = makeFmt("f32", 32, 8, 23);

let seed = Number(process.env.FPU_SEED || 0x5eed1234) >>> 0;
const SEED0 = seed;
function rnd32() { // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}
const rnd = () => rnd32() / 4294967296;
const rndInt = (n) => Math.floor(rnd() * n);
const rnd64 = () => (BigInt(rnd32()) << 32n) | BigInt(rnd32());
const pick = (arr) => arr[rndInt(arr.length)];

const dv = new DataView(new ArrayBuffer(8));
function bitsToNum(bits, F) {
  if (F === F64) { dv.setBigUint64(0, bits); return dv.getFloat64(0); }
  dv.setUint32(0, Number(bits)); return dv.getFloat32(0);
}
function numToBits(x, F) {
  if (Number.isNaN(x)) return F.qnan;
  if (F === F64) { dv.setFloat64(0, x); return dv.getBigUint64(0); }
  dv.setFloat32(0, x); return BigInt(dv.getUint32(0));
}
const hex = (v, w = 64) => "0x" + BigInt.asUintN(w, BigInt(v)).toString(16).padStart(w / 4, "0");

// ---------------------------------------------------------------------------
// Exact reference (BigInt). A finite value is a dyadic {s, m, e}: (-1)^s m 2^e.

function decode(bits, F) {
  const s = Number((bits >> BigInt(F.w - 1)) & 1n);
  const E = Number((bits >> BigInt(F.mb)) & BigInt(F.expField));
  const f = bits & F.fracMask;
  if (E === F.expField) {
    if (f === 0n) return { k: "inf", s };
    return { k: (f >> BigInt(F.mb - 1)) ? "qnan" : "snan", s };
  }
  if (E === 0) return f === 0n ? { k: "zero", s, m: 0n, e: 0 } : { k: "fin", s, m: f, e: F.emin - F.mb };
  return { k: "fin", s, m: f | F.minNormal, e: E - F.bias - F.mb };
}
const isNaNK = (d) => d.k === "qnan" || d.k === "snan";
const signed = (d) => (d.s ? -d.m : d.m);

function bitlen(x) { return x === 0n ? 0 : x.toString(2).length; }

/** Sum of signed dyadics [m, e] pairs -> [m, e]. */
function dyAdd(m1, e1, m2, e2) {
  const e = Math.min(e1, e2);
  return [(m1 << BigInt(e1 - e)) + (m2 << BigInt(e2 - e)), e];
}

/** Round the integer quotient of n/d (n, d > 0) per mode; returns {i, inexact}. */
function roundInt(s, n, d, rm) {
  const i = n / d, r = n % d;
  const c = 2n * r - d;
  let inc = false;
  if (rm === RNE) inc = c > 0n || (c === 0n && (i & 1n) === 1n);
  else if (rm === RDN) inc = s === 1 && r !== 0n;
  else if (rm === RUP) inc = s === 0 && r !== 0n;
  else if (rm === RMM) inc = c >= 0n;
  return { i: inc ? i + 1n : i, inexact: r !== 0n };
}

function overflowRes(s, F, rm) {
  const toInf = rm === RNE || rm === RMM || (rm === RDN && s) || (rm === RUP && !s);
  return { bits: (s ? F.sign : 0n) | (toInf ? F.inf : F.maxFinite), flags: OF | NX };
}

/** Round (-1)^s * n/d (n, d > 0 BigInt) to format F under rm, IEEE/RISC-V flags. */
function roundRat(s, n, d, F, rm) {
  let e = bitlen(n) - bitlen(d); // floor(log2(n/d)) or one more
  if (e >= 0 ? n < d << BigInt(e) : n << BigInt(-e) < d) e--;
  const atQuantum = (q) => (q >= 0 ? roundInt(s, n, d << BigInt(q), rm) : roundInt(s, n << BigInt(-q), d, rm));
  const P = BigInt(F.p);
  const u = atQuantum(e - (F.p - 1)); // unbounded exponent range
  const eu = u.i === 1n << P ? e + 1 : e;
  if (eu > F.emax) return overflowRes(s, F, rm);
  const tiny = eu < F.emin; // tininess after rounding
  let q = Math.max(e, F.emin) - (F.p - 1);
  const r = e >= F.emin ? u : atQuantum(q);
  let flags = r.inexact ? (tiny ? NX | UF : NX) : 0;
  let m = r.i;
  if (m === 1n << P) { m >>= 1n; q++; }
  let bits;
  if (m >= 1n << (P - 1n)) bits = (BigInt(q + F.p - 1 + F.bias) << BigInt(F.mb)) | (m - F.minNormal);
  else bits = m;
  return { bits: bits | (s ? F.sign : 0n), flags };
}

function roundDy(m, e, F, rm) { // nonzero signed dyadic
  const s = m < 0n ? 1 : 0;
  const a = s ? -m : m;
  return e >= 0 ? roundRat(s, a << BigInt(e), 1n, F, rm) : roundRat(s, a, 1n << BigInt(-e), F, rm);
}

const NAN = (F, nv) => ({ bits: F.qnan, flags: nv ? NV : 0 });
const zero = (s, F) => ({ bits: s ? F.sign : 0n, flags: 0 });
const infR = (s, F) => ({ bits: (s ? F.sign : 0n) | F.inf, flags: 0 });

function refAdd(a, b, F, rm) {
  const A = decode(a, F), B = decode(b, F);
  if (isNaNK(A) || isNaNK(B)) return NAN(F, A.k === "snan" || B.k === "snan");
  if (A.k === "inf" && B.k === "inf") return A.s === B.s ? infR(A.s, F) : NAN(F, true);
  if (A.k === "inf") return infR(A.s, F);
  if (B.k === "inf") return infR(B.s, F);
  const [m, e] = dyAdd(signed(A), A.e, signed(B), B.e);
  if (m === 0n) {
    if (A.k === "zero" && B.k === "zero" && A.s === B.s) return zero(A.s, F);
    return zero(rm === RDN ? 1 : 0, F);
  }
  return roundDy(m, e, F, rm);
}
const refSub = (a, b, F, rm) => refAdd(a, b ^ F.sign, F, rm);

function refMul(a, b, F, rm) {
  const A = decode(a, F), B = decode(b, F);
  const s = A.s ^ B.s;
  const infZero = (A.k === "inf" && B.k === "zero") || (A.k === "zero" && B.k === "inf");
  if (isNaNK(A) || isNaNK(B)) return NAN(F, A.k === "snan" || B.k === "snan");
  if (infZero) return NAN(F, true);
  if (A.k === "inf" || B.k === "inf") return infR(s, F);
  if (A.k === "zero" || B.k === "zero") return zero(s, F);
  return roundDy(s ? -(A.m * B.m) : A.m * B.m, A.e + B.e, F, rm);
}

function refDiv(a, b, F, rm) {
  const A = decode(a, F), B = decode(b, F);
  const s = A.s ^ B.s;
  if (isNaNK(A) || isNaNK(B)) return NAN(F, A.k === "snan" || B.k === "snan");
  if (A.k === "inf") return B.k === "inf" ? NAN(F, true) : infR(s, F);
  if (B.k === "inf") return zero(s, F);
  if (B.k === "zero") return A.k === "zero" ? NAN(F, true) : { bits: infR(s, F).bits, flags: DZ };
  if (A.k === "zero") return zero(s, F);
  // (ma 2^ea) / (mb 2^eb)
  const de = A.e - B.e;
  const n = de >= 0 ? A.m << BigInt(de) : A.m, d = de >= 0 ? B.m : B.m << BigInt(-de);
  return roundRat(s, n, d, F, rm);
}

function isqrt(n) {
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(bitlen(n) / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

function refSqrt(a, F, rm) {
  const A = decode(a, F);
  if (isNaNK(A)) return NAN(F, A.k === "snan");
  if (A.k === "zero") return zero(A.s, F);
  if (A.s) return NAN(F, true);
  if (A.k === "inf") return infR(0, F);
  let m = A.m, e = A.e;
  if (e & 1) { m <<= 1n; e -= 1; }
  const k = F.p + 8; // root gets >= p + 8 bits, then a sticky bit below
  const N = m << BigInt(2 * k);
  const r = isqrt(N);
  const n = 2n * r + (r * r === N ? 0n : 1n); // sqrt = n/2 * 2^(e/2 - k) (+ sticky)
  return roundDy(n, e / 2 - k - 1, F, rm);
}

function refFma(a, b, c, F, rm) {
  const A = decode(a, F), B = decode(b, F), C = decode(c, F);
  const sP = A.s ^ B.s;
  const infZero = (A.k === "inf" && B.k === "zero") || (A.k === "zero" && B.k === "inf");
  if (isNaNK(A) || isNaNK(B) || isNaNK(C)) return NAN(F, A.k === "snan" || B.k === "snan" || C.k === "snan" || infZero);
  if (infZero) return NAN(F, true);
  if (A.k === "inf" || B.k === "inf") return C.k === "inf" && C.s !== sP ? NAN(F, true) : infR(sP, F);
  if (C.k === "inf") return infR(C.s, F);
  const pm = A.m * B.m;
  const [m, e] = dyAdd(sP ? -pm : pm, A.e + B.e, signed(C), C.e);
  if (m === 0n) {
    if (pm === 0n && C.k === "zero" && sP === C.s) return zero(sP, F);
    return zero(rm === RDN ? 1 : 0, F);
  }
  return roundDy(m, e, F, rm);
}

// Float -> integer. kind: w, wu, l, lu. Result as the i64 the hart writes.
const INT_RANGE = {
  w: [-(1n << 31n), (1n << 31n) - 1n, 32], wu: [0n, (1n << 32n) - 1n, 32],
  l: [-(1n << 63n), (1n << 63n) - 1n, 64], lu: [0n, (1n << 64n) - 1n, 64],
};
function refToInt(a, F, kind, rm) {
  const [lo, hi, width] = INT_RANGE[kind];
  const fin = (v) => BigInt.asIntN(64, width === 32 ? BigInt.asIntN(32, v) : v);
  const A = decode(a, F);
  if (isNaNK(A)) return { bits: fin(hi), flags: NV };
  if (A.k === "inf") return { bits: fin(A.s ? lo : hi), flags: NV };
  if (A.k === "zero") return { bits: 0n, flags: 0 };
  const r = A.e >= 0 ? { i: A.m << BigInt(A.e), inexact: false } : roundInt(A.s, A.m, 1n << BigInt(-A.e), rm);
  const v = A.s ? -r.i : r.i;
  if (v < lo || v > hi) return { bits: fin(A.s ? lo : hi), flags: NV };
  return { bits: fin(v), flags: r.inexact ? NX : 0 };
}

function refFromInt(v, F, rm) { // v: exact BigInt
  if (v === 0n) return zero(0, F);
  return v < 0n ? roundRat(1, -v, 1n, F, rm) : roundRat(0, v, 1n, F, rm);
}

function refCvtFF(a, Fin, Fout, rm) {
  const A = decode(a, Fin);
  if (isNaNK(A)) return NAN(Fout, A.k === "snan");
  if (A.k === "inf") return infR(A.s, Fout);
  if (A.k === "zero") return zero(A.s, Fout);
  return roundDy(signed(A), A.e, Fout, rm);
}

/** Exact comparison of two non-NaN values: -1, 0, 1. */
function cmpVal(A, B) {
  const va = A.k === "inf" ? null : A.k === "zero" ? [0n, 0] : [signed(A), A.e];
  const vb = B.k === "inf" ? null : B.k === "zero" ? [0n, 0] : [signed(B), B.e];
  if (!va || !vb) {
    const ia = va ? 0 : A.s ? -1 : 1, ib = vb ? 0 : B.s ? -1 : 1;
    return Math.sign(ia - ib);
  }
  const [m] = dyAdd(va[0], va[1], -vb[0], vb[1]);
  return m === 0n ? 0 : m > 0n ? 1 : -1;
}
function refCompare(a, b, F, op) {
  const A = decode(a, F), B = decode(b, F);
  if (isNaNK(A) || isNaNK(B)) {
    const nv = op === "eq" ? A.k === "snan" || B.k === "snan" : true;
    return { bits: 0n, flags: nv ? NV : 0 };
  }
  const c = cmpVal(A, B);
  const r = op === "eq" ? c === 0 : op === "lt" ? c < 0 : c <= 0;
  return { bits: r ? 1n : 0n, flags: 0 };
}
function refMinMax(a, b, F, isMax) {
  const A = decode(a, F), B = decode(b, F);
  const nv = A.k === "snan" || B.k === "snan" ? NV : 0;
  if (isNaNK(A) && isNaNK(B)) return { bits: F.qnan, flags: nv };
  if (isNaNK(A)) return { bits: b, flags: nv };
  if (isNaNK(B)) return { bits: a, flags: nv };
  let c = cmpVal(A, B);
  if (c === 0) c = A.s === B.s ? 0 : A.s ? -1 : 1; // -0 < +0
  return { bits: (isMax ? c >= 0 : c <= 0) ? a : b, flags: 0 };
}
function refClass(a, F) {
  const A = decode(a, F);
  const sub = A.k === "fin" && A.m < F.minNormal;
  const idx = { inf: A.s ? 0 : 7, zero: A.s ? 3 : 4, snan: 8, qnan: 9 }[A.k] ?? (A.s ? (sub ? 2 : 1) : (sub ? 5 : 6));
  return { bits: BigInt(1 << idx), flags: 0 };
}

// ---------------------------------------------------------------------------
// Calling the wasm module

function call(name, args, ret) {
  X.fpFlags.value = 0;
  const r = X[name](...args);
  const flags = X.fpFlags.value;
  let bits;
  if (ret === "f64") bits = BigInt.asUintN(64, r);
  else if (ret === "f32") bits = BigInt(r >>> 0);
  else if (ret === "i64") bits = BigInt.asIntN(64, r);
  else bits = BigInt(r >>> 0);
  return { bits, flags };
}
const arg = (v, F) => (F === F64 ? v : Number(v));

// ---------------------------------------------------------------------------
// Result bookkeeping

const counts = new Map();
const failures = [];
let failCount = 0;
const flagSeen = new Map(); // operation -> cases whose expected flags include each bit [NX, UF, OF, DZ, NV]
function record(label, operands, got, exp, checkFlags = true) {
  counts.set(label, (counts.get(label) || 0) + 1);
  const op = label.split(" ")[0];
  if (!flagSeen.has(op)) flagSeen.set(op, [0, 0, 0, 0, 0]);
  const seen = flagSeen.get(op);
  for (let i = 0; i < 5; i++) if (exp.flags & (1 << i)) seen[i]++;
  if (got.bits === exp.bits && (!checkFlags || got.flags === exp.flags)) return;
  failCount++;
  if (failures.length < 25) {
    failures.push(`${label}(${operands.join(", ")}): got ${hex(got.bits)} flags ${got.flags}` +
      `, expected ${hex(exp.bits)} flags ${exp.flags}`);
  }
}

// ---------------------------------------------------------------------------
// Operand generators

function fmtBits(F, s, E, frac) {
  return (BigInt(s) << BigInt(F.w - 1)) | (BigInt(E) << BigInt(F.mb)) | (frac & F.fracMask);
}
const randFrac = (F) => rnd64() & F.fracMask;

function specials(F) {
  const v = [0n, F.sign, F.inf, F.inf | F.sign, F.qnan, F.qnan | F.sign, F.qnan | 1234n, F.inf | 1n,
    F.inf | F.sign | 5n, F.inf | (F.fracMask >> 1n), 1n, F.fracMask, F.minNormal, F.maxFinite];
  v.push(...v.slice(10).map((x) => x | F.sign));
  for (const x of [1, -1, 0.5, -0.5, 1.5, 2.5, -2.5, 3, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), -(2 ** 31) - 1,
    2 ** 31 - 0.5, 2 ** 32, 2 ** 32 - 1, 2 ** 32 - 0.5, 2 ** 63, -(2 ** 63), 2 ** 64, 0.49999999999999994,
    2 ** 53, 2 ** 53 + 2, 2 ** 24, 2 ** 24 + 1, 1 / 3, 0.1]) {
    v.push(numToBits(x, F));
  }
  // neighbours of the integer-range limits
  for (const x of [2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64, -(2 ** 31), -(2 ** 63), 1, 0.5]) {
    const b = numToBits(x, F);
    v.push(b + 1n, b - 1n);
  }
  return v;
}
const SPECIALS = { f64: specials(F64), f32: specials(F32) };

function genVal(F) {
  const r = rnd();
  const s = rndInt(2);
  if (r < 0.2) return rnd64() & ((1n << BigInt(F.w)) - 1n);
  if (r < 0.35) return pick(SPECIALS[F.name]);
  if (r < 0.6) return fmtBits(F, s, F.bias - 20 + rndInt(41), randFrac(F));
  if (r < 0.7) return fmtBits(F, s, rndInt(4), randFrac(F)); // subnormal / min normal region
  if (r < 0.75) return fmtBits(F, s, F.expField - 1 - rndInt(3), randFrac(F)); // near overflow
  if (r < 0.9) { // few significant bits: exact results and ties
    const keep = 1 + rndInt(F.p);
    const frac = (randFrac(F) >> BigInt(F.mb - keep + 1)) << BigInt(F.mb - keep + 1);
    return fmtBits(F, s, F.bias - 10 + rndInt(30), frac);
  }
  // near integers (conversions): k + {0, 1/4, 1/2, 3/4} with k up to 2^65
  const k = Math.floor(2 ** (rnd() * 66));
  return numToBits((s ? -1 : 1) * (k + pick([0, 0.25, 0.5, 0.75, 0.5])), F);
}

function withExp(F, s, e) { // normal value with unbiased exponent e if possible, else clamp
  const E = Math.max(0, Math.min(F.expField - 1, e + F.bias));
  return fmtBits(F, s, E, randFrac(F));
}
const expOf = (bits, F) => Number((bits >> BigInt(F.mb)) & BigInt(F.expField)) - F.bias;

function genPair(F, op) {
  const a = genVal(F);
  const r = rnd();
  if (r < 0.55) return [a, genVal(F)];
  const ea = expOf(a, F), s = rndInt(2);
  if (op === "add" || op === "sub") {
    if (r < 0.7) return [a, a ^ (rnd() < 0.5 ? F.sign : 0n) ^ BigInt(rndInt(8))]; // cancellation
    if (r < 0.85) { // halfway / sticky region: b about 2^(ea - p)
      const k = ea - F.p + rndInt(5) - 2;
      const E = Math.max(0, Math.min(F.expField - 1, k + F.bias));
      const frac = rnd() < 0.5 ? 0n : randFrac(F) & (rnd() < 0.5 ? 1n << BigInt(F.mb - 1) : F.fracMask);
      return [a, fmtBits(F, s, E, frac)];
    }
    return [a, withExp(F, s, ea - rndInt(3 * F.p))];
  }
  // mul/div: results within a few ulps of 2^emin (tininess after rounding) or of the overflow threshold
  if (r < 0.7) {
    const x = bitsToNum(a, F), round = F === F64 ? (v) => v : Math.fround;
    const edge = rnd() < 0.8 ? 2 ** F.emin : 2 ** F.emax * (2 - 2 ** (1 - F.p));
    const y = round(op === "mul" ? edge / x : x / edge);
    if (Number.isFinite(y) && y !== 0) return [a, (numToBits(y, F) + BigInt(rndInt(7)) - 3n) | BigInt(s) << BigInt(F.w - 1)];
  }
  const target = rnd() < 0.6 ? F.emin - rndInt(F.p + 2) + 1 : F.emax - 1 + rndInt(3);
  const eb = op === "mul" ? target - ea : ea - target;
  return [a, withExp(F, s, eb)];
}

function genTriple(F, rm) {
  const r = rnd();
  if (r < 0.15) {
    // a*b = +-(half an ulp of c) * (1 +- tiny): exact sums just off a tie, where
    // an intermediate rounding (double rounding) would go wrong
    const c = genVal(F) & ~F.inf | BigInt(1 + rndInt(F.expField - 1)) << BigInt(F.mb);
    const u = BigInt(F.mb);
    const a = fmtBits(F, 0, F.bias, BigInt(rndInt(3))), b = fmtBits(F, rndInt(2), F.bias - 1, F.fracMask - BigInt(rndInt(3)));
    const eb = expOf(c, F) - F.p - 1; // b = (2 - tiny) 2^eb ~ 2^(ec - p) = half an ulp of c
    const bb = eb + F.bias >= 1 ? (b & ~(BigInt(F.expField) << u)) | BigInt(eb + F.bias) << u : b;
    return [a, bb, c];
  }
  const [a, b] = genPair(F, "mul");
  if (r < 0.4) return [a, b, genVal(F)];
  const x = bitsToNum(a, F), y = bitsToNum(b, F);
  let p = F === F64 ? x * y : Math.fround(x * y);
  if (!Number.isFinite(p) || p === 0) return [a, b, genVal(F)];
  const pb = numToBits(-p, F);
  if (r < 0.75) return [a, b, pb + BigInt(rndInt(5)) - 2n]; // cancellation
  return [a, b, withExp(F, rndInt(2), expOf(numToBits(p, F), F) - rndInt(2 * F.p + 4))];
}

// ---------------------------------------------------------------------------
// 1 + 2: arithmetic, native RNE and exact reference in every mode

const NATIVE = {
  add: (x, y) => x + y, sub: (x, y) => x - y, mul: (x, y) => x * y, div: (x, y) => x / y, sqrt: (x) => Math.sqrt(x),
};
const REF2 = { add: refAdd, sub: refSub, mul: refMul, div: refDiv };
const N_RNE = Math.round(6000 * SCALE), N_MODES = Math.round(2500 * SCALE);

for (const F of [F64, F32]) {
  const round = F === F64 ? (v) => v : Math.fround;
  for (const op of ["add", "sub", "mul", "div", "sqrt"]) {
    const name = `${F.name}_${op}`;
    for (let i = 0; i < N_RNE; i++) {
      const [a, b] = op === "sqrt" ? [genVal(F) & ~(rnd() < 0.8 ? F.sign : 0n), 0n] : genPair(F, op);
      const args = op === "sqrt" ? [arg(a, F), RNE] : [arg(a, F), arg(b, F), RNE];
      const got = call(name, args, F.name);
      const exp = op === "sqrt" ? refSqrt(a, F, RNE) : REF2[op](a, b, F, RNE);
      const nat = numToBits(round(NATIVE[op](bitsToNum(a, F), bitsToNum(b, F))), F);
      const ops = op === "sqrt" ? [hex(a, F.w)] : [hex(a, F.w), hex(b, F.w)];
      // bits vs JS native, NX vs the exact reference
      record(`${name} rne/native`, ops, { bits: got.bits, flags: got.flags & NX }, { bits: nat, flags: exp.flags & NX });
      record(`${name} rne/exact`, ops, got, exp);
    }
    for (let rm = RTZ; rm <= RMM; rm++) {
      for (let i = 0; i < N_MODES; i++) {
        const [a, b] = op === "sqrt" ? [genVal(F) & ~(rnd() < 0.8 ? F.sign : 0n), 0n] : genPair(F, op);
        const args = op === "sqrt" ? [arg(a, F), rm] : [arg(a, F), arg(b, F), rm];
        const exp = op === "sqrt" ? refSqrt(a, F, rm) : REF2[op](a, b, F, rm);
        const ops = op === "sqrt" ? [hex(a, F.w)] : [hex(a, F.w), hex(b, F.w)];
        record(`${name} ${RM_NAMES[rm]}`, ops, call(name, args, F.name), exp);
      }
    }
  }
  for (let rm = RNE; rm <= RMM; rm++) {
    for (let i = 0; i < (rm === RNE ? 2 * N_MODES : N_MODES); i++) {
      const [a, b, c] = genTriple(F, rm);
      record(`${F.name}_fma ${RM_NAMES[rm]}`, [hex(a, F.w), hex(b, F.w), hex(c, F.w)],
        call(`${F.name}_fma`, [arg(a, F), arg(b, F), arg(c, F), rm], F.name), refFma(a, b, c, F, rm));
    }
  }
}

// Conversions in every mode
function genIntBits() {
  const r = rnd();
  if (r < 0.3) return rnd64();
  if (r < 0.6) return rnd64() >> BigInt(rndInt(64));
  if (r < 0.8) { // ties and near-ties at 24/53-bit precision
    const top = 1n << BigInt(24 + rndInt(40));
    return top + BigInt(rndInt(8)) * (top >> BigInt(24 + rndInt(30))) + BigInt(rndInt(3)) - 1n;
  }
  return pick([0n, 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n, (1n << 31n) - 1n, 1n << 31n, (1n << 32n) - 1n,
    (1n << 53n) + 1n, (1n << 24n) + 1n, (1n << 54n) + 6n, (1n << 25n) + 3n]);
}

for (let rm = RNE; rm <= RMM; rm++) {
  for (const F of [F64, F32]) {
    for (const kind of ["w", "wu", "l", "lu"]) {
      const name = `${F.name}_to_${{ w: "i32", wu: "u32", l: "i64", lu: "u64" }[kind]}`;
      for (let i = 0; i < N_MODES; i++) {
        const a = genVal(F);
        record(`${name} ${RM_NAMES[rm]}`, [hex(a, F.w)], call(name, [arg(a, F), rm], "i64"), refToInt(a, F, kind, rm));
      }
    }
    for (const kind of ["i32", "u32", "i64", "u64"]) {
      const name = `${kind}_to_${F.name}`;
      for (let i = 0; i < N_MODES; i++) {
        const raw = genIntBits();
        const w = kind.endsWith("32") ? 32 : 64;
        const v = kind[0] === "i" ? BigInt.asIntN(w, raw) : BigInt.asUintN(w, raw);
        const a = w === 32 ? Number(v) : v;
        record(`${name} ${RM_NAMES[rm]}`, [hex(v, w)], call(name, [a, rm], F.name), refFromInt(v, F, rm));
      }
    }
  }
  for (let i = 0; i < N_MODES; i++) {
    let a = genVal(F64);
    if (rnd() < 0.5) a = withExp(F64, rndInt(2), F32.emin - rndInt(30) + 2) ^ BigInt(rndInt(4)); // f32 subnormal range
    record(`f64_to_f32 ${RM_NAMES[rm]}`, [hex(a)], call("f64_to_f32", [a, rm], "f32"), refCvtFF(a, F64, F32, rm));
  }
}
for (let i = 0; i < N_MODES; i++) {
  const a = genVal(F32);
  record("f32_to_f64", [hex(a, 32)], call("f32_to_f64", [Number(a)], "f64"), refCvtFF(a, F32, F64, RNE));
}

// Comparisons, min/max, class on random pairs (NaN-rich)
for (const F of [F64, F32]) {
  for (let i = 0; i < N_MODES; i++) {
    const a = genVal(F), b = rnd() < 0.2 ? a ^ (rnd() < 0.5 ? F.sign : 0n) : genVal(F);
    const ops = [hex(a, F.w), hex(b, F.w)];
    for (const op of ["eq", "lt", "le"]) {
      record(`${F.name}_${op}`, ops, call(`${F.name}_${op}`, [arg(a, F), arg(b, F)], "i32"), refCompare(a, b, F, op));
    }
    record(`${F.name}_min`, ops, call(`${F.name}_min`, [arg(a, F), arg(b, F)], F.name), refMinMax(a, b, F, false));
    record(`${F.name}_max`, ops, call(`${F.name}_max`, [arg(a, F), arg(b, F)], F.name), refMinMax(a, b, F, true));
    record(`${F.name}_class`, [hex(a, F.w)], call(`${F.name}_class`, [arg(a, F)], "i32"), refClass(a, F));
  }
}

// ---------------------------------------------------------------------------
// 3: hand-picked cases from the RISC-V spec

function expect(label, got, bits, flags) {
  record(`spec ${label}`, [], got, { bits: BigInt(bits), flags });
}
{
  const d = (x) => numToBits(x, F64), f = (x) => Number(numToBits(x, F32));
  const SNAN64 = 0x7ff0000000000001n, QNAN64 = 0x7ff8000000000000n, SNAN32 = 0x7f800001, QNAN32 = 0x7fc00000;
  // fcvt saturation (table 11.4): NaN -> max, +inf/large -> max, -inf/small -> min
  const sat = [
    ["f64_to_i32", QNAN64, 0x7fffffffn], ["f64_to_i32", d(Infinity), 0x7fffffffn], ["f64_to_i32", d(-Infinity), -(2n ** 31n)],
    ["f64_to_i32", d(2 ** 31), 0x7fffffffn], ["f64_to_i32", d(-(2 ** 31) - 1), -(2n ** 31n)],
    ["f64_to_u32", QNAN64, -1n], ["f64_to_u32", d(Infinity), -1n], ["f64_to_u32", d(-Infinity), 0n],
    ["f64_to_u32", d(2 ** 32), -1n], ["f64_to_u32", d(-1), 0n],
    ["f64_to_i64", QNAN64, 2n ** 63n - 1n], ["f64_to_i64", d(-Infinity), -(2n ** 63n)], ["f64_to_i64", d(2 ** 63), 2n ** 63n - 1n],
    ["f64_to_u64", QNAN64, -1n], ["f64_to_u64", d(-Infinity), 0n], ["f64_to_u64", d(2 ** 64), -1n], ["f64_to_u64", d(-1), 0n],
    ["f64_to_i32", SNAN64 | (1n << 63n), 0x7fffffffn], ["f64_to_u64", QNAN64 | (1n << 63n), -1n],
  ];
  for (const [fn, a, r] of sat) expect(`${fn}(${hex(a)})`, call(fn, [a, RTZ], "i64"), r, NV);
  for (const [fn, a, r] of [["f32_to_i32", QNAN32, 0x7fffffffn], ["f32_to_u32", SNAN32, -1n], ["f32_to_i64", f(-Infinity), -(2n ** 63n)],
    ["f32_to_u64", f(-2), 0n], ["f32_to_u32", f(2 ** 32), -1n]]) {
    expect(`${fn}(${hex(a, 32)})`, call(fn, [a, RNE], "i64"), r, NV);
  }
  // negative values rounding to zero are valid for unsigned targets (NX only)
  expect("f64_to_u32(-0.3, rtz)", call("f64_to_u32", [d(-0.3), RTZ], "i64"), 0n, NX);
  expect("f64_to_u64(-0.5, rne)", call("f64_to_u64", [d(-0.5), RNE], "i64"), 0n, NX);
  expect("f64_to_u64(-0.5, rmm)", call("f64_to_u64", [d(-0.5), RMM], "i64"), 0n, NV);
  expect("f64_to_u32(-0.0)", call("f64_to_u32", [d(-0), RNE], "i64"), 0n, 0);
  expect("f64_to_i32(-2^31 - 0.5, rup)", call("f64_to_i32", [d(-(2 ** 31) - 0.5), RUP], "i64"), -(2n ** 31n), NX);
  expect("f64_to_u32(2^32 - 0.5, rdn)", call("f64_to_u32", [d(2 ** 32 - 0.5), RDN], "i64"), -1n, NX);
  expect("f64_to_u32(2^31)", call("f64_to_u32", [d(2 ** 31), RNE], "i64"), -(2n ** 31n), 0); // sign-extended
  expect("f32_to_u32(3e9)", call("f32_to_u32", [f(3e9), RNE], "i64"), BigInt.asIntN(32, 3000000000n), 0);
  expect("f64_to_i32(2.5, rne)", call("f64_to_i32", [d(2.5), RNE], "i64"), 2n, NX);
  expect("f64_to_i32(-2.5, rmm)", call("f64_to_i32", [d(-2.5), RMM], "i64"), -3n, NX);
  // fmin/fmax: -0 < +0, one NaN -> other operand, two NaNs -> canonical, NV only for sNaN
  const mm = [
    ["f64_min", d(0), d(-0), d(-0), 0], ["f64_min", d(-0), d(0), d(-0), 0], ["f64_max", d(-0), d(0), d(0), 0],
    ["f64_max", d(0), d(-0), d(0), 0], ["f64_min", QNAN64, d(1), d(1), 0], ["f64_max", d(1), QNAN64 | 7n, d(1), 0],
    ["f64_min", SNAN64, d(1), d(1), NV], ["f64_max", QNAN64 | 3n, SNAN64, QNAN64, NV], ["f64_min", QNAN64 | 9n, QNAN64 | 3n, QNAN64, 0],
  ];
  for (const [fn, a, b, r, fl] of mm) expect(`${fn}(${hex(a)}, ${hex(b)})`, call(fn, [a, b], "f64"), r, fl);
  expect("f32_min(+0,-0)", call("f32_min", [f(0), f(-0)], "f32"), 0x80000000, 0);
  expect("f32_max(-0,+0)", call("f32_max", [f(-0), f(0)], "f32"), 0, 0);
  expect("f32_max(sNaN,2)", call("f32_max", [SNAN32, f(2)], "f32"), f(2), NV);
  expect("f32_min(qNaN,qNaN)", call("f32_min", [0xffc00001, QNAN32], "f32"), QNAN32, 0);
  // fclass of every class
  const cls64 = [[d(-Infinity), 0], [d(-1), 1], [0x800fffffffffffffn, 2], [d(-0), 3], [d(0), 4], [1n, 5], [d(1), 6],
    [d(Infinity), 7], [SNAN64, 8], [QNAN64, 9]];
  for (const [a, bit] of cls64) expect(`f64_class(${hex(a)})`, call("f64_class", [a], "i32"), 1 << bit, 0);
  const cls32 = [[f(-Infinity), 0], [f(-1), 1], [0x80000001, 2], [f(-0), 3], [f(0), 4], [0x007fffff, 5], [f(1), 6],
    [f(Infinity), 7], [SNAN32, 8], [QNAN32 | 0x80000000, 9]];
  for (const [a, bit] of cls32) expect(`f32_class(${hex(a, 32)})`, call("f32_class", [a], "i32"), 1 << bit, 0);
  // canonical NaN results, sNaN -> NV, comparisons
  expect("f64_add(qNaN payload)", call("f64_add", [QNAN64 | 0xdeadn | (1n << 63n), d(1), RNE], "f64"), QNAN64, 0);
  expect("f64_mul(sNaN)", call("f64_mul", [d(2), SNAN64, RNE], "f64"), QNAN64, NV);
  expect("f64_sub(inf, inf)", call("f64_sub", [d(Infinity), d(Infinity), RNE], "f64"), QNAN64, NV);
  expect("f64_div(0, 0)", call("f64_div", [d(0), d(-0), RNE], "f64"), QNAN64, NV);
  expect("f64_div(1, -0)", call("f64_div", [d(1), d(-0), RNE], "f64"), d(-Infinity), DZ);
  expect("f64_sqrt(-1)", call("f64_sqrt", [d(-1), RNE], "f64"), QNAN64, NV);
  expect("f64_sqrt(-0)", call("f64_sqrt", [d(-0), RNE], "f64"), d(-0), 0);
  expect("f64_fma(inf, 0, qNaN)", call("f64_fma", [d(Infinity), d(0), QNAN64, RNE], "f64"), QNAN64, NV);
  expect("f32_fma(0, inf, qNaN)", call("f32_fma", [f(0), f(Infinity), QNAN32, RNE], "f32"), QNAN32, NV);
  expect("f64_fma(1, 1, sNaN)", call("f64_fma", [d(1), d(1), SNAN64, RNE], "f64"), QNAN64, NV);
  expect("f64_fma(inf, 1, -inf)", call("f64_fma", [d(Infinity), d(1), d(-Infinity), RNE], "f64"), QNAN64, NV);
  expect("f32_to_f64(sNaN)", call("f32_to_f64", [SNAN32], "f64"), QNAN64, NV);
  expect("f32_to_f64(-qNaN)", call("f32_to_f64", [0xffc12345], "f64"), QNAN64, 0);
  expect("f64_to_f32(sNaN)", call("f64_to_f32", [SNAN64, RNE], "f32"), QNAN32, NV);
  expect("f64_to_f32(max, rtz)", call("f64_to_f32", [d(Number.MAX_VALUE), RTZ], "f32"), 0x7f7fffff, OF | NX);
  expect("f32_add(sNaN, qNaN)", call("f32_add", [SNAN32, QNAN32, RNE], "f32"), QNAN32, NV);
  expect("f64_eq(qNaN, qNaN)", call("f64_eq", [QNAN64, QNAN64], "i32"), 0, 0);
  expect("f64_eq(sNaN, 1)", call("f64_eq", [SNAN64, d(1)], "i32"), 0, NV);
  expect("f64_lt(qNaN, 1)", call("f64_lt", [QNAN64, d(1)], "i32"), 0, NV);
  expect("f64_le(-0, +0)", call("f64_le", [d(-0), d(0)], "i32"), 1, 0);
  expect("f64_eq(-0, +0)", call("f64_eq", [d(-0), d(0)], "i32"), 1, 0);
  expect("f32_lt(-0, +0)", call("f32_lt", [f(-0), f(0)], "i32"), 0, 0);
  expect("f32_le(1, qNaN)", call("f32_le", [f(1), QNAN32], "i32"), 0, NV);
  // tininess after rounding: the largest subnormal-range product rounding to 2^-1022 in RNE
  // (1 + 2^-52)(2^-1022 - 2^-1074) = 2^-1022 - 2^-1126 rounds to 2^-1022 even with an unbounded exponent: not tiny
  expect("f64_mul(rounds to 2^-1022, not tiny)", call("f64_mul", [0x3ff0000000000001n, 0x000fffffffffffffn, RNE], "f64"), 0x0010000000000000n, NX);
  // (1 - 2^-53) 2^-1022 is tiny (53-bit representable below 2^-1022) but rounds to 2^-1022 on the subnormal grid
  expect("f64_mul(1-2^-53 x 2^-1022)", call("f64_mul", [d(1 - 2 ** -53), d(2 ** -1022), RNE], "f64"), 0x0010000000000000n, UF | NX);
  expect("f64_fma(2^-1022 x (1-2^-53) no UF)", call("f64_fma", [d(2 ** -1022), d(2 - 2 ** -52), d(-(2 ** -1022) / 2 ** 20), RUP], "f64"),
    refFma(d(2 ** -1022), d(2 - 2 ** -52), d(-(2 ** -1022) / 2 ** 20), F64, RUP).bits, refFma(d(2 ** -1022), d(2 - 2 ** -52), d(-(2 ** -1022) / 2 ** 20), F64, RUP).flags);
  expect("f64_add(max, max, rtz)", call("f64_add", [d(Number.MAX_VALUE), d(Number.MAX_VALUE), RTZ], "f64"), d(Number.MAX_VALUE), OF | NX);
  expect("f64_add(-max, -max, rup)", call("f64_add", [d(-Number.MAX_VALUE), d(-Number.MAX_VALUE), RUP], "f64"), d(-Number.MAX_VALUE), OF | NX);
  expect("f64_sub(1, 1, rdn)", call("f64_sub", [d(1), d(1), RDN], "f64"), d(-0), 0);
  expect("f64_add(1, 2^-53, rmm)", call("f64_add", [d(1), d(2 ** -53), RMM], "f64"), d(1 + 2 ** -52), NX);
  expect("i64_to_f32(2^24+1, rup)", call("i64_to_f32", [(1n << 24n) + 1n, RUP], "f32"), f(2 ** 24 + 2), NX);
}

// ---------------------------------------------------------------------------
// 4: optional cross-check against RISC-V instructions under qemu-user

function which(cmd) {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

const C_SRC = String.raw`
#include <stdio.h>
#include <stdint.h>
#include <string.h>
typedef uint64_t u64;
#define SW(T, ...) switch (rm) { \
  case 0: __asm__ volatile(T ",rne" __VA_ARGS__); break; case 1: __asm__ volatile(T ",rtz" __VA_ARGS__); break; \
  case 2: __asm__ volatile(T ",rdn" __VA_ARGS__); break; case 3: __asm__ volatile(T ",rup" __VA_ARGS__); break; \
  default: __asm__ volatile(T ",rmm" __VA_ARGS__); break; }
static double D(u64 x) { double d; memcpy(&d, &x, 8); return d; }
static float S(u64 x) { float f; uint32_t w = (uint32_t)x; memcpy(&f, &w, 4); return f; }
static u64 BD(double d) { u64 x; memcpy(&x, &d, 8); return x; }
static u64 BS(float f) { uint32_t w; memcpy(&w, &f, 4); return w; }
int main(void) {
  char op[16]; int rm; u64 a, b, c;
  while (scanf("%15s %d %lx %lx %lx", op, &rm, &a, &b, &c) == 5) {
    u64 r = 0; unsigned long fl;
    double dr; float sr; long ir;
    double da = D(a), db = D(b), dc = D(c); float sa = S(a), sb = S(b), sc = S(c);
    __asm__ volatile("csrw fflags, zero" ::: "memory");
    if (!strcmp(op, "fadd.d")) { SW("fadd.d %0,%1,%2", : "=f"(dr) : "f"(da), "f"(db)); r = BD(dr); }
    else if (!strcmp(op, "fsub.d")) { SW("fsub.d %0,%1,%2", : "=f"(dr) : "f"(da), "f"(db)); r = BD(dr); }
    else if (!strcmp(op, "fmul.d")) { SW("fmul.d %0,%1,%2", : "=f"(dr) : "f"(da), "f"(db)); r = BD(dr); }
    else if (!strcmp(op, "fdiv.d")) { SW("fdiv.d %0,%1,%2", : "=f"(dr) : "f"(da), "f"(db)); r = BD(dr); }
    else if (!strcmp(op, "fsqrt.d")) { SW("fsqrt.d %0,%1", : "=f"(dr) : "f"(da)); r = BD(dr); }
    else if (!strcmp(op, "fmadd.d")) { SW("fmadd.d %0,%1,%2,%3", : "=f"(dr) : "f"(da), "f"(db), "f"(dc)); r = BD(dr); }
    else if (!strcmp(op, "fadd.s")) { SW("fadd.s %0,%1,%2", : "=f"(sr) : "f"(sa), "f"(sb)); r = BS(sr); }
    else if (!strcmp(op, "fmul.s")) { SW("fmul.s %0,%1,%2", : "=f"(sr) : "f"(sa), "f"(sb)); r = BS(sr); }
    else if (!strcmp(op, "fdiv.s")) { SW("fdiv.s %0,%1,%2", : "=f"(sr) : "f"(sa), "f"(sb)); r = BS(sr); }
    else if (!strcmp(op, "fsqrt.s")) { SW("fsqrt.s %0,%1", : "=f"(sr) : "f"(sa)); r = BS(sr); }
    else if (!strcmp(op, "fmadd.s")) { SW("fmadd.s %0,%1,%2,%3", : "=f"(sr) : "f"(sa), "f"(sb), "f"(sc)); r = BS(sr); }
    else if (!strcmp(op, "fcvt.w.d")) { SW("fcvt.w.d %0,%1", : "=r"(ir) : "f"(da)); r = ir; }
    else if (!strcmp(op, "fcvt.wu.d")) { SW("fcvt.wu.d %0,%1", : "=r"(ir) : "f"(da)); r = ir; }
    else if (!strcmp(op, "fcvt.l.d")) { SW("fcvt.l.d %0,%1", : "=r"(ir) : "f"(da)); r = ir; }
    else if (!strcmp(op, "fcvt.lu.d")) { SW("fcvt.lu.d %0,%1", : "=r"(ir) : "f"(da)); r = ir; }
    else if (!strcmp(op, "fcvt.w.s")) { SW("fcvt.w.s %0,%1", : "=r"(ir) : "f"(sa)); r = ir; }
    else if (!strcmp(op, "fcvt.wu.s")) { SW("fcvt.wu.s %0,%1", : "=r"(ir) : "f"(sa)); r = ir; }
    else if (!strcmp(op, "fcvt.l.s")) { SW("fcvt.l.s %0,%1", : "=r"(ir) : "f"(sa)); r = ir; }
    else if (!strcmp(op, "fcvt.lu.s")) { SW("fcvt.lu.s %0,%1", : "=r"(ir) : "f"(sa)); r = ir; }
    else if (!strcmp(op, "fcvt.d.l")) { SW("fcvt.d.l %0,%1", : "=f"(dr) : "r"(a)); r = BD(dr); }
    else if (!strcmp(op, "fcvt.d.lu")) { SW("fcvt.d.lu %0,%1", : "=f"(dr) : "r"(a)); r = BD(dr); }
    else if (!strcmp(op, "fcvt.s.l")) { SW("fcvt.s.l %0,%1", : "=f"(sr) : "r"(a)); r = BS(sr); }
    else if (!strcmp(op, "fcvt.s.w")) { SW("fcvt.s.w %0,%1", : "=f"(sr) : "r"(a)); r = BS(sr); }
    else if (!strcmp(op, "fcvt.s.d")) { SW("fcvt.s.d %0,%1", : "=f"(sr) : "f"(da)); r = BS(sr); }
    else if (!strcmp(op, "fcvt.d.s")) { __asm__ volatile("fcvt.d.s %0,%1" : "=f"(dr) : "f"(sa)); r = BD(dr); }
    else if (!strcmp(op, "fmin.d")) { __asm__ volatile("fmin.d %0,%1,%2" : "=f"(dr) : "f"(da), "f"(db)); r = BD(dr); }
    else if (!strcmp(op, "fmax.s")) { __asm__ volatile("fmax.s %0,%1,%2" : "=f"(sr) : "f"(sa), "f"(sb)); r = BS(sr); }
    else if (!strcmp(op, "flt.d")) { __asm__ volatile("flt.d %0,%1,%2" : "=r"(ir) : "f"(da), "f"(db)); r = ir; }
    else if (!strcmp(op, "feq.s")) { __asm__ volatile("feq.s %0,%1,%2" : "=r"(ir) : "f"(sa), "f"(sb)); r = ir; }
    else if (!strcmp(op, "fclass.d")) { __asm__ volatile("fclass.d %0,%1" : "=r"(ir) : "f"(da)); r = ir; }
    else { printf("? 0\n"); continue; }
    __asm__ volatile("frflags %0" : "=r"(fl) :: "memory");
    printf("%lx %lx\n", r, fl);
  }
  return 0;
}
`;

// op -> [wasm function, format of operands, result kind, operand count, uses rm]
const QEMU_OPS = {
  "fadd.d": ["f64_add", F64, "f64", 2, 1], "fsub.d": ["f64_sub", F64, "f64", 2, 1], "fmul.d": ["f64_mul", F64, "f64", 2, 1],
  "fdiv.d": ["f64_div", F64, "f64", 2, 1], "fsqrt.d": ["f64_sqrt", F64, "f64", 1, 1], "fmadd.d": ["f64_fma", F64, "f64", 3, 1],
  "fadd.s": ["f32_add", F32, "f32", 2, 1], "fmul.s": ["f32_mul", F32, "f32", 2, 1], "fdiv.s": ["f32_div", F32, "f32", 2, 1],
  "fsqrt.s": ["f32_sqrt", F32, "f32", 1, 1], "fmadd.s": ["f32_fma", F32, "f32", 3, 1],
  "fcvt.w.d": ["f64_to_i32", F64, "i64", 1, 1], "fcvt.wu.d": ["f64_to_u32", F64, "i64", 1, 1],
  "fcvt.l.d": ["f64_to_i64", F64, "i64", 1, 1], "fcvt.lu.d": ["f64_to_u64", F64, "i64", 1, 1],
  "fcvt.w.s": ["f32_to_i32", F32, "i64", 1, 1], "fcvt.wu.s": ["f32_to_u32", F32, "i64", 1, 1],
  "fcvt.l.s": ["f32_to_i64", F32, "i64", 1, 1], "fcvt.lu.s": ["f32_to_u64", F32, "i64", 1, 1],
  "fcvt.d.l": ["i64_to_f64", null, "f64", 1, 1], "fcvt.d.lu": ["u64_to_f64", null, "f64", 1, 1],
  "fcvt.s.l": ["i64_to_f32", null, "f32", 1, 1], "fcvt.s.w": ["i32_to_f32", null, "f32", 1, 1],
  "fcvt.s.d": ["f64_to_f32", F64, "f32", 1, 1], "fcvt.d.s": ["f32_to_f64", F32, "f64", 1, 0],
  "fmin.d": ["f64_min", F64, "f64", 2, 0], "fmax.s": ["f32_max", F32, "f32", 2, 0], "flt.d": ["f64_lt", F64, "i32", 2, 0],
  "feq.s": ["f32_eq", F32, "i32", 2, 0], "fclass.d": ["f64_class", F64, "i32", 1, 0],
};

let qemuNote = "skipped (riscv64-linux-gnu-gcc or qemu-riscv64 not installed)";
const gcc = which("riscv64-linux-gnu-gcc"), qemu = which("qemu-riscv64");
if (process.env.FPU_NO_QEMU) qemuNote = "skipped (FPU_NO_QEMU set)";
else if (gcc && qemu) {
  const src = join(tmp, "fp.c"), exe = join(tmp, "fp");
  writeFileSync(src, C_SRC);
  const cc = spawnSync(gcc, ["-O1", "-static", "-march=rv64gc", "-mabi=lp64d", "-o", exe, src], { encoding: "utf8" });
  if (cc.status !== 0) {
    qemuNote = "skipped (cross-compile failed)";
    console.error(cc.stderr);
  } else {
    const cases = [];
    const perOp = Math.round(400 * SCALE);
    for (const [op, [fn, F, , n, usesRm]] of Object.entries(QEMU_OPS)) {
      for (let i = 0; i < perOp; i++) {
        let xs;
        if (!F) xs = [op === "fcvt.s.w" ? BigInt.asUintN(64, BigInt.asIntN(32, genIntBits())) : genIntBits()];
        else if (n === 3) xs = genTriple(F, RNE);
        else if (n === 2) xs = genPair(F, op.startsWith("fdiv") ? "div" : op.startsWith("fmul") ? "mul" : "add");
        else xs = [genVal(F)];
        const rm = usesRm ? rndInt(5) : 0;
        cases.push({ op, fn, F, ret: QEMU_OPS[op][2], usesRm, rm, xs });
      }
    }
    const input = cases.map((c) => `${c.op} ${c.rm} ${[0, 1, 2].map((i) => (c.xs[i] ?? 0n).toString(16)).join(" ")}`).join("\n") + "\n";
    const run = spawnSync(qemu, [exe], { input, encoding: "utf8", maxBuffer: 1 << 26 });
    const lines = run.stdout.trim().split("\n");
    if (run.status !== 0 || lines.length !== cases.length) {
      failCount++;
      failures.push(`qemu run failed: status ${run.status}, ${lines.length}/${cases.length} lines ${run.stderr}`);
    } else {
      cases.forEach((c, i) => {
        const [rs, fs] = lines[i].split(" ");
        let bits = BigInt("0x" + rs);
        if (c.ret === "i64") bits = BigInt.asIntN(64, bits);
        const args = c.xs.map((x) => (c.F ? arg(x, c.F) : c.fn === "i32_to_f32" ? Number(BigInt.asIntN(32, x)) : x));
        if (c.usesRm) args.push(c.rm);
        record(`qemu ${c.op}`, c.xs.map((x) => hex(x)).concat(c.usesRm ? [RM_NAMES[c.rm]] : []),
          call(c.fn, args, c.ret), { bits, flags: parseInt(fs, 16) });
      });
      qemuNote = `${cases.length} cases`;
    }
  }
}

// ---------------------------------------------------------------------------
// Report

const byOp = new Map();
for (const [label, n] of counts) {
  const key = label.split(" ")[0];
  byOp.set(key, (byOp.get(key) || 0) + n);
}
const total = [...counts.values()].reduce((s, n) => s + n, 0);
console.log(`fpu-check seed=0x${SEED0.toString(16)}; cases per operation (all modes):`);
console.log([...byOp].map(([k, n]) => `${k}=${n}`).join(" "));
console.log("expected-flag coverage [NX UF OF DZ NV]: " + ["f64_add", "f64_mul", "f64_div", "f64_fma", "f32_add", "f32_mul",
  "f32_div", "f32_fma", "f64_to_f32", "f64_to_i32", "f32_to_u64"].map((k) => `${k}=${(flagSeen.get(k) || []).join("/")}`).join(" "));
console.log(`qemu-riscv64 cross-check: ${qemuNote}`);
if (failures.length) {
  console.log(`\nFirst mismatches:`);
  for (const f of failures) console.log("  " + f);
}
console.log(`${((Date.now() - started) / 1000).toFixed(1)}s`);
console.log(`fpu: ${total - failCount} passed, ${failCount} failed`);
process.exit(failCount ? 1 : 0);
