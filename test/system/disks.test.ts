// Disks: the default Debian guest given virtio disks, raw and qcow2, driven at its shell. Images
// are real files checked with the real tools: ext4 made by mke2fs -d and read back by debugfs and
// e2fsck, qcow2 images checked by qemu-img check, overlays made by Ringvisor and by qemu-img
// (written by QEMU's qemu-io) read with identical content, a base image never written through
// an overlay, and a flush that is honest: a host killed with SIGKILL right after the guest's sync
// returned has lost nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Host } from "../../src/host/host.js";
import { openImage } from "../../src/host/disks/open.js";
import { createQcow2 } from "../../src/host/disks/qcow2.js";
import { readInput } from "../../src/cli/args.js";
import { CLI } from "../helpers.js";
import { defaultGuest } from "./guest.js";
import { GuestConsole, command, shell, until } from "./console.js";

const g = await defaultGuest();
const BOOT_MS = 180_000;
const CMD_MS = 120_000;
const OPTS = { skip: g.skip, timeout: 2 * BOOT_MS };
const dir = mkdtempSync(join(tmpdir(), "ringvisor-disks-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
// A file from an ext4 image, as debugfs reads it.
const debugfsCat = (img: string, file: string): Buffer => execFileSync("debugfs", ["-R", `cat ${file}`, img], { stdio: ["ignore", "pipe", "ignore"], maxBuffer: 64 << 20 });

// An ext4 image of 32 MiB holding `files`, made by mke2fs from a directory.
function ext4(name: string, files: Record<string, Uint8Array>): string {
  const root = join(dir, `${name}.d`);
  mkdirSync(root);
  for (const [f, data] of Object.entries(files)) writeFileSync(join(root, f), data);
  const img = join(dir, `${name}.raw`);
  run("mke2fs", ["-q", "-t", "ext4", "-d", root, img, "32M"]);
  return img;
}

// Boots the default guest in-process with the given images as /dev/vda, vdb, ...; runs `steps`
// at its shell, then powers it off and closes the disks.
async function withGuest(images: { path: string; readOnly?: boolean }[], steps: (cmd: (c: string) => Promise<string>) => Promise<void>): Promise<void> {
  const guest = g.need();
  const host = new Host({ machineBytes: 1 << 30 });
  const backends = [];
  for (const i of images) backends.push(await openImage(i.path, i.readOnly ?? false));
  const con = new GuestConsole();
  const vm = host.createVm({
    kernel: readInput(guest.kernel), initrd: readInput(guest.initrd), cmdline: "console=ttyS0 panic=-1 loglevel=1", memBytes: 256 << 20, cpus: 1,
    virt: "trap-and-emulate", console: con.sink, disks: backends.map((backend, n) => ({ name: `vd${"abcdefgh"[n]}`, backend })),
  });
  try {
    host.start(vm);
    await shell(vm, con, BOOT_MS);
    await steps((c) => command(vm, con, c, CMD_MS));
    for (const d of vm.stats().virtio) assert.equal(d.lastError, undefined, `${d.name} saw no protocol error`);
  } finally {
    await host.close();
  }
}

test("a raw ext4 disk: the guest reads the host's files, and what it writes is on the host after the run", OPTS, async () => {
  const blob = randomBytes(3 << 20);
  const img = ext4("raw1", { "blob": blob, "hello.txt": Buffer.from("hello from the host\n") });
  await withGuest([{ path: img }], async (cmd) => {
    assert.equal(await cmd("cat /sys/block/vda/size"), `${(32 << 20) / 512}\n`, "capacity in sectors");
    assert.equal(await cmd("echo $(cat /sys/block/vda/serial)"), "vda\n", "VIRTIO_BLK_T_GET_ID");
    assert.match(await cmd("mount /dev/vda /mnt && echo mounted"), /mounted\n$/);
    assert.equal(await cmd("cat /mnt/hello.txt"), "hello from the host\n");
    assert.equal(await cmd("sha256sum /mnt/blob"), `${sha(blob)}  /mnt/blob\n`);
    await cmd("seq 1 200000 > /mnt/seq.txt");
    await cmd("sync; umount /mnt");
  });
  const seq = Array.from({ length: 200000 }, (_, i) => `${i + 1}\n`).join("");
  assert.equal(debugfsCat(img, "/seq.txt").toString(), seq);
  run("e2fsck", ["-fn", img]);
  assert.ok(!existsSync(`${img}.lock`), "the write lock is gone with the VM");
});

test("qcow2 overlays: Ringvisor's over a raw base and qemu-img's written by qemu-io read the same in the guest; the base is never written; qemu-img check passes", OPTS, async () => {
  const blob = randomBytes(2 << 20);
  const base = ext4("base", { "blob": blob });
  const baseSha = sha(readFileSync(base));
  const ours = join(dir, "ours.qcow2");
  await createQcow2(ours, { sizeBytes: 32 << 20, backingFile: "base.raw", backingFormat: "raw" });
  // QEMU's own overlay, with a pattern QEMU wrote past the filesystem's data (sector 60000 on).
  const theirs = join(dir, "theirs.qcow2");
  run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", theirs]);
  run("qemu-io", ["-c", "write -P 0x5a 30M 512k", theirs]);
  const pattern = sha(Buffer.alloc(512 << 10, 0x5a));
  await withGuest([{ path: ours }, { path: theirs, readOnly: true }], async (cmd) => {
    assert.equal(await cmd("dd if=/dev/vdb bs=512k skip=60 count=1 2>/dev/null | sha256sum"), `${pattern}  -\n`, "QEMU's data through QEMU's overlay");
    assert.equal(await cmd("mount -o ro /dev/vdb /mnt && sha256sum /mnt/blob && umount /mnt"), `${sha(blob)}  /mnt/blob\n`, "the base through QEMU's overlay");
    assert.match(await cmd("mount /dev/vda /mnt && echo mounted"), /mounted\n$/);
    assert.equal(await cmd("sha256sum /mnt/blob"), `${sha(blob)}  /mnt/blob\n`, "the base through our overlay");
    // (Commands stay within the guest terminal's 80 columns: the shell wraps longer echoes.)
    await cmd("dd if=/dev/urandom of=/mnt/new bs=64k count=80 2>/dev/null");
    await cmd("sha256sum /mnt/new > /mnt/new.sha; sync");
    assert.match(await cmd("cat /mnt/new.sha"), /^[0-9a-f]{64}  \/mnt\/new\n$/);
    await cmd("umount /mnt");
  });
  assert.equal(sha(readFileSync(base)), baseSha, "the base image is unchanged");
  assert.match(run("qemu-img", ["check", ours]), /No errors were found on the image/);
  const flat = join(dir, "ours.flat");
  run("qemu-img", ["convert", "-O", "raw", ours, flat]);
  const newSha = debugfsCat(flat, "/new.sha").toString().split(" ")[0];
  assert.equal(sha(debugfsCat(flat, "/new")), newSha, "the file the guest wrote, as QEMU reads the overlay");
  run("e2fsck", ["-fn", flat]);
});

test("a writable image has one user: a second VM, in this host or another process, is refused", { timeout: 30_000 }, async () => {
  const img = join(dir, "locked.qcow2");
  await createQcow2(img, { sizeBytes: 1 << 20 });
  const first = await openImage(img, false);
  try {
    await assert.rejects(openImage(img, false), /already in use by another VM on this host/);
    const other = execFileSync(process.execPath, ["--input-type=module", "-e", `
      import { openImage } from ${JSON.stringify(new URL("../../src/host/disks/open.js", import.meta.url).href)};
      try { await openImage(${JSON.stringify(img)}, false); console.log("opened"); } catch (e) { console.log(e.message); }`], { encoding: "utf8" });
    assert.match(other, new RegExp(`in use by Ringvisor process ${process.pid}`));
    const ro = await openImage(img, true); // readers are not writers
    await ro.close();
  } finally {
    await first.close();
  }
  const again = await openImage(img, false); // the lock went with the first user
  await again.close();
});

test("sync, then SIGKILL: the host loses nothing the guest synced, and the qcow2 image passes qemu-img check", OPTS, async () => {
  // An empty ext4 made on the host, as a qcow2 image (made by qemu-img): every write the guest
  // makes allocates clusters in it through Ringvisor's qcow2 code.
  const img = join(dir, "killed.qcow2");
  run("qemu-img", ["convert", "-O", "qcow2", ext4("killed", {}), img]);
  const child = spawn(process.execPath, [CLI, "run", "--mem", "256", "--disk", img, "--on-eof", "wait"], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (b: Buffer) => { out += b.toString("latin1"); });
  child.stderr.on("data", () => undefined);
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  try {
    await until("the guest's shell", () => out.includes("~ # "), BOOT_MS, () => out.slice(-2000));
    // A file of known content, sync; the marker is printed only after sync has returned.
    child.stdin.write("mount /dev/vda /mnt && seq 1 100000 > /mnt/known && sync && echo SYNC''ED\n");
    await until("the sync", () => out.includes("SYNCED"), 2 * CMD_MS, () => out.slice(-2000));
    child.kill("SIGKILL");
    await exited;
  } finally {
    child.kill("SIGKILL");
  }
  assert.match(run("qemu-img", ["check", img]), /No errors were found on the image/);
  const flat = join(dir, "killed.flat");
  run("qemu-img", ["convert", "-O", "raw", img, flat]);
  const seq = Array.from({ length: 100000 }, (_, i) => `${i + 1}\n`).join("");
  assert.equal(debugfsCat(flat, "/known").toString(), seq);
  // The lock of the killed process is stale, and taken over.
  const b = await openImage(img, false);
  await b.close();
});

test("the default root disk: an overlay of image pull's ext4 boots with root=/dev/vda, and what the guest writes there is there at the next boot", OPTS, async () => {
  const rootfs = g.need().rootfs;
  assert.ok(rootfs && existsSync(rootfs), "image pull built the root disk");
  const before = sha(readFileSync(rootfs));
  const overlay = join(dir, "root.qcow2");
  await createQcow2(overlay, { sizeBytes: (await openImage(rootfs, true).then(async (b) => { const n = b.sizeBytes; await b.close(); return n; })), backingFile: rootfs, backingFormat: "raw" });
  const boot = async (steps: (cmd: (c: string) => Promise<string>) => Promise<void>): Promise<void> => {
    const guest = g.need();
    const host = new Host({ machineBytes: 1 << 30 });
    const con = new GuestConsole();
    const vm = host.createVm({
      kernel: readInput(guest.kernel), initrd: readInput(guest.initrd), cmdline: "console=ttyS0 panic=-1 loglevel=1 root=/dev/vda", memBytes: 256 << 20, cpus: 1,
      virt: "trap-and-emulate", console: con.sink, disks: [{ name: "vda", backend: await openImage(overlay, false) }],
    });
    try {
      host.start(vm);
      await shell(vm, con, BOOT_MS);
      assert.match(con.text, /ringvisor: root filesystem \/dev\/vda/);
      await steps((c) => command(vm, con, c, CMD_MS));
    } finally {
      await host.close();
    }
  };
  await boot(async (cmd) => {
    assert.match(await cmd("mount | grep ' / '"), /^\/dev\/vda on \/ type ext4 \(rw/);
    await cmd("echo kept-$((6*7)) > /root/note; sync");
  });
  await boot(async (cmd) => {
    assert.equal(await cmd("cat /root/note"), "kept-42\n");
  });
  assert.equal(sha(readFileSync(rootfs)), before, "the cached root disk is unchanged: the writes went to the overlay");
  assert.match(run("qemu-img", ["check", overlay]), /No errors were found on the image/);
});
