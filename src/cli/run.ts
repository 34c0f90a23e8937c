// `ringvisor run`: boot a guest with its console on this terminal (or on stdin/stdout when they
// are not a terminal, so scripts can drive a guest).
import { writeFileSync } from "node:fs";
import { Command, Option } from "commander";
import { positiveInt, memMiB, readInput } from "./args.js";
import { Vm, VIRT_MODES, type VirtMode, type RunResult } from "../vm/vm.js";
import { UserError } from "../errors.js";
import { ensureDefaultGuest } from "../host/images/pull.js";
import { exitTable } from "../vmm/stats.js";

export const DEFAULT_CMDLINE = "console=ttyS0 earlycon=sbi panic=-1";
const DETACH = 0x1d; // Ctrl-]

interface RunOptions {
  kernel?: string;
  initrd?: string;
  append?: string;
  mem: number;
  cpus: number;
  virt: string;
  scatterFrames?: number;
  markers?: boolean;
  stats?: boolean;
  statsJson?: string;
  mirror?: string;
}

export function registerRunCommand(program: Command): void {
  program
    .command("run")
    .description("boot a guest (by default Debian's riscv64 kernel with a busybox initramfs) with its console here")
    .option("--kernel <path>", "kernel: a RISC-V Linux Image or an ELF")
    .option("--initrd <path>", "initial ramdisk")
    .option("--append <cmdline>", "kernel command line", undefined)
    .option("--mem <MiB>", "guest RAM in MiB", memMiB, 512)
    .option("--cpus <n>", "number of virtual CPUs", positiveInt, 1)
    .addOption(new Option("--virt <mode>", `how the guest is run: ${VIRT_MODES.join(", ")}`).default("trap-and-emulate"))
    .option("--scatter-frames <seed>", "trap-and-emulate: back guest RAM with machine frames in a seeded random order", positiveInt)
    .option("--markers", "report each marker instruction (slti x0, x0, 0x7a5) the guest executes")
    .option("--stats", "print execution statistics at exit (exits by reason, shadow paging)")
    .option("--stats-json <path>", "write the same statistics as JSON to a file at exit")
    .option("--mirror <url>", "Debian mirror for the default guest image")
    .action(async (opts: RunOptions) => {
      process.exitCode = await runCommand(opts);
    });
}

async function runCommand(opts: RunOptions): Promise<number> {
  if (!(VIRT_MODES as readonly string[]).includes(opts.virt)) {
    throw new UserError(`unknown --virt mode '${opts.virt}': choose one of ${VIRT_MODES.join(", ")}`);
  }
  let kernelPath = opts.kernel;
  let initrdPath = opts.initrd;
  if (!kernelPath) {
    const g = await ensureDefaultGuest({ mirror: opts.mirror, quiet: !process.stderr.isTTY });
    kernelPath = g.kernel;
    initrdPath ??= g.initrd;
  }
  const kernel = readInput(kernelPath, "kernel");
  const initrd = initrdPath ? readInput(initrdPath, "initrd") : undefined;
  if (opts.mem < 16) throw new UserError(`--mem ${opts.mem} MiB is too small; a Linux guest needs at least 16 MiB`);

  const out = process.stdout;
  const vm = new Vm({
    kernel,
    initrd,
    cmdline: opts.append ?? DEFAULT_CMDLINE,
    memBytes: opts.mem * 2 ** 20,
    cpus: opts.cpus,
    virt: opts.virt as VirtMode,
    scatterSeed: opts.scatterFrames,
    console: (b) => out.write(b),
    markers: opts.markers,
  });

  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
  if (tty) {
    process.stderr.write("ringvisor: console attached; press Ctrl-] to detach and end the run\r\n");
    stdin.setRawMode(true);
  }
  const typist = tty ? undefined : new Typist(vm);
  let lastOutput = performance.now();
  vm.onConsoleOutput = () => { lastOutput = performance.now(); };
  const onData = (chunk: Buffer): void => {
    if (typist) {
      typist.add(chunk);
      return;
    }
    if (chunk.includes(DETACH)) {
      vm.stop(130, "detached by the user (Ctrl-])");
      return;
    }
    vm.input(new Uint8Array(chunk));
  };
  stdin.on("data", onData);
  stdin.on("error", () => undefined);
  const pacer = typist ? setInterval(() => typist.tick(lastOutput), 20) : undefined;

  let r: RunResult;
  try {
    r = await vm.run();
  } finally {
    if (pacer) clearInterval(pacer);
    stdin.off("data", onData);
    if (tty) stdin.setRawMode(false);
    stdin.pause();
    // A file on stdin is an fs.ReadStream, which cannot be unref'd; destroying it is enough.
    if (typeof (stdin as { unref?: unknown }).unref === "function") stdin.unref();
    else stdin.destroy();
  }
  if (tty || r.status !== 0) process.stderr.write(`\r\nringvisor: ${r.reason}\r\n`);
  if (opts.markers) {
    for (const [i, m] of vm.markers.entries()) {
      process.stderr.write(`marker ${i + 1}: hart ${m.hart} instret ${m.instret} at ${m.seconds.toFixed(3)} s\n`);
    }
  }
  if (opts.stats) printStats(vm, r);
  if (opts.statsJson) writeFileSync(opts.statsJson, JSON.stringify({ seconds: r.seconds, ...vm.stats() }, null, 2) + "\n");
  return r.status;
}

function printStats(vm: Vm, r: RunResult): void {
  const w = (s: string): boolean => process.stderr.write(s + "\n");
  const st = vm.stats();
  const num = (n: number): string => n.toLocaleString("en-US");
  w(`run: ${r.seconds.toFixed(3)} s, ${r.instructions} instructions, ${(Number(r.instructions) / r.seconds / 1e6).toFixed(1)} MIPS, --virt ${st.virt}`);
  w(`  host exits: ${Object.entries(st.hostExits).map(([k, v]) => `${k} ${num(v)}`).join(", ")}`);
  w(`  sbi calls:  ${Object.entries(st.sbi).map(([k, v]) => `${k} ${num(v)}`).join(", ")}`);
  st.cpus.forEach((c, i) => {
    w(`  hart ${i}: ${Object.entries(c.hart).map(([k, v]) => `${k} ${num(v)}`).join(", ")}`);
    const v = c.vmm;
    if (!v) return;
    w(`  vCPU ${i}: ${num(v.exits)} VMM exits, ${num(Math.round(v.exits / r.seconds))} per second`);
    w(`    ${"exit reason".padEnd(34)}${"count".padStart(12)}${"share".padStart(8)}`);
    for (const [reason, n] of exitTable(v)) {
      w(`    ${reason.padEnd(34)}${num(n).padStart(12)}${`${((100 * n) / Math.max(1, v.exits)).toFixed(1)}%`.padStart(8)}`);
    }
    const inj = Object.entries(v.injected).map(([k, n]) => `${k} ${num(n)}`).join(", ");
    if (inj) w(`    virtual interrupts injected: ${inj}`);
    const s = v.shadow;
    w(`    shadow: ${num(s.fills)} fills (+${num(s.prefilled)} prefilled), ${num(s.guestWalks)} guest walks, ${num(s.flushes)} flushes, ` +
      `${num(s.rebuilds)} rebuilds, ${num(s.pagesHeld)} table pages held (max ${num(s.pagesMax)}), ` +
      `${num(s.addressSpaceSwitches)} address-space switches (${num(s.addressSpacesBuilt)} built, ${num(s.addressSpacesEvicted)} evicted), ` +
      `${num(s.rootSwitches)} root switches`);
  });
}

// Piped input is typed the way a person at the console would: one line at a time, each when the
// guest has gone idle (every hart waiting for an interrupt) and the console has been quiet for a
// moment, as at a prompt. Input sent while the guest is still booting would otherwise be read
// and discarded before the shell starts.
const QUIET_MS = 150;

class Typist {
  private pending = Buffer.alloc(0);

  constructor(private readonly vm: Vm) {}

  add(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
  }

  tick(lastOutput: number): void {
    if (this.pending.length === 0 || this.vm.idleSince === undefined) return;
    const now = performance.now();
    if (now - lastOutput < QUIET_MS || now - this.vm.idleSince < QUIET_MS) return;
    const nl = this.pending.indexOf(0x0a);
    const end = nl < 0 ? this.pending.length : nl + 1;
    this.vm.input(new Uint8Array(this.pending.subarray(0, end)));
    this.pending = this.pending.subarray(end);
  }
}
