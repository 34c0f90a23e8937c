// The vCPU scheduler: proportional share in the manner of Xen's credit scheduler. Pure policy:
// it is told what happened (a vCPU woke, blocked, ran for so long) and asked what a physical CPU
// should run next; the host's run loop (one thread) carries its decisions out. Time is in
// microseconds of host time and always passed in, so the policy can be tested with a clock of
// the test's own.
//
// - Every accounting period, the credit of `periodUs` x (shared physical CPUs) is dealt out to the
//   VMs that want CPU, in proportion to their weights, and each VM's share to its vCPUs that
//   want it. Running burns credit at one unit per microsecond.
// - Priorities: BOOST (just woken by an event, so interactive guests answer quickly), UNDER
//   (credit left), OVER (none). A physical CPU runs the first vCPU of the best class; it is
//   work-conserving: OVER vCPUs run when nothing better wants the CPU.
// - A cap (percent of one physical CPU, 0 = none) limits what a VM may run per period, whatever
//   is idle: a capped VM that used its allowance waits for the next period.
// - A dedicated VM's vCPUs each own a physical CPU that nothing else runs on.
// - vCPUs in WFI are blocked: they burn nothing and are not queued.
import { UserError } from "../errors.js";

export const DEFAULT_SLICE_US = 30_000;
export const DEFAULT_PERIOD_US = 10_000;
// A vCPU may bank at most this many periods of credit, so a long-idle VM cannot come back and
// monopolise the CPU, nor owe more than as many, so one that ran alone is not starved later.
const CREDIT_CAP_PERIODS = 3;
// A boosted run is short: long enough to answer an event, not enough to starve others.
const BOOST_SLICE_US = 2_000;

export type Priority = "boost" | "under" | "over";

export interface VcpuSchedStats {
  runs: number; // times it was picked
  preemptions: number; // times its slice ended while it still wanted the CPU
  migrations: number; // times it ran on a different physical CPU than the time before
  runUs: number; // time it ran
  waitUs: number; // time it was runnable but not running: steal time, as the guest would see it
  credit: number; // current credit (us)
  boosts: number;
}

export class SchedVcpu {
  credit = 0;
  runnable = false;
  running = false;
  boosted = false;
  lastPcpu = -1;
  runnableSince = 0;
  sliceLeft = 0; // of a slice cut short by an accounting, to go on with
  readonly stats: VcpuSchedStats = { runs: 0, preemptions: 0, migrations: 0, runUs: 0, waitUs: 0, credit: 0, boosts: 0 };

  constructor(readonly vm: SchedVm, readonly index: number, readonly pinned: number | undefined) {}

  get priority(): Priority {
    return this.boosted ? "boost" : this.credit > 0 ? "under" : "over";
  }
}

export class SchedVm {
  readonly vcpus: SchedVcpu[] = [];
  usedThisPeriod = 0; // us run by all its vCPUs since the last accounting (for a capped VM, plus what it overran before)
  usedTotal = 0;
  charged = 0; // us charged to it since the last accounting, carry-over aside

  constructor(readonly id: string, public weight: number, public cap: number, readonly dedicated: boolean) {}

  // A capped VM that has run its allowance this period waits for the next.
  capped(periodUs: number): boolean {
    return this.cap > 0 && this.usedThisPeriod >= (this.cap / 100) * periodUs;
  }
}

export interface SchedOptions {
  pcpus: number;
  sliceUs?: number;
  periodUs?: number;
}

export interface Pick {
  vcpu: SchedVcpu;
  // Run it until this host time at most (then ask again).
  untilUs: number;
}

export class CreditScheduler {
  readonly pcpus: number;
  sliceUs: number;
  periodUs: number;
  private readonly vms = new Map<string, SchedVm>();
  private queue: SchedVcpu[] = []; // runnable, not running, FIFO within a priority
  private readonly pinnedTo = new Map<number, SchedVcpu>(); // dedicated pCPU -> its vCPU
  private nextAccounting = 0;
  accountings = 0;

  constructor(opts: SchedOptions) {
    if (!Number.isInteger(opts.pcpus) || opts.pcpus < 1) throw new RangeError(`pcpus must be at least 1, got ${opts.pcpus}`);
    this.pcpus = opts.pcpus;
    this.sliceUs = opts.sliceUs ?? DEFAULT_SLICE_US;
    this.periodUs = opts.periodUs ?? DEFAULT_PERIOD_US;
  }

  // Physical CPUs no dedicated vCPU owns.
  get sharedPcpus(): number {
    return this.pcpus - this.pinnedTo.size;
  }

  // Adds a VM with `vcpus` vCPUs; a dedicated VM gets a free physical CPU for each, or is refused.
  addVm(id: string, opts: { vcpus: number; weight: number; cap: number; dedicated: boolean }): SchedVm {
    if (this.vms.has(id)) throw new Error(`VM ${id} is already scheduled`);
    const vm = new SchedVm(id, opts.weight, opts.cap, opts.dedicated);
    let pins: number[] = [];
    if (opts.dedicated) {
      const free = [...Array(this.pcpus).keys()].filter((p) => !this.pinnedTo.has(p));
      // One physical CPU stays shared, so the other VMs can still run.
      if (free.length - 1 < opts.vcpus) {
        throw new SchedError(
          `a dedicated VM with ${opts.vcpus} vCPU${opts.vcpus > 1 ? "s" : ""} needs as many physical CPUs of its own, and one must stay shared: ` +
            `${this.pcpus} physical CPUs, ${this.pinnedTo.size} already dedicated`,
        );
      }
      pins = free.slice(free.length - opts.vcpus);
    }
    for (let i = 0; i < opts.vcpus; i++) {
      const v = new SchedVcpu(vm, i, opts.dedicated ? pins[i] : undefined);
      vm.vcpus.push(v);
      if (v.pinned !== undefined) this.pinnedTo.set(v.pinned, v);
    }
    this.vms.set(id, vm);
    return vm;
  }

  removeVm(id: string): void {
    const vm = this.vms.get(id);
    if (!vm) return;
    for (const v of vm.vcpus) if (v.pinned !== undefined) this.pinnedTo.delete(v.pinned);
    this.queue = this.queue.filter((v) => v.vm !== vm);
    this.vms.delete(id);
  }

  vm(id: string): SchedVm | undefined {
    return this.vms.get(id);
  }

  setWeight(id: string, weight: number): void {
    if (!Number.isInteger(weight) || weight < 1 || weight > 65535) throw new SchedError(`weight must be an integer from 1 to 65535 (got ${weight})`);
    this.need(id).weight = weight;
  }

  setCap(id: string, cap: number): void {
    if (!Number.isInteger(cap) || cap < 0) throw new SchedError(`cap must be a whole percentage, 0 for none (got ${cap})`);
    this.need(id).cap = cap;
  }

  private need(id: string): SchedVm {
    const vm = this.vms.get(id);
    if (!vm) throw new SchedError(`no VM ${id} is scheduled`);
    return vm;
  }

  // The vCPU wants the CPU. `boost`: it was woken by an event (interrupt, IPI) from a wait.
  wake(v: SchedVcpu, nowUs: number, boost = false): void {
    if (v.runnable) return;
    v.runnable = true;
    v.runnableSince = nowUs;
    if (boost && v.credit >= 0) {
      v.boosted = true;
      v.stats.boosts++;
    }
    if (!v.running) this.enqueue(v);
  }

  // The vCPU no longer wants the CPU (it waits for an interrupt, or its VM is paused).
  block(v: SchedVcpu, nowUs: number): void {
    if (!v.runnable) return;
    if (!v.running) v.stats.waitUs += nowUs - v.runnableSince;
    v.runnable = false;
    v.boosted = false;
    this.queue = this.queue.filter((q) => q !== v);
  }

  // What physical CPU `pcpu` should run now, if anything.
  pick(pcpu: number, nowUs: number): Pick | undefined {
    this.account(nowUs);
    const mine = this.pinnedTo.get(pcpu);
    let v: SchedVcpu | undefined;
    if (mine) {
      v = mine.runnable && !mine.running ? mine : undefined;
      if (v) this.queue = this.queue.filter((q) => q !== v);
    } else {
      const i = this.bestIndex();
      if (i >= 0) v = this.queue.splice(i, 1)[0];
    }
    if (!v) return undefined;
    v.running = true;
    v.stats.runs++;
    v.stats.waitUs += nowUs - v.runnableSince;
    if (v.lastPcpu >= 0 && v.lastPcpu !== pcpu) v.stats.migrations++;
    v.lastPcpu = pcpu;
    let until = nowUs + (v.boosted ? BOOST_SLICE_US : this.sliceUs);
    if (v.vm.cap > 0) until = Math.min(until, nowUs + Math.max(100, (v.vm.cap / 100) * this.periodUs - v.vm.usedThisPeriod));
    if (v.sliceLeft > 0 && !v.boosted) until = Math.min(until, nowUs + v.sliceLeft);
    // A run stops at the next accounting, where credit is re-dealt and caps reset; a vCPU whose
    // slice is not over then goes on if it is still the best choice (ran() keeps it at the head).
    return { vcpu: v, untilUs: Math.max(nowUs + 100, Math.min(until, this.nextAccounting)) };
  }

  // A run of `v` ended after `ranUs`. `stillRunnable` is false when it blocked (WFI).
  ran(v: SchedVcpu, nowUs: number, ranUs: number, stillRunnable: boolean): void {
    const wasBoosted = v.boosted;
    v.running = false;
    v.credit -= ranUs;
    v.stats.runUs += ranUs;
    v.vm.usedThisPeriod += ranUs;
    v.vm.usedTotal += ranUs;
    v.vm.charged += ranUs;
    v.boosted = false;
    if (!stillRunnable) {
      v.runnable = false;
      v.sliceLeft = 0;
      return;
    }
    v.runnable = true;
    v.runnableSince = nowUs;
    const left = (v.sliceLeft > 0 ? v.sliceLeft : this.sliceUs) - ranUs;
    if (!wasBoosted && left >= 100 && nowUs >= this.nextAccounting) {
      // Stopped by the accounting, not by its slice: first in line among its equals.
      v.sliceLeft = left;
      this.queue.unshift(v);
      return;
    }
    v.sliceLeft = 0;
    v.stats.preemptions++;
    this.enqueue(v);
  }

  // Whether a running vCPU should be stopped early because something better waits: a boosted
  // vCPU with no idle physical CPU to go to.
  shouldPreempt(running: SchedVcpu): boolean {
    if (running.pinned !== undefined || running.boosted) return false;
    return this.queue.some((q) => q.boosted && q.pinned === undefined && this.eligible(q));
  }

  // The earliest time something changes without an event: the next accounting.
  nextDeadline(): number {
    return this.nextAccounting;
  }

  private enqueue(v: SchedVcpu): void {
    this.queue.push(v);
  }

  private eligible(v: SchedVcpu): boolean {
    return !v.vm.capped(this.periodUs);
  }

  private bestIndex(): number {
    let best = -1;
    let rank = 3;
    for (let i = 0; i < this.queue.length; i++) {
      const v = this.queue[i]!;
      if (v.pinned !== undefined || !this.eligible(v)) continue;
      const r = v.boosted ? 0 : v.credit > 0 ? 1 : 2;
      if (r < rank) {
        rank = r;
        best = i;
        if (r === 0) break;
      }
    }
    return best;
  }

  // Deals out a period's credit to the VMs that want CPU, by weight, and resets cap allowances.
  private account(nowUs: number): void {
    if (this.nextAccounting === 0) this.nextAccounting = nowUs + this.periodUs;
    while (nowUs >= this.nextAccounting) {
      this.nextAccounting += this.periodUs;
      this.accountings++;
      const active = [...this.vms.values()].filter((vm) => !vm.dedicated && vm.vcpus.some((v) => v.runnable || v.running));
      const totalWeight = active.reduce((s, vm) => s + vm.weight, 0);
      // The credit dealt is what the physical CPUs could give, or, when they were all busy but
      // less than that was charged (runs are charged the time they ran on a physical CPU, not
      // the hand-overs between), what was charged: credit dealt beyond what can be burnt would
      // leave every vCPU in credit and the weights would stop mattering.
      let charged = 0;
      for (const vm of this.vms.values()) {
        if (!vm.dedicated) charged += vm.charged;
        vm.charged = 0;
      }
      const nominal = this.periodUs * this.sharedPcpus;
      const pool = charged > 0 ? Math.min(nominal, Math.max(charged, nominal / 2)) : nominal;
      for (const vm of this.vms.values()) {
        // A run ends a little after its allowance (a physical CPU stops a vCPU between chunks of
        // guest instructions, and the host sees it back later still): a capped VM's excess counts
        // against the next periods, so the cap holds on average instead of being forgiven.
        const allowance = (vm.cap / 100) * this.periodUs;
        vm.usedThisPeriod = vm.cap > 0 ? Math.min(Math.max(0, vm.usedThisPeriod - allowance), CREDIT_CAP_PERIODS * this.periodUs) : 0;
        const wanting = vm.vcpus.filter((v) => v.runnable || v.running);
        if (vm.dedicated || !active.includes(vm) || wanting.length === 0) continue;
        // A VM can use at most one physical CPU per vCPU, and its cap.
        let share = (pool * vm.weight) / totalWeight;
        share = Math.min(share, this.periodUs * wanting.length);
        if (vm.cap > 0) share = Math.min(share, (vm.cap / 100) * this.periodUs);
        const bound = CREDIT_CAP_PERIODS * this.periodUs;
        for (const v of wanting) v.credit = Math.max(-bound, Math.min(v.credit + share / wanting.length, bound));
      }
      for (const vm of this.vms.values()) for (const v of vm.vcpus) v.stats.credit = Math.round(v.credit);
    }
  }
}

export class SchedError extends UserError {
  override name = "SchedError";
}
