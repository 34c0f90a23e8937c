// Self-modifying code and the translator (src/hart/jit/cache.ts): a program whose hot code gets
// translated, then overwritten by its own stores and made visible with fence.i (unprivileged
// spec 3.2: after fence.i, fetches see the stores before it; without fence.i either old or new
// code may run, so nothing here relies on that). The results must reflect the new code with the
// translator on, and equal the interpreter's; code on pages that were not written must keep its
// translations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BareMachine } from "../../src/vm/bare.js";
import { TEST_JIT_THRESHOLD } from "../helpers.js";
import { jitOf } from "../../src/hart/hart.js";
import type { Jit } from "../../src/hart/jit/cache.js";
import { Asm, C, CSR, X, elf64, encAluI, encAluR, encCsr, encJalr, encStore, FENCE_I } from "./rv-asm.js";

const BOOT = 0x8000_0000;
const TOHOST = 0x8000_f000;
const IMAGE_BYTES = 0x1_0000;
const MEM_BYTES = 16 << 20;

const addi = (rd: number, rs1: number, imm: number): number => encAluI("addi", rd, rs1, imm);

// Boot: any trap fails the program (exit code 3); then `main`; `exit` reports 0.
function program(build: (a: Asm) => void): Uint8Array {
  const a = new Asm(BOOT, IMAGE_BYTES);
  a.define("tohost", TOHOST);
  a.at(BOOT).label("_start");
  a.la(X.t0, "trap"); a.w32(encCsr(1, 0, CSR.mtvec, X.t0));
  for (const r of [X.a0, X.a1, X.a2, X.a3, X.s2]) a.li(r, 0);
  a.jal(0, "main");
  a.align(4).label("trap");
  a.la(X.t0, "tohost"); a.li(X.t1, 7); a.w32(encStore("sd", X.t1, X.t0, 0)); // exit code 3
  a.label("spin"); a.jal(0, "spin");
  a.label("exit");
  a.la(X.t0, "tohost"); a.li(X.t1, 1); a.w32(encStore("sd", X.t1, X.t0, 0));
  a.label("spin2"); a.jal(0, "spin2");
  build(a);
  return elf64(a.finish(), BOOT, BOOT, { tohost: TOHOST, fromhost: TOHOST + 64 });
}

// Stores the 32-bit word `w` at `label` (through t0 and t1), optionally followed by fence.i.
function patch(a: Asm, label: string, w: number, fence = true): void {
  a.la(X.t0, label);
  a.li(X.t1, BigInt.asIntN(32, BigInt(w)));
  a.w32(encStore("sw", X.t1, X.t0, 0));
  if (fence) a.w32(FENCE_I);
}

// for (s2 = n; s2; s2--) { calls }
function hotLoop(a: Asm, n: number, calls: (a: Asm) => void): void {
  const top = a.fresh("loop");
  a.li(X.s2, n);
  a.label(top);
  calls(a);
  a.w32(addi(X.s2, X.s2, -1));
  a.branch("bne", X.s2, 0, top);
}

// The translation cache's translations by machine frame. This reads a private field of Jit (its
// stats say how many were dropped, not which): a test of which translations survive needs it.
type Frames = Map<number, { stub?: boolean }[]>;
function framesOf(jit: Jit): Frames {
  const byFrame = (jit as unknown as { byFrame?: Frames }).byFrame;
  assert.ok(byFrame instanceof Map, "Jit has no byFrame map any more: update this test");
  return new Map([...byFrame].map(([k, v]) => [k, [...v]]));
}

interface Fence { invalidated: number; before: Frames; after: Frames }

interface Run {
  exitCode: number;
  x: bigint[];
  instret: bigint;
  fences: Fence[];
  end?: Frames;
  jit?: Jit;
  frame(addr: number): number; // the machine frame of a guest address
  translatedInsns: number;
}

// Runs the program; with the translator on, records the translations before and after each
// fence.i and how many the fence.i dropped.
function run(elf: Uint8Array, jitOn: boolean): Run {
  const m = new BareMachine({ jit: jitOn, jitThreshold: TEST_JIT_THRESHOLD, memBytes: MEM_BYTES, maxInstructions: 50_000_000, out: () => {} });
  const fences: Fence[] = [];
  const jit = jitOf(m.hart.wasm);
  if (jit) {
    const fenceI = jit.fenceI.bind(jit);
    jit.fenceI = (): void => {
      const before = framesOf(jit), dropped = jit.stats.invalidated;
      fenceI();
      fences.push({ invalidated: jit.stats.invalidated - dropped, before, after: framesOf(jit) });
    };
  }
  m.load(elf, "smc");
  const r = m.run();
  return {
    exitCode: r.exitCode, x: Array.from({ length: 32 }, (_, i) => m.hart.x(i)), instret: r.instructions, fences,
    end: jit && framesOf(jit), jit, frame: (addr) => (m.ramOffset + (addr - BOOT)) >>> 12, translatedInsns: r.stats.translatedInsns ?? 0,
  };
}

// Every translation of `before` outside frame `written` is still there, the very same object.
function kept(before: Frames, after: Frames, written: number, what: string): void {
  for (const [frame, list] of before) {
    if (frame === written) continue;
    const now = after.get(frame) ?? [];
    for (const t of list) assert.ok(now.includes(t), `${what}: a translation in unwritten frame 0x${frame.toString(16)} was dropped`);
  }
}

function both(elf: Uint8Array): { on: Run; off: Run } {
  const off = run(elf, false);
  const on = run(elf, true);
  assert.equal(off.exitCode, 0, "the program trapped or failed (interpreted)");
  assert.equal(on.exitCode, 0, "the program trapped or failed (translated)");
  for (let i = 1; i < 32; i++) assert.equal(on.x[i], off.x[i], `x${i} differs between translated and interpreted runs`);
  assert.equal(on.instret, off.instret, "instruction counts differ");
  assert.ok(on.translatedInsns > 0, "nothing ran translated");
  return { on, off };
}

const F = 0x8000_2000, G = 0x8000_3000, D = 0x8000_4000, M = 0x8000_1000;

test("jit-smc: patched functions on other pages, code written at run time; untouched pages keep their translations", () => {
  const N = 1000;
  const elf = program((a) => {
    // f (alone on its page): a0 += 1, later patched to += 7, then to c.addi a0, -3; c.nop.
    a.at(F).label("f");
    a.w32(addi(X.a0, X.a0, 1));
    a.w32(encJalr(0, X.ra, 0));
    // g (another page, never written): a1 += 3.
    a.at(G).label("g");
    a.w32(addi(X.a1, X.a1, 3));
    a.h16(C.jr(X.ra));
    // h: the program writes it into the empty page D.
    a.define("h", D);
    a.at(M).label("main");
    const callF = (b: Asm): void => { b.jal(X.ra, "f"); };
    const callG = (b: Asm): void => { b.jal(X.ra, "g"); };
    const callH = (b: Asm): void => { b.la(X.t2, "h"); b.h16(C.jalr(X.t2)); };
    hotLoop(a, N, (b) => { callF(b); callG(b); });
    patch(a, "f", addi(X.a0, X.a0, 7)); // fence.i 1: drops f only
    hotLoop(a, N, (b) => { callF(b); callG(b); });
    a.la(X.t0, "h"); // fence.i 2: h written before anything on D was translated; drops nothing
    a.li(X.t1, addi(X.a2, X.a2, 5)); a.w32(encStore("sw", X.t1, X.t0, 0));
    a.li(X.t1, encJalr(0, X.ra, 0)); a.w32(encStore("sw", X.t1, X.t0, 4));
    a.w32(FENCE_I);
    hotLoop(a, N, (b) => { callH(b); callG(b); });
    patch(a, "f", C.addi(X.a0, -3) | (C.addi(0, 0) << 16)); // fence.i 3: drops f only; h, g, main stay
    hotLoop(a, N, (b) => { callF(b); callH(b); callG(b); });
    a.jal(0, "exit");
  });
  const { on } = both(elf);
  assert.equal(on.x[X.a0], BigInt(N * (1 + 7 - 3)), "a0: f ran its old code after fence.i");
  assert.equal(on.x[X.a1], BigInt(N * 4 * 3));
  assert.equal(on.x[X.a2], BigInt(N * 2 * 5));

  const [f1, f2, f3] = on.fences;
  assert.equal(on.fences.length, 3);
  const fF = on.frame(F), fG = on.frame(G), fD = on.frame(D), fM = on.frame(M);
  assert.equal(new Set([fF, fG, fD, fM]).size, 4);
  // Before each patch f, g and the loop were translated (so the old code really ran translated);
  // each fence.i after a patch dropped f's translation and nothing else.
  for (const [i, fence] of [[1, f1!], [3, f3!]] as const) {
    for (const fr of [fF, fG, fM]) assert.ok((fence.before.get(fr) ?? []).length > 0, `fence.i ${i}: frame 0x${fr.toString(16)} had no translation`);
    assert.equal(fence.after.get(fF), undefined, `fence.i ${i}: f's translation survived its patch`);
    assert.equal(fence.invalidated, 1, `fence.i ${i}: dropped ${fence.invalidated} translations, not just f's`);
    kept(fence.before, fence.after, fF, `fence.i ${i}`);
  }
  assert.equal(f2!.invalidated, 0, "fence.i 2 (after writing h on a fresh page) dropped translations");
  assert.equal(f2!.before.get(fD), undefined);
  kept(f2!.before, f2!.after, -1, "fence.i 2");
  assert.ok((f3!.before.get(fD) ?? []).length > 0, "h was not translated");
  // g's page was never written: its first translations lasted to the end.
  kept(new Map([[fG, f1!.before.get(fG)!]]), on.end!, -1, "at exit");
  kept(new Map([[fD, f3!.before.get(fD)!]]), on.end!, -1, "at exit");
  assert.ok((on.end!.get(fF) ?? []).length > 0, "f's newest code was not translated");
});

test("jit-smc: a loop rewrites a function on its own page, then calls it in a hot inner loop", () => {
  const OUTER = 16, INNER = 1500;
  const elf = program((a) => {
    a.at(M).label("main");
    const outer = a.fresh("outer"), inner = a.fresh("inner");
    a.li(X.s3, OUTER);
    a.label(outer);
    // same: addi a0, a0, (s3 & 7) + 1
    a.w32(encAluI("andi", X.t0, X.s3, 7));
    a.w32(addi(X.t0, X.t0, 1));
    a.w32(encAluI("slli", X.t0, X.t0, 20));
    a.li(X.t1, addi(X.a0, X.a0, 0));
    a.w32(encAluR("or", X.t1, X.t0, X.t1));
    a.la(X.t0, "same");
    a.w32(encStore("sw", X.t1, X.t0, 0));
    a.w32(FENCE_I);
    a.li(X.s2, INNER);
    a.label(inner);
    a.jal(X.ra, "same");
    a.w32(addi(X.a1, X.a1, 1));
    a.w32(addi(X.s2, X.s2, -1));
    a.branch("bne", X.s2, 0, inner);
    a.w32(addi(X.s3, X.s3, -1));
    a.branch("bne", X.s3, 0, outer);
    a.jal(0, "exit");
    a.label("same");
    a.w32(addi(X.a0, X.a0, 100));
    a.w32(encJalr(0, X.ra, 0));
  });
  const { on } = both(elf);
  let want = 0;
  for (let s3 = OUTER; s3 > 0; s3--) want += INNER * ((s3 & 7) + 1);
  assert.equal(on.x[X.a0], BigInt(want));
  assert.equal(on.x[X.a1], BigInt(OUTER * INNER));
  assert.ok(on.jit!.stats.invalidated >= OUTER / 4, `only ${on.jit!.stats.invalidated} translations dropped`);
  assert.ok(on.translatedInsns > (OUTER * INNER * 4) / 2, `only ${on.translatedInsns} instructions ran translated`);
});

test("jit-smc: code that starts with an instruction left to the interpreter, patched to translatable code and back", () => {
  const N = 1000;
  const elf = program((a) => {
    a.at(F).label("f");
    a.w32(addi(X.a0, X.a0, 2)); // patched to a CSR read (the translator leaves it to the interpreter), then to += 4
    a.w32(addi(X.a0, X.a0, 1));
    a.w32(encJalr(0, X.ra, 0));
    a.at(M).label("main");
    hotLoop(a, N, (b) => { b.jal(X.ra, "f"); });
    patch(a, "f", encCsr(2, 0, CSR.mscratch, 0)); // csrrs x0, mscratch, x0
    hotLoop(a, N, (b) => { b.jal(X.ra, "f"); });
    patch(a, "f", addi(X.a0, X.a0, 4));
    hotLoop(a, N, (b) => { b.jal(X.ra, "f"); });
    a.jal(0, "exit");
  });
  const { on } = both(elf);
  assert.equal(on.x[X.a0], BigInt(N * (3 + 1 + 5)));
  const fF = on.frame(F);
  const [f1, f2] = on.fences;
  assert.equal(on.fences.length, 2);
  const real = (list: { stub?: boolean }[] | undefined): number => (list ?? []).filter((t) => !t.stub).length;
  const stubs = (list: { stub?: boolean }[] | undefined): number => (list ?? []).filter((t) => t.stub).length;
  assert.ok(real(f1!.before.get(fF)) > 0, "f was not translated before its first patch");
  assert.equal(f1!.after.get(fF), undefined);
  assert.ok(stubs(f2!.before.get(fF)) > 0 && real(f2!.before.get(fF)) === 0, "f starting with a CSR access was not left to the interpreter");
  assert.equal(f2!.after.get(fF), undefined, "the stub survived the patch");
  assert.ok(real(on.end!.get(fF)) > 0, "f was not translated after its second patch");
});
