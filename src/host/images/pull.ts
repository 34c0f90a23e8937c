// The default guest: Debian trixie's riscv64 kernel and busybox-static, turned into a flat kernel
// Image and an initramfs in the image cache. `pullDefaultGuest` brings the cache up to date with
// the mirror; `ensureDefaultGuest` returns what is cached if it verifies and pulls otherwise.
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ImageError } from "../../errors.js";
import { ARCH, SUITE, isVerified, selectPackages, type NetworkOptions } from "./archive.js";
import { ImageCache, cacheRoot, sha256File, verifyFile, writeAtomic, type DebRecord, type GuestManifest } from "./cache.js";
import { debDataTar, extractTar } from "./deb.js";
import type { PackageInfo } from "./debian.js";
import { download, newDownloadStats, type DownloadStats } from "./download.js";
import { buildInitramfs, initramfsEntries, initramfsRecipe } from "./initramfs.js";
import { buildRootfs } from "./rootfs.js";
import { flatKernelImage } from "./kernel.js";
import { resolveMirror } from "./mirror.js";
import { collectModules } from "./modules.js";
import { createReporter, formatBytes, type Reporter } from "./progress.js";

export const DEFAULT_GUEST = `debian-${SUITE}-${ARCH}`;

// What the guest needs from modules (Debian builds the virtio drivers as modules); those the kernel builds
// in are skipped, and dependencies are added.
export const GUEST_MODULES: readonly string[] = [
  "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net", "virtio_balloon", "virtio_console", "virtio_rng",
  "ext4", "crc32c_generic", // a root or data disk (ext4 asks the crypto API for crc32c by name)
  "9pnet_virtio", "9p", // host folders shared into the guest
  "vmw_vsock_virtio_transport", // the guest agent's channel
];

// The guest agent built by scripts/build.sh (build/guest/rv-agent), if there is one.
const AGENT = fileURLToPath(new URL("../../../../build/guest/rv-agent", import.meta.url));
export function guestAgent(): Uint8Array | undefined {
  try {
    return readFileSync(AGENT);
  } catch {
    return undefined;
  }
}

export interface PullOptions {
  mirror?: string;
  quiet?: boolean;
  // Defaults to cacheRoot(env).
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  reporter?: Reporter;
  // A cached index younger than this is used without asking the mirror.
  maxIndexAgeMs?: number;
  // The keyring the suite's InRelease (or Release.gpg) must be signed with; Debian's archive
  // keyring by default.
  keyring?: string;
  // The gpgv program (a name looked up in PATH, or a path); "gpgv" by default.
  gpgv?: string;
  // Go on when the index cannot be verified (the mirror signs nothing, gpgv or the keyring is
  // missing), with a warning each time, even when quiet; "unverified (...)" goes into the
  // manifest. A bad signature is refused regardless.
  allowUnverified?: boolean;
  // Retry policy of every download (tests make it short).
  network?: NetworkOptions;
}

export interface DefaultGuest {
  kernel: string;
  initrd: string;
  // The root disk (ext4, raw): boot it with root=/dev/vda, through an overlay (disk create --backing).
  rootfs?: string;
  kernelVersion: string;
  busyboxVersion: string;
}

export interface PullStats extends DownloadStats {
  indexFromCache: boolean;
  debsFromCache: number;
  debsDownloaded: number;
  built: boolean;
  seconds: number;
}

export interface PullResult extends DefaultGuest {
  manifest: GuestManifest;
  stats: PullStats;
}

interface Context {
  cache: ImageCache;
  reporter: Reporter;
  stats: PullStats;
  network?: NetworkOptions;
}

function context(opts: PullOptions): Context {
  return {
    cache: new ImageCache(opts.cacheDir ?? cacheRoot(opts.env)),
    reporter: opts.reporter ?? createReporter({ quiet: opts.quiet }),
    stats: { ...newDownloadStats(), indexFromCache: false, debsFromCache: 0, debsDownloaded: 0, built: false, seconds: 0 },
    network: opts.network,
  };
}

// Brings the default guest up to date with the mirror's index (a fresh cached index counts as
// the mirror's) and verifies every cached file on the way.
export async function pullDefaultGuest(opts: PullOptions = {}): Promise<PullResult> {
  const ctx = context(opts);
  const t0 = performance.now();
  await ctx.cache.prepare();
  const manifest = await ctx.cache.withLock(
    async () => {
      const mirror = resolveMirror({ flag: opts.mirror, env: opts.env });
      ctx.reporter.note(`mirror: ${mirror.url} (from ${mirror.from})`);
      const sel = await selectPackages(mirror.url, {
        cache: ctx.cache,
        reporter: ctx.reporter,
        stats: ctx.stats,
        maxAgeMs: opts.maxIndexAgeMs,
        keyring: opts.keyring,
        gpgv: opts.gpgv,
        allowUnverified: opts.allowUnverified,
        network: opts.network,
      });
      ctx.stats.indexFromCache = sel.indexFromCache;
      const debs = { kernel: debRecord(sel.kernel), busybox: debRecord(sel.busybox) };
      for (const d of [debs.kernel, debs.busybox]) await ensureDeb(ctx, d, () => mirror.url);
      const old = await ctx.cache.readManifest(DEFAULT_GUEST);
      if (old && sameDebs(old, debs) && (await upToDate(ctx.cache, old))) {
        ctx.reporter.note(`${DEFAULT_GUEST}: up to date (kernel ${old.kernel.version}, busybox ${old.busybox.version})`);
        // The same packages, now vouched for by a verified index: so is the build.
        if (!isVerified(old.releaseSignature) && isVerified(sel.releaseSignature)) {
          const upgraded = { ...old, releaseSignature: sel.releaseSignature };
          await ctx.cache.writeManifest(upgraded);
          return upgraded;
        }
        return old;
      }
      return build(ctx, debs, { mirror: mirror.url, releaseSignature: sel.releaseSignature });
    },
    (pid) => ctx.reporter.note(`waiting for process ${pid}, which is using the image cache ${ctx.cache.root}`),
  );
  ctx.stats.seconds = (performance.now() - t0) / 1000;
  return { ...describe(ctx.cache, manifest), manifest, stats: ctx.stats };
}

// The kernel and initramfs of the default guest, pulled on first use. When the cache holds a
// build that verifies (from a verified index, unless unverified ones are allowed), no lock is
// taken and the network is not used.
export async function ensureDefaultGuest(opts: PullOptions = {}): Promise<DefaultGuest> {
  const ctx = context(opts);
  // A build from unverified indexes is used only when allowed, and then never silently.
  const trusted = (m: GuestManifest): boolean => isVerified(m.releaseSignature) || opts.allowUnverified === true;
  const use = (m: GuestManifest): DefaultGuest => {
    if (!isVerified(m.releaseSignature)) {
      ctx.reporter.warn(`using ${DEFAULT_GUEST} (kernel ${m.kernel.version}), built from indexes that were not verified (${m.releaseSignature}), because unverified indexes are allowed`);
    }
    return describe(ctx.cache, m);
  };
  const ready = await ctx.cache.readManifest(DEFAULT_GUEST);
  if (ready && trusted(ready) && (await upToDate(ctx.cache, ready))) return use(ready);
  if (ready && !trusted(ready)) ctx.reporter.note(`${DEFAULT_GUEST} was built from unverified indexes (${ready.releaseSignature}); pulling it again from a verified index`);
  await ctx.cache.prepare();
  const rebuilt = await ctx.cache.withLock(async () => {
    const m = await ctx.cache.readManifest(DEFAULT_GUEST);
    if (!m || !trusted(m)) return undefined;
    if (await upToDate(ctx.cache, m)) return m;
    // The packages are known: rebuild from them (from cache if they verify) without the index.
    const mirror = (): string => {
      try {
        return resolveMirror({ flag: opts.mirror, env: opts.env }).url;
      } catch (e) {
        if (m.mirror) return m.mirror;
        throw e;
      }
    };
    for (const d of [m.debs.kernel, m.debs.busybox]) await ensureDeb(ctx, d, mirror);
    return build(ctx, m.debs, { mirror: m.mirror, releaseSignature: m.releaseSignature });
  });
  if (rebuilt) return use(rebuilt);
  return pullDefaultGuest(opts);
}

function describe(cache: ImageCache, m: GuestManifest): DefaultGuest {
  const dir = cache.guestDir(m.name);
  return { kernel: join(dir, m.kernel.file), initrd: join(dir, m.initrd.file), rootfs: m.rootfs ? join(dir, m.rootfs.file) : undefined, kernelVersion: m.kernel.version, busyboxVersion: m.busybox.version };
}

function debRecord(p: PackageInfo): DebRecord {
  return { package: p.name, version: p.version, filename: p.filename, size: p.size, sha256: p.sha256 };
}

function sameDebs(m: GuestManifest, debs: { kernel: DebRecord; busybox: DebRecord }): boolean {
  return m.debs.kernel.sha256 === debs.kernel.sha256 && m.debs.busybox.sha256 === debs.busybox.sha256;
}

async function upToDate(cache: ImageCache, m: GuestManifest): Promise<boolean> {
  const dir = cache.guestDir(m.name);
  return (
    m.recipe === initramfsRecipe(GUEST_MODULES, guestAgent()) &&
    (await verifyFile(join(dir, m.kernel.file), m.kernel.size, m.kernel.sha256)) &&
    (await verifyFile(join(dir, m.initrd.file), m.initrd.size, m.initrd.sha256)) &&
    // The root disk is large: its size is checked here, its checksum by `image pull`.
    m.rootfs !== undefined && (await stat(join(dir, m.rootfs.file)).then((st) => st.size === m.rootfs!.size, () => false))
  );
}

// The cached .deb if it verifies; otherwise it is deleted and downloaded again.
async function ensureDeb(ctx: Context, d: DebRecord, mirror: () => string): Promise<string> {
  const path = ctx.cache.debPath(d.sha256);
  if (await verifyFile(path, d.size, d.sha256)) {
    ctx.stats.debsFromCache++;
    return path;
  }
  const present = await readFile(path).then(
    () => true,
    () => false,
  );
  if (present) {
    ctx.reporter.note(`cached ${d.package} ${d.version} fails its SHA-256 check; deleting it and downloading again`);
    await rm(path, { force: true });
  }
  await download(`${mirror()}/${d.filename}`, path, {
    expect: { size: d.size, sha256: d.sha256 },
    label: `${d.package} ${d.version}`,
    reporter: ctx.reporter,
    stats: ctx.stats,
    ...ctx.network,
  });
  ctx.stats.debsDownloaded++;
  return path;
}

async function build(ctx: Context, debs: { kernel: DebRecord; busybox: DebRecord }, origin: { mirror: string; releaseSignature: string }): Promise<GuestManifest> {
  const { cache, reporter } = ctx;
  reporter.note(`extracting ${debs.kernel.package} ${debs.kernel.version} (${formatBytes(debs.kernel.size)})`);
  const ktar = await debDataTar(await readFile(cache.debPath(debs.kernel.sha256)), debs.kernel.package);
  const kfile = (await extractTar(ktar, (n) => /^boot\/vmlinu[xz]-[^/]+$/.test(n))).find((f) => f.type === "file");
  if (!kfile) throw new ImageError(`${debs.kernel.package} contains no boot/vmlinux-* or boot/vmlinuz-* kernel`);
  const kernelVersion = kfile.name.replace(/^boot\/vmlinu[xz]-/, "");
  const { image, header, wasGzip } = flatKernelImage(kfile.data, kfile.name);
  const mods = await collectModules(ktar, kernelVersion, GUEST_MODULES);

  const btar = await debDataTar(await readFile(cache.debPath(debs.busybox.sha256)), debs.busybox.package);
  const bb = (await extractTar(btar, (n) => n === "bin/busybox" || n === "usr/bin/busybox")).find((f) => f.type === "file");
  if (!bb) throw new ImageError(`${debs.busybox.package} contains no bin/busybox`);
  const inputs = { busybox: bb.data, kernelVersion, modules: mods.modules, builtinList: mods.builtinList, agent: guestAgent() };
  const initrd = buildInitramfs(inputs);

  const dir = cache.guestDir(DEFAULT_GUEST);
  const kernelFile = `Image-${kernelVersion}`;
  const initrdFile = `initramfs-${kernelVersion}.cpio.gz`;
  await mkdir(dir, { recursive: true });
  await writeAtomic(join(dir, kernelFile), image);
  await writeAtomic(join(dir, initrdFile), initrd);
  const rootfsFile = `rootfs-${kernelVersion}.ext4`;
  await buildRootfs(initramfsEntries(inputs), join(dir, `${rootfsFile}.tmp`));
  await rename(join(dir, `${rootfsFile}.tmp`), join(dir, rootfsFile));
  const rootfs = { file: rootfsFile, size: (await stat(join(dir, rootfsFile))).size, sha256: await sha256File(join(dir, rootfsFile)) };
  const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
  const manifest: GuestManifest = {
    format: 1,
    name: DEFAULT_GUEST,
    suite: SUITE,
    arch: ARCH,
    mirror: origin.mirror,
    releaseSignature: origin.releaseSignature,
    createdAt: new Date().toISOString(),
    recipe: initramfsRecipe(GUEST_MODULES, guestAgent()),
    kernel: {
      file: kernelFile,
      size: image.length,
      sha256: sha(image),
      version: kernelVersion,
      textOffset: `0x${header.textOffset.toString(16)}`,
      imageSize: `0x${header.imageSize.toString(16)}`,
      gzipInPackage: wasGzip,
    },
    initrd: { file: initrdFile, size: initrd.length, sha256: sha(initrd), modules: mods.modules.map((m) => m.name), builtin: mods.builtin },
    rootfs,
    busybox: { version: debs.busybox.version },
    debs,
  };
  await cache.writeManifest(manifest);
  await cache.prune(dir, new Set(["manifest.json", kernelFile, initrdFile, rootfsFile]));
  await cache.prune(join(cache.root, "debs"), new Set([`${debs.kernel.sha256}.deb`, `${debs.busybox.sha256}.deb`]));
  ctx.stats.built = true;
  reporter.note(`${DEFAULT_GUEST}: kernel ${kernelVersion} (${formatBytes(image.length)}), initramfs ${formatBytes(initrd.length)} with ${mods.modules.map((m) => m.name).join(", ")}`);
  return manifest;
}

export interface CacheListing {
  root: string;
  guests: Array<DefaultGuest & { name: string; manifest: GuestManifest; kernelSize: number; initrdSize: number }>;
  debs: Array<{ sha256: string; size: number; path: string; package?: string; version?: string }>;
}

export async function listCache(opts: { cacheDir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CacheListing> {
  const cache = new ImageCache(opts.cacheDir ?? cacheRoot(opts.env));
  const guests = await cache.guests();
  const known = new Map<string, DebRecord>();
  for (const g of guests) for (const d of [g.debs.kernel, g.debs.busybox]) known.set(d.sha256, d);
  const debs = (await cache.debs()).map((d) => {
    const k = known.get(d.sha256);
    return k ? { ...d, package: k.package, version: k.version } : d;
  });
  return {
    root: cache.root,
    guests: guests.map((m) => ({ ...describe(cache, m), name: m.name, manifest: m, kernelSize: m.kernel.size, initrdSize: m.initrd.size })),
    debs,
  };
}
