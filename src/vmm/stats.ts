// The trap-and-emulate VMM's counters (src/vmm/layout.ts), named: what `ringvisor run --stats`
// prints and what the API and metering will read as JSON.
import * as V from "./layout.js";

const CSR_NAMES: Record<number, string> = {
  0x001: "fflags", 0x002: "frm", 0x003: "fcsr", 0x100: "sstatus", 0x104: "sie", 0x105: "stvec",
  0x106: "scounteren", 0x10a: "senvcfg", 0x140: "sscratch", 0x141: "sepc", 0x142: "scause",
  0x143: "stval", 0x144: "sip", 0x180: "satp", 0xc00: "cycle", 0xc01: "time", 0xc02: "instret",
  0x300: "mstatus", 0x301: "misa", 0x302: "medeleg", 0x303: "mideleg", 0x304: "mie", 0x305: "mtvec",
  0x340: "mscratch", 0x341: "mepc", 0x342: "mcause", 0x343: "mtval", 0x344: "mip", 0xf14: "mhartid",
};

export function csrName(csr: number): string {
  return CSR_NAMES[csr] ?? `csr 0x${csr.toString(16).padStart(3, "0")}`;
}

const EXCEPTION_NAMES: Record<number, string> = {
  0: "misaligned fetch", 1: "fetch access fault", 2: "illegal instruction", 3: "breakpoint",
  4: "misaligned load", 5: "load access fault", 6: "misaligned store/AMO", 7: "store/AMO access fault",
  8: "ecall from U", 12: "fetch page fault", 13: "load page fault", 15: "store/AMO page fault",
};
const INTERRUPT_NAMES: Record<number, string> = { 1: "software", 5: "timer", 9: "external" };

export interface VmmStats {
  exits: number; // traps out of the real hart that the VMM handled
  csr: Record<string, { reads: number; writes: number }>;
  sret: number;
  sfence: number;
  wfi: number;
  hypercalls: number;
  mmio: number;
  reflected: Record<string, number>; // guest traps delivered to virtual S, by cause
  injected: Record<string, number>; // virtual interrupts delivered, by kind
  shadow: {
    faults: number; // real page faults the shadow pager handled
    guestWalks: number;
    fills: number;
    prefilled: number;
    flushes: number;
    rebuilds: number;
    pagesHeld: number;
    pagesMax: number;
    addressSpaceSwitches: number;
    addressSpacesBuilt: number;
    addressSpacesEvicted: number;
    rootSwitches: number;
  };
  // --virt bt: sensitive instructions translated code handed to the VMM by a call (no exit).
  // `avoided`: the exits trap-and-emulate takes for them; all zero in the other modes.
  bt: {
    avoided: number;
    csr: number;
    sret: number;
    sfence: number;
    syscalls: number; // ecall from virtual U, reflected to the guest kernel
    injected: number; // virtual interrupts taken right after such a call
    leaves: number; // calls after which the translated code left (new shadow root, new pc)
    declined: number; // calls the VMM left to the interpreter (hypercalls, guest-U CSRs)
  };
}

export function readVmmStats(counter: (offset: number) => number): VmmStats {
  const csr: VmmStats["csr"] = {};
  for (let n = 0; n < 4096; n++) {
    const reads = counter(V.VC_ST_CSR + n * 16);
    const writes = counter(V.VC_ST_CSR + n * 16 + 8);
    if (reads + writes > 0) csr[csrName(n)] = { reads, writes };
  }
  const reflected: Record<string, number> = {};
  const injected: Record<string, number> = {};
  for (let i = 0; i < V.VC_ST_CAUSES; i++) {
    const n = counter(V.VC_ST_CAUSE + i * 8);
    if (n === 0) continue;
    if (i < 32) reflected[EXCEPTION_NAMES[i] ?? `cause ${i}`] = n;
    else injected[INTERRUPT_NAMES[i - 32] ?? `interrupt ${i - 32}`] = n;
  }
  return {
    exits: counter(V.VC_ST_EXITS),
    csr,
    sret: counter(V.VC_ST_SRET),
    sfence: counter(V.VC_ST_SFENCE),
    wfi: counter(V.VC_ST_WFI),
    hypercalls: counter(V.VC_ST_HYPERCALL),
    mmio: counter(V.VC_ST_MMIO),
    reflected,
    injected,
    shadow: {
      faults: counter(V.VC_ST_SHADOW_FAULT),
      guestWalks: counter(V.VC_ST_GUEST_WALK),
      fills: counter(V.VC_ST_FILL),
      prefilled: counter(V.VC_ST_PREFILL),
      flushes: counter(V.VC_ST_FLUSH),
      rebuilds: counter(V.VC_ST_REBUILD),
      pagesHeld: counter(V.VC_ST_PAGES),
      pagesMax: counter(V.VC_ST_PAGES_MAX),
      addressSpaceSwitches: counter(V.VC_ST_AS_SWITCH),
      addressSpacesBuilt: counter(V.VC_ST_AS_NEW),
      addressSpacesEvicted: counter(V.VC_ST_AS_EVICT),
      rootSwitches: counter(V.VC_ST_ROOT_SWITCH),
    },
    bt: {
      avoided: counter(V.VC_ST_BT_CSR) + counter(V.VC_ST_BT_SRET) + counter(V.VC_ST_BT_SFENCE) + counter(V.VC_ST_BT_SYSCALL),
      csr: counter(V.VC_ST_BT_CSR),
      sret: counter(V.VC_ST_BT_SRET),
      sfence: counter(V.VC_ST_BT_SFENCE),
      syscalls: counter(V.VC_ST_BT_SYSCALL),
      injected: counter(V.VC_ST_BT_IRQ),
      leaves: counter(V.VC_ST_BT_LEAVE),
      declined: counter(V.VC_ST_BT_DECLINED),
    },
  };
}

// What the VMM handled, as one table: reason and count, largest first. In trap-and-emulate each is
// an exit; under bt those done in translated code (s.bt) are counted here too.
export function exitTable(s: VmmStats): [string, number][] {
  const rows: [string, number][] = [];
  for (const [name, c] of Object.entries(s.csr)) {
    if (c.reads) rows.push([`csr read ${name}`, c.reads]);
    if (c.writes) rows.push([`csr write ${name}`, c.writes]);
  }
  rows.push(["sret", s.sret], ["sfence.vma", s.sfence], ["wfi", s.wfi], ["hypercall (SBI)", s.hypercalls],
    ["shadow page fault", s.shadow.faults], ["mmio", s.mmio]);
  for (const [name, n] of Object.entries(s.reflected)) rows.push([`reflected ${name}`, n]);
  return rows.filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
}
