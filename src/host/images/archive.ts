// The suite's index on a mirror, verified as apt verifies it, and the packages the default guest
// is made of. dists/<suite>/InRelease (the Release text, clearsigned) comes first and is checked
// with gpgv against Debian's keyring; the checksums are read from the text gpgv says was signed
// (`gpgv --output`), never from the file around it. Only when the mirror has no InRelease (404)
// are Release and its detached Release.gpg used instead. Packages.xz is fetched by the SHA-256
// the signed Release gives it, from by-hash/ when the Release says Acquire-By-Hash, so a mirror
// sync that replaces the index mid-pull cannot mismatch. An index that cannot be verified (no
// signature on the mirror, no gpgv, no keyring) is refused unless the caller allows it
// (allowUnverified), and then it is warned about every time it is used; a bad signature is always
// refused. A fresh cached index (younger than a day) is used without touching the network; an
// older one is revalidated, Packages.xz fetched again only if it changed, and when the mirror
// cannot be reached the cached (verified) index is used.
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { UserError } from "../../errors.js";
import type { ImageCache } from "./cache.js";
import { verifyFile, writeAtomic } from "./cache.js";
import { decompress } from "./deb.js";
import { PackageIndex, parseRelease, resolveMetapackage, type IndexFile, type PackageInfo, type Release } from "./debian.js";
import { DownloadError, download, type DownloadOptions, type DownloadStats } from "./download.js";
import type { Reporter } from "./progress.js";

export const SUITE = "trixie";
export const ARCH = "riscv64";
const PACKAGES = `main/binary-${ARCH}/Packages.xz`;
export const DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";
export const KERNEL_META = `linux-image-${ARCH}`;
export const BUSYBOX = "busybox-static";
export const DAY_MS = 24 * 3600 * 1000;

export interface Selection {
  kernelMeta: PackageInfo;
  kernel: PackageInfo;
  busybox: PackageInfo;
  // "verified: <which file> signed by ..." or "unverified (<why>)".
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

// Retry policy for the downloads of a pull (tests shorten it).
export type NetworkOptions = Pick<DownloadOptions, "networkAttempts" | "corruptAttempts" | "backoffMs" | "timeoutMs">;

export interface IndexContext {
  cache: ImageCache;
  reporter: Reporter;
  stats: DownloadStats;
  maxAgeMs?: number;
  now?: number;
  // The keys the Release must be signed with; Debian's archive keyring by default.
  keyring?: string;
  // The gpgv program, by name (looked up in PATH) or path.
  gpgv?: string;
  allowUnverified?: boolean;
  network?: NetworkOptions;
}

// True for what a verified index records, including the plain "verified" of older caches.
export function isVerified(releaseSignature: string): boolean {
  return releaseSignature.startsWith("verified");
}

const UNVERIFIED_ADVICE = "pass --allow-unverified to use the mirror's indexes without a signature check (not recommended)";

export async function selectPackages(mirror: string, ctx: IndexContext): Promise<Selection> {
  const dir = ctx.cache.indexDir(mirror, SUITE);
  await mkdir(dir, { recursive: true });
  const now = ctx.now ?? Date.now();
  const state = await readState(dir);
  const packagesPath = join(dir, "Packages.xz");
  const usable = (s: IndexState): boolean => isVerified(s.releaseSignature) || ctx.allowUnverified === true;
  const cached = (s: IndexState, fromCache: boolean): Selection => {
    if (fromCache && !isVerified(s.releaseSignature)) {
      ctx.reporter.warn(`using the cached ${SUITE} index of ${mirror}, which was not verified (${s.releaseSignature}), because unverified indexes are allowed`);
    }
    return { ...s.selection, releaseSignature: s.releaseSignature, indexAgeMs: now - s.fetchedAt, indexFromCache: fromCache };
  };
  if (state && usable(state) && now - state.fetchedAt < (ctx.maxAgeMs ?? DAY_MS)) {
    ctx.reporter.note(`index: ${SUITE}/${ARCH} from cache (${ageText(now - state.fetchedAt)} old)`);
    return cached(state, true);
  }

  try {
    const dl = { reporter: ctx.reporter, stats: ctx.stats, ...ctx.network };
    const { release, releaseSignature } = await fetchRelease(mirror, dir, ctx, now);
    const want = release.files.get(PACKAGES);
    if (!want) throw new UserError(`${mirror} has no ${PACKAGES} for ${SUITE}; is ${ARCH} on this mirror?`);

    if (state && state.packagesSha256 === want.sha256 && (await verifyFile(packagesPath, want.size, want.sha256))) {
      ctx.reporter.note(`index: ${SUITE}/${ARCH} unchanged since ${ageText(now - state.fetchedAt)} ago`);
      const fresh: IndexState = { ...state, fetchedAt: now, releaseSignature };
      await writeAtomic(join(dir, "state.json"), JSON.stringify(fresh));
      return cached(fresh, false);
    }
    if (!(await verifyFile(packagesPath, want.size, want.sha256))) await fetchIndex(mirror, release, PACKAGES, want, packagesPath, dl);
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
    // Offline, or the mirror is broken: better an older kernel than none. Only a download can
    // fail this way; a signature that does not check out is never papered over.
    if (state && e instanceof DownloadError) {
      if (!usable(state)) {
        throw new UserError(`${e.message}; the cached ${SUITE} index was not verified (${state.releaseSignature}), so it is not used instead: ${UNVERIFIED_ADVICE}`);
      }
      const why = e.unreachable ? `the mirror is unreachable: ${e.message}` : e.message;
      ctx.reporter.note(`index refresh failed (${why}); using the cached index from ${ageText(now - state.fetchedAt)} ago`);
      return cached(state, true);
    }
    throw e;
  }
}

// Downloads the suite's Release, checks its signature and writes the text that was checked to
// <dir>/Release. Until then everything lives under temporary names, so a Release that fails its
// check never stays in the cache.
async function fetchRelease(mirror: string, dir: string, ctx: IndexContext, now: number): Promise<{ release: Release; releaseSignature: string }> {
  const base = `${mirror}/dists/${SUITE}`;
  const tmp = (name: string): string => join(dir, `${name}.tmp-${process.pid}`);
  const files = { inRelease: tmp("InRelease"), release: tmp("Release"), releaseGpg: tmp("Release.gpg"), signed: tmp("Release.signed") };
  const get = (name: string, dest: string): Promise<boolean> =>
    download(`${base}/${name}`, dest, { reporter: ctx.reporter, stats: ctx.stats, ...ctx.network, label: `${SUITE}/${name}` }).then(
      () => true,
      (e: unknown) => {
        if (e instanceof DownloadError && e.status === 404) return false;
        throw e;
      },
    );
  try {
    // Left by versions that used Release.gpg only.
    await rm(join(dir, "Release.gpg"), { force: true });
    let checked: { text: string; releaseSignature: string; what: string };
    if (await get("InRelease", files.inRelease)) {
      checked = await checkInRelease(mirror, files.inRelease, files.signed, ctx);
    } else {
      if (!(await get("Release", files.release))) {
        throw new DownloadError(`${mirror} has neither dists/${SUITE}/InRelease nor dists/${SUITE}/Release (HTTP 404); is it a Debian mirror that carries ${SUITE}?`, false, 404);
      }
      const signed = await get("Release.gpg", files.releaseGpg);
      checked = await checkDetached(mirror, files.release, signed ? files.releaseGpg : undefined, ctx);
    }
    const release = parseRelease(checked.text);
    if (release.codename !== SUITE) throw new UserError(`${checked.what} from ${mirror} is for codename ${JSON.stringify(release.codename)}, not ${SUITE}`);
    if (release.validUntil !== undefined && release.validUntil.getTime() < now) {
      throw new UserError(
        `${checked.what} from ${mirror} expired on ${release.validUntil.toUTCString()} (its Valid-Until): the mirror is out of date or replays an old index; try another mirror with --mirror`,
      );
    }
    await writeAtomic(join(dir, "Release"), checked.text);
    return { release, releaseSignature: checked.releaseSignature };
  } finally {
    for (const f of Object.values(files)) await rm(f, { force: true });
  }
}

async function checkInRelease(mirror: string, file: string, signedOut: string, ctx: IndexContext): Promise<{ text: string; releaseSignature: string; what: string }> {
  const keyring = ctx.keyring ?? DEBIAN_KEYRING;
  const refuse = (why: string): UserError =>
    new UserError(
      `InRelease from ${mirror} fails its signature check against ${keyring} (${why}); refusing it. ` +
        "Release+Release.gpg were not tried because InRelease exists. The mirror may be corrupt or tampered with; try another with --mirror",
    );
  const clear = splitClearsigned(await readFile(file, "utf8"));
  if (typeof clear === "string") throw refuse(`not a valid clearsigned file: ${clear}`);
  const missing = await missingTools(ctx);
  if (missing) {
    if (!ctx.allowUnverified) throw new UserError(`cannot verify InRelease from ${mirror}: ${missing.why}; ${missing.fix}, or ${UNVERIFIED_ADVICE}`);
    ctx.reporter.warn(`InRelease from ${mirror} is NOT verified (${missing.why}); going on because unverified indexes are allowed`);
    return { text: clear.text, releaseSignature: `unverified (${missing.why}; InRelease)`, what: "InRelease" };
  }
  const verdict = judge(await runGpgv(ctx, ["--output", signedOut, file]), keyring);
  if (!verdict.ok) throw refuse(verdict.why);
  return { text: await readFile(signedOut, "utf8"), releaseSignature: `verified: InRelease signed by ${verdict.signers}`, what: "InRelease" };
}

async function checkDetached(mirror: string, release: string, signature: string | undefined, ctx: IndexContext): Promise<{ text: string; releaseSignature: string; what: string }> {
  const keyring = ctx.keyring ?? DEBIAN_KEYRING;
  const text = await readFile(release, "utf8");
  const unverified = (why: string, fix: string): { text: string; releaseSignature: string; what: string } => {
    if (!ctx.allowUnverified) throw new UserError(`cannot verify the ${SUITE} index of ${mirror}: ${why}; ${fix}, or ${UNVERIFIED_ADVICE}`);
    ctx.reporter.warn(`the Release file from ${mirror} is NOT verified (${why}); going on because unverified indexes are allowed`);
    return { text, releaseSignature: `unverified (${why}; Release)`, what: "Release" };
  };
  if (signature === undefined) {
    return unverified(`the mirror has neither dists/${SUITE}/InRelease nor dists/${SUITE}/Release.gpg (HTTP 404), so nothing signs its Release`, "use a mirror that signs its archive (--mirror URL)");
  }
  const missing = await missingTools(ctx);
  if (missing) return unverified(missing.why, missing.fix);
  const verdict = judge(await runGpgv(ctx, [signature, release]), keyring);
  if (!verdict.ok) {
    throw new UserError(
      `Release+Release.gpg from ${mirror} fail their signature check against ${keyring} (${verdict.why}); refusing them (there is no InRelease: HTTP 404). ` +
        "The mirror may be corrupt or tampered with; try another with --mirror",
    );
  }
  return { text, releaseSignature: `verified: Release+Release.gpg signed by ${verdict.signers}`, what: "Release" };
}

// Why the signature cannot be checked on this host, and what to install; undefined if it can.
async function missingTools(ctx: IndexContext): Promise<{ why: string; fix: string } | undefined> {
  const keyring = ctx.keyring ?? DEBIAN_KEYRING;
  const program = ctx.gpgv ?? "gpgv";
  const gpgv = await runGpgv(ctx, ["--version"]);
  const haveKeyring = await access(keyring, constants.R_OK).then(
    () => true,
    () => false,
  );
  const why: string[] = [];
  const packages: string[] = [];
  if ("cannotRun" in gpgv) {
    why.push(program === "gpgv" ? `gpgv is not installed (${gpgv.cannotRun})` : `gpgv (${program}) cannot be run (${gpgv.cannotRun})`);
    packages.push("gpgv");
  }
  if (!haveKeyring) {
    why.push(`the keyring ${keyring} does not exist or cannot be read`);
    if (keyring === DEBIAN_KEYRING) packages.push("debian-archive-keyring");
  }
  if (why.length === 0) return undefined;
  const fixes = [
    ...(packages.length > 0 ? [`install ${packages.join(" and ")} (sudo apt-get install ${packages.join(" ")})`] : []),
    ...(!haveKeyring && keyring !== DEBIAN_KEYRING ? ["name a keyring that exists"] : []),
  ];
  return { why: why.join(" and "), fix: fixes.join(" and ") };
}

interface GpgvRun {
  code: number;
  status: string;
  stderr: string;
}

function runGpgv(ctx: IndexContext, args: string[]): Promise<GpgvRun | { cannotRun: string }> {
  const program = ctx.gpgv ?? "gpgv";
  const argv = args[0] === "--version" ? args : ["--keyring", ctx.keyring ?? DEBIAN_KEYRING, "--status-fd", "1", ...args];
  return new Promise((resolve) => {
    execFile(program, argv, { encoding: "utf8", timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code === "string") return resolve({ cannotRun: err.code });
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, status: stdout, stderr });
    });
  });
}

// gpgv's verdict read the way apt reads it, from the status lines (doc/DETAILS in GnuPG): good
// if at least one signature is good and made with a strong digest, whatever other signatures
// there are by keys not in the keyring (the archive signs with several keys and an older keyring
// may lack some); bad if any signature is bad or anything else went wrong.
export function judge(run: GpgvRun | { cannotRun: string }, keyring: string): { ok: true; signers: string } | { ok: false; why: string } {
  if ("cannotRun" in run) return { ok: false, why: `gpgv cannot be run (${run.cannotRun})` };
  interface Sig {
    good?: string;
    fingerprint?: string;
    hashAlgo?: number;
    problem?: string;
  }
  const sigs: Sig[] = [];
  let bad = false;
  const errors: string[] = [];
  let sig: Sig | undefined;
  const current = (): Sig => {
    if (!sig) sigs.push((sig = {}));
    return sig;
  };
  const unescape = (s: string): string => s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  for (const line of run.status.split("\n")) {
    const m = /^\[GNUPG:\] (\S+) ?(.*)$/.exec(line.trimEnd());
    if (!m) continue;
    const [, keyword, rest] = m;
    const args = rest.split(" ");
    const who = unescape(args.slice(1).join(" ")) || args[0];
    switch (keyword) {
      case "NEWSIG":
        sigs.push((sig = {}));
        break;
      case "GOODSIG":
        current().good = who;
        break;
      case "VALIDSIG":
        current().fingerprint = args[9] ?? args[0];
        current().hashAlgo = Number(args[7]);
        break;
      case "BADSIG":
        current().problem = `BAD signature from ${who}`;
        bad = true;
        break;
      case "EXPKEYSIG":
        current().problem = `signed by ${who}, whose key has expired`;
        break;
      case "REVKEYSIG":
        current().problem = `signed by ${who}, whose key has been revoked`;
        break;
      case "EXPSIG":
        current().problem = `the signature by ${who} has expired`;
        break;
      case "NO_PUBKEY":
        current().problem = `signed by key ${args[0]}, which is not in ${keyring}`;
        break;
      case "ERRSIG":
        current().problem ??= `cannot check the signature by key ${args[0]}`;
        break;
      case "NODATA":
        errors.push("no signature found");
        break;
      case "ERROR":
        errors.push(`gpgv error ${rest}`);
        break;
    }
  }
  // MD5, SHA-1 and RIPEMD-160 (RFC 4880 9.4) are what apt rejects as weak digests.
  const weak = new Map([[1, "MD5"], [2, "SHA-1"], [3, "RIPEMD-160"]]);
  for (const s of sigs) {
    if (s.good !== undefined && s.fingerprint === undefined) s.problem ??= `gpgv did not confirm the signature by ${s.good}`;
    if (s.good !== undefined && s.hashAlgo !== undefined && weak.has(s.hashAlgo)) s.problem = `${s.good} signed with the weak digest ${weak.get(s.hashAlgo)}`;
  }
  const good = sigs.filter((s) => s.good !== undefined && s.fingerprint !== undefined && s.problem === undefined);
  const others = sigs.filter((s) => !good.includes(s));
  // gpgv exits 2 when some signature's key is missing; that alone is fine if another is good.
  const explained = run.code === 0 || others.every((s) => s.problem?.includes("which is not in"));
  if (!bad && errors.length === 0 && good.length > 0 && explained) {
    return { ok: true, signers: good.map((s) => `${s.good} (${s.fingerprint})`).join(", ") };
  }
  const problems = [...others.map((s) => s.problem ?? "a signature gpgv could not check"), ...errors];
  const tail = run.stderr.trim().split("\n").slice(-2).join("; ");
  let why = problems.length > 0 ? [...new Set(problems)].join("; ") : `gpgv exited with status ${run.code}: ${tail || "no output"}`;
  if (good.length === 0 && !bad && others.length > 0 && others.every((s) => s.problem?.includes("which is not in")) && keyring === DEBIAN_KEYRING) {
    why += "; if the archive has new keys, upgrade debian-archive-keyring";
  }
  return { ok: false, why };
}

// The parts of a clearsigned file (RFC 4880 7): the armor line, Hash headers, a blank line, the
// dash-escaped text, the signature block. Like apt, anything else outside the signed text (a
// second message, text before or after) makes the whole file invalid: nothing unsigned may ride
// along. Returns the signed text, or why the file is not clearsigned. The checked text comes
// from gpgv; this text is what an unverified pull uses.
export function splitClearsigned(raw: string): { text: string } | string {
  const lines = raw.split(/\r?\n/);
  let i = 0;
  while (i < lines.length && lines[i].trim() === "") i++;
  if (lines[i] !== "-----BEGIN PGP SIGNED MESSAGE-----") return "it does not begin with -----BEGIN PGP SIGNED MESSAGE-----";
  for (i++; i < lines.length && lines[i].trim() !== ""; i++) {
    if (!/^Hash: \S/.test(lines[i])) return `unexpected armor header ${JSON.stringify(lines[i].slice(0, 60))}`;
  }
  const body: string[] = [];
  for (i++; i < lines.length && lines[i] !== "-----BEGIN PGP SIGNATURE-----"; i++) {
    const line = lines[i];
    if (line.startsWith("-----")) return `it holds an unexpected armor line ${JSON.stringify(line.slice(0, 60))}`;
    body.push(line.startsWith("- ") ? line.slice(2) : line);
  }
  if (i >= lines.length) return "it has no signature";
  while (i < lines.length && lines[i] !== "-----END PGP SIGNATURE-----") i++;
  if (i >= lines.length) return "its signature is not terminated";
  if (lines.slice(i + 1).some((l) => l.trim() !== "")) return "it has text after the signature";
  return { text: `${body.join("\n")}\n` };
}

// An index file listed in the Release, checked against the Release's SHA-256. With
// Acquire-By-Hash it is fetched from by-hash/SHA256/<hash> in its directory, as apt does: that
// name always holds exactly these bytes, while the plain name is replaced when the mirror syncs.
async function fetchIndex(mirror: string, release: Release, path: string, want: IndexFile, dest: string, dl: Omit<DownloadOptions, "expect" | "label">): Promise<void> {
  const label = `${SUITE}/${path}`;
  if (release.acquireByHash) {
    try {
      await download(`${mirror}/dists/${SUITE}/${dirname(path)}/by-hash/SHA256/${want.sha256}`, dest, { ...dl, label: `${label} (by-hash)`, expect: want });
      return;
    } catch (e) {
      if (!(e instanceof DownloadError && e.status === 404)) throw e;
      dl.reporter.note(`${label}: the mirror has no by-hash copy (HTTP 404); fetching it by name`);
    }
  }
  await download(`${mirror}/dists/${SUITE}/${path}`, dest, { ...dl, label, expect: want });
}

async function readState(dir: string): Promise<IndexState | undefined> {
  try {
    const s = JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as IndexState;
    return typeof s.fetchedAt === "number" && typeof s.releaseSignature === "string" && s.selection?.kernel && s.selection?.busybox ? s : undefined;
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
