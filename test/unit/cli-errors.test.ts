// Bad input to `ringvisor bare` and `ringvisor run` gets a clear message and exit status 2, never
// a stack trace, and `run` finds it before anything is downloaded or booted: these runs have an
// empty image cache and a mirror that cannot be reached, so a run that tried to fetch the default
// guest would fail with a different message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { MAX_CPUS, VIRT_MODES } from "../../src/vm/vm.js";
import { ringvisor, PROGRAMS, type CliResult } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "ringvisor-cli-"));

function expectUserError(args: string[], pattern: RegExp): void {
  const r = ringvisor(args);
  assert.equal(r.status, 2, `exit status for ${args.join(" ")}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

test("a missing file is reported by name", () => {
  expectUserError(["bare", join(dir, "nope.elf")], /cannot read .*nope\.elf: ENOENT/);
});

test("a file that is not ELF is rejected", () => {
  const p = join(dir, "text.elf");
  writeFileSync(p, "this is not an executable\n");
  expectUserError(["bare", p], /not an ELF file/);
});

test("an ELF for another machine is rejected", () => {
  const p = join(dir, "x86.elf");
  writeFileSync(p, readFileSync(process.execPath).subarray(0, 4096));
  expectUserError(["bare", p], /not RISC-V/);
});

test("a truncated RISC-V ELF is rejected", () => {
  const whole = readFileSync(join(PROGRAMS, "rv64i.elf"));
  const p = join(dir, "short.elf");
  writeFileSync(p, whole.subarray(0, 200));
  expectUserError(["bare", p], /truncated/);
});

test("a 32-bit ELF is rejected", () => {
  const whole = Buffer.from(readFileSync(join(PROGRAMS, "rv64i.elf")));
  whole[4] = 1;
  const p = join(dir, "elf32.elf");
  writeFileSync(p, whole);
  expectUserError(["bare", p], /32-bit ELF/);
});

test("a program that never finishes is stopped by --max-instructions", () => {
  const r = ringvisor(["bare", join(PROGRAMS, "rv64i.elf"), "--max-instructions", "1000"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /did not finish within 1000 instructions/);
});

test("a trap storm (a trap vector that faults) ends the run instead of hanging the host", () => {
  const r = ringvisor(["bare", join(PROGRAMS, "hostile_trapstorm.elf")], undefined, 60_000);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /makes no progress: it keeps trapping \(pc 0x0, mcause 1\)/);
});

// ---- ringvisor run: refused before anything is fetched or booted ----

const OFFLINE = { RINGVISOR_CACHE: mkdtempSync(join(tmpdir(), "ringvisor-cli-cache-")), RINGVISOR_MIRROR: "http://127.0.0.1:9/debian" };

function expectRefused(args: string[], pattern: RegExp): CliResult {
  const r = ringvisor(["run", ...args], "", 30_000, OFFLINE);
  const what = `ringvisor run ${args.join(" ")}`;
  assert.equal(r.status, 2, `${what}: exit status; stderr:\n${r.stderr}`);
  assert.match(r.stderr, pattern, what);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
  assert.doesNotMatch(r.stderr, /cannot download|mirror/, `${what}: refused before fetching the guest`);
  assert.equal(r.stdout, "", `${what}: nothing booted`);
  return r;
}

test("run: a kernel that is not a RISC-V image is refused", () => {
  const text = join(dir, "kernel.txt");
  writeFileSync(text, "This is a text file, not a kernel.\n".repeat(10));
  expectRefused(["--kernel", text], /^ringvisor: the kernel is neither a RISC-V Linux Image .* nor an ELF file$/m);
  const short = join(dir, "short.txt");
  writeFileSync(short, "hello\n");
  expectRefused(["--kernel", short], /^ringvisor: the kernel is too short \(6 bytes\)/m);
  const gz = join(dir, "kernel.gz");
  writeFileSync(gz, gzipSync(Buffer.alloc(100_000, 0x13)));
  expectRefused(["--kernel", gz], /^ringvisor: the kernel is gzip-compressed; decompress it first/m);
});

test("run: missing kernel and initrd files are reported by name", () => {
  expectRefused(["--kernel", join(dir, "no-kernel")], /^ringvisor: cannot read kernel .*no-kernel: ENOENT$/m);
  expectRefused(["--initrd", join(dir, "no-initrd")], /^ringvisor: cannot read initrd .*no-initrd: ENOENT$/m);
  expectRefused(["--kernel", join(PROGRAMS, "rv64i.elf"), "--initrd", join(dir, "no-initrd")], /cannot read initrd .*no-initrd: ENOENT/);
});

test("run: empty --kernel and --initrd are refused, not taken as 'the default'", () => {
  expectRefused(["--kernel", ""], /--kernel needs a path/);
  expectRefused(["--initrd", ""], /--initrd needs a path/);
});

test("run: an unknown --virt mode or --on-eof action is refused and the valid ones named", () => {
  const r = expectRefused(["--virt", "kvm"], /unknown --virt mode 'kvm'/);
  for (const m of VIRT_MODES) assert.ok(r.stderr.includes(m), `names ${m}: ${r.stderr}`);
  expectRefused(["--on-eof", "explode"], /unknown --on-eof action 'explode': choose one of poweroff, wait/);
});

test("run: --cpus outside its range is refused, and --help states the range", () => {
  expectRefused(["--cpus", String(MAX_CPUS + 1)], new RegExp(`--cpus must be between 1 and ${MAX_CPUS} \\(got ${MAX_CPUS + 1}\\)`));
  expectRefused(["--cpus", "1000"], /--cpus must be between 1 and \d+ \(got 1000\)/);
  expectRefused(["--cpus", "0"], /^ringvisor: option '--cpus <n>'.*'0' is invalid.*positive integer/m);
  expectRefused(["--cpus", "99999999999999999999"], /--cpus <n>.*is invalid.*positive integer/);
  const help = ringvisor(["run", "--help"]);
  assert.equal(help.status, 0);
  assert.match(help.stdout, new RegExp(`--cpus <n>\\s+number of virtual CPUs, 1 to ${MAX_CPUS}`));
});

test("run: --mem too small or beyond the 4 GiB wasm memory is refused clearly", () => {
  expectRefused(["--mem", "8"], /--mem 8 MiB is too small; a Linux guest needs at least 16 MiB/);
  expectRefused(["--mem", "4096"], /--mem <MiB>.*'4096' is invalid.*at most 3584 MiB/);
  expectRefused(["--mem", "5000"], /--mem <MiB>.*'5000' is invalid.*at most 3584 MiB/);
});

test("run: an unwritable --stats-json path is refused before booting", () => {
  expectRefused(["--stats-json", "/nonexistent/dir/s.json"], /--stats-json \/nonexistent\/dir\/s\.json cannot be written: directory \/nonexistent\/dir does not exist/);
  expectRefused(["--stats-json", dir], /is a directory; name a file/);
  assert.equal(existsSync("/nonexistent/dir"), false);
});

test("run: --pcpus outside 1..64 is refused, and --help states the range", () => {
  for (const v of ["0", "65", "two"]) expectRefused(["--pcpus", v], new RegExp(`^ringvisor: --pcpus must be a whole number between 1 and 64 \\(got ${v}\\)$`, "m"));
  const help = ringvisor(["run", "--help"]);
  assert.match(help.stdout, /--pcpus <n>\s+physical CPUs \(worker threads\) of the host, 1 to 64/);
});

test("run and bare: --jit other than on, off or eager is refused in one line, before anything runs; --virt bt without the translator too", () => {
  const r = expectRefused(["--jit", "maybe"], /^ringvisor: --jit must be on, off or eager \(got maybe\)$/m);
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  expectRefused(["--jit", ""], /^ringvisor: --jit must be on, off or eager \(got nothing\)$/m);
  const b = ringvisor(["bare", join(PROGRAMS, "rv64i.elf"), "--jit", "maybe"]);
  assert.equal(b.status, 2, `bare --jit maybe: exit status; stderr:\n${b.stderr}`);
  assert.equal(b.stderr, "ringvisor: --jit must be on, off or eager (got maybe)\n");
  assert.equal(b.stdout, "", "bare --jit maybe ran nothing");
  const bt = expectRefused(["--virt", "bt", "--jit", "off"], /^ringvisor: --virt bt is binary translation: it needs the translator \(leave out --jit off\)$/m);
  assert.equal(bt.stderr.trim().split("\n").length, 1, `one line: ${bt.stderr}`);
  const help = ringvisor(["run", "--help"]);
  assert.match(help.stdout, /--jit <on\|off\|eager>\s+translate hot guest code/);
  assert.match(help.stdout, /--virt <mode>\s+how the guest is run: native, trap-and-emulate, bt/);
});
