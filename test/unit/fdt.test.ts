// The DTB writer and the board's device tree, checked three ways: the header and blocks by hand,
// the decoding by dtc (the reference implementation), and the content against the tree QEMU's
// `-M virt` gives the same Linux kernel.
//
// Notable differences from QEMU 7.2's virt tree (all deliberate):
// - No CLINT node: timer and IPIs go through SBI (TIME, IPI extensions). Linux's timer-riscv and
//   SBI IPI code need nothing from the tree for that.
// - No fw-cfg, cfi-flash, PCIe host, sifive,test syscon with poweroff/reboot nodes (SBI SRST does
//   it), platform-bus, or riscv,pmu node (no SBI PMU extension). The goldfish RTC is there, at
//   QEMU's address and IRQ.
// - /chosen has no rng-seed: the kernel's RNG then seeds itself from jitter and boots a little
//   slower to a "crng init done"; worth adding once the VMM has a source of randomness to pass.
// - Each cpu has riscv,isa-base and riscv,isa-extensions (QEMU 7.2 predates them); Linux 6.x reads
//   the extension list and ignores riscv,isa when both are present. QEMU's riscv,isa also lists h,
//   zihintpause, zba/zbb/zbc/zbs and sstc, which our harts do not implement.
// - The PLIC is named interrupt-controller@c000000 (the generic name the spec recommends) and its
//   reg covers the contexts of our harts rather than a fixed 0x600000.
// - Each cpu-intc carries #address-cells = <0>, which silences dtc's interrupt_provider warning
//   that QEMU's tree triggers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Fdt, FDT_MAGIC, FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END } from "../../src/vm/fdt.js";
import { buildDeviceTree, isaExtensions, type DeviceTreeConfig } from "../../src/vm/devicetree.js";

const dir = mkdtempSync(join(tmpdir(), "ringvisor-fdt-"));

function have(tool: string): boolean {
  return spawnSync(tool, ["--version"], { encoding: "utf8" }).status === 0;
}
const HAVE_DTC = have("dtc");
const HAVE_QEMU = have("qemu-system-riscv64");

function dtc(blob: Uint8Array): { dts: string; stderr: string } {
  const p = join(dir, `t${Math.random().toString(36).slice(2)}.dtb`);
  writeFileSync(p, blob);
  const r = spawnSync("dtc", ["-I", "dtb", "-O", "dts", p], { encoding: "utf8" });
  assert.equal(r.status, 0, `dtc failed: ${r.stderr}`);
  return { dts: r.stdout, stderr: r.stderr };
}

// A minimal reader (spec chapter 5) so tests can look at exact bytes, independent of dtc's output.
interface Node {
  name: string;
  props: Map<string, Uint8Array>;
  children: Node[];
}

function parse(blob: Uint8Array): { root: Node; rsv: Array<[bigint, bigint]>; bootCpu: number } {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  assert.equal(dv.getUint32(0), FDT_MAGIC);
  const offStruct = dv.getUint32(8);
  const offStrings = dv.getUint32(12);
  const rsv: Array<[bigint, bigint]> = [];
  for (let o = dv.getUint32(16); ; o += 16) {
    const a = dv.getBigUint64(o);
    const s = dv.getBigUint64(o + 8);
    if (a === 0n && s === 0n) break;
    rsv.push([a, s]);
  }
  const cstr = (at: number): string => {
    let end = at;
    while (blob[end] !== 0) end++;
    return new TextDecoder().decode(blob.subarray(at, end));
  };
  let at = offStruct;
  const stack: Node[] = [];
  let root: Node | undefined;
  for (;;) {
    const tok = dv.getUint32(at);
    at += 4;
    if (tok === FDT_BEGIN_NODE) {
      const name = cstr(at);
      at += (name.length + 4) & ~3;
      const node: Node = { name, props: new Map(), children: [] };
      if (stack.length) stack[stack.length - 1]!.children.push(node);
      else root = node;
      stack.push(node);
    } else if (tok === FDT_PROP) {
      const len = dv.getUint32(at);
      const nameoff = dv.getUint32(at + 4);
      stack[stack.length - 1]!.props.set(cstr(offStrings + nameoff), blob.slice(at + 8, at + 8 + len));
      at += 8 + ((len + 3) & ~3);
    } else if (tok === FDT_END_NODE) {
      stack.pop();
    } else if (tok === FDT_NOP) {
      continue;
    } else {
      assert.equal(tok, FDT_END);
      break;
    }
  }
  return { root: root!, rsv, bootCpu: dv.getUint32(28) };
}

function path(root: Node, p: string): Node | undefined {
  let n: Node | undefined = root;
  for (const part of p.split("/").filter(Boolean)) n = n?.children.find((c) => c.name === part);
  return n;
}

const cells = (b: Uint8Array | undefined): number[] => {
  assert.ok(b, "property missing");
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: b.length / 4 }, (_, i) => dv.getUint32(4 * i));
};
const strs = (b: Uint8Array | undefined): string[] => {
  assert.ok(b, "property missing");
  return new TextDecoder().decode(b).split("\0").slice(0, -1);
};
const u64 = (b: Uint8Array | undefined): bigint => {
  assert.ok(b && b.length === 8, "expected a 64-bit value");
  return new DataView(b.buffer, b.byteOffset).getBigUint64(0);
};

test("header, alignment and blocks follow spec chapter 5", () => {
  const fdt = new Fdt();
  fdt.bootCpuidPhys = 3;
  fdt.reservations.push({ address: 0x8000_0000n, size: 0x20_0000n });
  fdt.root.u32("#address-cells", 2).string("compatible", "x,y");
  fdt.root.child("a@1").u32("reg", 1).string("compatible", "x,a").bytes("odd", Uint8Array.of(1, 2, 3));
  const blob = fdt.toBytes();
  const dv = new DataView(blob.buffer);
  assert.equal(dv.getUint32(0), 0xd00dfeed);
  assert.equal(dv.getUint32(4), blob.length, "totalsize");
  assert.equal(dv.getUint32(20), 17, "version");
  assert.equal(dv.getUint32(24), 16, "last_comp_version");
  assert.equal(dv.getUint32(16) % 8, 0, "memory reservation block is 8-byte aligned");
  assert.equal(dv.getUint32(8) % 4, 0, "structure block is 4-byte aligned");
  assert.equal(dv.getUint32(8) + dv.getUint32(36), dv.getUint32(12), "strings follow the structure block");
  const strings = new TextDecoder().decode(blob.subarray(dv.getUint32(12), dv.getUint32(12) + dv.getUint32(32)));
  assert.equal(strings.split("\0").filter((s) => s === "compatible").length, 1, "property names are deduplicated");
  const { root, rsv, bootCpu } = parse(blob);
  assert.equal(bootCpu, 3);
  assert.deepEqual(rsv, [[0x8000_0000n, 0x20_0000n]]);
  assert.deepEqual(Array.from(path(root, "a@1")!.props.get("odd")!), [1, 2, 3]);
});

test("every value type decodes as dtc reads it", { skip: !HAVE_DTC && "dtc not installed" }, () => {
  const fdt = new Fdt();
  fdt.reservations.push({ address: 0x1000n, size: 0x2000n });
  const n = fdt.root.child("node");
  n.u32("cells", 1, 0xffff_ffff).u64("big", 0x1_2345_6789n).string("s", "hello")
    .strings("list", ["a", "bc"]).bytes("raw", Uint8Array.of(0xde, 0xad)).empty("flag").phandle(fdt.allocPhandle());
  const { dts, stderr } = dtc(fdt.toBytes());
  assert.equal(stderr, "");
  assert.match(dts, /\/memreserve\/\s+0x0*1000 0x0*2000;/);
  assert.match(dts, /cells = <0x01 0xffffffff>;/);
  assert.match(dts, /big = <0x01 0x23456789>;/);
  assert.match(dts, /s = "hello";/);
  assert.match(dts, /list = "a\\0bc";/);
  assert.match(dts, /raw = \[de ad\];/);
  assert.match(dts, /flag;/);
  assert.match(dts, /phandle = <0x01>;/);
});

test("bad names and values are refused", () => {
  const fdt = new Fdt();
  assert.throws(() => fdt.root.child("has space"), /invalid devicetree node name/);
  assert.throws(() => fdt.root.u32("name-that-is-far-too-long-for-the-spec", 1), /invalid devicetree property name/);
  assert.throws(() => fdt.root.u32("x", -1), /not a u32/);
  assert.throws(() => fdt.root.string("y", "a\0b"), /NUL/);
  fdt.root.u32("z", 1);
  assert.throws(() => fdt.root.u32("z", 2), /duplicate property/);
});

function board(over: Partial<DeviceTreeConfig> = {}): DeviceTreeConfig {
  return {
    memBase: 0x8000_0000n,
    memSize: 0x1000_0000n,
    harts: 2,
    mmuType: "riscv,sv39",
    bootargs: "console=ttyS0 earlycon",
    initrd: { start: 0x8420_0000n, end: 0x8480_0000n },
    uart: { base: 0x1000_0000n, irq: 10 },
    rtc: { base: 0x10_1000n, irq: 11 },
    plic: { base: 0x0c00_0000n, ndev: 31 },
    virtio: [{ base: 0x1000_1000n, irq: 1 }, { base: 0x1000_2000n, irq: 2 }],
    ...over,
  };
}

test("the board tree has what Linux needs, with the right values", () => {
  const { root, bootCpu } = parse(buildDeviceTree(board()));
  assert.equal(bootCpu, 0);
  assert.deepEqual(cells(root.props.get("#address-cells")), [2]);
  assert.deepEqual(strs(root.props.get("compatible")), ["ringvisor,virt", "riscv-virtio"]);

  const chosen = path(root, "chosen")!;
  assert.deepEqual(strs(chosen.props.get("bootargs")), ["console=ttyS0 earlycon"]);
  const stdout = strs(chosen.props.get("stdout-path"))[0]!;
  assert.equal(stdout, "/soc/serial@10000000");
  assert.ok(path(root, stdout), "stdout-path names a node");
  assert.equal(u64(chosen.props.get("linux,initrd-start")), 0x8420_0000n);
  assert.equal(u64(chosen.props.get("linux,initrd-end")), 0x8480_0000n);

  const mem = path(root, "memory@80000000")!;
  assert.deepEqual(strs(mem.props.get("device_type")), ["memory"]);
  assert.deepEqual(cells(mem.props.get("reg")), [0, 0x8000_0000, 0, 0x1000_0000]);

  const cpus = path(root, "cpus")!;
  assert.deepEqual(cells(cpus.props.get("timebase-frequency")), [10_000_000]);
  assert.deepEqual(cells(cpus.props.get("#size-cells")), [0]);
  const intcs: number[] = [];
  const cpuPh: number[] = [];
  for (let h = 0; h < 2; h++) {
    const cpu = path(cpus, `cpu@${h}`)!;
    assert.deepEqual(cells(cpu.props.get("reg")), [h]);
    assert.deepEqual(strs(cpu.props.get("device_type")), ["cpu"]);
    assert.deepEqual(strs(cpu.props.get("status")), ["okay"]);
    assert.deepEqual(strs(cpu.props.get("riscv,isa")), ["rv64imafdc_zicsr_zifencei"]);
    assert.deepEqual(strs(cpu.props.get("riscv,isa-base")), ["rv64i"]);
    assert.deepEqual(strs(cpu.props.get("riscv,isa-extensions")),
      ["i", "m", "a", "f", "d", "c", "zicsr", "zifencei", "zicntr"]);
    assert.deepEqual(strs(cpu.props.get("mmu-type")), ["riscv,sv39"]);
    const intc = path(cpu, "interrupt-controller")!;
    assert.deepEqual(strs(intc.props.get("compatible")), ["riscv,cpu-intc"]);
    assert.deepEqual(cells(intc.props.get("#interrupt-cells")), [1]);
    assert.ok(intc.props.has("interrupt-controller"));
    intcs.push(cells(intc.props.get("phandle"))[0]!);
    cpuPh.push(cells(cpu.props.get("phandle"))[0]!);
  }
  assert.deepEqual(cells(path(cpus, "cpu-map/cluster0/core1")!.props.get("cpu")), [cpuPh[1]]);

  const soc = path(root, "soc")!;
  assert.deepEqual(strs(soc.props.get("compatible")), ["simple-bus"]);
  assert.equal(soc.props.get("ranges")!.length, 0);
  const plic = path(soc, "interrupt-controller@c000000")!;
  assert.deepEqual(strs(plic.props.get("compatible")), ["sifive,plic-1.0.0", "riscv,plic0"]);
  assert.deepEqual(cells(plic.props.get("reg")), [0, 0x0c00_0000, 0, 0x20_4000]);
  // Context 2h = hart h M-mode (11), 2h+1 = S-mode (9).
  assert.deepEqual(cells(plic.props.get("interrupts-extended")), [intcs[0], 11, intcs[0], 9, intcs[1], 11, intcs[1], 9]);
  assert.deepEqual(cells(plic.props.get("riscv,ndev")), [31]);
  assert.ok(plic.props.has("interrupt-controller"));
  const plicPh = cells(plic.props.get("phandle"))[0]!;

  const serial = path(soc, "serial@10000000")!;
  assert.deepEqual(strs(serial.props.get("compatible")), ["ns16550a"]);
  assert.deepEqual(cells(serial.props.get("reg")), [0, 0x1000_0000, 0, 0x100]);
  assert.deepEqual(cells(serial.props.get("clock-frequency")), [3_686_400]);
  assert.deepEqual(cells(serial.props.get("interrupts")), [10]);
  assert.deepEqual(cells(serial.props.get("interrupt-parent")), [plicPh]);

  const rtc = path(soc, "rtc@101000");
  assert.ok(rtc, "the RTC node is /soc/rtc@101000");
  assert.deepEqual(strs(rtc.props.get("compatible")), ["google,goldfish-rtc"]);
  assert.deepEqual(cells(rtc.props.get("reg")), [0, 0x10_1000, 0, 0x1000]);
  assert.deepEqual(cells(rtc.props.get("interrupts")), [11]);
  assert.deepEqual(cells(rtc.props.get("interrupt-parent")), [plicPh]);

  const v2 = path(soc, "virtio_mmio@10002000")!;
  assert.deepEqual(strs(v2.props.get("compatible")), ["virtio,mmio"]);
  assert.deepEqual(cells(v2.props.get("reg")), [0, 0x1000_2000, 0, 0x1000]);
  assert.deepEqual(cells(v2.props.get("interrupts")), [2]);
  assert.deepEqual(cells(v2.props.get("interrupt-parent")), [plicPh]);

  const phandles = [...intcs, ...cpuPh, plicPh];
  assert.equal(new Set(phandles).size, phandles.length, "phandles are unique");
});

test("no initrd means no initrd properties; options are honoured", () => {
  const { root } = parse(buildDeviceTree(board({ initrd: undefined, harts: 1, mmuType: "riscv,sv48", timebaseFrequency: 1_000_000, virtio: [], rtc: undefined })));
  const chosen = path(root, "chosen")!;
  assert.ok(!chosen.props.has("linux,initrd-start") && !chosen.props.has("linux,initrd-end"));
  assert.deepEqual(strs(path(root, "cpus/cpu@0")!.props.get("mmu-type")), ["riscv,sv48"]);
  assert.deepEqual(cells(path(root, "cpus")!.props.get("timebase-frequency")), [1_000_000]);
  assert.equal(path(root, "cpus/cpu@1"), undefined);
  assert.equal(path(root, "soc")!.children.filter((c) => c.name.startsWith("virtio_mmio")).length, 0);
  assert.equal(path(root, "soc")!.children.filter((c) => c.name.startsWith("rtc")).length, 0);
});

test("riscv,isa-extensions follows the ISA string", () => {
  assert.deepEqual(isaExtensions("rv64gc"), ["i", "m", "a", "f", "d", "zicsr", "zifencei", "c", "zicntr"]);
  assert.deepEqual(isaExtensions("rv64imac_zicntr"), ["i", "m", "a", "c", "zicntr"]);
  assert.throws(() => isaExtensions("rv32imac"), /rv64/);
});

test("dtc and fdtdump accept the board tree without complaint", { skip: !HAVE_DTC && "dtc not installed" }, () => {
  const blob = buildDeviceTree(board({ harts: 4 }));
  const { stderr } = dtc(blob);
  assert.equal(stderr, "", "no dtc warnings");
  const p = join(dir, "board.dtb");
  writeFileSync(p, blob);
  const r = spawnSync("fdtdump", [p], { encoding: "utf8" });
  if (r.error === undefined) {
    assert.equal(r.status, 0);
    assert.doesNotMatch(r.stdout + r.stderr, /error|bad|truncated/i);
  }
});

test("every property QEMU's virt gives Linux for the same devices is present", { skip: !HAVE_QEMU && "qemu-system-riscv64 not installed" }, () => {
  const q = join(dir, "qemu.dtb");
  const r = spawnSync("qemu-system-riscv64", ["-M", `virt,dumpdtb=${q}`, "-smp", "2", "-m", "256M", "-nographic"], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const qemu = parse(new Uint8Array(readFileSync(q))).root;
  const ours = parse(buildDeviceTree(board())).root;
  const byCompat = (root: Node, compat: string): Node => {
    const found: Node[] = [];
    const walk = (n: Node): void => {
      const c = n.props.get("compatible");
      if (c && strs(c).includes(compat)) found.push(n);
      n.children.forEach(walk);
    };
    walk(root);
    assert.ok(found.length > 0, `no node compatible with ${compat}`);
    return found[0]!;
  };
  const missing = (theirs: Node, mine: Node, except: string[] = []): string[] =>
    [...theirs.props.keys()].filter((k) => !mine.props.has(k) && !except.includes(k));

  assert.deepEqual(missing(path(qemu, "chosen")!, path(ours, "chosen")!, ["rng-seed"]), []);
  assert.deepEqual(missing(path(qemu, "memory@80000000")!, path(ours, "memory@80000000")!), []);
  assert.deepEqual(missing(path(qemu, "cpus")!, path(ours, "cpus")!), []);
  assert.deepEqual(missing(path(qemu, "cpus/cpu@0")!, path(ours, "cpus/cpu@0")!), []);
  assert.deepEqual(missing(path(qemu, "cpus/cpu@0/interrupt-controller")!, path(ours, "cpus/cpu@0/interrupt-controller")!), []);
  assert.deepEqual(missing(path(qemu, "soc")!, path(ours, "soc")!), []);
  for (const compat of ["sifive,plic-1.0.0", "ns16550a", "virtio,mmio", "google,goldfish-rtc"]) {
    assert.deepEqual(missing(byCompat(qemu, compat), byCompat(ours, compat)), [], compat);
  }
  // Same values where the boards agree.
  const qs = byCompat(qemu, "ns16550a");
  const os = byCompat(ours, "ns16550a");
  for (const k of ["reg", "interrupts", "clock-frequency"]) assert.deepEqual(os.props.get(k), qs.props.get(k), k);
  const qr = byCompat(qemu, "google,goldfish-rtc");
  const or = byCompat(ours, "google,goldfish-rtc");
  assert.equal(or.name, qr.name, "same node name");
  for (const k of ["reg", "interrupts"]) assert.deepEqual(or.props.get(k), qr.props.get(k), `rtc ${k}`);
  assert.deepEqual(path(ours, "cpus")!.props.get("timebase-frequency"), path(qemu, "cpus")!.props.get("timebase-frequency"));
  assert.deepEqual(strs(path(ours, "chosen")!.props.get("stdout-path")), strs(path(qemu, "chosen")!.props.get("stdout-path")));
});
