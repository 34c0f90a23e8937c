// The device tree Ringvisor hands to a Linux guest for its "virt"-like board: RAM, harts, the PLIC,
// a 16550 UART, a Goldfish RTC and virtio-mmio slots. Timer and IPIs go through SBI, so there is
// no CLINT node.
// Bindings: Documentation/devicetree/bindings/riscv/{cpus,extensions}.yaml,
// interrupt-controller/sifive,plic-1.0.0.yaml, serial/8250.yaml, virtio/mmio.yaml in Linux; the
// RTC node is the one QEMU's virt board gives (Linux's rtc-goldfish.c reads only reg and the IRQ).
import { Fdt, type FdtNode } from "./fdt.js";
import { plicWindowSize } from "../devices/plic.js";
import { UART_CLOCK_HZ, UART_SIZE } from "../devices/uart16550.js";
import { GOLDFISH_RTC_SIZE } from "../devices/goldfish-rtc.js";

export interface DeviceTreeConfig {
  memBase: bigint;
  memSize: bigint;
  harts: number;
  isa?: string;
  mmuType: "riscv,sv39" | "riscv,sv48";
  timebaseFrequency?: number;
  bootargs: string;
  initrd?: { start: bigint; end: bigint };
  uart: { base: bigint; irq: number };
  rtc?: { base: bigint; irq: number };
  plic: { base: bigint; ndev: number };
  virtio: Array<{ base: bigint; irq: number }>;
}

export const DEFAULT_ISA = "rv64imafdc_zicsr_zifencei";
export const DEFAULT_TIMEBASE_HZ = 10_000_000;
const VIRTIO_REG_SIZE = 0x1000n;
// Local interrupt numbers on each hart's riscv,cpu-intc (mcause codes, privileged spec §3.1.9).
const IRQ_S_EXT = 9;
const IRQ_M_EXT = 11;

export function buildDeviceTree(cfg: DeviceTreeConfig): Uint8Array {
  return deviceTree(cfg).toBytes();
}

// The tree before flattening, for callers that want to add nodes.
export function deviceTree(cfg: DeviceTreeConfig): Fdt {
  if (!Number.isInteger(cfg.harts) || cfg.harts < 1) throw new RangeError(`harts must be at least 1, got ${cfg.harts}`);
  const isa = cfg.isa ?? DEFAULT_ISA;
  const fdt = new Fdt();
  const root = fdt.root;
  root.u32("#address-cells", 2).u32("#size-cells", 2);
  root.strings("compatible", ["ringvisor,virt", "riscv-virtio"]);
  root.string("model", "Ringvisor virt");

  const chosen = root.child("chosen");
  chosen.string("bootargs", cfg.bootargs);
  chosen.string("stdout-path", `/soc/${unitName("serial", cfg.uart.base)}`);
  if (cfg.initrd) {
    chosen.u64("linux,initrd-start", cfg.initrd.start);
    chosen.u64("linux,initrd-end", cfg.initrd.end);
  }

  root.child(unitName("memory", cfg.memBase)).string("device_type", "memory").u64("reg", cfg.memBase, cfg.memSize);

  const intcPhandles = addCpus(fdt, root, cfg, isa);

  const soc = root.child("soc");
  soc.u32("#address-cells", 2).u32("#size-cells", 2);
  soc.string("compatible", "simple-bus");
  soc.empty("ranges");

  const plicPhandle = fdt.allocPhandle();
  const plic = soc.child(unitName("interrupt-controller", cfg.plic.base));
  plic.strings("compatible", ["sifive,plic-1.0.0", "riscv,plic0"]);
  plic.u64("reg", cfg.plic.base, plicWindowSize(cfg.harts));
  // Context 2h is hart h's M-mode external interrupt, 2h+1 its S-mode one; the order of this list
  // is what gives contexts their numbers.
  plic.u32("interrupts-extended", ...intcPhandles.flatMap((ph) => [ph, IRQ_M_EXT, ph, IRQ_S_EXT]));
  plic.u32("riscv,ndev", cfg.plic.ndev);
  plic.u32("#interrupt-cells", 1).u32("#address-cells", 0);
  plic.empty("interrupt-controller");
  plic.phandle(plicPhandle);

  const serial = soc.child(unitName("serial", cfg.uart.base));
  serial.string("compatible", "ns16550a");
  serial.u64("reg", cfg.uart.base, UART_SIZE);
  serial.u32("clock-frequency", UART_CLOCK_HZ);
  serial.u32("interrupts", cfg.uart.irq).u32("interrupt-parent", plicPhandle);

  if (cfg.rtc) {
    const rtc = soc.child(unitName("rtc", cfg.rtc.base));
    rtc.string("compatible", "google,goldfish-rtc");
    rtc.u64("reg", cfg.rtc.base, GOLDFISH_RTC_SIZE);
    rtc.u32("interrupts", cfg.rtc.irq).u32("interrupt-parent", plicPhandle);
  }

  for (const v of cfg.virtio) {
    const node = soc.child(unitName("virtio_mmio", v.base));
    node.string("compatible", "virtio,mmio");
    node.u64("reg", v.base, VIRTIO_REG_SIZE);
    node.u32("interrupts", v.irq).u32("interrupt-parent", plicPhandle);
  }
  return fdt;
}

// /cpus with one cpu@N per hart, each with its local interrupt controller, and a flat cpu-map.
// Returns the phandles of the harts' interrupt controllers.
function addCpus(fdt: Fdt, root: FdtNode, cfg: DeviceTreeConfig, isa: string): number[] {
  const cpus = root.child("cpus");
  cpus.u32("#address-cells", 1).u32("#size-cells", 0);
  cpus.u32("timebase-frequency", cfg.timebaseFrequency ?? DEFAULT_TIMEBASE_HZ);
  const extensions = isaExtensions(isa);
  const cpuPhandles: number[] = [];
  const intcPhandles: number[] = [];
  for (let h = 0; h < cfg.harts; h++) {
    const cpuPh = fdt.allocPhandle();
    const intcPh = fdt.allocPhandle();
    const cpu = cpus.child(`cpu@${h.toString(16)}`);
    cpu.string("device_type", "cpu").u32("reg", h).string("status", "okay");
    cpu.string("compatible", "riscv");
    cpu.string("riscv,isa", isa);
    cpu.string("riscv,isa-base", "rv64i");
    cpu.strings("riscv,isa-extensions", extensions);
    cpu.string("mmu-type", cfg.mmuType);
    cpu.phandle(cpuPh);
    const intc = cpu.child("interrupt-controller");
    intc.string("compatible", "riscv,cpu-intc");
    // #address-cells = 0 is what interrupt-map parsing assumes for a provider without it; stating
    // it keeps dtc's interrupt_provider check quiet.
    intc.u32("#interrupt-cells", 1).u32("#address-cells", 0);
    intc.empty("interrupt-controller");
    intc.phandle(intcPh);
    cpuPhandles.push(cpuPh);
    intcPhandles.push(intcPh);
  }
  const cluster = cpus.child("cpu-map").child("cluster0");
  cpuPhandles.forEach((ph, h) => cluster.child(`core${h}`).u32("cpu", ph));
  return intcPhandles;
}

// riscv,isa-extensions from an ISA string such as "rv64imafdc_zicsr_zifencei": single letters of
// the base string, then each multi-letter extension, in lower case. Zicntr is always listed: the
// hart implements the counters, and Linux takes riscv,isa-extensions literally (unlike the legacy
// riscv,isa string, which is read as implying Zicntr).
export function isaExtensions(isa: string): string[] {
  const m = /^rv64([a-z]*)((?:_[a-z0-9]+)*)$/.exec(isa.toLowerCase());
  if (!m) throw new RangeError(`ISA string "${isa}" is not of the form rv64<letters>[_<extension>...]`);
  const out: string[] = [];
  const add = (e: string): void => {
    if (!out.includes(e)) out.push(e);
  };
  for (const c of m[1]!) {
    if (c === "g") ["i", "m", "a", "f", "d", "zicsr", "zifencei"].forEach(add);
    else add(c);
  }
  for (const e of m[2]!.split("_").filter((s) => s !== "")) add(e);
  add("zicntr");
  return out;
}

function unitName(name: string, base: bigint): string {
  return `${name}@${base.toString(16)}`;
}
