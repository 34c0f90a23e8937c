// Which Debian mirror to download from: the --mirror flag, else $RINGVISOR_MIRROR, else the first
// Debian archive named in the host's apt sources (sources.list(5): the one-line format in
// sources.list and *.list, deb822 in *.sources), read in apt's order.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors.js";
import { parseStanzas, words } from "./deb822.js";

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  enabled: boolean;
  file: string;
}

// Debian's codenames and suite names. A suite qualifies if it is one of these, optionally with
// a -updates/-backports/-proposed-updates suffix; -security suites live in a separate archive.
const DEBIAN_SUITES = new Set([
  "hamm", "slink", "potato", "woody", "sarge", "etch", "lenny", "squeeze", "wheezy", "jessie",
  "stretch", "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
  "oldoldstable", "oldstable", "stable", "testing", "unstable", "experimental",
]);

export function isDebianReleaseSuite(suite: string): boolean {
  const base = suite.replace(/-(updates|backports|backports-sloppy|proposed-updates)$/, "");
  return DEBIAN_SUITES.has(base);
}

// One-line format: `deb [ option=value ... ] uri suite [component ...]`.
export function parseOneLineSources(text: string, file = "sources.list"): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    const tokens = line.split(/\s+/);
    const type = tokens.shift();
    if (type !== "deb" && type !== "deb-src") continue;
    if (tokens[0]?.startsWith("[")) {
      while (tokens.length > 0 && !tokens.shift()!.endsWith("]"));
    }
    const [uri, suite] = tokens;
    if (uri === undefined || suite === undefined) continue;
    out.push({ types: [type], uris: [uri], suites: [suite], enabled: true, file });
  }
  return out;
}

export function parseDeb822Sources(text: string, file = "x.sources"): AptSource[] {
  return parseStanzas(text).map((s) => ({
    types: words(s.get("types")),
    uris: words(s.get("uris")),
    suites: words(s.get("suites")),
    enabled: (s.get("enabled") ?? "yes").toLowerCase() !== "no",
    file,
  }));
}

// The first http(s) URI serving a Debian release suite (never debian-security).
export function debianMirrorFromSources(sources: AptSource[]): MirrorChoice | undefined {
  for (const src of sources) {
    if (!src.enabled || !src.types.some((t) => t === "deb" || t === "deb-src")) continue;
    if (!src.suites.some(isDebianReleaseSuite)) continue;
    for (const uri of src.uris) {
      if (!/^https?:\/\/[^/]/.test(uri) || /debian-security/.test(uri)) continue;
      return { url: normalizeMirror(uri), from: src.file };
    }
  }
  return undefined;
}

// Reads sources.list, then sources.list.d/*.list and *.sources in name order, as apt does.
export function readAptSources(etcApt = "/etc/apt"): AptSource[] {
  const sources: AptSource[] = [];
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return undefined;
    }
  };
  const main = read(join(etcApt, "sources.list"));
  if (main !== undefined) sources.push(...parseOneLineSources(main, join(etcApt, "sources.list")));
  let names: string[] = [];
  try {
    names = readdirSync(join(etcApt, "sources.list.d")).sort();
  } catch {
    // no sources.list.d: fine
  }
  for (const name of names) {
    const path = join(etcApt, "sources.list.d", name);
    const text = name.endsWith(".list") || name.endsWith(".sources") ? read(path) : undefined;
    if (text === undefined) continue;
    sources.push(...(name.endsWith(".list") ? parseOneLineSources(text, path) : parseDeb822Sources(text, path)));
  }
  return sources;
}

export function normalizeMirror(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`mirror ${JSON.stringify(url)} is not a URL; expected e.g. http://<host>/debian`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new UserError(`mirror ${url} must be an http:// or https:// URL`);
  }
  return u.href.replace(/\/+$/, "");
}

export interface MirrorChoice {
  url: string;
  // "--mirror", "RINGVISOR_MIRROR" or the apt sources file it came from.
  from: string;
}

// Precedence: flag, environment, apt sources.
export function resolveMirror(opts: { flag?: string; env?: NodeJS.ProcessEnv; etcApt?: string } = {}): MirrorChoice {
  if (opts.flag) return { url: normalizeMirror(opts.flag), from: "--mirror" };
  const env = opts.env ?? process.env;
  if (env.RINGVISOR_MIRROR) return { url: normalizeMirror(env.RINGVISOR_MIRROR), from: "RINGVISOR_MIRROR" };
  const etcApt = opts.etcApt ?? "/etc/apt";
  const found = debianMirrorFromSources(readAptSources(etcApt));
  if (found) return found;
  throw new UserError(
    `no Debian mirror found in ${etcApt}/sources.list or ${etcApt}/sources.list.d/; ` +
      "pass --mirror URL or set RINGVISOR_MIRROR to a Debian archive (the URL that contains dists/ and pool/)",
  );
}
