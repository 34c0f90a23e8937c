// The equivalence suite (tests/guests): S-mode test kernels that must print the same console
// output in every --virt mode as in native mode, and the same as under QEMU, the reference. A
// guest kernel cannot tell how it is run if these agree. Builds nothing: build/guests comes from
// tests/guests/build.sh.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VIRT_MODES } from "../../src/vm/vm.js";
import { ROOT, ringvisor } from "../helpers.js";

interface KernelEntry {
  name: string;
  elf: string;
  checks: number;
  qemuArgs?: string[]; // appended to the QEMU command line for this kernel
}

interface Manifest {
  ringvisor: string[];
  qemu: string[];
  kernels: KernelEntry[];
}

const GUESTS = join(ROOT, "build/guests");
const manifest = JSON.parse(readFileSync(join(ROOT, "tests/guests/manifest.json"), "utf8")) as Manifest;
const haveQemu = spawnSync(manifest.qemu[0]!, ["--version"]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "ringvisor-guests-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

// The kernel's own output: from its start line on (QEMU's firmware prints a banner first), with
// line ends normalized (OpenSBI's legacy console writes CR LF, Ringvisor's SBI console LF).
function kernelOutput(raw: string): string {
  const start = raw.indexOf("== guest ");
  return (start < 0 ? raw : raw.slice(start)).replace(/\r\n/g, "\n");
}

const fill = (argv: string[], elf: string, out = ""): string[] =>
  argv.map((a) => a.replace("{elf}", elf).replace("{out}", out));

const runs = new Map<string, Run>();

// The ways a kernel is run: every --virt mode, and bt with every instruction the translator
// takes translated from its first execution (--jit eager), so that the VMM calls of binary
// translation, not only the trap path, are what the kernels exercise.
const RUNS = [...VIRT_MODES, "bt --jit eager"];

interface Run { status: number | null; output: string; stderr: string; avoided?: number }

function runOnRingvisor(elf: string, mode: string): Run {
  const key = `${mode} ${elf}`;
  let r = runs.get(key);
  if (!r) {
    // Under the hypervisor, guest RAM is machine frames in a scrambled order: nothing may depend
    // on their being contiguous.
    const scatter = mode === "native" ? [] : ["--scatter-frames", "7"];
    const json = join(dir, `${key.replace(/[^a-z0-9]+/gi, "_")}.json`);
    const c = ringvisor([...fill(manifest.ringvisor, elf), "--virt", ...mode.split(" "), ...scatter, "--stats-json", json], undefined, 120_000);
    r = { status: c.status, output: kernelOutput(c.stdout), stderr: c.stderr };
    if (existsSync(json) && mode.startsWith("bt")) {
      const st = JSON.parse(readFileSync(json, "utf8")) as { cpus: { vmm: { bt: { avoided: number } } }[] };
      r.avoided = st.cpus.reduce((n, c) => n + c.vmm.bt.avoided, 0);
    }
    runs.set(key, r);
  }
  return r;
}

// QEMU's stdio console drops bytes when stdout is a pipe that would block: it writes to a file.
function runOnQemu(elf: string, k: KernelEntry): { status: number | null; output: string } {
  const out = join(dir, `${k.name}.out`);
  closeSync(openSync(out, "w"));
  const argv = [...fill(manifest.qemu, elf, out), ...(k.qemuArgs ?? [])];
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 });
  return { status: r.status, output: kernelOutput(readFileSync(out, "latin1")) };
}

test("the manifest lists the whole suite", () => {
  assert.deepEqual(manifest.kernels.map((k) => k.name).sort(), ["csr", "fp", "hostile", "interrupts", "paging", "pmu", "sbi", "traps"]);
});

for (const k of manifest.kernels) {
  const elf = join(GUESTS, k.elf);
  for (const mode of RUNS) {
    test(`guest ${k.name} (--virt ${mode})`, () => {
      assert.ok(existsSync(elf), `${elf} was not built (tests/guests/build.sh)`);
      const r = runOnRingvisor(elf, mode);
      assert.equal(r.status, 0, `${k.name} failed in --virt ${mode}:\n${r.output}${r.stderr}`);
      assert.ok(r.output.startsWith(`== guest ${k.name} ==\n`), r.output);
      assert.ok(r.output.endsWith(`PASS ${k.checks} checks\n`), r.output);
      // Eagerly translated, the kernel's CSR accesses, srets and fences are VMM calls, not exits.
      if (mode.includes("eager")) assert.ok((r.avoided ?? 0) > 10, `--virt ${mode} avoided ${r.avoided} exits`);
    });
    if (mode !== "native") {
      test(`guest ${k.name}: --virt ${mode} prints what native prints`, () => {
        assert.ok(existsSync(elf), `${elf} was not built`);
        assert.equal(runOnRingvisor(elf, mode).output, runOnRingvisor(elf, "native").output);
      });
    }
  }
  test(`guest ${k.name}: same output as QEMU`, { skip: !haveQemu && "QEMU is not installed" }, () => {
    assert.ok(existsSync(elf), `${elf} was not built`);
    const ref = runOnQemu(elf, k);
    assert.ok(ref.output.endsWith(`PASS ${k.checks} checks\n`), `${k.name} failed under QEMU:\n${ref.output}`);
    assert.equal(runOnRingvisor(elf, "native").output, ref.output);
  });
}
