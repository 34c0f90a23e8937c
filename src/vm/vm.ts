// One virtual machine on the "virt"-like board: RAM at 0x8000_0000, harts, a 16550 UART, a PLIC,
// a Goldfish RTC, firmware SBI in the host. In `native` mode the guest kernel runs in the hart's
// real S-mode and the host is its M-mode firmware: every ecall and every trap that reaches M-mode
// ends run() and is handled here. In `trap-and-emulate` mode the guest kernel runs deprivileged
// under the VMM (src/vmm/vcpu.ts), its RAM is machine frames from anywhere behind a p2m, and what
// reaches the host is the same: hypercalls, MMIO, idle.
import { MachineMemory, MAX_MACHINE_BYTES } from "../machine/memory.js";
import { Hart, Exit, instantiateHart } from "../hart/hart.js";
import * as L from "../hart/layout.js";
import { Bus } from "../devices/bus.js";
import { Uart16550 } from "../devices/uart16550.js";
import { Plic } from "../devices/plic.js";
import { GoldfishRtc, GOLDFISH_RTC_SIZE } from "../devices/goldfish-rtc.js";
import { buildDeviceTree } from "./devicetree.js";
import { planBoot } from "./kernel.js";
import { Sbi, type SbiPlatform, SBI_SUCCESS, SBI_ERR_ALREADY_AVAILABLE, SBI_ERR_INVALID_ADDRESS, SBI_ERR_INVALID_PARAM, SBI_ERR_NOT_SUPPORTED,
  HSM_STARTED, HSM_STOPPED, SRST_SHUTDOWN } from "../vmm/sbi.js";
import { UserError } from "../errors.js";
import { ContiguousRam, contains, type GuestMemory } from "../vmm/guest-memory.js";
import { P2m } from "../vmm/p2m.js";
import { NativeCore, TrapEmulateCore, DEFAULT_POOL_FRAMES, type ExecCore, type VmmExports } from "../vmm/vcpu.js";
import { readVmmStats, type VmmStats } from "../vmm/stats.js";

export const RAM_BASE = 0x8000_0000n;
export const UART_BASE = 0x1000_0000n;
export const UART_IRQ = 10;
export const RTC_BASE = 0x10_1000n; // where QEMU's virt has its Goldfish RTC, with the same IRQ
export const RTC_IRQ = 11;
export const PLIC_BASE = 0x0c00_0000n;
export const PLIC_NDEV = 31;
export const TIMEBASE_HZ = 10_000_000;

export const VIRT_MODES = ["native", "trap-and-emulate"] as const;
// vCPUs per VM this board offers (they are time-sliced on one host thread today).
export const MAX_CPUS = 8;
export type VirtMode = (typeof VIRT_MODES)[number];

const MIP_SSIP = 1n << 1n;
const MIP_STIP = 1n << 5n;
const MIP_SEIP = 1n << 9n;
const CAUSE_ECALL_S = 9n;
// What firmware delegates to the supervisor (as OpenSBI does, plus illegal instructions and
// access faults, which this firmware has no reason to see): misaligned accesses never trap here.
const MEDELEG = (1n << 0n) | (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 4n) | (1n << 5n) | (1n << 6n) |
  (1n << 7n) | (1n << 8n) | (1n << 12n) | (1n << 13n) | (1n << 15n);
const MIDELEG = MIP_SSIP | MIP_STIP | MIP_SEIP;

export interface VmConfig {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  memBytes: number;
  cpus: number;
  virt: VirtMode;
  console: (bytes: Uint8Array) => void;
  markers?: boolean;
  // Trap-and-emulate: back guest RAM with machine frames in a pseudo-random order (seeded), to
  // show that nothing depends on them being contiguous.
  scatterSeed?: number;
  // Trap-and-emulate: frames of shadow page tables per vCPU (default DEFAULT_POOL_FRAMES).
  shadowPoolFrames?: number;
}

export interface Marker {
  hart: number;
  instret: bigint;
  seconds: number;
}

export interface VmStats {
  virt: VirtMode;
  instructions: string; // decimal: may exceed 2^53
  hostExits: Record<string, number>; // what reached the host's run loop
  sbi: Record<string, number>; // hypercalls by SBI extension
  cpus: { hart: Record<string, number>; vmm?: VmmStats }[];
}

export interface RunResult {
  status: number;
  reason: string;
  seconds: number;
  instructions: bigint;
}

interface VCpu {
  core: ExecCore; // core.hart: registers, pc, counters, clock; core.irq: mip, mie, WFI
  state: number; // HSM state
  stimecmp: bigint;
}

// Between host updates the time CSR advances with retired instructions at the guest's recent
// speed, so a guest spinning on `time` (udelay) sees it move within a slice.
const INITIAL_IPS = 150_000_000;

export class Vm {
  readonly mem: MachineMemory;
  readonly wasm: VmmExports;
  readonly cpus: VCpu[] = [];
  readonly bus = new Bus();
  readonly uart: Uart16550;
  readonly plic: Plic;
  readonly rtc: GoldfishRtc;
  readonly sbi: Sbi;
  readonly guestMem: GuestMemory & { read(gpa: bigint, length: number): Uint8Array };
  readonly p2m: P2m | undefined;
  readonly markers: Marker[] = [];
  readonly exits = new Map<string, number>();
  private readonly ramOffset: number;
  private readonly memBytes: number;
  private t0 = 0n;
  private result: RunResult | undefined;
  private wake: (() => void) | undefined;
  private ips = INITIAL_IPS; // measured guest instructions per second, for the time CSR
  // When every started hart last went to sleep with nothing to do (undefined while running).
  idleSince: number | undefined;
  onConsoleOutput: (() => void) | undefined;

  constructor(private readonly cfg: VmConfig) {
    if (cfg.cpus < 1 || cfg.cpus > MAX_CPUS) throw new UserError(`--cpus must be between 1 and ${MAX_CPUS} (got ${cfg.cpus})`);
    this.memBytes = cfg.memBytes;
    const native = cfg.virt === "native";
    const pool = cfg.shadowPoolFrames ?? DEFAULT_POOL_FRAMES;
    const vmmBytes = native ? 0 : cfg.cpus * (2 * L.HART_STATE_BYTES + pool * 4100 + (128 << 10));
    // Room for scattered RAM to leave contiguous runs free for the hypervisor's own blocks: the
    // capacity is only address space until the buffer grows into it.
    this.mem = new MachineMemory(MAX_MACHINE_BYTES, cfg.memBytes + cfg.cpus * L.HART_STATE_BYTES + vmmBytes + (4 << 20));
    this.wasm = instantiateHart(this.mem) as VmmExports;
    this.wasm.enableMarker(cfg.markers ? 1 : 0);
    if (native) {
      this.p2m = undefined;
      this.ramOffset = this.mem.allocContiguous(cfg.memBytes / 4096, 512);
      this.guestMem = new ContiguousRam(RAM_BASE, this.mem.bytesAt(this.ramOffset, cfg.memBytes));
    } else {
      const seed = cfg.scatterSeed;
      this.ramOffset = -1;
      this.p2m = new P2m(this.mem, RAM_BASE, cfg.memBytes, (n) => this.mem.allocFrames(n, seed !== undefined, seed));
      this.guestMem = this.p2m;
    }

    this.plic = new Plic(PLIC_NDEV, cfg.cpus * 2, (ctx, on) => this.externalInterrupt(ctx, on));
    this.uart = new Uart16550(this.plic.irqLine(UART_IRQ), (b) => this.consoleOut(b));
    this.bus.map(UART_BASE, 0x100n, this.uart);
    // Its alarm raises the line from a host timer; the PLIC's output then wakes the run loop.
    this.rtc = new GoldfishRtc(this.plic.irqLine(RTC_IRQ));
    this.bus.map(RTC_BASE, GOLDFISH_RTC_SIZE, this.rtc);
    this.bus.map(PLIC_BASE, 0x400_0000n, this.plic);

    for (let i = 0; i < cfg.cpus; i++) {
      let core: ExecCore;
      if (native) {
        const hart = new Hart(this.mem, this.wasm, this.mem.allocContiguous(L.HART_STATE_BYTES / 4096), i);
        hart.setRam(RAM_BASE, cfg.memBytes, this.ramOffset);
        hart.setFlags(L.FLAG_EXIT_ON_MTRAP);
        hart.setCsr(L.HART_MEDELEG, MEDELEG);
        hart.setCsr(L.HART_MIDELEG, MIDELEG);
        hart.setCsr(L.HART_MCOUNTEREN, 7n); // cycle, time, instret readable below M
        core = new NativeCore(hart);
      } else {
        core = new TrapEmulateCore(this.mem, this.wasm, i, this.p2m!, cfg.shadowPoolFrames);
      }
      this.cpus.push({ core, state: HSM_STOPPED, stimecmp: 0xffff_ffff_ffff_ffffn });
    }
    this.sbi = new Sbi(this.platform());
    this.boot();
  }

  private boot(): void {
    const { kernel, initrd, cmdline } = this.cfg;
    // The tree's size does not depend on the initrd's address, only on whether there is one.
    const dtbProbe = this.deviceTree(cmdline, initrd ? { start: 0n, end: 0n } : undefined);
    const plan = planBoot({ kernel, initrd, dtbSize: dtbProbe.length, memBase: RAM_BASE, memSize: BigInt(this.memBytes) });
    const ram = this.guestMem;
    plan.load(ram);
    const dtb = this.deviceTree(cmdline, plan.initrdStart !== undefined ? { start: plan.initrdStart, end: plan.initrdEnd! } : undefined);
    ram.write(plan.dtbAddr, dtb);
    const boot = this.cpus[0]!;
    this.startHart(0, plan.entry, plan.dtbAddr);
    boot.state = HSM_STARTED;
  }

  private deviceTree(bootargs: string, initrd: { start: bigint; end: bigint } | undefined): Uint8Array {
    return buildDeviceTree({
      memBase: RAM_BASE,
      memSize: BigInt(this.memBytes),
      harts: this.cfg.cpus,
      mmuType: "riscv,sv48",
      timebaseFrequency: TIMEBASE_HZ,
      bootargs,
      initrd,
      uart: { base: UART_BASE, irq: UART_IRQ },
      rtc: { base: RTC_BASE, irq: RTC_IRQ },
      plic: { base: PLIC_BASE, ndev: PLIC_NDEV },
      virtio: [],
    });
  }

  // Enter the supervisor at `pc` with a0 = hartid, a1 = opaque (SBI HSM, boot protocol).
  private startHart(id: number, pc: bigint, opaque: bigint): void {
    this.cpus[id]!.core.enterSupervisor(pc, BigInt(id), opaque);
  }

  private consoleOut(b: Uint8Array): void {
    this.cfg.console(b);
    this.onConsoleOutput?.();
  }

  private externalInterrupt(ctx: number, on: boolean): void {
    const cpu = this.cpus[ctx >> 1];
    if (!cpu || (ctx & 1) === 0) return; // M-mode contexts: the firmware takes no interrupts
    cpu.core.irq.mip = on ? cpu.core.irq.mip | MIP_SEIP : cpu.core.irq.mip & ~MIP_SEIP;
    if (on) this.wake?.();
  }

  // Guest time: 10 MHz, advancing with the host clock while the VM runs.
  now(): bigint {
    return ((process.hrtime.bigint() - this.t0) * BigInt(TIMEBASE_HZ)) / 1_000_000_000n;
  }

  private platform(): SbiPlatform {
    return {
      hartCount: this.cfg.cpus,
      setTimer: (h, t) => {
        const c = this.cpus[h]!;
        c.stimecmp = t;
        c.core.irq.mip = c.core.irq.mip & ~MIP_STIP;
      },
      sendIpi: (h) => { this.cpus[h]!.core.irq.mip |= MIP_SSIP; },
      clearIpi: (h) => { this.cpus[h]!.core.irq.mip &= ~MIP_SSIP; },
      remoteSfence: (h, start, size, asid) => this.cpus[h]!.core.fence(start, size, asid),
      hartStart: (h, addr, opaque) => {
        const c = this.cpus[h]!;
        if (c.state !== HSM_STOPPED) return SBI_ERR_ALREADY_AVAILABLE; // SBI 9.1: already started
        if (addr < RAM_BASE || addr >= RAM_BASE + BigInt(this.memBytes)) return SBI_ERR_INVALID_ADDRESS;
        this.startHart(h, addr, opaque);
        c.state = HSM_STARTED;
        return SBI_SUCCESS;
      },
      hartStop: (h) => { this.cpus[h]!.state = HSM_STOPPED; return SBI_SUCCESS; },
      hartStatus: (h) => this.cpus[h]!.state,
      hartSuspend: (h, type) => {
        // SBI 9.4: 0 is the default retentive suspend (the only one offered here); 0x1-0x0FFFFFFF
        // and 0x80000001-0x8FFFFFFF are reserved; the rest are valid but not supported.
        if ((type >= 0x1n && type <= 0x0fff_ffffn) || (type >= 0x8000_0001n && type <= 0x8fff_ffffn)) return SBI_ERR_INVALID_PARAM;
        if (type !== 0n) return SBI_ERR_NOT_SUPPORTED;
        this.cpus[h]!.core.irq.setCsr(L.HART_WFI, 1n);
        return SBI_SUCCESS;
      },
      systemReset: (type, reason) => {
        const status = type === SRST_SHUTDOWN ? reason : 3;
        const what = type === SRST_SHUTDOWN ? (reason === 0 ? "guest powered off" : "guest reported a system failure") : "guest requested a reboot";
        this.finish(status, what);
      },
      consoleWrite: (b) => this.consoleOut(b),
      consoleRead: () => new Uint8Array(0),
      readGuest: (pa, len) => (contains(this.guestMem, pa, len) ? this.guestMem.read(pa, len) : undefined),
      writeGuest: (pa, bytes) => {
        if (!contains(this.guestMem, pa, bytes.length)) return false;
        this.guestMem.write(pa, bytes);
        return true;
      },
      counters: (h) => this.cpus[h]!.core.hart, // the real hart under the VMM: its counters are the guest's
    };
  }

  private finish(status: number, reason: string): void {
    if (this.result) return;
    this.rtc.close();
    const seconds = Number(process.hrtime.bigint() - this.t0) / 1e9;
    this.result = { status, reason, seconds, instructions: this.instructions() };
  }

  instructions(): bigint {
    return this.cpus.reduce((s, c) => s + c.core.hart.instret, 0n);
  }

  // Every counter, as data (the CLI prints it; the API and metering will serve it).
  stats(): VmStats {
    return {
      virt: this.cfg.virt,
      instructions: this.instructions().toString(),
      hostExits: Object.fromEntries(this.exits),
      sbi: Object.fromEntries(this.sbi.calls),
      cpus: this.cpus.map((c) => ({
        hart: c.core.hart.stats(),
        vmm: c.core instanceof TrapEmulateCore ? readVmmStats((off) => (c.core as TrapEmulateCore).counter(off)) : undefined,
      })),
    };
  }

  private countExit(what: string): void {
    this.exits.set(what, (this.exits.get(what) ?? 0) + 1);
  }

  stop(status: number, reason: string): void {
    this.finish(status, reason);
    this.wake?.();
  }

  input(bytes: Uint8Array): void {
    this.uart.input(bytes);
    this.wake?.();
  }

  // Run until the guest powers off (or stop() is called). Yields to the event loop every few
  // milliseconds so console input and timers are served.
  async run(): Promise<RunResult> {
    this.t0 = process.hrtime.bigint();
    const SLICE = this.cfg.cpus === 1 ? 400_000 : 50_000;
    while (!this.result) {
      const until = process.hrtime.bigint() + 10_000_000n;
      let ranAny = false;
      while (!this.result && process.hrtime.bigint() < until) {
        ranAny = false;
        const now = this.now();
        for (let i = 0; i < this.cpus.length && !this.result; i++) {
          const c = this.cpus[i]!;
          if (c.state !== HSM_STARTED) continue;
          const h = c.core.hart;
          // Time never goes back: a hart whose clock ran ahead of the host's waits for it.
          const t = h.time > now ? h.time : now;
          h.setClock(t, h.instret, BigInt(TIMEBASE_HZ), BigInt(this.ips));
          if (t >= c.stimecmp) c.core.irq.mip |= MIP_STIP;
          if (c.core.irq.waiting && (c.core.irq.mip & c.core.irq.mie) === 0n) continue;
          ranAny = true;
          let budget = SLICE;
          if (c.stimecmp > t) {
            const toTimer = Number(c.stimecmp - t) * (this.ips / TIMEBASE_HZ);
            if (toTimer < budget) budget = Math.max(1000, Math.ceil(toTimer));
          }
          const before = h.instret;
          const w0 = process.hrtime.bigint();
          this.step(i, c, budget);
          this.measure(h.instret - before, process.hrtime.bigint() - w0);
        }
        if (!ranAny) break;
      }
      if (this.result) break;
      if (!ranAny) {
        this.idleSince ??= performance.now();
        await this.idle();
      } else {
        this.idleSince = undefined;
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    return this.result!;
  }

  private measure(instructions: bigint, ns: bigint): void {
    if (instructions < 20_000n || ns <= 0n) return;
    const ips = (Number(instructions) * 1e9) / Number(ns);
    this.ips = Math.round(this.ips * 0.9 + ips * 0.1);
  }

  // Every started hart waits for an interrupt: sleep until the earliest timer or a wake-up.
  private async idle(): Promise<void> {
    const now = this.now();
    let next = 0xffff_ffff_ffff_ffffn;
    for (const c of this.cpus) if (c.state === HSM_STARTED && c.stimecmp < next) next = c.stimecmp;
    const ms = next === 0xffff_ffff_ffff_ffffn ? 1000 : Math.max(0, Number(((next - now) * 1000n) / BigInt(TIMEBASE_HZ)));
    this.countExit("idle sleeps");
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { this.wake = undefined; resolve(); }, Math.min(ms, 50));
      this.wake = () => { clearTimeout(t); this.wake = undefined; resolve(); };
    });
  }

  private step(id: number, c: VCpu, budget: number): void {
    const h = c.core.hart;
    const code = c.core.run(budget);
    switch (code) {
      case Exit.Budget:
        return;
      case Exit.Wfi:
        this.countExit("wfi");
        return;
      case Exit.Marker:
        this.markers.push({ hart: id, instret: h.instret, seconds: Number(process.hrtime.bigint() - this.t0) / 1e9 });
        return;
      case Exit.Mmio:
        this.countExit("mmio");
        this.bus.serve(c.core);
        return;
      case Exit.Trap:
        this.trap(id, c);
        return;
      default:
        throw new Error(`unexpected hart exit ${code}`);
    }
  }

  private trap(id: number, c: VCpu): void {
    const h = c.core.hart;
    const cause = h.exitCause;
    if (cause !== CAUSE_ECALL_S) {
      this.finish(1, `guest trap into M-mode the firmware cannot handle: cause ${cause}, tval 0x${h.exitTval.toString(16)}, pc 0x${h.pc.toString(16)}`);
      return;
    }
    this.countExit("sbi");
    const a = [10, 11, 12, 13, 14, 15].map((r) => BigInt.asUintN(64, h.x(r)));
    const r = this.sbi.call(id, { eid: BigInt.asUintN(64, h.x(17)), fid: BigInt.asUintN(64, h.x(16)), a });
    if (r.noReturn && c.state === HSM_STOPPED) return;
    h.setX(10, r.error);
    if (!r.legacy) h.setX(11, r.value);
    h.pc = h.pc + 4n;
  }
}
