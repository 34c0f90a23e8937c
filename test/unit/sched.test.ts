// The credit scheduler's policy under a simulated clock: shares follow weights, caps hold, idle
// vCPUs cost nothing, boosted wake-ups run first, dedicated vCPUs keep their physical CPU.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CreditScheduler, SchedError, type SchedVcpu } from "../../src/vmm/sched.js";

// Runs every pCPU for `seconds` of simulated time. `wants(v, now)` says whether a vCPU wants the
// CPU at that moment; a vCPU that stops wanting it mid-run blocks at that point.
function simulate(s: CreditScheduler, seconds: number, wants: (v: SchedVcpu, now: number) => boolean, all: SchedVcpu[], fromUs = 0): void {
  const end = fromUs + seconds * 1e6;
  const free = new Array<number>(s.pcpus).fill(fromUs); // when each pCPU is next free
  let now = fromUs;
  while (now < end) {
    for (const v of all) {
      if (!v.running && !v.runnable && wants(v, now)) s.wake(v, now);
      if (!v.running && v.runnable && !wants(v, now)) s.block(v, now);
    }
    for (let p = 0; p < s.pcpus; p++) {
      if (free[p]! > now) continue;
      const pick = s.pick(p, now);
      if (!pick) { free[p] = now + 100; continue; }
      // Runs until its slice ends or it stops wanting the CPU, in 100 us steps.
      let t = now;
      while (t < pick.untilUs && wants(pick.vcpu, t)) t += 100;
      s.ran(pick.vcpu, t, t - now, wants(pick.vcpu, t));
      free[p] = t;
    }
    now = Math.min(...free);
  }
}

const share = (v: { stats: { runUs: number } }[], total: number): number => (100 * v.reduce((a, x) => a + x.stats.runUs, 0)) / total;

test("weights 256:512 on one physical CPU get 1:2 of it", () => {
  const s = new CreditScheduler({ pcpus: 1 });
  const a = s.addVm("a", { vcpus: 1, weight: 256, cap: 0, dedicated: false });
  const b = s.addVm("b", { vcpus: 1, weight: 512, cap: 0, dedicated: false });
  const all = [...a.vcpus, ...b.vcpus];
  simulate(s, 20, () => true, all);
  const total = 20e6;
  assert.ok(Math.abs(share(a.vcpus, total) - 100 / 3) < 2, `a got ${share(a.vcpus, total).toFixed(1)}%`);
  assert.ok(Math.abs(share(b.vcpus, total) - 200 / 3) < 2, `b got ${share(b.vcpus, total).toFixed(1)}%`);
  assert.ok(a.vcpus[0]!.stats.waitUs > 10e6, "a waited while b ran: steal time is counted");
});

test("a cap of 25% holds even when the CPU is otherwise idle; uncapped work fills the rest", () => {
  const s = new CreditScheduler({ pcpus: 1 });
  const c = s.addVm("c", { vcpus: 1, weight: 256, cap: 25, dedicated: false });
  simulate(s, 10, () => true, c.vcpus);
  assert.ok(Math.abs(share(c.vcpus, 10e6) - 25) < 2, `alone, capped at 25%: got ${share(c.vcpus, 10e6).toFixed(1)}%`);

  const s2 = new CreditScheduler({ pcpus: 1 });
  const c2 = s2.addVm("c", { vcpus: 1, weight: 65535, cap: 25, dedicated: false });
  const d = s2.addVm("d", { vcpus: 1, weight: 1, cap: 0, dedicated: false });
  simulate(s2, 10, () => true, [...c2.vcpus, ...d.vcpus]);
  assert.ok(Math.abs(share(c2.vcpus, 10e6) - 25) < 2, `a heavy weight does not beat the cap: ${share(c2.vcpus, 10e6).toFixed(1)}%`);
  assert.ok(share(d.vcpus, 10e6) > 70, `work-conserving: the rest goes to d (${share(d.vcpus, 10e6).toFixed(1)}%)`);
});

test("an idle VM costs nothing and a busy one gets all the CPU", () => {
  const s = new CreditScheduler({ pcpus: 2 });
  const idle = s.addVm("idle", { vcpus: 2, weight: 256, cap: 0, dedicated: false });
  const busy = s.addVm("busy", { vcpus: 2, weight: 256, cap: 0, dedicated: false });
  simulate(s, 5, (v) => v.vm === busy, [...idle.vcpus, ...busy.vcpus]);
  assert.equal(share(idle.vcpus, 10e6), 0);
  assert.ok(share(busy.vcpus, 10e6) > 99, `busy: ${share(busy.vcpus, 10e6).toFixed(1)}% of both CPUs`);
});

test("a vCPU woken by an event runs before the busy ones and may preempt them", () => {
  const s = new CreditScheduler({ pcpus: 1 });
  const hog = s.addVm("hog", { vcpus: 1, weight: 256, cap: 0, dedicated: false });
  const shell = s.addVm("shell", { vcpus: 1, weight: 256, cap: 0, dedicated: false });
  const h = hog.vcpus[0]!;
  const sh = shell.vcpus[0]!;
  s.wake(h, 0);
  const first = s.pick(0, 0)!;
  assert.equal(first.vcpu, h);
  s.wake(sh, 500, true);
  assert.equal(sh.priority, "boost");
  assert.ok(s.shouldPreempt(h), "the hog is asked to stop for the boosted shell");
  s.ran(h, 600, 600, true);
  const next = s.pick(0, 600)!;
  assert.equal(next.vcpu, sh);
  assert.ok(next.untilUs - 600 <= 2_000, "a boosted run is short");
});

test("dedicated vCPUs own their physical CPUs; a request that cannot be met is refused", () => {
  const s = new CreditScheduler({ pcpus: 3 });
  const d = s.addVm("d", { vcpus: 2, weight: 256, cap: 0, dedicated: true });
  const o = s.addVm("o", { vcpus: 2, weight: 256, cap: 0, dedicated: false });
  assert.deepEqual(d.vcpus.map((v) => v.pinned).sort(), [1, 2]);
  assert.equal(s.sharedPcpus, 1);
  simulate(s, 2, () => true, [...d.vcpus, ...o.vcpus]);
  for (const v of d.vcpus) assert.ok(v.stats.runUs > 1.9e6 && v.stats.migrations === 0, `dedicated vCPU ran ${v.stats.runUs} us`);
  assert.ok(share(o.vcpus, 2e6) > 95 && share(o.vcpus, 2e6) < 101, "the others share the one shared CPU");
  assert.throws(() => s.addVm("e", { vcpus: 1, weight: 256, cap: 0, dedicated: true }), (e: unknown) => e instanceof SchedError && /3 physical CPUs, 2 already dedicated/.test((e as Error).message));
  s.removeVm("d");
  assert.equal(s.sharedPcpus, 3);
});

test("weight and cap change while running; bad values are refused", () => {
  const s = new CreditScheduler({ pcpus: 1 });
  const a = s.addVm("a", { vcpus: 1, weight: 256, cap: 0, dedicated: false });
  const b = s.addVm("b", { vcpus: 1, weight: 256, cap: 0, dedicated: false });
  simulate(s, 5, () => true, [...a.vcpus, ...b.vcpus]);
  const before = a.vcpus[0]!.stats.runUs;
  s.setWeight("a", 768);
  simulate(s, 5, () => true, [...a.vcpus, ...b.vcpus], 5e6);
  const got = (100 * (a.vcpus[0]!.stats.runUs - before)) / 5e6;
  assert.ok(Math.abs(got - 75) < 3, `after weight 768:256, a got ${got.toFixed(1)}%`);
  assert.throws(() => s.setWeight("a", 0), /1 to 65535/);
  assert.throws(() => s.setCap("a", -5), /whole percentage/);
  assert.throws(() => s.setWeight("zz", 5), /no VM zz/);
});
