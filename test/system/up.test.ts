// `ringvisor up`: several Debian guests from spec files on one host. Piped commands go to the
// attached VM's console only, every console is logged to its file, and when the input ends every
// VM is powered off (end-of-file typed at each console), so the run ends by itself. Refusals
// (nothing booted) are in test/unit/cli-up.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BOOT_COMPLETE } from "../../src/host/images/initramfs.js";
import { DEFAULT_CMDLINE } from "../../src/vm/spec.js";
import { ringvisor } from "../helpers.js";
import { defaultGuest } from "./guest.js";

const TIMEOUT_MS = 300_000;
const g = await defaultGuest();
const BOOTS = { skip: g.skip, timeout: TIMEOUT_MS };
const dir = mkdtempSync(join(tmpdir(), "ringvisor-up-sys-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const STACK = /\n\s+at /;

function spec(file: string, text: string): string {
  const p = join(dir, file);
  writeFileSync(p, text);
  return p;
}

test("two guests from two spec files: input to the attached one, both logged, both powered off at the end", BOOTS, () => {
  g.need();
  // Each guest's command line names it, so its console shows which guest answered.
  const web = spec("web.yaml", `name: web\nmemory: 128\ncmdline: ${DEFAULT_CMDLINE} ringvisor.vm=web\n`);
  const db = spec("db.json", JSON.stringify({ name: "db", memory: 128, weight: 512, cmdline: `${DEFAULT_CMDLINE} ringvisor.vm=db` }));
  const logs = join(dir, "logs");
  const t0 = performance.now();
  const r = ringvisor(["up", "--attach", "db", "--log-dir", logs, web, db], "echo hello-$((6*7))\ncat /proc/cmdline\n", TIMEOUT_MS);
  const seconds = (performance.now() - t0) / 1000;
  console.log(`up, two guests: ${seconds.toFixed(1)} s`);
  const diag = `status ${r.status}\n--- stderr:\n${r.stderr}\n--- stdout tail:\n${r.stdout.slice(-2000)}`;
  assert.notEqual(r.status, null, `the run ended by itself within ${TIMEOUT_MS} ms\n${diag}`);
  assert.equal(r.status, 0, `both powered off cleanly\n${diag}`);
  assert.doesNotMatch(r.stderr, STACK);

  // The table of what runs, then each VM's end.
  assert.match(r.stderr, /^NAME\s+VCPUS\s+MEMORY\s+VIRT\s+WEIGHT\s+CAP\s+DEDICATED$/m, diag);
  assert.match(r.stderr, /^web\s+1\s+128 MiB\s+trap-and-emulate\s+256\s+none\s+no$/m, diag);
  assert.match(r.stderr, /^db\s+1\s+128 MiB\s+trap-and-emulate\s+512\s+none\s+no$/m, diag);
  assert.match(r.stderr, /attached: db/, diag);
  for (const name of ["web", "db"]) assert.match(r.stderr, new RegExp(`^ringvisor: ${name} ended after [\\d.]+ s, status 0: guest powered off$`, "m"), diag);

  // stdout is the attached console: db's, which took the commands.
  assert.match(r.stdout, /^hello-42\r?$/m, diag);
  assert.match(r.stdout, /^console=ttyS0 .*ringvisor\.vm=db\r?$/m, diag);
  assert.ok(!r.stdout.includes("ringvisor.vm=web"), "web's console is not on stdout");
  assert.ok(!r.stdout.includes("\x1b[6n"), "no terminal queries in output that is not a terminal");

  // Each console in its log, from boot to poweroff.
  const log = (name: string): string => readFileSync(join(logs, `${name}.log`), "latin1");
  for (const name of ["web", "db"]) {
    const text = log(name);
    assert.ok(text.includes(BOOT_COMPLETE), `${name}.log shows a booted guest:\n${text.slice(-1500)}`);
    assert.ok(text.includes(`ringvisor.vm=${name}`), `${name}.log is ${name}'s console`);
    assert.match(text, /ringvisor: shell exited, powering off/, `${name} was powered off by end-of-file at its console`);
    assert.match(text, /reboot: Power down/);
    assert.ok(!text.includes("\x1b[6n"), `no terminal queries in ${name}.log`);
  }
  assert.match(log("db"), /^hello-42\r?$/m, "the attached console is logged too");
  assert.ok(!log("web").includes("hello-42"), "the commands went to db only");
});

test("a guest that fails gives up's exit status; the other still runs to its end", BOOTS, () => {
  g.need();
  const ok = spec("ok.yaml", "name: ok\nmemory: 128\n");
  const bad = spec("bad.yaml", `name: bad\nmemory: 128\ncmdline: ${DEFAULT_CMDLINE} rdinit=/nonexistent\n`);
  const logs = join(dir, "logs-fail");
  const r = ringvisor(["up", "--log-dir", logs, ok, bad], "", TIMEOUT_MS);
  const diag = `status ${r.status}\n--- stderr:\n${r.stderr}`;
  assert.equal(r.status, 3, `the failing guest's status (a reboot request after its panic)\n${diag}`);
  assert.match(r.stderr, /^ringvisor: bad ended after [\d.]+ s, status 3: guest requested a reboot$/m, diag);
  assert.match(r.stderr, /^ringvisor: ok ended after [\d.]+ s, status 0: guest powered off$/m, diag);
  assert.match(readFileSync(join(logs, "bad.log"), "latin1"), /Kernel panic - not syncing/);
  assert.ok(readFileSync(join(logs, "ok.log"), "latin1").includes(BOOT_COMPLETE));
  assert.doesNotMatch(r.stderr, STACK);
});
