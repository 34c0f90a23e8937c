// What the benchmarks that drive the default Debian guest share (bench/virt.ts, bench/compute.ts):
// a Linux user program built statically with the cross gcc, the default initramfs with programs
// added, and one guest run (Ringvisor or QEMU) that boots to the shell, has commands typed at it
// and ends when the guest powers off.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { gzipSync } from "node:zlib";
import { writeNewc } from "../src/host/images/cpio.js";
import { BOOT_COMPLETE } from "../src/host/images/initramfs.js";

export class BenchError extends Error {}

export const MARKER = /^marker (\d+): hart (\d+) instret (\d+) at ([\d.]+) s$/;

export interface Marker { instret: bigint; seconds: number }

// The --markers lines of a Ringvisor run's stderr, in order.
export function markers(stderr: string): Marker[] {
  return stderr.split("\n").flatMap((l) => {
    const m = MARKER.exec(l.trim());
    return m ? [{ instret: BigInt(m[3]!), seconds: Number(m[4]) }] : [];
  });
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}

// Builds bench/programs/NAME.c into OUT/NAME (static, -O2) and returns the ELF.
export function buildLinuxProgram(root: string, out: string, name: string): Buffer {
  const src = join(root, `bench/programs/${name}.c`);
  const elf = join(out, name);
  mkdirSync(out, { recursive: true });
  const cc = spawnSync("riscv64-linux-gnu-gcc", ["-static", "-O2", "-o", elf, src], { encoding: "utf8" });
  if (cc.error) throw new BenchError(`cannot run riscv64-linux-gnu-gcc (${cc.error.message}); npm run setup installs it`);
  if (cc.status !== 0) throw new BenchError(`riscv64-linux-gnu-gcc failed on ${src}:\n${cc.stderr}`);
  return readFileSync(elf);
}

// The default initramfs with programs added under /bin: a second gzip'd newc archive appended to
// the first, which the kernel unpacks after it (early-userspace/buffer-format.rst). Written to
// `path`, which is returned.
export function initrdWith(defaultInitrd: string, path: string, programs: Record<string, Buffer>): string {
  const extra = writeNewc(Object.entries(programs).map(([name, data]) => ({ path: `bin/${name}`, type: "file" as const, perm: 0o755, data })));
  writeFileSync(path, Buffer.concat([readFileSync(defaultInitrd), gzipSync(extra, { level: 9 })]));
  return path;
}

export interface GuestRun {
  // Host seconds from the process's start to the console line "ringvisor: boot complete".
  boot: number;
  // Host seconds from the process's start to its exit.
  wall: number;
  console: string;
  stderr: string;
}

export interface GuestCommand {
  what: string;
  command: string;
  args: string[];
  // What is typed at the guest's shell once it has booted.
  script: string;
  // How: "stdin" writes the whole script to stdin and closes it at the boot line (`ringvisor run`
  // types it a line at a time whenever the guest idles at its prompt); "prompt" writes one line
  // each time the console shows the shell's prompt (for QEMU, whose console is a plain stdio
  // serial line), then leaves stdin open.
  typing: "stdin" | "prompt";
  timeoutS: number;
}

// The busybox shell's prompt at the end of the console, possibly followed by its cursor query.
const PROMPT = /[#$] (?:\x1b\[6n)?$/;

// Runs the guest to its poweroff. Rejects with a BenchError (with the console's tail) on a
// timeout, a nonzero exit status or an exit before the boot line.
export function runGuest(c: GuestCommand): Promise<GuestRun> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const elapsed = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
    const p = spawn(c.command, c.args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let boot: number | undefined;
    const lines = c.script.split(/(?<=\n)/).filter((l) => l !== "");
    let typedAt = 0;
    const tail = (): string => `last console output:\n${out.slice(-1500)}\nstderr:\n${err.slice(-1500)}`;
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new BenchError(`${c.what}: no poweroff within ${c.timeoutS} s; ${boot === undefined ? "the boot line never came" : `booted in ${boot.toFixed(2)} s`}; ${tail()}`));
    }, c.timeoutS * 1000);
    p.on("error", (e) => {
      clearTimeout(timer);
      reject(new BenchError(`${c.what}: cannot run ${basename(c.command)}: ${e.message}`));
    });
    p.stdin.on("error", () => undefined);
    p.stdout.on("data", (d: Buffer) => {
      out += d.toString("latin1");
      if (boot === undefined) {
        const at = out.indexOf(BOOT_COMPLETE);
        if (at < 0) return;
        boot = elapsed();
        typedAt = at;
        if (c.typing === "stdin") p.stdin.end(c.script);
      }
      if (c.typing === "prompt" && lines.length > 0 && PROMPT.test(out.slice(typedAt))) {
        typedAt = out.length;
        p.stdin.write(lines.shift()!);
      }
    });
    p.stderr.on("data", (d: Buffer) => { err += d.toString(); });
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") return;
      if (code !== 0 || boot === undefined) {
        reject(new BenchError(`${c.what}: run failed (${code !== 0 ? `exit status ${code ?? signal}` : "no boot line"}); ${tail()}`));
        return;
      }
      resolve({ boot, wall: elapsed(), console: out, stderr: err });
    });
  });
}
