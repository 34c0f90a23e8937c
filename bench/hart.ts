// npm run bench:hart: guest MIPS of the hart (the interpreter with the translator, as every VM
// runs) on a bare-metal compute-bound program (integer, memory and floating-point kernels built
// with the cross gcc at -O2), after a warm-up run, median of several runs; target 600 MIPS.
// Compared with QEMU (TCG) running the same ELF on its spike board: a bare-metal program without
// an operating system under either, which is not how users run guests (bench:compute compares
// Linux user code in the default guest, the figure that counts).
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BareMachine } from "../src/vm/bare.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const elfPath = join(ROOT, "build/programs", process.argv[2] ?? "bench.elf");
const runs = Number(process.env.BENCH_RUNS ?? 5);
const TARGET_MIPS = 600;

const KERNELS = ["crc32", "sort", "sieve", "stream", "chase", "matmul", "nbody", "dot"];

interface Run { mips: number; seconds: number; instructions: bigint; output: string; kernels: number[] }

function once(): Run {
  let output = "";
  const m = new BareMachine({ memBytes: 64 << 20, markers: true, out: (b) => { output += Buffer.from(b).toString(); } });
  m.load(readFileSync(elfPath), elfPath);
  const r = m.run();
  if (r.exitCode !== 0) throw new Error(`benchmark exited with ${r.exitCode}: ${output}`);
  // Markers bracket each kernel: MIPS per kernel from each pair.
  const kernels: number[] = [];
  for (let i = 0; i + 1 < m.markers.length; i += 2) {
    const a = m.markers[i]!, b = m.markers[i + 1]!;
    kernels.push(Number(b.instret - a.instret) / (b.seconds - a.seconds) / 1e6);
  }
  return { mips: Number(r.instructions) / r.seconds / 1e6, seconds: r.seconds, instructions: r.instructions, output, kernels };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const warm = once();
process.stdout.write(`program: ${elfPath}\n${warm.output}`);
const results: number[] = [];
const times: number[] = [];
const perKernel: number[][] = KERNELS.map(() => []);
for (let i = 0; i < runs; i++) {
  const r = once();
  if (r.output !== warm.output) throw new Error("benchmark output differs between runs");
  results.push(r.mips);
  times.push(r.seconds);
  r.kernels.forEach((k, j) => perKernel[j]?.push(k));
  process.stdout.write(`run ${i + 1}: ${r.instructions} instructions in ${r.seconds.toFixed(3)} s = ${r.mips.toFixed(1)} MIPS\n`);
}
const mips = median(results);

let qemuLine = "qemu-system-riscv64: not installed, no comparison";
const q = spawnSync("qemu-system-riscv64", ["-M", "spike", "-nographic", "-bios", "none", "-kernel", elfPath], { encoding: "utf8", timeout: 300_000 });
if (q.error === undefined) {
  const qt: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync("qemu-system-riscv64", ["-M", "spike", "-nographic", "-bios", "none", "-kernel", elfPath], { timeout: 300_000 });
    qt.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const qs = median(qt);
  const qmips = Number(warm.instructions) / qs / 1e6;
  qemuLine = `qemu-system-riscv64 (TCG, -M spike, same bare-metal ELF): ${qs.toFixed(3)} s = ${qmips.toFixed(1)} MIPS; Ringvisor/QEMU speed ratio ${(mips / qmips).toFixed(2)} ` +
    "(bare metal, no OS under either: bench:compute compares Linux user code in the default guest)";
}

process.stdout.write(`\nmachine: ${cpus()[0]?.model ?? "unknown"} x${cpus().length}, Node ${process.version}\n`);
process.stdout.write(`Ringvisor hart (interpreter and translator): median ${mips.toFixed(1)} MIPS over ${runs} runs (median time ${median(times).toFixed(3)} s)\n`);
process.stdout.write(`per kernel (median MIPS): ${KERNELS.map((k, j) => `${k} ${median(perKernel[j]!.length ? perKernel[j]! : [NaN]).toFixed(0)}`).join(", ")}\n`);
process.stdout.write(`target ${TARGET_MIPS} MIPS: ratio ${(mips / TARGET_MIPS).toFixed(2)} ${mips >= TARGET_MIPS ? "(met)" : "(NOT met)"}\n`);
process.stdout.write(`${qemuLine}\n`);
