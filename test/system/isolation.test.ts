// Isolation under trap-and-emulate: hostile guest kernels (tests/guests: page tables naming
// physical addresses outside RAM, page tables edited through their own mappings, unassigned MMIO,
// walks that leave RAM) run in-process with their RAM scattered over machine memory. Every
// machine frame the VM does not own is filled with a canary first; afterwards every canary, the
// p2m table and the other VMM structures the guest must not reach are unchanged.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Vm } from "../../src/vm/vm.js";
import { ROOT } from "../helpers.js";

const GUESTS = join(ROOT, "build/guests");
const CANARY = 0xc5;

function digest(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

// A pool of 8 shadow table frames (two translation paths) runs out again and again: every shadow is dropped and rebuilt
// mid-fault, which must change nothing the guest can see.
const RUNS = [
  { name: "hostile", pool: undefined }, { name: "paging", pool: undefined }, { name: "traps", pool: undefined },
  { name: "hostile", pool: 8 }, { name: "paging", pool: 8 },
];

for (const { name, pool } of RUNS) {
  const what = pool ? ` with a ${pool}-frame shadow pool` : "";
  test(`guest ${name} under trap-and-emulate${what} touches no machine frame outside its p2m`, { timeout: 180_000 }, async () => {
    const elf = join(GUESTS, `${name}.elf`);
    assert.ok(existsSync(elf), `${elf} was not built (tests/guests/build.sh)`);
    let console = "";
    const vm = new Vm({
      kernel: readFileSync(elf), cmdline: "", memBytes: 64 << 20, cpus: 1, virt: "trap-and-emulate",
      console: (b) => { console += Buffer.from(b).toString("latin1"); }, scatterSeed: 11, shadowPoolFrames: pool,
    });
    const p2m = vm.p2m!;
    assert.ok(p2m.stats().contiguousRuns > 1000, `guest RAM is scattered (${p2m.stats().contiguousRuns} runs)`);

    // Canaries in every frame nobody holds, and fingerprints of the VMM's own structures.
    const free = vm.mem.freeFrames();
    assert.ok(free.length > 100, `free frames to watch: ${free.length}`);
    for (const f of free) vm.mem.bytesAt(f, 4096).fill(CANARY);
    const tableBytes = () => vm.mem.bytesAt(p2m.tableOffset, p2m.frames * 4);
    const p2mBefore = digest(tableBytes());

    const r = await vm.run();
    assert.equal(r.status, 0, `${name} passed its own checks:\n${console}`);
    assert.match(console, /PASS \d+ checks\n$/);

    let touched = 0;
    for (const f of free) {
      const b = vm.mem.bytesAt(f, 4096);
      for (let i = 0; i < 4096; i++) if (b[i] !== CANARY) { touched++; break; }
    }
    assert.equal(touched, 0, `${touched} frames outside the VM changed`);
    assert.equal(digest(tableBytes()), p2mBefore, "the p2m table is unchanged");
    const v = vm.stats().cpus[0]!.vmm!;
    assert.ok(v.shadow.fills > 0 && v.exits > 0, "the guest ran under the VMM");
    if (pool) {
      assert.ok(v.shadow.rebuilds > 1, `the pool ran out and was rebuilt (${v.shadow.rebuilds} times)`);
      assert.ok(v.shadow.pagesMax <= pool, `never more than ${pool} table pages (${v.shadow.pagesMax})`);
    }
  });
}
