// What the SBI (src/vmm/sbi.ts) needs from the machine it runs on, for one VM: its vCPUs' timers,
// software interrupts, fences and HSM states, its console, its RAM and its power. In native mode
// this is the VM's M-mode firmware; under the hypervisor the same calls are hypercalls.
import * as L from "../hart/layout.js";
import {
  Sbi, type SbiPlatform, SBI_SUCCESS, SBI_ERR_ALREADY_AVAILABLE, SBI_ERR_INVALID_ADDRESS, SBI_ERR_INVALID_PARAM,
  SBI_ERR_NOT_SUPPORTED, HSM_STARTED, HSM_STOPPED, SRST_SHUTDOWN,
} from "../vmm/sbi.js";
import { contains } from "../vmm/guest-memory.js";
import type { P2m } from "../vmm/p2m.js";
import type { VCpu } from "../vmm/vcpu.js";
import { PENDING_SSIP } from "../vmm/vcb.js";

const MIP_SSIP = 1n << 1n;
const MIP_STIP = 1n << 5n;

// The parts of a VM the firmware acts on.
export interface FirmwareHost {
  readonly vcpus: readonly VCpu[];
  readonly ram: P2m;
  consoleOut(bytes: Uint8Array): void;
  // The guest asked to power off (status 0), reported a failure (1) or asked for a reboot (3).
  powerOff(status: number, reason: string): void;
  // A vCPU's interrupt state changed from outside its own run: the host may have to run it.
  wake(vcpu: VCpu): void;
  // sfence.vma on another vCPU, which may be running on another physical CPU.
  remoteFence(vcpu: VCpu, start?: bigint, size?: bigint, asid?: bigint): void;
  // fence.i on another vCPU (its physical CPU's translation cache).
  remoteFenceI(vcpu: VCpu): void;
}

export function firmware(vm: FirmwareHost): Sbi {
  const cpu = (h: number): VCpu => vm.vcpus[h]!;
  const platform: SbiPlatform = {
    hartCount: vm.vcpus.length,
    setTimer: (h, t) => {
      const c = cpu(h);
      c.stimecmp = t;
      c.irq.mip = c.irq.mip & ~MIP_STIP;
    },
    sendIpi: (h) => {
      const c = cpu(h);
      c.vcb.raise(PENDING_SSIP);
      vm.wake(c);
    },
    // Legacy clear_ipi, of the calling hart only (SBI 5.4).
    clearIpi: (h) => {
      const c = cpu(h);
      c.vcb.lower(PENDING_SSIP);
      c.irq.mip &= ~MIP_SSIP;
    },
    remoteSfence: (h, start, size, asid) => vm.remoteFence(cpu(h), start, size, asid),
    remoteFenceI: (h) => vm.remoteFenceI(cpu(h)),
    hartStart: (h, addr, opaque) => {
      const c = cpu(h);
      if (c.hsm !== HSM_STOPPED) return SBI_ERR_ALREADY_AVAILABLE; // SBI 9.1: already started
      if (!contains(vm.ram, addr, 2)) return SBI_ERR_INVALID_ADDRESS;
      c.core.enterSupervisor(addr, BigInt(h), opaque);
      c.hsm = HSM_STARTED;
      vm.wake(c);
      return SBI_SUCCESS;
    },
    hartStop: (h) => { cpu(h).hsm = HSM_STOPPED; return SBI_SUCCESS; },
    hartStatus: (h) => cpu(h).hsm,
    hartSuspend: (h, type) => {
      // SBI 9.4: 0 is the default retentive suspend (the only one offered here); 0x1-0x0FFFFFFF
      // and 0x80000001-0x8FFFFFFF are reserved; the rest are valid but not supported.
      if ((type >= 0x1n && type <= 0x0fff_ffffn) || (type >= 0x8000_0001n && type <= 0x8fff_ffffn)) return SBI_ERR_INVALID_PARAM;
      if (type !== 0n) return SBI_ERR_NOT_SUPPORTED;
      cpu(h).irq.setCsr(L.HART_WFI, 1n);
      return SBI_SUCCESS;
    },
    systemReset: (type, reason) => {
      const status = type === SRST_SHUTDOWN ? reason : 3;
      const what = type === SRST_SHUTDOWN ? (reason === 0 ? "guest powered off" : "guest reported a system failure") : "guest requested a reboot";
      vm.powerOff(status, what);
    },
    consoleWrite: (b) => vm.consoleOut(b),
    consoleRead: () => new Uint8Array(0),
    readGuest: (pa, len) => (contains(vm.ram, pa, len) ? vm.ram.read(pa, len) : undefined),
    writeGuest: (pa, bytes) => {
      if (!contains(vm.ram, pa, bytes.length)) return false;
      vm.ram.write(pa, bytes);
      return true;
    },
    counters: (h) => cpu(h).hart, // the real hart under the VMM: its counters are the guest's
    setTimersElsewhere: (h) => cpu(h).vcb.setTimers,
  };
  return new Sbi(platform);
}
