// The mailbox between the host's main thread and one physical-CPU worker: a small shared buffer
// whose STATE word hands a vCPU over. The main thread writes an order only while STATE is DONE
// (the worker sleeps), then sets ORDER; the worker owns the vCPU until it writes the result and
// sets DONE again. Each side reads the other's fields only after seeing the STATE it waits for
// (Atomics.store/load order the plain accesses around them).
export const BYTES = 256;
// i32 slots
export const STATE = 0;
export const RESULT = 1;
export const KIND = 2;
// Block offsets are stored in i32 slots and read back unsigned (machine memory reaches 4 GiB).
export const CORE = 3; // the block run() or vmmRun() takes
export const REAL = 4; // the hart block that executes (retired instructions, the time CSR)
export const IRQ = 5; // the hart block whose mip/mie/WFI the guest's interrupts live in
export const VCB = 6;
export const TIMEBASE = 7;
// f64 slots (index into a Float64Array of the same buffer)
export const UNTIL_MS = 4; // host clock (ms since the epoch) at which the run ends
export const CHUNK = 5; // guest instructions per run() call
export const FINISHED_MS = 6; // host clock when the worker handed the vCPU back
export const STARTED_MS = 7; // host clock when the worker took the order
// The worker's translation cache counters (JIT_STAT_NAMES order), written before each DONE.
export const JIT_STATS = 8;
export const JIT_STAT_NAMES = [
  "translations", "modules", "live", "failed", "blocks", "guestInsns", "wasmBytes", "liveBytes", "maxLiveBytes", "translateMs",
  "evicted", "invalidated", "fenceI", "checks", "compileErrors",
] as const;
// After JIT_STATS: the VM an order is for (the host's number for it; translations made during the
// order are counted to it), and written back with the result, the bytes of this worker's live
// translations counted to that VM.
export const OWNER = JIT_STATS + JIT_STAT_NAMES.length;
export const OWNER_CODE_BYTES = OWNER + 1; // the last f64 slot used: within BYTES

// i32 slot after the f64s: the worker sets it to 1 when it posts an MMIO store into an empty
// doorbell (and notifies); the host's waiter clears it and drains the posted stores.
export const DOORBELL = 2 * (OWNER_CODE_BYTES + 1);

export const STATE_DONE = 0;
export const STATE_ORDER = 1;
export const STATE_QUIT = 2;

export const KIND_NATIVE = 0;
export const KIND_TRAP_EMULATE = 1;

// How a run ended when it was not an exit the host must serve (those are the hart's EXIT_* codes).
export const END_BLOCKED = 100; // waits for an interrupt
export const END_PREEMPTED = 101; // its time is up
export const END_KICKED = 102; // the host asked for it back
