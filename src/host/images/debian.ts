// The Debian archive's indexes: the Release file of a suite (checksums of its indexes) and a
// Packages index (one stanza per binary package), package relationships and version ordering
// (Debian Policy 5.6.12 for versions, 7.1 for relationship fields).
import { ImageError } from "../../errors.js";
import { parseStanza, type Stanza } from "./deb822.js";

export interface IndexFile {
  sha256: string;
  size: number;
}

export interface Release {
  suite: string;
  codename: string;
  // Path relative to dists/<suite>/ -> checksum and size, from the SHA256 field.
  files: Map<string, IndexFile>;
  // "Acquire-By-Hash: yes": every index is also served as <its directory>/by-hash/SHA256/<hash>,
  // which stays put while a mirror sync replaces the index under its plain name.
  acquireByHash: boolean;
  // Valid-Until, if the archive sets one: after it, the Release must not be trusted (it may be
  // an old one replayed by a mirror or an attacker).
  validUntil?: Date;
}

export function parseRelease(text: string): Release {
  const s = parseStanza(text);
  const files = new Map<string, IndexFile>();
  for (const line of (s.get("sha256") ?? "").split("\n")) {
    const [sha256, size, path] = line.trim().split(/\s+/);
    if (path !== undefined && /^[0-9a-f]{64}$/.test(sha256)) files.set(path, { sha256, size: Number(size) });
  }
  if (files.size === 0) throw new ImageError("the Release file lists no SHA256 checksums; is this a Debian archive?");
  const validUntil = s.get("valid-until");
  const until = validUntil === undefined ? undefined : new Date(validUntil);
  if (until !== undefined && Number.isNaN(until.getTime())) throw new ImageError(`the Release file has an unreadable Valid-Until date ${JSON.stringify(validUntil)}`);
  return {
    suite: s.get("suite") ?? "",
    codename: s.get("codename") ?? "",
    files,
    acquireByHash: (s.get("acquire-by-hash") ?? "").toLowerCase() === "yes",
    ...(until ? { validUntil: until } : {}),
  };
}

// What the image builder needs to know about one binary package.
export interface PackageInfo {
  name: string;
  version: string;
  depends: string;
  filename: string;
  size: number;
  sha256: string;
}

function packageInfo(s: Stanza): PackageInfo {
  const name = s.get("package") ?? "";
  const info = {
    name,
    version: s.get("version") ?? "",
    depends: s.get("depends") ?? "",
    filename: s.get("filename") ?? "",
    size: Number(s.get("size")),
    sha256: s.get("sha256") ?? "",
  };
  if (!info.version || !info.filename || !Number.isSafeInteger(info.size) || !/^[0-9a-f]{64}$/.test(info.sha256)) {
    throw new ImageError(`the Packages index has an incomplete stanza for ${name || "a package"} (needs Version, Filename, Size, SHA256)`);
  }
  return info;
}

// A Packages index is ~55 MB of text for riscv64; only a handful of stanzas are ever looked at,
// so the constructor records where each package's stanzas are and parses them on demand.
export class PackageIndex {
  private readonly where = new Map<string, Array<[number, number]>>();

  constructor(private readonly text: string) {
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf("\n\n", start);
      if (end < 0) end = text.length;
      const name = stanzaPackageName(text, start, end);
      if (name !== undefined) {
        const list = this.where.get(name);
        if (list) list.push([start, end]);
        else this.where.set(name, [[start, end]]);
      }
      start = end + 2;
    }
  }

  get size(): number {
    return this.where.size;
  }

  // All stanzas of a package (an index may list several versions), highest version first.
  versions(name: string): PackageInfo[] {
    const spans = this.where.get(name) ?? [];
    return spans.map(([a, b]) => packageInfo(parseStanza(this.text.slice(a, b)))).sort((x, y) => compareVersions(y.version, x.version));
  }

  // The highest version satisfying an optional relation, or undefined.
  find(name: string, op?: RelationOp, version?: string): PackageInfo | undefined {
    return this.versions(name).find((p) => op === undefined || version === undefined || satisfies(p.version, op, version));
  }
}

function stanzaPackageName(text: string, start: number, end: number): string | undefined {
  let lineStart = start;
  while (lineStart < end) {
    let lineEnd = text.indexOf("\n", lineStart);
    if (lineEnd < 0 || lineEnd > end) lineEnd = end;
    if (text.startsWith("Package:", lineStart)) return text.slice(lineStart + 8, lineEnd).trim();
    lineStart = lineEnd + 1;
  }
  return undefined;
}

export type RelationOp = "<<" | "<=" | "=" | ">=" | ">>";

export interface Relation {
  name: string;
  op?: RelationOp;
  version?: string;
}

// "a (>= 1) | b, c [amd64] <!nocheck>" -> [[a>=1, b], [c]]; architecture and build-profile
// qualifiers are dropped (a binary index is already for one architecture).
export function parseRelations(field: string): Relation[][] {
  return field
    .split(",")
    .map((group) =>
      group
        .split("|")
        .map((alt) => {
          const m = /^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?/.exec(alt);
          if (!m) return undefined;
          // "<" and ">" are obsolete spellings of "<=" and ">=" (Policy 7.1).
          const op = m[2] === "<" ? "<=" : m[2] === ">" ? ">=" : (m[2] as RelationOp | undefined);
          return { name: m[1], ...(op ? { op, version: m[3] } : {}) };
        })
        .filter((r): r is Relation => r !== undefined),
    )
    .filter((g) => g.length > 0);
}

export function satisfies(version: string, op: RelationOp, ref: string): boolean {
  const c = compareVersions(version, ref);
  switch (op) {
    case "<<":
      return c < 0;
    case "<=":
      return c <= 0;
    case "=":
      return c === 0;
    case ">=":
      return c >= 0;
    case ">>":
      return c > 0;
  }
}

// Follows a metapackage (e.g. linux-image-riscv64) to the real package it depends on whose name
// starts with `prefix` (e.g. linux-image-6.12.x-riscv64), honouring the version constraint.
export function resolveMetapackage(index: PackageIndex, meta: string, prefix: string): { meta: PackageInfo; target: PackageInfo } {
  const m = index.find(meta);
  if (!m) throw new ImageError(`package ${meta} is not in the index`);
  for (const group of parseRelations(m.depends)) {
    for (const rel of group) {
      if (!rel.name.startsWith(prefix)) continue;
      const target = index.find(rel.name, rel.op, rel.version);
      if (target) return { meta: m, target };
    }
  }
  throw new ImageError(`${meta} ${m.version} depends on no ${prefix}* package present in the index (Depends: ${m.depends || "none"})`);
}

// dpkg's version ordering: [epoch:]upstream[-revision]; each part compared as alternating runs
// of non-digits (letters sort before non-letters, "~" before everything, even the end) and
// numbers (compared numerically).
export function compareVersions(a: string, b: string): number {
  const [ea, ua, ra] = splitVersion(a);
  const [eb, ub, rb] = splitVersion(b);
  if (ea !== eb) return ea < eb ? -1 : 1;
  return comparePart(ua, ub) || comparePart(ra, rb);
}

function splitVersion(v: string): [number, string, string] {
  const colon = v.indexOf(":");
  const epoch = colon > 0 ? Number(v.slice(0, colon)) : 0;
  const rest = colon > 0 ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf("-");
  return dash >= 0 ? [epoch, rest.slice(0, dash), rest.slice(dash + 1)] : [epoch, rest, ""];
}

function charOrder(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === "~") return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function comparePart(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const ca = i < a.length && !isDigit(a[i]) ? a[i] : undefined;
      const cb = j < b.length && !isDigit(b[j]) ? b[j] : undefined;
      const d = charOrder(ca) - charOrder(cb);
      if (d !== 0) return d < 0 ? -1 : 1;
      if (ca !== undefined) i++;
      if (cb !== undefined) j++;
    }
    let na = "";
    let nb = "";
    while (i < a.length && isDigit(a[i])) na += a[i++];
    while (j < b.length && isDigit(b[j])) nb += b[j++];
    const d = BigInt(na || "0") - BigInt(nb || "0");
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  return 0;
}

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}
