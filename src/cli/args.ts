// Argument parsers shared by the commands.
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { InvalidArgumentError } from "commander";
import { UserError } from "../errors.js";
import { MAX_PCPUS } from "../host/host.js";

export function positiveInt(v: string): number {
  const n = Number(v.replace(/_/g, ""));
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

// Guest RAM lives in one 32-bit wasm memory (4 GiB) together with the hypervisor's own structures.
export const MAX_MEM_MIB = 3584;

export function memMiB(v: string): number {
  const n = positiveInt(v);
  if (n > MAX_MEM_MIB) throw new InvalidArgumentError(`at most ${MAX_MEM_MIB} MiB (machine memory is one 4 GiB wasm memory)`);
  return n;
}

// The host's physical CPUs. Thrown as a UserError (not commander's "argument is invalid") so that
// 0, 65 and "two" all get the same one-line answer naming the range.
export function pcpuCount(v: string): number {
  const n = Number(v.replace(/_/g, ""));
  if (v.trim() === "" || !Number.isInteger(n) || n < 1 || n > MAX_PCPUS) {
    throw new UserError(`--pcpus must be a whole number between 1 and ${MAX_PCPUS} (got ${v === "" ? "nothing" : v})`);
  }
  return n;
}

// A file the user named (`what` says which, e.g. "kernel"); a failure names the file and errno.
export function readInput(path: string, what?: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${what ? `${what} ` : ""}${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

// --jit on|off|eager: whether the physical CPUs translate hot guest code to wasm (src/hart/jit),
// and eager: everything the first time it runs (slower; for testing the translator on all code).
export type JitMode = boolean | "eager";
export const JIT_HELP = "translate hot guest code to WebAssembly (on), only interpret it (off), or translate all code the first time it runs (eager)";
export function jitSwitch(v: string): JitMode {
  if (v === "on") return true;
  if (v === "off") return false;
  if (v === "eager") return "eager";
  throw new UserError(`--jit must be on, off or eager (got ${v === "" ? "nothing" : v})`);
}

// --forward HOST:GUEST (TCP ports, 1-65535 each).
export function parseForward(v: string): { hostPort: number; guestPort: number } {
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(v.trim());
  const ports = m ? [Number(m[1]), Number(m[2])] : [];
  if (!m || ports.some((p) => p < 1 || p > 65535)) throw new UserError(`--forward ${v}: expected HOST_PORT:GUEST_PORT, each 1 to 65535 (e.g. 2222:22)`);
  return { hostPort: ports[0]!, guestPort: ports[1]! };
}

export interface ShareSpec {
  dir: string;
  tag: string;
  rw: boolean;
}

// --share HOST_DIR:TAG[,rw]: a directory that exists, a tag of 1-64 letters, digits, - _ .
export function parseShare(v: string): ShareSpec {
  const [main, ...opts] = v.split(",");
  const i = main!.lastIndexOf(":");
  const dir = i > 0 ? main!.slice(0, i) : "";
  const tag = i > 0 ? main!.slice(i + 1) : "";
  if (dir === "" || !/^[A-Za-z0-9_.-]{1,64}$/.test(tag)) throw new UserError(`--share ${v}: expected HOST_DIR:TAG[,rw], the tag 1 to 64 letters, digits, '-', '_' or '.' (e.g. --share ./src:src)`);
  const bad = opts.filter((o) => o !== "rw" && o !== "ro");
  if (bad.length > 0) throw new UserError(`--share ${v}: unknown option ${bad.join(", ")} (rw or ro)`);
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UserError(`--share ${v}: ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new UserError(`--share ${v}: ${dir} is not a directory`);
  return { dir: resolve(dir), tag, rw: opts.includes("rw") };
}
