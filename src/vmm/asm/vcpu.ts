// Trap-and-emulate: the guest kernel runs in the real hart's U-mode on shadow page tables; every
// privileged thing it does traps out of run() and is emulated here on the virtual hart block,
// with the hart's own CSR, trap and sret code, so the guest sees what its hardware would do.
// vmmRun loops on run() without returning to JavaScript; only hypercalls (SBI), MMIO, WFI with
// nothing pending, markers and the budget go back to the host.
import {
  HART_X, HART_PC, HART_PRIV, HART_MSTATUS, HART_MIP, HART_MIE, HART_WFI, HART_SCOUNTEREN, HART_INSTRET,
  HART_EXIT_CAUSE, HART_EXIT_TVAL, HART_RES_ADDR, HART_SATP, HART_L1_GEN, BT_NEXT, BT_INTERP, BT_JUMP, BT_TRAPPED, EXIT_TRAP, EXIT_WFI, EXIT_BUDGET, EXIT_MMIO,
} from "../../hart/layout";
import {
  VC_ST_SRET, VC_ST_SFENCE, VC_ST_WFI, VC_ST_HYPERCALL, VC_ST_SHADOW_FAULT, VC_ST_CAUSE, VC_ST_CSR,
  VC_ST_EXITS, VC_ST_AS_SWITCH, VC_ST_MMIO, EXIT_POOL, VC_BT, VC_ST_BT_CSR, VC_ST_BT_SRET, VC_ST_BT_SFENCE,
  VC_ST_BT_SYSCALL, VC_ST_BT_IRQ, VC_ST_BT_LEAVE, VC_ST_BT_DECLINED,
} from "../layout";
import {
  setS, gPC, setPC, setExit, excCause, excTval, clearExc, setCount, setBase, gCount, gBase, INTERRUPT, MS_FS, MS_SD,
  CAUSE_ILLEGAL, CAUSE_ECALL_U, CAUSE_ECALL_S, CAUSE_FETCH_PAGE, CAUSE_LOAD_PAGE, CAUSE_STORE_PAGE,
} from "../../hart/asm/state";
import { KIND_R, KIND_W, KIND_X, flushAll } from "../../hart/asm/mmu";
import { takeTrap, pendingInterrupt, sret } from "../../hart/asm/trap";
import { csrInsn } from "../../hart/asm/csr";
import { run } from "../../hart/asm/cpu";
import { setV, realBlock, virtBlock, bump, selectRoot, shadowFault, guestSfence, dropAll, rebuild, POOL_FULL } from "./shadow";

@inline function reg(b: usize, r: u32): i64 { return load<i64>(b + HART_X + (<usize>r << 3)); }
@inline function setReg(b: usize, r: u32, v: i64): void { if (r != 0) store<i64>(b + HART_X + (<usize>r << 3), v); }

// The guest's FP state is live in the real hart: its FS (set Dirty by FP instructions) is the
// truth while the guest runs, copied into the virtual sstatus before anything reads it.
function pullFS(real: usize, virt: usize): void {
  const f = load<i64>(real + HART_MSTATUS) & (MS_FS | MS_SD);
  store<i64>(virt + HART_MSTATUS, (load<i64>(virt + HART_MSTATUS) & ~(MS_FS | MS_SD)) | f);
}

// After the virtual state changed: make the real hart run it (FS, counter access, shadow root).
function sync(real: usize, virt: usize): void {
  const f = load<i64>(virt + HART_MSTATUS) & (MS_FS | MS_SD);
  store<i64>(real + HART_MSTATUS, (load<i64>(real + HART_MSTATUS) & ~(MS_FS | MS_SD)) | f);
  // In virtual S the kernel may read every counter the firmware allows (cycle, time, instret);
  // in virtual U the guest kernel's scounteren decides, as it would on hardware.
  store<i64>(real + HART_SCOUNTEREN, load<i64>(virt + HART_PRIV) != 0 ? 7 : load<i64>(virt + HART_SCOUNTEREN));
  selectRoot();
}

// Deliver a trap (exception or interrupt) to the guest's virtual S-mode at the real pc.
function reflect(real: usize, virt: usize, cause: i64, tval: i64): void {
  const idx = cause < 0 ? 32 + (cause & 31) : cause & 31;
  bump(<usize>VC_ST_CAUSE + (<usize>idx << 3));
  setS(virt);
  setPC(load<i64>(real + HART_PC));
  takeTrap(cause, tval);
  store<i64>(real + HART_PC, gPC);
  store<i64>(real + HART_RES_ADDR, -1);
  sync(real, virt);
}

// An emulated instruction retires: step past it and count it.
@inline function retire(real: usize, len: i64): void {
  store<i64>(real + HART_PC, load<i64>(real + HART_PC) + len);
  store<i64>(real + HART_INSTRET, load<i64>(real + HART_INSTRET) + 1);
}

const EMULATED: i32 = -1; // handled, keep running

// A privileged instruction the guest kernel executed in virtual S-mode. Returns EMULATED or an
// exit code for the host.
function emulate(real: usize, virt: usize, insn: u32): i32 {
  if ((insn & 0x7F) != 0x73) { reflect(real, virt, CAUSE_ILLEGAL, <i64>insn); return EMULATED; }
  const f3 = (insn >>> 12) & 7;
  if (f3 != 0 && f3 != 4) {
    const csr = <usize>(insn >>> 20);
    const rd = (insn >>> 7) & 31;
    const rs1 = (insn >>> 15) & 31;
    const writes = (f3 & 3) == 1 || rs1 != 0;
    bump(<usize>VC_ST_CSR + ((csr << 1 | (writes ? 1 : 0)) << 3));
    const oldSatp = load<i64>(virt + HART_SATP);
    setReg(virt, rs1, reg(real, rs1));
    setS(virt);
    clearExc();
    setBase(load<i64>(real + HART_INSTRET));
    setCount(1);
    csrInsn(insn);
    if (excCause >= 0) {
      const c = excCause;
      clearExc();
      reflect(real, virt, c, excTval);
      return EMULATED;
    }
    setReg(real, rd, reg(virt, rd));
    retire(real, 4);
    if (load<i64>(virt + HART_SATP) != oldSatp) bump(VC_ST_AS_SWITCH);
    sync(real, virt);
    return EMULATED;
  }
  if (insn == 0x10200073) { // sret
    bump(VC_ST_SRET);
    setS(virt);
    sret();
    store<i64>(real + HART_PC, gPC);
    store<i64>(real + HART_RES_ADDR, -1);
    store<i64>(real + HART_INSTRET, load<i64>(real + HART_INSTRET) + 1);
    sync(real, virt);
    return EMULATED;
  }
  if (insn == 0x10500073) { // wfi
    bump(VC_ST_WFI);
    retire(real, 4);
    if ((load<i64>(virt + HART_MIP) & load<i64>(virt + HART_MIE)) != 0) return EMULATED;
    store<i64>(virt + HART_WFI, 1);
    return EXIT_WFI;
  }
  if ((insn >>> 25) == 0x09 && ((insn >>> 7) & 31) == 0) { // sfence.vma
    bump(VC_ST_SFENCE);
    const rs1 = (insn >>> 15) & 31, rs2 = (insn >>> 20) & 31;
    guestSfence(reg(real, rs1), rs1 == 0, reg(real, rs2) & 0xFFFF, rs2 == 0);
    retire(real, 4);
    return EMULATED;
  }
  reflect(real, virt, CAUSE_ILLEGAL, <i64>insn); // mret, ecall forms with bad fields, ...
  return EMULATED;
}

// ---- --virt bt: sensitive instructions as calls from translated code ----
//
// Under bt the translator (src/hart/jit) turns the guest's S-level CSR instructions, sret,
// sfence.vma and ecall into calls of btSys, made from inside run() on the real hart, instead of
// letting them trap out of it: the same emulation as above, without leaving run(), without the
// trap, and without the interpreter. btSys answers how the translated code goes on (BT_* in
// src/hart/layout.ts). Translated code leaves after a call that changed what it holds in
// locals: the real satp (a new shadow root) or the real L1 TLB generation, or the pc.

// Set by vmmRun for the length of a run of a vCPU under bt; false whenever run() is called for
// anything else (native VMs, plain trap-and-emulate), where btSys declines everything.
let btOn: bool = false;

export function btSys(insn: u32, pc: i64): i32 {
  if (!btOn) return BT_INTERP;
  const real = realBlock();
  const virt = virtBlock();
  const vp = load<i64>(virt + HART_PRIV);
  if (insn == 0x73) { // ecall
    // From virtual S it is a hypercall, the host's; from virtual U a system call, which the
    // guest kernel takes as a trap: reflect it here.
    if (vp != 0) { bump(VC_ST_BT_DECLINED); return BT_INTERP; }
    store<i64>(real + HART_PC, pc);
    pullFS(real, virt);
    reflect(real, virt, CAUSE_ECALL_U, 0);
    setS(real);
    bump(VC_ST_BT_SYSCALL);
    bump(VC_ST_BT_LEAVE);
    return BT_TRAPPED;
  }
  if (vp != 1) { bump(VC_ST_BT_DECLINED); return BT_INTERP; } // in virtual U the guest's own illegal instruction
  const satp = load<i64>(real + HART_SATP);
  const gen = load<i64>(real + HART_L1_GEN);
  // emulate() keeps the counts as if it ran between two runs; inside run() they belong to run().
  const instret = load<i64>(real + HART_INSTRET);
  const base = gBase, cnt = gCount;
  store<i64>(real + HART_PC, pc);
  pullFS(real, virt);
  emulate(real, virt, insn); // for these instructions always EMULATED
  const retired = load<i64>(real + HART_INSTRET) != instret;
  store<i64>(real + HART_INSTRET, instret);
  setBase(base);
  setCount(cnt);
  // After sfence.vma translated code leaves (mmu.ts sfence has run() reload its tables and fetch
  // page, which translated code holding them in locals would run past).
  const fence = (insn >>> 25) == 0x09;
  if (insn == 0x10200073) bump(VC_ST_BT_SRET);
  else if (fence) bump(VC_ST_BT_SFENCE);
  else bump(VC_ST_BT_CSR);
  let code = BT_TRAPPED;
  if (retired) {
    code = BT_NEXT;
    // What vmmRun does before every run: an interrupt this instruction made deliverable
    // (csrs sstatus SIE, sret to SPIE, a write of sie) is taken now, at the next instruction.
    setS(virt);
    const irq = pendingInterrupt();
    if (irq >= 0) {
      reflect(real, virt, INTERRUPT | irq, 0);
      bump(VC_ST_BT_IRQ);
      code = BT_JUMP;
    } else if (fence || load<i64>(real + HART_PC) != pc + 4 || load<i64>(real + HART_SATP) != satp || load<i64>(real + HART_L1_GEN) != gen) {
      code = BT_JUMP;
    }
  }
  setS(real);
  if (code != BT_NEXT) bump(VC_ST_BT_LEAVE);
  return code;
}

// A trap out of the real hart. Returns EMULATED or an exit code for the host.
function handle(real: usize, virt: usize): i32 {
  bump(VC_ST_EXITS);
  const cause = load<i64>(real + HART_EXIT_CAUSE);
  const tval = load<i64>(real + HART_EXIT_TVAL);
  const vp = load<i64>(virt + HART_PRIV);
  pullFS(real, virt);
  if (cause == CAUSE_ILLEGAL && vp == 1) return emulate(real, virt, <u32>tval);
  if (cause == CAUSE_ECALL_U && vp == 1) {
    bump(VC_ST_HYPERCALL);
    store<i64>(real + HART_EXIT_CAUSE, CAUSE_ECALL_S); // as native mode reports it to the firmware
    return EXIT_TRAP;
  }
  if (cause == CAUSE_FETCH_PAGE || cause == CAUSE_LOAD_PAGE || cause == CAUSE_STORE_PAGE) {
    bump(VC_ST_SHADOW_FAULT);
    const kind = cause == CAUSE_FETCH_PAGE ? KIND_X : cause == CAUSE_LOAD_PAGE ? KIND_R : KIND_W;
    const g = shadowFault(tval, kind);
    if (g == POOL_FULL) return EXIT_POOL;
    if (g >= 0) reflect(real, virt, g, tval);
    return EMULATED;
  }
  reflect(real, virt, cause, tval);
  return EMULATED;
}

// Run the vCPU at `vcpu` for about `budget` guest instructions.
export function vmmRun(vcpu: usize, budget: i64): i32 {
  setV(vcpu);
  btOn = load<i64>(vcpu + VC_BT) != 0;
  const r = vmmLoop(vcpu, budget);
  btOn = false;
  return r;
}

function vmmLoop(vcpu: usize, budget: i64): i32 {
  const real = realBlock();
  const virt = virtBlock();
  if (load<i64>(virt + HART_WFI) != 0) {
    if ((load<i64>(virt + HART_MIP) & load<i64>(virt + HART_MIE)) == 0) return EXIT_WFI;
    store<i64>(virt + HART_WFI, 0);
  }
  let left = budget;
  while (true) {
    setS(virt);
    const irq = pendingInterrupt();
    if (irq >= 0) {
      pullFS(real, virt);
      reflect(real, virt, INTERRUPT | irq, 0);
    }
    const before = load<i64>(real + HART_INSTRET);
    const r = run(real, left);
    setV(vcpu); // run() does not touch V, but keep the invariant obvious
    left -= load<i64>(real + HART_INSTRET) - before + 1;
    if (r != EXIT_TRAP) {
      if (r == EXIT_MMIO) bump(VC_ST_MMIO);
      return r;
    }
    const e = handle(real, virt);
    if (e != EMULATED) return e;
    if (left <= 0) return EXIT_BUDGET;
  }
}

// Make the real hart run the virtual state the host just set (a hart start, a reset).
export function vmmSync(vcpu: usize): void {
  setV(vcpu);
  sync(realBlock(), virtBlock());
}

// Drop every shadow and cached translation (remote fences from other vCPUs, p2m changes).
export function vmmFlush(vcpu: usize): void {
  setV(vcpu);
  dropAll(true);
  setS(realBlock());
  flushAll();
  setS(virtBlock());
  flushAll();
  sync(realBlock(), virtBlock());
}

// Drops every shadow and empties the pool, so the host can take frames back (an idle vCPU).
export function vmmShrink(vcpu: usize): void {
  setV(vcpu);
  rebuild();
  setS(virtBlock());
  flushAll();
  sync(realBlock(), virtBlock());
}

// sfence.vma on this vCPU's behalf (an SBI remote fence from another vCPU).
export function vmmSfence(vcpu: usize, va: i64, allVa: bool, asid: i64, allAsid: bool): void {
  setV(vcpu);
  guestSfence(va, allVa, asid, allAsid);
}

// Raise an exception in the guest at its current pc on the host's behalf (an MMIO access that no
// device decodes). Returns -1 (a trap into the guest never needs the host).
export function vmmTrap(vcpu: usize, cause: i64, tval: i64): i32 {
  setV(vcpu);
  const real = realBlock();
  const virt = virtBlock();
  pullFS(real, virt);
  setExit(-1);
  reflect(real, virt, cause, tval);
  return -1;
}

