// The hart's wasm exports. The host owns machine memory and each hart's state block; these
// functions act on the block whose address they are given.
import {
  HART_MISA, HART_MSTATUS, HART_PRIV, HART_RES_ADDR, HART_WATCH, HART_STATE_BYTES, HART_MHARTID,
  PRIV_M,
} from "../layout";
import { S } from "./state";
import { flushAll } from "./mmu";
import { MISA_VALUE } from "./csr";
import { pendingInterrupt } from "./trap";

export { run, mmioDone, hostTrap } from "./cpu";
export { jitSetup, jitSetQuiet, jitSetHotness, jitLoad, jitStore, jitFp, jitAddD, jitMulD, jitFmaD } from "./jit";

// Put the hart at `state` into its reset state (privileged spec 3.4): M-mode, everything zero
// except what the spec fixes; pc and the RAM window are the host's to set afterwards.
export function reset(state: usize, hartid: i64): void {
  memory.fill(state, 0, HART_STATE_BYTES);
  store<i64>(state + HART_MISA, MISA_VALUE);
  store<i64>(state + HART_MSTATUS, <i64>0xA << 32);
  store<i64>(state + HART_PRIV, PRIV_M);
  store<i64>(state + HART_MHARTID, hartid);
  store<i64>(state + HART_RES_ADDR, -1);
  store<i64>(state + HART_WATCH, -1);
  flushTlb(state);
}

// Drop every cached translation (the host changed the RAM window or rewrote memory mappings).
export function flushTlb(state: usize): void {
  S = state;
  flushAll();
}

// The interrupt cause the hart would take now, or -1 (for the host's scheduling decisions).
export function pendingIrq(state: usize): i64 {
  S = state;
  return pendingInterrupt();
}
