// `ringvisor run`: boot a guest with its console on this terminal (or on stdin/stdout when they
// are not a terminal, so scripts can drive a guest).
import { closeSync, openSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { Command, Option } from "commander";
import { positiveInt, memMiB, pcpuCount, readInput, jitSwitch, JIT_HELP, type JitMode } from "./args.js";
import { MAX_CPUS, VIRT_MODES, type VirtMode, type RunResult, type Vm } from "../vm/vm.js";
import { DEFAULT_CMDLINE } from "../vm/spec.js";
import { Host, MAX_PCPUS, checkTranslatorFor } from "../host/host.js";
import { UserError } from "../errors.js";
import { ensureDefaultGuest } from "../host/images/pull.js";
import { exitTable } from "../vmm/stats.js";
import type { HostStats } from "../host/host.js";
import { DETACH, TYPIST_TICK_MS, QueryFilter, Typist, checkOnEof, releaseStdin } from "./console.js";
import { openDisks, parseDiskArg, type DiskSpec } from "../host/disks/open.js";
import { Nat, type Forward } from "../host/net/nat.js";
import { macFor } from "../host/net/switch.js";
import { parseForward, parseShare, type ShareSpec } from "./args.js";
import { Share } from "../host/share.js";
import { ControlServer, checkVmName } from "../host/control.js";

export { DEFAULT_CMDLINE };
export { EOF_STOP_STATUS } from "./console.js";

interface RunOptions {
  kernel?: string;
  initrd?: string;
  append?: string;
  mem: number;
  cpus: number;
  pcpus?: number;
  jit: JitMode;
  virt: string;
  scatterFrames?: number;
  markers?: boolean;
  stats?: boolean;
  statsJson?: string;
  mirror?: string;
  allowUnverified?: boolean;
  onEof: string;
  disk: DiskSpec[];
  net: string;
  forward: Forward[];
  share: ShareSpec[];
  console: string;
  rng: boolean;
  balloon: boolean;
  name?: string;
}

export function registerRunCommand(program: Command): void {
  program
    .command("run")
    .description("boot a guest (by default Debian's riscv64 kernel with a busybox initramfs) with its console here")
    .option("--name <name>", "the VM's name, by which `ringvisor exec`, `forward`, `stop` and `ls` reach it (default: vm, or vm-2, vm-3, ... when taken)")
    .option("--kernel <path>", "kernel: a RISC-V Linux Image or an ELF")
    .option("--initrd <path>", "initial ramdisk")
    .option("--append <cmdline>", "kernel command line", undefined)
    .option("--mem <MiB>", "guest RAM in MiB", memMiB, 512)
    .option("--cpus <n>", `number of virtual CPUs, 1 to ${MAX_CPUS}`, positiveInt, 1)
    .option("--pcpus <n>", `physical CPUs (worker threads) of the host, 1 to ${MAX_PCPUS}; default: one per host core`, pcpuCount)
    .addOption(new Option("--virt <mode>", `how the guest is run: ${VIRT_MODES.join(", ")}`).default("trap-and-emulate"))
    .option("--jit <on|off|eager>", JIT_HELP, jitSwitch, true)
    .option("--scatter-frames <seed>", "back guest RAM with machine frames in a seeded random order", positiveInt)
    .addOption(new Option("--on-eof <action>", "when piped input ends: poweroff (end the guest's shell once the last command is done, which powers the default guest off) or wait (run until the guest powers off)").default("poweroff"))
    .option("--disk <file[,ro]>", "a disk image (raw) as the next virtio disk: /dev/vda, /dev/vdb, ... in order; ro: read-only (repeatable)", (v: string, all: DiskSpec[]) => [...all, parseDiskArg(v)], [] as DiskSpec[])
    .addOption(new Option("--net <kind>", "the network card: nat (user-mode NAT to the outside, DHCP and DNS inside, the host at 10.0.2.2), or none").choices(["nat", "none"]).default("nat"))
    .option("--forward <host:guest>", "forward a TCP port on the host's loopback to one in the guest, e.g. 2222:22 (repeatable; with --net nat)", (v: string, all: Forward[]) => [...all, parseForward(v)], [] as Forward[])
    .option("--share <dir:tag[,rw]>", "share a host folder with the guest over virtio-9p, read-only unless ,rw (repeatable); in the guest: mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt", (v: string, all: ShareSpec[]) => [...all, parseShare(v)], [] as ShareSpec[])
    .addOption(new Option("--console <device>", "where your input goes: serial (the 16550, ttyS0) or virtio (a virtio console, hvc0: give the guest console=hvc0)").choices(["serial", "virtio"]).default("serial"))
    .option("--no-rng", "leave out the virtio entropy device")
    .option("--no-balloon", "leave out the virtio balloon")
    .option("--markers", "report each marker instruction (slti x0, x0, 0x7a5) the guest executes")
    .option("--stats", "print execution statistics at exit (exits by reason, shadow paging)")
    .option("--stats-json <path>", "write the same statistics as JSON to a file at exit")
    .option("--mirror <url>", "Debian mirror for the default guest image")
    .option("--allow-unverified", "use the default guest even if the mirror's index cannot be verified (no signature, gpgv or keyring), with a warning; a bad signature is still refused")
    .action(async (opts: RunOptions) => {
      process.exitCode = await runCommand(opts);
    });
}

// Everything a user can get wrong is checked before the guest image is fetched or anything
// boots, so a mistake costs nothing and the run's results are never lost at the end.
function checkOptions(opts: RunOptions): void {
  if (!(VIRT_MODES as readonly string[]).includes(opts.virt)) {
    throw new UserError(`unknown --virt mode '${opts.virt}': choose one of ${VIRT_MODES.join(", ")}`);
  }
  checkTranslatorFor(opts.virt, opts.jit);
  checkOnEof(opts.onEof);
  if (opts.cpus > MAX_CPUS) throw new UserError(`--cpus must be between 1 and ${MAX_CPUS} (got ${opts.cpus})`);
  if (opts.mem < 16) throw new UserError(`--mem ${opts.mem} MiB is too small; a Linux guest needs at least 16 MiB`);
  if (opts.kernel === "") throw new UserError("--kernel needs a path (leave the flag out to boot the default Debian guest)");
  if (opts.initrd === "") throw new UserError("--initrd needs a path");
  if (opts.statsJson !== undefined) checkWritable(opts.statsJson, "--stats-json");
  if (opts.name !== undefined) checkVmName(opts.name, "--name");
}

// The control socket, and so the name: the one asked for, or the first free default.
async function claimName(asked: string | undefined): Promise<ControlServer> {
  if (asked !== undefined) return ControlServer.open(asked);
  for (let i = 1; ; i++) {
    try {
      return await ControlServer.open(i === 1 ? "vm" : `vm-${i}`);
    } catch (e) {
      if (!(e instanceof UserError) || !/already running/.test(e.message) || i >= 99) throw e;
    }
  }
}

// Opens (and so creates) the file now; it is rewritten at exit.
function checkWritable(path: string, flag: string): void {
  if (path === "") throw new UserError(`${flag} needs a file name`);
  try {
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw new UserError(`${flag} ${path} is a directory; name a file`);
    closeSync(openSync(path, "a"));
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? `directory ${dirname(path)} does not exist` : code === "EACCES" ? "permission denied" : String(code ?? e);
    throw new UserError(`${flag} ${path} cannot be written: ${why}`);
  }
}

async function runCommand(opts: RunOptions): Promise<number> {
  checkOptions(opts);
  // The user's own files are read before the default guest is fetched: a typo fails at once.
  let kernel = opts.kernel !== undefined ? readInput(opts.kernel, "kernel") : undefined;
  let initrd = opts.initrd !== undefined ? readInput(opts.initrd, "initrd") : undefined;
  // Disks too (and their locks taken): a missing or busy image fails before any download.
  const backends = await openDisks(opts.disk);
  if (!kernel) {
    const g = await ensureDefaultGuest({ mirror: opts.mirror, quiet: !process.stderr.isTTY, allowUnverified: opts.allowUnverified });
    kernel = readInput(g.kernel, "kernel");
    initrd ??= readInput(g.initrd, "initrd");
  }

  const out = process.stdout;
  // Terminal queries the guest's shell sends (ash asks for the cursor position after each
  // prompt) mean nothing in a file or a pipe, and no terminal will answer them there.
  const filter = out.isTTY ? undefined : new QueryFilter();
  if (opts.forward.length > 0 && opts.net !== "nat") throw new UserError("--forward needs --net nat");
  const nat = opts.net === "nat" ? new Nat() : undefined;
  let ctl: ControlServer;
  try {
    for (const f of opts.forward) await nat!.forward(f);
    ctl = await claimName(opts.name);
  } catch (e) {
    nat?.close();
    await Promise.allSettled(backends.map((b) => b.close()));
    throw e;
  }
  const name = ctl.name;
  const host = new Host({ pcpus: opts.pcpus, jit: opts.jit });
  let vm: Vm;
  try {
    vm = host.createVm({
      name,
      disks: backends.map((backend, i) => ({ name: `vd${String.fromCharCode(97 + i)}`, backend })),
      nics: nat ? [{ port: nat, mac: macFor(name, 0) }] : [],
      shares: opts.share.map((sh) => new Share(sh.dir, sh.tag, !sh.rw)),
      primaryConsole: opts.console as "serial" | "virtio",
      rng: opts.rng,
      balloon: opts.balloon,
      onDeviceError: (device, reason) => process.stderr.write(`\r\nringvisor: ${device} stopped: the guest's driver broke the virtio protocol (${reason}); the device waits for a reset\r\n`),
      kernel,
      initrd,
      cmdline: opts.append ?? DEFAULT_CMDLINE,
      memBytes: opts.mem * 2 ** 20,
      cpus: opts.cpus,
      virt: opts.virt as VirtMode,
      scatterSeed: opts.scatterFrames,
      console: (b) => out.write(filter ? filter.pass(b) : b),
      markers: opts.markers,
    });
  } catch (e) {
    ctl.close();
    nat?.close();
    await Promise.allSettled(backends.map((b) => b.close()));
    throw e;
  }
  ctl.serve({ vm, nat });

  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
  if (tty) {
    process.stderr.write(`ringvisor: VM ${name}, console attached; press Ctrl-] to detach and end the run (\`ringvisor exec ${name} CMD\` runs a command in it)\r\n`);
    stdin.setRawMode(true);
  }
  const typist = tty ? undefined : new Typist(vm, opts.onEof === "poweroff");
  vm.onConsoleOutput = (b) => typist?.output(b);
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
  const onEnd = (): void => typist?.end();
  stdin.on("data", onData);
  stdin.on("end", onEnd);
  stdin.on("error", onEnd);
  const pacer = typist ? setInterval(() => typist.tick(), TYPIST_TICK_MS) : undefined;

  let r: RunResult;
  try {
    host.start(vm);
    r = await vm.finished;
  } finally {
    if (pacer) clearInterval(pacer);
    ctl.close();
    stdin.off("data", onData);
    stdin.off("end", onEnd);
    if (tty) stdin.setRawMode(false);
    if (filter) out.write(filter.flush());
    releaseStdin(stdin);
  }
  if (tty || r.status !== 0) process.stderr.write(`\r\nringvisor: ${r.reason}\r\n`);
  if (opts.markers) {
    for (const [i, m] of vm.markers.entries()) {
      process.stderr.write(`marker ${i + 1}: hart ${m.hart} instret ${m.instret} at ${m.seconds.toFixed(3)} s\n`);
    }
  }
  const pcpus = host.stats().pcpus;
  // Disks are flushed, closed and unlocked before the run ends.
  vm.dispose();
  await vm.closing;
  if (opts.stats) printStats(vm, r, pcpus);
  if (opts.statsJson) writeFileSync(opts.statsJson, JSON.stringify({ seconds: r.seconds, ...vm.stats(), pcpus }, null, 2) + "\n");
  return r.status;
}

function printStats(vm: Vm, r: RunResult, pcpus: HostStats["pcpus"]): void {
  const w = (s: string): boolean => process.stderr.write(s + "\n");
  const st = vm.stats();
  const num = (n: number): string => n.toLocaleString("en-US");
  w(`run: ${r.seconds.toFixed(3)} s, ${r.instructions} instructions, ${(Number(r.instructions) / r.seconds / 1e6).toFixed(1)} MIPS, --virt ${st.virt}`);
  w(`  host exits: ${Object.entries(st.hostExits).map(([k, v]) => `${k} ${num(v)}`).join(", ")}`);
  w(`  sbi calls:  ${Object.entries(st.sbi).map(([k, v]) => `${k} ${num(v)}`).join(", ")}`);
  const dev = Object.entries(st.mmio).filter(([, c]) => c.loads + c.stores > 0).map(([k, c]) => `${k} ${num(c.loads)}/${num(c.stores)}`);
  if (dev.length > 0) w(`  device register accesses (loads/stores): ${dev.join(", ")}`);
  for (const d of st.virtio) {
    const q = d.queues.map((c, i) => `q${i} ${num(c.requests)} req ${num(c.notifications)} notify ${num(c.interrupts)} irq${c.suppressed ? ` (${num(c.suppressed)} suppressed)` : ""} ${num(c.bytesIn)}B in ${num(c.bytesOut)}B out`);
    const extra = Object.entries(d.device).map(([k, v]) => `${k} ${num(v)}`).join(", ");
    w(`  ${d.name}: ${q.join("; ")}${extra ? `; ${extra}` : ""}${d.lastError ? `; FAILED: ${d.lastError}` : ""}`);
  }
  if (pcpus.some((p) => p.jit)) w(`  translated code: ${(st.translatedCodeBytes / 1024).toFixed(0)} KiB of wasm live for this VM`);
  st.cpus.forEach((c, i) => {
    w(`  hart ${i}: ${Object.entries(c.hart).map(([k, v]) => `${k} ${num(v)}`).join(", ")}`);
    const v = c.vmm;
    if (!v) return;
    w(`  vCPU ${i}: ${num(v.exits)} VMM exits, ${num(Math.round(v.exits / r.seconds))} per second`);
    const b = v.bt;
    const all = v.exits + b.avoided;
    if (st.virt === "bt") {
      w(`    binary translation: ${num(b.avoided)} exits avoided (${((100 * b.avoided) / Math.max(1, all)).toFixed(1)}% of the ${num(all)} trap-and-emulate would take): ` +
        `${num(b.csr)} csr, ${num(b.sret)} sret, ${num(b.sfence)} sfence.vma, ${num(b.syscalls)} system calls emulated in translated code; ` +
        `${num(b.injected)} interrupts injected there; ${num(b.leaves)} left translated code after; ${num(b.declined)} left to the interpreter`);
    }
    w(`    ${(st.virt === "bt" ? "reason (exits and calls)" : "exit reason").padEnd(34)}${"count".padStart(12)}${"share".padStart(8)}`);
    for (const [reason, n] of exitTable(v)) {
      w(`    ${reason.padEnd(34)}${num(n).padStart(12)}${`${((100 * n) / Math.max(1, all)).toFixed(1)}%`.padStart(8)}`);
    }
    const inj = Object.entries(v.injected).map(([k, n]) => `${k} ${num(n)}`).join(", ");
    if (inj) w(`    virtual interrupts injected: ${inj}`);
    const s = v.shadow;
    w(`    shadow: ${num(s.fills)} fills (+${num(s.prefilled)} prefilled), ${num(s.guestWalks)} guest walks, ${num(s.flushes)} flushes, ` +
      `${num(s.rebuilds)} rebuilds, ${num(s.pagesHeld)} table pages held (max ${num(s.pagesMax)}), ` +
      `${num(s.addressSpaceSwitches)} address-space switches (${num(s.addressSpacesBuilt)} built, ${num(s.addressSpacesEvicted)} evicted), ` +
      `${num(s.rootSwitches)} root switches`);
  });
  pcpus.forEach((p, i) => {
    const j = p.jit;
    if (!j) return;
    w(`  pCPU ${i} translator: ${num(j.translations)} translations in ${num(j.modules)} modules (${num(j.blocks)} blocks, ${num(j.guestInsns)} guest instructions, ` +
      `${(j.wasmBytes / 1024).toFixed(0)} KiB of wasm) in ${(j.translateMs / 1000).toFixed(3)} s, ` +
      `${j.translations > 0 ? ((1000 * j.translateMs) / j.translations).toFixed(0) : 0} us each; ${num(j.live)} live (${(j.liveBytes / 1024).toFixed(0)} KiB${j.maxLiveBytes > 0 ? ` of a ${(j.maxLiveBytes / 1048576).toFixed(0)} MiB bound` : ""}); ` +
      `${num(j.failed)} not translatable, ${num(j.invalidated)} invalidated by stores, ${num(j.evicted)} evicted; ` +
      `fence.i ${num(j.fenceI)}, checks ${num(j.checks)}${j.compileErrors ? `, ${num(j.compileErrors)} COMPILE ERRORS` : ""}`);
  });
}
