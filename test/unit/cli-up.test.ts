// `ringvisor up`'s refusals: every spec and everything it names is checked before anything is
// fetched or booted, and a mistake gets one line naming the file and field, and exit status 2.
// As in cli-errors.test.ts the runs have an empty image cache and a mirror that cannot be
// reached, so one that went on to fetch the default guest would fail with a different message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ringvisor, TEST_RUNTIME_DIR, type CliResult } from "../helpers.js";
import { ControlServer } from "../../src/host/control.js";

const dir = mkdtempSync(join(tmpdir(), "ringvisor-up-"));
const logDir = join(dir, "logs");
const OFFLINE = {
  RINGVISOR_CACHE: mkdtempSync(join(tmpdir(), "ringvisor-up-cache-")),
  RINGVISOR_MIRROR: "http://127.0.0.1:9/debian",
  XDG_STATE_HOME: join(dir, "state"),
};

function spec(file: string, text: string): string {
  const p = join(dir, file);
  writeFileSync(p, text);
  return p;
}

function expectRefused(args: string[], pattern: RegExp): CliResult {
  const r = ringvisor(["up", "--log-dir", logDir, ...args], "", 30_000, OFFLINE);
  const what = `ringvisor up ${args.join(" ")}`;
  assert.equal(r.status, 2, `${what}: exit status; stderr:\n${r.stderr}`);
  assert.match(r.stderr, pattern, what);
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, `${what}: one line:\n${r.stderr}`);
  assert.match(r.stderr, /^ringvisor: /, what);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
  assert.doesNotMatch(r.stderr, /cannot download|mirror/, `${what}: refused before fetching the guest`);
  assert.equal(r.stdout, "", `${what}: nothing booted`);
  // A log is opened only when its VM is about to boot.
  assert.deepEqual(readdirSync(logDir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name), [], `${what}: no console log`);
  return r;
}

mkdirSync(logDir, { recursive: true });
const web = spec("web.yaml", "name: web\nmemory: 128\n");
const db = spec("db.json", '{ "name": "db", "memory": 128 }\n');

test("up: a spec file that does not exist is named", () => {
  expectRefused([web, join(dir, "nope.yaml")], /^ringvisor: cannot read spec file .*nope\.yaml: ENOENT$/m);
});

test("up: two VMs with the same name are refused, naming both files", () => {
  const again = spec("web-again.yaml", "name: web\nmemory: 64\n");
  expectRefused([web, db, again], /^ringvisor: .*web-again\.yaml: field 'name': .*web\.yaml already defines a VM named 'web'; names must be unique$/m);
  // The same file twice is the same mistake.
  expectRefused([web, web], /field 'name': .*web\.yaml already defines a VM named 'web'/);
});

test("up: a bad spec is refused with its file and field, even after good ones", () => {
  const typo = spec("typo.yaml", "name: typo\nmemroy: 128\n");
  expectRefused([web, typo], /^ringvisor: .*typo\.yaml: unknown field 'memroy' \(did you mean 'memory'\?\)$/m);
  const range = spec("range.yaml", "name: range\nvcpus: 99\n");
  expectRefused([range], /range\.yaml: field 'vcpus' must be at most 8, got 99$/m);
  const yaml = spec("broken.yaml", "name: [broken\nmemory: 128\n");
  expectRefused([web, yaml], /^ringvisor: .*broken\.yaml:\d+:\d+: not valid YAML or JSON: /m);
});

test("up: VMs that do not fit in the machine are refused before any boots", () => {
  const a = spec("big-a.yaml", "name: big-a\nmemory: 2048\n");
  const b = spec("big-b.yaml", "name: big-b\nmemory: 2048\n");
  const r = expectRefused(["--machine-mem", "3072", a, b], /^ringvisor: .*big-b\.yaml: field 'memory': VM 'big-b' needs about \d+ MiB of machine memory \(2048 MiB RAM plus the hypervisor's structures\), but the machine has --machine-mem 3072 MiB; the VMs before it take \d+ MiB, leaving \d+ MiB$/m);
  assert.doesNotMatch(r.stderr, /big-a\.yaml/, "the first VM fits");
  expectRefused(["--machine-mem", "100", web], /web\.yaml: field 'memory': VM 'web' needs about \d+ MiB .*--machine-mem 100 MiB$/m);
});

test("up: dedicated VMs that leave no physical CPU shared are refused", () => {
  const d = spec("dedicated.yaml", "name: pinned\nvcpus: 2\ndedicated: true\n");
  expectRefused(["--pcpus", "2", d], /dedicated\.yaml: field 'dedicated': VM 'pinned' needs 2 physical CPUs of its own, but the host has --pcpus 2, and one must stay shared$/m);
});

test("up: --attach must name one of the VMs", () => {
  expectRefused(["--attach", "cache", web, db], /^ringvisor: --attach cache: no VM of that name; the VMs are web, db$/m);
});

test("up: --pcpus, --machine-mem and --on-eof outside their ranges are refused", () => {
  for (const v of ["0", "65", "two"]) expectRefused(["--pcpus", v, web], new RegExp(`^ringvisor: --pcpus must be a whole number between 1 and 64 \\(got ${v}\\)$`, "m"));
  expectRefused(["--machine-mem", "5000", web], /--machine-mem must be at most 4096 MiB .*got 5000/);
  expectRefused(["--on-eof", "explode", web], /unknown --on-eof action 'explode': choose one of poweroff, wait/);
});

test("up: kernel and initrd paths are relative to the spec file, and read before anything else", () => {
  mkdirSync(join(dir, "sub"), { recursive: true });
  const k = spec("sub/k.yaml", "name: k\nkernel: Image\n");
  expectRefused([k], /^ringvisor: .*sub\/k\.yaml: field 'kernel': cannot read kernel .*\/sub\/Image: ENOENT$/m);
  const i = spec("i.yaml", "name: i\ninitrd: initrd.gz\n");
  expectRefused([i], /i\.yaml: field 'initrd': cannot read initrd .*\/initrd\.gz: ENOENT$/m);
});

test("up: a kernel that is not one, or does not fit in its VM's memory, is refused with the field", () => {
  writeFileSync(join(dir, "kernel.txt"), "This is a text file, not a kernel.\n".repeat(10));
  const t = spec("text-kernel.yaml", "name: text\nkernel: kernel.txt\n");
  expectRefused([web, t], /text-kernel\.yaml: field 'kernel': the kernel is neither a RISC-V Linux Image .* nor an ELF file$/m);
  // A RISC-V Image header claiming 40 MiB with bss, in a 32 MiB VM.
  const img = Buffer.alloc(4096);
  img.writeBigUInt64LE(40n << 20n, 16);
  img.write("RSC\x05", 56, "latin1");
  writeFileSync(join(dir, "Image"), img);
  const small = spec("small.yaml", "name: small\nmemory: 32\nkernel: Image\n");
  expectRefused([small], /small\.yaml: field 'memory': the kernel \(.*\), the device tree \(\d+ bytes\) need 4\d MiB of RAM but the VM has 32/m);
});

test("up: a log directory that is a file is refused", () => {
  const file = spec("not-a-dir", "");
  const r = ringvisor(["up", "--log-dir", file, web], "", 30_000, OFFLINE);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^ringvisor: --log-dir .*not-a-dir is not a directory$/m);
  assert.doesNotMatch(r.stderr, /cannot download|mirror/);
});

test("up: with no spec files, commander's message, status 2; --help lists the flags", () => {
  const r = ringvisor(["up"], "", 30_000, OFFLINE);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^ringvisor: missing required argument 'file'/m);
  const help = ringvisor(["up", "--help"]);
  assert.equal(help.status, 0);
  for (const flag of ["--pcpus <n>", "--attach <name>", "--log-dir <dir>", "--machine-mem <MiB>", "--on-eof <action>"]) assert.ok(help.stdout.includes(flag), `${flag} in:\n${help.stdout}`);
});

test("up: a VM whose name another ringvisor process runs is refused before anything boots", async () => {
  const held = await ControlServer.open("taken", { XDG_RUNTIME_DIR: TEST_RUNTIME_DIR });
  try {
    const free = spec("free.yaml", "name: free\nmemory: 64\n");
    const taken = spec("taken.yaml", "name: taken\nmemory: 64\n");
    expectRefused([free, taken], /^ringvisor: .*taken\.yaml: field 'name': a VM named 'taken' is already running \(its control socket is .*taken\.sock\); give this one another name$/m);
    assert.equal(existsSync(join(TEST_RUNTIME_DIR, "ringvisor", "free.sock")), false, "the name reserved for the first VM is given back");
  } finally {
    held.close();
  }
});
