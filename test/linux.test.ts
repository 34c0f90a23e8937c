// Real boots of Debian's riscv64 kernel with the default busybox initramfs (`ringvisor run`, by
// default under the trap-and-emulate hypervisor): commands piped to the guest console, the same
// commands with the same results natively and under the hypervisor, SMP, a guest that fails, and
// the errors a user can provoke before anything boots. The guest image is pulled into the image cache on
// first use (network), then reused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { readNewc } from "../src/host/images/cpio.js";
import { BOOT_COMPLETE } from "../src/host/images/initramfs.js";
import { ensureDefaultGuest } from "../src/host/images/pull.js";
import { VIRT_MODES } from "../src/vm/vm.js";
import { CLI, ringvisor, type CliResult } from "./helpers.js";

const BOOT_TIMEOUT_MS = 180_000;
const guest = await ensureDefaultGuest({ quiet: true });
const dir = mkdtempSync(join(tmpdir(), "ringvisor-linux-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const STACK = /\n\s+at /;

function timed(args: string[], input?: string, timeoutMs = BOOT_TIMEOUT_MS): CliResult & { ms: number } {
  const t0 = performance.now();
  const r = ringvisor(args, input, timeoutMs);
  return { ...r, ms: performance.now() - t0 };
}

// What the guest printed, split at the busybox shell prompts ("~ # ", followed by the cursor
// position query ash sends): the boot log, then each command as the shell echoed it with the
// output up to the next prompt.
interface Step {
  command: string;
  output: string;
}

function session(stdout: string): { boot: string; steps: Step[] } {
  const parts = stdout.replace(/\r/g, "").split(/(?:^|\n)~ # (?:\x1b\[6n)?/);
  const boot = parts.shift() ?? "";
  const steps = parts.map((p) => {
    const nl = p.indexOf("\n");
    return nl < 0 ? { command: p, output: "" } : { command: p.slice(0, nl), output: p.slice(nl + 1) };
  });
  return { boot, steps };
}

// Runs `commands` through piped stdin and checks that the shell took each of them, in order.
function drive(args: string[], commands: string[]): { r: CliResult & { ms: number }; out: (command: string) => string; boot: string } {
  const r = timed(args, commands.map((c) => `${c}\n`).join(""));
  const diag = `status ${r.status}\n--- stderr:\n${r.stderr}\n--- stdout tail:\n${r.stdout.slice(-3000)}`;
  assert.notEqual(r.status, null, `the run did not end within ${BOOT_TIMEOUT_MS} ms\n${diag}`);
  const s = session(r.stdout);
  assert.deepEqual(s.steps.map((x) => x.command), commands, `each command at its own prompt\n${diag}`);
  const out = (command: string): string => s.steps.find((x) => x.command === command)!.output;
  return { r, out, boot: s.boot };
}

function initSha256(): string {
  const entries = readNewc(gunzipSync(readFileSync(guest.initrd)));
  const init = entries.find((e) => e.path === "init");
  assert.ok(init?.type === "file" && init.data, "the initramfs has an /init file");
  return createHash("sha256").update(init.data).digest("hex");
}

test("1 vCPU: uname, /proc/cpuinfo, sha256sum /init, shell arithmetic, poweroff; one marker", { timeout: BOOT_TIMEOUT_MS }, () => {
  const commands = ["uname -a", "cat /proc/cpuinfo", "sha256sum /init", "echo $((6*7))", "poweroff -f"];
  const { r, out, boot } = drive(["run", "--markers"], commands);
  console.log(`1 vCPU boot + commands: ${(r.ms / 1000).toFixed(1)} s`);
  assert.equal(r.status, 0, `clean poweroff; stderr:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, STACK);
  assert.ok(boot.includes(BOOT_COMPLETE), "/init reported the end of boot");

  const uname = out("uname -a");
  assert.match(uname, /^Linux /);
  assert.ok(uname.includes("riscv64"), uname);
  assert.ok(uname.includes(guest.kernelVersion), `kernel ${guest.kernelVersion} in: ${uname}`);

  const cpuinfo = out("cat /proc/cpuinfo");
  assert.equal(cpuinfo.match(/^processor\s*:/gm)?.length, 1, cpuinfo);
  assert.match(cpuinfo, /^processor\s*:\s*0$/m);
  assert.match(cpuinfo, /^isa\s*:\s*rv64imafdc\S*$/m);
  assert.match(cpuinfo, /^mmu\s*:\s*sv48$/m);

  const digest = /^([0-9a-f]{64}) {2}\/init$/m.exec(out("sha256sum /init"));
  assert.ok(digest, out("sha256sum /init"));
  assert.equal(digest[1], initSha256(), "the guest reads /init exactly as the host packed it");

  assert.equal(out("echo $((6*7))").trim(), "42");
  assert.match(out("poweroff -f"), /reboot: Power down/);

  const markers = [...r.stderr.matchAll(/^marker (\d+): hart (\d+) instret (\d+) at ([\d.]+) s$/gm)];
  assert.equal(markers.length, 1, `one marker line in stderr:\n${r.stderr}`);
  const [, n, hart, instret, seconds] = markers[0]!;
  assert.equal(n, "1");
  assert.equal(hart, "0");
  assert.ok(Number(instret) > 1e8, `a booted kernel has retired more than 1e8 instructions (${instret})`);
  assert.ok(Number(seconds) > 0 && Number(seconds) * 1000 < r.ms, `marker time ${seconds} s within the run`);
});

// Deterministic commands: processes, pipes, page faults, file reads, a little arithmetic.
const SAME_EVERYWHERE = [
  "uname -srm",
  "sha256sum /init",
  "seq 20000 | sha256sum",
  "for i in $(seq 40); do echo $i | cat; done | sha256sum",
  "head -c 3000000 /dev/zero | tr '\\0' 'z' | sha256sum",
  "ls /bin | wc -l",
  "grep -c processor /proc/cpuinfo",
  "awk 'BEGIN { s = 0; for (i = 1; i <= 100000; i++) s += i * i; print s }'",
  "echo $((0x7fffffff * 3)) $((-17 / 5)) $((-17 % 5))",
];

test("the same commands give the same results natively and under trap-and-emulate (scattered RAM)", { timeout: 2 * BOOT_TIMEOUT_MS }, () => {
  const commands = [...SAME_EVERYWHERE, "poweroff -f"];
  const native = drive(["run", "--virt", "native"], commands);
  const json = join(dir, "stats.json");
  const te = drive(["run", "--virt", "trap-and-emulate", "--scatter-frames", "5", "--stats", "--stats-json", json], commands);
  for (const { r } of [native, te]) {
    assert.equal(r.status, 0, `clean poweroff; stderr:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, STACK);
  }
  for (const c of SAME_EVERYWHERE) {
    assert.ok(native.out(c).trim().length > 0, `${c} printed something`);
    assert.equal(te.out(c), native.out(c), `same output for: ${c}`);
  }
  assert.equal(native.out("sha256sum /init").slice(0, 64), initSha256());
  // The hypervisor really was in the way: privileged work trapped and was emulated.
  const exits = /vCPU 0: ([\d,]+) VMM exits/.exec(te.r.stderr);
  assert.ok(exits && Number(exits[1]!.replace(/,/g, "")) > 100_000, `VMM exits in --stats:\n${te.r.stderr}`);
  assert.match(te.r.stderr, /csr write sstatus/);
  assert.match(te.r.stderr, /reflected ecall from U/);
  // The same counters as JSON.
  const st = JSON.parse(readFileSync(json, "utf8")) as { virt: string; cpus: { vmm: { exits: number; csr: Record<string, { writes: number }>; shadow: { fills: number; pagesHeld: number; pagesMax: number } } }[] };
  assert.equal(st.virt, "trap-and-emulate");
  const v = st.cpus[0]!.vmm;
  assert.equal(v.exits, Number(exits![1]!.replace(/,/g, "")), "the JSON and the table agree");
  assert.ok(v.csr.sstatus!.writes > 1000 && v.csr.satp!.writes > 10, JSON.stringify(v.csr));
  assert.ok(v.shadow.fills > 1000 && v.shadow.pagesHeld > 0 && v.shadow.pagesMax >= v.shadow.pagesHeld, JSON.stringify(v.shadow));
  console.log(`native ${(native.r.ms / 1000).toFixed(1)} s, trap-and-emulate ${(te.r.ms / 1000).toFixed(1)} s`);
});

test("2 vCPUs: both come up in cpuinfo, nproc and the kernel log", { timeout: BOOT_TIMEOUT_MS }, () => {
  const commands = ["cat /proc/cpuinfo", "nproc", 'dmesg | grep -i "smp: brought up"', "poweroff -f"];
  const { r, out } = drive(["run", "--cpus", "2"], commands);
  console.log(`2 vCPU boot + commands: ${(r.ms / 1000).toFixed(1)} s`);
  assert.equal(r.status, 0, `clean poweroff; stderr:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, STACK);

  const cpuinfo = out("cat /proc/cpuinfo");
  assert.deepEqual([...cpuinfo.matchAll(/^processor\s*:\s*(\d+)$/gm)].map((m) => m[1]), ["0", "1"], cpuinfo);
  assert.equal(cpuinfo.match(/^mmu\s*:\s*sv48$/gm)?.length, 2, cpuinfo);
  assert.equal(out("nproc").trim(), "2");
  assert.match(out('dmesg | grep -i "smp: brought up"'), /smp: Brought up \d+ nodes?, 2 CPUs/);
});

test("a guest that panics and asks for a reboot ends the run with a failure", { timeout: BOOT_TIMEOUT_MS }, () => {
  const r = timed(["run", "--append", "console=ttyS0 panic=-1 rdinit=/nonexistent"], "");
  console.log(`panic boot: ${(r.ms / 1000).toFixed(1)} s`);
  assert.notEqual(r.status, null, `the run ended by itself (stdout tail:\n${r.stdout.slice(-2000)})`);
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /Kernel panic - not syncing/);
  assert.match(r.stderr, /ringvisor: guest requested a reboot/);
  assert.doesNotMatch(r.stderr, STACK);
});

// ---- errors caught before anything boots ----

function expectRefused(args: string[], pattern: RegExp): CliResult {
  const r = timed(["run", ...args], "", 10_000);
  const what = `ringvisor run ${args.join(" ")}`;
  assert.equal(r.status, 2, `${what}: exit status; stderr:\n${r.stderr}`);
  assert.match(r.stderr, pattern, what);
  assert.doesNotMatch(r.stderr, STACK, `${what}: no stack trace`);
  assert.equal(r.stdout, "", `${what}: nothing booted`);
  assert.ok(r.ms < 8_000, `${what}: refused in ${r.ms.toFixed(0)} ms`);
  return r;
}

test("a kernel that is not a RISC-V image is refused", () => {
  const text = join(dir, "kernel.txt");
  writeFileSync(text, "This is a text file, not a kernel.\n".repeat(10));
  expectRefused(["--kernel", text], /^ringvisor: the kernel is neither a RISC-V Linux Image .* nor an ELF file$/m);
  const short = join(dir, "short.txt");
  writeFileSync(short, "hello\n");
  expectRefused(["--kernel", short], /^ringvisor: the kernel is too short \(6 bytes\)/m);
  expectRefused(["--kernel", guest.initrd, "--initrd", guest.initrd], /^ringvisor: the kernel is gzip-compressed; decompress it first/m);
});

test("memory too small for the kernel and initrd is refused with the size needed", () => {
  const r = expectRefused(["--mem", "24"], /need (\d+) MiB of RAM but the VM has 24 MiB/);
  const need = Number(/need (\d+) MiB/.exec(r.stderr)![1]);
  assert.ok(need > 24, `needs ${need} MiB`);
  assert.match(r.stderr, /the kernel \(.*\), the initrd \(.*\), the device tree/);
  expectRefused(["--mem", "8"], /--mem 8 MiB is too small; a Linux guest needs at least 16 MiB/);
});

test("missing kernel and initrd files are reported by name", () => {
  expectRefused(["--kernel", join(dir, "no-kernel")], /^ringvisor: cannot read kernel .*no-kernel: ENOENT$/m);
  expectRefused(["--initrd", join(dir, "no-initrd")], /^ringvisor: cannot read initrd .*no-initrd: ENOENT$/m);
  expectRefused(["--kernel", guest.kernel, "--initrd", join(dir, "no-initrd")], /cannot read initrd .*no-initrd: ENOENT/);
});

test("an unknown --virt mode is refused and the valid modes named", () => {
  const r = expectRefused(["--virt", "kvm"], /unknown --virt mode 'kvm'/);
  for (const m of VIRT_MODES) assert.ok(r.stderr.includes(m), `names ${m}: ${r.stderr}`);
});

test("--cpus outside 1..8 is refused", () => {
  expectRefused(["--cpus", "9"], /--cpus must be between 1 and 8 \(got 9\)/);
  expectRefused(["--cpus", "1000"], /--cpus must be between 1 and 8 \(got 1000\)/);
});

test("invalid option values exit with status 2 like other usage errors", () => {
  expectRefused(["--cpus", "0"], /--cpus <n>.*'0' is invalid.*positive integer/);
  expectRefused(["--cpus", "99999999999999999999"], /--cpus <n>.*is invalid.*positive integer/);
});

test("--mem beyond the 4 GiB wasm memory is refused clearly", () => {
  expectRefused(["--mem", "4096"], /--mem <MiB>.*'4096' is invalid.*at most 3584 MiB/);
  expectRefused(["--mem", "5000"], /--mem <MiB>.*'5000' is invalid.*at most 3584 MiB/);
});

test("stdin redirected from a regular file works", { timeout: BOOT_TIMEOUT_MS }, () => {
  const input = join(dir, "empty-input");
  writeFileSync(input, "");
  const fd = openSync(input, "r");
  try {
    const r = spawnSync(process.execPath, [CLI, "run", "--append", "console=ttyS0 panic=-1 rdinit=/nonexistent"], {
      stdio: [fd, "pipe", "pipe"], encoding: "utf8", timeout: BOOT_TIMEOUT_MS,
    });
    assert.match(r.stderr, /guest requested a reboot/);
    assert.doesNotMatch(r.stderr, STACK, r.stderr);
    assert.equal(r.status, 3);
  } finally {
    closeSync(fd);
  }
});
