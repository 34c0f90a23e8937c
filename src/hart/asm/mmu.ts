// Address translation: Sv39/Sv48 page walks (privileged spec 10.3-10.6), a two-level TLB and the
// slow paths of loads, stores and fetches.
//
// L1: per translation context (physical, S, S with sstatus.SUM = 1, U) and access kind (read, write, fetch), 256
// direct-mapped entries of {virtual page tag, host addend}. A hit is one compare and one add, done
// inline by the run loop. L1 holds only the current address space: it is flushed on satp writes.
// L2: 1024 entries tagged by ASID (and the G bit), holding leaf PTEs; it survives satp switches, so
// a context switch refills L1 from L2 instead of walking page tables. sfence.vma invalidates it
// selectively by address and ASID as the spec describes.
import {
  HART_L1TLB, L1_CTX_BYTES, L1_KIND_BYTES, L1_ENTRIES, HART_L2TLB, L2_ENTRIES, L2_ENTRY_BYTES,
  HART_SATP, HART_RAM_BASE, HART_RAM_SIZE, HART_RAM_HOST, HART_WATCH, HART_MSTATUS, HART_PRIV,
  HART_STAT_TLB_MISS, HART_STAT_WALK, HART_STAT_L2_HIT, HART_STAT_FLUSH, HART_STAT_MMIO, HART_STAT_SFENCE,
  HART_EXIT_ADDR, HART_RES_ADDR, HART_SUPER, SUPER_ENTRIES, HART_SUPER_ANY, HART_L1_GEN, HART_RAM_P2M,
} from "../layout";
import {
  S, raise, excCause, markCtx, EXC_MMIO, EXC_WATCH, MS_MPRV, MS_MPP_SHIFT, MS_SUM, MS_MXR,
  CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_FETCH_ACCESS, CAUSE_LOAD_PAGE, CAUSE_STORE_PAGE,
  CAUSE_FETCH_PAGE, CAUSE_LOAD_MISALIGNED, CAUSE_STORE_MISALIGNED,
} from "./state";
import { markDirty } from "./jit";

export const KIND_R: i32 = 0;
export const KIND_W: i32 = 1;
export const KIND_X: i32 = 2;

export const CTX_PHYS: i32 = 0;
export const CTX_S: i32 = 1;
export const CTX_S_SUM: i32 = 2; // S-mode data accesses while SUM = 1: may hold U pages
export const CTX_U: i32 = 3;

export const PTE_V: i64 = 1;
export const PTE_R: i64 = 2;
export const PTE_W: i64 = 4;
export const PTE_X: i64 = 8;
export const PTE_U: i64 = 16;
export const PTE_G: i64 = 32;
export const PTE_A: i64 = 64;
export const PTE_D: i64 = 128;
export const PPN_MASK: i64 = 0xFFF_FFFF_FFFF; // 44 bits
export const PTE_RESERVED: i64 = <i64>0xFFC0_0000_0000_0000; // N, PBMT and reserved bits: no Svnapot/Svpbmt

@inline export function l1Table(ctx: i32, kind: i32): usize {
  return S + HART_L1TLB + <usize>ctx * L1_CTX_BYTES + <usize>kind * L1_KIND_BYTES;
}

// Translation context for an access of `kind` at effective privilege p. Linux flips SUM around
// every user copy, so SUM selects a table instead of flushing one.
export function ctxOf(p: i32, kind: i32): i32 {
  if (p == 3) return CTX_PHYS;
  if ((load<i64>(S + HART_SATP) >>> 60) == 0) return CTX_PHYS;
  if (p == 0) return CTX_U;
  return kind != KIND_X && (load<i64>(S + HART_MSTATUS) & MS_SUM) != 0 ? CTX_S_SUM : CTX_S;
}

export function dataPriv(): i32 {
  const p = <i32>load<i64>(S + HART_PRIV);
  const ms = load<i64>(S + HART_MSTATUS);
  if (p == 3 && (ms & MS_MPRV) != 0) return <i32>((ms >>> MS_MPP_SHIFT) & 3);
  return p;
}

// The tag bits of the current L1 generation (see HART_L1_GEN); ORed into every tag compare.
@inline export function l1Gen(): i64 { return load<i64>(S + HART_L1_GEN); }

const GEN_STEP: i64 = 8;
const GEN_LAST: i64 = 0xFF8;

function invalidateL1All(): void {
  markCtx();
  memory.fill(l1Table(CTX_PHYS, 0), 0xFF, L1_CTX_BYTES * 4);
  store<i64>(S + HART_L1_GEN, 0);
}

// Forget every cached virtual translation of the current address space (L1 only): start a new
// generation, so old tags stop matching; wipe the tables only when the generations run out.
// Physical-context entries go stale too, which costs a refill and nothing else.
// A new generation: run() must reload the generation and its tables (markCtx), whoever flushed
// (the hart's own sfence.vma, or the VMM's emulation called from translated code under bt).
export function flushL1Virtual(): void {
  markCtx();
  const g = l1Gen();
  if (g >= GEN_LAST) invalidateL1All();
  else store<i64>(S + HART_L1_GEN, g + GEN_STEP);
  memory.fill(S + HART_SUPER, 0, SUPER_ENTRIES * 8);
  store<i64>(S + HART_SUPER_ANY, 0);
  store<i64>(S + HART_STAT_FLUSH, load<i64>(S + HART_STAT_FLUSH) + 1);
}

export function flushAll(): void {
  invalidateL1All();
  memory.fill(S + HART_SUPER, 0, SUPER_ENTRIES * 8);
  store<i64>(S + HART_SUPER_ANY, 0);
  memory.fill(S + HART_L2TLB, 0, L2_ENTRIES * L2_ENTRY_BYTES);
}

// sfence.vma (privileged spec 10.2.1): rs1 = x0 means all addresses, rs2 = x0 means all ASIDs;
// with a specific ASID, global mappings are kept. A fence of one address that L1 can only hold as
// a 4 KiB translation invalidates just that page's slots; Linux issues many of these.
export function sfence(va: i64, allVa: bool, asid: i64, allAsid: bool): void {
  // run() looks at its TLB tables and fetch page again, whoever fenced (the hart's own
  // sfence.vma, or the VMM's emulation called from translated code under bt): even a one-page
  // fence, which starts no new generation, may take execute permission from the running page.
  markCtx();
  store<i64>(S + HART_STAT_SFENCE, load<i64>(S + HART_STAT_SFENCE) + 1);
  const vpage = va & ~0xFFF;
  if (!allVa && !superCached(va)) {
    const e = l2Entry(vpage);
    if (load<i64>(e) == vpage && l2Matches(load<i64>(e, 8), asid, allAsid)) store<i64>(e, 0, 8);
    const slot = (<usize>(vpage >>> 12) & (L1_ENTRIES - 1)) << 4;
    for (let ctx = CTX_S; ctx <= CTX_U; ctx++) {
      for (let kind = KIND_R; kind <= KIND_X; kind++) {
        const t = l1Table(ctx, kind) + slot;
        if (load<i64>(t) == (vpage | l1Gen())) store<i64>(t, -1);
      }
    }
    return;
  }
  for (let i: usize = 0; i < <usize>L2_ENTRIES; i++) {
    const e = S + HART_L2TLB + (i << 5);
    if (!allVa && (load<i64>(e) & ~0x1FFFFF) != (vpage & ~0x1FFFFF)) continue;
    if (l2Matches(load<i64>(e, 8), asid, allAsid)) store<i64>(e, 0, 8);
  }
  flushL1Virtual();
}

@inline function l2Matches(meta: i64, asid: i64, allAsid: bool): bool {
  if ((meta & 1) == 0) return false;
  return allAsid || ((meta & 2) == 0 && ((meta >>> 2) & 0xFFFF) == asid);
}

@inline function superSlot(va: i64): usize {
  return S + HART_SUPER + ((<usize>(va >>> 21) & (SUPER_ENTRIES - 1)) << 3);
}

// Could L1 hold a superpage granule covering va?
function superCached(va: i64): bool {
  if (load<i64>(S + HART_SUPER_ANY) != 0) return true;
  return load<i64>(superSlot(va)) == ((va & ~0x1FFFFF) | 1);
}

// Remember that L1 now holds a granule of a superpage at `level` (1: 2 MiB, 2+: larger).
function noteSuper(va: i64, level: i32): void {
  const slot = superSlot(va);
  const tag = (va & ~0x1FFFFF) | 1;
  const old = load<i64>(slot);
  if (level > 1 || (old != 0 && old != tag)) store<i64>(S + HART_SUPER_ANY, 1);
  else store<i64>(slot, tag);
}

// The host offset of physical address pa if it is RAM, else -1.
@inline export function ramHost(pa: i64): i64 {
  const off = pa - load<i64>(S + HART_RAM_BASE);
  if (<u64>off >= <u64>load<i64>(S + HART_RAM_SIZE)) return -1;
  const p2m = <usize>load<i64>(S + HART_RAM_P2M);
  if (p2m == 0) return off + load<i64>(S + HART_RAM_HOST);
  return (<i64>load<u32>(p2m + (<usize>(off >>> 12) << 2)) << 12) | (off & 0xFFF);
}

function pageFault(kind: i32, va: i64): void {
  raise(kind == KIND_R ? CAUSE_LOAD_PAGE : kind == KIND_W ? CAUSE_STORE_PAGE : CAUSE_FETCH_PAGE, va);
}

// The access-fault cause of an access of `kind`.
export function accessCause(kind: i32): i64 {
  return kind == KIND_R ? CAUSE_LOAD_ACCESS : kind == KIND_W ? CAUSE_STORE_ACCESS : CAUSE_FETCH_ACCESS;
}

function accessFault(kind: i32, va: i64): void {
  raise(accessCause(kind), va);
}

// Does a leaf PTE permit this access at privilege p (0 U, 1 S)? (privileged spec 10.3.2 step 5)
export function permits(pte: i64, kind: i32, p: i32): bool {
  const ms = load<i64>(S + HART_MSTATUS);
  if (p == 0) {
    if ((pte & PTE_U) == 0) return false;
  } else if ((pte & PTE_U) != 0) {
    if (kind == KIND_X || (ms & MS_SUM) == 0) return false;
  }
  if (kind == KIND_R) return (pte & PTE_R) != 0 || ((ms & MS_MXR) != 0 && (pte & PTE_X) != 0);
  if (kind == KIND_W) return (pte & PTE_W) != 0;
  return (pte & PTE_X) != 0;
}

@inline function l2Entry(vpage: i64): usize {
  const vpn = vpage >>> 12;
  return S + HART_L2TLB + (<usize>((vpn ^ (vpn >>> 12)) & (L2_ENTRIES - 1)) << 5);
}

// What the last successful walk() used: the leaf PTE's level (0: a 4 KiB page), the PTE as it is
// now (A/D included), and its host address (-1 when the L2 TLB answered without a walk).
export let leafLevel: i32 = 0;
export let leafPte: i64 = 0;
export let leafHost: i64 = -1;

// Translate va for an access of `kind` at effective privilege p (paging on). Returns the physical
// address, or -1 with the exception raised.
export function walk(va: i64, kind: i32, p: i32): i64 {
  const satp = load<i64>(S + HART_SATP);
  const asid = (satp >>> 44) & 0xFFFF;
  const vpage = va & ~0xFFF;

  const e = l2Entry(vpage);
  const meta = load<i64>(e, 8);
  if ((meta & 1) != 0 && load<i64>(e) == vpage && ((meta & 2) != 0 || ((meta >>> 2) & 0xFFFF) == asid)) {
    const pte = load<i64>(e, 16);
    if ((pte & PTE_A) != 0 && (kind != KIND_W || (pte & PTE_D) != 0) && permits(pte, kind, p)) {
      store<i64>(S + HART_STAT_L2_HIT, load<i64>(S + HART_STAT_L2_HIT) + 1);
      leafLevel = <i32>((meta >>> 20) & 3);
      leafPte = pte;
      leafHost = -1;
      return load<i64>(e, 24) | (va & 0xFFF);
    }
  }
  store<i64>(S + HART_STAT_WALK, load<i64>(S + HART_STAT_WALK) + 1);

  const levels: i32 = (satp >>> 60) == 8 ? 3 : 4;
  const vaBits: i32 = 12 + 9 * levels;
  // Bits above the VA width must equal the top VA bit (10.3.1, 10.4).
  if (((va << (64 - vaBits)) >> (64 - vaBits)) != va) { pageFault(kind, va); return -1; }

  let a: i64 = (satp & PPN_MASK) << 12;
  for (let i: i32 = levels - 1; i >= 0; i--) {
    const pteAddr = a + (((va >>> (12 + 9 * i)) & 511) << 3);
    const h = ramHost(pteAddr);
    if (h < 0) { accessFault(kind, va); return -1; }
    let pte = atomic.load<i64>(<usize>h);
    if ((pte & PTE_V) == 0 || ((pte & PTE_R) == 0 && (pte & PTE_W) != 0) || (pte & PTE_RESERVED) != 0) {
      pageFault(kind, va); return -1;
    }
    if ((pte & (PTE_R | PTE_X)) == 0) {
      if (i == 0 || (pte & (PTE_A | PTE_D | PTE_U)) != 0) { pageFault(kind, va); return -1; }
      a = ((pte >>> 10) & PPN_MASK) << 12;
      continue;
    }
    if (!permits(pte, kind, p)) { pageFault(kind, va); return -1; }
    const ppn = (pte >>> 10) & PPN_MASK;
    const lowMask: i64 = (<i64>1 << (9 * i)) - 1;
    if ((ppn & lowMask) != 0) { pageFault(kind, va); return -1; } // misaligned superpage
    // Hardware A/D update (10.3.2 step 7), atomically against other harts' walks.
    const want = pte | PTE_A | (kind == KIND_W ? PTE_D : 0);
    if (want != pte) {
      const seen = atomic.cmpxchg<i64>(<usize>h, pte, want);
      if (seen != pte) return walk(va, kind, p);
      markDirty(h);
      pte = want;
    }
    const pa = ((ppn & ~lowMask) << 12) | (va & ((lowMask << 12) | 0xFFF));
    store<i64>(e, vpage);
    store<i64>(e, 1 | ((pte & PTE_G) != 0 ? 2 : 0) | (asid << 2) | (<i64>i << 20), 8);
    leafLevel = i;
    leafPte = pte;
    leafHost = h;
    store<i64>(e, pte, 16);
    store<i64>(e, pa & ~0xFFF, 24);
    return pa;
  }
  pageFault(kind, va);
  return -1;
}

// Host offset of va for one access of `kind` that does not cross a page, filling L1 on success.
// On failure returns -1 with excCause set (an architectural fault, or EXC_MMIO with the physical
// address in HART_EXIT_ADDR).
export function accessHost(va: i64, kind: i32, p: i32, fill: bool): i64 {
  store<i64>(S + HART_STAT_TLB_MISS, load<i64>(S + HART_STAT_TLB_MISS) + 1);
  const ctx = ctxOf(p, kind);
  let pa: i64 = va;
  if (ctx != CTX_PHYS) {
    pa = walk(va, kind, p);
    if (pa < 0) return -1;
  }
  const h = ramHost(pa);
  if (h < 0) {
    if (kind == KIND_X) { accessFault(kind, va); return -1; }
    store<i64>(S + HART_EXIT_ADDR, pa);
    store<i64>(S + HART_STAT_MMIO, load<i64>(S + HART_STAT_MMIO) + 1);
    raise(EXC_MMIO, va);
    return -1;
  }
  const watch = load<i64>(S + HART_WATCH);
  if (fill && !(kind == KIND_W && watch >= 0 && (watch & ~0xFFF) == (pa & ~0xFFF))) {
    const vpage = va & ~0xFFF;
    if (ctx != CTX_PHYS && leafLevel > 0) noteSuper(va, leafLevel);
    const t = l1Table(ctx, kind) + ((<usize>(vpage >>> 12) & (L1_ENTRIES - 1)) << 4);
    store<i64>(t, vpage | l1Gen());
    store<i64>(t, (h & ~0xFFF) - vpage, 8);
  }
  return h;
}

// Host offset of the instruction parcel at va, for the current privilege.
export function fetchHost(va: i64): i64 {
  const p = <i32>load<i64>(S + HART_PRIV);
  const t = l1Table(ctxOf(p, KIND_X), KIND_X) + ((<usize>(va >>> 12) & (L1_ENTRIES - 1)) << 4);
  if (load<i64>(t) == ((va & ~0xFFF) | l1Gen())) return va + load<i64>(t, 8);
  return accessHost(va, KIND_X, p, true);
}

function readHost(h: i64, size: i32): i64 {
  if (size == 8) return load<i64>(<usize>h);
  if (size == 4) return <i64>load<u32>(<usize>h);
  if (size == 2) return <i64>load<u16>(<usize>h);
  return <i64>load<u8>(<usize>h);
}

function writeHost(h: i64, v: i64, size: i32): void {
  if (size == 8) store<i64>(<usize>h, v);
  else if (size == 4) store<u32>(<usize>h, <u32>v);
  else if (size == 2) store<u16>(<usize>h, <u16>v);
  else store<u8>(<usize>h, <u8>v);
  markDirty(h);
}

// A store ends a reservation held on the same address (by this or a hart that shares the line).
@inline function noteStore(h: i64): void {
  if ((load<i64>(S + HART_RES_ADDR) & ~7) == (h & ~7)) store<i64>(S + HART_RES_ADDR, -1);
}

// The slow path of a load: TLB miss, misaligned, or MMIO. Returns the zero-extended value.
export function loadSlow(va: i64, size: i32): i64 {
  const p = dataPriv();
  const off = <i32>(va & 0xFFF);
  if (off + size <= 4096) {
    const h = accessHost(va, KIND_R, p, (va & (size - 1)) == 0);
    if (h < 0) return 0;
    return readHost(h, size);
  }
  // Misaligned across a page boundary: translate both pages before reading either.
  const first = 4096 - off;
  const h1 = accessHost(va, KIND_R, p, false);
  if (h1 < 0) return 0;
  const h2 = accessHost(va + first, KIND_R, p, false);
  if (h2 < 0) return 0;
  let v: i64 = 0;
  for (let i: i32 = size - 1; i >= 0; i--) {
    const b = i < first ? load<u8>(<usize>(h1 + i)) : load<u8>(<usize>(h2 + i - first));
    v = (v << 8) | <i64>b;
  }
  return v;
}

export function storeSlow(va: i64, v: i64, size: i32): void {
  const p = dataPriv();
  const off = <i32>(va & 0xFFF);
  if (off + size <= 4096) {
    const h = accessHost(va, KIND_W, p, (va & (size - 1)) == 0);
    if (h < 0) return;
    writeHost(h, v, size);
    noteStore(h);
    checkWatch(h, size);
    return;
  }
  const first = 4096 - off;
  const h1 = accessHost(va, KIND_W, p, false);
  if (h1 < 0) return;
  const h2 = accessHost(va + first, KIND_W, p, false);
  if (h2 < 0) return;
  for (let i: i32 = 0; i < size; i++) {
    const b = <u8>(v >>> (8 * i));
    if (i < first) store<u8>(<usize>(h1 + i), b); else store<u8>(<usize>(h2 + i - first), b);
  }
  noteStore(h1);
  noteStore(h2);
  markDirty(h1);
  markDirty(h2);
}

function checkWatch(h: i64, size: i32): void {
  const watch = load<i64>(S + HART_WATCH);
  if (watch < 0) return;
  const wh = ramHost(watch);
  if (wh >= 0 && h < wh + 8 && wh < h + size) raise(EXC_WATCH, 0);
}

// Host offset for an atomic access (AMO, LR, SC): must be aligned and in RAM. kind is KIND_W for
// AMO/SC (faults are store/AMO faults), KIND_R for LR.
export function atomicHost(va: i64, size: i32, kind: i32): i64 {
  if ((va & (size - 1)) != 0) {
    raise(kind == KIND_R ? CAUSE_LOAD_MISALIGNED : CAUSE_STORE_MISALIGNED, va);
    return -1;
  }
  const p = dataPriv();
  const t = l1Table(ctxOf(p, kind), kind) + ((<usize>(va >>> 12) & (L1_ENTRIES - 1)) << 4);
  if (load<i64>(t) == ((va & ~0xFFF) | l1Gen())) return va + load<i64>(t, 8);
  const h = accessHost(va, kind, p, true);
  if (h < 0) {
    if (excCause == EXC_MMIO) raise(kind == KIND_R ? CAUSE_LOAD_ACCESS : CAUSE_STORE_ACCESS, va);
    return -1;
  }
  return h;
}
