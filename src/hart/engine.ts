// The JavaScript engine's settings for the hart and the translator, set once per process before
// the first wasm module is compiled (V8's flags are process-wide, so the pCPU workers share them).
//
// V8 compiles every wasm function first with its baseline compiler (Liftoff) and recompiles a
// function with the optimising one (TurboFan) once it has used up a "tiering budget", roughly
// the bytes of wasm it executed (1.8 million by default). That suits a program with a few hot
// functions. The translator makes thousands of functions (one per guest code region, about 14,000
// in a Debian boot), most of which run for a few milliseconds and are never seen again; at the
// default budget most of them are recompiled by TurboFan, which on a 2-core machine took the
// guest's core for a Debian boot's worth of seconds and doubled the boot (measured, 2-core AMD
// EPYC: 13.0 s to the shell with the default budget, 7.0 s with 200 million, 9.5 s with TurboFan
// off altogether, which also slows the interpreter). With a budget of 200 million, only code that
// runs long enough to repay the recompilation (the interpreter, a guest's hot loops) is optimised.
//
// RINGVISOR_WASM_TIERING_BUDGET overrides the budget ("v8" leaves V8's own default).
import { setFlagsFromString } from "node:v8";

export const WASM_TIERING_BUDGET = 200_000_000;

let tuned = false;

export function tuneEngine(): void {
  if (tuned) return;
  tuned = true;
  const env = process.env.RINGVISOR_WASM_TIERING_BUDGET;
  if (env === "v8") return;
  const budget = env !== undefined && /^\d+$/.test(env) ? Number(env) : WASM_TIERING_BUDGET;
  setFlagsFromString(`--wasm-tiering-budget=${budget}`);
}
