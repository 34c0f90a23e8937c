// The binary translator (src/hart/jit, docs/binary-translation.md) under the default Debian
// guest: the same commands give the same output translated and interpreted; with the translator
// on nearly every instruction retires in translated code and V8 refuses no module; a second VM
// whose RAM lies on the frames a first one gave back (in another order) boots and answers
// correctly, having dropped every translation the first one left; and `ringvisor run --stats`
// reports one translator line per physical CPU with --jit on and none with --jit off.
//
// Four boots, one after the other: a Host with one physical CPU and the translator on, running
// two VMs in turn (in-process), then `ringvisor run --jit off` (a Host with the translator off,
// its outputs compared with the first VM's) and `ringvisor run --jit on --pcpus 2`.
// JIT_TEST_VERBOSE=1 prints each command's time.
//
// On the freed frames: the second VM would boot and answer correctly even if freeing did not mark
// them (tried: its kernel writes nearly every frame before it runs code from it, and its own
// stores mark the frame then), so the test checks the marks and the drop count themselves: every
// frame of the first VM with translated code is marked written once destroyed, and the second
// VM's first order drops at least all the translations the first one left.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { readNewc } from "../../src/host/images/cpio.js";
import { Host } from "../../src/host/host.js";
import { DEFAULT_CMDLINE } from "../../src/cli/run.js";
import type { MachineMemory } from "../../src/machine/memory.js";
import type { Vm } from "../../src/vm/vm.js";
import type { JitStats } from "../../src/hart/jit/cache.js";
import { ringvisor, type CliResult } from "../helpers.js";
import { defaultGuest } from "./guest.js";
import { GuestConsole, command, session, sessionDiag, shell, until } from "./console.js";

const g = await defaultGuest();
const MiB = 1 << 20;
const BOOT_MS = 150_000;
const CMD_MS = 60_000;
const CLI_MS = 180_000;
const MEM_MIB = 128;
const dir = mkdtempSync(join(tmpdir(), "ringvisor-jit-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

// Deterministic commands (each short enough for one line of the shell): pipes, a file written and
// read back, shell and awk arithmetic (awk's is floating point: the translator's F/D paths).
const COMMANDS = [
  "seq 1 20000 | sha256sum",
  "seq 1 20000 | tr '\\n' , > /tmp/gen; md5sum /tmp/gen; wc -c < /tmp/gen",
  "echo $((12345*6789)) $((0x7fffffff*3)) $((-17/5)) $((-17%5)) $((1<<40))",
  "i=0;s=0;while [ $i -lt 1000 ];do s=$((s+i*i));i=$((i+1));done;echo $s",
  "awk 'BEGIN{for(i=1;i<=50000;i++)s+=i/3;printf \"%.4f\\n\",s}'",
  "sha256sum /init",
];
// What the commands must print, computed here (so that neither run is the reference alone).
const seq = (n: number, sep: string): string => Array.from({ length: n }, (_, i) => `${i + 1}${sep}`).join("");
const hash = (alg: string, s: string): string => createHash(alg).update(s).digest("hex");
function sumSquares(n: number): bigint { let s = 0n; for (let i = 0n; i < BigInt(n); i++) s += i * i; return s; }
function awkSum(): string { let s = 0; for (let i = 1; i <= 50000; i++) s += i / 3; return s.toFixed(4); } // doubles, as awk
const KNOWN: (string | undefined)[] = [
  `${hash("sha256", seq(20000, "\n"))}  -`,
  `${hash("md5", seq(20000, ","))}  /tmp/gen\n${seq(20000, ",").length}`,
  `${12345 * 6789} ${0x7fffffff * 3} -3 -2 ${2 ** 40}`,
  `${sumSquares(1000)}`,
  awkSum(),
  undefined, // sha256sum /init: initSha256(), once the guest is there
];

function initSha256(): string {
  const init = readNewc(gunzipSync(readFileSync(g.need().initrd))).find((e) => e.path === "init");
  assert.ok(init?.type === "file" && init.data, "the initramfs has an /init file");
  return `${createHash("sha256").update(init.data).digest("hex")}  /init`;
}

function debian(): { kernel: Uint8Array; initrd: Uint8Array } {
  const d = g.need();
  return { kernel: readFileSync(d.kernel), initrd: readFileSync(d.initrd) };
}

const norm = (s: string): string => s.replace(/\r/g, "").replace(/\x1b\[6n/g, "").trimEnd();

interface Ran { outputs: string[]; instructions: number; translatedInsns: number; translatedRuns: number; bootS: number }

// Boots `vm`, runs COMMANDS at its shell, samples its counters and powers it off.
async function drive(host: Host, vm: Vm, con: GuestConsole): Promise<Ran> {
  const t0 = performance.now();
  host.start(vm);
  await shell(vm, con, BOOT_MS);
  const bootS = (performance.now() - t0) / 1000;
  const outputs: string[] = [];
  const ms: number[] = [];
  for (const c of COMMANDS) {
    const c0 = performance.now();
    outputs.push(norm(await command(vm, con, c, CMD_MS)));
    ms.push(Math.round(performance.now() - c0));
  }
  if (process.env.JIT_TEST_VERBOSE) console.log(`${vm.name}: commands took ${ms.join(", ")} ms`);
  const s = host.stats().vms.find((v) => v.name === vm.name)!;
  const hart = s.cpus[0]!.hart;
  vm.input(new TextEncoder().encode("poweroff -f\n"));
  const r = await vm.finished;
  assert.equal(r.status, 0, `${vm.name} powered off cleanly: ${r.reason}\n${con.tail()}`);
  return { outputs, instructions: Number(s.instructions), translatedInsns: hart.translatedInsns ?? NaN, translatedRuns: hart.translatedRuns ?? NaN, bootS };
}

function checkKnown(outputs: string[], what: string): void {
  KNOWN[COMMANDS.length - 1] ??= initSha256();
  for (const [i, want] of KNOWN.entries()) assert.equal(outputs[i], want, `${what}: ${COMMANDS[i]}`);
  for (const [i, o] of outputs.entries()) assert.ok(o.length > 0, `${what}: '${COMMANDS[i]}' printed something`);
}

function checkTranslated(ran: Ran, j: JitStats | undefined, what: string): void {
  assert.ok(j, `${what}: the physical CPU has a translator`);
  assert.ok(j.translations > 0, `${what}: translations ${j.translations}`);
  assert.equal(j.compileErrors, 0, `${what}: V8 refused ${j.compileErrors} translated modules`);
  const share = ran.translatedInsns / ran.instructions;
  assert.ok(share > 0.8, `${what}: only ${(100 * share).toFixed(1)}% of ${ran.instructions} instructions retired in translated code`);
  assert.ok(ran.translatedRuns > 0);
}

// The machine's code map (src/machine/memory.ts codeTrack): per frame, 1 = some translator
// translated code in it, 2 = written since.
function codeMarks(mem: MachineMemory): Uint8Array {
  return new Uint8Array(mem.memory.buffer, mem.codeTrack.dirty, mem.capacityFrames).slice();
}

function ramFrames(vm: Vm): number[] {
  return Array.from({ length: vm.ram.frames }, (_, i) => vm.ram.machineFrame(i));
}

let reference: string[] | undefined; // the first VM's outputs (translated), for the CLI runs

test("jit on: Debian boots and answers translated; a second VM on the first one's freed frames runs none of its translations", { skip: g.skip, timeout: 240_000 }, async () => {
  const { kernel, initrd } = debian();
  const host = new Host({ pcpus: 1, jit: true });
  const mem = host.machine.mem;
  try {
    const con1 = new GuestConsole();
    const vm1 = host.createVm({ name: "jit1", kernel, initrd, cmdline: DEFAULT_CMDLINE, memBytes: MEM_MIB * MiB, cpus: 1, virt: "trap-and-emulate", console: con1.sink });
    const ran1 = await drive(host, vm1, con1);
    checkKnown(ran1.outputs, "jit1");
    const j1 = host.stats().pcpus[0]!.jit;
    checkTranslated(ran1, j1, "jit1");
    reference = ran1.outputs;
    // The only VM so far: every live translation is counted to it.
    assert.ok(j1!.liveBytes > 0, "jit1 left translated code");
    assert.equal(vm1.stats().translatedCodeBytes, j1!.liveBytes, "jit1's translated code is all the translator holds");

    // Frames holding translated code, marked so, and not (all) written since: the marks the
    // destroy below must add are not there yet.
    const frames1 = ramFrames(vm1);
    const before = codeMarks(mem);
    const translated = frames1.filter((f) => (before[f]! & 1) !== 0);
    assert.ok(translated.length > 50, `only ${translated.length} of jit1's frames hold translated code`);
    assert.ok(translated.some((f) => (before[f]! & 2) === 0), "every translated frame of jit1 already marked written");
    await host.destroy(vm1);
    const after = codeMarks(mem);
    const unmarked = translated.filter((f) => (after[f]! & 3) !== 3);
    assert.deepEqual(unmarked, [], "frames of jit1 with translated code were freed without being marked written");
    const live1 = host.stats().pcpus[0]!.jit!.live, inv1 = host.stats().pcpus[0]!.jit!.invalidated;
    assert.ok(live1 > 1000, `jit1 left ${live1} live translations`);

    // The second VM: the same guest, its RAM on the frames jit1 gave back, in another order (so
    // a frame now holds other code or data than it did, at another guest address).
    const con2 = new GuestConsole();
    const vm2 = host.createVm({ name: "jit2", kernel, initrd, cmdline: DEFAULT_CMDLINE, memBytes: MEM_MIB * MiB, cpus: 1, virt: "trap-and-emulate", scatterSeed: 7, console: con2.sink });
    const frames2 = ramFrames(vm2);
    const old = new Set(frames1);
    const reused = frames2.filter((f) => old.has(f)).length;
    const inNew = new Set(frames2);
    const translatedReused = translated.filter((f) => inNew.has(f)).length;
    assert.ok(reused > frames2.length / 2 && translatedReused > translated.length / 2,
      `jit2's RAM reuses only ${reused} of jit1's ${frames1.length} frames, ${translatedReused} of the ${translated.length} with translated code`);
    const moved = frames2.filter((f, i) => old.has(f) && frames1[i] !== f).length;
    assert.ok(moved > 0.9 * reused, `jit2's reused frames mostly hold other guest pages (${moved} of ${reused})`);

    // Its first runs drop every translation jit1 left (all were in frames jit1 freed).
    // (The translator's counters are published as each order ends; `checks` counts the checks
    // that found written frames, so it moves with the end of jit2's first order.)
    const checks1 = host.stats().pcpus[0]!.jit!.checks;
    const t0 = performance.now();
    const ran2p = drive(host, vm2, con2);
    ran2p.catch(() => {}); // awaited below; a failure before that must not be unhandled
    await until("jit2's first run", () => host.stats().pcpus[0]!.jit!.checks > checks1, 30_000);
    const first = host.stats().pcpus[0]!.jit!;
    assert.ok(first.invalidated - inv1 >= live1, `jit2's first runs dropped ${first.invalidated - inv1} translations; jit1 left ${live1}`);
    const ran2 = await ran2p;
    const j2 = host.stats().pcpus[0]!.jit;
    checkTranslated(ran2, j2, "jit2");
    // jit1's translations were dropped by jit2's first runs: what is live now was made for jit2.
    const code2 = vm2.stats().translatedCodeBytes;
    assert.ok(code2 > 0 && code2 <= j2!.liveBytes, `jit2's translated code ${code2} bytes, the translator holds ${j2!.liveBytes}`);
    assert.ok(j2!.liveBytes <= j2!.maxLiveBytes, "the cache keeps within its bound");
    assert.deepEqual(ran2.outputs, ran1.outputs, "jit2 answers as jit1 did");
    assert.equal(norm(con2.text).includes("Oops"), false, `jit2 oopsed:\n${con2.tail()}`);
    console.log(`jit1: shell after ${ran1.bootS.toFixed(1)} s, ${(ran1.translatedInsns / ran1.instructions * 100).toFixed(1)}% of ${(ran1.instructions / 1e9).toFixed(2)}e9 translated; ` +
      `left ${live1} live translations in ${translated.length} frames; jit2 (reused ${reused} frames, ${translatedReused} of those): first runs dropped ${first.invalidated - inv1}, shell after ${ran2.bootS.toFixed(1)} s ` +
      `(${((performance.now() - t0) / 1000).toFixed(1)} s in all), ${(ran2.translatedInsns / ran2.instructions * 100).toFixed(1)}% translated; ` +
      `translator: ${j2!.translations} translations, ${j2!.invalidated} invalidated, ${(j2!.translateMs / 1000).toFixed(1)} s translating`);
    await host.destroy(vm2);
    assert.equal(mem.allocatedFrames, 0, "every frame came back");
  } finally {
    await host.close();
  }
});

// `ringvisor run` with COMMANDS piped: what each printed, split at the shell prompts.
function cliRun(args: string[]): { r: CliResult; outputs: string[]; ms: number } {
  const t0 = performance.now();
  const r = ringvisor(["run", "--mem", String(MEM_MIB), ...args], [...COMMANDS, "poweroff -f"].map((c) => `${c}\n`).join(""), CLI_MS);
  const ms = performance.now() - t0;
  const sess = session(r.stdout);
  const diag = sessionDiag(r.stdout, r.status, r.stderr, sess);
  assert.equal(r.status, 0, `ringvisor run ${args.join(" ")}: clean poweroff\n${diag}`);
  const { steps } = sess;
  assert.deepEqual(steps.map((s) => s.command), [...COMMANDS, "poweroff -f"], `each command at its own prompt\n${diag}`);
  return { r, outputs: steps.slice(0, COMMANDS.length).map((s) => norm(s.output)), ms };
}

const TRANSLATOR_LINE = /^ {2}pCPU (\d+) translator: ([\d,]+) translations .*$/gm;

test("jit off (ringvisor run --jit off --stats): the same outputs, nothing translated, no translator line", { skip: g.skip, timeout: CLI_MS + 10_000 }, () => {
  const json = join(dir, "off.json");
  const { r, outputs, ms } = cliRun(["--jit", "off", "--pcpus", "1", "--stats", "--stats-json", json]);
  checkKnown(outputs, "--jit off");
  if (reference) assert.deepEqual(outputs, reference, "the same outputs interpreted as translated");
  assert.deepEqual([...r.stderr.matchAll(TRANSLATOR_LINE)], [], `no translator line with --jit off:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /translator/);
  assert.match(r.stderr, /translatedInsns 0\b/, "the hart line says nothing ran translated");
  const st = JSON.parse(readFileSync(json, "utf8")) as { instructions: string; cpus: { hart: Record<string, number> }[]; pcpus: { jit?: JitStats }[] };
  assert.equal(st.pcpus.length, 1);
  assert.equal(st.pcpus[0]!.jit, undefined, "a physical CPU without a translator has no translator stats");
  assert.equal(st.cpus[0]!.hart.translatedInsns, 0);
  assert.equal(st.cpus[0]!.hart.translatedRuns, 0);
  assert.ok(Number(st.instructions) > 1e9, `a booted Debian retired ${st.instructions} instructions`);
  console.log(`--jit off: ${(ms / 1000).toFixed(1)} s`);
});

test("jit on (ringvisor run --jit on --pcpus 2 --stats): one translator line per physical CPU", { skip: g.skip, timeout: CLI_MS + 10_000 }, () => {
  const json = join(dir, "on.json");
  const { r, outputs, ms } = cliRun(["--jit", "on", "--pcpus", "2", "--stats", "--stats-json", json]);
  checkKnown(outputs, "--jit on");
  if (reference) assert.deepEqual(outputs, reference, "the same outputs as the in-process host's");
  const lines = [...r.stderr.matchAll(TRANSLATOR_LINE)];
  assert.deepEqual(lines.map((m) => m[1]), ["0", "1"], `a translator line for each of the 2 physical CPUs:\n${r.stderr}`);
  const made = lines.reduce((n, m) => n + Number(m[2]!.replace(/,/g, "")), 0);
  assert.ok(made > 0, "the translator lines count translations");
  assert.doesNotMatch(r.stderr, /COMPILE ERRORS/);
  const st = JSON.parse(readFileSync(json, "utf8")) as { instructions: string; cpus: { hart: Record<string, number> }[]; pcpus: { jit?: JitStats }[] };
  assert.equal(st.pcpus.length, 2);
  assert.equal(st.pcpus.reduce((n, p) => n + p.jit!.translations, 0), made, "the JSON and the lines agree");
  const share = st.cpus[0]!.hart.translatedInsns! / Number(st.instructions);
  assert.ok(share > 0.8, `only ${(100 * share).toFixed(1)}% translated`);
  console.log(`--jit on --pcpus 2: ${(ms / 1000).toFixed(1)} s, ${(100 * share).toFixed(1)}% translated`);
});
