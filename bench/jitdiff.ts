// npm run bench:jitdiff: the translator's differential test at scale, as a bounded job. Random
// programs (test/unit/jitdiff-gen.ts: loops, calls, every load and store shape, traps of every
// kind, F/D, stores into translated pages) each run interpreted, translated, and translated under
// random budgets of 1 to 4000 instructions; every register, CSR, byte of RAM and of console
// output, and the instruction counts must agree. It runs until BENCH_SECONDS (default 1200) or
// BENCH_PROGRAMS programs, whichever comes first, from seed BENCH_SEED (default 1000, above
// the test suite's), and prints how much was compared and how fast. A difference stops it with
// the seed and the program written to $TMPDIR (JITDIFF_SEED=<seed> JITDIFF_N=1 npm run
// test:unit replays it).
import { cpus } from "node:os";
import { checkProgram } from "../test/unit/jitdiff-gen.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 1200);
const PROGRAMS = Number(process.env.BENCH_PROGRAMS ?? Infinity);
const FIRST = Number(process.env.BENCH_SEED ?? 1000);
if (!(SECONDS > 0) || !(PROGRAMS > 0) || !Number.isInteger(FIRST)) {
  process.stderr.write("bench:jitdiff: BENCH_SECONDS and BENCH_PROGRAMS must be positive, BENCH_SEED an integer\n");
  process.exit(2);
}
process.stdout.write(`machine: ${cpus()[0]?.model ?? "unknown"} x${cpus().length}, Node ${process.version}; up to ${SECONDS} s` +
  `${Number.isFinite(PROGRAMS) ? ` or ${PROGRAMS} programs` : ""}, seeds from ${FIRST}\n`);

const t0 = performance.now();
let n = 0, insns = 0, translated = 0, traps = 0, invalidated = 0;
const causes = new Set<string>();
let lastReport = t0;
const report = (final: boolean): void => {
  const s = (performance.now() - t0) / 1000;
  process.stdout.write(`${final ? "done" : "so far"}: ${n} programs in ${s.toFixed(0)} s (${(n / s).toFixed(1)}/s), ` +
    `${(insns / 1e6).toFixed(1)} M guest instructions compared three ways, ${(100 * translated / Math.max(1, insns)).toFixed(1)}% of them translated, ` +
    `${traps} traps (causes ${[...causes].sort((a, b) => Number(a) - Number(b)).join(",")}), ${invalidated} translations dropped by stores\n`);
};
for (let seed = FIRST; n < PROGRAMS && performance.now() - t0 < SECONDS * 1000; seed++) {
  try {
    const r = checkProgram(seed);
    n++;
    insns += r.insns;
    translated += r.translated;
    traps += r.traps;
    invalidated += r.invalidated;
    for (const c of r.causes) causes.add(c);
  } catch (e) {
    report(true);
    process.stdout.write(`DIFFERENCE at seed ${seed}:\n${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  if (performance.now() - lastReport > 60_000) {
    lastReport = performance.now();
    report(false);
  }
}
report(true);
process.stdout.write("no differences\n");
