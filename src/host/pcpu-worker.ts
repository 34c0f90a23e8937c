// A physical CPU: a worker thread with its own instance of the hart/VMM wasm module over the
// host's shared machine memory. It runs one vCPU at a time, as ordered through its mailbox, until
// the vCPU waits for an interrupt, its time is up, the host kicks it, or it needs the host (MMIO,
// an SBI call, a marker); then it hands the vCPU back and sleeps until the next order. Between
// chunks of guest instructions it does what the vCPU's holder must: merge interrupt lines raised
// from outside (vcb.ts), perform fences asked of it, keep the timer and the time CSR up to date.
//
// Ownership: while an order runs, this thread owns the vCPU's hart blocks and VMM block; the
// mailbox's state word hands them over (see pcpu.ts).
import { workerData } from "node:worker_threads";
import * as L from "../hart/layout.js";
import type { VmmExports } from "../vmm/vcpu.js";
import { instantiateOn, type CodeTrack } from "../hart/hart.js";
import { Vcb, guestTicks, hostClockMs, KICK_STOP, FENCE_ALL, FENCE_P2M, VCB_SET_TIMERS, VCB_BYTES } from "../vmm/vcb.js";
import { EXT_TIME } from "../vmm/sbi.js";
import * as M from "./mailbox.js";

interface WorkerData {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  mailbox: SharedArrayBuffer;
  track: CodeTrack;
  jitRegion?: number;
  jitEager: boolean;
}
const { memory, module, mailbox, track, jitRegion, jitEager } = workerData as WorkerData;
const box = new Int32Array(mailbox);
const boxF = new Float64Array(mailbox);
// This thread's instance and its translation cache (src/hart/jit), owned by this thread.
const { wasm: hartWasm, jit } = instantiateOn(module, memory, track, jitRegion, { eager: jitEager });
const wasm = hartWasm as unknown as VmmExports;

const MIP_STIP = 1n << 5n;
const NO_TIMER = 0xffff_ffff_ffff_ffffn;
const CAUSE_ECALL_S = 9n;

// SBI set_timer (TIME extension, or legacy extension 0), served here: it only sets this vCPU's
// timer compare value and clears its pending timer interrupt (SBI 6.1), so it need not cost a
// trip to the host. Anything else the guest asks of the SBI goes to the host.
function setTimer(real: BigInt64Array, irq: BigInt64Array, vcb: Vcb): boolean {
  if (field(real, L.HART_EXIT_CAUSE) !== CAUSE_ECALL_S) return false;
  const eid = BigInt.asUintN(64, real[17]!);
  const legacy = eid === 0n;
  if (!legacy && !(eid === EXT_TIME && real[16] === 0n)) return false;
  vcb.stimecmp = BigInt.asUintN(64, real[10]!);
  irq[L.HART_MIP / 8] = irq[L.HART_MIP / 8]! & ~MIP_STIP;
  real[10] = 0n;
  if (!legacy) real[11] = 0n;
  real[L.HART_PC / 8] = real[L.HART_PC / 8]! + 4n;
  Atomics.add(vcb.i32, VCB_SET_TIMERS / 4, 1);
  return true;
}

const field = (h: BigInt64Array, off: number): bigint => h[off / 8]!;

// The time CSR of a hart now: it runs on from the last clock setting at num/den ticks per instruction.
function hartTime(h: BigInt64Array): bigint {
  const den = field(h, L.HART_TIME_DEN);
  if (den <= 0n) return field(h, L.HART_TIME);
  const ticks = ((field(h, L.HART_INSTRET) - field(h, L.HART_TIME_INSTRET)) * field(h, L.HART_TIME_NUM)) / den;
  return field(h, L.HART_TIME) + (ticks > 0n ? ticks : 0n);
}

// An MMIO store to a device window is posted (vcb.ts) and completed at once.
function postStore(real: BigInt64Array, vcb: Vcb): boolean {
  const info = Number(field(real, L.HART_EXIT_INFO) & 0xffffffffn);
  if (((info >> 8) & 1) !== 1) return false;
  const alias = vcb.alias;
  const addr = BigInt.asUintN(64, field(real, L.HART_EXIT_ADDR));
  if (addr < alias) return false;
  if (!vcb.post(addr - alias, info & 0xff, BigInt.asUintN(64, field(real, L.HART_EXIT_DATA)))) return false;
  wasm.mmioDone(real.byteOffset, 0n);
  if (Atomics.exchange(box, M.DOORBELL, 1) === 0) Atomics.notify(box, M.DOORBELL);
  return true;
}

// Tiering by activity: a vCPU whose last order retired few instructions and ended waiting is
// idle, and its next order runs interpreted (jit.ts jitQuiet; why in docs/binary-translation.md).
// Keyed by hart block; this thread's own heuristic, so a vCPU that moves between physical CPUs
// is simply judged afresh.
const QUIET_INSNS = 1_000_000;
const quiet = new Set<number>();

function runOrder(): number {
  const realAt = box[M.REAL]! >>> 0;
  if (jit) wasm.jitSetQuiet(quiet.has(realAt) ? 1 : 0);
  const buffer = memory.buffer as unknown as SharedArrayBuffer;
  const before = realAt + L.HART_STATE_BYTES <= buffer.byteLength ? new BigInt64Array(buffer, realAt, L.HART_STATE_BYTES / 8)[L.HART_INSTRET / 8]! : 0n;
  const result = runVcpu();
  const after = new BigInt64Array(memory.buffer as unknown as SharedArrayBuffer, realAt, L.HART_STATE_BYTES / 8)[L.HART_INSTRET / 8]!;
  if (result === M.END_BLOCKED && after - before < BigInt(QUIET_INSNS)) quiet.add(realAt);
  else quiet.delete(realAt);
  return result;
}

function runVcpu(): number {
  const te = box[M.KIND] === M.KIND_TRAP_EMULATE;
  // The host grows machine memory on its own thread; this thread's buffer object may still have
  // the old length until it asks again (grow(0) returns the current size and a current buffer).
  const end = Math.max((box[M.REAL]! >>> 0) + L.HART_STATE_BYTES, (box[M.IRQ]! >>> 0) + L.HART_STATE_BYTES, (box[M.VCB]! >>> 0) + VCB_BYTES);
  if (memory.buffer.byteLength < end) memory.grow(0);
  const buffer = memory.buffer as unknown as SharedArrayBuffer;
  // Byte offsets in machine memory are unsigned: a machine may be up to 4 GiB.
  const core = box[M.CORE]! >>> 0;
  const real = new BigInt64Array(buffer, box[M.REAL]! >>> 0, L.HART_STATE_BYTES / 8);
  const irq = new BigInt64Array(buffer, box[M.IRQ]! >>> 0, L.HART_STATE_BYTES / 8);
  const vcb = new Vcb(buffer, box[M.VCB]! >>> 0);
  const untilMs = boxF[M.UNTIL_MS]!;
  const chunk = boxF[M.CHUNK]!;
  const hz = BigInt(box[M.TIMEBASE]!);
  const mipAt = L.HART_MIP / 8;
  for (;;) {
    if ((vcb.takeKick() & KICK_STOP) !== 0) return M.END_KICKED;
    // A remote sfence.vma flushes here; a remote fence.i needs only the translation cache's
    // check below, before the next run.
    const fence = vcb.takeFence();
    if ((fence & FENCE_P2M) !== 0) {
      if (te) wasm.vmmFlush(core);
      else wasm.flushTlb(core);
    } else if ((fence & FENCE_ALL) !== 0) {
      if (te) wasm.vmmSfence(core, 0n, 1, 0n, 1);
      else wasm.flushTlb(core);
    }
    irq[mipAt] = vcb.mergeInto(irq[mipAt]!);
    const now = hostClockMs();
    const t0 = guestTicks(vcb.t0, now, Number(hz));
    const ht = hartTime(real);
    const t = ht > t0 ? ht : t0;
    const ips = vcb.ips;
    real[L.HART_TIME / 8] = t;
    real[L.HART_TIME_INSTRET / 8] = real[L.HART_INSTRET / 8]!;
    real[L.HART_TIME_NUM / 8] = hz;
    real[L.HART_TIME_DEN / 8] = BigInt(Math.round(ips));
    const stimecmp = vcb.stimecmp;
    if (t >= stimecmp) irq[mipAt] = irq[mipAt]! | MIP_STIP;
    if (field(irq, L.HART_WFI) !== 0n && (irq[mipAt]! & field(irq, L.HART_MIE)) === 0n) return M.END_BLOCKED;
    if (now >= untilMs) return M.END_PREEMPTED;
    let budget = chunk;
    if (stimecmp !== NO_TIMER && stimecmp > t) {
      const toTimer = Number(stimecmp - t) * (ips / Number(hz));
      if (toTimer < budget) budget = Math.max(1000, Math.ceil(toTimer));
    }
    const before = real[L.HART_INSTRET / 8]!;
    const w0 = performance.now();
    jit?.check();
    const code = te ? wasm.vmmRun(core, BigInt(budget)) : wasm.run(core, BigInt(budget));
    const ran = Number(real[L.HART_INSTRET / 8]! - before);
    const ms = performance.now() - w0;
    if (ran >= 20_000 && ms > 0) vcb.ips = ips * 0.9 + ((ran * 1000) / ms) * 0.1;
    if (code === L.EXIT_BUDGET || code === L.EXIT_WFI) continue;
    if (code === L.EXIT_TRAP && setTimer(real, irq, vcb)) continue;
    if (code === L.EXIT_MMIO && postStore(real, vcb)) continue;
    return code;
  }
}

// The host usually answers an exit it serves within tens of microseconds: spin that long before
// sleeping, since a futex sleep and wake-up costs about as much again. A vCPU handed back for
// waiting, preemption or a kick gets no quick new order, so then the worker sleeps at once.
const SPIN_MS = 0.5;

let served = false; // the last order ended with an exit the host serves (it answers soon)
for (;;) {
  if (served) {
    const spinEnd = performance.now() + SPIN_MS;
    while (Atomics.load(box, M.STATE) === M.STATE_DONE && performance.now() < spinEnd);
  }
  Atomics.wait(box, M.STATE, M.STATE_DONE);
  const state = Atomics.load(box, M.STATE);
  if (state === M.STATE_QUIT) break;
  if (state !== M.STATE_ORDER) continue;
  boxF[M.STARTED_MS] = hostClockMs();
  if (jit) jit.owner = boxF[M.OWNER]!;
  const result = runOrder();
  boxF[M.OWNER_CODE_BYTES] = jit ? jit.liveBytesOf(jit.owner) : 0;
  served = result < M.END_BLOCKED;
  box[M.RESULT] = result;
  if (jit) M.JIT_STAT_NAMES.forEach((k, i) => { boxF[M.JIT_STATS + i] = jit.stats[k]; });
  boxF[M.FINISHED_MS] = hostClockMs();
  Atomics.store(box, M.STATE, M.STATE_DONE);
  Atomics.notify(box, M.STATE);
}
