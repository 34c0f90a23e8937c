// The host: one machine (machine memory and the wasm module), the VMs built on it, and the loop
// that runs their vCPUs where the credit scheduler (src/vmm/sched.ts) says. Today there is one
// physical CPU, the host's main thread, which also serves consoles and timers: the loop runs
// guest code for a few milliseconds at a time and yields to the event loop between, and when no
// vCPU wants the CPU it sleeps until the earliest guest timer or an event (console input, a
// device interrupt) wakes it.
//
// Ownership: the host, its machine's frame allocator, its VMs and the scheduler belong to the
// main thread.
import { Machine, defaultMachineBytes } from "../machine/machine.js";
import { FRAME_BYTES, mib, OutOfMachineMemory } from "../machine/memory.js";
import * as L from "../hart/layout.js";
import { Vm, type VmConfig, type VmStats } from "../vm/vm.js";
import { CreditScheduler, type SchedVcpu, type VcpuSchedStats } from "../vmm/sched.js";
import { DEFAULT_POOL_FRAMES, type VCpu } from "../vmm/vcpu.js";
import { DEFAULT_WEIGHT } from "../vm/spec.js";
import { UserError } from "../errors.js";

export interface HostOptions {
  machineBytes?: number;
  sliceUs?: number;
  periodUs?: number;
}

export interface HostStats {
  machine: { capacityBytes: number; allocatedBytes: number; freeBytes: number };
  vms: (VmStats & { state: string; sched: VcpuSchedStats[] })[];
}

// How long the loop runs guest code before it lets the event loop serve I/O.
const TURN_NS = 10_000_000n;
// An SMP guest's vCPUs share the one physical CPU in short turns: a vCPU spinning on a lock or
// waiting for an IPI answer would otherwise wait for the other's whole slice.
const SMP_TURN_NS = 1_000_000n;

export class Host {
  readonly machine: Machine;
  readonly sched: CreditScheduler;
  private readonly vms = new Map<string, Vm>();
  private readonly entities = new Map<VCpu, { vm: Vm; sched: SchedVcpu }>();
  private readonly bySched = new Map<SchedVcpu, VCpu>();
  private loop: Promise<void> | undefined;
  private wakeLoop: (() => void) | undefined;
  private nextName = 1;
  private readonly t0 = process.hrtime.bigint();
  idleSleeps = 0;

  constructor(opts: HostOptions = {}) {
    this.machine = new Machine(opts.machineBytes ?? defaultMachineBytes());
    this.sched = new CreditScheduler({ pcpus: 1, sliceUs: opts.sliceUs, periodUs: opts.periodUs });
  }

  private nowUs(): number {
    return Number(process.hrtime.bigint() - this.t0) / 1000;
  }

  // Builds a VM, paused, from the host's frames; refuses one that does not fit, saying what is free.
  createVm(cfg: VmConfig): Vm {
    const name = cfg.name ?? `vm${this.nextName++}`;
    if (this.vms.has(name)) throw new UserError(`a VM named ${name} already exists on this host`);
    const need = estimateFrames(cfg);
    const free = this.machine.mem.freeFrameCount;
    if (need > free) {
      throw new OutOfMachineMemory(`VM ${name} needs about ${mib(need)} of machine memory (${cfg.memBytes >> 20} MiB RAM plus the hypervisor's structures); ${mib(free)} of ${mib(this.machine.mem.capacityFrames)} is free`);
    }
    const vm = new Vm(this.machine, { ...cfg, name });
    vm.onWake = () => this.wakeLoop?.();
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
    this.loop ??= this.run().finally(() => { this.loop = undefined; });
  }

  // Stops a VM if it runs and gives back every frame it held.
  destroy(vm: Vm): void {
    vm.dispose();
    this.forget(vm);
    this.vms.delete(vm.name);
  }

  list(): Vm[] {
    return [...this.vms.values()];
  }

  get(name: string): Vm | undefined {
    return this.vms.get(name);
  }

  stats(): HostStats {
    const mem = this.machine.mem;
    return {
      machine: {
        capacityBytes: mem.capacityBytes,
        allocatedBytes: (mem.allocatedFrames + mem.reservedFrames) * FRAME_BYTES,
        freeBytes: mem.freeFrameCount * FRAME_BYTES,
      },
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
  }

  // Runs until no VM is running.
  private async run(): Promise<void> {
    for (;;) {
      let active = false;
      for (const vm of this.vms.values()) if (vm.state === "running") active = true;
      if (!active) return;
      const turnEnd = process.hrtime.bigint() + TURN_NS;
      let ranAny = false;
      while (process.hrtime.bigint() < turnEnd) {
        const now = this.nowUs();
        this.refresh(now);
        const pick = this.sched.pick(0, now);
        if (!pick) break;
        ranAny = true;
        const v = this.bySched.get(pick.vcpu)!;
        const { vm } = this.entities.get(v)!;
        let until = this.t0 + BigInt(Math.round(pick.untilUs * 1000));
        if (vm.vcpus.length > 1) until = minBig(until, process.hrtime.bigint() + SMP_TURN_NS);
        until = minBig(until, turnEnd);
        const end = vm.runFor(v, until);
        const after = this.nowUs();
        this.sched.ran(pick.vcpu, after, after - now, end === "preempted");
        if (end === "finished") this.forget(vm);
      }
      if (!ranAny) {
        this.idleSleeps++;
        await this.sleep();
      } else {
        await new Promise<void>((r) => setImmediate(r));
      }
    }
  }

  // Tells the scheduler which vCPUs want the CPU; one that comes out of a wait is boosted.
  private refresh(nowUs: number): void {
    const idleVms = new Map<Vm, boolean>();
    for (const [v, { vm, sched }] of this.entities) {
      const wants = vm.wantsCpu(v);
      if (wants && !sched.runnable && !sched.running) this.sched.wake(sched, nowUs, true);
      else if (!wants && sched.runnable && !sched.running) this.sched.block(sched, nowUs);
      idleVms.set(vm, (idleVms.get(vm) ?? true) && !wants);
    }
    for (const [vm, idle] of idleVms) {
      if (!idle) vm.idleSince = undefined;
      else vm.idleSince ??= performance.now();
    }
  }

  // Every vCPU waits: sleep until the earliest guest timer, or until something wakes a vCPU.
  private async sleep(): Promise<void> {
    let next: bigint | undefined;
    for (const [v, { vm }] of this.entities) {
      const t = vm.wakeTime(v);
      if (t !== undefined && (next === undefined || t < next)) next = t;
    }
    const now = process.hrtime.bigint();
    const ms = next === undefined ? 50 : Math.min(50, Math.max(0, Number((next - now) / 1_000_000n)));
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { this.wakeLoop = undefined; resolve(); }, ms);
      this.wakeLoop = () => { clearTimeout(t); this.wakeLoop = undefined; resolve(); };
    });
  }
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function emptySched(): VcpuSchedStats {
  return { runs: 0, preemptions: 0, migrations: 0, runUs: 0, waitUs: 0, credit: 0, boosts: 0 };
}

// Frames a VM will hold: its RAM, the p2m table, and per vCPU its hart blocks and, under the
// hypervisor, its VMM block and shadow pool.
export function estimateFrames(cfg: Pick<VmConfig, "memBytes" | "cpus" | "virt" | "shadowPoolFrames">): number {
  const ram = Math.ceil(cfg.memBytes / FRAME_BYTES);
  const p2m = Math.ceil((ram * 4) / FRAME_BYTES);
  const hart = L.HART_STATE_BYTES / FRAME_BYTES;
  const pool = cfg.shadowPoolFrames ?? DEFAULT_POOL_FRAMES;
  const perCpu = cfg.virt === "native" ? hart : 2 * hart + pool + Math.ceil((pool * 4) / FRAME_BYTES) + 32;
  return ram + p2m + cfg.cpus * perCpu;
}
