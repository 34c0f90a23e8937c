// Trap entry, interrupt selection and xRET (privileged spec 3.1.6.1, 3.1.9, 3.3.2, 12.1.1).
import {
  HART_PRIV, HART_MSTATUS, HART_MEDELEG, HART_MIDELEG, HART_MIE, HART_MIP, HART_MTVEC, HART_MEPC,
  HART_MCAUSE, HART_MTVAL, HART_STVEC, HART_SEPC, HART_SCAUSE, HART_STVAL, HART_FLAGS,
  HART_EXIT_CAUSE, HART_EXIT_TVAL, HART_RES_ADDR, HART_STAT_TRAP, HART_STAT_IRQ,
  FLAG_EXIT_ON_MTRAP, EXIT_TRAP,
} from "../layout";
import {
  S, gPC, setPC, setExit, markCtx, markIrq, INTERRUPT, MS_SIE, MS_MIE, MS_SPIE, MS_MPIE, MS_SPP,
  MS_MPP, MS_MPP_SHIFT, MS_MPRV,
} from "./state";

// Deliver a trap taken at pc gPC. Sets gPC to the handler, or requests EXIT_TRAP when the trap
// would enter M-mode and the host plays M-mode.
export function takeTrap(cause: i64, tval: i64): void {
  const p = <i32>load<i64>(S + HART_PRIV);
  const isIrq = cause < 0;
  const code = cause & 63;
  const deleg = load<i64>(S + (isIrq ? HART_MIDELEG : HART_MEDELEG));
  store<i64>(S + HART_RES_ADDR, -1);
  if (p <= 1 && ((deleg >>> code) & 1) != 0) {
    let ms = load<i64>(S + HART_MSTATUS);
    store<i64>(S + HART_SCAUSE, cause);
    store<i64>(S + HART_SEPC, gPC);
    store<i64>(S + HART_STVAL, tval);
    ms = (ms & ~(MS_SPIE | MS_SIE | MS_SPP)) | ((ms & MS_SIE) != 0 ? MS_SPIE : 0) | (p == 1 ? MS_SPP : 0);
    store<i64>(S + HART_MSTATUS, ms);
    store<i64>(S + HART_PRIV, 1);
    const tvec = load<i64>(S + HART_STVEC);
    setPC((tvec & ~3) + ((tvec & 1) != 0 && isIrq ? code << 2 : 0));
  } else {
    if ((load<i64>(S + HART_FLAGS) & FLAG_EXIT_ON_MTRAP) != 0) {
      store<i64>(S + HART_EXIT_CAUSE, cause);
      store<i64>(S + HART_EXIT_TVAL, tval);
      setExit(EXIT_TRAP);
      return;
    }
    let ms = load<i64>(S + HART_MSTATUS);
    store<i64>(S + HART_MCAUSE, cause);
    store<i64>(S + HART_MEPC, gPC);
    store<i64>(S + HART_MTVAL, tval);
    ms = (ms & ~(MS_MPIE | MS_MIE | MS_MPP)) | ((ms & MS_MIE) != 0 ? MS_MPIE : 0) | (<i64>p << MS_MPP_SHIFT);
    store<i64>(S + HART_MSTATUS, ms);
    store<i64>(S + HART_PRIV, 3);
    const tvec = load<i64>(S + HART_MTVEC);
    setPC((tvec & ~3) + ((tvec & 1) != 0 && isIrq ? code << 2 : 0));
  }
  store<i64>(S + HART_STAT_TRAP, load<i64>(S + HART_STAT_TRAP) + 1);
  markCtx();
  markIrq();
}

// Standard interrupt priority: MEI, MSI, MTI, SEI, SSI, STI (3.1.9).
function highest(bits: i64): i64 {
  if (bits & (1 << 11)) return 11;
  if (bits & (1 << 3)) return 3;
  if (bits & (1 << 7)) return 7;
  if (bits & (1 << 9)) return 9;
  if (bits & (1 << 1)) return 1;
  if (bits & (1 << 5)) return 5;
  return -1;
}

// The interrupt that should be taken now, or -1.
export function pendingInterrupt(): i64 {
  const pending = load<i64>(S + HART_MIP) & load<i64>(S + HART_MIE);
  if (pending == 0) return -1;
  const p = <i32>load<i64>(S + HART_PRIV);
  const ms = load<i64>(S + HART_MSTATUS);
  const mideleg = load<i64>(S + HART_MIDELEG);
  const mOn = p < 3 || (ms & MS_MIE) != 0;
  const sOn = p < 1 || (p == 1 && (ms & MS_SIE) != 0);
  const m = mOn ? pending & ~mideleg : 0;
  if (m != 0) return highest(m);
  const s = sOn ? pending & mideleg : 0;
  if (s != 0) return highest(s);
  return -1;
}

// Take an enabled pending interrupt, if any. Returns true if one was taken (or an exit requested).
export function checkInterrupts(): bool {
  const code = pendingInterrupt();
  if (code < 0) return false;
  store<i64>(S + HART_STAT_IRQ, load<i64>(S + HART_STAT_IRQ) + 1);
  takeTrap(INTERRUPT | code, 0);
  return true;
}

export function mret(): void {
  let ms = load<i64>(S + HART_MSTATUS);
  const mpp = (ms >>> MS_MPP_SHIFT) & 3;
  ms = (ms & ~(MS_MIE | MS_MPP)) | ((ms & MS_MPIE) != 0 ? MS_MIE : 0) | MS_MPIE;
  if (mpp != 3) ms &= ~MS_MPRV;
  store<i64>(S + HART_MSTATUS, ms);
  store<i64>(S + HART_PRIV, mpp);
  store<i64>(S + HART_RES_ADDR, -1);
  setPC(load<i64>(S + HART_MEPC));
  markCtx();
  markIrq();
}

export function sret(): void {
  let ms = load<i64>(S + HART_MSTATUS);
  const spp: i64 = (ms & MS_SPP) != 0 ? 1 : 0;
  ms = (ms & ~(MS_SIE | MS_SPP)) | ((ms & MS_SPIE) != 0 ? MS_SIE : 0) | MS_SPIE;
  ms &= ~MS_MPRV; // sret always returns below M (3.1.6.1)
  store<i64>(S + HART_MSTATUS, ms);
  store<i64>(S + HART_PRIV, spp);
  store<i64>(S + HART_RES_ADDR, -1);
  setPC(load<i64>(S + HART_SEPC));
  markCtx();
  markIrq();
}
