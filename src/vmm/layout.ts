// The fixed layout of one trap-and-emulate vCPU's VMM block in machine memory, shared by the
// AssemblyScript VMM (src/vmm/asm) and the TypeScript host. Plain untyped constants so that both
// compilers accept this file. Fields are 8 bytes.
//
// A vCPU is three blocks: the real hart block (what the silicon runs: always U-mode, satp on a
// shadow root), the virtual hart block (an ordinary hart block holding the guest's S/U state: the
// virtual CSR file, virtual priv, virtual mip/mie/WFI) and this block (shadow roots, pool, counters).

export const VC_REAL = 0; // address of the real hart block
export const VC_VIRT = 8; // address of the virtual hart block
export const VC_P2M = 16; // address of the p2m table (u32 machine frame numbers)
export const VC_P2M_FRAMES = 24;
export const VC_RAM_BASE = 32; // guest-physical base of RAM
export const VC_POOL = 40; // address of the pool map: u32 machine frame numbers of the pool's frames
export const VC_POOL_FRAMES = 48; // frames in the pool now (the host adds more as it grows)
export const VC_POOL_FREE = 56; // entries on the free stack
export const VC_POOL_NEXT = 64; // pool frames handed out at least once (bump index)
export const VC_CUR_AS = 72; // index of the current address-space entry
export const VC_CUR_MODE = 80; // MODE_* of the current root
export const VC_MXR = 88; // the guest's sstatus.MXR that the shadows were built under
export const VC_CLOCK = 96; // LRU clock for address-space entries
export const VC_POOL_CAP = 104; // the most frames the pool may grow to
export const VC_POOL_WANT = 112; // nonzero: a fill found the pool full below its cap (EXIT_POOL)
export const VC_BT = 120; // nonzero: --virt bt (translated guest code calls the VMM instead of trapping)

// Counters (never reset by the VMM).
export const VC_ST_SRET = 256;
export const VC_ST_SFENCE = 264;
export const VC_ST_WFI = 272;
export const VC_ST_HYPERCALL = 280;
export const VC_ST_SHADOW_FAULT = 288; // real page faults handled by the shadow pager
export const VC_ST_FILL = 296; // faults that installed a shadow leaf
export const VC_ST_PREFILL = 304; // leaves installed ahead of a fault from the same guest table
export const VC_ST_FLUSH = 312; // shadow invalidations (by address, by ASID, all)
export const VC_ST_REBUILD = 320; // pool exhausted: every shadow dropped
export const VC_ST_MMIO = 328;
export const VC_ST_PAGES = 336; // shadow page-table pages held now
export const VC_ST_AS_SWITCH = 344; // satp writes that changed the address space
export const VC_ST_AS_NEW = 352; // address spaces given a new shadow (the others were cached)
export const VC_ST_AS_EVICT = 360;
export const VC_ST_EXITS = 368; // traps out of the real hart handled by the VMM
export const VC_ST_PAGES_MAX = 376;
export const VC_ST_GUEST_WALK = 384;
export const VC_ST_ROOT_SWITCH = 392; // real satp changes (mode or address-space switches)
// --virt bt: sensitive instructions that translated code handed to the VMM by a call, each an
// exit that trap-and-emulate takes and bt avoided (counted in the totals above as well).
export const VC_ST_BT_CSR = 400;
export const VC_ST_BT_SRET = 408;
export const VC_ST_BT_SFENCE = 416;
export const VC_ST_BT_SYSCALL = 424; // ecall from virtual U, reflected to the guest kernel
export const VC_ST_BT_IRQ = 432; // virtual interrupts injected right after such a call (no exit either)
export const VC_ST_BT_LEAVE = 440; // calls after which translated code had to leave (new root, new pc)
export const VC_ST_BT_DECLINED = 448; // calls the VMM left to the interpreter (a hypercall, wfi, a guest-U CSR)

// Reflected guest traps by cause: 0-31 exceptions, 32-63 interrupts injected (32 + code).
export const VC_ST_CAUSE = 1024;
export const VC_ST_CAUSES = 64;
// CSR instructions emulated, by CSR number and access: (csr * 2 + isWrite) * 8.
export const VC_ST_CSR = 4096;
export const VC_ST_CSR_BYTES = 65536;

// Address spaces with cached shadows: key (the guest's satp), last use, and a root per mode.
export const VC_AS = 69632;
export const AS_ENTRIES = 32; // plus one more at index AS_ENTRIES for paging off
export const AS_ENTRY_BYTES = 48; // key, lastUse, root[MODE_U], root[MODE_S], root[MODE_S_SUM], unused
export const MODE_U = 0;
export const MODE_S = 1;
export const MODE_S_SUM = 2;
// The free stack of pool frames (u32 machine frame numbers) follows at VC_FREE, then the pool map.
export const VC_FREE = 73728;
export const VC_BLOCK_BYTES = 73728; // plus 8 bytes per frame of the pool's cap

// Shadow table entries for MMIO: guest-physical addresses outside RAM are mapped at this alias
// above any machine memory, so the hart's MMIO exit reports MMIO_ALIAS + gpa.
export const MMIO_ALIAS = 0x1_0000_0000;

// Exit codes of vmmRun beyond the hart's (src/hart/layout.ts EXIT_*). A hypercall is reported as
// EXIT_TRAP with HART_EXIT_CAUSE = 9 (ecall from S), as native mode reports it.
export const EXIT_POOL = 16; // the shadow pool is full below its cap: the host adds frames; the guest instruction is retried
