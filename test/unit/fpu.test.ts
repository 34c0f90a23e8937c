// The soft-float unit checked in isolation against exact rational arithmetic (BigInt), native
// round-to-nearest results and, where qemu-user is installed, real RISC-V semantics.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../helpers.js";

test("fpu: every operation, rounding mode and flag matches the references", () => {
  const r = spawnSync(process.execPath, [join(ROOT, "tests/fpu/fpu-check.mjs")], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
  const summary = /fpu: (\d+) passed, (\d+) failed/.exec(r.stdout);
  assert.ok(summary, `no summary line:\n${r.stdout}\n${r.stderr}`);
  assert.equal(Number(summary[2]), 0, r.stdout.slice(-3000));
  assert.ok(Number(summary[1]) > 100_000, "the checker ran its full set");
  assert.equal(r.status, 0);
});
