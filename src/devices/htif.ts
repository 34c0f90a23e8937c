// Host-target interface of the RISC-V test environment (riscv-tests, QEMU's spike board): the
// program writes a command to its `tohost` word and the host answers through `fromhost`.
// Device 0 command 0: bit 0 set = exit with code (payload >> 1); else payload points at a syscall
// block (write = 64, exit = 93). Device 1 command 1: console putchar.
export interface HtifMemory {
  read64(addr: bigint): bigint;
  write64(addr: bigint, v: bigint): void;
  bytes(addr: bigint, len: number): Uint8Array;
}

export type HtifResult = { exit: number } | undefined;

const SYS_WRITE = 64n;
const SYS_EXIT = 93n;

export class Htif {
  constructor(
    readonly tohost: bigint,
    readonly fromhost: bigint | undefined,
    private readonly mem: HtifMemory,
    private readonly out: (bytes: Uint8Array) => void,
  ) {}

  // Called after the program stored to tohost.
  poll(): HtifResult {
    const cmd = this.mem.read64(this.tohost);
    if (cmd === 0n) return undefined;
    const device = cmd >> 56n;
    const command = (cmd >> 48n) & 0xffn;
    const payload = cmd & 0xffff_ffff_ffffn;
    this.mem.write64(this.tohost, 0n);
    if (device === 0n && command === 0n) {
      if (payload & 1n) return { exit: Number(payload >> 1n) };
      const which = this.mem.read64(payload);
      const arg0 = this.mem.read64(payload + 8n);
      const arg1 = this.mem.read64(payload + 16n);
      const arg2 = this.mem.read64(payload + 24n);
      if (which === SYS_EXIT) return { exit: Number(arg0 & 0xffn) };
      if (which === SYS_WRITE) {
        this.out(this.mem.bytes(arg1, Number(arg2)).slice());
        this.mem.write64(payload, arg2);
      } else {
        this.mem.write64(payload, -38n); // -ENOSYS
      }
      this.reply(1n);
      return undefined;
    }
    if (device === 1n && command === 1n) {
      this.out(Uint8Array.of(Number(payload & 0xffn)));
      this.reply((1n << 56n) | (1n << 48n));
      return undefined;
    }
    this.reply((device << 56n) | (command << 48n));
    return undefined;
  }

  private reply(v: bigint): void {
    if (this.fromhost !== undefined) this.mem.write64(this.fromhost, v);
  }
}
