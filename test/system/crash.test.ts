// A physical CPU (a worker thread) that dies takes down only the vCPU it was running: that VM is
// reported crashed with the reason, the VM on the other physical CPU keeps running, the host
// replaces the worker, and a VM started afterwards runs on it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Host } from "../../src/host/host.js";
import { ROOT } from "../helpers.js";

const SPIN = join(ROOT, "build/stress/spin.elf");

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("a worker that dies crashes only the VM it was running; the host replaces it", { skip: !existsSync(SPIN) && "build/stress/spin.elf not built (tests/stress/build.sh)", timeout: 120_000 }, async () => {
  const host = new Host({ pcpus: 2, machineBytes: 512 << 20 });
  const out = new Map<string, string>();
  const make = (name: string) => {
    out.set(name, "");
    return host.createVm({ name, kernel: readFileSync(SPIN), cmdline: "", memBytes: 16 << 20, cpus: 1, virt: "trap-and-emulate",
      console: (b) => { out.set(name, out.get(name)! + Buffer.from(b).toString("latin1")); } });
  };
  const a = make("a");
  const b = make("b");
  host.start(a);
  host.start(b);
  const rounds = (name: string): number => (out.get(name)!.match(/^spin \d+$/gm) ?? []).length;
  await until("both guests spinning on their own physical CPUs", () => a.vcpus[0]!.held && b.vcpus[0]!.held && rounds("a") > 0 && rounds("b") > 0, 60_000);

  // Kill one of the two workers: whichever VM it was running crashes, the other must not notice.
  const runsBefore = host.pcpus.map((p) => p.runs);
  host.pcpus[0]!.terminate();
  const first = await Promise.race([a.finished, b.finished]);
  assert.match(first.reason, /^crashed: physical CPU 0 \(a worker thread\) died/);
  assert.equal(first.status, 71);
  const survivor = a.state === "running" ? a : b;
  assert.notEqual(survivor.state, "stopped", "only one VM crashed");
  const before = rounds(survivor.name);
  await until("the other VM to keep spinning", () => rounds(survivor.name) > before + 2, 30_000);
  assert.equal(survivor.state, "running");

  // The host still has two working physical CPUs: a new VM runs beside the survivor.
  const c = make("c");
  host.start(c);
  await until("a VM started after the crash to run", () => rounds("c") > 2, 30_000);
  assert.ok(host.pcpus.every((p, i) => p.runs >= runsBefore[i]!), "both physical CPUs still take orders");
  await host.close();
  assert.equal(host.machine.mem.allocatedFrames, 0, "every frame came back, the crashed VM's too");
});
