// Runs end late on a real host: a physical CPU stops a vCPU only between chunks of guest
// instructions (a few hundred thousand, a millisecond or two), and the host's main thread sees
// it handed back later still. The credit scheduler must hold shares and caps anyway: what a run
// overran is charged, not forgiven. (test/system/sched.test.ts measures the same on real
// physical CPUs; this is the policy alone, under a simulated clock.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { CreditScheduler, type SchedVcpu } from "../../src/vmm/sched.js";

// Every vCPU always wants the CPU; each run ends `overrunUs` after the time it was given.
function simulate(s: CreditScheduler, seconds: number, all: SchedVcpu[], overrunUs: number): void {
  const end = seconds * 1e6;
  let now = 0;
  for (const v of all) s.wake(v, now);
  while (now < end) {
    const pick = s.pick(0, now);
    if (!pick) {
      now += 100;
      continue;
    }
    const t = pick.untilUs + overrunUs;
    s.ran(pick.vcpu, t, t - now, true);
    now = t;
  }
}

const share = (v: SchedVcpu, us: number): number => (100 * v.stats.runUs) / us;

test("a cap of 25% holds when every run overruns its allowance", () => {
  for (const overrun of [500, 1500, 3000]) {
    const s = new CreditScheduler({ pcpus: 1 });
    const c = s.addVm("c", { vcpus: 1, weight: 256, cap: 25, dedicated: false });
    simulate(s, 10, c.vcpus, overrun);
    const got = share(c.vcpus[0]!, 10e6);
    assert.ok(Math.abs(got - 25) < 1, `alone, overrunning by ${overrun} us: ${got.toFixed(1)}%`);
  }
});

test("a capped VM that overruns does not take more beside an uncapped one", () => {
  const s = new CreditScheduler({ pcpus: 1 });
  const c = s.addVm("c", { vcpus: 1, weight: 512, cap: 25, dedicated: false });
  const o = s.addVm("o", { vcpus: 1, weight: 256, cap: 0, dedicated: false });
  // Late by as much as runs were measured to be on a busy 2-core host.
  simulate(s, 10, [c.vcpus[0]!, o.vcpus[0]!], 5000);
  const got = share(c.vcpus[0]!, 10e6);
  assert.ok(Math.abs(got - 25) < 1, `capped: ${got.toFixed(1)}%`);
  assert.ok(share(o.vcpus[0]!, 10e6) > 73, `the uncapped VM takes the rest: ${share(o.vcpus[0]!, 10e6).toFixed(1)}%`);
});
