// npm run bench:io: the guest's I/O as a user sees it, against QEMU, and what paravirtualization
// saves on the console. The default Debian guest (1 vCPU, 512 MiB; its initramfs with
// /bin/iorand, bench/programs/iorand.c, and two small shell scripts added) boots under Ringvisor
// (--virt trap-and-emulate, the default) and under qemu-system-riscv64 -M virt (TCG, OpenSBI),
// the same kernel and initramfs, each with one virtio-blk disk: the same 512 MiB raw image file
// (written full of zeros before the first run, so preallocated; QEMU gets it with
// -drive format=raw,if=none -device virtio-blk-device, its default cache=writeback, like
// Ringvisor's buffered I/O through the host's page cache). The image is read once on the host
// before every run, so neither system's reads reach the host's own disk (this machine's kernel
// evicts cold page cache within seconds, and a read from its disk costs 60-200 us: that would
// measure the disk, not the virtual machine). In one boot per system and round the
// guest runs, timed by its own clock (CLOCK_MONOTONIC, `iorand clock`, before and after):
//  1. dd if=/dev/zero of=/dev/vda bs=1M count=256 oflag=direct, then
//     dd if=/dev/vda of=/dev/null bs=1M count=256 iflag=direct (busybox dd has both flags):
//     MB/s (10^6 bytes) each, and the ratio Ringvisor/QEMU (target >= 1.0);
//  2. iorand: 4 KiB pread()s with O_DIRECT at aligned offsets over those 256 MiB, one at a time
//     (queue depth 1), a fixed-seed PRNG's offsets, 100 warm-up reads, each read timed alone:
//     IOPS (target >= 1.0x QEMU) and 3. the median and p99 latency of one read (target <= 1.0x).
//  4. Guest-to-host TCP in the same boot: tcpsend (bench/programs/tcpsend.c) writes BENCH_NET_MIB
//     MiB (default 64) to a sink in this process on the host's loopback, reached as 10.0.2.2
//     through each system's user-mode NAT (Ringvisor's --net nat, the default; QEMU's -netdev
//     user with virtio-net-device), and times it by the guest's clock from the connection to the
//     host's close after the last byte: MB/s and the ratio (target >= 0.5).
// The programs go in the initramfs (as in bench:compute) rather than on a second disk, so the
// disk under test carries the benchmark's I/O and nothing else, and no file system is involved.
// Systems alternate (each round starts with the other), BENCH_ROUNDS rounds (default 3), medians.
// Ringvisor's runs also write --stats-json, whose virtio-blk counters (requests, notifications,
// interrupts) and register accesses are printed per round, to show where its time goes.
//  5. Console bytes per exit, Ringvisor only: the same output on the 16550 (ttyS0, --console
//     serial) and on the virtio console (hvc0: --console virtio, console=hvc0 on the kernel
//     command line), twice: `seq 1 20000` (a number a line: the tty writes each number and each
//     line end separately, so the driver sees small writes) and `seq -s ' ' 1 20000` (the same
//     numbers on one line: a few large writes). From --stats-json's `mmio` counts: the console
//     device's register accesses (each an exit, a posted store a cheaper one) per byte of
//     output, the PLIC's beside them (each interrupt costs a claim and a complete) and the ratio
//     virtio/16550. A run per console that types as many bytes and prints nothing
//     (`iocons n 00000`), once, is subtracted: boot and shell output are not counted.
// Each run also prints how many cores other processes kept busy meanwhile (/proc/stat): on a
// small machine the figures move a lot with the neighbours, Ringvisor's more (it needs its
// main thread, a worker and libuv's I/O threads at once).
// BENCH_QUICK=1 is one round; BENCH_ROUNDS, BENCH_VIRT (Ringvisor's --virt), BENCH_IO_MIB (dd's
// count), BENCH_IO_READS, BENCH_CONSOLE_LINES and BENCH_TIMEOUT_S override the defaults.
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { closeSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_CMDLINE } from "../src/cli/run.js";
import { ensureDefaultGuest, type DefaultGuest } from "../src/host/images/pull.js";
import { BenchError, buildLinuxProgram, initrdWith, median, runGuest } from "./guest.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "dist/src/cli/main.js");
const OUT = join(ROOT, "build/bench");
const QUICK = process.env.BENCH_QUICK === "1";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));
const VIRT = process.env.BENCH_VIRT ?? "trap-and-emulate";
const MIB = Number(process.env.BENCH_IO_MIB ?? 256);
const READS = Number(process.env.BENCH_IO_READS ?? 4000);
const LINES = Number(process.env.BENCH_CONSOLE_LINES ?? 20000);
const NET_MIB = Number(process.env.BENCH_NET_MIB ?? 64);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 300);
const DISK_MIB = 512;
const MEM_MIB = 512;
const QEMU = "QEMU";
const RINGVISOR = "Ringvisor";

// The guest's side, added to the initramfs as /bin/iodisk and /bin/iocons.
const IODISK = `#!/bin/sh
# bench/io.ts: iodisk MIB READS. Sequential O_DIRECT write, then read, of /dev/vda with dd (each
# timed by CLOCK_MONOTONIC before and after), then READS random 4 KiB reads (iorand) over the
# MIB MiB that dd has just written and read.
dev=/dev/vda mib=$1 reads=$2
[ -b $dev ] || { echo "io error: no block device $dev"; exit 1; }
for dir in write read; do
  if [ $dir = write ]; then set -- if=/dev/zero of=$dev oflag=direct; else set -- if=$dev of=/dev/null iflag=direct; fi
  a=$(iorand clock)
  dd "$@" bs=1M count=$mib 2>/tmp/dd.err
  s=$?
  b=$(iorand clock)
  echo "io seq$dir status $s start $a end $b dd: $(tr '\\n' ' ' </tmp/dd.err)"
done
iorand $dev $reads $mib || echo "io error: iorand failed"
echo "io disk done"
`;
const IOCONS = `#!/bin/sh
# bench/io.ts: iocons n|s N. seq 1 N on the console, a number a line (n) or all on one line
# separated by spaces (s), timed by CLOCK_MONOTONIC.
a=$(iorand clock)
if [ "$1" = s ]; then seq -s ' ' 1 $2; else seq 1 $2; fi
b=$(iorand clock)
echo "io console start $a end $b"
`;

const SEQ_LINE = /^io seq(write|read) status (\d+) start ([\d.]+) end ([\d.]+) dd: (.*)$/;
const IORAND_LINE = /^iorand reads (\d+) bytes 4096 seconds ([\d.]+) iops ([\d.]+) median_us ([\d.]+) p99_us ([\d.]+) min_us ([\d.]+) max_us ([\d.]+) mean_us ([\d.]+) sum ([0-9a-f]{16})$/;
const TCP_LINE = /^tcpsend bytes (\d+) seconds ([\d.]+) mbps ([\d.]+) received (\d+)$/;
const CONSOLE_LINE = /^io console start ([\d.]+) end ([\d.]+)$/;

interface BlkStats {
  requests: number;
  notifications: number;
  interrupts: number;
  suppressed: number;
  reads: number;
  writes: number;
  flushes: number;
  bytesRead: number;
  bytesWritten: number;
  inFlightMax: number;
  accesses: number; // the device's register accesses (loads + stores)
  plic: number;
  exits: Record<string, number>; // hostExits
  seconds: number; // the whole run's
}

interface DiskSample {
  boot: number;
  wall: number;
  write: number; // MB/s
  read: number;
  iops: number;
  medianUs: number;
  p99Us: number;
  meanUs: number;
  maxUs: number;
  sum: string;
  tcp: number; // guest-to-host MB/s
  blk?: BlkStats; // Ringvisor's
  net?: { frames: number; notifications: number; interrupts: number }; // Ringvisor's virtio-net, both directions
}

interface ConsoleSample {
  bytes: number; // console output, as the host received it
  device: number; // the console device's register accesses
  plic: number;
  mmio: number; // every device's
  seconds: number; // seq by the guest's clock
}

interface StatsJson {
  seconds: number;
  hostExits: Record<string, number>;
  mmio: Record<string, { loads: number; stores: number }>;
  virtio: { name: string; queues: { notifications: number; requests: number; interrupts: number; suppressed: number }[]; device: Record<string, number> }[];
}

function lines(console: string): string[] {
  return console.split(/\r?\n/).map((l) => l.replace(/\r/g, "").trim());
}

// The guest's report of one disk run; every figure or a BenchError that says what is missing.
function parseDisk(what: string, console: string): Omit<DiskSample, "boot" | "wall" | "blk"> {
  const tail = `; last console output:\n${console.slice(-1500)}`;
  const err = lines(console).find((l) => l.startsWith("io error:") || l.startsWith("iorand:"));
  if (err) throw new BenchError(`${what}: the guest says "${err}"${tail}`);
  const mbps: Record<string, number> = {};
  for (const l of lines(console)) {
    const m = SEQ_LINE.exec(l);
    if (!m) continue;
    const [dir, status, start, end, dd] = [m[1]!, Number(m[2]), Number(m[3]), Number(m[4]), m[5]!];
    if (status !== 0) throw new BenchError(`${what}: dd (sequential ${dir}) exited with status ${status}: ${dd}${tail}`);
    if (!dd.includes(`${MIB}+0 records out`)) throw new BenchError(`${what}: dd (sequential ${dir}) did not copy ${MIB} full blocks: ${dd}${tail}`);
    if (!(end > start)) throw new BenchError(`${what}: sequential ${dir}: the guest's clock did not advance (${start} to ${end})${tail}`);
    mbps[dir] = (MIB * 2 ** 20) / 1e6 / (end - start);
  }
  for (const dir of ["write", "read"]) {
    if (mbps[dir] === undefined) throw new BenchError(`${what}: no "io seq${dir}" line from the guest's /bin/iodisk${tail}`);
  }
  const r = lines(console).map((l) => IORAND_LINE.exec(l)).find((m) => m !== null);
  if (!r) throw new BenchError(`${what}: no report line from /bin/iorand${tail}`);
  if (Number(r[1]) !== READS) throw new BenchError(`${what}: iorand reported ${r[1]} reads, not ${READS}${tail}`);
  if (!lines(console).includes("io disk done")) throw new BenchError(`${what}: /bin/iodisk did not finish${tail}`);
  const t = lines(console).map((l) => TCP_LINE.exec(l)).find((m) => m !== null);
  if (!t) throw new BenchError(`${what}: no report line from /bin/tcpsend${tail}`);
  if (Number(t[1]) !== NET_MIB * 2 ** 20 || Number(t[4]) !== NET_MIB * 2 ** 20) throw new BenchError(`${what}: tcpsend sent ${t[1]} bytes and the host received ${t[4]}, not ${NET_MIB * 2 ** 20}${tail}`);
  return { write: mbps.write!, read: mbps.read!, iops: Number(r[3]), medianUs: Number(r[4]), p99Us: Number(r[5]), maxUs: Number(r[7]), meanUs: Number(r[8]), sum: r[9]!, tcp: Number(t[3]) };
}

function readStats(what: string, path: string): StatsJson {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as StatsJson;
  } catch (e) {
    throw new BenchError(`${what}: cannot read its --stats-json ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const accesses = (s: StatsJson, device: string): number => {
  const c = s.mmio[device];
  return c ? c.loads + c.stores : 0;
};

function blkStats(what: string, s: StatsJson): BlkStats {
  const d = s.virtio.find((v) => v.name.startsWith("virtio-blk"));
  if (!d || d.queues.length === 0) throw new BenchError(`${what}: its --stats-json has no virtio-blk device (devices: ${s.virtio.map((v) => v.name).join(", ") || "none"})`);
  const q = d.queues.reduce((a, b) => ({ notifications: a.notifications + b.notifications, requests: a.requests + b.requests, interrupts: a.interrupts + b.interrupts, suppressed: a.suppressed + b.suppressed }));
  const dev = (k: string): number => d.device[k] ?? NaN;
  return {
    ...q,
    reads: dev("reads"), writes: dev("writes"), flushes: dev("flushes"), bytesRead: dev("bytesRead"), bytesWritten: dev("bytesWritten"), inFlightMax: dev("inFlightMax"),
    accesses: accesses(s, d.name), plic: accesses(s, "plic"), exits: s.hostExits, seconds: s.seconds,
  };
}

function netStats(s: StatsJson): DiskSample["net"] {
  const d = s.virtio.find((v) => v.name.startsWith("virtio-net"));
  if (!d) return undefined;
  const sum = (k: "notifications" | "interrupts" | "requests"): number => d.queues.reduce((n, q) => n + q[k], 0);
  return { frames: sum("requests"), notifications: sum("notifications"), interrupts: sum("interrupts") };
}

// The host's end of tcpsend: counts what arrives and, at the guest's end of stream, answers with
// the count and closes. Runs in this process, for either system's guest.
class TcpSink {
  private readonly server = createServer({ allowHalfOpen: true }, (sock) => {
    let n = 0;
    sock.on("data", (d: Buffer) => { n += d.length; });
    sock.on("end", () => sock.end(`${n}\n`));
    sock.on("error", () => sock.destroy());
  });

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => resolve());
    });
    return (this.server.address() as { port: number }).port;
  }

  close(): void {
    this.server.close();
  }
}

const guestScript = (port: number): string => `iodisk ${MIB} ${READS}\ntcpsend 10.0.2.2 ${port} ${NET_MIB} || echo "io error: tcpsend failed"\npoweroff -f\n`;

function ringvisorArgs(guest: DefaultGuest, initrd: string, stats: string, extra: string[]): string[] {
  return [CLI, "run", "--kernel", guest.kernel, "--initrd", initrd, "--mem", String(MEM_MIB), "--cpus", "1", "--virt", VIRT, "--stats-json", stats, ...extra];
}

// Brings the whole image into the host's page cache.
function warm(path: string): void {
  const fd = openSync(path, "r");
  try {
    const chunk = Buffer.alloc(8 << 20);
    while (readSync(fd, chunk, 0, chunk.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}

async function diskRingvisor(guest: DefaultGuest, initrd: string, disk: string, round: number, port: number): Promise<DiskSample> {
  const what = `${RINGVISOR} disk round ${round}`;
  const stats = join(OUT, `io-stats-disk-${round}.json`);
  rmSync(stats, { force: true });
  const g = await runGuest({ what, command: process.execPath, args: ringvisorArgs(guest, initrd, stats, ["--disk", disk]), script: guestScript(port), typing: "stdin", timeoutS: TIMEOUT_S });
  const st = readStats(what, stats);
  return { boot: g.boot, wall: g.wall, ...parseDisk(what, g.console), blk: blkStats(what, st), net: netStats(st) };
}

async function diskQemu(guest: DefaultGuest, initrd: string, disk: string, round: number, port: number): Promise<DiskSample> {
  const what = `${QEMU} disk round ${round}`;
  const args = ["-M", "virt", "-m", String(MEM_MIB), "-smp", "1", "-nographic", "-no-reboot", "-bios", "default",
    "-kernel", guest.kernel, "-initrd", initrd, "-append", DEFAULT_CMDLINE,
    "-drive", `file=${disk},format=raw,if=none,id=d0`, "-device", "virtio-blk-device,drive=d0",
    "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"];
  const g = await runGuest({ what, command: "qemu-system-riscv64", args, script: guestScript(port), typing: "prompt", timeoutS: TIMEOUT_S });
  return { boot: g.boot, wall: g.wall, ...parseDisk(what, g.console) };
}

const CONSOLES = ["serial", "virtio"] as const;
type Console = (typeof CONSOLES)[number];
const consoleDevice = (c: Console): string => (c === "serial" ? "uart16550" : "virtio-console");
const consoleLabel = (c: Console): string => (c === "serial" ? "16550 (ttyS0)" : "virtio console (hvc0)");

// The two outputs: seq's numbers a line each (the tty writes each number, then each line end,
// separately: small writes) and all on one line (a few large writes).
const WORKLOADS = ["n", "s"] as const;
type Workload = (typeof WORKLOADS)[number];
const workloadLabel = (w: Workload): string => (w === "n" ? `seq 1 ${LINES}` : `seq -s ' ' 1 ${LINES}`);

// One Ringvisor run that types `iocons W N` at console `c`; `n` as typed (a baseline types zeros:
// the same bytes typed and echoed, no output).
async function consoleRun(guest: DefaultGuest, initrd: string, c: Console, w: Workload, n: string, tag: string): Promise<ConsoleSample> {
  const what = `${RINGVISOR} console ${c} ${tag}`;
  const stats = join(OUT, `io-stats-console-${c}-${w}-${tag}.json`);
  rmSync(stats, { force: true });
  const extra = c === "virtio" ? ["--console", "virtio", "--append", DEFAULT_CMDLINE.replace("console=ttyS0", "console=hvc0")] : [];
  const g = await runCli(what, ringvisorArgs(guest, initrd, stats, extra), `iocons ${w} ${n}\npoweroff -f\n`);
  const m = lines(g.console).map((l) => CONSOLE_LINE.exec(l)).find((x) => x !== null);
  if (!m) throw new BenchError(`${what}: no "io console" line from the guest's /bin/iocons; last console output:\n${g.console.slice(-1500)}`);
  const s = readStats(what, stats);
  const dev = consoleDevice(c);
  if (!(dev in s.mmio)) throw new BenchError(`${what}: its --stats-json counts no ${dev} (devices: ${Object.keys(s.mmio).join(", ")})`);
  const mmio = Object.keys(s.mmio).reduce((n, k) => n + accesses(s, k), 0);
  return { bytes: Buffer.byteLength(g.console, "latin1"), device: accesses(s, dev), plic: accesses(s, "plic"), mmio, seconds: Number(m[2]) - Number(m[1]) };
}

// A Ringvisor run with the script on stdin from the start: `ringvisor run` types its first line at
// the first prompt. (runGuest waits for /init's "boot complete" line, which never shows on hvc0:
// /init's echo runs before it loads virtio_console, while /dev/console has no device behind it;
// the shell reaches hvc0 through cttyhack.)
function runCli(what: string, args: string[], script: string): Promise<{ console: string; wall: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const tail = (): string => `last console output:\n${out.slice(-1500)}\nstderr:\n${err.slice(-1500)}`;
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new BenchError(`${what}: no poweroff within ${TIMEOUT_S} s; ${tail()}`));
    }, TIMEOUT_S * 1000);
    p.stdin.on("error", () => undefined);
    p.stdout.on("data", (d: Buffer) => { out += d.toString("latin1"); });
    p.stderr.on("data", (d: Buffer) => { err += d.toString(); });
    p.on("error", (e) => {
      clearTimeout(timer);
      reject(new BenchError(`${what}: cannot run node: ${e.message}`));
    });
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") return;
      if (code !== 0) reject(new BenchError(`${what}: run failed (exit status ${code ?? signal}); ${tail()}`));
      else resolve({ console: out, wall: (performance.now() - t0) / 1000 });
    });
    p.stdin.end(script);
  });
}

// Cores the rest of the machine kept busy over an interval: all CPU time /proc/stat counts as busy
// (steal included) minus this process's and its finished children's (the guest runs). NaN where
// there is no /proc.
class Neighbours {
  private readonly busy0 = Neighbours.busy();
  private readonly own0 = Neighbours.own();
  private readonly t0 = performance.now();

  private static busy(): number {
    try {
      const f = readFileSync("/proc/stat", "latin1").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
      return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0)) / 100; // USER_HZ
    } catch {
      return NaN;
    }
  }

  // utime, stime, cutime, cstime of this process (children count once they have been waited for).
  private static own(): number {
    try {
      const f = readFileSync("/proc/self/stat", "latin1").split(") ")[1]!.split(" ").map(Number);
      return (f[11]! + f[12]! + f[13]! + f[14]!) / 100;
    } catch {
      return NaN;
    }
  }

  cores(): number {
    const wall = (performance.now() - this.t0) / 1000;
    return Math.max(0, (Neighbours.busy() - this.busy0 - (Neighbours.own() - this.own0)) / wall);
  }
}

// A raw image of DISK_MIB MiB written full of zeros: every block allocated (preallocated), the
// same file for both systems.
function makeDisk(path: string): void {
  rmSync(path, { force: true });
  const fd = openSync(path, "w");
  try {
    const chunk = Buffer.alloc(8 << 20);
    for (let i = 0; i < DISK_MIB / 8; i++) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
}

const fmt = (x: number, digits: number, unit = ""): string => (Number.isNaN(x) ? "-" : `${x.toFixed(digits)}${unit}`);
// A ratio: two decimals, or two significant digits when it is far below 1; "-" without a base.
const ratioFmt = (r: number): string => (!Number.isFinite(r) ? "-" : r > 0 && r < 0.1 ? `${r.toPrecision(2)}x` : `${r.toFixed(2)}x`);
const num = (n: number): string => (Number.isNaN(n) ? "-" : Math.round(n).toLocaleString("en-US"));

if (!Number.isInteger(NET_MIB) || !(NET_MIB >= 1) || !(ROUNDS >= 1) || !Number.isInteger(MIB) || !(MIB >= 1) || MIB > DISK_MIB || !Number.isInteger(READS) || !(READS >= 1) || !Number.isInteger(LINES) || !(LINES >= 1) || !(TIMEOUT_S > 0)) {
  process.stderr.write(`bench:io: BENCH_ROUNDS, BENCH_IO_READS, BENCH_NET_MIB, BENCH_CONSOLE_LINES and BENCH_TIMEOUT_S must be positive, BENCH_IO_MIB a whole number from 1 to ${DISK_MIB}\n`);
  process.exit(2);
}
let guest: DefaultGuest;
let initrd: string;
const disk = join(OUT, "io-disk.img");
try {
  guest = await ensureDefaultGuest({ quiet: true });
  mkdirSync(OUT, { recursive: true });
  const programs = { iorand: buildLinuxProgram(ROOT, OUT, "iorand"), tcpsend: buildLinuxProgram(ROOT, OUT, "tcpsend"), iodisk: Buffer.from(IODISK), iocons: Buffer.from(IOCONS) };
  initrd = initrdWith(guest.initrd, join(OUT, "initramfs-io.cpio.gz"), programs);
  makeDisk(disk);
} catch (e) {
  process.stderr.write(`bench:io: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
}
const qemuVersion = spawnSync("qemu-system-riscv64", ["--version"], { encoding: "utf8" });
const haveQemu = qemuVersion.status === 0;
const systems = haveQemu ? [RINGVISOR, QEMU] : [RINGVISOR];
process.stdout.write(`kernel ${guest.kernelVersion}, busybox ${guest.busyboxVersion}; initrd ${initrd} (default + /bin/iorand, tcpsend, iodisk, iocons); cmdline "${DEFAULT_CMDLINE}"\n`);
process.stdout.write(`machine: ${cpus()[0]?.model ?? "unknown"} x${cpus().length}, Node ${process.version}\n`);
process.stdout.write(`guests: 1 vCPU, ${MEM_MIB} MiB; disk ${disk}: ${DISK_MIB} MiB raw, preallocated (zeros), the same file for both; Ringvisor --virt ${VIRT}\n`);
process.stdout.write(haveQemu
  ? `reference: ${qemuVersion.stdout.split("\n")[0]} -M virt -bios default (OpenSBI), TCG, -drive format=raw,if=none -device virtio-blk-device, -netdev user -device virtio-net-device\n`
  : "qemu-system-riscv64 is not installed: Ringvisor's figures only, no comparison (npm run setup installs it)\n");
process.stdout.write(`rounds: ${ROUNDS}, alternating; in each boot: dd ${MIB} x 1 MiB O_DIRECT write, then read; ${READS} random 4 KiB O_DIRECT reads over those ${MIB} MiB (queue depth 1); then ${NET_MIB} MiB guest to host over TCP through the user-mode NAT; the image is read on the host before each run (its page cache warm)\n\n`);

const t0 = performance.now();
let started = 0;
const failed = new Map<string, string>();
const disks = new Map<string, DiskSample[]>(systems.map((s) => [s, []]));
const sums = new Set<string>();

const sink = new TcpSink();
const sinkPort = await sink.listen();
process.stdout.write("disk and TCP (MB/s = 10^6 bytes per second, by the guest's clock):\n");
for (let round = 1; round <= ROUNDS; round++) {
  const order = round % 2 === 1 ? systems : [...systems].reverse();
  for (const system of order) {
    if (failed.has(system)) continue;
    started++;
    try {
      warm(disk);
      const others = new Neighbours();
      const s = system === QEMU ? await diskQemu(guest, initrd, disk, round, sinkPort) : await diskRingvisor(guest, initrd, disk, round, sinkPort);
      const busy = others.cores();
      disks.get(system)!.push(s);
      sums.add(s.sum);
      process.stdout.write(`round ${round}: ${system.padEnd(10)} write ${fmt(s.write, 1)} MB/s, read ${fmt(s.read, 1)} MB/s, 4 KiB random read ${fmt(s.iops, 0)} IOPS, ` +
        `latency median ${fmt(s.medianUs, 0)} us p99 ${fmt(s.p99Us, 0)} us (mean ${fmt(s.meanUs, 0)}, max ${fmt(s.maxUs, 0)}); TCP to the host ${fmt(s.tcp, 1)} MB/s; boot ${s.boot.toFixed(2)} s, ${s.wall.toFixed(1)} s in all; other processes ${fmt(busy, 2)} cores\n`);
      const b = s.blk;
      if (b) {
        const reqs = b.reads + b.writes;
        process.stdout.write(`         virtio-blk over the whole run: ${num(b.writes)} writes (${fmt(b.bytesWritten / Math.max(1, b.writes) / 1024, 0)} KiB each), ${num(b.reads)} reads (${fmt(b.bytesRead / Math.max(1, b.reads) / 1024, 1)} KiB each), ` +
          `${num(b.flushes)} flushes; ${num(b.notifications)} notifications (${fmt(b.notifications / Math.max(1, b.requests), 2)} per request), ${num(b.interrupts)} interrupts (${fmt(b.interrupts / Math.max(1, b.requests), 2)} per request, ${num(b.suppressed)} suppressed), ` +
          `at most ${num(b.inFlightMax)} in flight; ${num(b.accesses)} register accesses (${fmt(b.accesses / Math.max(1, reqs), 2)} per request), PLIC ${num(b.plic)}; host exits ${Object.entries(b.exits).map(([k, v]) => `${k} ${num(v)}`).join(", ")}\n`);
      }
      if (s.net) process.stdout.write(`         virtio-net over the whole run: ${num(s.net.frames)} buffers, ${num(s.net.notifications)} notifications, ${num(s.net.interrupts)} interrupts\n`);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      failed.set(system, msg);
      process.stdout.write(`round ${round}: ${system}: FAILED, no more runs of it\n${msg}\n`);
    }
  }
}
if (sums.size > 1) {
  process.stdout.write(`DATA MISMATCH: iorand's checksums of the data read differ between runs: ${[...sums].join(", ")}\n`);
  failed.set("data", "checksums differ");
}

// Console: a baseline per device first, then the measured runs, alternating.
const ZEROS = "0".repeat(String(LINES).length);
process.stdout.write(`\nconsole (Ringvisor only, --virt ${VIRT}): ${WORKLOADS.map(workloadLabel).join(" and ")}; a baseline per console (iocons n ${ZEROS}: the same typing, no output) subtracted:\n`);
const baseline = new Map<Console, ConsoleSample>();
const consoles = new Map<string, ConsoleSample[]>();
const consoleFailed = new Set<Console>();
for (const c of CONSOLES) {
  started++;
  try {
    const b = await consoleRun(guest, initrd, c, "n", ZEROS, "baseline");
    baseline.set(c, b);
    process.stdout.write(`baseline: ${consoleLabel(c).padEnd(22)} ${num(b.bytes)} bytes of boot and shell output, ${num(b.device)} register accesses, PLIC ${num(b.plic)}, all MMIO ${num(b.mmio)}\n`);
  } catch (e) {
    consoleFailed.add(c);
    failed.set(`console ${c}`, e instanceof Error ? e.message : String(e));
    process.stdout.write(`baseline: ${c}: FAILED\n${e instanceof Error ? e.message : String(e)}\n`);
  }
}
for (let round = 1; round <= ROUNDS; round++) {
  const order = round % 2 === 1 ? CONSOLES : [...CONSOLES].reverse();
  for (const w of WORKLOADS) {
    for (const c of order) {
      if (consoleFailed.has(c)) continue;
      started++;
      try {
        const others = new Neighbours();
        const s = await consoleRun(guest, initrd, c, w, String(LINES), `round${round}`);
        const busy = others.cores();
        const b = baseline.get(c)!;
        const d: ConsoleSample = { bytes: s.bytes - b.bytes, device: s.device - b.device, plic: s.plic - b.plic, mmio: s.mmio - b.mmio, seconds: s.seconds };
        const key = `${c}/${w}`;
        consoles.set(key, [...(consoles.get(key) ?? []), d]);
        process.stdout.write(`round ${round}: ${workloadLabel(w).padEnd(20)} ${consoleLabel(c).padEnd(22)} ${num(d.bytes)} bytes, ${num(d.device)} register accesses: ${fmt(d.bytes / d.device, 2)} bytes per access; ` +
          `PLIC ${num(d.plic)}, all MMIO ${num(d.mmio)} (${fmt(d.bytes / d.mmio, 2)} bytes per access); ${fmt(d.seconds, 2)} s by the guest's clock; other processes ${fmt(busy, 2)} cores\n`);
      } catch (e) {
        consoleFailed.add(c);
        failed.set(`console ${c}`, e instanceof Error ? e.message : String(e));
        process.stdout.write(`round ${round}: console ${c}: FAILED, no more runs of it\n${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
  }
}

// Summary.
const med = (system: string, f: (s: DiskSample) => number): number => median((disks.get(system) ?? []).map(f));
const hasQemu = (disks.get(QEMU) ?? []).length > 0;
const hasMine = (disks.get(RINGVISOR) ?? []).length > 0;
process.stdout.write(`\nmedians of ${ROUNDS} round(s):\n`);
if (hasMine || hasQemu) {
  const rows: { name: string; f: (s: DiskSample) => number; digits: number; unit: string; higherBetter: boolean; target?: number }[] = [
    { name: `sequential write (dd bs=1M count=${MIB} oflag=direct)`, f: (s) => s.write, digits: 1, unit: " MB/s", higherBetter: true },
    { name: `sequential read (dd bs=1M count=${MIB} iflag=direct)`, f: (s) => s.read, digits: 1, unit: " MB/s", higherBetter: true },
    { name: "4 KiB random read, queue depth 1", f: (s) => s.iops, digits: 0, unit: " IOPS", higherBetter: true },
    { name: "4 KiB read latency, median", f: (s) => s.medianUs, digits: 0, unit: " us", higherBetter: false },
    { name: "4 KiB read latency, p99", f: (s) => s.p99Us, digits: 0, unit: " us", higherBetter: false },
    { name: `TCP guest to host (${NET_MIB} MiB through the user-mode NAT)`, f: (s) => s.tcp, digits: 1, unit: " MB/s", higherBetter: true, target: 0.5 },
  ];
  process.stdout.write(`${"".padEnd(54)}${"Ringvisor".padEnd(14)}${"QEMU TCG".padEnd(14)}Ringvisor/QEMU\n`);
  for (const r of rows) {
    const mine = med(RINGVISOR, r.f);
    const ref = med(QEMU, r.f);
    const ratio = mine / ref;
    const goal = r.target ?? 1;
    const verdict = Number.isNaN(ratio) ? "" : r.higherBetter ? `${ratio.toFixed(2)}x (target >= ${goal.toFixed(1)}: ${ratio >= goal ? "met" : "NOT met"})` : `${ratio.toFixed(2)}x (target <= 1.0: ${ratio <= 1 ? "met" : "NOT met"})`;
    process.stdout.write(`${r.name.padEnd(54)}${fmt(mine, r.digits, r.unit).padEnd(14)}${fmt(ref, r.digits, r.unit).padEnd(14)}${verdict}\n`);
  }
  process.stdout.write(`${"boot to the shell marker (host clock)".padEnd(54)}${fmt(med(RINGVISOR, (s) => s.boot), 2, " s").padEnd(14)}${fmt(med(QEMU, (s) => s.boot), 2, " s").padEnd(14)}${hasMine && hasQemu ? `${(med(RINGVISOR, (s) => s.boot) / med(QEMU, (s) => s.boot)).toFixed(2)}x` : ""}\n`);
}
const cmed = (c: Console, w: Workload, f: (s: ConsoleSample) => number): number => median((consoles.get(`${c}/${w}`) ?? []).map(f));
for (const w of WORKLOADS) {
  if (!CONSOLES.some((c) => (consoles.get(`${c}/${w}`) ?? []).length > 0)) continue;
  process.stdout.write(`\n${`console, ${workloadLabel(w)} (Ringvisor)`.padEnd(54)}${"16550".padEnd(14)}${"virtio".padEnd(14)}virtio/16550\n`);
  const crow = (name: string, f: (s: ConsoleSample) => number, digits: number): void => {
    const a = cmed("serial", w, f);
    const b = cmed("virtio", w, f);
    process.stdout.write(`${name.padEnd(54)}${fmt(a, digits).padEnd(14)}${fmt(b, digits).padEnd(14)}${ratioFmt(b / a)}\n`);
  };
  crow("bytes of output", (s) => s.bytes, 0);
  crow("device register accesses", (s) => s.device, 0);
  crow("bytes per device register access", (s) => s.bytes / s.device, 2);
  crow("PLIC register accesses", (s) => s.plic, 0);
  crow("bytes per access, device and PLIC", (s) => s.bytes / (s.device + s.plic), 2);
  crow("bytes per access, every device", (s) => s.bytes / s.mmio, 2);
  crow("seconds by the guest's clock", (s) => s.seconds, 2);
}
sink.close();
rmSync(disk, { force: true }); // 512 MiB not worth keeping: every run writes it afresh
process.stdout.write(`\n${started} runs in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
if (failed.size > 0) {
  process.stdout.write(`FAILED: ${[...failed.keys()].join(", ")}\n`);
  process.exitCode = 1;
}
