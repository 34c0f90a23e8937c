// Zicsr instructions and the CSR file (privileged spec chapter 2 for access rules, 3 and 4 for
// the M and S registers, unprivileged chapter "Zicntr" for counters).
import {
  HART_PRIV, HART_FCSR, HART_MSTATUS, HART_MISA, HART_MEDELEG, HART_MIDELEG, HART_MIE, HART_MIP,
  HART_MTVEC, HART_MSCRATCH, HART_MEPC, HART_MCAUSE, HART_MTVAL, HART_MCOUNTEREN, HART_STVEC,
  HART_SSCRATCH, HART_SEPC, HART_SCAUSE, HART_STVAL, HART_SATP, HART_SCOUNTEREN, HART_MHARTID,
  HART_CYCLE_DELTA, HART_INSTRET_DELTA, HART_TIME, HART_MCOUNTINHIBIT, HART_STAT_SATP, HART_TIME_INSTRET,
  HART_TIME_NUM, HART_TIME_DEN, HART_TIME_FLOOR_ADDR,
} from "../layout";
import {
  S, raise, markCtx, markIrq, getX, setX, dirtyFS, gCount, gBase, CAUSE_ILLEGAL, MS_SIE, MS_MIE,
  MS_SPIE, MS_MPIE, MS_SPP, MS_MPP, MS_FS, MS_MPRV, MS_SUM, MS_MXR, MS_TVM, MS_TW, MS_TSR,
  MS_UXL_SXL, MS_SD,
} from "./state";
import { flushL1Virtual } from "./mmu";

export const MISA_VALUE: i64 = <i64>0x8000_0000_0014_112D; // RV64 A C D F I M S U

const MSTATUS_WRITABLE: i64 = MS_SIE | MS_MIE | MS_SPIE | MS_MPIE | MS_SPP | MS_MPP | MS_FS | MS_MPRV |
  MS_SUM | MS_MXR | MS_TVM | MS_TW | MS_TSR;
const SSTATUS_READ: i64 = MS_SIE | MS_SPIE | MS_SPP | MS_FS | MS_SUM | MS_MXR | (<i64>3 << 32) | MS_SD;
const SSTATUS_WRITABLE: i64 = MS_SIE | MS_SPIE | MS_SPP | MS_FS | MS_SUM | MS_MXR;
const MEDELEG_WRITABLE: i64 = 0xB3FF; // ecall from M (11) and reserved causes are read-only 0
const S_INTERRUPTS: i64 = 0x222; // SSI, STI, SEI
const ALL_INTERRUPTS: i64 = 0xAAA;

// The hart's own count of retired instructions as this instruction sees it (it does not count
// itself). The time CSR runs on it; the guest's mcycle/minstret are offsets from it.
function retired(): i64 { return gBase + gCount - 1; }

// mcountinhibit (privileged spec 3.1.13): CY and IR stop mcycle and minstret; TM is read-only 0,
// and the hpm counters, read-only zero here, have nothing to stop.
const INHIBIT_CY: i64 = 1 << 0;
const INHIBIT_IR: i64 = 1 << 2;
const MCOUNTINHIBIT_WRITABLE: i64 = 0xFFFF_FFFD;

// mcycle/minstret: `slot` holds the offset from the hart's count while the counter runs and the
// frozen value while its mcountinhibit bit is set, so stopping or writing a counter never
// touches the count that drives time and budgets.
function readCounter(slot: usize, bit: i64): i64 {
  const v = load<i64>(S + slot);
  return (load<i64>(S + HART_MCOUNTINHIBIT) & bit) != 0 ? v : retired() + v;
}

// "Any CSR write takes effect after the writing instruction has otherwise completed" (privileged
// spec 3.1.11): the instruction after it reads the value written, so the write replaces the
// writer's own increment.
function writeCounter(slot: usize, bit: i64, v: i64): void {
  store<i64>(S + slot, (load<i64>(S + HART_MCOUNTINHIBIT) & bit) != 0 ? v : v - (gBase + gCount));
}

// Switching a counter between running and stopped converts its slot between the two forms, at
// the value the next instruction would read.
function writeMcountinhibit(v: i64): void {
  const old = load<i64>(S + HART_MCOUNTINHIBIT);
  const n = v & MCOUNTINHIBIT_WRITABLE;
  const next = gBase + gCount;
  if (((old ^ n) & INHIBIT_CY) != 0) {
    const d = load<i64>(S + HART_CYCLE_DELTA);
    store<i64>(S + HART_CYCLE_DELTA, (n & INHIBIT_CY) != 0 ? next + d : d - next);
  }
  if (((old ^ n) & INHIBIT_IR) != 0) {
    const d = load<i64>(S + HART_INSTRET_DELTA);
    store<i64>(S + HART_INSTRET_DELTA, (n & INHIBIT_IR) != 0 ? next + d : d - next);
  }
  store<i64>(S + HART_MCOUNTINHIBIT, n);
}

// The time CSR: the host's last setting, run on at num/den ticks per retired instruction, and
// never below what another hart sharing the floor has read (HART_TIME_FLOOR_ADDR).
function readTime(): i64 {
  const den = load<i64>(S + HART_TIME_DEN);
  let t = load<i64>(S + HART_TIME);
  if (den > 0) {
    const ticks = (retired() - load<i64>(S + HART_TIME_INSTRET)) * load<i64>(S + HART_TIME_NUM) / den;
    if (ticks > 0) t += ticks;
  }
  const floorAt = <usize>load<i64>(S + HART_TIME_FLOOR_ADDR);
  if (floorAt == 0) return t;
  let f = atomic.load<i64>(floorAt);
  while (t > f) {
    const seen = atomic.cmpxchg<i64>(floorAt, f, t);
    if (seen == f) return t;
    f = seen;
  }
  return f;
}

function writeMstatus(v: i64): void {
  const old = load<i64>(S + HART_MSTATUS);
  let n = (old & ~MSTATUS_WRITABLE) | (v & MSTATUS_WRITABLE);
  if (((n & MS_MPP) >>> 11) == 2) n &= ~MS_MPP; // MPP is WARL: the reserved value 2 reads as U
  n = (n & ~MS_SD) | MS_UXL_SXL | ((n & MS_FS) == MS_FS ? MS_SD : 0);
  store<i64>(S + HART_MSTATUS, n);
  if (((old ^ n) & MS_MXR) != 0) flushL1Virtual(); // SUM only selects a table (mmu.ts ctxOf)
  markCtx();
  markIrq();
}

function counterAllowed(csr: i32, p: i32): bool {
  const bit = csr & 31;
  if (p < 3 && ((load<i64>(S + HART_MCOUNTEREN) >>> bit) & 1) == 0) return false;
  if (p < 1 && ((load<i64>(S + HART_SCOUNTEREN) >>> bit) & 1) == 0) return false;
  return true;
}

// Read a CSR for an instruction at privilege p. Sets `ok` false if the access is illegal.
let ok: bool = true;

function read(csr: i32, p: i32): i64 {
  switch (csr) {
    case 0x001: return load<i64>(S + HART_FCSR) & 0x1F;
    case 0x002: return (load<i64>(S + HART_FCSR) >>> 5) & 7;
    case 0x003: return load<i64>(S + HART_FCSR) & 0xFF;
    case 0xC00: case 0xB00: return readCounter(HART_CYCLE_DELTA, INHIBIT_CY);
    case 0xC01: return readTime();
    case 0xC02: case 0xB02: return readCounter(HART_INSTRET_DELTA, INHIBIT_IR);
    case 0x100: return load<i64>(S + HART_MSTATUS) & SSTATUS_READ;
    case 0x104: return load<i64>(S + HART_MIE) & load<i64>(S + HART_MIDELEG);
    case 0x105: return load<i64>(S + HART_STVEC);
    case 0x106: return load<i64>(S + HART_SCOUNTEREN);
    case 0x10A: return 0; // senvcfg: no optional fields implemented
    case 0x140: return load<i64>(S + HART_SSCRATCH);
    case 0x141: return load<i64>(S + HART_SEPC);
    case 0x142: return load<i64>(S + HART_SCAUSE);
    case 0x143: return load<i64>(S + HART_STVAL);
    case 0x144: return load<i64>(S + HART_MIP) & load<i64>(S + HART_MIDELEG);
    case 0x180:
      if (p == 1 && (load<i64>(S + HART_MSTATUS) & MS_TVM) != 0) { ok = false; return 0; }
      return load<i64>(S + HART_SATP);
    case 0xF11: case 0xF12: case 0xF13: case 0xF15: return 0;
    case 0xF14: return load<i64>(S + HART_MHARTID);
    case 0x300: return load<i64>(S + HART_MSTATUS);
    case 0x301: return MISA_VALUE;
    case 0x302: return load<i64>(S + HART_MEDELEG);
    case 0x303: return load<i64>(S + HART_MIDELEG);
    case 0x304: return load<i64>(S + HART_MIE);
    case 0x305: return load<i64>(S + HART_MTVEC);
    case 0x306: return load<i64>(S + HART_MCOUNTEREN);
    case 0x30A: return 0; // menvcfg
    case 0x7A0: case 0x7A1: case 0x7A2: case 0x7A3: return 0; // Sdtrig, no triggers: tdata1.type 0 (writes ignored)
    case 0x320: return load<i64>(S + HART_MCOUNTINHIBIT);
    case 0x340: return load<i64>(S + HART_MSCRATCH);
    case 0x341: return load<i64>(S + HART_MEPC);
    case 0x342: return load<i64>(S + HART_MCAUSE);
    case 0x343: return load<i64>(S + HART_MTVAL);
    case 0x344: return load<i64>(S + HART_MIP);
  }
  // hpmcounters, their events and PMP are implemented as read-only zero (no PMP entries).
  if ((csr >= 0xC03 && csr <= 0xC1F) || (csr >= 0xB03 && csr <= 0xB1F) || (csr >= 0x323 && csr <= 0x33F) ||
      (csr >= 0x3A0 && csr <= 0x3EF)) return 0;
  ok = false;
  return 0;
}

function write(csr: i32, v: i64, p: i32): void {
  switch (csr) {
    case 0x001: store<i64>(S + HART_FCSR, (load<i64>(S + HART_FCSR) & ~0x1F) | (v & 0x1F)); dirtyFS(); return;
    case 0x002: store<i64>(S + HART_FCSR, (load<i64>(S + HART_FCSR) & 0x1F) | ((v & 7) << 5)); dirtyFS(); return;
    case 0x003: store<i64>(S + HART_FCSR, v & 0xFF); dirtyFS(); return;
    case 0xB00: writeCounter(HART_CYCLE_DELTA, INHIBIT_CY, v); return;
    case 0xB02: writeCounter(HART_INSTRET_DELTA, INHIBIT_IR, v); return;
    case 0x100: {
      const ms = load<i64>(S + HART_MSTATUS);
      writeMstatus((ms & ~SSTATUS_WRITABLE) | (v & SSTATUS_WRITABLE));
      return;
    }
    case 0x104: {
      const d = load<i64>(S + HART_MIDELEG);
      store<i64>(S + HART_MIE, (load<i64>(S + HART_MIE) & ~d) | (v & d));
      markIrq();
      return;
    }
    case 0x105: store<i64>(S + HART_STVEC, v & ~2); return;
    case 0x106: store<i64>(S + HART_SCOUNTEREN, v & 0xFFFF_FFFF); return;
    case 0x10A: return;
    case 0x140: store<i64>(S + HART_SSCRATCH, v); return;
    case 0x141: store<i64>(S + HART_SEPC, v & ~1); return;
    case 0x142: store<i64>(S + HART_SCAUSE, v); return;
    case 0x143: store<i64>(S + HART_STVAL, v); return;
    case 0x144: {
      const m = load<i64>(S + HART_MIDELEG) & 2; // only SSIP is writable through sip
      store<i64>(S + HART_MIP, (load<i64>(S + HART_MIP) & ~m) | (v & m));
      markIrq();
      return;
    }
    case 0x180: {
      if (p == 1 && (load<i64>(S + HART_MSTATUS) & MS_TVM) != 0) { ok = false; return; }
      const mode = v >>> 60;
      if (mode != 0 && mode != 8 && mode != 9) return; // unsupported mode: the write has no effect
      store<i64>(S + HART_SATP, v); // MODE, a 16-bit ASID and a 44-bit PPN: every bit is implemented
      store<i64>(S + HART_STAT_SATP, load<i64>(S + HART_STAT_SATP) + 1);
      flushL1Virtual();
      markCtx();
      return;
    }
    case 0x300: writeMstatus(v); return;
    case 0x301: return;
    case 0x302: store<i64>(S + HART_MEDELEG, v & MEDELEG_WRITABLE); return;
    case 0x303: store<i64>(S + HART_MIDELEG, v & S_INTERRUPTS); markIrq(); return;
    case 0x304: store<i64>(S + HART_MIE, v & ALL_INTERRUPTS); markIrq(); return;
    case 0x305: store<i64>(S + HART_MTVEC, v & ~2); return;
    case 0x306: store<i64>(S + HART_MCOUNTEREN, v & 0xFFFF_FFFF); return;
    case 0x30A: return;
    case 0x320: writeMcountinhibit(v); return;
    case 0x340: store<i64>(S + HART_MSCRATCH, v); return;
    case 0x341: store<i64>(S + HART_MEPC, v & ~1); return;
    case 0x342: store<i64>(S + HART_MCAUSE, v); return;
    case 0x343: store<i64>(S + HART_MTVAL, v); return;
    case 0x344:
      store<i64>(S + HART_MIP, (load<i64>(S + HART_MIP) & ~S_INTERRUPTS) | (v & S_INTERRUPTS));
      markIrq();
      return;
  }
  // Remaining implemented CSRs are read-only zero; writes to them are ignored.
}

// Execute a Zicsr instruction (funct3 1-3, 5-7). Raises illegal instruction on a bad access.
export function csrInsn(insn: u32): void {
  const csr = <i32>(insn >>> 20);
  const f3 = (insn >>> 12) & 7;
  const rd = (insn >>> 7) & 31;
  const rs1 = (insn >>> 15) & 31;
  const p = <i32>load<i64>(S + HART_PRIV);
  const src: i64 = f3 >= 5 ? <i64>rs1 : getX(rs1);
  const writes = (f3 & 3) == 1 || rs1 != 0;
  if (p < ((csr >>> 8) & 3) || (writes && (csr >>> 10) == 3)) { raise(CAUSE_ILLEGAL, insn); return; }
  if (csr <= 3 && (load<i64>(S + HART_MSTATUS) & MS_FS) == 0) { raise(CAUSE_ILLEGAL, insn); return; }
  if (csr >= 0xC00 && csr <= 0xC1F && !counterAllowed(csr, p)) { raise(CAUSE_ILLEGAL, insn); return; }
  ok = true;
  // Reads have no side effects here, so csrrw with rd = x0 may read too (it still checks access).
  const old = read(csr, p);
  if (!ok) { raise(CAUSE_ILLEGAL, insn); return; }
  if (writes) {
    const op = f3 & 3;
    const nv = op == 1 ? src : op == 2 ? old | src : old & ~src;
    write(csr, nv, p);
    if (!ok) { raise(CAUSE_ILLEGAL, insn); return; }
  }
  setX(rd, old);
}
