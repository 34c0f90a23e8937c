// An ordinary Linux program's view of the counters (issue 8): tests/linux/userland.c, a static
// glibc program, run from the default guest's shell in every --virt mode and under QEMU with
// Debian's OpenSBI, same kernel and initramfs. It times a loop of clock_gettime(CLOCK_MONOTONIC)
// (the vDSO reads the time CSR in U-mode: scounteren.TM), counts a loop of known length with
// perf_event_open(PERF_COUNT_HW_INSTRUCTIONS) (the kernel's SBI PMU driver programs minstret
// through the firmware) and tries the counter CSRs from U-mode. Builds nothing: build/linux
// comes from tests/linux/build.sh (npm run build:programs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { writeNewc } from "../../src/host/images/cpio.js";
import { BOOT_COMPLETE } from "../../src/host/images/initramfs.js";
import { VIRT_MODES } from "../../src/vm/vm.js";
import { ROOT, ringvisor } from "../helpers.js";
import { defaultGuest } from "./guest.js";
import { session, sessionDiag } from "./console.js";

const BOOT_TIMEOUT_MS = 240_000;
const PROGRAM = join(ROOT, "build/linux/userland");
const CMDLINE = "console=ttyS0 earlycon=sbi panic=-1"; // the CLI's default
// Debian's OpenSBI (package opensbi), else the copy QEMU ships.
const OPENSBI = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin";
const COMMANDS = ["userland", "dmesg | grep -e riscv-pmu-sbi -e 'unhandled signal'", "poweroff -f"];
// The loop may count the kernel too (timer ticks, the ioctl paths around it): without Sscofpmf
// the PMU cannot exclude it.
const TOLERANCE = 0.03;

const guest = await defaultGuest();
const haveQemu = spawnSync("qemu-system-riscv64", ["--version"]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "ringvisor-userland-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

// The default initramfs with /bin/userland added: a second gzip'd newc archive appended to the
// first, which the kernel unpacks after it (as bench/virt.ts adds /bin/usercompute).
let initrdPath: string | undefined;
function initrd(): string {
  if (initrdPath) return initrdPath;
  assert.ok(existsSync(PROGRAM), `${PROGRAM} was not built (npm run build:programs)`);
  const extra = writeNewc([{ path: "bin/userland", type: "file", perm: 0o755, data: readFileSync(PROGRAM) }]);
  initrdPath = join(dir, "initramfs-userland.cpio.gz");
  writeFileSync(initrdPath, Buffer.concat([readFileSync(guest.need().initrd), gzipSync(extra)]));
  return initrdPath;
}

interface Report {
  fields: Map<string, string>;
  kernelLog: string;
}

function report(text: string, diag: string): Report {
  const { steps } = session(text);
  assert.deepEqual(steps.map((s) => s.command), COMMANDS, `each command at its own prompt\n${diag}`);
  const out = steps[0]!.output;
  assert.match(out, /^userland: done$/m, `the program ran to its end\n${diag}`);
  const fields = new Map([...out.matchAll(/^([a-z ]+): (.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  return { fields, kernelLog: steps[1]!.output };
}

function num(r: Report, key: string): number {
  const v = r.fields.get(key);
  assert.ok(v !== undefined && /^-?\d+$/.test(v), `${key}: ${v}`);
  return Number(v);
}

// What the program must report wherever it runs.
function checkReport(r: Report, where: string): void {
  const f = r.fields;
  assert.equal(f.get("vdso"), "yes", `${where}: glibc found the vDSO`);
  assert.equal(num(r, "clock backwards"), 0, `${where}: CLOCK_MONOTONIC never went back`);
  assert.ok(num(r, "clock advanced ns") > 0, `${where}: CLOCK_MONOTONIC advanced over ${f.get("clock calls")} calls`);
  assert.ok(num(r, "loop ns") > 0, `${where}: the timed loop took time`);
  const loop = num(r, "loop instructions");
  const n = num(r, "perf instructions");
  assert.ok(n >= loop && n <= loop * (1 + TOLERANCE), `${where}: perf counted ${n} instructions for a loop of ${loop}`);
  assert.ok(num(r, "perf cycles") >= loop, `${where}: perf counted ${f.get("perf cycles")} cycles for a loop of ${loop} instructions`);
  // Linux's SBI PMU driver leaves scounteren = TM (kernel.perf_user_access = 1).
  assert.equal(f.get("rdtime"), "reads", where);
  assert.equal(f.get("rdcycle"), "SIGILL", where);
  assert.equal(f.get("rdinstret"), "SIGILL", where);
  assert.match(r.kernelLog, /riscv-pmu-sbi: SBI PMU extension is available/, `${where}: the kernel uses the SBI PMU`);
  assert.doesNotMatch(r.kernelLog, /unhandled signal/, `${where}: no process died of a signal`);
}

const runs = new Map<string, Report>();

for (const mode of VIRT_MODES) {
  test(`userland program (--virt ${mode}): monotonic clock, perf instruction count, U-mode counters`, { skip: guest.skip, timeout: BOOT_TIMEOUT_MS }, () => {
    const g = guest.need();
    const json = join(dir, `stats-${mode}.json`);
    const t0 = performance.now();
    const r = ringvisor(["run", "--virt", mode, "--kernel", g.kernel, "--initrd", initrd(), "--stats-json", json],
      COMMANDS.map((c) => `${c}\n`).join(""), BOOT_TIMEOUT_MS);
    const seconds = (performance.now() - t0) / 1000;
    const diag = sessionDiag(r.stdout, r.status, r.stderr);
    assert.equal(r.status, 0, `clean poweroff\n${diag}`);
    assert.ok(r.stdout.includes(BOOT_COMPLETE), diag);
    const rep = report(r.stdout, diag);
    checkReport(rep, `--virt ${mode}`);
    assert.match(rep.kernelLog, /riscv-pmu-sbi: 16 firmware and 2 hardware counters/);
    const stats = JSON.parse(readFileSync(json, "utf8")) as { sbi: Record<string, number> };
    assert.ok((stats.sbi.PMU ?? 0) > 0, `PMU calls counted: ${JSON.stringify(stats.sbi)}`);
    runs.set(mode, rep);
    console.log(`--virt ${mode}: ${seconds.toFixed(1)} s; perf instructions ${rep.fields.get("perf instructions")} for a loop of ` +
      `${rep.fields.get("loop instructions")}, cycles ${rep.fields.get("perf cycles")}, loop ${rep.fields.get("loop ns")} ns; ` +
      `${stats.sbi.PMU} PMU calls`);
  });
}

// QEMU's stdio console is read as it comes and each command typed at its prompt. -icount
// shift=0 makes QEMU's minstret count instructions (otherwise it counts host ticks, and perf
// reports those); it also counts OpenSBI's M-mode instructions, which stay within the tolerance.
function runQemu(kernel: string, initrdFile: string): Promise<{ code: number | null; console: string }> {
  return new Promise((resolve, reject) => {
    const args = ["-M", "virt", "-m", "512", "-smp", "1", "-display", "none", "-monitor", "none", "-serial", "stdio",
      "-bios", existsSync(OPENSBI) ? OPENSBI : "default", "-no-reboot", "-icount", "shift=0",
      "-kernel", kernel, "-initrd", initrdFile, "-append", CMDLINE];
    const p = spawn("qemu-system-riscv64", args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let typed = 0;
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`QEMU did not power off:\n${out.slice(-3000)}`)); }, BOOT_TIMEOUT_MS - 10_000);
    p.stdin.on("error", () => undefined);
    p.stdout.on("data", (d: Buffer) => {
      out += d.toString("latin1");
      const boot = out.indexOf(BOOT_COMPLETE);
      if (boot < 0 || typed >= COMMANDS.length) return;
      if (out.slice(boot).split("~ # ").length - 1 > typed) p.stdin.write(`${COMMANDS[typed++]}\n`);
    });
    p.on("exit", (code) => { clearTimeout(timer); resolve({ code, console: out }); });
  });
}

test("userland program under QEMU + OpenSBI: the same report", { skip: guest.skip || (!haveQemu && "QEMU is not installed"), timeout: BOOT_TIMEOUT_MS }, async () => {
  const g = guest.need();
  const t0 = performance.now();
  const q = await runQemu(g.kernel, initrd());
  const diag = `exit ${q.code}\n--- console tail:\n${q.console.slice(-3000)}`;
  assert.equal(q.code, 0, diag);
  const rep = report(q.console, diag);
  checkReport(rep, "QEMU");
  console.log(`QEMU: ${((performance.now() - t0) / 1000).toFixed(1)} s; perf instructions ${rep.fields.get("perf instructions")}, ` +
    `cycles ${rep.fields.get("perf cycles")}, loop ${rep.fields.get("loop ns")} ns`);
  // What does not depend on speed or on the platform's counter count is the same in Ringvisor.
  for (const [mode, mine] of runs) {
    for (const key of ["vdso", "clock calls", "clock backwards", "loop instructions", "rdtime", "rdcycle", "rdinstret"]) {
      assert.equal(mine.fields.get(key), rep.fields.get(key), `--virt ${mode} and QEMU agree on ${key}`);
    }
  }
});
