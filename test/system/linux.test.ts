// Real boots of Debian's riscv64 kernel with the default busybox initramfs (`ringvisor run`, by
// default under the trap-and-emulate hypervisor): commands piped to the guest console, the same
// commands with the same results natively and under the hypervisor, SMP, a guest that fails, and
// the errors that need the default guest to show. The guest image comes from the user's image
// cache (test/system/guest.ts). Errors caught before anything boots are in test/unit/cli-errors.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { readNewc } from "../../src/host/images/cpio.js";
import { BOOT_COMPLETE } from "../../src/host/images/initramfs.js";
import { CLI, ringvisor, type CliResult } from "../helpers.js";
import { defaultGuest } from "./guest.js";
import { session, sessionDiag } from "./console.js";

const BOOT_TIMEOUT_MS = 180_000;
const g = await defaultGuest();
const BOOTS = { skip: g.skip, timeout: BOOT_TIMEOUT_MS };
const dir = mkdtempSync(join(tmpdir(), "ringvisor-linux-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const STACK = /\n\s+at /;

function timed(args: string[], input?: string, timeoutMs = BOOT_TIMEOUT_MS): CliResult & { ms: number } {
  const t0 = performance.now();
  const r = ringvisor(args, input, timeoutMs);
  return { ...r, ms: performance.now() - t0 };
}

// Runs `commands` through piped stdin and checks that the shell took each of them, in order.
function drive(args: string[], commands: string[]): { r: CliResult & { ms: number }; out: (command: string) => string; boot: string } {
  const r = timed(args, commands.map((c) => `${c}\n`).join(""));
  const s = session(r.stdout);
  const diag = sessionDiag(r.stdout, r.status, r.stderr, s);
  assert.notEqual(r.status, null, `the run did not end within ${BOOT_TIMEOUT_MS} ms\n${diag}`);
  assert.deepEqual(s.steps.map((x) => x.command), commands, `each command at its own prompt\n${diag}`);
  const out = (command: string): string => s.steps.find((x) => x.command === command)!.output;
  return { r, out, boot: s.boot };
}

function initSha256(): string {
  const entries = readNewc(gunzipSync(readFileSync(g.need().initrd)));
  const init = entries.find((e) => e.path === "init");
  assert.ok(init?.type === "file" && init.data, "the initramfs has an /init file");
  return createHash("sha256").update(init.data).digest("hex");
}

test("1 vCPU: uname, /proc/cpuinfo, sha256sum /init, shell arithmetic, poweroff; one marker", BOOTS, () => {
  const commands = ["uname -a", "cat /proc/cpuinfo", "sha256sum /init", "echo $((6*7))", "poweroff -f"];
  const { r, out, boot } = drive(["run", "--markers"], commands);
  console.log(`1 vCPU boot + commands: ${(r.ms / 1000).toFixed(1)} s`);
  assert.equal(r.status, 0, `clean poweroff; stderr:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, STACK);
  assert.ok(boot.includes(BOOT_COMPLETE), "/init reported the end of boot");

  const uname = out("uname -a");
  assert.match(uname, /^Linux /);
  assert.ok(uname.includes("riscv64"), uname);
  const { kernelVersion } = g.need();
  assert.ok(uname.includes(kernelVersion), `kernel ${kernelVersion} in: ${uname}`);

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

// The native run of SAME_EVERYWHERE, made once for the tests that compare with it.
const NATIVE_JSON = join(dir, "native-stats.json");
let nativeDrive: ReturnType<typeof drive> | undefined;
function nativeRun(): ReturnType<typeof drive> {
  nativeDrive ??= drive(["run", "--virt", "native", "--scatter-frames", "9", "--stats-json", NATIVE_JSON], [...SAME_EVERYWHERE, "poweroff -f"]);
  return nativeDrive;
}

test("the same commands give the same results natively and under trap-and-emulate (scattered RAM)", { ...BOOTS, timeout: 2 * BOOT_TIMEOUT_MS }, () => {
  const commands = [...SAME_EVERYWHERE, "poweroff -f"];
  const native = nativeRun();
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
  // Both ran on scattered machine frames, native mode too (its hart reads RAM through the p2m).
  const nst = JSON.parse(readFileSync(NATIVE_JSON, "utf8")) as { virt: string; ram: { frames: number; contiguousRuns: number } };
  assert.equal(nst.virt, "native");
  assert.ok(nst.ram.contiguousRuns > nst.ram.frames / 2, `native RAM is scattered: ${JSON.stringify(nst.ram)}`);
  // The hypervisor really was in the way: privileged work trapped and was emulated.
  const exits = /vCPU 0: ([\d,]+) VMM exits/.exec(te.r.stderr);
  assert.ok(exits && Number(exits[1]!.replace(/,/g, "")) > 100_000, `VMM exits in --stats:\n${te.r.stderr}`);
  assert.match(te.r.stderr, /csr write sstatus/);
  assert.match(te.r.stderr, /reflected ecall from U/);
  // The same counters as JSON.
  const st = JSON.parse(readFileSync(json, "utf8")) as { virt: string; ram: { frames: number; contiguousRuns: number }; cpus: { vmm: { exits: number; csr: Record<string, { writes: number }>; shadow: { fills: number; pagesHeld: number; pagesMax: number } } }[] };
  assert.equal(st.virt, "trap-and-emulate");
  assert.ok(st.ram.contiguousRuns > st.ram.frames / 2, `RAM is scattered: ${JSON.stringify(st.ram)}`);
  const v = st.cpus[0]!.vmm;
  assert.equal(v.exits, Number(exits![1]!.replace(/,/g, "")), "the JSON and the table agree");
  assert.ok(v.csr.sstatus!.writes > 1000 && v.csr.satp!.writes > 10, JSON.stringify(v.csr));
  assert.ok(v.shadow.fills > 1000 && v.shadow.pagesHeld > 0 && v.shadow.pagesMax >= v.shadow.pagesHeld, JSON.stringify(v.shadow));
  console.log(`native ${(native.r.ms / 1000).toFixed(1)} s, trap-and-emulate ${(te.r.ms / 1000).toFixed(1)} s`);
});

test("binary translation (--virt bt): the same results as native, and most of what trap-and-emulate exits for is a call from translated code", { ...BOOTS, timeout: 2 * BOOT_TIMEOUT_MS }, () => {
  const native = nativeRun();
  const json = join(dir, "bt-stats.json");
  const bt = drive(["run", "--virt", "bt", "--scatter-frames", "3", "--stats", "--stats-json", json], [...SAME_EVERYWHERE, "poweroff -f"]);
  assert.equal(bt.r.status, 0, `clean poweroff; stderr:\n${bt.r.stderr}`);
  assert.doesNotMatch(bt.r.stderr, STACK);
  for (const c of SAME_EVERYWHERE) assert.equal(bt.out(c), native.out(c), `same output for: ${c}`);
  const st = JSON.parse(readFileSync(json, "utf8")) as { virt: string; cpus: { vmm: { exits: number; bt: { avoided: number; csr: number; sret: number; sfence: number; syscalls: number } } }[] };
  assert.equal(st.virt, "bt");
  const v = st.cpus[0]!.vmm;
  // CSR accesses, srets, fences and system calls of hot code never leave run(): far fewer exits.
  assert.ok(v.bt.avoided > 100_000 && v.bt.avoided > 2 * v.exits, `exits ${v.exits}, avoided ${JSON.stringify(v.bt)}`);
  assert.ok(v.bt.csr > 0 && v.bt.sret > 0 && v.bt.sfence > 0 && v.bt.syscalls > 0, JSON.stringify(v.bt));
  assert.match(bt.r.stderr, /binary translation: [\d,]+ exits avoided/);
  console.log(`bt: ${v.exits} exits, ${v.bt.avoided} avoided (${JSON.stringify(v.bt)}), ${(bt.r.ms / 1000).toFixed(1)} s`);
});

test("2 vCPUs: both come up in cpuinfo, nproc and the kernel log", BOOTS, () => {
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

test("a guest that panics and asks for a reboot ends the run with a failure", BOOTS, () => {
  const r = timed(["run", "--append", "console=ttyS0 panic=-1 rdinit=/nonexistent"], "");
  console.log(`panic boot: ${(r.ms / 1000).toFixed(1)} s`);
  assert.notEqual(r.status, null, `the run ended by itself (stdout tail:\n${r.stdout.slice(-2000)})`);
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /Kernel panic - not syncing/);
  assert.match(r.stderr, /ringvisor: guest requested a reboot/);
  assert.doesNotMatch(r.stderr, STACK);
});

// ---- errors that need the default guest ----

test("memory too small for the kernel and initrd is refused with the size needed", BOOTS, () => {
  const r = timed(["run", "--mem", "24"], "", 60_000);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /need (\d+) MiB of RAM but the VM has 24 MiB/);
  const need = Number(/need (\d+) MiB/.exec(r.stderr)![1]);
  assert.ok(need > 24, `needs ${need} MiB`);
  assert.match(r.stderr, /the kernel \(.*\), the initrd \(.*\), the device tree/);
  assert.doesNotMatch(r.stderr, STACK);
  assert.equal(r.stdout, "", "nothing booted");
});

test("a gzip-compressed kernel is refused with the fix named", BOOTS, () => {
  const r = timed(["run", "--kernel", g.need().initrd, "--initrd", g.need().initrd], "", 60_000);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^ringvisor: the kernel is gzip-compressed; decompress it first/m);
});

test("piped commands without a poweroff: the run ends by itself, cleanly, after the last command", BOOTS, () => {
  const r = timed(["run"], "echo hello-$((40+2))\nsleep 2; echo slept-$((1+1))\n");
  const diag = `status ${r.status}\n--- stderr:\n${r.stderr}\n--- stdout tail:\n${r.stdout.slice(-2000)}`;
  assert.notEqual(r.status, null, `the run ended by itself\n${diag}`);
  assert.equal(r.status, 0, `a clean poweroff\n${diag}`);
  assert.match(r.stdout, /^hello-42\r?$/m, diag);
  assert.match(r.stdout, /^slept-2\r?$/m, "the last command ran to its end before the session was closed");
  assert.match(r.stdout, /ringvisor: shell exited, powering off/, diag);
  assert.match(r.stdout, /reboot: Power down/);
  assert.ok(!r.stdout.includes("\x1b[6n"), "no terminal queries in output that is not a terminal");
  assert.doesNotMatch(r.stderr, STACK);
});

test("stdin redirected from a regular file works", BOOTS, () => {
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
