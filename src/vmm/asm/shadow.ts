// Shadow page tables: what the real hart walks while a trap-and-emulate guest runs. They map
// guest virtual addresses straight to machine addresses: a guest walk (the hart's own walker, run
// on the virtual hart block, whose RAM window reads guest tables through the p2m) composed with
// the p2m. They are built lazily, a fault at a time, and behave as a large TLB would: a guest
// translation that was valid may be used until the guest fences it (sfence.vma), which is exactly
// what the privileged spec lets hardware do, so guest page-table writes need no tracing.
//
// Shape: always Sv48 (a guest Sv39 address is canonical in Sv48 too; an address Sv39 forbids is
// never filled, so it faults and the guest walk refuses it). One root per guest address space
// (the guest's satp) and mode: guest U, guest S with SUM = 0, guest S with SUM = 1, plus one root
// for paging off. Each root has its own real ASID, so the real hart's L2 TLB survives switches.
// Leaves are 4 KiB; a guest superpage is shadowed by a subtree whose top entry carries RSW_SUPER,
// so a fence of any address inside it drops the whole subtree.
import {
  HART_SATP, HART_MSTATUS, HART_PRIV,
} from "../../hart/layout";
import {
  VC_REAL, VC_VIRT, VC_POOL, VC_POOL_FRAMES, VC_POOL_FREE, VC_POOL_NEXT, VC_POOL_CAP, VC_POOL_WANT, VC_CUR_AS, VC_CUR_MODE, VC_MXR,
  VC_CLOCK, VC_FREE, VC_AS, AS_ENTRIES, AS_ENTRY_BYTES, MODE_U, MODE_S, MODE_S_SUM, VC_ST_PAGES,
  VC_ST_PAGES_MAX, VC_ST_FILL, VC_ST_PREFILL, VC_ST_FLUSH, VC_ST_REBUILD, VC_ST_AS_NEW,
  VC_ST_AS_EVICT, VC_ST_GUEST_WALK, VC_ST_ROOT_SWITCH, MMIO_ALIAS,
} from "../layout";
import { setS, markCtx, excCause, clearExc, MS_SUM, MS_MXR } from "../../hart/asm/state";
import {
  walk, ramHost, leafLevel, leafPte, leafHost, flushL1Virtual, flushAll, sfence, accessCause, KIND_X,
  PTE_V, PTE_R, PTE_W, PTE_X, PTE_U, PTE_A, PTE_D, PPN_MASK, PTE_RESERVED,
} from "../../hart/asm/mmu";

// The vCPU block being run (set by vmmRun and every export).
export let V: usize = 0;
export function setV(v: usize): void { V = v; }
@inline export function realBlock(): usize { return <usize>load<i64>(V + VC_REAL); }
@inline export function virtBlock(): usize { return <usize>load<i64>(V + VC_VIRT); }
@inline export function bump(field: usize): void { store<i64>(V + field, load<i64>(V + field) + 1); }

const RSW_SUPER: i64 = 1 << 8; // in a shadow non-leaf entry: the subtree shadows one guest superpage
const SATP_SV48: i64 = <i64>9 << 60;
const PAGING_OFF: i32 = AS_ENTRIES; // the address-space entry for paging off
// shadowFault's answer when the host must add frames to the pool first.
export const POOL_FULL: i64 = -2;
// Guest-physical addresses from here up have no alias below the 56-bit physical limit.
const ALIAS_LIMIT: u64 = <u64>((<i64>1 << 56) - MMIO_ALIAS);

// ---- the pool of shadow table frames ----

// The pool's frames come from anywhere in machine memory (the pool map); the host adds frames as
// the shadows grow, up to the cap.
function allocTable(): usize {
  let frame: u32;
  const free = load<i64>(V + VC_POOL_FREE);
  if (free > 0) {
    frame = load<u32>(V + VC_FREE + (<usize>(free - 1) << 2));
    store<i64>(V + VC_POOL_FREE, free - 1);
  } else {
    const next = load<i64>(V + VC_POOL_NEXT);
    const frames = load<i64>(V + VC_POOL_FRAMES);
    if (next >= frames) {
      if (frames < load<i64>(V + VC_POOL_CAP)) store<i64>(V + VC_POOL_WANT, 1);
      return 0;
    }
    frame = load<u32>(<usize>load<i64>(V + VC_POOL) + (<usize>next << 2));
    store<i64>(V + VC_POOL_NEXT, next + 1);
  }
  const a = <usize>frame << 12;
  memory.fill(a, 0, 4096);
  const held = load<i64>(V + VC_ST_PAGES) + 1;
  store<i64>(V + VC_ST_PAGES, held);
  if (held > load<i64>(V + VC_ST_PAGES_MAX)) store<i64>(V + VC_ST_PAGES_MAX, held);
  return a;
}

function freeTable(a: usize): void {
  const free = load<i64>(V + VC_POOL_FREE);
  store<u32>(V + VC_FREE + (<usize>free << 2), <u32>(a >>> 12));
  store<i64>(V + VC_POOL_FREE, free + 1);
  store<i64>(V + VC_ST_PAGES, load<i64>(V + VC_ST_PAGES) - 1);
}

@inline function next(pte: i64): usize { return <usize>(((pte >>> 10) & PPN_MASK) << 12); }
@inline function slot(t: usize, va: i64, level: i32): usize { return t + (<usize>((va >>> (12 + 9 * level)) & 511) << 3); }

// Free a table at `level` (0: a leaf table) and every table below it.
function freeTree(t: usize, level: i32): void {
  if (level > 0) {
    for (let i: usize = 0; i < 512; i++) {
      const pte = load<i64>(t + (i << 3));
      if ((pte & PTE_V) != 0) freeTree(next(pte), level - 1);
    }
  }
  freeTable(t);
}

// ---- address spaces ----

@inline function asEntry(i: i32): usize { return V + VC_AS + <usize>i * AS_ENTRY_BYTES; }
@inline function asRoot(i: i32, mode: i32): usize { return asEntry(i) + 16 + (<usize>mode << 3); }
@inline function realAsid(i: i32, mode: i32): i64 { return <i64>(1 + i * 3 + mode); }

function dropRoots(i: i32): void {
  const real = realBlock();
  for (let m = MODE_U; m <= MODE_S_SUM; m++) {
    const r = <usize>load<i64>(asRoot(i, m));
    if (r == 0) continue;
    freeTree(r, 3);
    store<i64>(asRoot(i, m), 0);
    setS(real);
    sfence(0, true, realAsid(i, m), false);
  }
}

function dropAs(i: i32): void {
  dropRoots(i);
  store<i64>(asEntry(i), 0);
}

// Forget every shadow of a guest address space (the paging-off root depends on nothing the guest
// can change, and is kept unless `everything`).
export function dropAll(everything: bool): void {
  for (let i = 0; i < AS_ENTRIES; i++) if (load<i64>(asEntry(i)) != 0) dropAs(i);
  if (everything) dropRoots(PAGING_OFF);
  store<i64>(V + VC_CUR_AS, -1);
  bump(VC_ST_FLUSH);
}

// Pool exhausted: start again from an empty pool (also how the host empties an idle vCPU's pool
// before it takes frames back).
export function rebuild(): void {
  for (let i = 0; i <= AS_ENTRIES; i++) {
    for (let m = MODE_U; m <= MODE_S_SUM; m++) store<i64>(asRoot(i, m), 0);
    if (i < AS_ENTRIES) store<i64>(asEntry(i), 0);
  }
  store<i64>(V + VC_POOL_FREE, 0);
  store<i64>(V + VC_POOL_NEXT, 0);
  store<i64>(V + VC_ST_PAGES, 0);
  store<i64>(V + VC_CUR_AS, -1);
  setS(realBlock());
  flushAll();
  bump(VC_ST_REBUILD);
}

// The entry for the guest's satp `key`, found or made (evicting the least recently used).
function asFor(key: i64): i32 {
  let victim = 0;
  let oldest: i64 = I64.MAX_VALUE;
  for (let i = 0; i < AS_ENTRIES; i++) {
    const k = load<i64>(asEntry(i));
    if (k == key) return i;
    const use = k == 0 ? -1 : load<i64>(asEntry(i) + 8);
    if (use < oldest) { oldest = use; victim = i; }
  }
  if (load<i64>(asEntry(victim)) != 0) { dropAs(victim); bump(VC_ST_AS_EVICT); }
  store<i64>(asEntry(victim), key);
  bump(VC_ST_AS_NEW);
  return victim;
}

// Point the real hart at the shadow root for the guest's current satp, privilege and SUM.
export function selectRoot(): void {
  const virt = virtBlock();
  const vsatp = load<i64>(virt + HART_SATP);
  let as: i32, mode: i32;
  if ((vsatp >>> 60) == 0) {
    as = PAGING_OFF;
    mode = MODE_U;
  } else {
    const cur = <i32>load<i64>(V + VC_CUR_AS);
    as = cur >= 0 && cur < AS_ENTRIES && load<i64>(asEntry(cur)) == vsatp ? cur : asFor(vsatp);
    mode = load<i64>(virt + HART_PRIV) == 0 ? MODE_U : (load<i64>(virt + HART_MSTATUS) & MS_SUM) != 0 ? MODE_S_SUM : MODE_S;
  }
  const clock = load<i64>(V + VC_CLOCK) + 1;
  store<i64>(V + VC_CLOCK, clock);
  if (as < AS_ENTRIES) store<i64>(asEntry(as) + 8, clock);
  let root = <usize>load<i64>(asRoot(as, mode));
  if (root == 0) {
    root = allocTable();
    if (root == 0) {
      rebuild();
      if (as < AS_ENTRIES) { as = asFor(vsatp); store<i64>(asEntry(as) + 8, clock); }
      root = allocTable();
    }
    store<i64>(asRoot(as, mode), <i64>root);
  }
  const real = realBlock();
  const satp = SATP_SV48 | (realAsid(as, mode) << 44) | (<i64>root >>> 12);
  store<i64>(V + VC_CUR_AS, as);
  store<i64>(V + VC_CUR_MODE, mode);
  if (load<i64>(real + HART_SATP) != satp) {
    store<i64>(real + HART_SATP, satp);
    setS(real);
    flushL1Virtual();
    markCtx();
    bump(VC_ST_ROOT_SWITCH);
  }
}

// ---- filling ----

@inline function currentRoot(): usize {
  return <usize>load<i64>(asRoot(<i32>load<i64>(V + VC_CUR_AS), <i32>load<i64>(V + VC_CUR_MODE)));
}

// The shadow leaf for guest leaf PTE `gpte` at guest-physical page `gpage`, as root mode `mode`
// may use it; 0 if that mode may not use it at all, or the guest has not marked it accessed.
function shadowLeaf(gpte: i64, gpage: i64, mode: i32, mxr: bool): i64 {
  if ((gpte & PTE_A) == 0) return 0;
  const user = (gpte & PTE_U) != 0;
  if (mode == MODE_U ? !user : (user && mode == MODE_S)) return 0;
  let perm: i64 = 0;
  if ((gpte & PTE_R) != 0 || (mxr && (gpte & PTE_X) != 0)) perm |= PTE_R;
  if ((gpte & PTE_W) != 0 && (gpte & PTE_D) != 0) perm |= PTE_W;
  if ((gpte & PTE_X) != 0 && (mode == MODE_U || !user)) perm |= PTE_X;
  return machineLeaf(gpage, perm);
}

// A shadow leaf for guest-physical page `gpage` with permissions `perm`: RAM through the p2m,
// anything else at the MMIO alias (never executable).
function machineLeaf(gpage: i64, perm: i64): i64 {
  if (perm == 0) return 0;
  const h = ramHost(gpage); // S is the virtual block, whose RAM window is the guest's p2m
  let m: i64;
  if (h >= 0) m = h;
  else {
    if (<u64>gpage >= ALIAS_LIMIT) return 0;
    m = MMIO_ALIAS + gpage;
    perm &= ~PTE_X;
    if (perm == 0) return 0;
  }
  return ((m >>> 12) << 10) | perm | PTE_V | PTE_U | PTE_A | PTE_D;
}

// The leaf table of the current root for va, creating tables on the way; `superLevel` (1-3) is
// the level of the guest superpage being shadowed (its entry gets RSW_SUPER), or 0. Returns 0 if
// the pool ran out.
function leafTable(root: usize, va: i64, superLevel: i32): usize {
  let t = root;
  for (let level = 3; level >= 1; level--) {
    const e = slot(t, va, level);
    let pte = load<i64>(e);
    const mark: i64 = level == superLevel ? RSW_SUPER : 0;
    if ((pte & PTE_V) != 0 && (pte & RSW_SUPER) != mark) {
      // The guest's tree changed shape here (superpage <-> table) without a fence reaching us:
      // drop the old subtree and whatever the real TLB holds from it.
      freeTree(next(pte), level - 1);
      store<i64>(e, 0);
      pte = 0;
      const as = <i32>load<i64>(V + VC_CUR_AS);
      setS(realBlock());
      sfence(0, true, realAsid(as, <i32>load<i64>(V + VC_CUR_MODE)), false);
    }
    if ((pte & PTE_V) == 0) {
      const nt = allocTable();
      if (nt == 0) return 0;
      pte = ((<i64>nt >>> 12) << 10) | PTE_V | mark;
      store<i64>(e, pte);
    }
    t = next(pte);
  }
  return t;
}

// Handle a real page fault at va (kind) taken while the guest ran at virtual privilege vp. Either
// installs shadow leaves and returns -1 (retry the instruction), or returns the cause of the fault
// the guest itself must take (tval is va), as its own hardware would raise it.
export function shadowFault(va: i64, kind: i32): i64 {
  const virt = virtBlock();
  const mxr = (load<i64>(virt + HART_MSTATUS) & MS_MXR) != 0;
  if ((mxr ? 1 : 0) != load<i64>(V + VC_MXR)) {
    dropAll(true);
    store<i64>(V + VC_MXR, mxr ? 1 : 0);
  }
  selectRoot();
  const vp = <i32>load<i64>(virt + HART_PRIV);
  const paging = (load<i64>(virt + HART_SATP) >>> 60) != 0;
  let gpa: i64 = va;
  let level: i32 = 0;
  let gpte: i64 = PTE_R | PTE_W | PTE_X | PTE_A | PTE_D | PTE_U;
  let gtable: i64 = -1;
  setS(virt);
  if (paging) {
    bump(VC_ST_GUEST_WALK);
    clearExc();
    gpa = walk(va, kind, vp);
    if (gpa < 0) {
      const c = excCause;
      clearExc();
      return c;
    }
    level = leafLevel;
    gpte = leafPte;
    gtable = level == 0 && leafHost >= 0 ? leafHost & ~0xFFF : -1;
  } else if (<u64>va >= <u64>(<i64>1 << 47)) {
    // Paging off, beyond what the shadow can map: nothing decodes there.
    return accessCause(kind);
  }
  if (ramHost(gpa & ~0xFFF) < 0 && (kind == KIND_X || <u64>gpa >= ALIAS_LIMIT)) return accessCause(kind);
  const mode = <i32>load<i64>(V + VC_CUR_MODE);
  let lt = leafTable(currentRoot(), va, paging ? level : 1);
  if (lt == 0) {
    // Below its cap the pool grows: the host adds frames and the instruction is retried.
    if (load<i64>(V + VC_POOL_WANT) != 0) return POOL_FULL;
    rebuild();
    selectRoot();
    lt = leafTable(currentRoot(), va, paging ? level : 1);
    if (lt == 0) return -1; // a pool too small for one path: retry (the budget still ends the run)
  }
  setS(virt);
  const idx = <usize>((va >>> 12) & 511);
  if (level > 0 || !paging) {
    // A guest superpage (or paging off): shadow the whole 2 MiB around va from it.
    const gbase = gpa & ~0x1FFFFF;
    for (let j: usize = 0; j < 512; j++) {
      const leaf = shadowLeaf(gpte, gbase + (<i64>j << 12), mode, mxr);
      store<i64>(lt + (j << 3), leaf);
    }
    store<i64>(V + VC_ST_PREFILL, load<i64>(V + VC_ST_PREFILL) + 511);
  } else if (gtable >= 0) {
    // The guest's leaf table: every entry that is valid and already accessed can be shadowed now,
    // as a TLB may cache any such translation.
    let n: i64 = 0;
    for (let j: usize = 0; j < 512; j++) {
      const g = atomic.load<i64>(<usize>gtable + (j << 3));
      if ((g & PTE_V) == 0 || (g & (PTE_R | PTE_X)) == 0 || (g & (PTE_R | PTE_W)) == PTE_W || (g & PTE_RESERVED) != 0) {
        continue;
      }
      const leaf = shadowLeaf(g, ((g >>> 10) & PPN_MASK) << 12, mode, mxr);
      if (leaf != 0 && j != idx) { store<i64>(lt + (j << 3), leaf); n++; }
    }
    store<i64>(V + VC_ST_PREFILL, load<i64>(V + VC_ST_PREFILL) + n);
    store<i64>(lt + (idx << 3), shadowLeaf(gpte, gpa & ~0xFFF, mode, mxr));
  } else {
    store<i64>(lt + (idx << 3), shadowLeaf(gpte, gpa & ~0xFFF, mode, mxr));
  }
  bump(VC_ST_FILL);
  // The real TLB may hold the old (less permissive) leaf of this page.
  setS(realBlock());
  sfence(va, false, 0, true);
  return -1;
}

// ---- coherence ----

// Drop the shadow leaf for va from one root; true if that took a superpage's whole subtree.
function invalidateVa(root: usize, va: i64): bool {
  let t = root;
  for (let level = 3; level >= 1; level--) {
    const e = slot(t, va, level);
    const pte = load<i64>(e);
    if ((pte & PTE_V) == 0) return false;
    if ((pte & RSW_SUPER) != 0) {
      freeTree(next(pte), level - 1);
      store<i64>(e, 0);
      return true;
    }
    t = next(pte);
  }
  store<i64>(slot(t, va, 0), 0);
  return false;
}

// The guest executed sfence.vma: rs1 = x0 means every address, rs2 = x0 every ASID.
export function guestSfence(va: i64, allVa: bool, asid: i64, allAsid: bool): void {
  bump(VC_ST_FLUSH);
  // The virtual block's own L2 TLB caches guest translations for the guest walker.
  setS(virtBlock());
  sfence(va, allVa, asid, allAsid);
  if (allVa) {
    if (allAsid) dropAll(false);
    else {
      for (let i = 0; i < AS_ENTRIES; i++) {
        const k = load<i64>(asEntry(i));
        if (k != 0 && ((k >>> 44) & 0xFFFF) == asid) dropAs(i);
      }
    }
  } else {
    for (let i = 0; i < AS_ENTRIES; i++) {
      const k = load<i64>(asEntry(i));
      if (k == 0 || (!allAsid && ((k >>> 44) & 0xFFFF) != asid)) continue;
      for (let m = MODE_U; m <= MODE_S_SUM; m++) {
        const r = <usize>load<i64>(asRoot(i, m));
        if (r != 0 && invalidateVa(r, va)) {
          setS(realBlock());
          sfence(0, true, realAsid(i, m), false);
        }
      }
    }
    setS(realBlock());
    sfence(va, false, 0, true);
  }
  selectRoot();
}
