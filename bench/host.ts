// npm run bench:host: what one Host does with several VMs, in-process (src/host/host.ts), each
// figure printed with its target and whether it is met, each measured in this run:
//  1. scaling: aggregate guest MIPS of two CPU-bound VMs (bench/programs/spin.c) on one physical
//     CPU and on two; ratio (target >= 1.8);
//  2. SMP: two busybox shell loops in the background in one 2-vCPU Debian guest on two physical
//     CPUs against the same work in a 1-vCPU guest, timed by the host between console markers;
//     speedup (target >= 1.7);
//  3. scheduler share: two CPU-bound VMs of weights 256 and 512 on one physical CPU, each one's
//     share of the run time by the scheduler's accounting (runUs) against 1/3 and 2/3, and a VM
//     capped at 25% (alone, then beside an uncapped one) against 25% of the physical CPU; worst
//     error (target <= 2 percentage points);
//  4. wake-up latency: one character typed at an idle Debian guest's shell until its echo comes
//     back on the console, with the host otherwise idle and beside a CPU-bound VM on the same
//     physical CPU (the BOOST path); median and p90 (target median <= 5 ms);
//  5. density: idle Debian guests booted a few at a time into a 4 GiB machine until the next does
//     not fit or one fails to answer `echo` within 1 s; the count (goal >= 48) and the machine
//     memory each costs beyond its RAM once idle for more than 6 s (target <= 2 MiB);
//  6. single-VM speed: one boot of the default guest to its shell marker (bench:boot and
//     bench:virt are the full single-VM figures; this short one shows a regression here).
// Absolute figures move with the machine's neighbours, so each measurement interval also prints
// how many cores other processes used meanwhile (from /proc/stat, minus this process's own time).
//
// BENCH_QUICK=1 shortens every phase (a smoke run that still prints every figure);
// BENCH_PHASES=1,3 runs only those; BENCH_INTERVAL_S, BENCH_WARMUP_S, BENCH_SMP_ITERS,
// BENCH_SMP_ROUNDS, BENCH_WAKE_SAMPLES, BENCH_DENSITY_MAX, BENCH_DENSITY_TIMEOUT_S,
// BENCH_DENSITY_MIB and BENCH_BOOT_TIMEOUT_S override single settings.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Host, estimateFrames } from "../src/host/host.js";
import type { Vm, VmConfig } from "../src/vm/vm.js";
import { OutOfMachineMemory } from "../src/machine/memory.js";
import { DEFAULT_CMDLINE } from "../src/cli/run.js";
import { BOOT_COMPLETE } from "../src/host/images/initramfs.js";
import { ensureDefaultGuest, type DefaultGuest } from "../src/host/images/pull.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const OUT = join(ROOT, "build/bench/host");
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const QUICK = process.env.BENCH_QUICK === "1";

function setting(name: string, full: number, quick: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return QUICK ? quick : full;
  const v = Number(raw);
  if (!(v > 0)) {
    process.stderr.write(`bench:host: ${name} must be a positive number (got '${raw}')\n`);
    process.exit(2);
  }
  return v;
}

const INTERVAL_MS = setting("BENCH_INTERVAL_S", 5, 1.5) * 1000;
const WARMUP_MS = setting("BENCH_WARMUP_S", 1, 0.5) * 1000;
// Iterations of each of the two shell loops: an ash iteration retires about 15,000 guest
// instructions, so 30,000 is about 2 s of one vCPU at full speed.
const SMP_ITERS = Math.round(setting("BENCH_SMP_ITERS", 30_000, 5_000));
const SMP_ROUNDS = Math.round(setting("BENCH_SMP_ROUNDS", 2, 1));
const WAKE_SAMPLES = Math.round(setting("BENCH_WAKE_SAMPLES", 30, 8));
const DENSITY_MAX = setting("BENCH_DENSITY_MAX", Infinity, 3);
const DENSITY_TIMEOUT_MS = setting("BENCH_DENSITY_TIMEOUT_S", 1500, 180) * 1000;
// The Debian kernel (6.12) does not boot in 64 MiB: it panics at once allocating its 32 MiB
// sparse-memory section table ("memblocks_present: Failed to allocate 33554432 bytes"), and in
// 80 MiB it runs out of memory unpacking the initramfs. 88 MiB boots with about 15 MiB free.
const DENSITY_MIB = Math.round(setting("BENCH_DENSITY_MIB", 88, 88));
const BOOT_TIMEOUT_MS = setting("BENCH_BOOT_TIMEOUT_S", 240, 240) * 1000;
const PHASES = new Set((process.env.BENCH_PHASES ?? "1,2,3,4,5,6").split(",").map((s) => Number(s.trim())));

// Targets.
const SCALING_TARGET = 1.8;
const SMP_TARGET = 1.7;
const SHARE_TARGET_PP = 2;
const WAKE_TARGET_MS = 5;
const DENSITY_GOAL = 48;
const OVERHEAD_TARGET_MIB = 2;
const ANSWER_MS = 1000;
// The host gives an idle VM's shadow page tables back after 5 s (SHRINK_IDLE_MS in host.ts).
const IDLE_WAIT_MS = 6_500;

// The busybox prompt of the default guest; the console has CR LF line ends.
const PROMPT = "\n~ # ";
const enc = new TextEncoder();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class BenchError extends Error {}

// ---- figures ----

interface Figure { phase: number; name: string; value: string; target: string; met: boolean | undefined }
const figures: Figure[] = [];
const failures: string[] = [];

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function figure(phase: number, name: string, value: string, target: string, met: boolean | undefined): void {
  figures.push({ phase, name, value, target, met });
  say(`  => ${name}: ${value} (${target}: ${verdict(met)})`);
}

function verdict(met: boolean | undefined): string {
  return met === undefined ? "not measured" : met ? "met" : "NOT met";
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}

// The value at fraction q of the sorted samples (nearest rank).
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(2)} MiB`;

// ---- what the neighbours do ----

// Cores the rest of the machine kept busy over an interval: all CPU time /proc/stat counts as
// busy (steal included: time the VM this runs in was not given its CPU) minus this process's own
// (every thread, workers included). Undefined where there is no /proc/stat.
class Neighbours {
  private readonly busy0 = Neighbours.busyS();
  private readonly own0 = process.cpuUsage();
  private readonly t0 = performance.now();

  private static busyS(): number | undefined {
    try {
      const f = readFileSync("/proc/stat", "latin1").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
      // user nice system idle iowait irq softirq steal (guest time is already in user)
      const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0);
      return busy / 100; // USER_HZ
    } catch {
      return undefined;
    }
  }

  cores(): number | undefined {
    const b = Neighbours.busyS();
    if (b === undefined || this.busy0 === undefined) return undefined;
    const own = process.cpuUsage(this.own0);
    const wallS = (performance.now() - this.t0) / 1000;
    return Math.max(0, (b - this.busy0 - (own.user + own.system) / 1e6) / wallS);
  }

  describe(): string {
    const c = this.cores();
    return c === undefined ? "neighbours: unknown" : `neighbours used ${c.toFixed(2)} of ${cpus().length} cores`;
  }
}

// ---- consoles and guests ----

// What a VM printed, and waiters resolved (with the host time of the chunk) the moment the text
// they wait for arrives: the console callback runs on the host's main thread as the guest's UART
// writes reach it, so that instant is when a user would have seen them.
class GuestConsole {
  text = "";
  private waiters: { test: () => boolean; resolve: (t: number) => void }[] = [];
  readonly sink = (b: Uint8Array): void => {
    this.text += Buffer.from(b).toString("latin1");
    if (this.waiters.length === 0) return;
    const t = performance.now();
    this.waiters = this.waiters.filter((w) => {
      if (!w.test()) return true;
      w.resolve(t);
      return false;
    });
  };

  // Resolves when `needle` appears at or after `from`.
  when(needle: string, from: number): Promise<number> {
    return this.whenTrue(() => this.text.indexOf(needle, from) >= 0);
  }

  // Resolves when the console has grown past `from`.
  after(from: number): Promise<number> {
    return this.whenTrue(() => this.text.length > from);
  }

  private whenTrue(test: () => boolean): Promise<number> {
    if (test()) return Promise.resolve(performance.now());
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }

  tail(n = 1500): string {
    return this.text.slice(-n);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new BenchError(`timed out after ${ms} ms waiting for ${what}`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function until(what: string, cond: () => boolean, ms: number, step = 10): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new BenchError(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(step);
  }
}

interface Guest { vm: Vm; con: GuestConsole }

let debianFiles: { kernel: Uint8Array; initrd: Uint8Array } | undefined;
let spinElf: Uint8Array | undefined;

function debian(host: Host, name: string, memMiB: number, cpus: number, extra: Partial<VmConfig> = {}): Guest {
  const con = new GuestConsole();
  const vm = host.createVm({
    name, kernel: debianFiles!.kernel, initrd: debianFiles!.initrd, cmdline: DEFAULT_CMDLINE,
    memBytes: memMiB * MiB, cpus, virt: "trap-and-emulate", console: con.sink, ...extra,
  });
  return { vm, con };
}

function spin(host: Host, name: string, extra: Partial<VmConfig> = {}): Guest {
  const con = new GuestConsole();
  const vm = host.createVm({ name, kernel: spinElf!, cmdline: "", memBytes: 64 * MiB, cpus: 1, virt: "trap-and-emulate", console: con.sink, ...extra });
  return { vm, con };
}

async function startSpin(host: Host, g: Guest): Promise<void> {
  host.start(g.vm);
  await withTimeout(g.con.when("== guest spin ==", 0), 30_000, `${g.vm.name} to start`);
}

const panicked = (g: Guest): boolean => g.con.text.includes("Kernel panic");

// The guest's shell is up and the guest has gone idle at its first prompt; refuses a guest that
// panicked or ended (a panic this early can leave the kernel spinning instead of rebooting).
async function shell(g: Guest, ms = BOOT_TIMEOUT_MS): Promise<void> {
  const { vm, con } = g;
  const end = performance.now() + ms;
  for (;;) {
    const boot = con.text.indexOf(BOOT_COMPLETE);
    if (boot >= 0 && con.text.indexOf("# ", boot) >= 0 && vm.idleSince !== undefined) return;
    if (panicked(g) || vm.state !== "running" || performance.now() > end) {
      const why = panicked(g) ? /Kernel panic[^\n]*/.exec(con.text)![0] : vm.state !== "running" ? `it ended: ${vm.result?.reason}` : `no shell after ${ms} ms`;
      throw new BenchError(`${vm.name} did not boot (${why})\nits console tail:\n${con.tail()}`);
    }
    await sleep(20);
  }
}

// Types `cmd` at the idle prompt; resolves once the next prompt is back and the guest idles again,
// with the host time from typing until `answer` (if given) appeared.
async function command(g: Guest, cmd: string, ms: number, answer?: string): Promise<{ output: string; answerMs: number }> {
  const { vm, con } = g;
  await until(`${vm.name} to idle at its prompt`, () => vm.idleSince !== undefined, ms);
  const from = con.text.length;
  const answered = answer === undefined ? undefined : con.when(answer, from);
  const t0 = performance.now();
  vm.input(enc.encode(`${cmd}\n`));
  const tAnswer = answered ? await withTimeout(answered, ms, `${vm.name}'s answer to '${cmd}'`) : t0;
  await until(`${vm.name}: the prompt after '${cmd}'`, () => con.text.indexOf(PROMPT, from) >= 0 && vm.idleSince !== undefined, ms);
  return { output: con.text.slice(from), answerMs: tAnswer - t0 };
}

// A VM's counters now, summed over its vCPUs.
interface Sample { atMs: number; instructions: bigint; runUs: number; boosts: number }

// One host.stats() for all of them: it reports every VM on the host, and a few dozen VMs sampled
// one by one would keep the main thread (which serves every guest) busy for a while.
function samples(host: Host, vms: Vm[]): Sample[] {
  const all = host.stats().vms;
  const atMs = performance.now();
  return vms.map((vm) => {
    const s = all.find((v) => v.name === vm.name);
    if (!s) throw new BenchError(`${vm.name} is not on the host`);
    return {
      atMs,
      instructions: BigInt(s.instructions),
      runUs: s.sched.reduce((n, v) => n + v.runUs, 0),
      boosts: s.sched.reduce((n, v) => n + v.boosts, 0),
    };
  });
}

const sample = (host: Host, vm: Vm): Sample => samples(host, [vm])[0]!;

interface Delta { seconds: number; mips: number; runUs: number; instructions: number }

// Counters of `vms` over `ms` of wall time.
async function interval(host: Host, vms: Vm[], ms: number): Promise<{ deltas: Delta[]; seconds: number; neighbours: string }> {
  const n = new Neighbours();
  const a = samples(host, vms);
  await sleep(ms);
  const b = samples(host, vms);
  const deltas = vms.map((_, i) => {
    const seconds = (b[i]!.atMs - a[i]!.atMs) / 1000;
    const instructions = Number(b[i]!.instructions - a[i]!.instructions);
    return { seconds, instructions, mips: instructions / seconds / 1e6, runUs: b[i]!.runUs - a[i]!.runUs };
  });
  return { deltas, seconds: deltas[0]!.seconds, neighbours: n.describe() };
}

// ---- 1. scaling ----

async function spinRate(pcpus: number): Promise<number> {
  const host = new Host({ pcpus, machineBytes: 512 * MiB });
  try {
    const vms = [1, 2].map((i) => spin(host, `spin${i}`));
    for (const g of vms) await startSpin(host, g);
    await sleep(WARMUP_MS);
    const r = await interval(host, vms.map((g) => g.vm), INTERVAL_MS);
    const total = r.deltas.reduce((s, d) => s + d.instructions, 0) / r.seconds / 1e6;
    say(`  ${pcpus} physical CPU${pcpus > 1 ? "s" : ""}: ${total.toFixed(1)} MIPS in all over ${r.seconds.toFixed(2)} s ` +
      `(${r.deltas.map((d, i) => `spin${i + 1} ${d.mips.toFixed(1)}`).join(", ")}); ${r.neighbours}`);
    return total;
  } finally {
    await host.close();
  }
}

async function scaling(): Promise<void> {
  say(`two CPU-bound VMs (bench/programs/spin.c), ${WARMUP_MS / 1000} s warm-up, ${INTERVAL_MS / 1000} s measured:`);
  const one = await spinRate(1);
  const two = await spinRate(2);
  const ratio = two / one;
  figure(1, "scaling 1 -> 2 physical CPUs", `${one.toFixed(1)} -> ${two.toFixed(1)} MIPS, ${ratio.toFixed(2)}x`, `target >= ${SCALING_TARGET}x`, ratio >= SCALING_TARGET);
}

// ---- 2. SMP ----

// Two shell loops in the background, each in its own forked ash, bracketed by markers whose text
// differs from the typed line's ($((...)) is expanded by the shell).
function smpWork(round: number): { cmd: string; go: string; end: string } {
  const loop = `(i=0; while [ $i -lt ${SMP_ITERS} ]; do i=$((i+1)); done) &`;
  return {
    cmd: `echo smp-$((${round}))-go; ${loop} ${loop} wait; echo smp-$((${round}))-end`,
    go: `smp-${round}-go`,
    end: `smp-${round}-end`,
  };
}

async function smpRun(host: Host, g: Guest, round: number): Promise<{ seconds: number; mips: number }> {
  const w = smpWork(round);
  const { con, vm } = g;
  await until(`${vm.name} to idle`, () => vm.idleSince !== undefined, 30_000);
  const from = con.text.length;
  const go = con.when(w.go, from);
  const end = con.when(w.end, from);
  const n = new Neighbours();
  vm.input(enc.encode(`${w.cmd}\n`));
  const t0 = await withTimeout(go, 30_000, `${vm.name}: ${w.go}`);
  const i0 = sample(host, vm).instructions;
  const t1 = await withTimeout(end, 600_000, `${vm.name}: ${w.end}`);
  const i1 = sample(host, vm).instructions;
  await until(`${vm.name}'s prompt`, () => con.text.indexOf(PROMPT, from) >= 0 && vm.idleSince !== undefined, 30_000);
  const seconds = (t1 - t0) / 1000;
  const mips = Number(i1 - i0) / seconds / 1e6;
  say(`  run ${round}: ${vm.vcpus.length} vCPU${vm.vcpus.length > 1 ? "s" : ""}: ${seconds.toFixed(3)} s, ${mips.toFixed(1)} guest MIPS; ${n.describe()}`);
  return { seconds, mips };
}

async function smp(): Promise<void> {
  say(`one Debian guest with 2 vCPUs and one with 1 (128 MiB each) on 2 physical CPUs; the work: two shell loops of ${SMP_ITERS} iterations in the background;`);
  say(`${SMP_ROUNDS} round(s), the guests alternating, the fastest run of each counts (the other guest idles meanwhile):`);
  const host = new Host({ pcpus: 2, machineBytes: 1 * GiB });
  try {
    const two = debian(host, "smp2", 128, 2);
    const one = debian(host, "smp1", 128, 1);
    const t0 = performance.now();
    host.start(two.vm);
    host.start(one.vm);
    await Promise.all([shell(two), shell(one)]);
    say(`  both at their shells after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const nproc = (await command(two, "nproc", 30_000)).output;
    if (!/\n2\r?\n/.test(nproc)) throw new BenchError(`smp2 does not see 2 CPUs: ${JSON.stringify(nproc)}`);
    const t1: number[] = [];
    const t2: number[] = [];
    let round = 1;
    for (let r = 0; r < SMP_ROUNDS; r++) {
      t1.push((await smpRun(host, one, round++)).seconds);
      t2.push((await smpRun(host, two, round++)).seconds);
    }
    const best1 = Math.min(...t1);
    const best2 = Math.min(...t2);
    const speedup = best1 / best2;
    figure(2, "SMP speedup 1 -> 2 vCPUs", `${best1.toFixed(3)} s -> ${best2.toFixed(3)} s, ${speedup.toFixed(2)}x`, `target >= ${SMP_TARGET}x`, speedup >= SMP_TARGET);
  } finally {
    await host.close();
  }
}

// ---- 3. scheduler share ----

async function share(): Promise<void> {
  say(`CPU-bound VMs on 1 physical CPU, ${WARMUP_MS / 1000} s warm-up, ${INTERVAL_MS / 1000} s measured; shares by the scheduler's runUs (instructions' share in brackets):`);
  const host = new Host({ pcpus: 1, machineBytes: 512 * MiB });
  const errors: number[] = [];
  const line = (name: string, runUs: number, of: number, instrShare: number, expect: number): void => {
    const s = runUs / of;
    const err = Math.abs(s - expect) * 100;
    errors.push(err);
    say(`  ${name}: ${(s * 100).toFixed(2)}% (${(instrShare * 100).toFixed(2)}%) against ${(expect * 100).toFixed(2)}%: ${err.toFixed(2)} points off`);
  };
  try {
    // Weights: shares of the time the physical CPU ran either of them.
    const a = spin(host, "w256", { weight: 256 });
    const b = spin(host, "w512", { weight: 512 });
    await startSpin(host, a);
    await startSpin(host, b);
    await sleep(WARMUP_MS);
    let r = await interval(host, [a.vm, b.vm], INTERVAL_MS);
    const [da, db] = r.deltas as [Delta, Delta];
    const ran = da.runUs + db.runUs;
    say(` weights 256 and 512 (the two ran ${((ran / (r.seconds * 1e6)) * 100).toFixed(1)}% of the interval; ${r.neighbours}):`);
    const instr = da.instructions + db.instructions;
    line("weight 256", da.runUs, ran, da.instructions / instr, 1 / 3);
    line("weight 512", db.runUs, ran, db.instructions / instr, 2 / 3);
    await host.destroy(a.vm);
    await host.destroy(b.vm);

    // A cap is a share of the physical CPU's time, whether or not anything else wants it. The
    // instructions' share is against what an uncapped VM alone retired (measured first).
    const free = spin(host, "uncapped");
    await startSpin(host, free);
    await sleep(WARMUP_MS);
    r = await interval(host, [free.vm], INTERVAL_MS);
    const fullMips = r.deltas[0]!.mips;
    say(` an uncapped VM alone: ${fullMips.toFixed(1)} MIPS, ran ${((r.deltas[0]!.runUs / (r.seconds * 1e6)) * 100).toFixed(1)}% (${r.neighbours})`);
    await host.destroy(free.vm);
    const c = spin(host, "cap25", { cap: 25 });
    await startSpin(host, c);
    await sleep(WARMUP_MS);
    r = await interval(host, [c.vm], INTERVAL_MS);
    say(` cap 25%, alone (${r.neighbours}):`);
    line("cap 25", r.deltas[0]!.runUs, r.seconds * 1e6, r.deltas[0]!.mips / fullMips, 0.25);
    const d = spin(host, "beside");
    await startSpin(host, d);
    await sleep(WARMUP_MS);
    r = await interval(host, [c.vm, d.vm], INTERVAL_MS);
    const [dc, dd] = r.deltas as [Delta, Delta];
    say(` cap 25%, beside an uncapped VM of the same weight (which ran ${((dd.runUs / (r.seconds * 1e6)) * 100).toFixed(1)}%; ${r.neighbours}):`);
    line("cap 25", dc.runUs, r.seconds * 1e6, dc.mips / fullMips, 0.25);
    const worst = Math.max(...errors);
    figure(3, "scheduler share, worst error", `${worst.toFixed(2)} percentage points`, `target <= ${SHARE_TARGET_PP}`, worst <= SHARE_TARGET_PP);
  } finally {
    await host.close();
  }
}

// ---- 4. wake-up latency ----

// A fixed sequence of pauses (a small LCG), so runs are alike.
function pauses(n: number): number[] {
  let x = 12345;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return 100 + (x % 201);
  });
}

async function wakeSamples(g: Guest, n: number): Promise<number[]> {
  const { vm, con } = g;
  const xs: number[] = [];
  for (const pause of pauses(n)) {
    await sleep(pause);
    await until(`${vm.name} to idle`, () => vm.idleSince !== undefined, 10_000, 1);
    let from = con.text.length;
    const echoed = con.when("x", from);
    const t0 = performance.now();
    vm.input(enc.encode("x"));
    xs.push((await withTimeout(echoed, 10_000, `${vm.name} to echo 'x'`)) - t0);
    // Rub it out again (DEL), so the line stays short.
    await until(`${vm.name} to idle`, () => vm.idleSince !== undefined, 10_000, 1);
    from = con.text.length;
    const rubbed = con.after(from);
    vm.input(Uint8Array.of(0x7f));
    await withTimeout(rubbed, 10_000, `${vm.name} to rub out the 'x'`);
  }
  return xs;
}

function latencyLine(label: string, xs: number[], extra: string): number {
  const med = median(xs);
  say(`  ${label}: median ${med.toFixed(2)} ms, p90 ${quantile(xs, 0.9).toFixed(2)} ms, min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)} ms over ${xs.length}; ${extra}`);
  return med;
}

async function wakeup(): Promise<void> {
  say(`a 1-vCPU Debian guest (128 MiB) idle at its shell on 1 physical CPU; 'x' typed ${WAKE_SAMPLES} times, 100-300 ms apart, timed until its echo:`);
  const host = new Host({ pcpus: 1, machineBytes: 1 * GiB });
  try {
    const g = debian(host, "wake", 128, 1);
    host.start(g.vm);
    await shell(g);
    await sleep(500);
    let n = new Neighbours();
    let b0 = sample(host, g.vm).boosts;
    const idle = await wakeSamples(g, WAKE_SAMPLES);
    const medIdle = latencyLine("host otherwise idle", idle, `${sample(host, g.vm).boosts - b0} boosts; ${n.describe()}`);
    const s = spin(host, "busy");
    await startSpin(host, s);
    await sleep(WARMUP_MS);
    n = new Neighbours();
    b0 = sample(host, g.vm).boosts;
    const s0 = sample(host, s.vm);
    const busy = await wakeSamples(g, WAKE_SAMPLES);
    const s1 = sample(host, s.vm);
    const spinShare = (s1.runUs - s0.runUs) / ((s1.atMs - s0.atMs) * 1000);
    const medBusy = latencyLine("beside a CPU-bound VM", busy, `${sample(host, g.vm).boosts - b0} boosts, the CPU-bound VM ran ${(spinShare * 100).toFixed(1)}% meanwhile; ${n.describe()}`);
    figure(4, "wake-up latency, host idle", `median ${medIdle.toFixed(2)} ms, p90 ${quantile(idle, 0.9).toFixed(2)} ms`, `target median <= ${WAKE_TARGET_MS} ms`, medIdle <= WAKE_TARGET_MS);
    figure(4, "wake-up latency, beside a CPU-bound VM", `median ${medBusy.toFixed(2)} ms, p90 ${quantile(busy, 0.9).toFixed(2)} ms`, `target median <= ${WAKE_TARGET_MS} ms`, medBusy <= WAKE_TARGET_MS);
  } finally {
    await host.close();
  }
}

// ---- 5. density ----

async function density(): Promise<void> {
  const host = new Host({ machineBytes: 4 * GiB });
  const conc = host.pcpus.length;
  const cap = Number.isFinite(DENSITY_MAX) ? `at most ${DENSITY_MAX}` : "no limit on the count";
  say(`idle Debian guests of ${DENSITY_MIB} MiB (1 vCPU, cmdline "${DEFAULT_CMDLINE}") booted ${conc} at a time into a 4 GiB machine on ${conc} physical CPUs ` +
    `until one does not fit or fails to answer 'echo' within ${ANSWER_MS} ms; ${cap}, ${DENSITY_TIMEOUT_MS / 1000} s in all:`);
  // What memory alone allows, by the host's own estimate of a VM at creation (its RAM and the
  // hypervisor's structures; shadow tables grow beyond that as a guest runs).
  const each = estimateFrames({ memBytes: DENSITY_MIB * MiB, cpus: 1, virt: "trap-and-emulate" });
  say(`  the machine holds at most ${Math.floor(host.machine.mem.freeFrameCount / each)} such guests by the host's estimate at creation (${mib(each * 4096)} each)`);
  if (DENSITY_MIB !== 64) say(`  (${DENSITY_MIB} MiB, not 64: the Debian kernel panics in 64 MiB and runs out of memory in 80; BENCH_DENSITY_MIB overrides)`);
  const t0 = performance.now();
  const booted: (Guest & { n: number })[] = [];
  let stop: string | undefined;
  let next = 1;
  const bootTimes: number[] = [];
  const answerTimes: number[] = [];
  try {
    // `conc` boots in flight: each worker takes the next number, boots that guest and checks it
    // answers, until something says stop.
    const worker = async (): Promise<void> => {
      while (stop === undefined) {
        if (next > DENSITY_MAX) { stop ??= `reached BENCH_DENSITY_MAX (${DENSITY_MAX})`; return; }
        if (performance.now() - t0 > DENSITY_TIMEOUT_MS) { stop ??= `the phase's time ran out (BENCH_DENSITY_TIMEOUT_S ${DENSITY_TIMEOUT_MS / 1000})`; return; }
        const n = next++;
        let g: Guest;
        try {
          g = debian(host, `d${n}`, DENSITY_MIB, 1);
        } catch (e) {
          if (!(e instanceof OutOfMachineMemory)) throw e;
          stop ??= `guest ${n} does not fit: ${e.message}`;
          return;
        }
        const tb = performance.now();
        host.start(g.vm);
        try {
          await shell(g);
          bootTimes.push((performance.now() - tb) / 1000);
          const { answerMs } = await command(g, `echo ok-$((${n}))-ok`, 30_000, `ok-${n}-ok`);
          answerTimes.push(answerMs);
          if (answerMs > ANSWER_MS) throw new BenchError(`d${n} answered 'echo' only after ${answerMs.toFixed(0)} ms`);
        } catch (e) {
          // The figure gets the first line; the console tail that follows is printed once here.
          const msg = e instanceof Error ? e.message : String(e);
          if (stop === undefined) {
            stop = `guest ${n} failed: ${msg.split("\n")[0]}`;
            if (msg.includes("\n")) say(`  guest ${n} failed: ${msg}`);
          }
          return;
        }
        booted.push({ ...g, n });
        if (booted.length % 8 === 0 || booted.length <= 2) {
          const free = host.stats().machine.freeBytes;
          say(`  ${booted.length} guest${booted.length > 1 ? "s" : ""} up after ${((performance.now() - t0) / 1000).toFixed(0)} s (this one booted in ${bootTimes.at(-1)!.toFixed(1)} s, ` +
            `answered in ${answerTimes.at(-1)!.toFixed(1)} ms); ${mib(free)} of the machine free`);
        }
      }
    };
    await Promise.all(Array.from({ length: conc }, worker));
    const count = booted.length;
    say(`  stopped after ${((performance.now() - t0) / 1000).toFixed(0)} s: ${stop}`);
    say(`  ${count} guests up; boot to shell median ${median(bootTimes).toFixed(1)} s (${conc} in flight), 'echo' answered in median ${median(answerTimes).toFixed(1)} ms, max ${Math.max(...answerTimes).toFixed(1)} ms`);
    if (count === 0) {
      figure(5, "density", "0 guests", `goal >= ${DENSITY_GOAL}`, false);
      return;
    }

    // Idle for more than 6 s: past the moment the host gives idle VMs' shadow page tables back.
    const n = new Neighbours();
    const before = samples(host, booted.map((g) => g.vm));
    await sleep(IDLE_WAIT_MS);
    const after = samples(host, booted.map((g) => g.vm));
    const idleCpu = after.reduce((s, a, i) => s + a.runUs - before[i]!.runUs, 0) / ((after[0]!.atMs - before[0]!.atMs) * 1000);
    const stats = host.stats();
    const mine = stats.vms.filter((v) => booted.some((g) => g.vm.name === v.name));
    const overhead = mine.map((v) => v.overheadBytes);
    const shadow = mine.map((v) => v.frames.shadow);
    const mean = overhead.reduce((s, x) => s + x, 0) / overhead.length;
    const longestIdle = Math.max(...booted.map((g) => (g.vm.idleSince === undefined ? 0 : performance.now() - g.vm.idleSince)));
    say(`  after ${IDLE_WAIT_MS / 1000} s idle: overhead beyond RAM per VM mean ${mib(mean)}, median ${mib(median(overhead))}, max ${mib(Math.max(...overhead))}; ` +
      `shadow frames per VM median ${median(shadow)}; the longest unbroken idle spell now ${(longestIdle / 1000).toFixed(2)} s`);
    say(`  the ${count} idle guests kept ${(idleCpu * 100).toFixed(1)}% of one physical CPU busy; machine ${mib(stats.machine.allocatedBytes)} allocated, ${mib(stats.machine.freeBytes)} free; ${n.describe()}`);

    // Everyone still answers.
    const slow: string[] = [];
    const answers: number[] = [];
    for (const g of booted) {
      try {
        const { answerMs } = await command(g, `echo ok-$((${g.n}))-ok`, 10_000, `ok-${g.n}-ok`);
        answers.push(answerMs);
        if (answerMs > ANSWER_MS) slow.push(`${g.vm.name} after ${answerMs.toFixed(0)} ms`);
      } catch (e) {
        slow.push(`${g.vm.name} (${g.vm.state}${g.vm.result ? `: ${g.vm.result.reason}` : ""}): ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
      }
    }
    say(`  then each answered 'echo' again: median ${median(answers).toFixed(1)} ms, max ${Math.max(...answers).toFixed(1)} ms; ` +
      `${slow.length} slower than ${ANSWER_MS} ms or not at all${slow.length > 0 ? `:\n    ${slow.join("\n    ")}` : ""}`);
    const full = stop?.includes("does not fit") ?? false;
    figure(5, "density", `${count} idle guests of ${DENSITY_MIB} MiB${full ? " (the machine was full)" : ` (stopped early: ${stop})`}`, `goal >= ${DENSITY_GOAL}`, count >= DENSITY_GOAL);
    figure(5, "overhead per idle VM beyond its RAM", `${mib(mean)} mean, ${mib(Math.max(...overhead))} max`, `target <= ${OVERHEAD_TARGET_MIB} MiB`, mean <= OVERHEAD_TARGET_MIB * MiB);
  } finally {
    await host.close();
  }
}

// ---- 6. single-VM speed ----

async function single(): Promise<void> {
  say("bench:boot (against QEMU) and bench:virt (trap-and-emulate against native) give the single-VM figures; here one boot of the default guest");
  say("(512 MiB, 1 vCPU, trap-and-emulate, physical CPUs: one per core) to its shell marker, so a regression shows in this run too:");
  const host = new Host({});
  try {
    const g = debian(host, "single", 512, 1);
    let instructions = 0n;
    const n = new Neighbours();
    const marker = g.con.when(BOOT_COMPLETE, 0).then((t) => {
      instructions = g.vm.instructions();
      return t;
    });
    const t0 = performance.now();
    host.start(g.vm);
    const t1 = await withTimeout(marker, BOOT_TIMEOUT_MS, "the boot marker");
    const seconds = (t1 - t0) / 1000;
    const mips = Number(instructions) / seconds / 1e6;
    say(`  ${seconds.toFixed(2)} s to "${BOOT_COMPLETE}", ${(Number(instructions) / 1e9).toFixed(2)}e9 guest instructions, ${mips.toFixed(1)} MIPS; ${n.describe()}`);
    figure(6, "single VM boot to shell", `${seconds.toFixed(2)} s, ${mips.toFixed(1)} MIPS`, "no target here (bench:virt: within 1.5x of native)", undefined);
  } finally {
    await host.close();
  }
}

// ---- main ----

function buildSpin(): Uint8Array {
  const script = join(ROOT, "bench/programs/build-spin.sh");
  const b = spawnSync("bash", [script, OUT], { encoding: "utf8" });
  if (b.error || b.status !== 0) throw new BenchError(`${script} failed:\n${b.error?.message ?? b.stderr}`);
  const elf = join(OUT, "spin.elf");
  if (!existsSync(elf)) throw new BenchError(`${script} did not build ${elf}`);
  return readFileSync(elf);
}

let guest: DefaultGuest;
try {
  spinElf = buildSpin();
  guest = await ensureDefaultGuest({ quiet: true });
  debianFiles = { kernel: readFileSync(guest.kernel), initrd: readFileSync(guest.initrd) };
} catch (e) {
  process.stderr.write(`bench:host: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
}
say(`kernel ${guest.kernelVersion}, busybox ${guest.busyboxVersion}; all guests trap-and-emulate`);
say(`machine: ${cpus()[0]?.model ?? "unknown"} x${cpus().length}, Node ${process.version}${QUICK ? "; BENCH_QUICK: short phases" : ""}`);

const PHASE_LIST: [number, string, () => Promise<void>][] = [
  [1, "scaling", scaling],
  [2, "SMP", smp],
  [3, "scheduler share", share],
  [4, "wake-up latency", wakeup],
  [5, "density", density],
  [6, "single-VM speed", single],
];
// An error the host throws outside any promise of ours (in a hand-back, a timer) would end the
// process and lose the later phases and the summary: it fails the phase running instead. That
// phase's host is then left as it is (closing it may never finish); its VMs may go on running
// beside the later phases, whose neighbour figures show what they cost.
let hostFault: ((e: unknown) => void) | undefined;
const fault = (e: unknown): void => {
  say(`  the host failed outside the benchmark's own calls: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  hostFault?.(e);
};
process.on("uncaughtException", fault);
process.on("unhandledRejection", fault);

const tAll = performance.now();
for (const [n, name, run] of PHASE_LIST) {
  if (!PHASES.has(n)) continue;
  say(`\n${n}. ${name}`);
  const t = performance.now();
  try {
    await Promise.race([run(), new Promise<never>((_, reject) => { hostFault = reject; })]);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    failures.push(`${n}. ${name}`);
    say(`  FAILED: ${msg}`);
  }
  say(`  (${((performance.now() - t) / 1000).toFixed(0)} s)`);
}

say(`\nsummary (${((performance.now() - tAll) / 1000).toFixed(0)} s):`);
for (const f of figures) say(`  ${`${f.phase}. ${f.name}`.padEnd(46)} ${f.value.padEnd(44)} ${f.target}: ${verdict(f.met)}`);
if (failures.length > 0) {
  say(`FAILED: ${failures.join(", ")}`);
  process.exitCode = 1;
}
// A host abandoned after a fault still has worker threads that keep the process alive.
process.exit();
