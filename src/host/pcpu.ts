// The host's side of one physical CPU: a worker thread (pcpu-worker.ts) and its mailbox. run()
// hands a vCPU to the worker and resolves with how the run ended once the worker hands it back;
// the main thread never blocks on it (Atomics.waitAsync).
import { JIT_REGION_BYTES, type JitStats } from "../hart/jit/cache.js";
import { Worker } from "node:worker_threads";
import { hartModule } from "../hart/hart.js";
import type { MachineMemory } from "../machine/memory.js";
import * as M from "./mailbox.js";

export interface RunOrder {
  trapEmulate: boolean;
  core: number;
  real: number;
  irq: number;
  vcb: number;
  timebaseHz: number;
  untilMs: number;
  chunk: number;
  owner: number; // the VM's number, which translations made in this order are counted to
}

export class WorkerDied extends Error {
  override name = "WorkerDied";
}

export class Pcpu {
  private worker: Worker;
  private readonly box: Int32Array;
  private readonly boxF: Float64Array;
  private readonly mailbox = new SharedArrayBuffer(M.BYTES);
  private failed: ((e: Error) => void) | undefined;
  // Ends the order in flight as the worker's notify would (poll() calls it).
  private finishRun: (() => void) | undefined;
  // The host's: true from the moment it hands this CPU a vCPU until it has dealt with the
  // hand-back (which may be a new order at once), so no other dispatch slips in between.
  busy = false;
  runs = 0;
  // Wall time the host kept this CPU busy (from handing it a vCPU to being done with it), and
  // when the current busy stretch began: work conservation shows as busy time while work waits.
  busyMs = 0;
  busySince = 0;

  // The machine memory this physical CPU's translator keeps its map in (none: it only interprets).
  private readonly jitRegion: number | undefined;

  private readonly jitEager: boolean;

  // Called (main thread) when the worker has posted MMIO stores for the host to drain.
  onDoorbell: (() => void) | undefined;
  private closed = false;

  constructor(readonly index: number, private readonly mem: MachineMemory, jit: boolean | "eager" = true) {
    this.jitRegion = jit !== false ? mem.allocHost(JIT_REGION_BYTES / 4096) : undefined;
    this.jitEager = jit === "eager";
    this.box = new Int32Array(this.mailbox);
    this.boxF = new Float64Array(this.mailbox);
    this.worker = this.spawn();
    this.watchDoorbell();
  }

  // One waiter at a time on the doorbell word; a pending waitAsync does not keep the process alive.
  private watchDoorbell(): void {
    if (this.closed) return;
    const w = Atomics.waitAsync(this.box, M.DOORBELL, 0);
    const rung = (): void => {
      if (this.closed) return;
      Atomics.store(this.box, M.DOORBELL, 0);
      this.onDoorbell?.();
      this.watchDoorbell();
    };
    if (w.async) void w.value.then(rung);
    else queueMicrotask(rung);
  }

  // The translation cache's counters as of the last order this physical CPU finished.
  jitStats(): JitStats | undefined {
    if (this.jitRegion === undefined) return undefined;
    const out: Record<string, number> = {};
    M.JIT_STAT_NAMES.forEach((k, i) => { out[k] = this.boxF[M.JIT_STATS + i]!; });
    return out as unknown as JitStats;
  }

  private spawn(): Worker {
    const w = new Worker(new URL("./pcpu-worker.js", import.meta.url), {
      workerData: { memory: this.mem.memory, module: hartModule(), mailbox: this.mailbox, track: this.mem.codeTrack, jitRegion: this.jitRegion, jitEager: this.jitEager },
      name: `pcpu${this.index}`,
    });
    w.unref();
    const die = (e: Error): void => {
      if (this.worker !== w) return; // a replaced worker's late "exit" must not fail the next run
      const f = this.failed;
      this.failed = undefined;
      this.finishRun = undefined;
      f?.(new WorkerDied(`physical CPU ${this.index} (a worker thread) died: ${e.message}`));
    };
    w.on("error", die);
    w.on("exit", (code) => die(new Error(`it exited with code ${code}`)));
    return w;
  }

  // Bytes of this physical CPU's live translations counted to the VM of the last order.
  get ownerCodeBytes(): number {
    return this.boxF[M.OWNER_CODE_BYTES]!;
  }

  // How long the worker ran the last order (ms): the physical CPU time it cost, without the
  // hand-over latencies.
  get ranMs(): number {
    return Math.max(0, this.boxF[M.FINISHED_MS]! - this.boxF[M.STARTED_MS]!);
  }

  run(o: RunOrder): Promise<number> {
    if (Atomics.load(this.box, M.STATE) === M.STATE_ORDER) throw new Error(`physical CPU ${this.index} is still running an order`);
    this.runs++;
    const b = this.box;
    b[M.KIND] = o.trapEmulate ? M.KIND_TRAP_EMULATE : M.KIND_NATIVE;
    b[M.CORE] = o.core;
    b[M.REAL] = o.real;
    b[M.IRQ] = o.irq;
    b[M.VCB] = o.vcb;
    b[M.TIMEBASE] = o.timebaseHz;
    this.boxF[M.UNTIL_MS] = o.untilMs;
    this.boxF[M.CHUNK] = o.chunk;
    this.boxF[M.OWNER] = o.owner;
    const done = new Promise<number>((resolve, reject) => {
      this.failed = reject;
      Atomics.store(b, M.STATE, M.STATE_ORDER);
      Atomics.notify(b, M.STATE);
      // Not "equal" when the worker was done before we looked: then there is nothing to wait for.
      // A wake-up can also be the late notify of the previous order (the worker stores DONE, then
      // notifies; we may have seen DONE and given a new order in between): then the state still
      // says ORDER and we wait again.
      const settle = (): void => {
        if (this.failed !== reject) return;
        const again = Atomics.waitAsync(b, M.STATE, M.STATE_ORDER);
        if (again.async) void again.value.then(settle);
        else finish();
      };
      const w = Atomics.waitAsync(b, M.STATE, M.STATE_ORDER);
      const finish = (): void => {
        if (this.failed !== reject) return; // poll() or the notify got here first
        this.failed = undefined;
        this.finishRun = undefined;
        resolve(b[M.RESULT]!);
      };
      this.finishRun = finish;
      if (w.async) void w.value.then(settle);
      else finish();
    });
    return done;
  }

  // The host's poller (host.ts): notices a finished order or a rung doorbell now, rather than
  // when the event loop delivers the worker's notify (tens of microseconds later). Whichever of
  // the two comes first acts; the other finds nothing left to do.
  poll(): void {
    if (Atomics.load(this.box, M.DOORBELL) !== 0) {
      // As the doorbell's waiter does: clear the word, then drain (a post after the clear rings again).
      Atomics.store(this.box, M.DOORBELL, 0);
      this.onDoorbell?.();
    }
    if (this.finishRun && Atomics.load(this.box, M.STATE) === M.STATE_DONE) this.finishRun();
  }

  // Whether this worker keeps the process alive (a pending Atomics.waitAsync does not).
  keepAlive(on: boolean): void {
    if (on) this.worker.ref();
    else this.worker.unref();
  }

  // Ends the worker abruptly, the way an internal error in it would (tests use it to show that
  // only the vCPU it was running is lost).
  terminate(): void {
    void this.worker.terminate();
  }

  // A worker that died is replaced, so the host keeps its physical CPUs.
  respawn(): void {
    void this.worker.terminate();
    Atomics.store(this.box, M.STATE, M.STATE_DONE);
    this.worker = this.spawn();
  }

  close(): void {
    this.closed = true;
    Atomics.store(this.box, M.DOORBELL, 1);
    Atomics.notify(this.box, M.DOORBELL);
    Atomics.store(this.box, M.STATE, M.STATE_QUIT);
    Atomics.notify(this.box, M.STATE);
    this.worker.removeAllListeners("exit");
    this.worker.removeAllListeners("error");
    this.worker.on("error", () => undefined);
  }
}
