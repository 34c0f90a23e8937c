// `ringvisor up FILE...`: start the VMs that spec files describe (src/vm/spec.ts), all on one
// host, with one console at a time on this terminal and every console logged to a file.
//
// Everything a user can get wrong (a spec, a duplicate name, a missing file, VMs that do not fit
// in the machine or its physical CPUs, a kernel that is not one, a log directory that cannot be
// written) is found before the first VM boots: starting half of a set of VMs and then refusing
// the rest would leave the user to clean up after us.
//
// Keys on a terminal (raw mode, as `virsh console`): Ctrl-] detaches, and since the VMs live in
// this process and nothing could keep them running once it has gone, detaching stops them all
// and gives the shell back (as Ctrl-] in `ringvisor run`); Ctrl-\ moves the terminal to the next
// VM's console. The guests' own Ctrl-C and Ctrl-D reach them as typed.
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { homedir, availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Command, Option } from "commander";
import { pcpuCount, positiveInt, readInput } from "./args.js";
import { DETACH, QueryFilter, TYPIST_TICK_MS, Typist, checkOnEof, releaseStdin } from "./console.js";
import { UserError, ImageError } from "../errors.js";
import { Host, MAX_PCPUS, estimateFrames } from "../host/host.js";
import { ensureDefaultGuest } from "../host/images/pull.js";
import { defaultMachineBytes } from "../machine/machine.js";
import { FRAME_BYTES, MAX_MACHINE_BYTES, mib } from "../machine/memory.js";
import { MODULE_RESERVED_BYTES } from "../hart/layout.js";
import { parseSpec, type VmSpec } from "../vm/spec.js";
import { planBoot } from "../vm/kernel.js";
import { buildDeviceTree } from "../vm/devicetree.js";
import { RAM_BASE, boardTree } from "../vm/board.js";
import type { RunResult, Vm, VmConfig } from "../vm/vm.js";
import { openDisks, resolveDisk, type DiskSpec } from "../host/disks/open.js";
import type { BlockBackend } from "../devices/virtio/blk.js";
import { macFor } from "../host/net/switch.js";
import { Nat } from "../host/net/nat.js";
import { parseForward, parseShare, type ShareSpec } from "./args.js";
import { Share } from "../host/share.js";
import { ControlServer } from "../host/control.js";
import { formatTable } from "./table.js";

export const NEXT_CONSOLE = 0x1c; // Ctrl-backslash
const MiB = 2 ** 20;
const MAX_MACHINE_MIB = MAX_MACHINE_BYTES / MiB;
// Status of VMs stopped because the user detached or interrupted `up`, as for `run`.
const STOPPED_STATUS = 130;

export interface UpOptions {
  pcpus?: number;
  attach?: string;
  logDir?: string;
  machineMem?: number;
  onEof: string;
  mirror?: string;
  allowUnverified?: boolean;
}

export function registerUpCommand(program: Command): void {
  program
    .command("up")
    .description("start the VMs that spec files describe, on one host, with one console at a time here and every console logged to a file")
    .argument("<file...>", "VM spec files (YAML or JSON), one VM each")
    .option("--pcpus <n>", `physical CPUs (worker threads) the VMs share, 1 to ${MAX_PCPUS}; default: one per host core`, pcpuCount)
    .option("--attach <name>", "the VM whose console comes first (default: the first file's)")
    .option("--log-dir <dir>", "directory of the console logs, <name>.log each (default: $XDG_STATE_HOME/ringvisor/consoles)")
    .option("--machine-mem <MiB>", `machine memory all the VMs share, at most ${MAX_MACHINE_MIB} MiB (default: half the host's RAM, at most ${MAX_MACHINE_MIB} MiB)`, machineMiB)
    .addOption(new Option("--on-eof <action>", "when piped input ends: poweroff (type end-of-file at every VM's console once it is idle, which powers the default guest off) or wait (run until the VMs power off)").default("poweroff"))
    .option("--mirror <url>", "Debian mirror for the default guest image")
    .option("--allow-unverified", "use the default guest even if the mirror's index cannot be verified, with a warning; a bad signature is still refused")
    .action(async (files: string[], opts: UpOptions) => {
      process.exitCode = await upCommand(files, opts);
    });
}

function machineMiB(v: string): number {
  const n = positiveInt(v);
  if (n > MAX_MACHINE_MIB) throw new UserError(`--machine-mem must be at most ${MAX_MACHINE_MIB} MiB (machine memory is one 32-bit wasm memory), got ${n}`);
  return n;
}

// Where logs go by default: the XDG state directory, as for other per-user data that outlives a
// run but is not configuration or cache.
export function defaultLogDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(base, "ringvisor", "consoles");
}

interface Planned {
  file: string;
  spec: VmSpec;
  disks: DiskSpec[];
  shares: ShareSpec[];
  backends?: BlockBackend[];
  nats?: (Nat | undefined)[]; // per NIC: its NAT (with the forwards listening), for network nat
  control?: ControlServer; // its control socket, which reserves its name on this machine
  kernel?: Uint8Array; // undefined: the default guest
  initrd?: Uint8Array;
  log: string;
}

// Reads and checks every spec and everything they name; nothing is fetched or booted yet.
function plan(files: string[], opts: UpOptions): { vms: Planned[]; attach: string; logDir: string; machineBytes: number; pcpus: number } {
  checkOnEof(opts.onEof);
  const vms: Planned[] = [];
  const byName = new Map<string, string>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new UserError(`cannot read spec file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const spec = parseSpec(text, file);
    const other = byName.get(spec.name);
    if (other !== undefined) throw new UserError(`${file}: field 'name': ${other} already defines a VM named '${spec.name}'; names must be unique`);
    byName.set(spec.name, file);
    // Paths in a spec are relative to the spec file, so a directory of specs and kernels can move.
    const read = (field: "kernel" | "initrd"): Uint8Array | undefined => {
      const p = spec[field];
      if (p === undefined) return undefined;
      try {
        return readInput(resolve(dirname(file), p), field);
      } catch (e) {
        throw new UserError(`${file}: field '${field}': ${(e as Error).message}`);
      }
    };
    // A disk that is a path is relative to the spec file; a bare name is in the disk store.
    const disks = spec.disks.map((d) => ({ path: d.disk.includes("/") ? resolve(dirname(file), d.disk) : resolveDisk(d.disk), readOnly: d.readonly }));
    const shares = spec.shares.map((sh, n) => {
      try {
        return parseShare(`${resolve(dirname(file), sh.dir)}:${sh.tag}${sh.rw ? ",rw" : ""}`);
      } catch (e) {
        throw new UserError(`${file}: field 'shares.${n}': ${(e as Error).message.replace(/^--share [^:]*:[^:]*: /, "")}`);
      }
    });
    vms.push({ file, spec, disks, shares, kernel: read("kernel"), initrd: read("initrd"), log: "" });
  }

  const attach = opts.attach ?? vms[0]!.spec.name;
  if (!byName.has(attach)) throw new UserError(`--attach ${attach}: no VM of that name; the VMs are ${[...byName.keys()].join(", ")}`);

  const machineBytes = opts.machineMem !== undefined ? opts.machineMem * MiB : defaultMachineBytes();
  const machineSays = opts.machineMem !== undefined ? `--machine-mem ${opts.machineMem} MiB` : `${machineBytes / MiB} MiB, half the host's RAM (--machine-mem sets it)`;
  // As MachineMemory counts it: whole wasm pages, less what the wasm module itself keeps.
  const free = Math.ceil(machineBytes / 65536) * (65536 / FRAME_BYTES) - MODULE_RESERVED_BYTES / FRAME_BYTES;
  let used = 0;
  for (const { file, spec } of vms) {
    const need = estimateFrames({ memBytes: spec.memory * MiB, cpus: spec.vcpus, virt: spec.virt, dedicated: spec.dedicated });
    if (used + need > free) {
      const before = used > 0 ? `; the VMs before it take ${mib(used)}, leaving ${mib(free - used)}` : "";
      throw new UserError(`${file}: field 'memory': VM '${spec.name}' needs about ${mib(need)} of machine memory (${spec.memory} MiB RAM plus the hypervisor's structures), but the machine has ${machineSays}${before}`);
    }
    used += need;
  }

  const pcpus = opts.pcpus ?? Math.min(availableParallelism(), MAX_PCPUS);
  let pinned = 0;
  for (const { file, spec } of vms) {
    if (!spec.dedicated) continue;
    // The scheduler keeps one physical CPU shared, so that the other VMs can still run.
    if (pinned + spec.vcpus > pcpus - 1) {
      const pcpuSays = opts.pcpus !== undefined ? `--pcpus ${pcpus}` : `${pcpus} physical CPUs, one per host core (--pcpus sets it)`;
      throw new UserError(`${file}: field 'dedicated': VM '${spec.name}' needs ${spec.vcpus} physical CPU${spec.vcpus > 1 ? "s" : ""} of its own, but the host has ${pcpuSays}${pinned > 0 ? `, ${pinned} already dedicated` : ""}, and one must stay shared`);
    }
    pinned += spec.vcpus;
  }

  const logDir = resolve(opts.logDir ?? defaultLogDir());
  checkLogDir(logDir, opts.logDir !== undefined);
  for (const v of vms) v.log = join(logDir, `${v.spec.name}.log`);
  return { vms, attach, logDir, machineBytes, pcpus };
}

function checkLogDir(dir: string, named: boolean): void {
  const what = named ? `--log-dir ${dir}` : `the console log directory ${dir} (--log-dir picks another)`;
  try {
    makeDirs(dir);
    if (!statSync(dir).isDirectory()) throw new UserError(`${what} is not a directory`);
    accessSync(dir, constants.W_OK);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "EACCES" ? "permission denied" : code === "EEXIST" || code === "ENOTDIR" ? "a file is in the way" : String(code ?? e);
    throw new UserError(`${what} cannot be written: ${why}`);
  }
}

// mkdir -p. Node's own recursive mkdir spins forever where a parent refuses new entries with
// ENOENT (under /proc, for one).
function makeDirs(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return;
    if (code !== "ENOENT" || dirname(dir) === dir) throw e;
    makeDirs(dirname(dir));
    mkdirSync(dir);
  }
}

// The boot plan of each VM (kernel format, kernel and initrd against its memory), made now so
// that one VM's bad kernel is found before any VM boots.
function checkBoot(v: Planned, kernel: Uint8Array, initrd: Uint8Array | undefined): void {
  const memBytes = v.spec.memory * MiB;
  const dtb = buildDeviceTree(boardTree({ harts: v.spec.vcpus, memBytes, bootargs: v.spec.cmdline, initrd: initrd ? { start: 0n, end: 0n } : undefined }));
  try {
    planBoot({ kernel, initrd, dtbSize: dtb.length, memBase: RAM_BASE, memSize: BigInt(memBytes) });
  } catch (e) {
    if (!(e instanceof ImageError)) throw e;
    const field = /MiB of RAM but the VM has/.test(e.message) ? "memory" : /initrd/.test(e.message) && !/kernel/.test(e.message) ? "initrd" : "kernel";
    const whose = v.kernel === undefined && field !== "memory" ? " (the default guest)" : "";
    throw new UserError(`${v.file}: field '${field}'${whose}: ${e.message}`);
  }
}

async function upCommand(files: string[], opts: UpOptions): Promise<number> {
  const p = plan(files, opts);
  // The user's own kernels first: a bad one is reported before the default guest is fetched.
  for (const v of p.vms) if (v.kernel) checkBoot(v, v.kernel, v.initrd);
  // Then the disks, all of them opened and locked (one writer per image) or none.
  try {
    for (const v of p.vms) {
      try {
        v.backends = await openDisks(v.disks);
      } catch (e) {
        throw e instanceof UserError ? new UserError(`${v.file}: field 'disks': ${e.message}`) : e;
      }
    }
    // NATs, with their forwards listening: a host port in use is found before anything boots.
    for (const v of p.vms) {
      v.nats = v.spec.nics.map((nic) => (nic.network === "nat" ? new Nat() : undefined));
      for (const [n, nic] of v.spec.nics.entries()) {
        if (nic.network !== "nat" && nic.forward.length > 0) throw new UserError(`${v.file}: field 'nics.${n}.forward': forwards need network nat`);
        for (const f of nic.forward) {
          try {
            await v.nats[n]!.forward(parseForward(f));
          } catch (e) {
            throw e instanceof UserError ? new UserError(`${v.file}: field 'nics.${n}.forward': ${e.message}`) : e;
          }
        }
      }
    }
    // Control sockets: a VM of the same name running elsewhere on this machine is found now.
    for (const v of p.vms) {
      try {
        v.control = await ControlServer.open(v.spec.name);
      } catch (e) {
        throw e instanceof UserError ? new UserError(`${v.file}: field 'name': ${e.message}`) : e;
      }
    }
  } catch (e) {
    for (const v of p.vms) {
      await Promise.allSettled((v.backends ?? []).map((b) => b.close()));
      for (const nat of v.nats ?? []) nat?.close();
      v.control?.close();
    }
    throw e;
  }
  let guest: { kernel: Uint8Array; initrd: Uint8Array } | undefined;
  if (p.vms.some((v) => v.kernel === undefined)) {
    const g = await ensureDefaultGuest({ mirror: opts.mirror, quiet: !process.stderr.isTTY, allowUnverified: opts.allowUnverified });
    guest = { kernel: readInput(g.kernel, "kernel"), initrd: readInput(g.initrd, "initrd") };
  }
  const images = p.vms.map((v) => {
    if (v.kernel) return { kernel: v.kernel, initrd: v.initrd };
    // As `run`: the default guest's initrd goes with the default kernel only.
    const img = { kernel: guest!.kernel, initrd: v.initrd ?? guest!.initrd };
    checkBoot(v, img.kernel, img.initrd);
    return img;
  });
  return new Session(p.vms, images, p.attach, { pcpus: p.pcpus, machineBytes: p.machineBytes }, opts.onEof === "poweroff").run(p.logDir);
}

interface Guest {
  planned: Planned;
  vm: Vm;
  fd: number;
  logFilter: QueryFilter;
  typist?: Typist;
  // The console's unfinished last line (a prompt, usually), shown when the terminal moves to it.
  tail: Buffer;
}

// The running VMs and the one console on this terminal.
class Session {
  private readonly host: Host;
  private readonly guests: Guest[] = [];
  private attached: Guest | undefined;
  private readonly out = process.stdout;
  private readonly stdin = process.stdin;
  private readonly tty = process.stdin.isTTY === true;
  // Terminal queries the guests' shells send mean nothing in a file or a pipe.
  private readonly outFilter = process.stdout.isTTY ? undefined : new QueryFilter();
  private firstFailure: RunResult | undefined;
  // Whether the terminal's cursor is at the start of a line (nothing printed since our last line).
  private lineStart = true;

  constructor(planned: Planned[], images: { kernel: Uint8Array; initrd?: Uint8Array }[], attach: string, hostOpts: { pcpus: number; machineBytes: number }, poweroffAtEof: boolean) {
    this.host = new Host(hostOpts);
    try {
      planned.forEach((pl, i) => {
        const fd = openSync(pl.log, "w");
        let guest: Guest | undefined; // the console writes nothing before the VM boots
        const cfg: VmConfig = {
          name: pl.spec.name,
          kernel: images[i]!.kernel,
          initrd: images[i]!.initrd,
          cmdline: pl.spec.cmdline,
          memBytes: pl.spec.memory * MiB,
          cpus: pl.spec.vcpus,
          virt: pl.spec.virt,
          weight: pl.spec.weight,
          cap: pl.spec.cap,
          dedicated: pl.spec.dedicated,
          disks: (pl.backends ?? []).map((backend, d) => ({ name: `vd${String.fromCharCode(97 + d)}`, backend })),
          rng: pl.spec.rng,
          balloon: pl.spec.balloon,
          shares: pl.shares.map((sh) => new Share(sh.dir, sh.tag, !sh.rw)),
          nics: pl.spec.nics.map((nic, n) => ({ port: nic.network === "nat" ? pl.nats![n]! : this.host.switch.port(`${pl.spec.name}/eth${n}`), mac: macFor(pl.spec.name, n) })),
          onDeviceError: (device, reason) => this.say(`ringvisor: ${pl.spec.name}: ${device} stopped: the guest's driver broke the virtio protocol (${reason}); the device waits for a reset`),
          console: (b) => { if (guest) this.console(guest, b); },
        };
        let vm: Vm;
        try {
          vm = this.host.createVm(cfg);
        } catch (e) {
          closeSync(fd);
          throw e;
        }
        pl.control?.serve({ vm, nat: pl.nats?.find((n) => n !== undefined) });
        const typist = this.tty ? undefined : new Typist(vm, poweroffAtEof);
        vm.onConsoleOutput = (b) => typist?.output(b);
        guest = { planned: pl, vm, fd, logFilter: new QueryFilter(), typist, tail: Buffer.alloc(0) };
        this.guests.push(guest);
      });
    } catch (e) {
      for (const g of this.guests) closeSync(g.fd);
      void this.host.close();
      // Disks of the VMs never made are closed (and unlocked) here; the others go with their VMs.
      for (const pl of planned.slice(this.guests.length)) {
        for (const b of pl.backends ?? []) void b.close();
        for (const nat of pl.nats ?? []) nat?.close();
      }
      for (const pl of planned) pl.control?.close();
      throw e;
    }
    this.attached = this.guests.find((g) => g.planned.spec.name === attach);
  }

  private console(g: Guest, b: Uint8Array): void {
    writeSync(g.fd, g.logFilter.pass(b));
    const nl = b.lastIndexOf(0x0a);
    g.tail = nl >= 0 ? Buffer.from(b.subarray(nl + 1)) : Buffer.concat([g.tail, b]).subarray(-256);
    if (g === this.attached) {
      this.out.write(this.outFilter ? this.outFilter.pass(b) : b);
      this.lineStart = false;
    }
  }

  // Status lines go to stderr, so that stdout carries the attached console alone; on a raw
  // terminal a line needs its carriage return.
  private say(line: string): void {
    process.stderr.write(this.tty ? `${this.lineStart ? "" : "\r\n"}${line}\r\n` : `${line}\n`);
    this.lineStart = true;
  }

  async run(logDir: string): Promise<number> {
    const { stdin } = this;
    const onData = (chunk: Buffer): void => this.typed(chunk);
    const onEnd = (): void => {
      // Every VM's session ends, not only the attached one's: an unattached VM has nobody else
      // to power it off.
      for (const g of this.guests) g.typist?.end();
    };
    // A second signal means the user will not wait for the VMs to stop.
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (signalled) process.exit(STOPPED_STATUS);
      signalled = true;
      this.stopAll(`stopped by ${sig}`);
    };
    let pacer: NodeJS.Timeout | undefined;
    try {
      for (const g of this.guests) {
        this.host.start(g.vm);
        void g.vm.finished.then((r) => this.ended(g, r));
      }
      this.table(logDir);
      if (this.tty) stdin.setRawMode(true);
      stdin.on("data", onData);
      stdin.on("end", onEnd);
      stdin.on("error", onEnd);
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      if (!this.tty) pacer = setInterval(() => { for (const g of this.guests) g.typist?.tick(); }, TYPIST_TICK_MS);
      await Promise.all(this.guests.map((g) => g.vm.finished));
    } finally {
      if (pacer) clearInterval(pacer);
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.off("error", onEnd);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      if (this.tty) stdin.setRawMode(false);
      if (this.outFilter) this.out.write(this.outFilter.flush());
      releaseStdin(stdin);
      for (const g of this.guests) {
        g.planned.control?.close();
        writeSync(g.fd, g.logFilter.flush());
        closeSync(g.fd);
      }
      await this.host.close();
    }
    return this.firstFailure?.status ?? 0;
  }

  private table(logDir: string): void {
    const rows = [["NAME", "VCPUS", "MEMORY", "VIRT", "WEIGHT", "CAP", "DEDICATED"]];
    for (const { planned: { spec } } of this.guests) {
      rows.push([spec.name, String(spec.vcpus), `${spec.memory} MiB`, spec.virt, String(spec.weight), spec.cap === 0 ? "none" : `${spec.cap}%`, spec.dedicated ? "yes" : "no"]);
    }
    const lines = formatTable(rows);
    const keys = this.tty ? "; Ctrl-\\ next console, Ctrl-] detach and stop all VMs" : "";
    lines.push(`consoles logged in ${logDir}/<name>.log; attached: ${this.attached!.planned.spec.name}${keys}`);
    lines.push("from another shell: ringvisor ls, ringvisor exec NAME -- CMD, ringvisor forward NAME HOST:GUEST, ringvisor stop NAME");
    for (const l of lines) process.stderr.write(`${l}\n`);
  }

  private typed(chunk: Buffer): void {
    const a = this.attached;
    if (!this.tty) {
      a?.typist?.add(chunk);
      return;
    }
    if (chunk.includes(DETACH)) {
      this.stopAll("detached by the user (Ctrl-])");
      return;
    }
    let rest = chunk;
    for (let i = rest.indexOf(NEXT_CONSOLE); i >= 0; i = rest.indexOf(NEXT_CONSOLE)) {
      if (i > 0) this.attached?.vm.input(new Uint8Array(rest.subarray(0, i)));
      this.next();
      rest = rest.subarray(i + 1);
    }
    if (rest.length > 0) this.attached?.vm.input(new Uint8Array(rest));
  }

  // Moves the terminal to the next VM that still runs, saying which, and shows where its console
  // stands (its unfinished last line: usually a prompt).
  private next(): void {
    const running = this.guests.filter((g) => g.vm.state === "running");
    if (running.length === 0) return;
    const from = this.attached ? this.guests.indexOf(this.attached) : -1;
    const to = [...this.guests.slice(from + 1), ...this.guests.slice(0, from + 1)].find((g) => g.vm.state === "running")!;
    if (to === this.attached) return;
    if (this.outFilter) this.out.write(this.outFilter.flush());
    this.attached = to;
    const i = this.guests.indexOf(to);
    this.say(`ringvisor: console of ${to.planned.spec.name} (${i + 1} of ${this.guests.length}, ${running.length} running)`);
    this.out.write(new QueryFilter().pass(to.tail));
    this.lineStart = to.tail.length === 0;
  }

  private stopAll(reason: string): void {
    for (const g of this.guests) if (g.vm.state === "running") g.vm.stop(STOPPED_STATUS, reason);
  }

  private ended(g: Guest, r: RunResult): void {
    g.planned.control?.close();
    if (r.status !== 0) this.firstFailure ??= r;
    this.say(`ringvisor: ${g.planned.spec.name} ended after ${r.seconds.toFixed(1)} s, status ${r.status}: ${r.reason}`);
    if (g === this.attached && this.tty) this.next();
  }
}

