// npm run bench:boot: boot Debian's riscv64 kernel with the default busybox initramfs to its
// shell marker ("ringvisor: boot complete", printed by /init just before the shell starts) in
// Ringvisor (--virt native) and in QEMU (TCG, -M virt, OpenSBI), alternating, several times each.
// Prints both medians, their ratio (target: Ringvisor within 1.5x of QEMU) and guest MIPS.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDefaultGuest } from "../src/host/images/pull.js";
import { DEFAULT_CMDLINE } from "../src/cli/run.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "dist/src/cli/main.js");
const MARK = "ringvisor: boot complete";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TARGET_RATIO = 1.5; // issue 10: boot within 1.5x of QEMU TCG
const TIMEOUT_MS = 300_000;

interface Boot { seconds: number; instret?: bigint; markerSeconds?: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// Ringvisor: time from process start to the marker line on the console; then power off and read
// the hart's retired-instruction count at the marker instruction that /init executes next.
function bootRingvisor(kernel: string, initrd: string): Promise<Boot> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(process.execPath, [CLI, "run", "--kernel", kernel, "--initrd", initrd, "--markers"], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let seconds: number | undefined;
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error("Ringvisor boot timed out")); }, TIMEOUT_MS);
    p.stdout.on("data", (d: Buffer) => {
      out += d.toString("latin1");
      if (seconds === undefined && out.includes(MARK)) {
        seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        p.stdin.end("poweroff -f\n");
      }
    });
    p.stderr.on("data", (d: Buffer) => { err += d.toString(); });
    p.on("exit", (code) => {
      clearTimeout(timer);
      if (seconds === undefined || code !== 0) {
        reject(new Error(`Ringvisor boot failed (exit ${code}):\n${out.slice(-2000)}\n${err}`));
        return;
      }
      const m = /marker 1: hart \d+ instret (\d+) at ([\d.]+) s/.exec(err);
      resolve({ seconds, instret: m ? BigInt(m[1]!) : undefined, markerSeconds: m ? Number(m[2]) : undefined });
    });
  });
}

// QEMU writes its serial console to a file (its stdio console drops bytes on a full pipe), which
// is polled for the marker line.
async function bootQemu(kernel: string, initrd: string): Promise<Boot> {
  const log = join(mkdtempSync(join(tmpdir(), "ringvisor-bench-")), "serial.log");
  const t0 = process.hrtime.bigint();
  const p = spawn("qemu-system-riscv64", [
    "-M", "virt", "-m", "512", "-smp", "1", "-display", "none", "-monitor", "none",
    "-serial", `file:${log}`, "-kernel", kernel, "-initrd", initrd, "-append", DEFAULT_CMDLINE,
  ], { stdio: "ignore" });
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 10));
      if (existsSync(log) && readFileSync(log, "latin1").includes(MARK)) {
        return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
      }
      if (p.exitCode !== null) throw new Error(`QEMU exited with ${p.exitCode} before the marker`);
      if (Number(process.hrtime.bigint() - t0) / 1e6 > TIMEOUT_MS) throw new Error("QEMU boot timed out");
    }
  } finally {
    p.kill("SIGKILL");
  }
}

const guest = await ensureDefaultGuest({ quiet: true });
const haveQemu = spawnSync("qemu-system-riscv64", ["--version"]).status === 0;
process.stdout.write(`kernel ${guest.kernelVersion}, busybox ${guest.busyboxVersion}; cmdline "${DEFAULT_CMDLINE}"\n`);
process.stdout.write(`machine: ${cpus()[0]?.model ?? "unknown"} x${cpus().length}, Node ${process.version}\n`);

const mine: Boot[] = [];
const ref: Boot[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const r = await bootRingvisor(guest.kernel, guest.initrd);
  mine.push(r);
  const mips = r.instret !== undefined && r.markerSeconds ? Number(r.instret) / r.markerSeconds / 1e6 : NaN;
  process.stdout.write(`round ${i + 1}: Ringvisor ${r.seconds.toFixed(2)} s to the shell marker (${r.instret ?? "?"} instructions, ${mips.toFixed(1)} MIPS)\n`);
  if (haveQemu) {
    const q = await bootQemu(guest.kernel, guest.initrd);
    ref.push(q);
    process.stdout.write(`round ${i + 1}: QEMU      ${q.seconds.toFixed(2)} s to the shell marker\n`);
  }
}

const myMedian = median(mine.map((b) => b.seconds));
const instrs = mine.map((b) => Number(b.instret ?? 0n));
const mipsMedian = median(mine.filter((b) => b.instret && b.markerSeconds).map((b) => Number(b.instret!) / b.markerSeconds! / 1e6));
process.stdout.write(`\nRingvisor (--virt native): median ${myMedian.toFixed(2)} s to shell, ${(median(instrs) / 1e9).toFixed(2)}e9 guest instructions, ${mipsMedian.toFixed(1)} MIPS over the boot\n`);
if (haveQemu) {
  const qMedian = median(ref.map((b) => b.seconds));
  const ratio = myMedian / qMedian;
  process.stdout.write(`QEMU 7.2 TCG (-M virt, OpenSBI): median ${qMedian.toFixed(2)} s to shell\n`);
  process.stdout.write(`ratio Ringvisor/QEMU ${ratio.toFixed(2)}x (target <= ${TARGET_RATIO}x: ${ratio <= TARGET_RATIO ? "met" : "NOT met"})\n`);
} else {
  process.stdout.write("qemu-system-riscv64 is not installed: no comparison (npm run setup installs it)\n");
}
