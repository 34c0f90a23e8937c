// An SMP guest on one and on two physical CPUs: tests/linux/smp.c, a static pthread program with
// a thread pinned to each CPU, run from the default guest's shell in a 2-vCPU VM on
// Host({ pcpus: 2 }) (each vCPU can have a physical CPU of its own) and on Host({ pcpus: 1 })
// (the two vCPUs take turns on one). Both must give the same answers: time read on one CPU and
// then on another never goes back (CLOCK_MONOTONIC through the vDSO, and the time CSR), and the
// parallel workload's result is right. The speedup is reported, not asserted: that belongs to a
// benchmark. Builds nothing: build/linux comes from tests/linux/build.sh (npm run build:programs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Host } from "../../src/host/host.js";
import { DEFAULT_CMDLINE } from "../../src/cli/run.js";
import { writeNewc } from "../../src/host/images/cpio.js";
import type { VirtMode } from "../../src/vm/vm.js";
import { ROOT } from "../helpers.js";
import { defaultGuest } from "./guest.js";
import { GuestConsole, command, shell } from "./console.js";

const g = await defaultGuest();
const PROGRAM = join(ROOT, "build/linux/smp");
const CPUS = 2;
// What the workload must find (tests/linux/smp.c): the primes below 1 500 000.
const PRIME_LIMIT = 1_500_000;
const PRIMES = 114_155;

// The program's hash: splitmix64 of every number below the limit, summed mod 2^64.
function expectedHash(): string {
  const M = (1n << 64n) - 1n;
  let sum = 0n;
  for (let n = 0n; n < BigInt(PRIME_LIMIT); n++) {
    let x = (n + 0x9e3779b97f4a7c15n) & M;
    x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & M;
    sum = (sum + (x ^ (x >> 31n))) & M;
  }
  return sum.toString(16).padStart(16, "0");
}

// The default initramfs with /bin/smp added (as userland.test.ts adds its program).
function initrd(): Uint8Array {
  assert.ok(existsSync(PROGRAM), `${PROGRAM} was not built (npm run build:programs)`);
  const extra = writeNewc([{ path: "bin/smp", type: "file", perm: 0o755, data: readFileSync(PROGRAM) }]);
  return Buffer.concat([readFileSync(g.need().initrd), gzipSync(extra)]);
}

interface Report {
  fields: Map<string, string>;
  text: string;
}

function num(r: Report, key: string): number {
  const v = r.fields.get(key);
  assert.ok(v !== undefined && /^\d+$/.test(v), `${key}: ${v}\n${r.text}`);
  return Number(v);
}

// Boots a 2-vCPU guest on a host with `pcpus` physical CPUs, runs the program, powers off.
async function runOn(pcpus: number, virt: VirtMode, kernel: Uint8Array, rd: Uint8Array): Promise<Report & { seconds: number }> {
  const host = new Host({ pcpus });
  try {
    const con = new GuestConsole();
    const vm = host.createVm({ name: `smp-on-${pcpus}`, kernel, initrd: rd, cmdline: DEFAULT_CMDLINE, memBytes: 256 << 20, cpus: CPUS, virt, console: con.sink });
    const t0 = performance.now();
    host.start(vm);
    await shell(vm, con, 150_000);
    const text = await command(vm, con, "smp", 120_000);
    const seconds = (performance.now() - t0) / 1000;
    assert.match(text, /^smp: done$/m, `the program ran to its end:\n${text}`);
    const unhandled = await command(vm, con, "dmesg | grep -c 'unhandled signal'", 30_000);
    assert.equal(unhandled.trim(), "0", "no process died of a signal");
    vm.input(new TextEncoder().encode("poweroff -f\n"));
    const r = await vm.finished;
    assert.equal(r.status, 0, `clean poweroff: ${r.reason}`);
    await host.destroy(vm);
    assert.equal(host.machine.mem.allocatedFrames, 0, "every frame came back");
    const fields = new Map([...text.matchAll(/^([a-z0-9 ]+): (.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    return { fields, text, seconds };
  } finally {
    await host.close();
  }
}

// What the program must report wherever it runs.
function check(r: Report, where: string): void {
  assert.equal(num(r, "cpus"), CPUS, `${where}: the program sees ${CPUS} CPUs`);
  for (let c = 0; c < CPUS; c++) {
    assert.equal(r.fields.get(`clock ${c} pinned`), "yes", `${where}: the clock thread of CPU ${c} ran there throughout`);
    assert.ok(num(r, `clock ${c} reads`) > 1000, `${where}: CPU ${c} read the clocks`);
    // The check means something only if each CPU saw times the other had published.
    assert.ok(num(r, `clock ${c} monotonic from others`) > 0, `${where}: CPU ${c} saw CLOCK_MONOTONIC values published by another CPU`);
    assert.ok(num(r, `clock ${c} rdtime from others`) > 0, `${where}: CPU ${c} saw time CSR values published by another CPU`);
    assert.equal(num(r, `clock ${c} monotonic backwards`), 0,
      `${where}: CLOCK_MONOTONIC on CPU ${c} went back behind another CPU's (worst ${r.fields.get(`clock ${c} monotonic worst ns`)} ns)`);
    assert.equal(num(r, `clock ${c} rdtime backwards`), 0,
      `${where}: the time CSR on CPU ${c} went back behind another CPU's (worst ${r.fields.get(`clock ${c} rdtime worst ticks`)} ticks of 100 ns)`);
  }
  assert.equal(num(r, "clock backwards"), 0, where);
  for (const n of [1, CPUS]) {
    assert.equal(r.fields.get(`work ${n} pinned`), "yes", `${where}: the ${n}-thread workload's threads were pinned`);
    assert.equal(num(r, `work ${n} primes`), PRIMES, `${where}: ${n} thread(s) found the ${PRIMES} primes below ${PRIME_LIMIT}`);
  }
  const blocks = r.fields.get(`work ${CPUS} blocks`)!.trim().split(/\s+/).map(Number);
  assert.ok(blocks.length === CPUS && blocks.every((b) => b > 0), `${where}: every thread of the parallel run did some of the work (${blocks.join(" ")} blocks)`);
}

// Under the hypervisor on 2 and on 1 physical CPUs, and natively on 2 (where the guest kernel
// reads the time CSR on the hart itself).
const RUNS: { pcpus: number; virt: VirtMode }[] = [
  { pcpus: 2, virt: "trap-and-emulate" },
  { pcpus: 1, virt: "trap-and-emulate" },
  { pcpus: 2, virt: "native" },
];

test("a pthread program in a 2-vCPU guest: time never goes back across CPUs and the parallel result is the same on 2 and on 1 physical CPUs", { skip: g.skip, timeout: 420_000 }, async () => {
  const d = g.need();
  const kernel = readFileSync(d.kernel);
  const rd = initrd();
  const hash = expectedHash();
  const reports = new Map<string, Report & { seconds: number }>();
  for (const { pcpus, virt } of RUNS) {
    const where = `--virt ${virt} on ${pcpus} physical CPU${pcpus > 1 ? "s" : ""}`;
    const r = await runOn(pcpus, virt, kernel, rd);
    reports.set(`${virt} ${pcpus}`, r);
    const f = (k: string): string => r.fields.get(k) ?? "?";
    const ns = (n: number): number => num(r, `work ${n} ns`);
    console.log(`${where} (${r.seconds.toFixed(1)} s in all): clock reads ${f("clock 0 reads")} + ${f("clock 1 reads")}, ` +
      `seen from the other CPU ${f("clock 0 rdtime from others")} + ${f("clock 1 rdtime from others")} times, backwards ${f("clock backwards")}; ` +
      `workload 1 thread ${(ns(1) / 1e9).toFixed(2)} s, ${CPUS} threads ${(ns(CPUS) / 1e9).toFixed(2)} s (speedup ${(ns(1) / ns(CPUS)).toFixed(2)}x, blocks ${f(`work ${CPUS} blocks`)})`);
    check(r, where);
    for (const n of [1, CPUS]) assert.equal(r.fields.get(`work ${n} hash`), hash, `${where}, ${n} thread(s): the hash of every number`);
  }
  const two = reports.get("trap-and-emulate 2")!;
  const one = reports.get("trap-and-emulate 1")!;
  const par = (r: Report): number => num(r, `work ${CPUS} ns`);
  console.log(`${CPUS}-thread workload under the hypervisor: ${(par(one) / 1e9).toFixed(2)} s on 1 physical CPU, ${(par(two) / 1e9).toFixed(2)} s on 2: speedup ${(par(one) / par(two)).toFixed(2)}x`);
});
