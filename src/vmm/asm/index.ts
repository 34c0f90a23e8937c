// The wasm module's exports: the hart (src/hart/asm) and the trap-and-emulate VMM that drives it.
// One module, so that the VMM's loop calls run() and the hart's CSR and trap code directly.
export { reset, run, mmioDone, hostTrap, flushTlb, pendingIrq, jitSetup, jitSetQuiet, jitSetHotness, jitLoad, jitStore, jitFp, jitAddD, jitMulD, jitFmaD } from "../../hart/asm/index";
export { vmmRun, vmmSync, vmmFlush, vmmShrink, vmmTrap, vmmSfence, btSys } from "./vcpu";
