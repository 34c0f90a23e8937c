// The archive's trust chain against a local mirror: a synthetic trixie/riscv64 archive on
// 127.0.0.1, signed with a throwaway key made here, whose public half is the only key in the
// keyring the pulls are given. InRelease first, Release+Release.gpg only when InRelease is
// absent, bad signatures always refused, unverified indexes only when allowed and then with a
// warning, Packages.xz by hash, and the cache without the network.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { xz } from "@napi-rs/lzma";
import { UserError } from "../../src/errors.js";
import { judge, splitClearsigned } from "../../src/host/images/archive.js";
import { ImageCache } from "../../src/host/images/cache.js";
import { DownloadError, download, newDownloadStats } from "../../src/host/images/download.js";
import { createReporter, type Reporter } from "../../src/host/images/progress.js";
import { DEFAULT_GUEST, ensureDefaultGuest, listCache, pullDefaultGuest, type PullOptions } from "../../src/host/images/pull.js";
import { DEBIAN_ROOT, cachedDebianRoot } from "../../src/host/images/userland.js";
import { busyboxPackage, kernelPackages, packagesIndex, sha256, type SyntheticPackage } from "./synthetic-archive.js";

const tmp = mkdtempSync(join(tmpdir(), "ringvisor-archive-"));
const have = (cmd: string): boolean => spawnSync(cmd, ["--version"]).status === 0;
const noGpg = !have("gpg") || !have("gpgv") ? "needs gpg and gpgv (sudo apt-get install gnupg gpgv)" : false;

// ---- a throwaway signing key (and a second one, not in the keyring) ----

const gnupg = join(tmp, "gnupg");
mkdirSync(gnupg, { mode: 0o700 });
after(() => {
  spawnSync("gpgconf", ["--homedir", gnupg, "--kill", "gpg-agent"]);
  rmSync(tmp, { recursive: true, force: true });
});
const ARCHIVE_KEY = "archive@ringvisor.test";
const OTHER_KEY = "intruder@ringvisor.test";
const keyring = join(tmp, "keyring.gpg");

function gpg(args: string[], input?: string): Buffer {
  const r = spawnSync("gpg", ["--batch", "--quiet", "--homedir", gnupg, "--pinentry-mode", "loopback", "--passphrase", "", ...args], { input });
  if (r.status !== 0) throw new Error(`gpg ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}
if (!noGpg) {
  gpg(["--quick-gen-key", `Ringvisor Test Archive <${ARCHIVE_KEY}>`, "ed25519", "sign", "never"]);
  gpg(["--quick-gen-key", `Someone Else <${OTHER_KEY}>`, "ed25519", "sign", "never"]);
  gpg(["--output", keyring, "--export", ARCHIVE_KEY]);
}
const signers = (keys: string[]): string[] => keys.flatMap((k) => ["--local-user", k]);
const clearsign = (text: string, keys: string[]): Buffer => gpg(["--clearsign", ...signers(keys)], text);
const detachSign = (text: string, keys: string[]): Buffer => gpg(["--detach-sign", "--armor", ...signers(keys)], text);

// ---- the mirror ----

class Mirror {
  readonly files = new Map<string, Buffer>();
  readonly requests: string[] = [];
  // Runs after each response; a test uses it to change the archive mid-pull.
  afterServe?: (path: string) => void;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<Mirror> {
    let self: Mirror | undefined;
    const server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).replace(/^\/debian\//, "");
      self!.requests.push(path);
      const body = self!.files.get(path);
      res.writeHead(body ? 200 : 404, { "content-length": body ? body.length : 9 });
      res.end(body ?? "not found");
      self!.afterServe?.(path);
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    self = new Mirror(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/debian`);
    return self;
  }

  asked(re: RegExp): string[] {
    return this.requests.filter((p) => re.test(p));
  }

  close(): Promise<void> {
    return new Promise((ok) => this.server.close(() => ok()));
  }
}

const DISTS = "dists/trixie";
const PACKAGES_PATH = `${DISTS}/main/binary-riscv64/Packages.xz`;
const byHashPath = (sha: string): string => `${DISTS}/main/binary-riscv64/by-hash/SHA256/${sha}`;

interface Archive {
  kver: string;
  packagesXz: Buffer;
  release: string;
}

async function archiveIndex(kver: string, version: string): Promise<{ pkgs: SyntheticPackage[]; packagesXz: Buffer }> {
  const { meta, image } = await kernelPackages(kver, version);
  const pkgs = [await busyboxPackage("1:1.37.0-6+b5"), meta, image];
  return { pkgs, packagesXz: await xz.compress(Buffer.from(packagesIndex(pkgs))) };
}

function releaseText(packagesXz: Buffer, o: { acquireByHash?: boolean; validUntil?: string; date?: Date } = {}): string {
  const date = (o.date ?? new Date()).toUTCString().replace("GMT", "UTC");
  return (
    "Origin: Debian\nLabel: Debian\nSuite: stable\nVersion: 13.9\nCodename: trixie\n" +
    `Date: ${date}\n${o.validUntil ? `Valid-Until: ${o.validUntil}\n` : ""}${o.acquireByHash === false ? "" : "Acquire-By-Hash: yes\n"}` +
    "Architectures: riscv64\nComponents: main\nDescription: Ringvisor's synthetic test archive\n" +
    `SHA256:\n ${sha256(packagesXz)} ${String(packagesXz.length).padStart(8)} main/binary-riscv64/Packages.xz\n`
  );
}

interface PublishOptions {
  kver?: string;
  version?: string;
  // good: signed by the archive key and by a key not in the keyring (Debian too signs with
  // several keys); tampered: the signed text changed afterwards to vouch for another index;
  // other-key: signed only by a key not in the keyring; unsigned-wrapper: a good InRelease with
  // unsigned text in front that vouches for another index.
  inRelease?: "good" | "tampered" | "other-key" | "unsigned-wrapper" | "none";
  // stale: a signature of an older Release text, as on deb.debian.org when Release moved on.
  releaseGpg?: "good" | "stale" | "none";
  byHash?: boolean;
  acquireByHash?: boolean;
  validUntil?: string;
}

// Publishes a trixie archive with one kernel; by-hash copies of earlier indexes stay, as on a
// real mirror.
async function publish(m: Mirror, o: PublishOptions = {}): Promise<Archive> {
  const kver = o.kver ?? "6.12.57+deb13-riscv64";
  const { pkgs, packagesXz } = await archiveIndex(kver, o.version ?? "6.12.57-1");
  for (const p of pkgs) m.files.set(p.filename, p.deb);
  m.files.set(PACKAGES_PATH, packagesXz);
  if (o.byHash ?? true) m.files.set(byHashPath(sha256(packagesXz)), packagesXz);
  const release = releaseText(packagesXz, o);
  m.files.set(`${DISTS}/Release`, Buffer.from(release));

  const inRelease = o.inRelease ?? "good";
  const evil = await archiveIndex("6.6.6-evil-riscv64", "6.6.6-1");
  if (inRelease !== "good" && inRelease !== "none") {
    m.files.set(PACKAGES_PATH, evil.packagesXz);
    m.files.set(byHashPath(sha256(evil.packagesXz)), evil.packagesXz);
    for (const p of evil.pkgs) m.files.set(p.filename, p.deb);
  }
  const good = (): Buffer => clearsign(release, [ARCHIVE_KEY, OTHER_KEY]);
  if (inRelease === "none") m.files.delete(`${DISTS}/InRelease`);
  else if (inRelease === "good") m.files.set(`${DISTS}/InRelease`, good());
  else if (inRelease === "other-key") m.files.set(`${DISTS}/InRelease`, clearsign(releaseText(evil.packagesXz, o), [OTHER_KEY]));
  else if (inRelease === "tampered") m.files.set(`${DISTS}/InRelease`, Buffer.from(good().toString().replace(sha256(packagesXz), sha256(evil.packagesXz))));
  else m.files.set(`${DISTS}/InRelease`, Buffer.concat([Buffer.from(`${releaseText(evil.packagesXz, o)}\n`), good()]));

  const releaseGpg = o.releaseGpg ?? "stale";
  if (releaseGpg === "none") m.files.delete(`${DISTS}/Release.gpg`);
  else {
    const older = releaseText(packagesXz, { ...o, date: new Date(Date.now() - 3 * 86400_000) });
    m.files.set(`${DISTS}/Release.gpg`, detachSign(releaseGpg === "good" ? release : older, [ARCHIVE_KEY]));
  }
  return { kver, packagesXz, release };
}

// ---- pulls ----

function recorder(): { reporter: Reporter; notes: string[]; warnings: string[] } {
  const notes: string[] = [];
  const warnings: string[] = [];
  return { notes, warnings, reporter: { note: (s) => void notes.push(s), warn: (s) => void warnings.push(s), download: () => ({ advance() {}, done() {} }) } };
}

let caches = 0;
const newCache = (): string => join(tmp, `cache-${++caches}`);
const FAST = { backoffMs: 1, networkAttempts: 2 };

function options(m: Mirror, cacheDir: string, extra: Partial<PullOptions> = {}): PullOptions {
  return { mirror: m.url, cacheDir, env: {}, keyring, reporter: recorder().reporter, network: FAST, ...extra };
}

// Every file under dir (recursively), relative to it.
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((p) => statSync(join(dir, p)).isFile());
}

function assertNothingKept(cacheDir: string): void {
  assert.deepEqual(filesUnder(join(cacheDir, "index")), [], "no index file of a refused archive stays in the cache");
  assert.deepEqual(filesUnder(join(cacheDir, "guests")), [], "nothing is built");
  assert.deepEqual(filesUnder(join(cacheDir, "debs")), [], "no package is downloaded");
}

const suite = { skip: noGpg };

test("InRelease is verified and used; a Release.gpg that does not match Release is never fetched", suite, async () => {
  const m = await Mirror.start();
  try {
    const a = await publish(m, { releaseGpg: "stale" });
    const cacheDir = newCache();
    const r = await pullDefaultGuest(options(m, cacheDir));
    assert.match(r.manifest.releaseSignature, /^verified: InRelease signed by Ringvisor Test Archive <archive@ringvisor\.test> \([0-9A-F]{40}\)$/);
    assert.equal(r.kernelVersion, a.kver);
    assert.equal(r.stats.built, true);
    assert.deepEqual(r.manifest.initrd.modules, [
      "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net", "virtio_balloon", "virtio_rng", "mbcache", "jbd2", "crc16", "ext4",
      "crc32c_generic", "9pnet", "9pnet_virtio", "netfs", "9p", "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
    ]);
    assert.deepEqual(r.manifest.initrd.builtin, ["virtio_console"]);
    assert.deepEqual(m.asked(/Release(\.gpg)?$/), [`${DISTS}/InRelease`], "apt's order: InRelease, and nothing else when it exists");
    // What the cache keeps is the text the signature covers, not the clearsigned wrapper.
    assert.equal(readFileSync(join(new ImageCache(cacheDir).indexDir(m.url, "trixie"), "Release"), "utf8"), a.release);
  } finally {
    await m.close();
  }
});

test("no InRelease (404): Release + Release.gpg are verified instead; a mismatched pair is refused", suite, async () => {
  const m = await Mirror.start();
  try {
    await publish(m, { inRelease: "none", releaseGpg: "good" });
    const r = await pullDefaultGuest(options(m, newCache()));
    assert.match(r.manifest.releaseSignature, /^verified: Release\+Release\.gpg signed by Ringvisor Test Archive/);
    assert.deepEqual(m.asked(/Release(\.gpg)?$/), [`${DISTS}/InRelease`, `${DISTS}/Release`, `${DISTS}/Release.gpg`]);

    await publish(m, { inRelease: "none", releaseGpg: "stale" });
    for (const allowUnverified of [false, true]) {
      const cacheDir = newCache();
      await assert.rejects(pullDefaultGuest(options(m, cacheDir, { allowUnverified })), (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.match(e.message, /^Release\+Release\.gpg from http:\/\/127\.0\.0\.1:\d+\/debian fail their signature check against .*keyring\.gpg \(BAD signature from Ringvisor Test Archive/);
        assert.match(e.message, /there is no InRelease: HTTP 404/);
        return true;
      });
      assertNothingKept(cacheDir);
    }
  } finally {
    await m.close();
  }
});

test("a bad InRelease is refused, allowUnverified or not: nothing is built and no unverified index stays", suite, async () => {
  const m = await Mirror.start();
  try {
    const why = { tampered: /BAD signature from Ringvisor Test Archive/, "other-key": /signed by key [0-9A-F]{16}, which is not in .*keyring\.gpg/, "unsigned-wrapper": /not a valid clearsigned file: it does not begin with -----BEGIN PGP SIGNED MESSAGE-----/ };
    for (const inRelease of ["tampered", "other-key", "unsigned-wrapper"] as const) {
      // A good Release + Release.gpg pair is there too: it must not be fallen back on.
      await publish(m, { inRelease, releaseGpg: "good" });
      for (const allowUnverified of [false, true]) {
        m.requests.length = 0;
        const cacheDir = newCache();
        await assert.rejects(pullDefaultGuest(options(m, cacheDir, { allowUnverified })), (e: unknown) => {
          assert.ok(e instanceof UserError, String(e));
          assert.match(e.message, /^InRelease from http:\/\/127\.0\.0\.1:\d+\/debian fails its signature check against /, inRelease);
          assert.match(e.message, why[inRelease], inRelease);
          assert.match(e.message, /Release\+Release\.gpg were not tried because InRelease exists/);
          return true;
        });
        assert.deepEqual(m.requests, [`${DISTS}/InRelease`], `${inRelease}: nothing else is fetched`);
        assertNothingKept(cacheDir);
      }
    }
  } finally {
    await m.close();
  }
});

test("an unsigned archive is refused; allowUnverified pulls it, warning every time it is used", suite, async () => {
  const m = await Mirror.start();
  try {
    const a = await publish(m, { inRelease: "none", releaseGpg: "none" });
    const cacheDir = newCache();
    await assert.rejects(pullDefaultGuest(options(m, cacheDir)), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /neither dists\/trixie\/InRelease nor dists\/trixie\/Release\.gpg \(HTTP 404\)/);
      assert.match(e.message, /pass --allow-unverified/);
      return true;
    });
    assertNothingKept(cacheDir);

    const rec = recorder();
    const r = await pullDefaultGuest(options(m, cacheDir, { allowUnverified: true, reporter: rec.reporter }));
    assert.equal(r.kernelVersion, a.kver);
    assert.match(r.manifest.releaseSignature, /^unverified \(the mirror has neither .*; Release\)$/);
    assert.equal(rec.warnings.length, 1);
    assert.match(rec.warnings[0], /Release file from .* is NOT verified/);

    // Using it again (cached index, cached build) warns again.
    const again = await pullDefaultGuest(options(m, cacheDir, { allowUnverified: true, reporter: rec.reporter }));
    assert.equal(again.stats.built, false);
    assert.equal(rec.warnings.length, 2);
    await ensureDefaultGuest(options(m, cacheDir, { allowUnverified: true, reporter: rec.reporter }));
    assert.equal(rec.warnings.length, 3);
    assert.match(rec.warnings[2], /built from indexes that were not verified/);

    // Without the opt-out, neither the cached index nor the build made from it is used.
    m.requests.length = 0;
    await assert.rejects(pullDefaultGuest(options(m, cacheDir)), /cannot verify the trixie index .*--allow-unverified/);
    await assert.rejects(ensureDefaultGuest(options(m, cacheDir)), /cannot verify the trixie index .*--allow-unverified/);
    assert.ok(m.requests.includes(`${DISTS}/InRelease`), "the mirror was asked again");

    // Once the mirror signs the same packages, the build is trusted as it is.
    await publish(m, { releaseGpg: "good" });
    const rec2 = recorder();
    const g = await ensureDefaultGuest(options(m, cacheDir, { reporter: rec2.reporter }));
    assert.equal(g.kernelVersion, a.kver);
    assert.deepEqual(rec2.warnings, []);
    const manifest = await new ImageCache(cacheDir).readManifest(DEFAULT_GUEST);
    assert.match(manifest!.releaseSignature, /^verified: InRelease/);
  } finally {
    await m.close();
  }
});

test("no gpgv, no keyring: errors that say what to install; allowUnverified goes on with a warning", suite, async () => {
  const m = await Mirror.start();
  const path = process.env.PATH;
  try {
    const a = await publish(m);
    const cacheDir = newCache();
    const emptyBin = join(tmp, "empty-bin");
    mkdirSync(emptyBin, { recursive: true });
    process.env.PATH = emptyBin;
    try {
      await assert.rejects(
        pullDefaultGuest(options(m, cacheDir)),
        /^UserError: cannot verify InRelease from .*: gpgv is not installed \(ENOENT\); install gpgv \(sudo apt-get install gpgv\), or pass --allow-unverified/,
      );
    } finally {
      process.env.PATH = path;
    }
    await assert.rejects(
      pullDefaultGuest(options(m, cacheDir, { keyring: join(tmp, "no-keyring.gpg") })),
      /cannot verify InRelease from .*: the keyring .*no-keyring\.gpg does not exist or cannot be read; name a keyring that exists, or pass --allow-unverified/,
    );
    await assert.rejects(
      pullDefaultGuest(options(m, cacheDir, { gpgv: join(tmp, "no-gpgv"), keyring: join(tmp, "no-keyring.gpg") })),
      /gpgv \(.*no-gpgv\) cannot be run \(ENOENT\) and the keyring .* does not exist .*; install gpgv \(sudo apt-get install gpgv\) and name a keyring that exists/,
    );
    assertNothingKept(cacheDir);

    const rec = recorder();
    const r = await pullDefaultGuest(options(m, cacheDir, { gpgv: join(tmp, "no-gpgv"), allowUnverified: true, reporter: rec.reporter }));
    assert.equal(r.kernelVersion, a.kver);
    assert.match(r.manifest.releaseSignature, /^unverified \(gpgv .* cannot be run \(ENOENT\); InRelease\)$/);
    assert.equal(rec.warnings.length, 1);
    assert.match(rec.warnings[0], /InRelease from .* is NOT verified/);
  } finally {
    process.env.PATH = path;
    await m.close();
  }
});

test("a quiet pull still prints its warnings", () => {
  let written = "";
  const stream = { isTTY: false, write: (s: string) => ((written += s), true) } as unknown as NodeJS.WriteStream;
  const r = createReporter({ quiet: true, stream });
  r.note("progress");
  r.warn("the index is not verified");
  assert.equal(written, "ringvisor: warning: the index is not verified\n");
});

test("Acquire-By-Hash: an index replaced mid-pull is fetched by its hash; without by-hash copies the plain path is used, and a swap is caught", suite, async () => {
  const m = await Mirror.start();
  try {
    // The mirror syncs right after serving InRelease: the plain Packages.xz is now the next one.
    const next = (await archiveIndex("6.12.58+deb13-riscv64", "6.12.58-1")).packagesXz;
    const swapAfterInRelease = (path: string): void => {
      if (path.endsWith("/InRelease")) m.files.set(PACKAGES_PATH, next);
    };
    const a = await publish(m);
    m.afterServe = swapAfterInRelease;
    const r = await pullDefaultGuest(options(m, newCache()));
    assert.equal(r.kernelVersion, a.kver, "the kernel of the index InRelease vouches for");
    assert.deepEqual(m.asked(/Packages\.xz$|by-hash/), [byHashPath(sha256(a.packagesXz))]);

    // No by-hash copies: the plain path is fetched after the by-hash 404.
    m.afterServe = undefined;
    m.files.clear();
    m.requests.length = 0;
    const b = await publish(m, { byHash: false });
    const rb = await pullDefaultGuest(options(m, newCache()));
    assert.equal(rb.kernelVersion, b.kver);
    assert.deepEqual(m.asked(/Packages\.xz$|by-hash/), [byHashPath(sha256(b.packagesXz)), PACKAGES_PATH]);

    // ... and if the plain path changes under the pull, its hash gives it away.
    m.afterServe = swapAfterInRelease;
    const cacheDir = newCache();
    await assert.rejects(pullDefaultGuest(options(m, cacheDir)), (e: unknown) => {
      assert.ok(e instanceof DownloadError);
      assert.match(e.message, /Packages\.xz failed verification 3 times \(.* has (SHA-256 [0-9a-f]{64}|\d+ bytes), the index says [0-9a-f\d]+\)/);
      return true;
    });
    assert.deepEqual(filesUnder(join(cacheDir, "guests")), []);
    assert.ok(!filesUnder(join(cacheDir, "index")).some((f) => f.endsWith("Packages.xz")), "the replaced index is not kept");

    // Without Acquire-By-Hash the plain path is the only one.
    m.afterServe = undefined;
    m.requests.length = 0;
    await publish(m, { acquireByHash: false });
    await pullDefaultGuest(options(m, newCache()));
    assert.deepEqual(m.asked(/Packages\.xz$|by-hash/), [PACKAGES_PATH]);
  } finally {
    await m.close();
  }
});

test("an InRelease past its Valid-Until is refused", suite, async () => {
  const m = await Mirror.start();
  try {
    await publish(m, { validUntil: "Sat, 01 Jan 2000 00:00:00 UTC" });
    const cacheDir = newCache();
    await assert.rejects(pullDefaultGuest(options(m, cacheDir)), /^UserError: InRelease from .* expired on Sat, 01 Jan 2000 00:00:00 GMT \(its Valid-Until\)/);
    assertNothingKept(cacheDir);
  } finally {
    await m.close();
  }
});

test("a stale cache follows the archive to a new kernel; offline, a complete verified cache still works", suite, async () => {
  const m = await Mirror.start();
  let up = true;
  try {
    const cacheDir = newCache();
    const a = await publish(m, { kver: "6.12.57+deb13-riscv64", version: "6.12.57-1" });
    const first = await pullDefaultGuest(options(m, cacheDir));
    assert.equal(first.kernelVersion, a.kver);

    const b = await publish(m, { kver: "6.12.60+deb13-riscv64", version: "6.12.60-1" });
    // A fresh index is trusted as it is: no request, nothing new.
    m.requests.length = 0;
    const fresh = await pullDefaultGuest(options(m, cacheDir));
    assert.equal(fresh.kernelVersion, a.kver);
    assert.deepEqual(m.requests, []);
    // A stale one is revalidated: the new kernel is downloaded and built, the old one removed.
    const second = await pullDefaultGuest(options(m, cacheDir, { maxIndexAgeMs: 0 }));
    assert.equal(second.kernelVersion, b.kver);
    assert.equal(second.stats.built, true);
    assert.equal(second.stats.debsDownloaded, 1, "busybox came from the cache");
    assert.deepEqual(filesUnder(join(cacheDir, "guests", DEFAULT_GUEST)).sort(), ["Image-6.12.60+deb13-riscv64", "initramfs-6.12.60+deb13-riscv64.cpio.gz", "manifest.json", "rootfs-6.12.60+deb13-riscv64.ext4"]);
    assert.equal(filesUnder(join(cacheDir, "debs")).length, 2, "the old kernel's package is gone");

    // The mirror goes away (its port is closed).
    await m.close();
    up = false;
    const e = await ensureDefaultGuest(options(m, cacheDir));
    assert.equal(e.kernelVersion, b.kver);
    const rec = recorder();
    const offline = await pullDefaultGuest(options(m, cacheDir, { maxIndexAgeMs: 0, reporter: rec.reporter }));
    assert.equal(offline.kernelVersion, b.kver);
    assert.equal(offline.stats.built, false);
    assert.equal(offline.stats.indexFromCache, true);
    assert.ok(rec.notes.some((n) => /index refresh failed \(the mirror is unreachable: .*ECONNREFUSED.*\); using the cached index/.test(n)), rec.notes.join("\n"));
    // A damaged build is rebuilt from the cached packages, byte for byte, still offline.
    rmSync(e.kernel);
    const rebuilt = await ensureDefaultGuest(options(m, cacheDir));
    assert.equal(sha256(readFileSync(rebuilt.kernel)), second.manifest.kernel.sha256);

    // With nothing cached, the error says that the mirror could not be reached at all.
    await assert.rejects(pullDefaultGuest(options(m, newCache())), (err: unknown) => err instanceof DownloadError && err.unreachable && /ECONNREFUSED/.test(err.message));
  } finally {
    if (up) await m.close();
  }
});

test("a cache that also holds a Debian root disk: the guest list is still the kernels, image ls shows both", suite, async () => {
  const m = await Mirror.start();
  try {
    const a = await publish(m);
    const cacheDir = newCache();
    await pullDefaultGuest(options(m, cacheDir));
    // What `image pull debian` leaves: a manifest of another shape beside the guest's.
    const dir = join(cacheDir, "guests", DEBIAN_ROOT);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "root-20261204T000000.img"), Buffer.alloc(4096));
    const root = { format: 1, name: DEBIAN_ROOT, suite: "trixie", arch: "riscv64", mirror: m.url, createdAt: "2026-12-04T00:00:00.000Z", recipe: "r",
      disk: { file: "root-20261204T000000.img", size: 4096 }, packages: ["apt", "dpkg", "openssh-server"], sshPublicKey: "ssh-ed25519 AAAA", firstBootSeconds: 1 };
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(root));
    const l = await listCache({ cacheDir });
    assert.deepEqual(l.guests.map((g) => g.name), [DEFAULT_GUEST]);
    assert.equal(cachedDebianRoot({ RINGVISOR_CACHE: cacheDir })?.disk, join(dir, "root-20261204T000000.img"));
    const ls = spawnSync(process.execPath, [fileURLToPath(new URL("../../src/cli/main.js", import.meta.url)), "image", "ls"], { encoding: "utf8", env: { ...process.env, RINGVISOR_CACHE: cacheDir } });
    assert.equal(ls.status, 0, ls.stderr);
    assert.ok(ls.stdout.includes(a.kver), ls.stdout);
    assert.match(ls.stdout, new RegExp(`${DEBIAN_ROOT}  Debian trixie, 3 packages`));
    // A build whose disk is gone is not offered as a backing file.
    rmSync(join(dir, "root-20261204T000000.img"));
    assert.equal(cachedDebianRoot({ RINGVISOR_CACHE: cacheDir }), undefined);
  } finally {
    await m.close();
  }
});

test("download errors: a refused connection is unreachable, a 404 is not and carries its status", async () => {
  const m = await Mirror.start();
  const url = `${m.url}/nothing`;
  await assert.rejects(download(url, join(tmp, "x"), { reporter: recorder().reporter, stats: newDownloadStats() }), (e: unknown) => e instanceof DownloadError && !e.unreachable && e.status === 404);
  await m.close();
  await assert.rejects(
    download(url, join(tmp, "x"), { reporter: recorder().reporter, stats: newDownloadStats(), networkAttempts: 2, backoffMs: 1 }),
    (e: unknown) => e instanceof DownloadError && e.unreachable && e.status === undefined,
  );
});

// ---- gpgv's verdict and the clearsigned format, on their own ----

const status = (...lines: string[]): string => lines.map((l) => `[GNUPG:] ${l}\n`).join("");
const FPR = "B8E5F13176D2A7A75220028078DBA3BC47EF2265";

test("judge: one good signature suffices, others by unknown keys are fine; bad, weak or unexplained ones are not", () => {
  const good = ["NEWSIG", "GOODSIG 78DBA3BC47EF2265 Debian Archive Automatic Signing Key (13/trixie) <ftpmaster@debian.org>", `VALIDSIG ${FPR} 2026-11-21 1795252581 0 4 0 1 8 01 ${FPR}`];
  const unknown = ["NEWSIG", "ERRSIG 6ED0E7B82643E131 1 8 01 1795252580 9 4CB50190207B4758A3F73A796ED0E7B82643E131", "NO_PUBKEY 6ED0E7B82643E131"];
  assert.deepEqual(judge({ code: 2, status: status(...unknown, ...good), stderr: "" }, "k.gpg"), {
    ok: true,
    signers: `Debian Archive Automatic Signing Key (13/trixie) <ftpmaster@debian.org> (${FPR})`,
  });
  const bad = judge({ code: 1, status: status(...good, "NEWSIG", "BADSIG 1234 Mallory"), stderr: "" }, "k.gpg");
  assert.deepEqual(bad, { ok: false, why: "BAD signature from Mallory" });
  const weak = judge({ code: 0, status: status(good[0], good[1], `VALIDSIG ${FPR} 2026-11-21 1795252581 0 4 0 1 2 01 ${FPR}`), stderr: "" }, "k.gpg");
  assert.equal(weak.ok, false);
  assert.match((weak as { why: string }).why, /weak digest SHA-1/);
  const onlyUnknown = judge({ code: 2, status: status(...unknown), stderr: "" }, "k.gpg");
  assert.deepEqual(onlyUnknown, { ok: false, why: "signed by key 6ED0E7B82643E131, which is not in k.gpg" });
  const expired = judge({ code: 2, status: status(...good, "NEWSIG", "EXPKEYSIG 99 Old Key"), stderr: "" }, "k.gpg");
  assert.equal(expired.ok, false, "a non-zero exit not explained by a missing key");
  assert.equal(judge({ code: 2, status: status(...good, "ERROR proc_pkt.plaintext 89_BAD_DATA"), stderr: "" }, "k.gpg").ok, false);
  assert.equal(judge({ code: 0, status: "", stderr: "" }, "k.gpg").ok, false, "no status at all is no verdict");
});

test("splitClearsigned: dash-escaping undone; anything unsigned around the message refused", () => {
  const msg = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\n- -- a dash line\n-----BEGIN PGP SIGNATURE-----\n\nabc=\n-----END PGP SIGNATURE-----\n";
  assert.deepEqual(splitClearsigned(msg), { text: "Origin: Debian\n-- a dash line\n" });
  assert.deepEqual(splitClearsigned(`\n${msg}\n`), { text: "Origin: Debian\n-- a dash line\n" });
  assert.equal(splitClearsigned(`Codename: trixie\n${msg}`), "it does not begin with -----BEGIN PGP SIGNED MESSAGE-----");
  assert.equal(splitClearsigned(`${msg}SHA256:\n`), "it has text after the signature");
  assert.equal(splitClearsigned(msg + msg), "it has text after the signature");
  assert.match(splitClearsigned(msg.replace("Hash: SHA256", "NotDashEscaped: yes")) as string, /unexpected armor header/);
  assert.equal(splitClearsigned(msg.slice(0, msg.indexOf("-----BEGIN PGP SIGNATURE"))), "it has no signature");
});
