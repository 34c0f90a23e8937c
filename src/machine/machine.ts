// One machine: the machine memory every VM's frames come from and the wasm module (hart and
// VMM) instantiated over it. The host owns one; later each physical-CPU worker instantiates the
// same module over the same memory.
import { totalmem } from "node:os";
import { instantiateHart, type HartExports } from "../hart/hart.js";
import { MachineMemory, MAX_MACHINE_BYTES } from "./memory.js";

// Half of the host's RAM, up to the 4 GiB a 32-bit wasm memory can address: address space is
// reserved up front, RAM only as guests use it.
export function defaultMachineBytes(hostBytes = totalmem()): number {
  const half = Math.floor(hostBytes / 2 / (64 << 20)) * (64 << 20);
  return Math.max(256 << 20, Math.min(MAX_MACHINE_BYTES, half));
}

export class Machine {
  readonly mem: MachineMemory;
  readonly wasm: HartExports;

  constructor(bytes = defaultMachineBytes()) {
    this.mem = new MachineMemory(bytes);
    this.wasm = instantiateHart(this.mem);
  }
}
