// npm run bench:compute: the guest's CPU speed as a user sees it, against QEMU. Linux user code
// (bench/programs/compute.c: a bitwise CRC-32, a list walk, a double matrix multiply, a sort, a
// sieve, memcpy and a Mandelbrot set) runs inside the default Debian guest under Ringvisor (each
// --virt mode, trap-and-emulate first: the default) and under qemu-system-riscv64 -M virt (TCG,
// OpenSBI), same kernel and initramfs (the default one with /bin/compute added), alternating,
// several rounds. The guest's own clock times each kernel (clock_gettime(CLOCK_MONOTONIC) in
// the program), and each kernel's checksum must be the same on every system, byte for byte.
// Prints, per kernel and in total, the medians of each system, the ratio Ringvisor/QEMU (target
// within 1.5x of QEMU; goal faster than QEMU), and the boot to the shell marker by the host's
// clock as bench/boot.ts times it. Under Ringvisor the program's markers also give each kernel's
// retired instructions (hence MIPS on both systems) and its host time, which checks the guest's
// clock against the host's. Without qemu-system-riscv64 only Ringvisor's figures are printed.
// BENCH_QUICK=1 is one round; BENCH_ROUNDS (default 3), BENCH_MODES (comma-separated),
// BENCH_SCALE (the program's repetitions, default 1) and BENCH_TIMEOUT_S override the defaults.
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_CMDLINE } from "../src/cli/run.js";
import { ensureDefaultGuest, type DefaultGuest } from "../src/host/images/pull.js";
import { BenchError, buildLinuxProgram, initrdWith, markers, median, runGuest } from "./guest.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "dist/src/cli/main.js");
const OUT = join(ROOT, "build/bench");
const QUICK = process.env.BENCH_QUICK === "1";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));
const MODES = (process.env.BENCH_MODES ?? "trap-and-emulate,native").split(",").map((m) => m.trim()).filter((m) => m !== "");
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 300);
const QEMU = "qemu";
const TARGET = 1.5;
const BOOT_TARGET = 1.5; // bench:boot's

const SCRIPT = `compute ${SCALE}\npoweroff -f\n`;
const KERNEL_LINE = /^compute (\S+) time ([\d.]+) checksum ([0-9a-f]{16})$/;
const TOTAL_LINE = /^compute total time ([\d.]+)$/;

interface Kernel {
  seconds: number; // by the guest's clock
  checksum: string;
  instructions?: bigint; // Ringvisor only: between the kernel's two markers
  hostSeconds?: number;
}
interface Sample { boot: number; wall: number; total: number; kernels: Map<string, Kernel> }

const label = (system: string): string => (system === QEMU ? "QEMU" : `Ringvisor --virt ${system}`);

// The program's report from the console: one line per kernel, then the total.
function parse(what: string, console: string): { total: number; kernels: Map<string, Kernel> } {
  const lines = console.split(/\r?\n/).map((l) => l.trim());
  const kernels = new Map<string, Kernel>();
  let total: number | undefined;
  for (const l of lines) {
    const k = KERNEL_LINE.exec(l);
    if (k) kernels.set(k[1]!, { seconds: Number(k[2]), checksum: k[3]! });
    const t = TOTAL_LINE.exec(l);
    if (t) total = Number(t[1]);
  }
  if (total === undefined || kernels.size === 0) throw new BenchError(`${what}: no complete report from /bin/compute; last console output:\n${console.slice(-1500)}`);
  return { total, kernels };
}

async function runRingvisor(mode: string, guest: DefaultGuest, initrd: string): Promise<Sample> {
  const what = label(mode);
  const args = [CLI, "run", "--kernel", guest.kernel, "--initrd", initrd, "--virt", mode, "--markers"];
  const g = await runGuest({ what, command: process.execPath, args, script: SCRIPT, typing: "stdin", timeoutS: TIMEOUT_S });
  const { total, kernels } = parse(what, g.console);
  // The last two markers per kernel bracket its timed region (/init's comes before them).
  const marks = markers(g.stderr).slice(-2 * kernels.size);
  if (marks.length === 2 * kernels.size) {
    [...kernels.values()].forEach((k, i) => {
      const [a, b] = [marks[2 * i]!, marks[2 * i + 1]!];
      k.instructions = b.instret - a.instret;
      k.hostSeconds = b.seconds - a.seconds;
    });
  }
  return { boot: g.boot, wall: g.wall, total, kernels };
}

async function runQemu(guest: DefaultGuest, initrd: string): Promise<Sample> {
  const args = ["-M", "virt", "-m", "512", "-smp", "1", "-nographic", "-no-reboot", "-bios", "default",
    "-kernel", guest.kernel, "-initrd", initrd, "-append", DEFAULT_CMDLINE];
  const g = await runGuest({ what: "QEMU", command: "qemu-system-riscv64", args, script: SCRIPT, typing: "prompt", timeoutS: TIMEOUT_S });
  return { boot: g.boot, wall: g.wall, ...parse("QEMU", g.console) };
}

function fmt(x: number, digits: number, unit = ""): string {
  return Number.isNaN(x) ? "-" : `${x.toFixed(digits)}${unit}`;
}

if (MODES.length === 0 || !(ROUNDS >= 1) || !(SCALE >= 1) || !Number.isInteger(SCALE) || !(TIMEOUT_S > 0)) {
  process.stderr.write("bench:compute: BENCH_MODES must name at least one mode; BENCH_ROUNDS, BENCH_SCALE (a whole number) and BENCH_TIMEOUT_S must be positive\n");
  process.exit(2);
}
let guest: DefaultGuest;
let initrd: string;
try {
  guest = await ensureDefaultGuest({ quiet: true });
  initrd = initrdWith(guest.initrd, join(OUT, "initramfs-compute.cpio.gz"), { compute: buildLinuxProgram(ROOT, OUT, "compute") });
} catch (e) {
  process.stderr.write(`bench:compute: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
}
const qemuVersion = spawnSync("qemu-system-riscv64", ["--version"], { encoding: "utf8" });
const haveQemu = qemuVersion.status === 0;
const systems = haveQemu ? [QEMU, ...MODES] : MODES;
process.stdout.write(`kernel ${guest.kernelVersion}, busybox ${guest.busyboxVersion}; initrd ${initrd} (default + /bin/compute); cmdline "${DEFAULT_CMDLINE}"\n`);
process.stdout.write(`machine: ${cpus()[0]?.model ?? "unknown"} x${cpus().length}, Node ${process.version}\n`);
process.stdout.write(haveQemu
  ? `reference: ${qemuVersion.stdout.split("\n")[0]} -M virt -m 512 -nographic -bios default (OpenSBI), TCG\n`
  : "qemu-system-riscv64 is not installed: Ringvisor's figures only, no comparison (npm run setup installs it)\n");
process.stdout.write(`systems: ${systems.map(label).join(", ")}; rounds: ${ROUNDS}, alternating; the guest types: ${JSON.stringify(SCRIPT)}\n\n`);

const t0 = performance.now();
const samples = new Map<string, Sample[]>(systems.map((s) => [s, []]));
const failed = new Map<string, string>();
// The first checksum seen for each kernel, and where it was seen; every other run must agree.
const reference = new Map<string, { checksum: string; where: string }>();
const mismatched = new Set<string>();
let started = 0;

for (let round = 0; round < ROUNDS; round++) {
  // Each round starts with the next system, so that none always runs first or last.
  const order = systems.map((_, i) => systems[(i + round) % systems.length]!);
  for (const system of order) {
    if (failed.has(system)) continue;
    started++;
    const where = `${label(system)} round ${round + 1}`;
    try {
      const s = system === QEMU ? await runQemu(guest, initrd) : await runRingvisor(system, guest, initrd);
      samples.get(system)!.push(s);
      for (const [name, k] of s.kernels) {
        const ref = reference.get(name);
        if (ref === undefined) reference.set(name, { checksum: k.checksum, where });
        else if (ref.checksum !== k.checksum) {
          mismatched.add(name);
          process.stdout.write(`CHECKSUM MISMATCH: ${name}: ${where} ${k.checksum}, ${ref.where} ${ref.checksum}\n`);
        }
      }
      for (const name of reference.keys()) {
        if (!s.kernels.has(name)) {
          mismatched.add(name);
          process.stdout.write(`CHECKSUM MISMATCH: ${name}: ${where} did not report it\n`);
        }
      }
      const instr = [...s.kernels.values()].reduce((n, k) => (k.instructions === undefined ? NaN : n + Number(k.instructions)), 0);
      const host = [...s.kernels.values()].reduce((n, k) => n + (k.hostSeconds ?? NaN), 0);
      const extra = Number.isNaN(instr) ? "" : `, ${(instr / 1e9).toFixed(3)}e9 instructions (${fmt(instr / s.total / 1e6, 0, " MIPS")}), ${host.toFixed(3)} s by the host's clock`;
      process.stdout.write(`round ${round + 1}: ${label(system).padEnd(34)} boot ${s.boot.toFixed(2)} s, compute ${s.total.toFixed(3)} s by the guest's clock${extra}; ${s.wall.toFixed(1)} s in all\n`);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      failed.set(system, msg);
      process.stdout.write(`round ${round + 1}: ${label(system)}: FAILED, no more runs of it\n${msg}\n`);
    }
  }
}

const ran = systems.filter((s) => samples.get(s)!.length > 0);
const kernelNames = [...reference.keys()];
const kernelSeconds = (system: string, name: string): number => median(samples.get(system)!.map((s) => s.kernels.get(name)?.seconds ?? NaN));
const totalSeconds = (system: string): number => median(samples.get(system)!.map((s) => s.total));
const bootSeconds = (system: string): number => median(samples.get(system)!.map((s) => s.boot));
// Instructions per kernel from Ringvisor's markers (the same binary and input on every system).
const instructions = (name: string): number => median(MODES.flatMap((m) => (samples.get(m) ?? []).map((s) => Number(s.kernels.get(name)?.instructions ?? NaN))));
const totalInstructions = kernelNames.reduce((n, k) => n + instructions(k), 0);
const hasQemu = ran.includes(QEMU);
const modes = ran.filter((s) => s !== QEMU);

const W = 26;
const cell = (seconds: number, instr: number, ratio?: number): string =>
  `${fmt(seconds, 3, " s")} ${Number.isNaN(instr) ? "" : `${fmt(instr / seconds / 1e6, 0, " MIPS")}`}${ratio === undefined ? "" : ` ${fmt(ratio, 2, "x")}`}`.padEnd(W);
const header = `${"kernel".padEnd(12)}${ran.map((s) => (s === QEMU ? "QEMU" : `${s}${hasQemu ? " (/QEMU)" : ""}`).padEnd(W)).join("")}${"instructions".padEnd(14)}checksums\n`;
process.stdout.write(`\nmedians of ${ROUNDS} round(s), seconds by the guest's clock (CLOCK_MONOTONIC in the guest); MIPS: Ringvisor's retired instructions per kernel over each system's time\n`);
process.stdout.write(header);
const row = (name: string, seconds: (s: string) => number, instr: number, sums: string): void => {
  const q = hasQemu ? seconds(QEMU) : NaN;
  const cells = ran.map((s) => cell(seconds(s), instr, s === QEMU || !hasQemu ? undefined : seconds(s) / q)).join("");
  process.stdout.write(`${name.padEnd(12)}${cells}${(Number.isNaN(instr) ? "-" : `${(instr / 1e6).toFixed(1)}e6`).padEnd(14)}${sums}\n`);
};
for (const name of kernelNames) {
  row(name, (s) => kernelSeconds(s, name), instructions(name), mismatched.has(name) ? "DIFFER" : ran.length > 1 ? "agree" : "-");
}
row("total", totalSeconds, totalInstructions, mismatched.size > 0 ? `${mismatched.size} DIFFER` : ran.length > 1 ? "all agree" : "-");
process.stdout.write(`${"boot (host)".padEnd(12)}${ran.map((s) => `${fmt(bootSeconds(s), 2, " s")}${s !== QEMU && hasQemu ? ` ${fmt(bootSeconds(s) / bootSeconds(QEMU), 2, "x")}` : ""}`.padEnd(W)).join("")}process start to the shell marker\n`);

// The guest's clock against the host's over the same kernels (Ringvisor's markers).
for (const m of modes) {
  const ratios = samples.get(m)!.map((s) => {
    const host = [...s.kernels.values()].reduce((n, k) => n + (k.hostSeconds ?? NaN), 0);
    return s.total / host;
  });
  const r = median(ratios);
  if (!Number.isNaN(r)) process.stdout.write(`${m}: guest clock / host clock over the kernels ${r.toFixed(3)}${Math.abs(r - 1) > 0.05 ? " (more than 5% apart: the guest's times are suspect)" : ""}\n`);
}

process.stdout.write("\n");
if (hasQemu) {
  for (const m of modes) {
    const ratio = totalSeconds(m) / totalSeconds(QEMU);
    const boot = bootSeconds(m) / bootSeconds(QEMU);
    // The total weighs each kernel by its time; the geometric mean of the ratios weighs them alike.
    const geomean = Math.exp(kernelNames.reduce((a, k) => a + Math.log(kernelSeconds(m, k) / kernelSeconds(QEMU, k)), 0) / kernelNames.length);
    process.stdout.write(
      `compute, --virt ${m}: ${ratio.toFixed(2)}x QEMU's time (geometric mean of the kernels' ratios ${fmt(geomean, 2, "x")}); target within ${TARGET}x of QEMU: ${ratio <= TARGET ? "met" : "ABOVE TARGET"}; ` +
        `goal faster than QEMU: ${ratio < 1 ? "met" : "not yet"}\n`,
    );
    process.stdout.write(`boot to shell, --virt ${m}: ${boot.toFixed(2)}x QEMU's time; target within ${BOOT_TARGET}x (bench:boot's): ${boot <= BOOT_TARGET ? "met" : "ABOVE TARGET"}\n`);
  }
} else {
  process.stdout.write(haveQemu ? "no QEMU figures: its runs failed\n" : "no QEMU figures: qemu-system-riscv64 is not installed\n");
}
process.stdout.write(`\n${started} runs in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
if (mismatched.size > 0) failed.set("checksums", [...mismatched].join(", "));
if (failed.size > 0) {
  process.stdout.write(`FAILED: ${[...failed.keys()].join(", ")}\n`);
  process.exitCode = 1;
}
