// Reaching a running VM from another shell, the way `multipass exec` and `virsh` users do:
// `ringvisor run --name` serves a control socket (src/host/control.ts), and `ringvisor exec`,
// `forward`, `ls` and `stop`, each its own process, act on the default Debian guest through it.
// The guest-free refusals and hostile requests are in test/unit/control.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, freePort } from "../helpers.js";
import { defaultGuest } from "./guest.js";
import { sleep } from "./console.js";

const g = await defaultGuest();
const TIMEOUT_MS = 300_000;
const runtime = mkdtempSync(join(tmpdir(), "ringvisor-ctl-sys-"));
process.on("exit", () => rmSync(runtime, { recursive: true, force: true }));
const env = { ...process.env, XDG_RUNTIME_DIR: runtime };

interface Result { status: number; stdout: Buffer; stderr: string }
function ringvisor(args: string[], input?: Buffer): Promise<Result> {
  return new Promise((resolve) => {
    const c = execFile(process.execPath, [CLI, ...args], { env, encoding: "buffer", timeout: 120_000, maxBuffer: 64 << 20 }, (e, stdout, stderr) => {
      resolve({ status: e ? ((e as { code?: number }).code ?? -1) : 0, stdout, stderr: stderr.toString() });
    });
    c.stdin!.end(input);
  });
}


test("ringvisor exec, forward, ls and stop reach a guest that `ringvisor run --name` started", { skip: g.skip, timeout: TIMEOUT_MS }, async () => {
  g.need();
  // The console's input stays open (and unused) until the VM is stopped from outside.
  const run = spawn(process.execPath, [CLI, "run", "--name", "web", "--on-eof", "wait", "--mem", "256"], { env, stdio: ["pipe", "pipe", "pipe"] });
  let consoleText = "";
  let stderr = "";
  run.stdout.on("data", (d: Buffer) => (consoleText += d.toString("latin1")));
  run.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<number | null>((r) => run.once("exit", (code) => r(code)));
  const diag = (): string => `--- run's stderr:\n${stderr}\n--- console tail:\n${consoleText.slice(-1500)}`;
  try {
    // The agent answers once the guest is up.
    let first: Result | undefined;
    for (const t0 = performance.now(); performance.now() - t0 < 200_000; await sleep(2000)) {
      first = await ringvisor(["exec", "web", "--", "uname", "-m"]);
      if (first.status === 0) break;
    }
    assert.deepEqual([first!.status, first!.stdout.toString()], [0, "riscv64\n"], `${first?.stderr}\n${diag()}`);

    const ls = await ringvisor(["ls", "--json"]);
    const [vm] = JSON.parse(ls.stdout.toString()) as { name: string; state: string; pid: number; memMiB: number; agent: boolean }[];
    assert.deepEqual([vm!.name, vm!.state, vm!.pid, vm!.memMiB, vm!.agent], ["web", "running", run.pid, 256, true]);

    const twice = await ringvisor(["run", "--name", "web"]);
    assert.deepEqual([twice.status, twice.stderr.trim()], [2, `ringvisor: a VM named 'web' is already running (its control socket is ${join(runtime, "ringvisor", "web.sock")}); give this one another name`]);

    // stdout, stderr and the exit status become exec's own; options after the command are its.
    const e = await ringvisor(["exec", "web", "sh", "-c", "echo to-out; ls -d /proc; echo to-err >&2; exit 7"]);
    assert.deepEqual([e.status, e.stdout.toString(), e.stderr], [7, "to-out\n/proc\n", "to-err\n"]);
    const input = Buffer.alloc(1 << 20);
    for (let i = 0; i < input.length; i++) input[i] = (i * 7919) & 255;
    const sum = await ringvisor(["exec", "--stdin", "web", "--", "sha256sum"], input);
    assert.equal(sum.stdout.toString(), `${createHash("sha256").update(input).digest("hex")}  -\n`, "1 MiB of stdin arrives intact");
    // Output arrives as the command makes it, not only at its end.
    const slow = spawn(process.execPath, [CLI, "exec", "web", "--", "sh", "-c", "echo first; sleep 4; echo second"], { env, stdio: ["ignore", "pipe", "pipe"] });
    const t0 = performance.now();
    let firstAt = 0;
    let slowOut = "";
    slow.stdout.on("data", (d: Buffer) => { slowOut += d.toString(); if (!firstAt && slowOut.includes("first")) firstAt = performance.now(); });
    const slowStatus = await new Promise<number | null>((r) => slow.once("exit", (code) => r(code)));
    const endAt = performance.now();
    assert.deepEqual([slowStatus, slowOut], [0, "first\nsecond\n"]);
    assert.ok(firstAt > 0 && endAt - firstAt > 2500, `"first" came ${((firstAt - t0) / 1000).toFixed(1)} s in, the end ${((endAt - t0) / 1000).toFixed(1)} s in`);
    const missing = await ringvisor(["exec", "web", "--", "no-such-command"]);
    assert.equal(missing.status, 127);

    // A forward added while the VM runs reaches busybox httpd in the guest, and goes when removed.
    const up = await ringvisor(["exec", "web", "--", "sh", "-c", "mkdir -p /tmp/www && echo served-by-the-guest > /tmp/www/index.html && httpd -p 8080 -h /tmp/www"]);
    assert.equal(up.status, 0, up.stderr);
    const port = await freePort();
    const fwd = await ringvisor(["forward", "web", `${port}:8080`]);
    assert.deepEqual([fwd.status, fwd.stdout.toString()], [0, `127.0.0.1:${port} -> web:8080\n`], fwd.stderr);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await page.text(), "served-by-the-guest\n");
    const rm = await ringvisor(["forward", "web", "--remove", String(port)]);
    assert.deepEqual([rm.status, rm.stdout.toString()], [0, ""], rm.stderr);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`), "nothing listens once the forward is removed");
    assert.ok(!consoleText.includes("served-by-the-guest"), "nothing went through the console");

    const stop = await ringvisor(["stop", "web"]);
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal(await ended, 130, diag());
    assert.match(stderr, /stopped by `ringvisor stop`/);
    assert.equal(existsSync(join(runtime, "ringvisor", "web.sock")), false, "the socket goes with the VM");
    const gone = await ringvisor(["exec", "web", "--", "true"]);
    assert.deepEqual([gone.status, gone.stderr], [2, "ringvisor: no VM named 'web' is running (`ringvisor ls` lists the VMs that run)\n"]);
  } finally {
    run.kill("SIGKILL");
  }
});
