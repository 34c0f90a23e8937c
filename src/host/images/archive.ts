// The suite's index on a mirror: dists/<suite>/Release (optionally checked with gpgv against
// Debian's keyring), the Packages.xz it vouches for, and the packages the default guest is made
// of. A fresh cached index (younger than a day) is used without touching the network; an older
// one is revalidated against Release, and Packages.xz is fetched again only if it changed.
import { execFile } from "node:child_process";
import { access, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { UserError } from "../../errors.js";
import type { ImageCache } from "./cache.js";
import { verifyFile, writeAtomic } from "./cache.js";
import { decompress } from "./deb.js";
import { PackageIndex, parseRelease, resolveMetapackage, type PackageInfo } from "./debian.js";
import { DownloadError, download, type DownloadStats } from "./download.js";
import type { Reporter } from "./progress.js";

export const SUITE = "trixie";
export const ARCH = "riscv64";
const PACKAGES = `main/binary-${ARCH}/Packages.xz`;
const KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";
export const KERNEL_META = `linux-image-${ARCH}`;
export const BUSYBOX = "busybox-static";
export const DAY_MS = 24 * 3600 * 1000;

export interface Selection {
  kernelMeta: PackageInfo;
  kernel: PackageInfo;
  busybox: PackageInfo;
  releaseSignature: string;
  indexAgeMs: number;
  indexFromCache: boolean;
}

interface IndexState {
  fetchedAt: number;
  packagesSha256: string;
  releaseSignature: string;
  selection: { kernelMeta: PackageInfo; kernel: PackageInfo; busybox: PackageInfo };
}

export interface IndexContext {
  cache: ImageCache;
  reporter: Reporter;
  stats: DownloadStats;
  maxAgeMs?: number;
  now?: number;
}

export async function selectPackages(mirror: string, ctx: IndexContext): Promise<Selection> {
  const dir = ctx.cache.indexDir(mirror, SUITE);
  await mkdir(dir, { recursive: true });
  const now = ctx.now ?? Date.now();
  const state = await readState(dir);
  const packagesPath = join(dir, "Packages.xz");
  const cached = (s: IndexState, fromCache: boolean): Selection => ({
    ...s.selection,
    releaseSignature: s.releaseSignature,
    indexAgeMs: now - s.fetchedAt,
    indexFromCache: fromCache,
  });
  if (state && now - state.fetchedAt < (ctx.maxAgeMs ?? DAY_MS)) {
    ctx.reporter.note(`index: ${SUITE}/${ARCH} from cache (${ageText(now - state.fetchedAt)} old)`);
    return cached(state, true);
  }

  try {
    const dl = { reporter: ctx.reporter, stats: ctx.stats };
    await download(`${mirror}/dists/${SUITE}/Release`, join(dir, "Release"), { ...dl, label: `${SUITE}/Release` });
    const releaseSignature = await checkSignature(mirror, dir, dl);
    const release = parseRelease(await readFile(join(dir, "Release"), "utf8"));
    if (release.codename !== SUITE) throw new UserError(`${mirror}/dists/${SUITE}/Release is for codename ${JSON.stringify(release.codename)}, not ${SUITE}`);
    const want = release.files.get(PACKAGES);
    if (!want) throw new UserError(`${mirror} has no ${PACKAGES} for ${SUITE}; is ${ARCH} on this mirror?`);

    if (state && state.packagesSha256 === want.sha256 && (await verifyFile(packagesPath, want.size, want.sha256))) {
      ctx.reporter.note(`index: ${SUITE}/${ARCH} unchanged since ${ageText(now - state.fetchedAt)} ago`);
      const fresh: IndexState = { ...state, fetchedAt: now, releaseSignature };
      await writeAtomic(join(dir, "state.json"), JSON.stringify(fresh));
      return cached(fresh, false);
    }
    if (!(await verifyFile(packagesPath, want.size, want.sha256))) {
      await download(`${mirror}/dists/${SUITE}/${PACKAGES}`, packagesPath, { ...dl, label: `${SUITE}/${PACKAGES}`, expect: want });
    }
    const text = (await decompress(await readFile(packagesPath), PACKAGES)).toString("utf8");
    const index = new PackageIndex(text);
    const { meta: kernelMeta, target: kernel } = resolveMetapackage(index, KERNEL_META, "linux-image-");
    const busybox = index.find(BUSYBOX);
    if (!busybox) throw new UserError(`${BUSYBOX} is not in ${SUITE}/${ARCH} on ${mirror}`);
    const fresh: IndexState = { fetchedAt: now, packagesSha256: want.sha256, releaseSignature, selection: { kernelMeta, kernel, busybox } };
    await writeAtomic(join(dir, "state.json"), JSON.stringify(fresh));
    ctx.reporter.note(`index: ${index.size} packages; ${KERNEL_META} ${kernelMeta.version} -> ${kernel.name}`);
    return cached(fresh, false);
  } catch (e) {
    // Offline with a stale index: better an older kernel than none.
    if (state && e instanceof DownloadError) {
      ctx.reporter.note(`index refresh failed (${e.message}); using the cached index from ${ageText(now - state.fetchedAt)} ago`);
      return cached(state, true);
    }
    throw e;
  }
}

// "verified", or why it was not checked. A bad signature is an error, never a warning.
async function checkSignature(mirror: string, dir: string, dl: { reporter: Reporter; stats: DownloadStats }): Promise<string> {
  try {
    await access(KEYRING);
  } catch {
    return `unchecked (no ${KEYRING})`;
  }
  const run = promisify(execFile);
  try {
    await run("gpgv", ["--version"]);
  } catch {
    return "unchecked (gpgv not installed)";
  }
  try {
    await download(`${mirror}/dists/${SUITE}/Release.gpg`, join(dir, "Release.gpg"), { ...dl, label: `${SUITE}/Release.gpg` });
  } catch (e) {
    if (e instanceof DownloadError && /HTTP 404/.test(e.message)) return "unchecked (mirror has no Release.gpg)";
    throw e;
  }
  try {
    await run("gpgv", ["--keyring", KEYRING, join(dir, "Release.gpg"), join(dir, "Release")]);
    return "verified";
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? "").trim().split("\n").slice(-2).join("; ");
    throw new UserError(`the Release file from ${mirror} fails its signature check against ${KEYRING} (${stderr}); refusing to use it`);
  }
}

async function readState(dir: string): Promise<IndexState | undefined> {
  try {
    const s = JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as IndexState;
    return typeof s.fetchedAt === "number" && s.selection?.kernel && s.selection?.busybox ? s : undefined;
  } catch {
    return undefined;
  }
}

export function ageText(ms: number): string {
  const min = Math.max(0, Math.round(ms / 60_000));
  if (min < 60) return `${min} min`;
  if (min < 48 * 60) return `${Math.round(min / 60)} h`;
  return `${Math.round(min / 1440)} days`;
}
