// Argument parsers shared by the commands.
import { InvalidArgumentError } from "commander";

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
