// The fixed layout of one hart's state in machine memory, shared by the AssemblyScript hart
// (src/hart/asm) and the TypeScript host. Plain untyped constants so that both compilers accept
// this file. Every field is 8 bytes unless noted; a snapshot of a hart is a copy of these bytes.

export const HART_X = 0; // x0..x31
export const HART_F = 256; // f0..f31, raw bits (binary32 values NaN-boxed)
export const HART_PC = 512;
export const HART_PRIV = 520; // 0 U, 1 S, 3 M
export const HART_FCSR = 528; // frm << 5 | fflags
export const HART_MSTATUS = 536;
export const HART_MISA = 544;
export const HART_MEDELEG = 552;
export const HART_MIDELEG = 560;
export const HART_MIE = 568;
export const HART_MIP = 576;
export const HART_MTVEC = 584;
export const HART_MSCRATCH = 592;
export const HART_MEPC = 600;
export const HART_MCAUSE = 608;
export const HART_MTVAL = 616;
export const HART_MCOUNTEREN = 624;
export const HART_MENVCFG = 632;
export const HART_STVEC = 640;
export const HART_SSCRATCH = 648;
export const HART_SEPC = 656;
export const HART_SCAUSE = 664;
export const HART_STVAL = 672;
export const HART_SATP = 680;
export const HART_SCOUNTEREN = 688;
export const HART_SENVCFG = 696;
export const HART_MHARTID = 704;
// The hart's own count of retired instructions: it drives the time CSR between host updates, the
// run budget, markers and statistics, and nothing the guest does changes it.
export const HART_INSTRET = 712;
// mcycle and minstret as software sees them (one instruction per cycle): HART_INSTRET plus these
// offsets while the counter runs; while mcountinhibit.CY (IR) stops it, the frozen value itself.
export const HART_CYCLE_DELTA = 720;
export const HART_TIME = 728; // the time CSR at minstret = HART_TIME_INSTRET; written by the host
export const HART_WFI = 736; // nonzero while the hart waits for an interrupt
export const HART_RES_ADDR = 744; // LR reservation: physical host offset, -1 when none
export const HART_RES_VALUE = 752;
export const HART_MCOUNTINHIBIT = 760;

// Filled by run() when it returns an exit code that needs the host.
export const HART_EXIT_CAUSE = 768; // trap cause (interrupt bit 63) for EXIT_TRAP
export const HART_EXIT_TVAL = 776;
export const HART_EXIT_ADDR = 784; // physical address of an MMIO access
export const HART_EXIT_DATA = 792; // store value of an MMIO store
export const HART_EXIT_INFO = 800; // MMIO: size | isStore << 8 | rd << 16 | signed << 24 | fp << 25 | insnLen << 28

export const HART_FLAGS = 808; // FLAG_* below
export const HART_RAM_BASE = 816; // guest-physical base of the RAM window
export const HART_RAM_SIZE = 824;
export const HART_RAM_HOST = 832; // byte offset of that window in machine memory
export const HART_WATCH = 840; // physical address whose stores end run() with EXIT_WATCH; -1 none
// The time CSR advances with retired instructions between host updates:
// time = HART_TIME + (minstret - HART_TIME_INSTRET) * HART_TIME_NUM / HART_TIME_DEN.
export const HART_TIME_INSTRET = 848;
export const HART_TIME_NUM = 856;
export const HART_TIME_DEN = 864; // 0: time stands still
// Nonzero: RAM is backed frame by frame through this p2m table (u32 machine frame numbers, one per
// 4 KiB of the window) instead of one contiguous run at HART_RAM_HOST.
export const HART_RAM_P2M = 872;
export const HART_INSTRET_DELTA = 880; // see HART_CYCLE_DELTA
// Byte offset of an i32 kick word in machine memory (0: none). Another thread sets it to stop a
// running hart: run() returns EXIT_BUDGET at its next slow path (a TLB miss, a CSR, a trap...).
export const HART_KICK_ADDR = 888;

// Counters that explain behaviour (read by the host; never reset by the hart).
export const HART_STAT_TLB_MISS = 896;
export const HART_STAT_WALK = 904;
export const HART_STAT_L2_HIT = 912;
export const HART_STAT_TRAP = 920;
export const HART_STAT_IRQ = 928;
export const HART_STAT_MMIO = 936;
export const HART_STAT_FLUSH = 944; // L1 flushes of virtual translations
export const HART_STAT_SFENCE = 952; // sfence.vma executed
export const HART_STAT_SATP = 960; // satp writes
export const HART_SUPER_ANY = 968;
// L1 tags carry the generation they were filled in, in bits 3-11 (always zero in a page-aligned
// tag whose alignment check uses bits 0-2): a flush is a new generation, not a memset.
export const HART_L1_GEN = 976; // nonzero: a 1 GiB or larger page, or a region-set collision, is cached
// Byte offset of an i64 that the harts of one machine share (0: none): the highest time any of
// them has read. A time CSR read never returns less, so time read on one hart and then on
// another never goes back, as with one shared platform timer (each hart's own time runs on
// from the host's last update at its own speed between updates).
export const HART_TIME_FLOOR_ADDR = 984;

// Set by the hart's slow paths for translated code (jitLoad, jitStore): nonzero when the access
// did not complete (a fault, MMIO, a watched store), so the translated code must leave and let
// the interpreter execute that instruction.
export const HART_JIT_FAIL = 992;
export const HART_STAT_JIT_RUNS = 1000; // calls into translated code
export const HART_STAT_JIT_INSNS = 1008; // instructions retired in translated code
export const HART_STAT_JIT_CHAINS = 1016; // translated code that went straight on to other translated code
// Where translated code that chains leaves the map slot of the code to run next (u32; 0: none).
export const HART_JIT_NEXT = 1024;
// A word of the hart's own that a guest fence does an atomic read-modify-write on: a full barrier
// (binaryen cannot emit atomic.fence from AssemblyScript here; translated code uses atomic.fence).
export const HART_FENCE_WORD = 1032;

// Translation caches live in the same block (see src/hart/asm/mmu.ts).
export const HART_L1TLB = 4096;
// Reach matters more than the block's size: a guest walking 8 MiB of data (the compute
// benchmark's list) missed in a 1024-entry L1 and L2 on every other load and ran at half its speed.
export const L1_ENTRIES = 4096; // per context and access kind, direct mapped: 16 MiB of reach
export const L1_ENTRY_BYTES = 16; // tag, host addend
export const L1_KIND_BYTES = 65536; // L1_ENTRIES * L1_ENTRY_BYTES
export const L1_CTX_BYTES = 196608; // read, write, fetch tables
export const HART_L2TLB = 790528; // after 4 contexts: phys, S, S with SUM, U
export const L2_ENTRIES = 4096;
export const L2_ENTRY_BYTES = 32; // vpage tag, asid|valid|global, leaf pte, physical page
// 2 MiB regions that L1 holds superpage granules from (direct mapped, tag | 1), so that
// sfence.vma of one address knows whether a single-page invalidation is enough.
export const HART_SUPER = 921600; // after L2's 131072 bytes
export const SUPER_ENTRIES = 256;
export const HART_STATE_BYTES = 1048576;

export const FLAG_EXIT_ON_MTRAP = 1; // traps that would enter M-mode end run() (the host is M-mode)
export const FLAG_MARKERS = 2; // the marker instruction (slti x0, x0, 0x7a5) ends run() with EXIT_MARKER

// Exit codes of run().
export const EXIT_BUDGET = 0; // budget spent
export const EXIT_WFI = 1; // waiting for an interrupt; pc is past the wfi
export const EXIT_TRAP = 2; // a trap would enter M-mode; pc is the trapping instruction
export const EXIT_MMIO = 3; // load/store outside RAM; pc is the instruction; see HART_EXIT_*
export const EXIT_WATCH = 4; // a store hit HART_WATCH; pc is past the store
export const EXIT_MARKER = 5; // the marker instruction retired (when enabled); pc is past it

// The translator (src/hart/jit): per physical CPU (wasm instance), a direct-mapped map from the
// machine address of a translated block's first instruction to {function table index, block},
// and a direct-mapped table of hotness counters. Machine-wide, one byte per frame marks frames
// stored to since the translator last looked (set by every store), a u32 per frame counts how
// often a frame's contents were found changed, and one u32 counts fence.i executed anywhere.
export const JIT_MAP_ENTRIES = 262144; // 4 MiB: a booted Debian kernel has about 40k hot blocks
export const JIT_MAP_ENTRY_BYTES = 16; // u32 key (machine address), u32 table index, u32 block, u32 spare
export const JIT_HOT_ENTRIES = 16384;
export const JIT_HOT_ENTRY_BYTES = 8; // u32 key, i32 count
export const JIT_HOT_THRESHOLD = 1024; // samples (one per JIT_TICK taken branches) before a translation
export const JIT_TICK = 16; // taken branches between the interpreter's looks for translated code
// What translated code's call of a sensitive instruction (the `hart.sys` import: the VMM's btSys,
// src/vmm/asm/vcpu.ts, under --virt bt) answers, and so how the code goes on:
export const BT_NEXT = 0; // done: go on at the next instruction
export const BT_INTERP = 1; // nothing done: leave at this instruction for the interpreter
export const BT_JUMP = 2; // done (retired): leave, the next pc is in the state block
export const BT_TRAPPED = 3; // a trap was reflected into the guest (not retired): leave, pc in the block

export const PRIV_U = 0;
export const PRIV_S = 1;
export const PRIV_M = 3;

// The region at the bottom of machine memory that the wasm module itself uses (static data).
export const MODULE_RESERVED_BYTES = 65536;
