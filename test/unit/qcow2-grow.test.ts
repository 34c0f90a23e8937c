// A qcow2 image whose refcount table must grow: small clusters, a disk written beyond what one
// cluster of refcount table covers. Written through Ringvisor's qcow2 code, then checked by
// Debian's qemu-img (check: no errors, no leaks; convert: the same bytes as written). Both an
// image made by qemu-img and one made by Ringvisor (which used to refuse such a size).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Qcow2Image, createQcow2 } from "../../src/host/disks/qcow2.js";
import { openImage } from "../../src/host/disks/open.js";

const HAVE_QEMU_IMG = spawnSync("qemu-img", ["--version"]).status === 0;
const OPTS = { skip: HAVE_QEMU_IMG ? false : "qemu-img is not installed (bash scripts/setup.sh)" };
const dir = mkdtempSync(join(tmpdir(), "ringvisor-qcow2-grow-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const SIZE = 64 << 20;
// With 512-byte clusters one cluster of refcount table covers 64 blocks of 256 counts: 8 MiB of
// file. 10 MiB of data with its L2 tables takes the file well past that.
const WRITES = 10 << 20;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// Deterministic data in 64 KiB pieces at scattered, sector-aligned offsets (some overlapping,
// so rewrites of allocated clusters happen too); returns the disk's expected content.
async function fill(img: Qcow2Image): Promise<Buffer> {
  const expect = Buffer.alloc(SIZE);
  let x = 0x12345678;
  const next = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  for (let done = 0; done < WRITES; done += 65536) {
    const at = (next() % ((SIZE - 65536) / 512)) * 512;
    const data = Buffer.alloc(65536);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(next(), i);
    await img.write(at, data);
    data.copy(expect, at);
  }
  return expect;
}

async function writeAndCheck(path: string): Promise<void> {
  const img = await Qcow2Image.open(path, false, (p, f) => openImage(p, true, f));
  const expect = await fill(img);
  const back = Buffer.alloc(1 << 20);
  await img.read(SIZE / 2, back);
  assert.ok(back.equals(expect.subarray(SIZE / 2, SIZE / 2 + back.length)), "reads back what was written while open");
  const grew = img.refTableGrowths;
  await img.flush();
  await img.close();
  assert.ok(grew >= 1, `the refcount table grew (${grew} times)`);
  const check = spawnSync("qemu-img", ["check", path], { encoding: "utf8" });
  assert.equal(check.status, 0, `qemu-img check:\n${check.stdout}\n${check.stderr}`);
  assert.match(check.stdout, /No errors were found/);
  assert.doesNotMatch(check.stdout, /leaked/);
  const raw = join(dir, "out.raw");
  run("qemu-img", ["convert", "-O", "raw", path, raw]);
  assert.ok(readFileSync(raw).equals(expect), "qemu-img reads the same bytes");
  const info = JSON.parse(run("qemu-img", ["info", "--output=json", path])) as { "cluster-size": number };
  assert.equal(info["cluster-size"], 512);
}

test("an image made by qemu-img with 512-byte clusters, written past its refcount table's reach", OPTS, async () => {
  const path = join(dir, "theirs.qcow2");
  run("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=512", path, String(SIZE)]);
  await writeAndCheck(path);
  // Opened again (the header now names the new table), written again: still consistent.
  const img = await Qcow2Image.open(path, false, (p, f) => openImage(p, true, f));
  await img.write(0, Buffer.alloc(4096, 7));
  await img.close();
  const check = spawnSync("qemu-img", ["check", path], { encoding: "utf8" });
  assert.equal(check.status, 0, check.stdout + check.stderr);
});

test("an image made by Ringvisor with 512-byte clusters (a size it used to refuse)", OPTS, async () => {
  const path = join(dir, "ours.qcow2");
  await createQcow2(path, { sizeBytes: SIZE, clusterBits: 9 });
  await writeAndCheck(path);
});
