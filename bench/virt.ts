// npm run bench:virt: the cost of virtualization. The same guest workloads run under each --virt
// mode (native, the baseline, trap-and-emulate and bt), alternating, several rounds each; for
// each workload the median per mode and the ratio of each mode to native against its target,
// and bt against trap-and-emulate:
//  - boot to shell: process start to the console line "ringvisor: boot complete" (target 1.5x);
//  - user compute: bench/programs/usercompute.c, CPU-bound, no system calls, between two markers,
//    best of three runs in each boot (target within 5%);
//  - shell loop: 200 `echo x | cat > /dev/null`, forks, execs, pipes and page faults, between two
//    markers (target 3x).
// All three run in one boot per round: the guest types the workloads at its shell, then powers
// off. Then one more run per mode with --stats, whose report at exit is printed as it comes; from
// bt's: the exits it avoided and the translations it made, next to VMware's published figure.
// Then where the time goes: bench/programs/exitcost.c (an S-mode guest kernel) runs in each mode
// and times each kind of exit's operation (bench/exitcost.ts); the ns each costs more under
// trap-and-emulate, times the exit counts of the trap-and-emulate --stats run, estimates the
// seconds each exit reason takes.
// BENCH_MODES (comma-separated), BENCH_ROUNDS, BENCH_EXITCOST_RUNS (median of that many runs per
// mode, default 1) and BENCH_TIMEOUT_S override the defaults.
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDefaultGuest, type DefaultGuest } from "../src/host/images/pull.js";
import { buildExitCost, costTable, extraCosts, exitTime, medianCosts, runExitCost, runSeconds, type Costs } from "./exitcost.js";
import { BenchError, buildLinuxProgram, initrdWith, MARKER, markers, median, runGuest, type Marker } from "./guest.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "dist/src/cli/main.js");
const OUT = join(ROOT, "build/bench");
const MODES = (process.env.BENCH_MODES ?? "native,trap-and-emulate,bt").split(",").map((m) => m.trim()).filter((m) => m !== "");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 600);
const EXITCOST_RUNS = Number(process.env.BENCH_EXITCOST_RUNS ?? 1);
const BASE = "native";
const OTHER = "trap-and-emulate";
const BT = "bt";

// Typed at the shell, a line at a time when the guest idles at the prompt. Each workload is
// bracketed by two markers; /init executes one more before the shell starts.
const SHELL_LOOP = "for i in $(seq 200); do echo x | cat > /dev/null; done";
// The compute program runs three times back to back and the fastest run counts: this 2-core
// VM's neighbours move a single 2-second run by up to a third, a best-of-three much less.
const COMPUTE_RUNS = 3;
const COMPUTE = ["rv-marker", ...Array.from({ length: COMPUTE_RUNS }, () => "usercompute; rv-marker")].join("; ");
const SCRIPT = [COMPUTE, `rv-marker; ${SHELL_LOOP}; rv-marker`, "poweroff -f"].map((l) => l + "\n").join("");
const CHECKSUM = /usercompute: (\d+) rounds, checksum ([0-9a-f]{16})/;

interface Interval { seconds: number; instructions: bigint }
interface Run {
  boot: number;
  // Retired instructions up to /init's marker, which comes right after the boot line.
  bootInstructions?: bigint;
  bootMarkerSeconds?: number;
  compute: Interval;
  shell: Interval;
  checksum: string;
  wall: number;
  // stderr without the marker lines: what the run reports at exit.
  report: string;
}

interface Workload { name: string; target: number; seconds: (r: Run) => number; mips: (r: Run) => number }

const mips = (instructions: bigint | undefined, seconds: number | undefined): number =>
  instructions !== undefined && seconds ? Number(instructions) / seconds / 1e6 : NaN;

const WORKLOADS: Workload[] = [
  { name: "boot to shell", target: 1.5, seconds: (r) => r.boot, mips: (r) => mips(r.bootInstructions, r.bootMarkerSeconds) },
  { name: "user compute", target: 1.05, seconds: (r) => r.compute.seconds, mips: (r) => mips(r.compute.instructions, r.compute.seconds) },
  { name: "shell loop", target: 3, seconds: (r) => r.shell.seconds, mips: (r) => mips(r.shell.instructions, r.shell.seconds) },
];

function interval(a: Marker, b: Marker): Interval {
  return { seconds: b.seconds - a.seconds, instructions: b.instret - a.instret };
}

async function runVirt(mode: string, kernel: string, initrd: string, stats: boolean): Promise<Run> {
  const args = [CLI, "run", "--kernel", kernel, "--initrd", initrd, "--virt", mode, "--markers", ...(stats ? ["--stats"] : [])];
  const what = `--virt ${mode}`;
  const g = await runGuest({ what, command: process.execPath, args, script: SCRIPT, typing: "stdin", timeoutS: TIMEOUT_S });
  const marks = markers(g.stderr);
  const sum = CHECKSUM.exec(g.console);
  const need = COMPUTE_RUNS + 3;
  if (marks.length < need || !sum) {
    const why = !sum ? "no usercompute output" : `${marks.length} markers, expected at least ${need}`;
    throw new BenchError(`${what}: run failed (${why}); last console output:\n${g.console.slice(-1500)}\nstderr:\n${g.stderr.slice(-1500)}`);
  }
  const mine = marks.slice(-need);
  const [s0, s1] = mine.slice(-2) as [Marker, Marker];
  const computeMarks = mine.slice(0, COMPUTE_RUNS + 1);
  const runs = computeMarks.slice(1).map((m, i) => interval(computeMarks[i]!, m));
  const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const init = marks.length > need ? marks[0] : undefined;
  return {
    boot: g.boot,
    bootInstructions: init?.instret,
    bootMarkerSeconds: init?.seconds,
    compute: best,
    shell: interval(s0, s1),
    checksum: `${sum[1]} rounds, ${sum[2]}`,
    wall: g.wall,
    report: g.stderr.split("\n").filter((l) => !MARKER.test(l.trim()) && l.trim() !== "").join("\n"),
  };
}

// Exits per second from the --stats report: the VMM's (per vCPU, "vCPU i: N VMM exits") and
// the host's ("host exits: reason n, ..."), over the guest run's seconds ("run: S s").
function exitRate(report: string, wall: number): string {
  const num = (t: string): number => Number(t.replace(/,/g, ""));
  const runLine = /\brun:\s*([\d.]+)\s*s\b/.exec(report);
  const seconds = runLine ? Number(runLine[1]) : wall;
  const vmm = [...report.matchAll(/vCPU \d+: ([\d,]+) VMM exits/g)].reduce((n, m) => n + num(m[1]!), 0);
  const hostLine = /host exits: (.*)$/m.exec(report)?.[1] ?? "";
  const host = [...hostLine.matchAll(/([\d,]+)(?:,|$)/g)].reduce((n, m) => n + num(m[1]!), 0);
  const rate = (n: number): string => `${n} (${(n / seconds).toFixed(0)}/s)`;
  return `over ${seconds.toFixed(2)} s: VMM exits ${rate(vmm)}, exits to the host ${rate(host)}`;
}

// From bt's --stats report: exits avoided (per vCPU, "binary translation: N exits avoided (P% of
// the M ...") and translations (per pCPU, "N translations in K modules ... in S s, U us each"),
// beside the figure the seed lectures quote for VMware's translator.
function btSummary(report: string): string {
  const num = (t: string): number => Number(t.replace(/,/g, ""));
  const avoided = [...report.matchAll(/binary translation: ([\d,]+) exits avoided \([\d.]+% of the ([\d,]+)/g)];
  const a = avoided.reduce((n, m) => n + num(m[1]!), 0);
  const all = avoided.reduce((n, m) => n + num(m[2]!), 0);
  const tr = [...report.matchAll(/translator: ([\d,]+) translations in [\d,]+ modules .*? in ([\d.]+) s,/g)];
  const n = tr.reduce((k, m) => k + num(m[1]!), 0);
  const secs = tr.reduce((k, m) => k + Number(m[2]!), 0);
  const run = runSeconds(report);
  return `bt (--stats run): ${a.toLocaleString("en-US")} exits avoided of the ${all.toLocaleString("en-US")} trap-and-emulate would take (${((100 * a) / Math.max(1, all)).toFixed(1)}%); ` +
    `${n.toLocaleString("en-US")} translations in ${secs.toFixed(2)} s, ${n > 0 ? ((1e6 * secs) / n).toFixed(0) : "-"} us each` +
    `${run ? `, ${((100 * secs) / run).toFixed(0)}% of the ${run.toFixed(1)} s run` : ""} ` +
    `(VMware's translator, booting Windows XP: 950,000 translations at 3 us each, a 5% slowdown)`;
}

function fmt(x: number, unit: string, digits = 2): string {
  return Number.isNaN(x) ? "-" : `${x.toFixed(digits)}${unit}`;
}

if (MODES.length === 0 || !(ROUNDS >= 1) || !(EXITCOST_RUNS >= 1) || !(TIMEOUT_S > 0)) {
  process.stderr.write("bench:virt: BENCH_MODES must name at least one mode, BENCH_ROUNDS, BENCH_EXITCOST_RUNS and BENCH_TIMEOUT_S must be positive\n");
  process.exit(2);
}
let guest: DefaultGuest;
let initrd: string;
let exitcostElf: string;
try {
  guest = await ensureDefaultGuest({ quiet: true });
  // The default initramfs with /bin/usercompute added.
  initrd = initrdWith(guest.initrd, join(OUT, "initramfs-virt.cpio.gz"), { usercompute: buildLinuxProgram(ROOT, OUT, "usercompute") });
  exitcostElf = buildExitCost(ROOT, OUT);
} catch (e) {
  process.stderr.write(`bench:virt: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
}
process.stdout.write(`kernel ${guest.kernelVersion}, busybox ${guest.busyboxVersion}; initrd ${initrd} (default + /bin/usercompute)\n`);
process.stdout.write(`machine: ${cpus()[0]?.model ?? "unknown"} x${cpus().length}, Node ${process.version}\n`);
process.stdout.write(`modes: ${MODES.join(", ")}; rounds: ${ROUNDS}, alternating; guest types: ${JSON.stringify(SCRIPT)}\n\n`);

const t0 = performance.now();
const runs = new Map<string, Run[]>(MODES.map((m) => [m, []]));
const failed = new Map<string, string>();
const checksums = new Set<string>();
let started = 0;

async function attempt(mode: string, stats: boolean, label: string): Promise<Run | undefined> {
  if (failed.has(mode)) return undefined;
  started++;
  try {
    const r = await runVirt(mode, guest.kernel, initrd, stats);
    checksums.add(r.checksum);
    process.stdout.write(
      `${label} ${mode.padEnd(16)} boot ${r.boot.toFixed(2)} s (${fmt(WORKLOADS[0]!.mips(r), " MIPS", 0)}), ` +
        `compute ${r.compute.seconds.toFixed(3)} s (${r.compute.instructions} instr, ${fmt(WORKLOADS[1]!.mips(r), " MIPS", 0)}), ` +
        `shell loop ${r.shell.seconds.toFixed(3)} s (${fmt(WORKLOADS[2]!.mips(r), " MIPS", 0)}); ${r.wall.toFixed(1)} s in all\n`,
    );
    return r;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    failed.set(mode, msg);
    process.stdout.write(`${label} ${mode}: FAILED, no more runs in this mode\n${msg}\n`);
    return undefined;
  }
}

for (let i = 0; i < ROUNDS; i++) {
  for (const mode of MODES) {
    const r = await attempt(mode, false, `round ${i + 1}:`);
    if (r) runs.get(mode)!.push(r);
  }
}

process.stdout.write("\n");
const reports: string[] = [];
const statsReport = new Map<string, string>();
for (const mode of MODES) {
  const r = await attempt(mode, true, "--stats:");
  if (r) {
    statsReport.set(mode, r.report);
    reports.push(`--virt ${mode} --stats, reported at exit:\n${r.report || "(nothing)"}\n${exitRate(r.report, r.wall)}\n`);
  }
}

const costRuns = new Map<string, Costs[]>(MODES.map((m) => [m, []]));
for (let i = 0; i < EXITCOST_RUNS; i++) {
  for (const mode of MODES) {
    const key = `exitcost ${mode}`;
    if (failed.has(key)) continue;
    started++;
    try {
      costRuns.get(mode)!.push(await runExitCost(CLI, exitcostElf, mode, TIMEOUT_S));
      process.stdout.write(`exitcost ${i + 1}: ${mode} done\n`);
    } catch (e) {
      failed.set(key, e instanceof Error ? e.message : String(e));
      process.stdout.write(`exitcost ${i + 1}: ${mode}: FAILED\n${failed.get(key)}\n`);
    }
  }
}
const exitCosts = new Map([...costRuns].flatMap(([m, rs]) => (rs.length > 0 ? [[m, medianCosts(rs)] as [string, Costs]] : [])));

if (reports.length > 0) process.stdout.write(`\n${reports.join("\n")}\n`);
if (checksums.size > 1) {
  failed.set("checksum", `usercompute printed different results: ${[...checksums].join(" / ")}`);
  process.stdout.write(`usercompute printed different results across runs: ${[...checksums].join(" / ")}\n`);
}

const cell = (mode: string, w: Workload): string => {
  const rs = runs.get(mode) ?? [];
  if (rs.length === 0) return "-";
  return `${median(rs.map(w.seconds)).toFixed(3)} s, ${fmt(median(rs.map(w.mips)), " MIPS", 0)}`;
};
process.stdout.write(`medians (rounds: ${ROUNDS}):\n`);
const others = MODES.filter((m) => m !== BASE);
process.stdout.write(`${"workload".padEnd(15)}${MODES.map((m) => `  ${m.padEnd(22)}`).join("")}${others.map((m) => `  ${`${m}/${BASE}`.padEnd(34)}`).join("")}  ${BT}/${OTHER}\n`);
for (const w of WORKLOADS) {
  const med = (m: string): number => median((runs.get(m) ?? []).map(w.seconds));
  const verdicts = others.map((m) => {
    const ratio = med(m) / med(BASE);
    return Number.isNaN(ratio) ? `- (needs both modes)` : `${ratio.toFixed(2)}x, target <= ${w.target}x: ${ratio <= w.target ? "met" : "ABOVE TARGET"}`;
  });
  const btTe = med(BT) / med(OTHER);
  process.stdout.write(`${w.name.padEnd(15)}${MODES.map((m) => `  ${cell(m, w).padEnd(22)}`).join("")}${verdicts.map((v) => `  ${v.padEnd(34)}`).join("")}  ${Number.isNaN(btTe) ? "-" : `${btTe.toFixed(2)}x`}\n`);
}
const btReport = statsReport.get(BT);
if (btReport !== undefined) process.stdout.write(`\n${btSummary(btReport)}\n`);
if (exitCosts.size > 0) {
  process.stdout.write(`\nexit costs (bench/programs/exitcost.c, median of ${EXITCOST_RUNS} run(s) per mode, empty loop subtracted):\n${costTable(exitCosts, BASE, OTHER)}\n`);
}
const teReport = statsReport.get(OTHER);
if (exitCosts.has(BASE) && exitCosts.has(OTHER) && teReport !== undefined) {
  const baseReport = statsReport.get(BASE);
  process.stdout.write(`\n${exitTime(teReport, extraCosts(exitCosts, BASE, OTHER), runSeconds(teReport), baseReport === undefined ? undefined : runSeconds(baseReport))}\n`);
}
process.stdout.write(`\n${started} runs in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
if (failed.size > 0) {
  process.stdout.write(`FAILED: ${[...failed.keys()].join(", ")}\n`);
  process.exitCode = 1;
}
