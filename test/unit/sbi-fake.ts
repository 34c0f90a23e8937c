// The SBI dispatcher (src/vmm/sbi.ts) on a stand-in platform for unit tests: every platform call
// does nothing (or succeeds) unless the test supplies its own; `call` passes up to six arguments.
import { Sbi, type SbiPlatform, type SbiResult } from "../../src/vmm/sbi.js";

export function sbiOn(harts: number, own: Partial<SbiPlatform> = {}): { sbi: Sbi; call: (hart: number, eid: bigint, fid: bigint, ...a: bigint[]) => SbiResult } {
  const platform: SbiPlatform = {
    hartCount: harts,
    setTimer: () => undefined, sendIpi: () => undefined, clearIpi: () => undefined, remoteSfence: () => undefined, remoteFenceI: () => undefined,
    hartStart: () => 0n, hartStop: () => 0n, hartStatus: () => 0, hartSuspend: () => 0n,
    systemReset: () => undefined, consoleWrite: () => undefined, consoleRead: () => new Uint8Array(0),
    readGuest: () => undefined, writeGuest: () => false,
    counters: () => { throw new Error("this test gives the platform no counters"); },
    ...own,
  };
  const sbi = new Sbi(platform);
  const call = (hart: number, eid: bigint, fid: bigint, ...a: bigint[]): SbiResult =>
    sbi.call(hart, { eid, fid, a: [...a, 0n, 0n, 0n, 0n, 0n, 0n].slice(0, 6) });
  return { sbi, call };
}
