// Per-instance globals of the hart and accessors for its state block. One wasm instance runs one
// hart at a time; `S` points at that hart's block in (shared) machine memory.
import {
  HART_X, HART_MSTATUS,
} from "../layout";

export let S: usize = 0;
export function setS(s: usize): void { S = s; }

// The pc of the instruction being executed, handed between the run loop and slow paths.
export let gPC: i64 = 0;
export function setPC(v: i64): void { gPC = v; }

// An exit requested by a slow path (-1: none), returned by run().
export let gExit: i32 = -1;
export function setExit(code: i32): void { gExit = code; attn = true; }

// One flag the run loop tests per instruction: something below needs its attention.
export let attn: bool = true;
export function clearAttn(): void { attn = false; }


// A synchronous exception raised by a memory access or helper (-1: none). Values >= EXC_MMIO are
// not architectural: they ask the run loop to leave for the host.
export let excCause: i64 = -1;
export let excTval: i64 = 0;
export const EXC_MMIO: i64 = 1000;
export const EXC_WATCH: i64 = 1001;
export function raise(cause: i64, tval: i64): void { excCause = cause; excTval = tval; }
export function clearExc(): void { excCause = -1; }

// Set when translation-relevant state (priv, mstatus, satp) changed, so the run loop reloads
// its cached translation contexts and fetch page.
export let ctxDirty: bool = true;
export function markCtx(): void { ctxDirty = true; attn = true; }
export function clearCtx(): void { ctxDirty = false; }

// Set when an interrupt may have become deliverable.
export let irqCheck: bool = true;
export function markIrq(): void { irqCheck = true; attn = true; }
export function clearIrq(): void { irqCheck = false; }

// Instruction counting: run() counts in a local, copied to gCount (including the instruction being
// executed) before slow paths; minstret = gBase + count of retired instructions.
export let gCount: i64 = 0;
export let gBase: i64 = 0;
export function setCount(v: i64): void { gCount = v; }
export function setBase(v: i64): void { gBase = v; }

@inline export function getX(r: u32): i64 { return load<i64>(S + HART_X + (<usize>r << 3)); }
@inline export function setX(r: u32, v: i64): void { if (r != 0) store<i64>(S + HART_X + (<usize>r << 3), v); }

// mstatus fields (privileged spec 3.1.6)
export const MS_SIE: i64 = 1 << 1;
export const MS_MIE: i64 = 1 << 3;
export const MS_SPIE: i64 = 1 << 5;
export const MS_MPIE: i64 = 1 << 7;
export const MS_SPP: i64 = 1 << 8;
export const MS_MPP_SHIFT: i64 = 11;
export const MS_MPP: i64 = 3 << 11;
export const MS_FS_SHIFT: i64 = 13;
export const MS_FS: i64 = 3 << 13;
export const MS_MPRV: i64 = 1 << 17;
export const MS_SUM: i64 = 1 << 18;
export const MS_MXR: i64 = 1 << 19;
export const MS_TVM: i64 = 1 << 20;
export const MS_TW: i64 = 1 << 21;
export const MS_TSR: i64 = 1 << 22;
export const MS_UXL_SXL: i64 = 0xA << 32; // both 2 (64-bit), read-only
export const MS_SD: i64 = 1 << 63;

// Exception causes (privileged spec table 3.6)
export const CAUSE_FETCH_MISALIGNED: i64 = 0;
export const CAUSE_FETCH_ACCESS: i64 = 1;
export const CAUSE_ILLEGAL: i64 = 2;
export const CAUSE_BREAKPOINT: i64 = 3;
export const CAUSE_LOAD_MISALIGNED: i64 = 4;
export const CAUSE_LOAD_ACCESS: i64 = 5;
export const CAUSE_STORE_MISALIGNED: i64 = 6;
export const CAUSE_STORE_ACCESS: i64 = 7;
export const CAUSE_ECALL_U: i64 = 8;
export const CAUSE_ECALL_S: i64 = 9;
export const CAUSE_ECALL_M: i64 = 11;
export const CAUSE_FETCH_PAGE: i64 = 12;
export const CAUSE_LOAD_PAGE: i64 = 13;
export const CAUSE_STORE_PAGE: i64 = 15;
export const INTERRUPT: i64 = 1 << 63;

// Binary32 values live NaN-boxed in the 64-bit f registers (unprivileged spec 13.2).
export const NAN_BOX: i64 = <i64>0xFFFFFFFF_00000000;
export const SIGN64: u64 = 0x8000_0000_0000_0000;

// Any write to FP state makes mstatus.FS Dirty (and SD set).
@inline export function dirtyFS(): void {
  store<i64>(S + HART_MSTATUS, load<i64>(S + HART_MSTATUS) | MS_FS | MS_SD);
}
