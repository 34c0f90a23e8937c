// Isolation: hostile guest kernels (tests/guests: page tables naming physical addresses outside
// RAM, page tables edited through their own mappings, unassigned MMIO, walks that leave RAM) run
// at the same time as healthy ones, all in one host's machine memory, each with its RAM scattered
// over it, under trap-and-emulate, bt and natively. Every machine frame no VM owns is filled with a
// canary first; afterwards every canary, every VM's p2m table and every other VM's results are
// unchanged, and destroying the VMs gives every frame back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Host } from "../../src/host/host.js";
import type { VirtMode } from "../../src/vm/vm.js";
import { ROOT } from "../helpers.js";

const GUESTS = join(ROOT, "build/guests");
const CANARY = 0xc5;

function digest(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

// A pool of 8 shadow table frames (two translation paths) runs out again and again: every shadow
// is dropped and rebuilt mid-fault, which must change nothing the guest can see.
const RUNS: { name: string; virt: VirtMode; pool?: number }[] = [
  { name: "hostile", virt: "trap-and-emulate" }, { name: "paging", virt: "trap-and-emulate" }, { name: "traps", virt: "trap-and-emulate" },
  { name: "hostile", virt: "trap-and-emulate", pool: 8 }, { name: "paging", virt: "trap-and-emulate", pool: 8 },
  { name: "hostile", virt: "native" }, { name: "csr", virt: "native" },
  { name: "hostile", virt: "bt" }, { name: "paging", virt: "bt" }, { name: "traps", virt: "bt" },
];

test("hostile and healthy guest kernels in one machine touch no frame outside their own p2m", { timeout: 600_000 }, async () => {
  // Eager translation: nearly everything these short kernels run is translated code (so under bt
  // their privileged instructions are VMM calls from it), and its stores are what is checked.
  const host = new Host({ machineBytes: 1 << 30, jit: "eager" });
  const mem = host.machine.mem;
  const consoles = new Map<string, string>();
  const vms = RUNS.map(({ name, virt, pool }, i) => {
    const elf = join(GUESTS, `${name}.elf`);
    assert.ok(existsSync(elf), `${elf} was not built (tests/guests/build.sh)`);
    const id = `${name}-${virt}${pool ? `-pool${pool}` : ""}`;
    consoles.set(id, "");
    return host.createVm({
      name: id, kernel: readFileSync(elf), cmdline: "", memBytes: 64 << 20, cpus: 1, virt,
      console: (b) => { consoles.set(id, consoles.get(id)! + Buffer.from(b).toString("latin1")); }, scatterSeed: 11 + i, shadowPoolFrames: pool,
    });
  });
  for (const vm of vms) assert.ok(vm.ram.stats().contiguousRuns > 1000, `${vm.name}: guest RAM is scattered (${vm.ram.stats().contiguousRuns} runs)`);

  // Canaries in every frame nobody holds, and fingerprints of each VM's p2m table.
  const free = mem.freeFrames();
  assert.ok(free.length > 100, `free frames to watch: ${free.length}`);
  for (const f of free) mem.bytesAt(f, 4096).fill(CANARY);
  const table = (vm: (typeof vms)[number]) => mem.bytesAt(vm.ram.tableOffset, vm.ram.frames * 4);
  const before = vms.map((vm) => digest(table(vm)));

  for (const vm of vms) host.start(vm);
  const results = await Promise.all(vms.map((vm) => vm.finished));

  vms.forEach((vm, i) => {
    const out = consoles.get(vm.name)!;
    assert.equal(results[i]!.status, 0, `${vm.name} passed its own checks:\n${out}`);
    assert.match(out, /PASS \d+ checks\n$/, vm.name);
    assert.equal(digest(table(vm)), before[i], `${vm.name}: the p2m table is unchanged`);
  });
  let touched = 0;
  for (const f of free) {
    const b = mem.bytesAt(f, 4096);
    for (let i = 0; i < 4096; i++) if (b[i] !== CANARY) { touched++; break; }
  }
  assert.equal(touched, 0, `${touched} frames outside every VM changed`);

  RUNS.forEach(({ pool, virt }, i) => {
    if (virt === "native") return;
    const v = vms[i]!.stats().cpus[0]!.vmm!;
    assert.ok(v.shadow.fills > 0 && v.exits > 0, "the guest ran under the VMM");
    if (virt === "bt") assert.ok(v.bt.avoided > 10, `${vms[i]!.name}: translated code called the VMM (${JSON.stringify(v.bt)})`);
    if (pool) {
      assert.ok(v.shadow.rebuilds > 1, `the pool ran out and was rebuilt (${v.shadow.rebuilds} times)`);
      assert.ok(v.shadow.pagesMax <= pool, `never more than ${pool} table pages (${v.shadow.pagesMax})`);
    }
  });
  for (const vm of vms) host.destroy(vm);
  assert.equal(mem.allocatedFrames, 0, "destroying the VMs gave every frame back");
});
