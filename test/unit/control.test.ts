// The control socket (src/host/control.ts) without a guest: one VM per name on a machine, a
// socket left by a dead process replaced, a directory another user could have planted refused,
// the socket only its user's, hostile requests answered with errors while the VM keeps serving,
// and port forwards added and removed on a live NAT. `ringvisor exec` and `forward` against a
// real guest are in test/system/control.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createConnection, createServer } from "node:net";
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, chownSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlServer, control, listVms, socketPath } from "../../src/host/control.js";
import { Nat } from "../../src/host/net/nat.js";
import type { Vm } from "../../src/vm/vm.js";
import { CLI, freePort } from "../helpers.js";

const base = mkdtempSync(join(tmpdir(), "ringvisor-control-"));
process.on("exit", () => rmSync(base, { recursive: true, force: true }));
let n = 0;
const runtime = (): NodeJS.ProcessEnv => ({ XDG_RUNTIME_DIR: join(base, `r${n++}`) });

// The command line, run without blocking this process: it serves the sockets the CLI talks to.
function ringvisor(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (e, stdout, stderr) => {
      resolve({ status: e ? ((e as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

// What the control socket reads of a VM: its state, size and mode, whether it has a vsock, and stop().
function fakeVm(shape: { vcpus: number; memMiB: number; virt: string } = { vcpus: 1, memMiB: 128, virt: "trap-and-emulate" }): Vm & { stops: string[] } {
  const v = {
    name: "fake", state: "running", vsock: undefined, vcpus: new Array(shape.vcpus).fill(null), memoryBytes: shape.memMiB * 2 ** 20, virt: shape.virt,
    stops: [] as string[], stop(_s: number, why: string) { v.stops.push(why); v.state = "stopped"; },
  };
  return v as unknown as Vm & { stops: string[] };
}

async function raw(path: string, data: string | Buffer, end = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    const chunks: Buffer[] = [];
    s.on("connect", () => (end ? s.end(data) : s.write(data)));
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("close", () => resolve(Buffer.concat(chunks).toString()));
    s.on("error", reject);
  });
}

test("one VM per name: a live name is refused, a dead process's socket is replaced, the socket is its user's alone", async () => {
  const env = runtime();
  const a = await ControlServer.open("web", env);
  try {
    a.serve({ vm: fakeVm({ vcpus: 2, memMiB: 256, virt: "bt" }) });
    assert.equal(statSync(a.path).mode & 0o777, 0o600);
    assert.equal(statSync(join(env.XDG_RUNTIME_DIR!, "ringvisor")).mode & 0o777, 0o700);
    await assert.rejects(ControlServer.open("web", env), /a VM named 'web' is already running/);
    const vms = await listVms(env);
    assert.deepEqual(vms.map((v) => [v.name, v.state, v.vcpus, v.memMiB, v.virt, v.pid, v.agent]), [["web", "running", 2, 256, "bt", process.pid, false]]);
  } finally {
    a.close();
  }
  assert.equal(existsSync(a.path), false, "the socket goes with its VM");

  // The socket of a process killed with SIGKILL stays behind with nobody listening: the name is free.
  const path = socketPath("db", env);
  const child = spawn(process.execPath, ["-e", "require('net').createServer().listen(process.argv[1], () => console.log('up'))", path], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((r) => child.stdout.once("data", () => r()));
  await assert.rejects(ControlServer.open("db", env), /a VM named 'db' is already running/, "while that process lives, the name is its");
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  assert.equal(existsSync(path), true, "a dead socket is left behind");
  assert.deepEqual(await listVms(env), [], "a dead socket is not a running VM");
  const b = await ControlServer.open("db", env);
  b.serve({ vm: fakeVm({ vcpus: 1, memMiB: 128, virt: "native" }) });
  assert.equal((await listVms(env)).length, 1);
  b.close();

  await assert.rejects(ControlServer.open("../etc", env), /is not a VM name/);
  await assert.rejects(control("Bad/Name", { op: "status" }, env), /is not a VM name/);
  await assert.rejects(control("nobody", { op: "status" }, env), /no VM named 'nobody' is running/);
});

test("a control directory that is a link, or another user's, is refused", async (t) => {
  const env = runtime();
  const target = join(base, "elsewhere");
  mkdirSync(target, { mode: 0o700 });
  mkdirSync(env.XDG_RUNTIME_DIR!);
  symlinkSync(target, join(env.XDG_RUNTIME_DIR!, "ringvisor"));
  await assert.rejects(ControlServer.open("web", env), /is not a directory \(a link or a file is in its place\)/);
  if (process.getuid?.() !== 0) return t.skip("changing a directory's owner needs root");
  const env2 = runtime();
  const dir = join(env2.XDG_RUNTIME_DIR!, "ringvisor");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownSync(dir, 65534, 65534);
  await assert.rejects(ControlServer.open("web", env2), /belongs to user 65534, not to you/);
});

test("hostile requests get errors, and the VM still answers; stop is answered, then the VM stops", async () => {
  const env = runtime();
  const s = await ControlServer.open("web", env);
  const vm = fakeVm();
  try {
    s.serve({ vm });
    const answer = async (line: string | Buffer): Promise<{ ok: boolean; error?: string }> => JSON.parse(await raw(s.path, line)) as { ok: boolean; error?: string };
    assert.deepEqual(await answer("not json\n"), { ok: false, error: "the request is not JSON" });
    assert.match((await answer('{"op":"format-disk"}\n')).error!, /not a request this VM understands/);
    assert.match((await answer('{"op":"exec","argv":[]}\n')).error!, /not a request/);
    assert.match((await answer('{"op":"forward","hostPort":0,"guestPort":99999}\n')).error!, /not a request/);
    assert.match((await answer('{"op":"status","extra":1}\n')).error!, /not a request/);
    assert.match((await answer('[1,2,3]\n')).error!, /not a request/);
    assert.match((await answer(Buffer.concat([Buffer.from('{"op":"exec","argv":["x"],"stdin":"'), Buffer.alloc(96 << 20, 0x41)]))).error!, /request longer than/);
    assert.equal(await raw(s.path, ""), "", "a client that sends nothing and leaves gets nothing");
    assert.match((await control("web", { op: "exec", argv: ["true"] }, env).catch((e: Error) => e.message)) as string, /has no vsock device, so no guest agent/);
    assert.match((await control("web", { op: "forward", hostPort: 2222, guestPort: 22 }, env).catch((e: Error) => e.message)) as string, /has no NAT network card/);
    assert.equal(((await control("web", { op: "status" }, env)).status as { state: string }).state, "running", "still serving");
    await control("web", { op: "stop" }, env);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(vm.stops, ["stopped by `ringvisor stop`"]);
    assert.match((await control("web", { op: "exec", argv: ["true"] }, env).catch((e: Error) => e.message)) as string, /is stopped, not running/);
  } finally {
    s.close();
  }
});

test("port forwards added and removed on a running VM's NAT; a port in use is refused", async () => {
  const env = runtime();
  const s = await ControlServer.open("web", env);
  const nat = new Nat();
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
  const busyPort = (busy.address() as { port: number }).port;
  try {
    s.serve({ vm: fakeVm({ vcpus: 1, memMiB: 128, virt: "trap-and-emulate" }), nat });
    const free = await freePort();
    const added = await control("web", { op: "forward", hostPort: free, guestPort: 80 }, env);
    assert.deepEqual(added.forwards, [{ hostPort: free, guestPort: 80 }]);
    // Something listens there now: the NAT.
    await new Promise<void>((resolve, reject) => { const c = createConnection(free, "127.0.0.1"); c.on("connect", () => { c.destroy(); resolve(); }); c.on("error", reject); });
    await assert.rejects(control("web", { op: "forward", hostPort: free, guestPort: 81 }, env), /host port \d+ is already forwarded/);
    await assert.rejects(control("web", { op: "forward", hostPort: busyPort, guestPort: 81 }, env), /cannot forward host port \d+: it is in use/);
    assert.deepEqual((await listVms(env))[0]!.forwards, [{ hostPort: free, guestPort: 80 }]);
    assert.deepEqual((await control("web", { op: "unforward", hostPort: free }, env)).forwards, []);
    await assert.rejects(control("web", { op: "unforward", hostPort: free }, env), /has no forward from host port/);

    // The same through the command line.
    const r = await ringvisor(["forward", "web", `${free}:8080`], env);
    assert.deepEqual([r.status, r.stdout, r.stderr], [0, `127.0.0.1:${free} -> web:8080\n`, ""]);
    const ls = await ringvisor(["ls"], env);
    assert.match(ls.stdout, new RegExp(`^NAME +STATE +VCPUS +MEMORY +VIRT +PID +UP +FORWARDS\\nweb +running +1 +128 MiB +trap-and-emulate +${process.pid} +\\d+ s +${free}->8080\\n$`), ls.stdout);
    const bad = await ringvisor(["forward", "web", "22"], env);
    assert.deepEqual([bad.status, bad.stderr], [2, "ringvisor: --forward 22: expected HOST_PORT:GUEST_PORT, each 1 to 65535 (e.g. 2222:22)\n"]);
    const none = await ringvisor(["exec", "db", "--", "true"], env);
    assert.deepEqual([none.status, none.stderr], [2, "ringvisor: no VM named 'db' is running (the VMs with control sockets are web; `ringvisor ls` lists those that run)\n"]);
  } finally {
    s.close();
    nat.close();
    busy.close();
  }
});
