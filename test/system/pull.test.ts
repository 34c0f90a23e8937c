// The real pull: the default guest from the Debian mirror in the host's apt sources, verified
// against Debian's keyring, into the user's image cache (where every system test finds it: the
// guest is downloaded once per run, by whichever file asks first). The tests that abuse a cache
// work on a copy of it. The pipeline's logic against a local signed archive is in
// test/unit/archive.test.ts; this file shows it works against the real one.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { cacheRoot } from "../../src/host/images/cache.js";
import { readNewc } from "../../src/host/images/cpio.js";
import { modinfo } from "../../src/host/images/modules.js";
import { ensureDefaultGuest, pullDefaultGuest, type PullResult } from "../../src/host/images/pull.js";
import { parseImageHeader, planBoot, describeUnknown } from "../../src/vm/kernel.js";
import { ROOT } from "../helpers.js";
import { defaultGuest } from "./guest.js";

const tmp = mkdtempSync(join(tmpdir(), "ringvisor-pull-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const have = (cmd: string, args = ["--version"]): boolean => spawnSync(cmd, args).status === 0;
const MiB = 1n << 20n;

// Skipped together with every other guest test when the mirror cannot be reached at all.
const g = await defaultGuest();
const opts = { skip: g.skip, timeout: 600_000 };

// Asks the mirror for its index now (the cached one may be fresh), so the signature check runs
// against today's archive on every run.
let real: Promise<PullResult> | undefined;
const pulled = (): Promise<PullResult> => (real ??= pullDefaultGuest({ quiet: true, maxIndexAgeMs: 0 }));

// A private copy of the user's cache, for tests that damage it.
function cacheCopy(name: string): string {
  const dir = join(tmp, name);
  cpSync(cacheRoot(), dir, { recursive: true, filter: (src) => !/[/\\]lock$/.test(src) });
  return dir;
}

test("pull: Debian's kernel Image and a busybox initramfs with the virtio modules, verified", opts, async () => {
  const r = await pulled();
  assert.match(r.manifest.releaseSignature, /^verified/, "the index was checked against Debian's keyring");
  assert.match(r.kernelVersion, /^\d+\.\d+\.\d+.*-riscv64$/);
  const kernel = readFileSync(r.kernel);
  assert.equal(kernel.subarray(0, 2).toString("latin1"), "MZ");
  assert.equal(kernel.subarray(56, 60).toString("latin1"), "RSC\x05");
  assert.equal(BigInt(r.manifest.kernel.imageSize) >= BigInt(kernel.length), true, "image_size covers the file");

  const entries = new Map(readNewc(gunzipSync(readFileSync(r.initrd))).map((e) => [e.path, e]));
  assert.ok(entries.get("init")?.data?.length);
  const busybox = entries.get("bin/busybox")!.data!;
  assert.equal(Buffer.from(busybox.subarray(0, 4)).toString("latin1"), "\x7fELF");
  assert.equal(Buffer.from(busybox).readUInt16LE(18), 243, "busybox is a RISC-V binary");
  assert.deepEqual(entries.get("dev/console")?.rdev, [5, 1]);
  const mods = [...entries.keys()].filter((p) => p.endsWith(".ko")).map((p) => p.replace(/^.*\//, ""));
  for (const m of ["virtio_mmio.ko", "virtio_blk.ko", "failover.ko", "net_failover.ko", "virtio_net.ko", "virtio_balloon.ko"]) assert.ok(mods.includes(m), m);
  for (const p of entries.keys()) {
    if (!p.endsWith(".ko")) continue;
    const info = modinfo(entries.get(p)!.data!, p);
    assert.equal(info.get("vermagic")?.split(" ")[0], r.kernelVersion, `${p} matches the kernel`);
  }
  assert.deepEqual(r.manifest.initrd.modules, [
    "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net", "virtio_balloon", "virtio_rng", "jbd2", "mbcache", "crc16", "ext4",
    "crc32c_generic", "netfs", "9pnet", "9pnet_virtio", "9p", "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
  ]);
  assert.deepEqual(r.manifest.initrd.builtin, ["virtio_console"]);

  if (have("qemu-riscv64")) {
    const p = join(tmp, "busybox");
    writeFileSync(p, busybox);
    chmodSync(p, 0o755);
    const run = spawnSync("qemu-riscv64", [p, "echo", "hi from busybox"], { encoding: "utf8", timeout: 20_000 });
    assert.equal(run.stdout, "hi from busybox\n", run.stderr);
  }
});

test("pull: the real Debian kernel is recognised and placed per the boot protocol", opts, async () => {
  const kernel = new Uint8Array(readFileSync((await pulled()).kernel));
  const h = parseImageHeader(kernel);
  assert.ok(h, `no RISC-V Image header: ${describeUnknown(kernel)}`);
  assert.equal(h.textOffset, 0x20_0000n);
  assert.ok(h.imageSize >= BigInt(kernel.length) - 4096n, "image_size covers the file (plus bss)");
  const p = planBoot({ kernel, initrd: new Uint8Array(8 << 20), dtbSize: 4096, memBase: 0x8000_0000n, memSize: 512n * MiB });
  assert.equal(p.kernelAddr, 0x8020_0000n);
  assert.equal(p.initrdStart! % (2n * MiB), 0n);
});

test("pull: a second pull is served from cache without network", opts, async () => {
  const a = await pulled();
  const cacheDir = cacheCopy("second");
  const b = await pullDefaultGuest({ cacheDir, quiet: true });
  assert.equal(b.stats.requests, 0);
  assert.equal(b.stats.built, false);
  assert.equal(b.stats.debsFromCache, 2);
  assert.equal(b.manifest.kernel.sha256, a.manifest.kernel.sha256);
  // ensureDefaultGuest reads the manifest and verifies; nothing else.
  const e = await ensureDefaultGuest({ cacheDir, quiet: true, env: { RINGVISOR_MIRROR: "http://127.0.0.1:9/debian" } });
  assert.equal(e.kernelVersion, a.kernelVersion);
  assert.equal(e.busyboxVersion, a.busyboxVersion);
});

test("pull: a corrupted cached deb is detected and downloaded again", opts, async () => {
  const a = await pulled();
  const cacheDir = cacheCopy("corrupt");
  const deb = join(cacheDir, "debs", `${a.manifest.debs.busybox.sha256}.deb`);
  const bytes = readFileSync(deb);
  bytes[bytes.length >> 1] ^= 0x40;
  writeFileSync(deb, bytes);
  const b = await pullDefaultGuest({ cacheDir, quiet: true });
  assert.equal(b.stats.debsDownloaded, 1);
  assert.equal(b.stats.debsFromCache, 1);
  assert.equal(createHash("sha256").update(readFileSync(deb)).digest("hex"), a.manifest.debs.busybox.sha256);
});

test("ensureDefaultGuest: a damaged initramfs is rebuilt offline, byte for byte", opts, async () => {
  const a = await pulled();
  const cacheDir = cacheCopy("damaged");
  const initrd = join(cacheDir, "guests", a.manifest.name, a.manifest.initrd.file);
  writeFileSync(initrd, readFileSync(initrd).subarray(0, 1000));
  // No mirror is reachable: the rebuild must come from the cached packages.
  const e = await ensureDefaultGuest({ cacheDir, quiet: true, env: { RINGVISOR_MIRROR: "http://127.0.0.1:9/debian" } });
  assert.equal(createHash("sha256").update(readFileSync(e.initrd)).digest("hex"), a.manifest.initrd.sha256);
});

test("cli: image ls shows the cached guest; a bad --mirror is a user error", opts, async () => {
  const a = await pulled();
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, "dist/src/cli/main.js"), ...args], { encoding: "utf8", env: { ...process.env, RINGVISOR_CACHE: cacheRoot() } });
  const ls = cli("image", "ls");
  assert.equal(ls.status, 0, ls.stderr);
  assert.ok(ls.stdout.includes(a.kernelVersion) && ls.stdout.includes(a.kernel) && ls.stdout.includes("busybox-static"), ls.stdout);
  const bad = cli("image", "pull", "--mirror", "not a url");
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /is not a URL/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /);
});
