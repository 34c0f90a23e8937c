// The self-checking RISC-V test programs (tests/programs), each run on the hart; those marked
// `reference` must also print byte-identical output under QEMU, the reference implementation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync, mkdtempSync, openSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { BareMachine } from "../../src/vm/bare.js";
import { ROOT, PROGRAMS } from "../helpers.js";

interface ProgramEntry {
  name: string;
  elf: string;
  reference: boolean;
  timeoutInstructions?: number;
  checks?: number; // self-checking programs report this many checks
}

const manifest = JSON.parse(readFileSync(join(ROOT, "tests/programs/manifest.json"), "utf8")) as
  { qemu?: string[]; programs: ProgramEntry[] } | ProgramEntry[];
// The full benchmark belongs to `npm run bench:hart`; bench-small covers the same code here.
const programs = (Array.isArray(manifest) ? manifest : manifest.programs).filter((p) => p.name !== "bench");
const qemuArgv = (!Array.isArray(manifest) && manifest.qemu) ||
  ["qemu-system-riscv64", "-M", "spike", "-nographic", "-bios", "none", "-kernel", "{elf}"];
const haveQemu = spawnSync(qemuArgv[0]!, ["--version"]).status === 0;

function runOnHart(elf: string, maxInstructions: number): { exitCode: number; output: string } {
  let output = "";
  const m = new BareMachine({ maxInstructions, out: (b) => { output += Buffer.from(b).toString("latin1"); } });
  m.load(readFileSync(elf), elf);
  const r = m.run();
  return { exitCode: r.exitCode, output };
}

// QEMU's stdio console drops bytes when stdout is a pipe that would block, so it writes to a file.
function runOnQemu(elf: string): { status: number | null; output: string } {
  const argv = qemuArgv.map((a) => a.replace("{elf}", elf));
  const outPath = join(mkdtempSync(join(tmpdir(), "ringvisor-qemu-")), "out");
  const fd = openSync(outPath, "w");
  try {
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ["ignore", fd, "pipe"], timeout: 120_000 });
    return { status: r.status, output: readFileSync(outPath, "latin1") };
  } finally {
    closeSync(fd);
  }
}

test("the manifest lists the whole suite", () => {
  assert.ok(programs.length >= 8, `only ${programs.length} programs`);
});

for (const p of programs) {
  const elf = join(PROGRAMS, p.elf);
  test(`program ${p.name}`, () => {
    assert.ok(existsSync(elf), `${elf} was not built`);
    const r = runOnHart(elf, p.timeoutInstructions ?? 2_000_000_000);
    assert.equal(r.exitCode, 0, `${p.name} failed on the hart:\n${r.output}`);
    if (p.checks !== undefined) assert.match(r.output, new RegExp(`PASS ${p.checks} checks`));
  });
  if (p.reference) {
    test(`program ${p.name}: same output as QEMU`, { skip: !haveQemu && "QEMU is not installed" }, () => {
      const mine = runOnHart(elf, p.timeoutInstructions ?? 2_000_000_000);
      const ref = runOnQemu(elf);
      assert.equal(ref.status, 0, `${p.name} failed under QEMU:\n${ref.output}`);
      assert.equal(mine.output, ref.output);
    });
  }
}
