// WFI under the hypervisor yields the physical CPU: a Debian guest booted in-process under
// trap-and-emulate that sleeps at its shell costs the host almost no CPU time until its timer is
// due, and the wait is visible in the VMM's counters.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Host } from "../../src/host/host.js";
import { DEFAULT_CMDLINE } from "../../src/cli/run.js";
import { BOOT_COMPLETE } from "../../src/host/images/initramfs.js";
import { defaultGuest } from "./guest.js";

const g = await defaultGuest();

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("a guest sleeping at its shell under trap-and-emulate leaves the host CPU idle", { skip: g.skip, timeout: 240_000 }, async () => {
  const guest = g.need();
  let out = "";
  const host = new Host();
  const vm = host.createVm({
    kernel: readFileSync(guest.kernel), initrd: readFileSync(guest.initrd), cmdline: DEFAULT_CMDLINE,
    memBytes: 256 << 20, cpus: 1, virt: "trap-and-emulate",
    console: (b: Uint8Array) => { out += Buffer.from(b).toString("latin1"); },
  });
  host.start(vm);
  const done = vm.finished;
  await until("the shell", () => out.includes(BOOT_COMPLETE) && out.includes("# ") && vm.idleSince !== undefined, 200_000);

  const wfi0 = vm.stats().cpus[0]!.vmm!.wfi;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  vm.input(new TextEncoder().encode("sleep 3; echo slept-$((40+2))\n"));
  await until("the sleep to end", () => out.includes("slept-42"), 30_000);
  const wall = performance.now() - t0;
  const used = process.cpuUsage(cpu0);
  const cpuMs = (used.user + used.system) / 1000;
  const wfi = vm.stats().cpus[0]!.vmm!.wfi - wfi0;
  console.log(`sleep 3: ${wall.toFixed(0)} ms wall, ${cpuMs.toFixed(0)} ms CPU, ${wfi} guest WFIs`);

  assert.ok(wall >= 3000, `the guest slept its 3 s (${wall.toFixed(0)} ms)`);
  assert.ok(cpuMs < 0.25 * wall, `the host spent ${cpuMs.toFixed(0)} ms of CPU in ${wall.toFixed(0)} ms`);
  assert.ok(wfi > 10, `the guest kernel idled in WFI (${wfi} times), which the VMM emulated`);

  vm.input(new TextEncoder().encode("poweroff -f\n"));
  const r = await done;
  assert.equal(r.status, 0);
  host.destroy(vm);
  assert.equal(host.machine.mem.allocatedFrames, 0, "every frame came back");
});
