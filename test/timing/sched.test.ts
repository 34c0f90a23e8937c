// The credit scheduler's correctness on a real host with ONE physical CPU, where every share is
// a share of the same thread: CPU-bound guests (tests/stress/spin.c, which counts forever and
// prints each round of its count) get CPU in proportion to their weights, a cap holds whether
// the CPU is otherwise idle or not, and a Debian guest idle at its shell costs almost nothing.
// Each share is measured twice: by the scheduler's own accounting (host.stats() runUs over an
// interval) and by what the guests themselves got done (the rounds each printed, the
// instructions each retired). The assertions are on ratios of shares, never on speeds.
// These tests live apart from test/system and run alone (npm run test:system runs this directory
// after the others, one file at a time): a test booting guests beside them takes CPU from the
// very threads whose shares they measure.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Host } from "../../src/host/host.js";
import { DEFAULT_CMDLINE } from "../../src/cli/run.js";
import type { Vm, VmConfig } from "../../src/vm/vm.js";
import { defaultGuest } from "../system/guest.js";
import { GuestConsole, command, sample, shell, sleep, stressKernel, until, type Sample } from "../system/console.js";

const g = await defaultGuest();
const MiB = 1 << 20;
// Long enough that a share is a few hundred scheduling periods (10 ms) and a hundred or so of
// the spinners' rounds, short enough for the file to stay within a few minutes.
const INTERVAL_MS = 4000;
const WARMUP_MS = 500;
const TOLERANCE = 0.05; // percentage points of one physical CPU

// A spinning guest and the last round it printed.
class Spinner {
  readonly con = new GuestConsole();
  readonly vm: Vm;
  rounds = 0;
  private partial = "";

  constructor(host: Host, name: string, cfg: Partial<VmConfig> = {}) {
    this.con.onText = (s) => {
      const lines = (this.partial + s).split("\n");
      this.partial = lines.pop()!;
      for (const l of lines) {
        const m = /^spin (\d+)$/.exec(l);
        if (m) this.rounds = Number(m[1]);
      }
    };
    this.vm = host.createVm({ name, kernel: stressKernel("spin"), cmdline: "", memBytes: 32 * MiB, cpus: 1, virt: "trap-and-emulate", console: this.con.sink, ...cfg });
  }

  async started(): Promise<void> {
    await until(`${this.vm.name} to spin`, () => this.rounds >= 1, 30_000, () => this.con.tail(), this.vm);
  }
}

interface Share {
  cpu: number; // of one physical CPU, by the scheduler's accounting over the wall-clock interval
  rounds: number; // rounds the guest printed
  instructions: number;
  wallMs: number;
}

// Samples every guest at (nearly) the same moments, INTERVAL_MS apart.
async function measure(host: Host, vms: Vm[], rounds: () => number[]): Promise<Share[]> {
  await sleep(WARMUP_MS);
  const r0 = rounds();
  const s0: Sample[] = vms.map((vm) => sample(host, vm));
  await sleep(INTERVAL_MS);
  const s1: Sample[] = vms.map((vm) => sample(host, vm));
  const r1 = rounds();
  return vms.map((_, i) => {
    const wallMs = s1[i]!.atMs - s0[i]!.atMs;
    return {
      cpu: (s1[i]!.runUs - s0[i]!.runUs) / 1000 / wallMs,
      rounds: r1[i]! - r0[i]!,
      instructions: Number(s1[i]!.instructions - s0[i]!.instructions),
      wallMs,
    };
  });
}

// An idle guest's share is a few short runs a second, so one hiccup of the host (its main thread
// or a worker descheduled by the OS for a few milliseconds while the guest holds the physical
// CPU) is a large part of it: the share is the median of one-second intervals.
async function idleShare(host: Host, vm: Vm): Promise<{ median: number; each: number[] }> {
  await sleep(WARMUP_MS);
  const each: number[] = [];
  for (let i = 0; i < 5; i++) {
    const s0 = sample(host, vm);
    await sleep(1000);
    const s1 = sample(host, vm);
    each.push((s1.runUs - s0.runUs) / 1000 / (s1.atMs - s0.atMs));
  }
  return { median: [...each].sort((a, b) => a - b)[2]!, each };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function near(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= TOLERANCE, `${what}: ${pct(got)}, expected ${pct(want)} within ${TOLERANCE * 100} points`);
}

test("two CPU-bound guests with weights 256 and 512 on one physical CPU share it 1:2, and 2:1 once the weights are swapped while they run", { timeout: 90_000 }, async () => {
  const host = new Host({ pcpus: 1 });
  try {
    const a = new Spinner(host, "w256", { weight: 256 });
    const b = new Spinner(host, "w512", { weight: 512 });
    host.start(a.vm);
    host.start(b.vm);
    await Promise.all([a.started(), b.started()]);
    const [sa, sb] = await measure(host, [a.vm, b.vm], () => [a.rounds, b.rounds]);
    const cpu = sa!.cpu / (sa!.cpu + sb!.cpu);
    const rounds = sa!.rounds / (sa!.rounds + sb!.rounds);
    const instr = sa!.instructions / (sa!.instructions + sb!.instructions);
    console.log(`weights 256:512 over ${(sa!.wallMs / 1000).toFixed(1)} s: scheduler ${pct(sa!.cpu)} + ${pct(sb!.cpu)} of the CPU ` +
      `(the lighter's share ${pct(cpu)}); rounds ${sa!.rounds} : ${sb!.rounds} (${pct(rounds)}); instructions ${(sa!.instructions / 1e6).toFixed(0)}M : ` +
      `${(sb!.instructions / 1e6).toFixed(0)}M (${pct(instr)}); ${host.stats().vms.map((v) => `${v.name} ${v.sched[0]!.runs} runs, ${v.sched[0]!.preemptions} preemptions`).join(", ")}`);
    assert.ok(sa!.rounds > 20 && sb!.rounds > 20, "both guests made progress they reported");
    near(cpu, 1 / 3, "the weight-256 guest's share by the scheduler's accounting");
    near(rounds, 1 / 3, "its share of the rounds the guests counted");
    near(instr, 1 / 3, "its share of the instructions the guests retired");

    // Weights changed while both run: the shares follow.
    host.setScheduling(a.vm, { weight: 512 });
    host.setScheduling(b.vm, { weight: 256 });
    assert.throws(() => host.setScheduling(a.vm, { weight: 0 }), /1 to 65535/);
    assert.equal(a.vm.scheduling.weight, 512, "a refused change changes nothing");
    const [ta, tb] = await measure(host, [a.vm, b.vm], () => [a.rounds, b.rounds]);
    const swapped = ta!.cpu / (ta!.cpu + tb!.cpu);
    console.log(`weights swapped live to 512:256: ${pct(ta!.cpu)} + ${pct(tb!.cpu)} (the first guest's share ${pct(swapped)})`);
    near(swapped, 2 / 3, "the first guest's share once its weight is 512 and the other's 256");
    near(ta!.rounds / (ta!.rounds + tb!.rounds), 2 / 3, "its share of the rounds counted after the change");
  } finally {
    await host.close();
  }
});

test("a cap of 25% holds on an otherwise idle physical CPU and beside a CPU-bound guest", { timeout: 60_000 }, async () => {
  const host = new Host({ pcpus: 1 });
  try {
    // Weight alone would give the capped guest two thirds of the CPU beside the other.
    const capped = new Spinner(host, "cap25", { weight: 512, cap: 25 });
    host.start(capped.vm);
    await capped.started();
    const [alone] = await measure(host, [capped.vm], () => [capped.rounds]);

    const other = new Spinner(host, "uncapped", { weight: 256 });
    host.start(other.vm);
    await other.started();
    const busy0 = host.stats().pcpus[0]!.busyMs;
    const t0 = performance.now();
    const [c, o] = await measure(host, [capped.vm, other.vm], () => [capped.rounds, other.rounds]);
    const busy = (host.stats().pcpus[0]!.busyMs - busy0) / (performance.now() - t0);
    const rounds = c!.rounds / (c!.rounds + o!.rounds);
    const instr = c!.instructions / (c!.instructions + o!.instructions);
    console.log(`cap 25%: alone ${pct(alone!.cpu)} of the CPU (${alone!.rounds} rounds); beside an uncapped guest ${pct(c!.cpu)} against its ${pct(o!.cpu)}, ` +
      `rounds ${c!.rounds} : ${o!.rounds} (${pct(rounds)}), instructions ${pct(instr)}`);
    near(alone!.cpu, 0.25, "the capped guest alone, by the scheduler's accounting");
    near(c!.cpu, 0.25, "the capped guest beside another, by the scheduler's accounting");
    // Work-conserving: the physical CPU never sits idle while the uncapped guest wants it, and that
    // guest gets what the capped one may not take. Runs are charged the time they ran on the
    // physical CPU, so the hand-overs between runs are in neither guest's share.
    assert.ok(busy > 0.97, `the physical CPU was kept busy (${pct(busy)} of the interval)`);
    // What each is charged is the time its worker thread ran, which the OS may cut when the
    // machine is busy; the cap's three quarters left over must still go mostly to the other guest.
    assert.ok(o!.cpu > 2 * c!.cpu, `the uncapped guest takes the rest: ${pct(o!.cpu)} against the capped guest's ${pct(c!.cpu)}`);
    // Guest-visible: the two guests did the work in the proportion the scheduler accounted.
    const accounted = c!.cpu / (c!.cpu + o!.cpu);
    near(rounds, accounted, "the capped guest's share of the rounds counted, against its share of the CPU time");
    near(instr, accounted, "its share of the instructions retired, against its share of the CPU time");
  } finally {
    await host.close();
  }
});

test("a Debian guest idle at its shell costs under 1% of a physical CPU", { skip: g.skip, timeout: 180_000 }, async () => {
  const d = g.need();
  const host = new Host({ pcpus: 1 });
  try {
    const con = new GuestConsole();
    const cfg: VmConfig = {
      name: "idle", kernel: readFileSync(d.kernel), initrd: readFileSync(d.initrd), cmdline: DEFAULT_CMDLINE,
      memBytes: 128 * MiB, cpus: 1, virt: "trap-and-emulate", console: con.sink,
    };
    const vm = host.createVm(cfg);
    host.start(vm);
    await shell(vm, con, 120_000);
    // Alone, then beside a CPU-bound guest that would take any CPU time the idle one left.
    const alone = await idleShare(host, vm);
    const spin = new Spinner(host, "busy");
    host.start(spin.vm);
    await spin.started();
    const rounds0 = spin.rounds;
    const b0 = sample(host, spin.vm);
    const beside = await idleShare(host, vm);
    const b1 = sample(host, spin.vm);
    const busy = (b1.runUs - b0.runUs) / 1000 / (b1.atMs - b0.atMs);
    const st = host.stats().vms.find((v) => v.name === "idle")!.sched[0]!;
    const list = (x: { each: number[] }): string => x.each.map(pct).join(" ");
    console.log(`idle Debian guest: ${pct(alone.median)} of the CPU alone (median of ${list(alone)}), ${pct(beside.median)} beside a busy guest ` +
      `(median of ${list(beside)}; the busy guest got ${pct(busy)}); ${st.runs} runs, ${st.boosts} boosts in all`);
    assert.ok(alone.median < 0.01, `idle alone: ${pct(alone.median)} of the CPU`);
    assert.ok(beside.median < 0.01, `idle beside a busy guest: ${pct(beside.median)} of the CPU`);
    assert.ok(spin.rounds > rounds0, "the busy guest ran meanwhile");
    // Its few wake-ups are boosted: it still answers at once beside the busy guest.
    assert.equal((await command(vm, con, "echo awake-$((3*5))", 30_000)).trim(), "awake-15");
    vm.input(new TextEncoder().encode("poweroff -f\n"));
    assert.equal((await vm.finished).status, 0);
  } finally {
    await host.close();
  }
});
