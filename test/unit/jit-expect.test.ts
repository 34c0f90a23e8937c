// "Expect" tests for the translator (as v86 keeps them): for a handful of small guest inputs the
// WebAssembly the translator emits is pinned in test/unit/expect/jit/*.wat, as text (wabt's
// disassembler), so that a change in code generation shows up in review as a diff of the emitted
// code. When a change is intended, regenerate them with
//   RINGVISOR_EXPECT_UPDATE=1 node --test dist/test/unit/jit-expect.test.js
// and read the diff before committing it. Each file starts with the guest code as comments.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import wabtInit from "wabt";
import { findRegion } from "../../src/hart/jit/codegen.js";
import { translationModule } from "../../src/hart/jit/cache.js";
import { ROOT } from "../helpers.js";
import {
  X, C, encAluI, encAluR, encB, encLoad, encStore, encJalr, encCsr, encFp, encFload, encFma, FP_OP, ECALL,
} from "./rv-asm.js";

const DIR = join(ROOT, "test/unit/expect/jit");
const UPDATE = process.env.RINGVISOR_EXPECT_UPDATE === "1";
// Where the code map and the code flag are (constants baked into every store's dirty check), and
// the translation map and the stub's table index (baked into the chaining at a region's exits).
const TRACK = { dirty: 0x10_0000, flag: 0x2000, map: 0x40_0000, stub: 3 };
const PAGE_BASE = 0x8020_0000 >>> 0; // the machine address of the page the code is in
const SRET = 0x10200073;
const SFENCE_ALL = 0x12000073;

// A guest instruction: its encoding (16 or 32 bits) and what it says.
type Line = [number, string];
const c16 = (w: number, text: string): Line => [w | 0x1_0000_0000, text]; // marked 16-bit

const CASES: { name: string; what: string; code: Line[] }[] = [
  {
    name: "loop",
    what: "a counted loop: registers in locals, the budget check on the backward edge",
    code: [
      [encAluI("addi", X.a0, X.a0, 1), "addi a0, a0, 1"],
      [encAluR("add", X.a1, X.a1, X.a0), "add a1, a1, a0"],
      [encB(1, X.a0, X.a2, -8), "bne a0, a2, -8"],
      [encJalr(0, X.ra, 0), "ret"],
    ],
  },
  {
    name: "load-store",
    what: "a load and a store: the inline L1 TLB hit, the dirty mark of a translated frame, the slow paths",
    code: [
      [encLoad("ld", X.t0, X.a0, 8), "ld t0, 8(a0)"],
      [encLoad("lbu", X.t1, X.a0, -1), "lbu t1, -1(a0)"],
      [encStore("sw", X.t0, X.a1, 0), "sw t0, 0(a1)"],
      [encJalr(0, X.ra, 0), "ret"],
    ],
  },
  {
    name: "compressed-muldiv",
    what: "compressed instructions, mulhu through the module's helper, division by zero and overflow",
    code: [
      c16(C.addi(X.a0, 3), "c.addi a0, 3"),
      c16(C.add(X.a0, X.a1), "c.add a0, a1"),
      [encAluR("mulhu", X.a2, X.a0, X.a1), "mulhu a2, a0, a1"],
      [encAluR("div", X.a3, X.a0, X.a1), "div a3, a0, a1"],
      [encAluR("remuw", X.a4, X.a0, X.a1), "remuw a4, a0, a1"],
      [encJalr(0, X.ra, 0), "ret"],
    ],
  },
  {
    name: "fp",
    what: "F/D: an inline fld, fadd.d and fmul.d inline, fmadd.d through the fast path, fdiv.d through fexec",
    code: [
      [encFload(8, 1, X.a0, 0), "fld f1, 0(a0)"],
      [encFp(FP_OP.fadd!, 1, 2, 1, 1, 7), "fadd.d f2, f1, f1 (dyn)"],
      [encFma("fmadd", 1, 3, 1, 2, 2, 0), "fmadd.d f3, f1, f2, f2 (rne)"],
      [encFp(FP_OP.fdiv!, 1, 4, 3, 2, 7), "fdiv.d f4, f3, f2"],
      [encFp(FP_OP.fmul!, 1, 5, 4, 1, 0), "fmul.d f5, f4, f1 (rne)"],
      [encJalr(0, X.ra, 0), "ret"],
    ],
  },
  {
    name: "sensitive",
    what: "what a deprivileged kernel traps on, as calls into the VMM (--virt bt): csrs sstatus, csrr sepc, sfence.vma, sret; and ecall",
    code: [
      [encCsr(2, X.t0, 0x100, X.t1), "csrrs t0, sstatus, t1"],
      [encCsr(2, X.a0, 0x141, 0), "csrr a0, sepc"],
      [SFENCE_ALL, "sfence.vma"],
      [SRET, "sret"],
      [ECALL, "ecall"],
    ],
  },
];

function page(code: Line[]): Uint8Array {
  const p = new Uint8Array(4096);
  const v = new DataView(p.buffer);
  let off = 0;
  for (const [w] of code) {
    if (w > 0xffff_ffff) { v.setUint16(off, w & 0xffff, true); off += 2; } else { v.setUint32(off, w, true); off += 4; }
  }
  return p;
}

function listing(code: Line[]): string {
  let off = 0;
  return code.map(([w, text]) => {
    const short = w > 0xffff_ffff;
    const hex = short ? (w & 0xffff).toString(16).padStart(4, "0") : (w >>> 0).toString(16).padStart(8, "0");
    const line = `;; ${off.toString(16).padStart(3, "0")}: ${hex.padEnd(8)}  ${text}`;
    off += short ? 2 : 4;
    return line;
  }).join("\n");
}

const wabt = await wabtInit();

for (const k of CASES) {
  test(`translator output is pinned: ${k.name} (${k.what})`, () => {
    const region = findRegion(page(k.code), 0);
    assert.ok(region, `${k.name}: the code is translatable`);
    region.base = PAGE_BASE;
    const bytes = translationModule([region], TRACK);
    assert.ok(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>), `${k.name}: the module is valid wasm`);
    const mod = wabt.readWasm(bytes, { readDebugNames: false, threads: true });
    const text = `;; ${k.what}\n${listing(k.code)}\n${mod.toText({ foldExprs: false, inlineExport: false })}`;
    mod.destroy();
    const file = join(DIR, `${k.name}.wat`);
    if (UPDATE) {
      mkdirSync(DIR, { recursive: true });
      writeFileSync(file, text);
      return;
    }
    assert.ok(existsSync(file), `${file} is missing: run with RINGVISOR_EXPECT_UPDATE=1 to write it`);
    const want = readFileSync(file, "utf8");
    if (text !== want) {
      // The first lines that differ, so the failure says what changed.
      const a = want.split("\n"), b = text.split("\n");
      const i = a.findIndex((l, j) => l !== b[j]);
      const at = i < 0 ? a.length : i;
      assert.fail(`${k.name}: the translator emits different code from ${file} (from line ${at + 1}):\n` +
        `expected:\n${a.slice(at, at + 6).join("\n")}\nemitted:\n${b.slice(at, at + 6).join("\n")}\n` +
        "If the change is intended, regenerate with RINGVISOR_EXPECT_UPDATE=1 and review the diff.");
    }
  });
}
