// How a VM's CPU is run. Native: the guest kernel runs in the hart's real S-mode, and the host
// is only its firmware. Trap-and-emulate: the guest kernel runs in the real hart's U-mode on
// shadow page tables, and the VMM (src/vmm/asm, in the same wasm module as the hart) emulates
// everything privileged on a virtual hart block. Both give the VM the same face: a register file,
// an interrupt block, run(), MMIO exits with guest-physical addresses.
import { Hart, type HartExports, type MmioAccess } from "../hart/hart.js";
import * as L from "../hart/layout.js";
import * as V from "./layout.js";
import type { FrameAccount } from "../machine/memory.js";
import type { P2m } from "./p2m.js";
import { VCB_KICK, type Vcb } from "./vcb.js";

export interface VmmExports extends HartExports {
  vmmRun(vcpu: number, budget: bigint): number;
  vmmSync(vcpu: number): void;
  vmmFlush(vcpu: number): void;
  vmmShrink(vcpu: number): void;
  vmmTrap(vcpu: number, cause: bigint, tval: bigint): number;
  vmmSfence(vcpu: number, va: bigint, allVa: number, asid: bigint, allAsid: number): void;
}

export interface ExecCore {
  // The guest's registers, pc, counters and clock (the real hart in both modes).
  readonly hart: Hart;
  // Where the guest's interrupt state lives: mip, mie, WFI (virtual S in trap-and-emulate).
  readonly irq: Hart;
  run(budget: number): number;
  // Enter the guest's supervisor at pc with a0, a1, paging off and interrupts disabled.
  enterSupervisor(pc: bigint, a0: bigint, a1: bigint): void;
  flushTlb(): void;
  // What sfence.vma would do for [start, start + size) (every address if size is undefined) in
  // address space asid (every one if undefined): a remote fence from another vCPU.
  fence(start?: bigint, size?: bigint, asid?: bigint): void;
  // The MMIO access that the last EXIT_MMIO describes, at its guest-physical address.
  mmio(): MmioAccess;
  mmioDone(value?: bigint): void;
  trap(cause: bigint, tval: bigint): number;
}

// The SBI boot and HSM hart_start state (SBI 9.1): supervisor mode at pc with a0 and a1, paging
// off, sstatus.SIE clear, not waiting. The privileged state lives in core.irq (the hart itself
// natively, the virtual block under the VMM), the registers in core.hart.
//
// scounteren = CY | TM | IR, as OpenSBI leaves it for every hart it starts (sbi_hart.c,
// mstatus_init): a kernel that does not program scounteren itself (one without the SBI PMU
// driver, or before it probes) still lets user code read time, and Linux's vDSO clock_gettime
// reads the time CSR from U-mode. Under the VMM this is the guest's virtual scounteren; the real
// hart follows it in virtual U (src/vmm/asm/vcpu.ts sync).
const SCOUNTEREN_AT_START = 7n;

function enterSupervisor(core: ExecCore, pc: bigint, a0: bigint, a1: bigint): void {
  const v = core.irq;
  v.priv = L.PRIV_S;
  v.setCsr(L.HART_SCOUNTEREN, SCOUNTEREN_AT_START);
  v.setCsr(L.HART_SATP, 0n);
  v.setCsr(L.HART_MSTATUS, v.csr(L.HART_MSTATUS) & ~0x2n);
  v.setCsr(L.HART_WFI, 0n);
  core.hart.pc = pc;
  core.hart.setX(10, a0);
  core.hart.setX(11, a1);
}

export class NativeCore implements ExecCore {
  readonly irq: Hart;
  constructor(readonly hart: Hart) { this.irq = hart; }
  run(budget: number): number { return this.hart.run(budget); }
  enterSupervisor(pc: bigint, a0: bigint, a1: bigint): void {
    enterSupervisor(this, pc, a0, a1);
    this.flushTlb();
  }
  flushTlb(): void { this.hart.wasm.flushTlb(this.hart.base); }
  fence(): void { this.flushTlb(); } // the hart's TLB is small: dropping all of it is cheap
  mmio(): MmioAccess { return this.hart.mmio(); }
  mmioDone(value = 0n): void { this.hart.mmioDone(value); }
  trap(cause: bigint, tval: bigint): number { return this.hart.trap(cause, tval); }
}

// Every exception the virtual supervisor can be given (all but ecall from S and M, which never
// reach it: a guest kernel's ecall is a hypercall).
const VIRT_MEDELEG = 0xb1ffn;
const VIRT_MIDELEG = 0x222n;
export const DEFAULT_POOL_FRAMES = 8192; // at most 32 MiB of shadow page tables per vCPU
export const POOL_START_FRAMES = 64; // what a vCPU's pool starts with (and keeps when idle)
const POOL_HEADROOM = 32;
export const POOL_GROW_FRAMES = 256; // 1 MiB at a time

export class TrapEmulateCore implements ExecCore {
  readonly hart: Hart;
  readonly irq: Hart;
  readonly block: number;
  private readonly view: BigInt64Array;

  private poolFrames: number[] = []; // the pool's frames, as byte offsets, in pool-map order
  private readonly poolMap: Uint32Array;

  // `poolCap`: the most frames of shadow page tables this vCPU may hold; it starts with a few and
  // grows on demand (EXIT_POOL), and an idle vCPU's pool is emptied and shrunk (shrinkPool).
  // `reserve` (a dedicated partition): the whole pool is taken now and kept until dispose.
  // `bt` (--virt bt): translated guest code hands sensitive instructions to the VMM by a call
  // instead of trapping (src/vmm/asm/vcpu.ts btSys); everything else is the same.
  constructor(private readonly account: FrameAccount, private readonly wasm: VmmExports, id: number, p2m: P2m, poolCap = DEFAULT_POOL_FRAMES, private readonly reserve = false, bt = false) {
    if (poolCap < 8) throw new Error(`a shadow pool of ${poolCap} frames cannot hold one translation path`);
    const mem = account.mem;
    const blockBytes = V.VC_BLOCK_BYTES + 8 * poolCap;
    this.block = account.contiguous("vmm", Math.ceil(blockBytes / 4096));
    mem.bytesAt(this.block, blockBytes).fill(0);
    const mapAt = this.block + V.VC_FREE + 4 * poolCap;
    this.poolMap = new Uint32Array(mem.buffer, mapAt, poolCap);
    this.hart = new Hart(mem, wasm, account.contiguous("hart", L.HART_STATE_BYTES / 4096), id);
    this.irq = new Hart(mem, wasm, account.contiguous("hart", L.HART_STATE_BYTES / 4096), id);

    // The virtual hart: the guest's S/U state, its RAM window read through the p2m.
    const v = this.irq;
    v.setFlags(L.FLAG_EXIT_ON_MTRAP);
    v.setCsr(L.HART_MEDELEG, VIRT_MEDELEG);
    v.setCsr(L.HART_MIDELEG, VIRT_MIDELEG);
    v.setCsr(L.HART_MCOUNTEREN, 7n);
    v.setCsr(L.HART_RAM_P2M, BigInt(p2m.tableOffset));
    v.setRam(p2m.base, p2m.bytes, 0);
    v.priv = L.PRIV_S;

    // The real hart: always U-mode; every trap leaves run(); physical addresses are machine
    // addresses, but it only ever reaches them through the shadow tables.
    const r = this.hart;
    r.setFlags(L.FLAG_EXIT_ON_MTRAP);
    r.setCsr(L.HART_MCOUNTEREN, 7n);
    // Its window is the whole machine as it may grow, so frames added later are reachable.
    r.setRam(0n, mem.capacityBytes, 0);
    r.priv = L.PRIV_U;

    this.view = new BigInt64Array(mem.buffer, this.block, V.VC_BLOCK_BYTES / 8);
    this.set(V.VC_REAL, r.base);
    this.set(V.VC_VIRT, v.base);
    this.set(V.VC_P2M, p2m.tableOffset);
    this.set(V.VC_P2M_FRAMES, p2m.frames);
    this.set(V.VC_RAM_BASE, p2m.base);
    this.set(V.VC_POOL, mapAt);
    this.set(V.VC_POOL_FRAMES, 0);
    this.set(V.VC_POOL_CAP, poolCap);
    this.set(V.VC_BT, bt ? 1 : 0);
    if (reserve) {
      const got = account.frames("shadow", poolCap); // throws OutOfMachineMemory: nothing half-made is kept by the caller
      for (const off of got) {
        this.poolMap[this.poolFrames.length] = off / 4096;
        this.poolFrames.push(off);
      }
      this.set(V.VC_POOL_FRAMES, this.poolFrames.length);
    } else {
      this.growPool(Math.min(poolCap, POOL_START_FRAMES));
    }
    this.set(V.VC_CUR_AS, -1);
    wasm.vmmSync(this.block);
  }

  private set(off: number, v: number | bigint): void { this.view[off / 8] = BigInt(v); }

  // Frames in the pool that no shadow table uses yet.
  get poolSpare(): number {
    return this.counter(V.VC_POOL_FRAMES) - this.counter(V.VC_POOL_NEXT) + this.counter(V.VC_POOL_FREE);
  }

  get poolSize(): number {
    return this.poolFrames.length;
  }

  // Adds up to n frames (within the cap). When the machine has none left, the pool stops growing
  // and does what a full pool does: drops every shadow and starts again.
  growPool(n: number): void {
    const cap = this.counter(V.VC_POOL_CAP);
    const k = Math.min(n, cap - this.poolFrames.length);
    let got: number[] = [];
    if (k > 0) {
      try {
        got = this.account.frames("shadow", k);
      } catch {
        this.set(V.VC_POOL_CAP, this.poolFrames.length);
      }
    }
    for (const off of got) {
      this.poolMap[this.poolFrames.length] = off / 4096;
      this.poolFrames.push(off);
    }
    this.set(V.VC_POOL_FRAMES, this.poolFrames.length);
    this.set(V.VC_POOL_WANT, 0);
  }

  // Before a run: keep some spare frames, so a run seldom stops to ask for more.
  ensurePoolHeadroom(): void {
    if (this.poolSpare < POOL_HEADROOM && this.poolFrames.length < this.counter(V.VC_POOL_CAP)) this.growPool(POOL_GROW_FRAMES);
  }

  // An idle vCPU: drop every shadow (they are rebuilt on demand) and give back all but `keep`
  // frames of the pool. The host holds the vCPU.
  shrinkPool(keep = POOL_START_FRAMES): number {
    if (this.reserve || this.poolFrames.length <= keep) return 0;
    this.wasm.vmmShrink(this.block);
    const drop = this.poolFrames.splice(keep);
    for (const off of drop) this.account.freeFrame("shadow", off);
    this.set(V.VC_POOL_FRAMES, this.poolFrames.length);
    return drop.length;
  }
  counter(off: number): number { return Number(this.view[off / 8]!); }

  run(budget: number): number { return this.wasm.vmmRun(this.block, BigInt(budget)); }

  enterSupervisor(pc: bigint, a0: bigint, a1: bigint): void {
    enterSupervisor(this, pc, a0, a1);
    this.flushTlb(); // also makes the real hart follow the new virtual state
  }

  flushTlb(): void { this.wasm.vmmFlush(this.block); }

  // Shadows are costly to rebuild, so a remote fence of a few pages drops just those pages.
  fence(start?: bigint, size?: bigint, asid?: bigint): void {
    const allAsid = asid === undefined ? 1 : 0;
    const a = BigInt.asIntN(64, asid ?? 0n) & 0xffffn;
    if (size === undefined || size > 64n * 4096n) {
      this.wasm.vmmSfence(this.block, 0n, 1, a, allAsid);
      return;
    }
    const first = start! & ~0xfffn;
    for (let va = first; va < start! + size; va += 4096n) this.wasm.vmmSfence(this.block, BigInt.asIntN(64, va), 0, a, allAsid);
  }

  mmio(): MmioAccess {
    const a = this.hart.mmio();
    const alias = BigInt(V.MMIO_ALIAS);
    // Below the alias is machine memory, which no shadow maps as MMIO: decode it as nothing.
    return { ...a, addr: a.addr >= alias ? a.addr - alias : 0xffff_ffff_ffff_ffffn };
  }

  mmioDone(value = 0n): void { this.hart.mmioDone(value); }

  trap(cause: bigint, tval: bigint): number { return this.wasm.vmmTrap(this.block, cause, BigInt.asIntN(64, tval)); }
}

export const NO_TIMER = 0xffff_ffff_ffff_ffffn;

// One virtual CPU of a VM: its execution core, its SBI HSM state (SBI 9), and its control block
// (vcb.ts: interrupt lines raised from outside, kicks, fence requests, the timer compare value
// that SBI TIME sets). `held` is true while a physical CPU (a worker) runs it; then only the
// control block may be touched from elsewhere.
export class VCpu {
  hsm: number;
  held = false;
  // Remote fences this vCPU asked of vCPUs that were running elsewhere: it does not run again
  // until they are done (SBI RFENCE returns only once the remote harts have fenced).
  fenceWait: Promise<void> | undefined;

  // `timeFloor`: the byte offset of the VM's shared time floor (one per VM).
  constructor(readonly id: number, readonly core: ExecCore, stoppedState: number, readonly vcb: Vcb, timeFloor: number) {
    this.hsm = stoppedState;
    vcb.stimecmp = NO_TIMER;
    // The hart that executes checks the kick word at every slow path, and reads time against
    // the VM's floor, so time never goes back from one vCPU to another.
    core.hart.setCsr(L.HART_KICK_ADDR, BigInt(vcb.offset + VCB_KICK));
    core.hart.setCsr(L.HART_TIME_FLOOR_ADDR, BigInt(timeFloor));
  }

  get stimecmp(): bigint {
    return this.vcb.stimecmp;
  }

  set stimecmp(v: bigint) {
    this.vcb.stimecmp = v;
  }

  get hart(): Hart {
    return this.core.hart;
  }

  get irq(): Hart {
    return this.core.irq;
  }
}
