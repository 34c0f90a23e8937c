// One virtual machine on the board of board.ts, built on a machine it shares with other VMs: its
// RAM is machine frames from anywhere behind a p2m, and every frame it holds (RAM, p2m, hart
// blocks, VMM blocks, shadow tables) is in one account that dispose() gives back. A VM is built
// paused; boot() loads its kernel and starts hart 0; the host runs its vCPUs (runFor) when its
// scheduler says so.
//
// In `native` mode the guest kernel runs in the hart's real S-mode and the host is its M-mode
// firmware: every ecall and every trap that reaches M-mode ends run() and is handled here. Under
// `trap-and-emulate` the guest kernel runs deprivileged under the VMM (src/vmm/vcpu.ts), and what
// reaches the host is the same: hypercalls, MMIO, idle.
//
// Ownership: a VM and everything in it belongs to the host's main thread.
import type { Machine } from "../machine/machine.js";
import type { FrameAccount, FrameKind } from "../machine/memory.js";
import { FRAME_BYTES } from "../machine/memory.js";
import { Hart, Exit } from "../hart/hart.js";
import * as L from "../hart/layout.js";
import { Bus, type AccessSize } from "../devices/bus.js";
import { Uart16550 } from "../devices/uart16550.js";
import { Plic } from "../devices/plic.js";
import { GoldfishRtc } from "../devices/goldfish-rtc.js";
import { buildDeviceTree } from "./devicetree.js";
import { planBoot } from "./kernel.js";
import { RAM_BASE, TIMEBASE_HZ, UART, RTC, PLIC, VIRTIO, plicSize, boardTree, virtioSlot } from "./board.js";
import { GuestDma } from "../devices/virtio/dma.js";
import { VirtioMmio, VIRTIO_MMIO_SIZE, type VirtioStats } from "../devices/virtio/mmio.js";
import type { VirtioDevice } from "../devices/virtio/device.js";
import { VirtioBlk, type BlockBackend } from "../devices/virtio/blk.js";
import { VirtioConsole } from "../devices/virtio/console.js";
import { VirtioRng } from "../devices/virtio/rng.js";
import { VirtioNet, type NetPort } from "../devices/virtio/net.js";
import { firmware } from "./firmware.js";
import { HSM_STARTED, HSM_STOPPED, type Sbi } from "../vmm/sbi.js";
import { UserError } from "../errors.js";
import { P2m, type P2mStats } from "../vmm/p2m.js";
import { NativeCore, TrapEmulateCore, VCpu, NO_TIMER, POOL_GROW_FRAMES, type ExecCore, type VmmExports } from "../vmm/vcpu.js";
import { readVmmStats, type VmmStats } from "../vmm/stats.js";
import { PostRing, Vcb, VCB_BYTES, VCB_TIME_FLOOR, PENDING_SEIP, FENCE_ALL, FENCE_I, FENCE_P2M, guestTicks, hostClockMs } from "../vmm/vcb.js";
import { VirtioBalloon, type BalloonHost } from "../devices/virtio/balloon.js";
import { VirtioVsock } from "../devices/virtio/vsock.js";
import { Virtio9p, type P9Server } from "../devices/virtio/p9.js";
import { MMIO_ALIAS, EXIT_POOL } from "../vmm/layout.js";
import { MAX_CPUS, VIRT_MODES, type VirtMode } from "./spec.js";

export { RAM_BASE, TIMEBASE_HZ, MAX_CPUS, VIRT_MODES, type VirtMode };

const MIP_STIP = 1n << 5n;
const MIP_SEIP = 1n << 9n; // the PLIC's line: raised through the vCPU's control block
const CAUSE_ECALL_S = 9n;
// What firmware delegates to the supervisor (as OpenSBI does, plus illegal instructions and
// access faults, which this firmware has no reason to see): misaligned accesses never trap here.
const MEDELEG = (1n << 0n) | (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 4n) | (1n << 5n) | (1n << 6n) |
  (1n << 7n) | (1n << 8n) | (1n << 12n) | (1n << 13n) | (1n << 15n);
const MIDELEG = (1n << 1n) | MIP_STIP | MIP_SEIP;

export interface VmConfig {
  name?: string;
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  memBytes: number;
  cpus: number;
  virt: VirtMode;
  console: (bytes: Uint8Array) => void;
  markers?: boolean;
  // Back guest RAM with machine frames in a pseudo-random order (seeded), to show that nothing
  // depends on them being contiguous.
  scatterSeed?: number;
  // Trap-and-emulate: frames of shadow page tables per vCPU (default DEFAULT_POOL_FRAMES).
  shadowPoolFrames?: number;
  // Scheduling (src/vmm/sched.ts): proportional share, cap in percent of one physical CPU.
  weight?: number;
  cap?: number;
  dedicated?: boolean;
  // virtio devices (src/devices/virtio), in slot order: the disks (opened by the caller; the VM
  // closes them when it is disposed), then the console and the entropy source.
  disks?: DiskConfig[];
  // Network cards, after the disks: each plugged into a port (the host's switch, later NAT).
  nics?: { port: NetPort; mac: Uint8Array }[];
  // Host folders served over virtio-9p (src/host/share.ts), after the network cards.
  shares?: P9Server[];
  // Which console the user's input goes to: the 16550 (ttyS0, the default) or a virtio console
  // (hvc0), which is then added. Output of both goes to `console`.
  primaryConsole?: "serial" | "virtio";
  // A virtio entropy device (default: yes).
  rng?: boolean;
  // A virtio balloon (default: yes), through which the host can take RAM back while the VM runs.
  balloon?: boolean;
  // A virtio vsock device (default: yes): the host reaches the guest agent through it.
  vsock?: boolean;
  // A device found the guest's driver breaking the protocol and stopped (DEVICE_NEEDS_RESET).
  onDeviceError?: (device: string, reason: string) => void;
}

export interface DiskConfig {
  name: string; // the guest sees it as /dev/vd[a-h] in slot order; this names it for the host
  backend: BlockBackend;
  serial?: string; // VIRTIO_BLK_T_GET_ID: /sys/block/vdX/serial
}

export interface Marker {
  hart: number;
  instret: bigint;
  seconds: number;
}

export interface VmStats {
  name: string;
  virt: VirtMode;
  instructions: string; // decimal: may exceed 2^53
  hostExits: Record<string, number>; // what reached the host's run loop
  sbi: Record<string, number>; // hypercalls by SBI extension
  frames: Record<FrameKind, number>; // machine frames held, by kind
  ram: P2mStats; // how guest RAM lies in machine memory
  overheadBytes: number; // what the VM costs the machine beyond its RAM
  translatedCodeBytes: number; // wasm of the live translations its vCPUs caused, on every physical CPU
  mmio: Record<string, { loads: number; stores: number }>; // register accesses (each an exit) by device
  virtio: VirtioStats[];
  cpus: { hart: Record<string, number>; vmm?: VmmStats }[];
}

export interface RunResult {
  status: number;
  reason: string;
  seconds: number;
  instructions: bigint;
}

export type VmState = "created" | "running" | "stopped" | "disposed";

// Between host updates the time CSR advances with retired instructions at the guest's recent
// speed, so a guest spinning on `time` (udelay) sees it move within a slice.
const INITIAL_IPS = 150_000_000;
// The guest's vsock address (CIDs 0-2 are reserved; each VM has its own device, so all can be 3).
const GUEST_CID = 3;

export class Vm {
  readonly name: string;
  readonly account: FrameAccount;
  readonly wasm: VmmExports;
  readonly vcpus: VCpu[] = [];
  readonly bus = new Bus();
  readonly uart: Uart16550;
  readonly plic: Plic;
  private readonly posted: PostRing;
  readonly rtc: GoldfishRtc;
  // The virtio devices, in slot order, and the virtio console if there is one.
  readonly virtio: VirtioMmio[] = [];
  readonly virtioConsole: VirtioConsole | undefined;
  readonly balloon: VirtioBalloon | undefined;
  readonly vsock: VirtioVsock | undefined;
  private balloonTransport: VirtioMmio | undefined;
  // Ballooned guest frames, all backed by one frame of the VM's own (the sink) until deflated.
  private readonly ballooned = new Set<number>();
  private sinkFrame = 0;
  // The devices' window on guest RAM, and the frames (machine offsets) the balloon gave up while
  // host I/O had them pinned: freed when the I/O is done (GuestDma.pin).
  private dma!: GuestDma;
  private readonly freeWhenUnpinned = new Set<number>();
  readonly sbi: Sbi;
  readonly ram: P2m;
  readonly markers: Marker[] = [];
  readonly exits = new Map<string, number>();
  readonly finished: Promise<RunResult>;
  state: VmState = "created";
  // The host's number for this VM in the translators' accounting, and what each physical CPU last
  // reported of live translated code counted to it (main thread: written as vCPUs are handed back).
  jitOwner = 0;
  readonly translatedBytes = new Map<number, number>();
  result: RunResult | undefined;
  // When every started vCPU last went to sleep with nothing to do (undefined while one runs).
  idleSince: number | undefined;
  onConsoleOutput: ((b: Uint8Array) => void) | undefined;
  // Set by the host: a vCPU may have become runnable from outside its own run.
  onWake: ((v: VCpu) => void) | undefined;
  private resolveFinished!: (r: RunResult) => void;
  private readonly memBytes: number;
  private t0Ms = 0; // host clock (ms since the epoch) at boot: guest time 0
  private fencesAsked: Promise<void>[] = [];
  // Guest instructions per run() call: SMP guests switch vCPUs more often.
  readonly chunk: number;

  constructor(readonly machine: Machine, private readonly cfg: VmConfig) {
    if (cfg.cpus < 1 || cfg.cpus > MAX_CPUS) throw new UserError(`--cpus must be between 1 and ${MAX_CPUS} (got ${cfg.cpus})`);
    this.name = cfg.name ?? "vm";
    this.memBytes = cfg.memBytes;
    this.wasm = machine.wasm as VmmExports;
    this.chunk = cfg.cpus === 1 ? 400_000 : 50_000;
    this.finished = new Promise((r) => { this.resolveFinished = r; });
    this.account = machine.mem.account(this.name);
    try {
      this.ram = new P2m(this.account, RAM_BASE, cfg.memBytes, cfg.scatterSeed);
      this.plic = new Plic(PLIC.ndev, cfg.cpus * 2, (ctx, on) => this.externalInterrupt(ctx, on));
      this.uart = new Uart16550(this.plic.irqLine(UART.irq), (b) => this.consoleOut(b));
      // Its alarm raises the line from a host timer; the PLIC's output then wakes the vCPU.
      this.rtc = new GoldfishRtc(this.plic.irqLine(RTC.irq));
      this.bus.map(UART.base, UART.size, this.uart);
      this.bus.map(RTC.base, RTC.size, this.rtc);
      this.bus.map(PLIC.base, plicSize(cfg.cpus), this.plic);
      const dma = (this.dma = new GuestDma(machine.mem, this.ram));
      // A frame the balloon took while host I/O had it pinned is freed when that I/O is done.
      dma.onUnpinned = (frame) => {
        const off = frame * FRAME_BYTES;
        if (!this.freeWhenUnpinned.delete(off) || this.state === "disposed") return;
        this.account.freeFrame("ram", off);
      };
      const devices: VirtioDevice[] = (cfg.disks ?? []).map((d) => new VirtioBlk(`virtio-blk ${d.name}`, d.backend, d.serial ?? d.name));
      (cfg.nics ?? []).forEach((n, i) => devices.push(new VirtioNet(`virtio-net eth${i}`, n.mac, n.port)));
      for (const sh of cfg.shares ?? []) devices.push(new Virtio9p(sh));
      if (cfg.primaryConsole === "virtio") {
        this.virtioConsole = new VirtioConsole((b) => this.consoleOut(b));
        devices.push(this.virtioConsole);
      }
      if (cfg.rng ?? true) devices.push(new VirtioRng());
      if (cfg.balloon ?? true) {
        this.balloon = new VirtioBalloon(this.balloonHost());
        devices.push(this.balloon);
      }
      if (cfg.vsock ?? true) {
        this.vsock = new VirtioVsock(GUEST_CID);
        devices.push(this.vsock);
      }
      if (devices.length > VIRTIO.slots) throw new UserError(`a VM has ${VIRTIO.slots} virtio slots; this one asks for ${devices.length} devices (${cfg.disks?.length ?? 0} disks, ${cfg.nics?.length ?? 0} network cards)`);
      devices.forEach((d, i) => {
        const slot = virtioSlot(i);
        const t = new VirtioMmio(d, dma, this.plic.irqLine(slot.irq));
        t.onError = (reason) => cfg.onDeviceError?.(d.name, reason);
        this.bus.map(slot.base, VIRTIO_MMIO_SIZE, t);
        this.virtio.push(t);
        if (d === this.balloon) this.balloonTransport = t;
      });
      const vcbs = this.account.contiguous("vmm", Math.ceil((cfg.cpus * VCB_BYTES) / FRAME_BYTES));
      machine.mem.bytesAt(vcbs, cfg.cpus * VCB_BYTES).fill(0);
      // The VM's ring of posted stores is in vCPU 0's block.
      this.posted = new PostRing(machine.mem.buffer, vcbs);
      for (let i = 0; i < cfg.cpus; i++) {
        const vcb = new Vcb(machine.mem.buffer, vcbs + i * VCB_BYTES);
        vcb.ips = INITIAL_IPS;
        const core = this.core(i);
        vcb.setPostable(this.bus.windows(), core instanceof TrapEmulateCore ? BigInt(MMIO_ALIAS) : 0n, vcbs);
        this.vcpus.push(new VCpu(i, core, HSM_STOPPED, vcb, vcbs + VCB_TIME_FLOOR));
      }
      this.sbi = firmware({
        vcpus: this.vcpus,
        ram: this.ram,
        consoleOut: (b) => this.consoleOut(b),
        powerOff: (status, reason) => this.finish(status, reason),
        wake: (v) => this.onWake?.(v),
        remoteFence: (v, start, size, asid) => this.remoteFence(v, start, size, asid),
        remoteFenceI: (v) => this.remoteFenceI(v),
      });
    } catch (e) {
      this.account.release();
      throw e;
    }
  }

  private core(i: number): ExecCore {
    const mem = this.machine.mem;
    let core: ExecCore;
    if (this.cfg.virt === "native") {
      // The hart reads its RAM window through the p2m, as the VMM's virtual hart does.
      const hart = new Hart(mem, this.wasm, this.account.contiguous("hart", L.HART_STATE_BYTES / FRAME_BYTES), i);
      hart.setRam(RAM_BASE, this.memBytes, 0);
      hart.setCsr(L.HART_RAM_P2M, BigInt(this.ram.tableOffset));
      hart.setFlags(L.FLAG_EXIT_ON_MTRAP);
      hart.setCsr(L.HART_MEDELEG, MEDELEG);
      hart.setCsr(L.HART_MIDELEG, MIDELEG);
      hart.setCsr(L.HART_MCOUNTEREN, 7n); // cycle, time, instret readable below M
      core = new NativeCore(hart);
    } else {
      // bt: the same VMM, with translated guest code calling its emulation instead of trapping.
      core = new TrapEmulateCore(this.account, this.wasm, i, this.ram, this.cfg.shadowPoolFrames, this.cfg.dedicated ?? false, this.cfg.virt === "bt");
    }
    if (this.cfg.markers) core.hart.addFlags(L.FLAG_MARKERS);
    return core;
  }

  get virt(): VirtMode {
    return this.cfg.virt;
  }

  get memoryBytes(): number {
    return this.memBytes;
  }

  get scheduling(): { weight?: number; cap?: number; dedicated?: boolean } {
    return { weight: this.cfg.weight, cap: this.cfg.cap, dedicated: this.cfg.dedicated };
  }

  // The host's record of a change (Host.setScheduling, which checks the values).
  setScheduling(change: { weight?: number; cap?: number }): void {
    if (change.weight !== undefined) this.cfg.weight = change.weight;
    if (change.cap !== undefined) this.cfg.cap = change.cap;
  }

  // Loads the kernel, initrd and device tree and starts hart 0 (SBI boot protocol).
  boot(): void {
    if (this.state !== "created") throw new Error(`VM ${this.name} is ${this.state}, not created`);
    const { kernel, initrd, cmdline } = this.cfg;
    // The tree's size does not depend on the initrd's address, only on whether there is one.
    const dtbProbe = this.deviceTree(cmdline, initrd ? { start: 0n, end: 0n } : undefined);
    const plan = planBoot({ kernel, initrd, dtbSize: dtbProbe.length, memBase: RAM_BASE, memSize: BigInt(this.memBytes) });
    plan.load(this.ram);
    const dtb = this.deviceTree(cmdline, plan.initrdStart !== undefined ? { start: plan.initrdStart, end: plan.initrdEnd! } : undefined);
    this.ram.write(plan.dtbAddr, dtb);
    const boot = this.vcpus[0]!;
    boot.core.enterSupervisor(plan.entry, 0n, plan.dtbAddr);
    boot.hsm = HSM_STARTED;
    this.t0Ms = hostClockMs();
    for (const v of this.vcpus) v.vcb.t0 = this.t0Ms;
    this.state = "running";
  }

  private deviceTree(bootargs: string, initrd: { start: bigint; end: bigint } | undefined): Uint8Array {
    return buildDeviceTree(boardTree({ harts: this.cfg.cpus, memBytes: this.memBytes, bootargs, initrd, virtioDevices: this.virtio.length }));
  }

  private consoleOut(b: Uint8Array): void {
    this.cfg.console(b);
    this.onConsoleOutput?.(b);
  }

  private externalInterrupt(ctx: number, on: boolean): void {
    const cpu = this.vcpus[ctx >> 1];
    if (!cpu || (ctx & 1) === 0) return; // M-mode contexts: the firmware takes no interrupts
    if (on) cpu.vcb.raise(PENDING_SEIP);
    else cpu.vcb.lower(PENDING_SEIP);
    this.onWake?.(cpu);
  }

  // Ballooning: the machine frames behind pages the guest gave up go back to the host's pool,
  // and pages it takes back get fresh, zeroed frames. A page's p2m entry never names a freed
  // frame: while ballooned it names the sink, a frame of this VM's own (a guest that breaks its
  // word and touches a ballooned page only reaches the sink). Frames are freed only after every
  // vCPU has dropped its cached translations (FENCE_P2M), so no stale TLB entry or shadow PTE
  // can reach a frame that may belong to another VM by then.
  private balloonHost(): BalloonHost {
    const first = Number(RAM_BASE) / FRAME_BYTES;
    const guestFrame = (pfn: number): number => {
      const gf = pfn - first;
      if (gf < 0 || gf >= this.ram.frames) throw new Error(`page frame number 0x${pfn.toString(16)} is not in guest RAM`);
      return gf;
    };
    return {
      inflate: async (pfns) => {
        const freed: number[] = [];
        if (this.sinkFrame === 0) this.sinkFrame = this.account.frames("vmm", 1)[0]! / FRAME_BYTES;
        for (const pfn of pfns) {
          const gf = guestFrame(pfn);
          if (this.ballooned.has(gf)) continue; // given twice: nothing more to take
          freed.push(this.ram.machineFrame(gf) * FRAME_BYTES);
          this.ram.remap(gf, this.sinkFrame);
          this.ballooned.add(gf);
        }
        await this.fenceAll();
        if (this.state === "disposed") return; // the account was released, frames and all
        for (const off of freed) {
          if (this.dma.pinned(off / FRAME_BYTES)) this.freeWhenUnpinned.add(off);
          else this.account.freeFrame("ram", off);
        }
      },
      deflate: async (pfns) => {
        for (const pfn of pfns) {
          const gf = guestFrame(pfn);
          if (!this.ballooned.has(gf)) continue;
          const off = this.account.frames("ram", 1)[0]!;
          this.machine.mem.bytesAt(off, FRAME_BYTES).fill(0);
          this.ram.remap(gf, off / FRAME_BYTES);
          this.ballooned.delete(gf);
        }
        await this.fenceAll();
      },
    };
  }

  // The host's target for the balloon: the guest is asked to give back RAM until it runs with
  // `bytes` (rounded down to pages; at most its RAM). Returns the pages asked for.
  setBalloonTarget(bytes: number): number {
    if (!this.balloon || !this.balloonTransport) throw new UserError(`VM ${this.name} has no balloon device`);
    const keep = Math.max(0, Math.min(this.memBytes, Math.floor(bytes / FRAME_BYTES) * FRAME_BYTES));
    const pages = (this.memBytes - keep) / FRAME_BYTES;
    this.balloon.setTarget(pages);
    this.balloonTransport.configChanged();
    this.onWake?.(this.vcpus[0]!);
    return pages;
  }

  // Pages ballooned now (taken from the guest, their frames back with the host).
  get balloonedPages(): number {
    return this.ballooned.size;
  }

  // Every vCPU forgets its cached translations of guest-physical memory: at once for those the
  // host holds, through their control blocks for those a physical CPU runs (resolves when done).
  private fenceAll(): Promise<void> {
    const asked: Promise<void>[] = [];
    for (const v of this.vcpus) {
      if (v.held) asked.push(v.vcb.requestFence(FENCE_P2M));
      else v.core.flushTlb();
    }
    return Promise.all(asked).then(() => undefined);
  }

  // SBI remote fence.i: a vCPU that is running must look at its physical CPU's translation cache
  // before it runs on (the caller waits until it has); one that is not will, before its next run.
  private remoteFenceI(v: VCpu): void {
    if (v.held) this.fencesAsked.push(v.vcb.requestFence(FENCE_I));
  }

  // A remote sfence.vma: done at once on a vCPU the host holds; asked of one a physical CPU is
  // running, which the calling vCPU then waits for (see trap()).
  private remoteFence(v: VCpu, start?: bigint, size?: bigint, asid?: bigint): void {
    if (!v.held) {
      v.core.fence(start, size, asid);
      return;
    }
    this.fencesAsked.push(v.vcb.requestFence());
  }

  // Guest time: 10 MHz, advancing with the host clock while the VM runs (the same clock on every
  // thread, so a vCPU's time does not depend on which physical CPU runs it).
  now(): bigint {
    return guestTicks(this.t0Ms, hostClockMs(), TIMEBASE_HZ);
  }

  // The host clock (ms since the epoch) at which guest time reaches `ticks`.
  hostTimeOf(ticks: bigint): number {
    return this.t0Ms + Number(ticks) / (TIMEBASE_HZ / 1000);
  }

  // Does this vCPU want a physical CPU now? The host holds it: interrupt lines raised from
  // outside and its timer are brought into its mip first.
  wantsCpu(v: VCpu): boolean {
    if (this.state !== "running" || v.hsm !== HSM_STARTED || v.fenceWait) return false;
    v.irq.mip = v.vcb.mergeInto(v.irq.mip);
    if (this.now() >= v.stimecmp) v.irq.mip |= MIP_STIP;
    return !v.irq.waiting || (v.irq.mip & v.irq.mie) !== 0n;
  }

  // When a vCPU that waits will want the CPU again by itself: its timer (host clock ms), if any.
  wakeTime(v: VCpu): number | undefined {
    if (this.state !== "running" || v.hsm !== HSM_STARTED || v.stimecmp === NO_TIMER) return undefined;
    return this.hostTimeOf(v.stimecmp);
  }

  // Before the host hands a vCPU to a physical CPU: a fence asked while it was last running but
  // not yet done is done now.
  prepare(v: VCpu): void {
    const f = v.vcb.takeFence();
    if ((f & FENCE_P2M) !== 0) v.core.flushTlb();
    else if ((f & FENCE_ALL) !== 0) v.core.fence();
    if (v.core instanceof TrapEmulateCore) v.core.ensurePoolHeadroom();
  }

  // An idle VM gives back its vCPUs' shadow page tables beyond a few (they are rebuilt when it
  // runs again). The host holds its vCPUs. Returns the frames freed.
  shrinkPools(): number {
    let n = 0;
    for (const v of this.vcpus) if (v.core instanceof TrapEmulateCore && !v.held) n += v.core.shrinkPool();
    return n;
  }

  // Applies the MMIO stores the physical CPUs posted (vcb.ts), in the order the vCPUs made them.
  drainPosted(): void {
    const n = this.posted.drain((addr, size, value) => this.bus.write(addr, size as AccessSize, value));
    if (n > 0) this.exits.set("mmio posted", (this.exits.get("mmio posted") ?? 0) + n);
  }

  // Serves the exit a physical CPU handed this vCPU back with (the host holds it again).
  serveExit(v: VCpu, code: number): void {
    this.drainPosted();
    switch (code) {
      case Exit.Marker:
        this.markers.push({ hart: v.id, instret: v.hart.instret, seconds: (hostClockMs() - this.t0Ms) / 1000 });
        return;
      case Exit.Mmio:
        this.countExit("mmio");
        this.bus.serve(v.core);
        return;
      case Exit.Trap:
        this.trap(v);
        return;
      case EXIT_POOL:
        (v.core as TrapEmulateCore).growPool(POOL_GROW_FRAMES);
        return;
      default:
        this.finish(1, `vCPU ${v.id} stopped with an exit the host does not know (${code})`);
    }
  }

  private trap(c: VCpu): void {
    const h = c.hart;
    const cause = h.exitCause;
    if (cause !== CAUSE_ECALL_S) {
      this.finish(1, `guest trap into M-mode the firmware cannot handle: cause ${cause}, tval 0x${h.exitTval.toString(16)}, pc 0x${h.pc.toString(16)}`);
      return;
    }
    this.countExit("sbi");
    const a = [10, 11, 12, 13, 14, 15].map((r) => BigInt.asUintN(64, h.x(r)));
    const r = this.sbi.call(c.id, { eid: BigInt.asUintN(64, h.x(17)), fid: BigInt.asUintN(64, h.x(16)), a });
    if (this.fencesAsked.length > 0) {
      const wait = Promise.all(this.fencesAsked).then(() => {
        c.fenceWait = undefined;
        this.onWake?.(c);
      });
      c.fenceWait = wait;
      this.fencesAsked = [];
    }
    if (r.noReturn && c.hsm === HSM_STOPPED) return;
    h.setX(10, r.error);
    if (!r.legacy) h.setX(11, r.value);
    h.pc = h.pc + 4n;
  }

  private countExit(what: string): void {
    this.exits.set(what, (this.exits.get(what) ?? 0) + 1);
  }

  private finish(status: number, reason: string): void {
    if (this.result) return;
    this.rtc.close();
    const seconds = this.t0Ms === 0 ? 0 : (hostClockMs() - this.t0Ms) / 1000;
    this.result = { status, reason, seconds, instructions: this.instructions() };
    this.state = "stopped";
    this.resolveFinished(this.result);
    for (const v of this.vcpus) this.onWake?.(v); // let the host see that they are done
  }

  // Ends the VM from outside (the user, the host): its vCPUs stop at their next exit.
  stop(status: number, reason: string): void {
    this.finish(status, reason);
  }

  input(bytes: Uint8Array): void {
    if (this.virtioConsole) this.virtioConsole.input(bytes);
    else this.uart.input(bytes);
    this.onWake?.(this.vcpus[0]!);
  }

  instructions(): bigint {
    return this.vcpus.reduce((s, c) => s + c.hart.instret, 0n);
  }

  // SBI calls by extension, with the set_timer calls the physical CPUs served themselves.
  private sbiCalls(): Record<string, number> {
    const calls = Object.fromEntries(this.sbi.calls);
    const timers = this.vcpus.reduce((n, v) => n + v.vcb.setTimers, 0);
    if (timers > 0) calls.TIME = (calls.TIME ?? 0) + timers;
    return calls;
  }

  // Every counter, as data (the CLI prints it; the API and metering will serve it).
  stats(): VmStats {
    const frames = this.account.counts();
    return {
      name: this.name,
      virt: this.cfg.virt,
      instructions: this.instructions().toString(),
      hostExits: Object.fromEntries(this.exits),
      sbi: this.sbiCalls(),
      frames,
      ram: this.ram.stats(),
      overheadBytes: (this.account.total - frames.ram) * FRAME_BYTES,
      translatedCodeBytes: [...this.translatedBytes.values()].reduce((a, b) => a + b, 0),
      mmio: this.bus.accessCounts(),
      virtio: this.virtio.map((t) => t.stats()),
      cpus: this.vcpus.map((c) => ({
        hart: c.hart.stats(),
        vmm: c.core instanceof TrapEmulateCore ? readVmmStats((off) => (c.core as TrapEmulateCore).counter(off)) : undefined,
      })),
    };
  }

  // Gives every machine frame back. The VM must be stopped (or never started).
  dispose(): void {
    if (this.state === "disposed") return;
    if (this.state === "running") this.finish(130, "destroyed");
    this.rtc.close();
    // Devices first: from here on no completion may write into these frames.
    for (const t of this.virtio) t.shutdown();
    this.closing = Promise.allSettled(this.virtio.map((t) => t.device.close())).then(() => undefined);
    this.state = "disposed";
    // Host I/O still in flight into pinned frames: the frames go back when it is done.
    if (this.dma === undefined || !this.dma.busy) this.account.release();
    else this.closing = Promise.all([this.closing, this.dma.idle()]).then(() => this.account.release());
  }

  // Resolves when the VM's devices have closed their backends (disk images flushed, closed and
  // unlocked) after dispose().
  closing: Promise<void> = Promise.resolve();
}
