// The host: one machine (machine memory and the wasm module), the VMs built on it, physical CPUs
// (worker threads, pcpu.ts) and the dispatcher that hands vCPUs to them where the credit
// scheduler (src/vmm/sched.ts) says. The main thread never runs guest code: it serves the exits
// physical CPUs hand back (MMIO, SBI calls), consoles, device timers, and the scheduling.
//
// Dispatch is event-driven: a pass runs whenever something may have changed (a vCPU handed back,
// an interrupt raised, a timer due) and gives every idle physical CPU the best runnable vCPU. A
// vCPU handed back for an exit that the host serves goes straight back to the same physical CPU
// while its slice lasts; one that waits for an interrupt (WFI) is blocked until an interrupt or
// its timer wakes it, boosted.
//
// Ownership: the host, its machine's frame allocator, its VMs and the scheduler belong to the
// main thread; a vCPU's blocks belong to the physical CPU running it (VCpu.held) until it is
// handed back (see src/vmm/vcb.ts for what other threads may touch meanwhile).
import { availableParallelism } from "node:os";
import { Machine, defaultMachineBytes } from "../machine/machine.js";
import { FRAME_BYTES, mib, OutOfMachineMemory } from "../machine/memory.js";
import * as L from "../hart/layout.js";
import { Exit } from "../hart/hart.js";
import { Vm, TIMEBASE_HZ, type VmConfig, type VmStats } from "../vm/vm.js";
import { CreditScheduler, type SchedVcpu, type VcpuSchedStats, type Pick as SchedPick } from "../vmm/sched.js";
import type { JitStats } from "../hart/jit/cache.js";
import { DEFAULT_POOL_FRAMES, POOL_START_FRAMES, TrapEmulateCore, type VCpu } from "../vmm/vcpu.js";
import { KICK_LOOK, KICK_STOP, VCB_BYTES, hostClockMs } from "../vmm/vcb.js";
import * as V from "../vmm/layout.js";
import { DEFAULT_WEIGHT } from "../vm/spec.js";
import { UserError } from "../errors.js";
import { Pcpu, WorkerDied } from "./pcpu.js";
import * as M from "./mailbox.js";
import { Switch } from "./net/switch.js";

// Physical CPUs a host may have (worker threads).
export const MAX_PCPUS = 64;

export interface HostOptions {
  machineBytes?: number;
  // Physical CPUs (worker threads); default: one per host core.
  pcpus?: number;
  sliceUs?: number;
  periodUs?: number;
  // Translate hot guest code to wasm on every physical CPU (src/hart/jit; default on).
  jit?: boolean | "eager";
}

export interface HostStats {
  machine: { capacityBytes: number; allocatedBytes: number; freeBytes: number };
  pcpus: { runs: number; busyMs: number; jit?: JitStats }[];
  vms: (VmStats & { state: string; sched: VcpuSchedStats[] })[];
}

// With fewer physical CPUs than it has vCPUs, an SMP guest's vCPUs take short turns: a vCPU
// spinning on a lock, or waiting for another's answer to an IPI, would otherwise wait out the
// other's whole slice.
const SMP_TURN_MS = 1;
const SHRINK_WINDOW_MS = 5_000;
const SHRINK_BELOW_SHARE = 0.02;
// The main thread learns that a worker handed a vCPU back or posted a store through
// Atomics.waitAsync, which the event loop delivers 30-100 us after the worker's notify (measured
// on a 4 KiB disk read: more than the device's own work). So for POLL_MS after any such event,
// while some vCPU is on a physical CPU, the main thread also looks at the mailboxes itself from
// setImmediate, between the event loop's other work (I/O completions still run: each turn
// polls for them without blocking). A guest doing I/O exits again within that window; one that
// computes does not, and the poller stops. (What a poll finds is served by the same handlers
// as a notify, postedOn and handedBack, and they call hot(): that is what extends the window.)
const POLL_MS = 0.3;

interface Entity {
  vm: Vm;
  sched: SchedVcpu;
}

// --virt bt is a way of running the translator's code: a host without one cannot run it.
export function checkTranslatorFor(virt: string | undefined, jit: boolean | "eager"): void {
  if (virt === "bt" && jit === false) throw new UserError("--virt bt is binary translation: it needs the translator (leave out --jit off)");
}

export class Host {
  readonly machine: Machine;
  readonly sched: CreditScheduler;
  readonly pcpus: Pcpu[] = [];
  // The host's virtual switch: VMs whose NICs join it reach each other (src/host/net/switch.ts).
  readonly switch = new Switch();
  private readonly vms = new Map<string, Vm>();
  private readonly entities = new Map<VCpu, Entity>();
  private readonly bySched = new Map<SchedVcpu, VCpu>();
  private readonly running = new Map<VCpu, Pcpu>();
  private readonly shrunk = new Set<Vm>();
  private readonly activity = new Map<Vm, { atMs: number; runUs: number }>();
  private passQueued = false;
  private pollUntil = 0; // performance.now() until which the poller runs
  private polling = false;
  private timer: NodeJS.Timeout | undefined;
  private nextName = 1;
  private readonly t0 = hostClockMs();
  private closed = false;
  private readonly jit: boolean | "eager";
  private jitOwners = 0; // numbers given to VMs for the translators' accounting

  constructor(opts: HostOptions = {}) {
    const n = opts.pcpus ?? availableParallelism();
    if (!Number.isInteger(n) || n < 1 || n > MAX_PCPUS) throw new UserError(`--pcpus must be between 1 and ${MAX_PCPUS} (got ${n})`);
    this.machine = new Machine(opts.machineBytes ?? defaultMachineBytes());
    this.sched = new CreditScheduler({ pcpus: n, sliceUs: opts.sliceUs, periodUs: opts.periodUs });
    this.jit = opts.jit ?? true;
    for (let i = 0; i < n; i++) {
      const p = new Pcpu(i, this.machine.mem, this.jit);
      // A store the vCPU on it posted reaches its device at once (a virtio QueueNotify, a UART byte).
      p.onDoorbell = () => this.postedOn(p);
      this.pcpus.push(p);
    }
  }

  private nowUs(): number {
    return (hostClockMs() - this.t0) * 1000;
  }

  // Builds a VM, paused, from the host's frames; refuses one that does not fit, saying what is free.
  createVm(cfg: VmConfig): Vm {
    const name = cfg.name ?? `vm${this.nextName++}`;
    if (this.vms.has(name)) throw new UserError(`a VM named ${name} already exists on this host`);
    checkTranslatorFor(cfg.virt, this.jit);
    const need = estimateFrames(cfg);
    const free = this.machine.mem.freeFrameCount;
    if (need > free) {
      throw new OutOfMachineMemory(`VM ${name} needs about ${mib(need)} of machine memory (${cfg.memBytes >> 20} MiB RAM plus the hypervisor's structures); ${mib(free)} of ${mib(this.machine.mem.capacityFrames)} is free`);
    }
    const vm = new Vm(this.machine, { ...cfg, name });
    vm.jitOwner = ++this.jitOwners;
    vm.onWake = (v) => this.wake(v);
    this.vms.set(name, vm);
    return vm;
  }

  // Boots a created VM and lets the scheduler run it.
  start(vm: Vm): void {
    const s = vm.scheduling;
    const sv = this.sched.addVm(vm.name, { vcpus: vm.vcpus.length, weight: s.weight ?? DEFAULT_WEIGHT, cap: s.cap ?? 0, dedicated: s.dedicated ?? false });
    try {
      vm.boot();
    } catch (e) {
      this.sched.removeVm(vm.name);
      throw e;
    }
    vm.vcpus.forEach((v, i) => {
      this.entities.set(v, { vm, sched: sv.vcpus[i]! });
      this.bySched.set(sv.vcpus[i]!, v);
    });
    for (const p of this.pcpus) p.keepAlive(true);
    this.queuePass();
  }

  // Changes a VM's weight or cap while it runs (or before it starts); the scheduler uses the new
  // values from its next accounting period. Values out of range are refused, nothing changed.
  setScheduling(vm: Vm, change: { weight?: number; cap?: number }): void {
    if (this.vms.get(vm.name) !== vm) throw new UserError(`VM ${vm.name} is not on this host`);
    const { weight, cap } = change;
    if (weight !== undefined && (!Number.isInteger(weight) || weight < 1 || weight > 65535)) throw new UserError(`weight must be an integer from 1 to 65535 (got ${weight})`);
    if (cap !== undefined && (!Number.isInteger(cap) || cap < 0 || cap > 100 * vm.vcpus.length)) throw new UserError(`cap must be a whole percentage from 0 (none) to ${100 * vm.vcpus.length} (got ${cap})`);
    if (this.sched.vm(vm.name)) {
      if (weight !== undefined) this.sched.setWeight(vm.name, weight);
      if (cap !== undefined) this.sched.setCap(vm.name, cap);
    }
    vm.setScheduling(change);
    this.queuePass();
  }

  // Stops a VM if it runs, waits until no physical CPU holds any of its vCPUs, and gives back
  // every frame it held.
  async destroy(vm: Vm): Promise<void> {
    if (vm.state === "running") vm.stop(130, "destroyed by the host");
    while (vm.vcpus.some((v) => v.held)) await new Promise((r) => setTimeout(r, 1));
    vm.dispose();
    await vm.closing;
    this.forget(vm);
    this.vms.delete(vm.name);
  }

  list(): Vm[] {
    return [...this.vms.values()];
  }

  get(name: string): Vm | undefined {
    return this.vms.get(name);
  }

  // Ends the worker threads; VMs still running are stopped first.
  async close(): Promise<void> {
    for (const vm of this.list()) await this.destroy(vm);
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const p of this.pcpus) p.close();
  }

  stats(): HostStats {
    const mem = this.machine.mem;
    return {
      machine: {
        capacityBytes: mem.capacityBytes,
        allocatedBytes: (mem.allocatedFrames + mem.reservedFrames) * FRAME_BYTES,
        freeBytes: mem.freeFrameCount * FRAME_BYTES,
      },
      pcpus: this.pcpus.map((p) => ({ runs: p.runs, busyMs: p.busyMs + (p.busy ? hostClockMs() - p.busySince : 0), jit: p.jitStats() })),
      vms: this.list().map((vm) => ({
        ...vm.stats(),
        state: vm.state,
        sched: vm.vcpus.map((v) => ({ ...(this.entities.get(v)?.sched.stats ?? emptySched()) })),
      })),
    };
  }

  private forget(vm: Vm): void {
    this.sched.removeVm(vm.name);
    for (const v of vm.vcpus) {
      const e = this.entities.get(v);
      if (e) this.bySched.delete(e.sched);
      this.entities.delete(v);
    }
    this.activity.delete(vm);
    this.shrunk.delete(vm);
    // With no VM left to run, the workers no longer keep the process alive.
    if (this.entities.size === 0) for (const p of this.pcpus) p.keepAlive(false);
  }

  // Something about `v` changed from outside its run: an interrupt, an IPI, its VM stopped.
  private wake(v: VCpu): void {
    if (v.held) {
      const e = this.entities.get(v);
      v.vcb.kick(e && e.vm.state !== "running" ? KICK_STOP : KICK_LOOK);
      return;
    }
    this.queuePass();
  }

  private queuePass(): void {
    if (this.passQueued || this.closed) return;
    this.passQueued = true;
    queueMicrotask(() => {
      this.passQueued = false;
      this.pass();
    });
  }

  // Gives every idle physical CPU work, preempts for boosted vCPUs, and sets the timer for the
  // next moment something is due.
  private pass(): void {
    const now = this.nowUs();
    this.refresh(now);
    for (const p of this.pcpus) {
      if (p.busy) continue;
      const pick = this.sched.pick(p.index, now);
      if (pick) this.dispatch(p, pick);
    }
    // A boosted vCPU that found no idle physical CPU takes one from a vCPU that is not boosted.
    for (const [v] of this.running) {
      const e = this.entities.get(v);
      if (e && this.sched.shouldPreempt(e.sched)) {
        v.vcb.kick(KICK_STOP);
        break;
      }
    }
    this.armTimer();
  }

  // Tells the scheduler which vCPUs the host holds want the CPU; one that comes out of a wait is
  // boosted. A VM whose vCPUs all wait is idle (the console pacer of `ringvisor run` uses that).
  private refresh(nowUs: number): void {
    for (const vm of this.vms.values()) this.forgetIfDone(vm);
    const idle = new Map<Vm, boolean>();
    for (const [v, { vm, sched }] of this.entities) {
      if (v.held) {
        idle.set(vm, false);
        continue;
      }
      const wants = vm.wantsCpu(v);
      if (wants && !sched.runnable) this.sched.wake(sched, nowUs, true);
      else if (!wants && sched.runnable) this.sched.block(sched, nowUs);
      idle.set(vm, (idle.get(vm) ?? true) && !wants);
    }
    for (const [vm, isIdle] of idle) {
      if (!isIdle) vm.idleSince = undefined;
      else vm.idleSince ??= performance.now();
      this.maybeShrink(vm, isIdle);
    }
  }

  // A VM that has used almost no CPU for a while gives back its shadow page tables (it rebuilds
  // them on demand). An idle Linux guest still wakes a few times a second, so "idle" is a share
  // of the CPU over a window, not an unbroken wait.
  private maybeShrink(vm: Vm, idleNow: boolean): void {
    const now = performance.now();
    let used = 0;
    for (const v of vm.vcpus) used += this.entities.get(v)?.sched.stats.runUs ?? 0;
    const a = this.activity.get(vm);
    if (!a) {
      this.activity.set(vm, { atMs: now, runUs: used });
      return;
    }
    if (now - a.atMs < SHRINK_WINDOW_MS) return;
    const share = (used - a.runUs) / ((now - a.atMs) * 1000);
    this.activity.set(vm, { atMs: now, runUs: used });
    if (share >= SHRINK_BELOW_SHARE) {
      this.shrunk.delete(vm);
    } else if (idleNow && !this.shrunk.has(vm)) {
      this.shrunk.add(vm);
      vm.shrinkPools();
    }
  }

  private dispatch(p: Pcpu, pick: SchedPick): void {
    const v = this.bySched.get(pick.vcpu)!;
    const { vm } = this.entities.get(v)!;
    let untilMs = this.t0 + pick.untilUs / 1000;
    if (vm.vcpus.length > this.pcpus.length) untilMs = Math.min(untilMs, hostClockMs() + SMP_TURN_MS);
    this.hand(p, v, vm, pick, 0, untilMs);
  }

  // Hands `v` to `p` until `untilMs`; when it comes back, serves its exit and either hands it back
  // at once (its slice goes on) or tells the scheduler how it ended. `usedUs`: what the vCPU has
  // run on physical CPUs in this slice so far, which is what the scheduler charges.
  private hand(p: Pcpu, v: VCpu, vm: Vm, pick: SchedPick, usedUs: number, untilMs: number): void {
    vm.prepare(v);
    v.held = true;
    if (!p.busy) p.busySince = hostClockMs();
    p.busy = true;
    this.running.set(v, p);
    const core = v.core;
    const te = core instanceof TrapEmulateCore;
    p.run({
      trapEmulate: te,
      core: te ? core.block : core.hart.base,
      real: core.hart.base,
      irq: core.irq.base,
      vcb: v.vcb.offset,
      timebaseHz: TIMEBASE_HZ,
      untilMs,
      chunk: vm.chunk,
      owner: vm.jitOwner,
    }).then(
      (code) => this.handedBack(p, v, vm, pick, usedUs + p.ranMs * 1000, untilMs, code),
      (e: unknown) => this.crashed(p, v, vm, pick, e),
    );
  }

  private hot(): void {
    this.pollUntil = performance.now() + POLL_MS;
    if (this.polling || this.closed) return;
    this.polling = true;
    setImmediate(this.pollTick);
  }

  private readonly pollTick = (): void => {
    for (const p of this.pcpus) p.poll();
    if (!this.closed && this.running.size > 0 && performance.now() < this.pollUntil) setImmediate(this.pollTick);
    else this.polling = false;
  };

  private postedOn(p: Pcpu): void {
    this.hot();
    for (const [v, q] of this.running) {
      if (q === p) this.entities.get(v)?.vm.drainPosted();
    }
  }

  private handedBack(p: Pcpu, v: VCpu, vm: Vm, pick: SchedPick, usedUs: number, untilMs: number, code: number): void {
    v.held = false;
    this.running.delete(v);
    this.hot();
    vm.translatedBytes.set(p.index, p.ownerCodeBytes);
    vm.drainPosted();
    if (code < M.END_BLOCKED && code !== Exit.Budget && code !== Exit.Wfi) vm.serveExit(v, code);
    const now = this.nowUs();
    if (vm.state !== "running") {
      this.idle(p);
      this.sched.ran(pick.vcpu, now, usedUs, false);
      this.forgetIfDone(vm);
      this.queuePass();
      return;
    }
    const served = code < M.END_BLOCKED;
    if (served && hostClockMs() < untilMs && !this.closed && vm.wantsCpu(v)) {
      this.hand(p, v, vm, pick, usedUs, untilMs);
      return;
    }
    this.idle(p);
    this.sched.ran(pick.vcpu, now, usedUs, vm.wantsCpu(v));
    this.pass();
  }

  private idle(p: Pcpu): void {
    if (p.busy) p.busyMs += hostClockMs() - p.busySince;
    p.busy = false;
  }

  // A VM that stopped leaves the scheduler once no physical CPU holds any of its vCPUs.
  private forgetIfDone(vm: Vm): void {
    if (vm.state !== "running" && !vm.vcpus.some((v) => v.held) && vm.vcpus.some((v) => this.entities.has(v))) this.forget(vm);
  }

  // A worker died under a vCPU: that VM is reported crashed; the physical CPU is replaced.
  private crashed(p: Pcpu, v: VCpu, vm: Vm, pick: SchedPick, e: unknown): void {
    v.held = false;
    this.idle(p);
    this.running.delete(v);
    const why = e instanceof WorkerDied ? e.message : `internal error on a physical CPU: ${(e as Error).message ?? String(e)}`;
    vm.stop(71, `crashed: ${why}`);
    this.sched.ran(pick.vcpu, this.nowUs(), 0, false);
    this.forgetIfDone(vm);
    if (!this.closed) p.respawn();
    this.queuePass();
  }

  // The next moment a waiting vCPU's timer is due, or the scheduler re-deals credit while some
  // vCPU waits for it.
  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed || this.entities.size === 0) return;
    let next = Infinity;
    let queued = false;
    for (const [v, { vm, sched }] of this.entities) {
      if (v.held) continue;
      if (sched.runnable) queued = true;
      const t = vm.wakeTime(v);
      if (t !== undefined && t < next) next = t;
    }
    if (queued && this.pcpus.some((p) => !p.busy)) next = Math.min(next, this.t0 + this.sched.nextDeadline() / 1000);
    if (next === Infinity) return;
    const ms = Math.max(0, next - hostClockMs());
    this.timer = setTimeout(() => { this.timer = undefined; this.pass(); }, Math.min(ms, 1000));
  }
}

function emptySched(): VcpuSchedStats {
  return { runs: 0, preemptions: 0, migrations: 0, runUs: 0, waitUs: 0, credit: 0, boosts: 0 };
}

// Frames a VM holds when it starts: its RAM, the p2m table, the control blocks, and per vCPU its
// hart blocks and, under the hypervisor, its VMM block and the start of its shadow pool (all of
// it for a dedicated partition, which reserves its frames up front).
export function estimateFrames(cfg: Pick<VmConfig, "memBytes" | "cpus" | "virt" | "shadowPoolFrames" | "dedicated">): number {
  const ram = Math.ceil(cfg.memBytes / FRAME_BYTES);
  const p2m = Math.ceil((ram * 4) / FRAME_BYTES);
  const hart = L.HART_STATE_BYTES / FRAME_BYTES;
  const cap = cfg.shadowPoolFrames ?? DEFAULT_POOL_FRAMES;
  const pool = cfg.dedicated ? cap : Math.min(cap, POOL_START_FRAMES); // else it grows from there as the guest runs
  const vmmBlock = Math.ceil((V.VC_BLOCK_BYTES + cap * 8) / FRAME_BYTES);
  const perCpu = cfg.virt === "native" ? hart : 2 * hart + pool + vmmBlock;
  return ram + p2m + Math.ceil((cfg.cpus * VCB_BYTES) / FRAME_BYTES) + cfg.cpus * perCpu;
}
