// The guest image pipeline offline: formats (ar, cpio newc, deb822, ELF marker), index logic,
// mirror choice and downloads from a loopback server. The real pull from the Debian mirror is in
// test/system/pull.test.ts.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { xz } from "@napi-rs/lzma";
import { UserError } from "../../src/errors.js";
import { readNewc, writeNewc, type CpioEntry } from "../../src/host/images/cpio.js";
import { parseAr, debDataTar } from "../../src/host/images/deb.js";
import { parseStanzas } from "../../src/host/images/deb822.js";
import { PackageIndex, compareVersions, parseRelations, parseRelease, resolveMetapackage } from "../../src/host/images/debian.js";
import { download, newDownloadStats, DownloadError } from "../../src/host/images/download.js";
import { BOOT_COMPLETE, buildInitramfs, initScript } from "../../src/host/images/initramfs.js";
import { flatKernelImage, parseImageHeader } from "../../src/host/images/kernel.js";
import { MARKER_CODE, MARKER_INSN, markerElf } from "../../src/host/images/marker.js";
import { debianMirrorFromSources, parseDeb822Sources, parseOneLineSources, resolveMirror } from "../../src/host/images/mirror.js";
import { collectModules, modinfo, modulesDep } from "../../src/host/images/modules.js";
import { createReporter } from "../../src/host/images/progress.js";
import { arArchive, fakeKo, tarOf } from "./synthetic-archive.js";

const tmp = mkdtempSync(join(tmpdir(), "ringvisor-images-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = createReporter({ quiet: true });
const have = (cmd: string, args = ["--version"]): boolean => spawnSync(cmd, args).status === 0;

// ---- cpio newc ----

test("cpio newc: written archives read back, 4-byte aligned, with a trailer", () => {
  const entries: CpioEntry[] = [
    { path: "bin", type: "dir", perm: 0o755 },
    { path: "bin/prog", type: "file", perm: 0o755, data: Buffer.from("hello\n") },
    { path: "bin/sh", type: "symlink", perm: 0o777, target: "prog" },
    { path: "dev/console", type: "char", perm: 0o600, rdev: [5, 1] },
    { path: "odd", type: "file", perm: 0o644, data: new Uint8Array(7).fill(0xab) },
  ];
  const archive = writeNewc(entries);
  assert.equal(archive.length % 4, 0);
  // The first header, field by field (buffer-format.rst): ino 1, mode 040755, nlink 2, namesize 4.
  assert.equal(
    archive.subarray(0, 110).toString("latin1"),
    "070701" + "00000001" + "000041ed" + "00000000" + "00000000" + "00000002" + "00000000" + "00000000" +
      "00000000" + "00000000" + "00000000" + "00000000" + "00000004" + "00000000",
  );
  assert.ok(archive.includes(Buffer.from("TRAILER!!!\0")));
  const back = readNewc(archive);
  assert.deepEqual(
    back.map((e) => [e.path, e.type, e.perm, e.target, e.rdev, e.data && Buffer.from(e.data).toString("hex")]),
    entries.map((e) => [e.path, e.type, e.perm, e.target, e.rdev, e.data && Buffer.from(e.data).toString("hex")]),
  );
  assert.ok(back.every((e) => e.mtime === 0 && e.uid === 0));
  assert.throws(() => writeNewc([entries[0], entries[0]]), /duplicate/);
});

test("cpio newc: GNU cpio lists what we write", { skip: !have("cpio") && "cpio not installed" }, () => {
  const archive = writeNewc([
    { path: "etc", type: "dir", perm: 0o755 },
    { path: "etc/hostname", type: "file", perm: 0o644, data: Buffer.from("x\n") },
  ]);
  const r = spawnSync("cpio", ["-t", "--quiet"], { input: archive, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n"), ["etc", "etc/hostname"]);
});

// ---- ar and .deb ----

test("ar: members with odd sizes and padding parse; binutils ar agrees", () => {
  const archive = arArchive([
    ["debian-binary", Buffer.from("2.0\n")],
    ["odd.bin", Buffer.from("abc")],
    ["data.tar", Buffer.from("0123456789")],
  ]);
  const m = parseAr(archive);
  assert.deepEqual(
    m.map((x) => [x.name, Buffer.from(x.data).toString()]),
    [["debian-binary", "2.0\n"], ["odd.bin", "abc"], ["data.tar", "0123456789"]],
  );
  if (have("ar")) {
    const p = join(tmp, "t.a");
    writeFileSync(p, archive);
    assert.deepEqual(spawnSync("ar", ["t", p], { encoding: "utf8" }).stdout.trim().split("\n"), ["debian-binary", "odd.bin", "data.tar"]);
  }
  assert.throws(() => parseAr(archive.subarray(0, archive.length - 4)), /truncated/);
  assert.throws(() => parseAr(Buffer.from("not an archive")), /not an ar archive/);
});

test("deb: data.tar.xz is found, decompressed and walked", async () => {
  const data = await tarOf([["usr/bin/busybox", Buffer.from("ELF!")]]);
  const deb = arArchive([
    ["debian-binary", Buffer.from("2.0\n")],
    ["control.tar.xz", await xz.compress(await tarOf([["control", Buffer.from("Package: x\n")]]))],
    ["data.tar.xz", await xz.compress(data)],
  ]);
  assert.deepEqual(await debDataTar(deb), data);
  const gz = arArchive([["debian-binary", Buffer.from("2.0\n")], ["data.tar.gz", gzipSync(data)]]);
  assert.deepEqual(await debDataTar(gz), data);
  await assert.rejects(debDataTar(arArchive([["debian-binary", Buffer.from("3.0\n")]])), /not a Debian binary package/);
});

// ---- deb822, Packages, Release, versions ----

const SAMPLE_PACKAGES = `Package: busybox-static
Version: 1:1.37.0-6+b9
Filename: pool/main/b/busybox/busybox-static_1.37.0-6+b9_riscv64.deb
Size: 941532
SHA256: ${"a".repeat(64)}
Description: Standalone rescue shell
 with tons of builtin utilities
 .
 and more

Package: linux-image-riscv64
Version: 6.12.107-1
Depends: linux-image-6.12.107+deb13-riscv64 (= 6.12.107-1)
Filename: pool/main/l/linux/linux-image-riscv64_6.12.107-1_riscv64.deb
Size: 1436
SHA256: ${"b".repeat(64)}

Package: linux-image-6.12.107+deb13-riscv64
Version: 6.12.107-1
Depends: kmod, initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool
Filename: pool/main/l/linux/linux-image-6.12.107+deb13-riscv64_6.12.107-1_riscv64.deb
Size: 112012420
SHA256: ${"c".repeat(64)}

Package: linux-image-6.12.107+deb13-riscv64
Version: 6.12.107-2
Filename: pool/main/l/linux/newer.deb
Size: 1
SHA256: ${"d".repeat(64)}
`;

test("Packages: stanzas, continuation lines and metapackage resolution", () => {
  const [bb] = parseStanzas(SAMPLE_PACKAGES);
  assert.equal(bb.get("description"), "Standalone rescue shell\nwith tons of builtin utilities\n\nand more");
  const index = new PackageIndex(SAMPLE_PACKAGES);
  assert.equal(index.size, 3);
  assert.equal(index.find("busybox-static")?.version, "1:1.37.0-6+b9");
  // Two versions listed: the highest wins unless a relation pins one.
  assert.equal(index.find("linux-image-6.12.107+deb13-riscv64")?.version, "6.12.107-2");
  const { target } = resolveMetapackage(index, "linux-image-riscv64", "linux-image-");
  assert.equal(target.name, "linux-image-6.12.107+deb13-riscv64");
  assert.equal(target.version, "6.12.107-1");
  assert.equal(target.size, 112012420);
  assert.equal(target.sha256, "c".repeat(64));
  assert.throws(() => resolveMetapackage(index, "nope", "linux-image-"), /not in the index/);
  assert.throws(() => resolveMetapackage(index, "busybox-static", "linux-image-"), /depends on no linux-image-/);
});

test("relations and dpkg version ordering", () => {
  assert.deepEqual(parseRelations("kmod, initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, libc6:any (<< 3) [amd64]"), [
    [{ name: "kmod" }],
    [{ name: "initramfs-tools", op: ">=", version: "0.120+deb8u2" }, { name: "linux-initramfs-tool" }],
    [{ name: "libc6", op: "<<", version: "3" }],
  ]);
  const ascending = ["0.9", "1.0~rc1", "1.0", "1.0-1", "1.0-1+b1", "1.0a", "1.0+dfsg", "1.2", "1.10", "6.12.107-1", "1:0.1"];
  for (let i = 0; i + 1 < ascending.length; i++) {
    assert.equal(compareVersions(ascending[i], ascending[i + 1]), -1, `${ascending[i]} < ${ascending[i + 1]}`);
    assert.equal(compareVersions(ascending[i + 1], ascending[i]), 1);
  }
  assert.equal(compareVersions("1.0-1", "1.0-1"), 0);
  assert.equal(compareVersions("0:1.0", "1.0"), 0);
});

test("Release: SHA256 lines are indexed by path", () => {
  const r = parseRelease(`Origin: Debian
Suite: stable
Codename: trixie
MD5Sum:
 ${"0".repeat(32)} 9385284 main/binary-riscv64/Packages.xz
SHA256:
 ${"1".repeat(64)}  9385284 main/binary-riscv64/Packages.xz
 ${"2".repeat(64)} 54322586 main/binary-riscv64/Packages
`);
  assert.equal(r.codename, "trixie");
  assert.deepEqual(r.files.get("main/binary-riscv64/Packages.xz"), { sha256: "1".repeat(64), size: 9385284 });
  assert.equal(r.files.size, 2);
  assert.equal(r.acquireByHash, false);
  assert.equal(r.validUntil, undefined);
  const byHash = parseRelease(`Codename: trixie\nValid-Until: Sat, 28 Nov 2026 09:15:44 UTC\nAcquire-By-Hash: yes\nSHA256:\n ${"1".repeat(64)} 1 main/binary-riscv64/Packages.xz\n`);
  assert.equal(byHash.acquireByHash, true);
  assert.equal(byHash.validUntil?.toISOString(), "2026-11-28T09:15:44.000Z");
});

// ---- mirror choice ----

const DEB822 = `Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://nodes.example/node_20.x
Suites: nodistro
Components: main

Types: deb
URIs: http://off.example/debian
Suites: trixie
Enabled: no

Types: deb deb-src
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
`;

test("apt sources: deb822 picks the first enabled Debian release archive", () => {
  const sources = parseDeb822Sources(DEB822, "debian.sources");
  assert.equal(sources.length, 4);
  assert.deepEqual(debianMirrorFromSources(sources), { url: "http://mirror.example/debian", from: "debian.sources" });
});

test("apt sources: one-line format with options, comments and non-Debian entries", () => {
  const text = `# a comment
deb https://packages.cloud.example/apt cloud-sdk-bookworm main
deb [ arch=amd64 signed-by=/usr/share/keyrings/x.gpg ] http://security.example/debian-security trixie-security main
deb [arch=amd64] http://ftp.example/debian trixie main contrib # trailing comment
deb http://second.example/debian trixie main
`;
  const sources = parseOneLineSources(text);
  assert.equal(sources.length, 4);
  assert.deepEqual(sources[2].uris, ["http://ftp.example/debian"]);
  assert.equal(debianMirrorFromSources(sources)?.url, "http://ftp.example/debian");
});

test("mirror precedence: --mirror, then RINGVISOR_MIRROR, then apt sources; else a clear error", () => {
  const etcApt = join(tmp, "etc-apt");
  mkdirSync(join(etcApt, "sources.list.d"), { recursive: true });
  writeFileSync(join(etcApt, "sources.list"), "deb http://security.example/debian-security trixie-security main\n");
  writeFileSync(join(etcApt, "sources.list.d", "b.sources"), DEB822);
  writeFileSync(join(etcApt, "sources.list.d", "a.list"), "deb http://first.example/debian sid main\n");
  writeFileSync(join(etcApt, "sources.list.d", "c.sources.disabled"), "Types: deb\nURIs: http://never.example/debian\nSuites: sid\n");
  const env = { RINGVISOR_MIRROR: "http://env.example/debian/" };
  assert.deepEqual(resolveMirror({ flag: "https://flag.example/debian", env, etcApt }), { url: "https://flag.example/debian", from: "--mirror" });
  assert.deepEqual(resolveMirror({ env, etcApt }), { url: "http://env.example/debian", from: "RINGVISOR_MIRROR" });
  assert.deepEqual(resolveMirror({ env: {}, etcApt }), { url: "http://first.example/debian", from: join(etcApt, "sources.list.d", "a.list") });
  assert.throws(() => resolveMirror({ env: {}, etcApt: join(tmp, "nowhere") }), (e: unknown) => e instanceof UserError && /--mirror URL or set RINGVISOR_MIRROR/.test(e.message));
  assert.throws(() => resolveMirror({ flag: "ftp://x/debian", env: {} }), /http:\/\/ or https:\/\//);
});

// ---- kernel modules ----

test("modules: dependency order from .modinfo, built-ins skipped, dependencies outside the request added", async () => {
  const kver = "6.1.0-test";
  const ko = (name: string, deps: string, ver = kver): Buffer => fakeKo([`name=${name}`, `depends=${deps}`, `vermagic=${ver} SMP mod_unload`]);
  const dir = `usr/lib/modules/${kver}`;
  const archive = await tarOf([
    [`${dir}/modules.builtin`, Buffer.from("kernel/drivers/virtio/virtio.ko\nkernel/drivers/char/virtio_console.ko\n")],
    [`${dir}/kernel/drivers/net/virtio_net.ko.xz`, await xz.compress(ko("virtio_net", "net_failover,virtio"))],
    [`${dir}/kernel/drivers/net/net_failover.ko.xz`, await xz.compress(ko("net_failover", "failover"))],
    [`${dir}/kernel/net/core/failover.ko`, ko("failover", "")],
    [`${dir}/kernel/drivers/virtio/virtio_mmio.ko.xz`, await xz.compress(ko("virtio_mmio", ""))],
    [`${dir}/kernel/drivers/other/stale.ko`, ko("stale", "", "5.0")],
  ]);
  const set = await collectModules(archive, kver, ["virtio_mmio", "virtio_net", "virtio_console"]);
  assert.deepEqual(set.modules.map((m) => m.name), ["virtio_mmio", "failover", "net_failover", "virtio_net"]);
  assert.deepEqual(set.builtin, ["virtio_console"]);
  assert.equal(set.modules[3].path, "kernel/drivers/net/virtio_net.ko");
  assert.equal(modinfo(set.modules[3].data).get("depends"), "net_failover,virtio");
  assert.equal(
    modulesDep(set.modules).split("\n")[3],
    "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko",
  );
  await assert.rejects(collectModules(archive, kver, ["virtio_gpu"]), /has no module virtio_gpu/);
  await assert.rejects(collectModules(archive, kver, ["stale"]), /built for kernel 5\.0/);
});

// ---- kernel image header ----

test("kernel: the RISC-V Image header is checked; gzip'd Images are unpacked", () => {
  const img = Buffer.alloc(4096);
  img.write("MZ", 0, "latin1");
  img.writeBigUInt64LE(0x200000n, 8);
  img.writeBigUInt64LE(0x1e6b000n, 16);
  img.writeUInt32LE(0x00000002, 32);
  img.write("RISCV\0\0\0", 48, "latin1");
  img.write("RSC\x05", 56, "latin1");
  const h = parseImageHeader(img);
  assert.equal(h.textOffset, 0x200000n);
  assert.equal(h.imageSize, 0x1e6b000n);
  assert.deepEqual(h.version, { major: 0, minor: 2 });
  const fromGz = flatKernelImage(gzipSync(img));
  assert.ok(fromGz.wasGzip);
  assert.deepEqual(fromGz.image, img);
  assert.throws(() => parseImageHeader(Buffer.alloc(64)), /not a RISC-V Linux Image/);
});

// ---- rv-marker ----

test("rv-marker: the expected instruction words", () => {
  assert.deepEqual([...MARKER_CODE].map((w) => w.toString(16).padStart(8, "0")), ["7a502013", "05d00893", "00000513", "00000073"]);
  assert.equal(MARKER_CODE[0], MARKER_INSN);
});

test("rv-marker: objdump disassembles it as intended", { skip: !have("riscv64-linux-gnu-objdump") && "no riscv64 objdump" }, () => {
  const p = join(tmp, "rv-marker");
  writeFileSync(p, markerElf());
  const r = spawnSync("riscv64-linux-gnu-objdump", ["-d", "-M", "no-aliases", p], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const insns = [...r.stdout.matchAll(/^\s+[0-9a-f]+:\s+([0-9a-f]{8})\s+(.+)$/gm)].map((m) => `${m[1]} ${m[2].trim().replace(/\s+/g, " ")}`);
  assert.deepEqual(insns, ["7a502013 slti zero,zero,1957", "05d00893 addi a7,zero,93", "00000513 addi a0,zero,0", "00000073 ecall"]);
});

test("rv-marker: runs under qemu-riscv64 and exits 0", { skip: !have("qemu-riscv64") && "qemu-user not installed" }, () => {
  const p = join(tmp, "rv-marker-run");
  writeFileSync(p, markerElf());
  chmodSync(p, 0o755);
  const r = spawnSync("qemu-riscv64", [p], { encoding: "utf8", timeout: 10_000 });
  assert.equal(r.status, 0, `status ${r.status} signal ${r.signal} ${r.stderr}`);
  // The marker must actually execute: qemu's in_asm log names each translated instruction.
  const log = join(tmp, "rv-marker.log");
  spawnSync("qemu-riscv64", ["-d", "in_asm", "-D", log, p], { timeout: 10_000 });
  assert.match(readFileSync(log, "utf8"), /7a502013\s+slti\s+zero,zero,1957/);
});

// ---- initramfs ----

test("initramfs: deterministic, with /init, busybox, applets, modules and /dev/console", () => {
  const inputs = {
    busybox: Buffer.from("not really busybox"),
    kernelVersion: "6.1.0-test",
    modules: [
      { name: "failover", path: "kernel/net/core/failover.ko", data: Buffer.from("ko1"), depends: [] },
      { name: "net_failover", path: "kernel/drivers/net/net_failover.ko", data: Buffer.from("ko2"), depends: ["failover"] },
    ],
    builtinList: "kernel/drivers/virtio/virtio.ko\n",
  };
  const a = buildInitramfs(inputs);
  assert.deepEqual(buildInitramfs(inputs), a, "same inputs, same bytes");
  const entries = new Map(readNewc(gunzipSync(a)).map((e) => [e.path, e]));
  for (const p of ["init", "bin/busybox", "bin/rv-marker", "proc", "sys", "dev", "tmp", "root", "etc", "lib/modules"]) assert.ok(entries.has(p), p);
  for (const applet of ["sh", "mount", "insmod", "setsid", "cttyhack", "poweroff", "sha256sum", "ip", "mdev"]) {
    assert.equal(entries.get(`bin/${applet}`)?.target, "busybox", applet);
  }
  assert.deepEqual(entries.get("dev/console")?.rdev, [5, 1]);
  assert.equal(entries.get("dev/console")?.type, "char");
  assert.equal(entries.get("init")?.perm, 0o755);
  assert.equal(Buffer.from(entries.get("lib/modules/6.1.0-test/kernel/drivers/net/net_failover.ko")!.data!).toString(), "ko2");
  const init = Buffer.from(entries.get("init")!.data!).toString();
  assert.ok(init.startsWith("#!/bin/sh\n"));
  assert.ok(init.includes(`echo "${BOOT_COMPLETE}"`));
  assert.ok(init.indexOf("failover.ko") < init.indexOf("net_failover.ko"));
  assert.ok(init.indexOf(BOOT_COMPLETE) < init.indexOf("/bin/rv-marker") && init.indexOf("/bin/rv-marker") < init.indexOf("cttyhack sh"));
  assert.deepEqual(Buffer.from(entries.get("bin/rv-marker")!.data!), Buffer.from(markerElf()));
});

test("initramfs: /init is valid shell", { skip: !have("sh", ["-c", "true"]) && "no sh" }, () => {
  const p = join(tmp, "init.sh");
  writeFileSync(p, initScript("6.1.0-test", [{ name: "m", path: "kernel/m.ko", data: Buffer.alloc(0), depends: [] }]));
  const r = spawnSync("sh", ["-n", p], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});

// ---- downloads (a loopback server) ----

async function serve(handler: (n: number) => { status: number; body: Buffer }): Promise<{ url: string; server: Server; hits: () => number }> {
  let n = 0;
  const server = createServer((_req, res) => {
    const r = handler(++n);
    res.writeHead(r.status, { "content-length": r.body.length });
    res.end(r.body);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/f.deb`, server, hits: () => n };
}

test("download: a corrupt body is deleted and fetched again; server errors are retried; 404 is final", async () => {
  const good = Buffer.from("the real package contents");
  const expect = { size: good.length, sha256: createHash("sha256").update(good).digest("hex") };
  const bad = Buffer.from(good);
  bad[3] ^= 1;
  const dest = join(tmp, "dl.deb");

  const flaky = await serve((n) => (n === 1 ? { status: 503, body: Buffer.from("busy") } : n === 2 ? { status: 200, body: bad } : n === 3 ? { status: 200, body: good.subarray(0, 5) } : { status: 200, body: good }));
  try {
    const stats = newDownloadStats();
    await download(flaky.url, dest, { expect, reporter: quiet, stats, backoffMs: 1 });
    assert.deepEqual(readFileSync(dest), good);
    assert.equal(stats.networkRetries, 1);
    assert.equal(stats.corruptRetries, 2);
    assert.equal(stats.requests, 4);
  } finally {
    flaky.server.close();
  }

  const liar = await serve(() => ({ status: 200, body: bad }));
  try {
    const dest2 = join(tmp, "never.deb");
    await assert.rejects(download(liar.url, dest2, { expect, reporter: quiet, stats: newDownloadStats(), backoffMs: 1 }), DownloadError);
    assert.equal(liar.hits(), 3);
    assert.equal(existsSync(dest2), false, "a corrupt download is never left in place");
  } finally {
    liar.server.close();
  }

  const missing = await serve(() => ({ status: 404, body: Buffer.from("no") }));
  try {
    await assert.rejects(download(missing.url, join(tmp, "404.deb"), { expect, reporter: quiet, stats: newDownloadStats(), backoffMs: 1 }), /HTTP 404/);
    assert.equal(missing.hits(), 1);
  } finally {
    missing.server.close();
  }
});
