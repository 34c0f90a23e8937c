// The host's writes into guest memory invalidate translations (src/hart/jit/cache.ts): two bare
// programs linked at the same addresses, identical but for the constants of their hot loops, run
// one after the other in the same BareMachine. The second is loaded by the host (BareMachine.load
// writes RAM directly, marking the frames written with MachineMemory.codeWritten), never by a
// store of the hart, so without that mark the second program would run the first one's
// translations of the very same machine addresses and report the first one's result.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BareMachine } from "../../src/vm/bare.js";
import { TEST_JIT_THRESHOLD } from "../helpers.js";
import { Asm, CSR, X, elf64, encAluI, encAluR, encCsr, encStore } from "./rv-asm.js";

const BOOT = 0x8000_0000;
const MAIN = 0x8000_1000;
const TOHOST = 0x8000_f000;
const IMAGE_BYTES = 0x1_0000;
const MEM_BYTES = 16 << 20;
const N = 20_000; // iterations of the hot loop: far past the translator's threshold

// Boot (any trap exits with code 3), then main's hot loop:
//   for (s2 = N; s2; s2--) { a0 += k; a1 ^= a0; a1 = a1 * 3 }
// and exit with code a0 + (a1 & 0xff) * 2^32 (HTIF: tohost = code << 1 | 1). Every program made
// here has every instruction at the same address, only the loop's `addi a0, a0, k` differs.
function program(k: number): Uint8Array {
  const a = new Asm(BOOT, IMAGE_BYTES);
  a.define("tohost", TOHOST);
  a.at(BOOT).label("_start");
  a.la(X.t0, "trap"); a.w32(encCsr(1, 0, CSR.mtvec, X.t0));
  for (const r of [X.a0, X.a1, X.s2]) a.li(r, 0);
  a.jal(0, "main");
  a.align(4).label("trap");
  a.la(X.t0, "tohost"); a.li(X.t1, 7); a.w32(encStore("sd", X.t1, X.t0, 0));
  a.label("spin"); a.jal(0, "spin");

  a.at(MAIN).label("main");
  a.li(X.s2, N);
  a.li(X.t2, 3);
  a.label("loop");
  a.w32(encAluI("addi", X.a0, X.a0, k));
  a.w32(encAluR("xor", X.a1, X.a1, X.a0));
  a.w32(encAluR("mul", X.a1, X.a1, X.t2));
  a.w32(encAluI("addi", X.s2, X.s2, -1));
  a.branch("bne", X.s2, 0, "loop");
  // exit code = a0 | (a1 & 0xff) << 32
  a.w32(encAluI("andi", X.t1, X.a1, 0xff));
  a.w32(encAluI("slli", X.t1, X.t1, 32));
  a.w32(encAluR("or", X.t1, X.t1, X.a0));
  a.w32(encAluI("slli", X.t1, X.t1, 1));
  a.w32(encAluI("ori", X.t1, X.t1, 1));
  a.la(X.t0, "tohost"); a.w32(encStore("sd", X.t1, X.t0, 0));
  a.label("spin2"); a.jal(0, "spin2");
  return elf64(a.finish(), BOOT, BOOT, { tohost: TOHOST, fromhost: TOHOST + 64 });
}

// What program(k) reports, computed here.
function expected(k: number): number {
  let a0 = 0n, a1 = 0n;
  for (let i = 0; i < N; i++) {
    a0 = BigInt.asUintN(64, a0 + BigInt(k));
    a1 = BigInt.asUintN(64, (a1 ^ a0) * 3n);
  }
  return Number(a0 | ((a1 & 0xffn) << 32n));
}

const K_A = 3, K_B = 5;
const A = program(K_A), B = program(K_B);

// A and B differ only in the loop's one instruction.
const differing = (): number[] => {
  const out: number[] = [];
  for (let i = 0; i < A.length; i++) if (A[i] !== B[i]) out.push(i);
  return out;
};

interface Step { exitCode: number; instructions: bigint; translatedInsns: number; invalidated: number; translations: number }

function runBoth(jit: boolean): { a: Step; b: Step } {
  const m = new BareMachine({ jit, jitThreshold: TEST_JIT_THRESHOLD, memBytes: MEM_BYTES, maxInstructions: 10_000_000, out: () => {} });
  const step = (elf: Uint8Array, name: string, before: { instret: bigint; translated: number }): Step => {
    m.load(elf, name);
    const r = m.run();
    return {
      exitCode: r.exitCode,
      instructions: r.instructions - before.instret,
      translatedInsns: (r.stats.translatedInsns ?? 0) - before.translated,
      invalidated: m.jit?.stats.invalidated ?? 0,
      translations: m.jit?.stats.translations ?? 0,
    };
  };
  const a = step(A, "reload-a", { instret: 0n, translated: 0 });
  const b = step(B, "reload-b", { instret: m.hart.instret, translated: m.hart.stats().translatedInsns ?? 0 });
  return { a, b };
}

test("jit-reload: the two programs differ only in their hot loop's constant", () => {
  const d = differing();
  assert.ok(d.length > 0 && d.length <= 4, `the images differ in ${d.length} bytes`);
  assert.notEqual(expected(K_A), expected(K_B));
  assert.ok(expected(K_A) > 0xffff_ffff, "the exit code carries a1 as well as a0");
});

test("jit-reload: a program loaded over a translated one runs its own code, translated (jit on)", () => {
  const { a, b } = runBoth(true);
  assert.equal(a.exitCode, expected(K_A), "program A's result");
  assert.ok(a.translatedInsns > Number(a.instructions) / 2, `A's hot loop ran translated (${a.translatedInsns} of ${a.instructions})`);
  assert.ok(a.translations > 0, "A's code was translated");
  assert.equal(b.exitCode, expected(K_B), b.exitCode === expected(K_A)
    ? "program B reported program A's result: the host's load did not invalidate A's translations"
    : "program B's result");
  assert.ok(b.invalidated > a.invalidated, `loading B dropped A's translations (invalidated ${a.invalidated} -> ${b.invalidated})`);
  assert.ok(b.translations > a.translations, "B's code was translated anew");
  assert.ok(b.translatedInsns > Number(b.instructions) / 2, `B ran mostly translated (${b.translatedInsns} of ${b.instructions})`);
});

test("jit-reload: the same sequence interpreted (jit off)", () => {
  const { a, b } = runBoth(false);
  assert.equal(a.exitCode, expected(K_A));
  assert.equal(b.exitCode, expected(K_B));
  assert.equal(a.translatedInsns, 0);
  assert.equal(b.translatedInsns, 0);
  assert.equal(b.instructions, a.instructions, "both programs retire the same number of instructions");
});
