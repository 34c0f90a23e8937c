// Bad input to `ringvisor bare` gets a clear message and exit status 2, never a stack trace.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ringvisor, PROGRAMS } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "ringvisor-cli-"));

function expectUserError(args: string[], pattern: RegExp): void {
  const r = ringvisor(args);
  assert.equal(r.status, 2, `exit status for ${args.join(" ")}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

test("a missing file is reported by name", () => {
  expectUserError(["bare", join(dir, "nope.elf")], /cannot read .*nope\.elf: ENOENT/);
});

test("a file that is not ELF is rejected", () => {
  const p = join(dir, "text.elf");
  writeFileSync(p, "this is not an executable\n");
  expectUserError(["bare", p], /not an ELF file/);
});

test("an ELF for another machine is rejected", () => {
  const p = join(dir, "x86.elf");
  writeFileSync(p, readFileSync(process.execPath).subarray(0, 4096));
  expectUserError(["bare", p], /not RISC-V/);
});

test("a truncated RISC-V ELF is rejected", () => {
  const whole = readFileSync(join(PROGRAMS, "rv64i.elf"));
  const p = join(dir, "short.elf");
  writeFileSync(p, whole.subarray(0, 200));
  expectUserError(["bare", p], /truncated/);
});

test("a 32-bit ELF is rejected", () => {
  const whole = Buffer.from(readFileSync(join(PROGRAMS, "rv64i.elf")));
  whole[4] = 1;
  const p = join(dir, "elf32.elf");
  writeFileSync(p, whole);
  expectUserError(["bare", p], /32-bit ELF/);
});

test("a program that never finishes is stopped by --max-instructions", () => {
  const r = ringvisor(["bare", join(PROGRAMS, "rv64i.elf"), "--max-instructions", "1000"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /did not finish within 1000 instructions/);
});

test("a trap storm (a trap vector that faults) ends the run instead of hanging the host", () => {
  const r = ringvisor(["bare", join(PROGRAMS, "hostile_trapstorm.elf")], undefined, 60_000);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /makes no progress: it keeps trapping \(pc 0x0, mcause 1\)/);
});
