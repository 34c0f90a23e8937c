// Differential test of the binary translator (src/hart/jit): random programs (test/unit/jitdiff-gen.ts
// says what they hold), each run on a BareMachine with the translator off, with it on, and with it
// on under random small budgets (so translated code is cut off at arbitrary points). Everything
// must be identical: x and f registers, fcsr, mstatus, mepc/mcause/mtval, all of RAM, what the
// program printed, minstret and the hart's instruction count. `npm run bench:jitdiff` runs many
// more of them, bounded by time.
//
// JITDIFF_N=1000 runs more programs, JITDIFF_SEED=s starts at seed s (JITDIFF_N=1 for one),
// JITDIFF_VERBOSE=1 prints each program's counts; a failing program is written to
// $TMPDIR/jitdiff-<seed>.elf.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkProgram } from "./jitdiff-gen.js";

const N_PROGRAMS = Number(process.env.JITDIFF_N ?? 40);
const FIRST_SEED = Number(process.env.JITDIFF_SEED ?? 1);

test(`jit-diff: ${N_PROGRAMS} random RV64IMC programs behave the same translated and interpreted`, { skip: N_PROGRAMS === 0 }, () => {
  let insns = 0, translated = 0, traps = 0, invalidated = 0;
  const kinds = new Set<string>();
  for (let seed = FIRST_SEED; seed < FIRST_SEED + N_PROGRAMS; seed++) {
    const r = checkProgram(seed, process.env.JITDIFF_VERBOSE !== undefined);
    insns += r.insns;
    translated += r.translated;
    traps += r.traps;
    invalidated += r.invalidated;
    for (const c of r.causes) kinds.add(c);
  }
  // The programs must exercise what they are meant to (checked when there are enough of them): a
  // good share of the instructions translated, stores into translated pages, and traps of every
  // kind (illegal 2, breakpoint 3, load/store access 5/7, ecall 11).
  const share = translated / insns;
  console.log(`# jit-diff: ${N_PROGRAMS} programs, ${insns} instructions (${(100 * share).toFixed(1)}% translated), ${traps} traps, ${invalidated} translations dropped, causes ${[...kinds].sort().join(",")}`);
  if (N_PROGRAMS < 12) return;
  assert.ok(share > 0.4, `only ${(100 * share).toFixed(1)}% of the instructions ran translated`);
  assert.ok(invalidated > 0, "no store ever hit a page of translated code");
  for (const c of ["2", "3", "5", "7", "11"]) assert.ok(kinds.has(c), `no trap with cause ${c}`);
});
