// A hostile virtio driver beside a healthy one, in one host: VM A runs the guest kernel
// tests/guests/virtio-hostile.c, which breaks every rule of virtio-mmio and the split virtqueue it
// can against its own virtio-blk disk (loops, indices and buffers outside the table and RAM,
// bad indirect tables, bad queue configurations, descriptors rewritten in flight, garbage in every
// register); VM B, the default Debian guest, mounts its own ext4 disk, checks a file's sha256,
// writes a new file and syncs while A attacks. A must pass its own checks (every hostile action
// answered by DEVICE_NEEDS_RESET, the device working again after a reset); B must see no device
// error and read and write exactly what is on its disk; no machine frame outside the two VMs
// (filled with canaries first, as in isolation.test.ts) may change; and after the VMs are gone
// B's image holds the file B wrote and passes e2fsck, and A's image differs from what it was
// only in the one sector A wrote.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { Host } from "../../src/host/host.js";
import { DEFAULT_CMDLINE } from "../../src/cli/run.js";
import { RawImage } from "../../src/host/disks/raw.js";
import type { Vm } from "../../src/vm/vm.js";
import { ROOT } from "../helpers.js";
import { defaultGuest } from "./guest.js";
import { GuestConsole, command, shell, until } from "./console.js";

const g = await defaultGuest();
const MiB = 1 << 20;
const BOOT_MS = 150_000;
const CMD_MS = 90_000;
const CANARY = 0x3c;
const ELF = join(ROOT, "build/guests/virtio-hostile.elf");

// The kernel's entry in manifest.json (a Ringvisor-only kernel: not in the equivalence suite).
interface OnlyEntry { name: string; elf: string; checks: number }
const manifest = JSON.parse(readFileSync(join(ROOT, "tests/guests/manifest.json"), "utf8")) as { ringvisorOnly: OnlyEntry[] };
const entry = manifest.ringvisorOnly.find((k) => k.name === "virtio-hostile")!;

// e2fsprogs' tools: in PATH, or in the sbin directories a user's PATH may leave out.
function tool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin"];
  for (const d of dirs) if (d && existsSync(join(d, name))) return join(d, name);
  return undefined;
}
const MKE2FS = tool("mke2fs"), DEBUGFS = tool("debugfs"), E2FSCK = tool("e2fsck");
const skip = g.skip || (!(MKE2FS && DEBUGFS && E2FSCK) && "needs e2fsprogs (mke2fs, debugfs, e2fsck) to make and check the Debian guest's disk");

// What the kernel expects in sector 0 of its disk, and what it writes into sector 1 (see the
// header comment of tests/guests/virtio-hostile.c).
function sectorOf(s: string): Buffer {
  return Buffer.from(s.repeat(Math.ceil(512 / s.length)).slice(0, 512), "latin1");
}
const SECTOR0 = sectorOf("RINGVISOR-VIRTIO-TEST-DISK\n");
const SECTOR1 = sectorOf("VIRTIO-HOSTILE-WROTE-THIS\n");

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

test("a hostile virtio driver in one VM changes nothing for a Debian guest's disk beside it, nor any frame outside the two", { skip, timeout: 300_000 }, async () => {
  assert.ok(existsSync(ELF), `${ELF} was not built (tests/guests/build.sh)`);
  const dir = mkdtempSync(join(tmpdir(), "ringvisor-virtio-hostile-"));
  const host = new Host({ machineBytes: 512 * MiB });
  try {
    // A's disk: 1 MiB, the pattern in sector 0, zeros after it.
    const aImage = join(dir, "attacker.img");
    const aBefore = Buffer.alloc(MiB);
    SECTOR0.copy(aBefore, 0);
    writeFileSync(aImage, aBefore);
    // B's disk: ext4 made from a directory holding a file of random content.
    const content = join(dir, "content");
    mkdirSync(content);
    const data = randomBytes(MiB + 1234);
    writeFileSync(join(content, "data.bin"), data);
    const bImage = join(dir, "debian.img");
    const mk = spawnSync(MKE2FS!, ["-q", "-t", "ext4", "-d", content, bImage, "32M"], { encoding: "utf8" });
    assert.equal(mk.status, 0, `mke2fs: ${mk.stderr}`);

    const d = g.need();
    const errors = new Map<string, string[]>([["attacker", []], ["debian", []]]);
    const onDeviceError = (vm: string) => (device: string, reason: string): void => { errors.get(vm)!.push(`${device}: ${reason}`); };
    const aCon = new GuestConsole();
    const bCon = new GuestConsole();
    const a = host.createVm({
      name: "attacker", kernel: readFileSync(ELF), cmdline: "", memBytes: 64 * MiB, cpus: 1, virt: "trap-and-emulate",
      console: aCon.sink, scatterSeed: 17, disks: [{ name: "vda", backend: await RawImage.open(aImage, false) }], onDeviceError: onDeviceError("attacker"),
    });
    const b = host.createVm({
      name: "debian", kernel: readFileSync(d.kernel), initrd: readFileSync(d.initrd), cmdline: DEFAULT_CMDLINE, memBytes: 128 * MiB, cpus: 1,
      virt: "trap-and-emulate", console: bCon.sink, scatterSeed: 23, disks: [{ name: "vda", backend: await RawImage.open(bImage, false) }], onDeviceError: onDeviceError("debian"),
    });

    // Machine memory grows lazily: make all of it real now (every free frame allocated and given
    // back), so that the canaries cover the whole machine, not only what the VMs' creation grew it
    // to. (Not before creating them: their scattered RAM would then be spread over all of it,
    // leaving no contiguous run for the hypervisor's own blocks.)
    const mem = host.machine.mem;
    for (const f of mem.allocFrames(mem.freeFrameCount)) mem.free(f, 1);
    assert.equal(mem.bytes, mem.capacityBytes);

    // Canaries in every frame nobody holds, and fingerprints of each VM's p2m table. While the
    // VMs run, the hypervisor may hand some of those frames out (a vCPU's shadow page table pool
    // grows, and shrinks again when it idles; a physical CPU's translation map): every frame
    // allocated from here on is recorded, and the canaries are checked in all the others.
    const free = mem.freeFrames();
    assert.ok(free.length > 200 * MiB / 4096, `free frames to watch: ${free.length}`);
    for (const f of free) mem.bytesAt(f, 4096).fill(CANARY);
    const handedOut = new Set<number>();
    const allocFrames = mem.allocFrames.bind(mem);
    const allocContiguous = mem.allocContiguous.bind(mem);
    mem.allocFrames = (n, scattered, seed) => {
      const offs = allocFrames(n, scattered, seed);
      for (const o of offs) handedOut.add(o);
      return offs;
    };
    mem.allocContiguous = (n, alignFrames) => {
      const at = allocContiguous(n, alignFrames);
      for (let i = 0; i < n; i++) handedOut.add(at + i * 4096);
      return at;
    };
    const table = (vm: Vm): Uint8Array => mem.bytesAt(vm.ram.tableOffset, vm.ram.frames * 4);
    const tables = [a, b].map((vm) => sha256(table(vm)));

    // B boots first; A starts attacking when B's shell is up, and B's disk work begins at once.
    const t0 = performance.now();
    host.start(b);
    await shell(b, bCon, BOOT_MS);
    const tBoot = performance.now();
    const steps: string[] = [];
    let tA = 0;
    const run = async (cmd: string): Promise<string> => {
      const out = await command(b, bCon, cmd, CMD_MS);
      if (tA) steps.push(`${cmd.split(" ")[0]} ${((performance.now() - tA) / 1000).toFixed(2)}${a.state === "running" ? "" : " (attacker done)"}`);
      return out;
    };
    // Kernel messages stay in the log (checked below) instead of interleaving with the output.
    assert.equal(await run("dmesg -n 1; echo q=$?"), "q=0\n");
    host.start(a);
    tA = performance.now();
    let aEnd = 0;
    void a.finished.then(() => { aEnd = performance.now(); });
    const aRunningAtFirstCommand = a.state === "running";
    assert.equal(await run("mount /dev/vda /mnt && echo mounted"), "mounted\n");
    const aRunningAfterMount = a.state === "running";
    const sum1 = await run("sha256sum /mnt/data.bin");
    // Written and synced in one go, so that the data reaches the disk while A attacks.
    assert.equal(await run("head -c 1048576 /dev/urandom > /mnt/newfile && sync; echo w=$?"), "w=0\n");
    const newSum = /^([0-9a-f]{64}) {2}\/mnt\/newfile$/m.exec(await run("sha256sum /mnt/newfile"));
    // Read both back from the disk itself, not the page cache.
    assert.equal(await run("echo 3 > /proc/sys/vm/drop_caches; echo d=$?"), "d=0\n");
    const sum2 = await run("sha256sum /mnt/data.bin /mnt/newfile");
    assert.equal(await run("umount /mnt; echo u=$?"), "u=0\n");
    const ioErrors = await run("dmesg | grep -c -e 'I/O error' -e 'EXT4-fs error'");
    const tB = performance.now();

    await until("the attacker to finish", () => a.state !== "running", 120_000, () => aCon.tail());
    const aResult = await a.finished;
    const aOut = aCon.text;
    console.log(`Debian boot ${((tBoot - t0) / 1000).toFixed(1)} s; attacker ran ${((aEnd - tA) / 1000).toFixed(2)} s (started at Debian's prompt); ` +
      `Debian's disk work took ${((tB - tA) / 1000).toFixed(2)} s (overlap ${((Math.min(aEnd, tB) - tA) / 1000).toFixed(2)} s); each command done at (s): ${steps.join(", ")}`);

    // A: every check passed, and its device failed at least once per hostile action.
    assert.equal(aResult.status, 0, `the attacker passed its own checks:\n${aOut}`);
    assert.ok(aOut.startsWith("== guest virtio-hostile ==\n"), aOut);
    assert.ok(aOut.endsWith(`PASS ${entry.checks} checks\n`), aOut);
    const hostile = Number(/device still works after (\d+) hostile actions: \d+ checks ok/.exec(aOut)?.[1]);
    assert.ok(hostile >= 30, `the attacker counted its hostile actions (${hostile})`);
    const [aBlk, aRng] = a.stats().virtio;
    assert.equal(aBlk!.deviceId, 2);
    assert.ok(aBlk!.transport.errors >= hostile, `the attacker's disk went into DEVICE_NEEDS_RESET at least ${hostile} times (${JSON.stringify(aBlk!.transport)})`);
    assert.ok(aBlk!.transport.resets > aBlk!.transport.errors, "and was reset after each");
    assert.notEqual(aBlk!.lastError, undefined);
    assert.equal(errors.get("attacker")!.length, aBlk!.transport.errors, "every error was reported to the host");
    assert.ok(aBlk!.transport.ignored > 0, "the register writes it had no business making were ignored");
    assert.equal(aRng!.transport.errors, 0, "the attacker's entropy device was left alone");
    assert.ok(aRunningAtFirstCommand && aRunningAfterMount, "the attacker was running while Debian mounted its disk");

    // B: the same bytes as on the host, no device error, no I/O error in its log.
    assert.equal(sum1, `${sha256(data)}  /mnt/data.bin\n`, "Debian read data.bin as the host wrote it");
    assert.ok(newSum, "sha256sum of the new file");
    assert.equal(sum2, `${sha256(data)}  /mnt/data.bin\n${newSum[1]}  /mnt/newfile\n`, "both files read back from the disk");
    assert.equal(ioErrors.trim(), "0", "no I/O or ext4 errors in Debian's kernel log");
    const [bBlk] = b.stats().virtio;
    assert.equal(bBlk!.lastError, undefined, `Debian's disk saw no protocol error (${JSON.stringify(bBlk)})`);
    assert.deepEqual(b.stats().virtio.map((v) => v.transport.errors), b.stats().virtio.map(() => 0), "no error on any of Debian's devices");
    assert.deepEqual(errors.get("debian"), []);
    assert.ok(bBlk!.device.reads! > 0 && bBlk!.device.writes! > 0 && bBlk!.device.errors === 0, `Debian's disk was used (${JSON.stringify(bBlk!.device)})`);

    // Nothing outside the two VMs changed, nor their p2m tables.
    const watched = free.filter((f) => !handedOut.has(f));
    assert.ok(watched.length > free.length / 2, `${watched.length} of ${free.length} free frames still watched (${handedOut.size} handed out while the VMs ran)`);
    const canaryFrame = Buffer.alloc(4096, CANARY);
    const touched = watched.filter((f) => !Buffer.from(mem.buffer, f, 4096).equals(canaryFrame)).length;
    assert.equal(touched, 0, `${touched} frames outside both VMs changed`);
    console.log(`canaries: ${watched.length} frames watched, ${handedOut.size} handed out to the VMs or the host while they ran`);
    assert.deepEqual([a, b].map((vm) => sha256(table(vm))), tables, "the p2m tables are unchanged");

    // Destroyed, the VMs close their disks (flushed, unlocked) and give every frame back.
    b.input(new TextEncoder().encode("poweroff -f\n"));
    await until("Debian to power off", () => b.state !== "running", CMD_MS, () => bCon.tail());
    await host.destroy(a);
    await host.destroy(b);
    assert.equal(mem.allocatedFrames, 0, "destroying the VMs gave every frame back");
    assert.ok(!existsSync(`${aImage}.lock`) && !existsSync(`${bImage}.lock`), "both images unlocked");

    // A's image: only sector 1 changed (the hostile writes aimed at sector 2 never landed).
    const aAfter = readFileSync(aImage);
    const aExpect = Buffer.from(aBefore);
    SECTOR1.copy(aExpect, 512);
    assert.ok(aAfter.equals(aExpect), "the attacker's image is the original with sector 1 written");
    // B's image: the new file as B computed it, data.bin unchanged, and a clean file system.
    const cat = (path: string): Buffer => {
      const r = spawnSync(DEBUGFS!, ["-R", `cat ${path}`, bImage], { maxBuffer: 64 * MiB });
      assert.equal(r.status, 0, `debugfs cat ${path}: ${r.stderr}`);
      return r.stdout;
    };
    assert.equal(sha256(cat("/newfile")), newSum[1], "the file Debian wrote is on its image");
    assert.equal(sha256(cat("/data.bin")), sha256(data), "data.bin is unchanged on the image");
    const fsck = spawnSync(E2FSCK!, ["-fn", bImage], { encoding: "utf8" });
    assert.equal(fsck.status, 0, `e2fsck -fn: ${fsck.stdout}${fsck.stderr}`);
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
