// The Debian userland root disk: a real Debian trixie system (dpkg and apt, bash, sysvinit, an
// OpenSSH server, ifupdown with dhcpcd) on an ext4 image, for `ringvisor image pull debian`.
//
// It is built the way debootstrap builds a system for another architecture, with the second
// half done by Ringvisor itself:
//  1. on the host, `debootstrap --foreign` resolves the packages against the mirror (verifying
//     its signed index with Debian's keyring), downloads them and unpacks them into a folder:
//     no RISC-V code runs on the host, and no binfmt or qemu-user is needed;
//  2. the folder gets Ringvisor's first-boot script and files (the guest agent, the host user's
//     ssh key) and becomes an ext4 image with `mke2fs -d` (under fakeroot when not root, so file
//     owners and device nodes survive without privileges);
//  3. the default guest's kernel and initramfs boot that image in a Ringvisor VM with
//     init=/ringvisor/firstboot, which runs debootstrap's second stage (dpkg installs and
//     configures every package, maintainer scripts and all, on the guest's own CPU), then sets
//     the system up (fstab, network, consoles, the agent, root's ssh key) and powers off;
//  4. the image is checked with e2fsck and goes into the image cache with a manifest.
// VMs boot it through copy-on-write overlays (`ringvisor disk create NAME --backing debian`), so
// the cached image stays as built.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, existsSync, readFileSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { ImageError } from "../../errors.js";
import { ARCH, SUITE, DEBIAN_KEYRING } from "./archive.js";
import { ImageCache, cacheRoot, writeAtomic } from "./cache.js";
import { resolveMirror } from "./mirror.js";
import { createReporter, formatBytes, type Reporter } from "./progress.js";
import { ensureDefaultGuest, guestAgent, type DefaultGuest, type PullOptions } from "./pull.js";
import { BOOT_COMPLETE } from "./initramfs.js";
import { Host } from "../host.js";
import { diskStore, openImage } from "../disks/open.js";
import { qcow2Info } from "../disks/qcow2.js";

const run = promisify(execFile);

export const DEBIAN_ROOT = `debian-${SUITE}-${ARCH}-root`;
// What the image must hold beyond debootstrap's minbase (which is dpkg, apt, bash, coreutils and
// the rest of Priority: required): an init, the ssh server, the network and the tools a person
// reaches for first. sysvinit rather than systemd: it boots in a fraction of the time under
// emulation, and Debian supports it. (openssh-server needs sysusers, and debootstrap takes the
// first alternative, systemd: it is installed, but it is not the init.)
export const DEBIAN_PACKAGES: readonly string[] = [
  "sysvinit-core", "openssh-server", "ifupdown", "dhcpcd-base",
  "iproute2", "netbase", "procps", "iputils-ping", "less",
];
export const DEBIAN_DISK_BYTES = 4 * 2 ** 30;
// Generous: the second stage takes minutes under translation, and a loaded CI machine is slower.
const FIRST_BOOT_MS = 45 * 60_000;
const FIRST_BOOT_MEM = 1024 << 20;
const DONE = "ringvisor-firstboot: done";
const FAILED = "ringvisor-firstboot: failed";

export interface DebianRootManifest {
  format: 1;
  name: string;
  suite: string;
  arch: string;
  mirror: string;
  createdAt: string;
  // debianRootRecipe(): what went into the build besides the mirror's packages.
  recipe: string;
  disk: { file: string; size: number };
  packages: string[];
  // The ssh public key baked into /root/.ssh/authorized_keys.
  sshPublicKey: string;
  // The first boot inside Ringvisor (debootstrap's second stage), in seconds.
  firstBootSeconds: number;
}

export interface DebianRoot {
  disk: string;
  // The private key whose public half the image authorizes for root (`ssh -i`).
  sshKey: string;
  manifest: DebianRootManifest;
}

// The ssh key pair Ringvisor logs into its guests with, made on first use (like multipass's):
// $XDG_DATA_HOME/ringvisor/ssh/id_ed25519.
export function sshKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_DATA_HOME || join(homedir(), ".local", "share"), "ringvisor", "ssh", "id_ed25519");
}

export async function ensureSshKey(env: NodeJS.ProcessEnv = process.env): Promise<{ key: string; publicKey: string }> {
  const key = sshKeyPath(env);
  if (!existsSync(key) || !existsSync(`${key}.pub`)) {
    await mkdir(join(key, ".."), { recursive: true, mode: 0o700 });
    await rm(key, { force: true });
    await rm(`${key}.pub`, { force: true });
    try {
      await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ringvisor", "-f", key]);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new ImageError("ssh-keygen is not installed (Debian package openssh-client): it makes the key the Debian root disk lets you log in with");
      throw new ImageError(`ssh-keygen could not make ${key}: ${((e as { stderr?: string }).stderr ?? (e as Error).message).trim()}`);
    }
  }
  return { key, publicKey: (await readFile(`${key}.pub`, "utf8")).trim() };
}

// The first boot, run by the guest's kernel as init (through the initramfs, which has loaded the
// drivers and mounted the disk). Everything it prints goes to the build log.
export function firstBootScript(mirror: string): string {
  return `#!/bin/sh
# Ringvisor's first boot of the Debian root disk (src/host/images/userland.ts): debootstrap's
# second stage, then the settings of a Ringvisor guest, then power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
fail() { echo "${FAILED}: $*"; sync; echo o > /proc/sysrq-trigger; sleep 60; }
mountpoint -q /proc 2>/dev/null || mount -t proc proc /proc
echo "ringvisor-firstboot: debootstrap's second stage"
/debootstrap/debootstrap --second-stage || { tail -n 40 /debootstrap/debootstrap.log 2>/dev/null; fail "the second stage failed"; }
mountpoint -q /proc || mount -t proc proc /proc
echo "ringvisor-firstboot: configuring"
echo debian > /etc/hostname
printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\tdebian\\n::1\\t\\tlocalhost ip6-localhost ip6-loopback\\n' > /etc/hosts
printf '/dev/vda\\t/\\text4\\tdefaults,errors=remount-ro\\t0\\t0\\n' > /etc/fstab
mkdir -p /etc/network
printf 'auto lo\\niface lo inet loopback\\n\\nauto eth0\\niface eth0 inet dhcp\\n' > /etc/network/interfaces
printf 'deb ${mirror} ${SUITE} main\\n' > /etc/apt/sources.list
# apt's own defaults, minus what costs minutes on an emulated CPU for nothing: no translations.
printf 'Acquire::Languages "none";\\n' > /etc/apt/apt.conf.d/90ringvisor
install -m 0755 /ringvisor/rv-agent /ringvisor/rv-getty /ringvisor/rv-ready /usr/local/sbin/
# Consoles (the 16550 and the virtio console), the guest agent and the boot-complete line.
cat >> /etc/inittab <<'EOF'

# Ringvisor: a login on whichever console the VM has, the guest agent (ringvisor exec), and a
# line on the console once runlevel 2 is up.
T0:2345:respawn:/usr/local/sbin/rv-getty ttyS0
H0:2345:respawn:/usr/local/sbin/rv-getty hvc0
RA:2345:respawn:/usr/local/sbin/rv-agent-run
RR:2345:once:/usr/local/sbin/rv-ready
EOF
printf '#!/bin/sh\\n[ -e /dev/vsock ] || exec sleep 2147483647\\nexec /usr/local/sbin/rv-agent\\n' > /usr/local/sbin/rv-agent-run
chmod 0755 /usr/local/sbin/rv-agent-run
# The tty1-6 gettys of Debian's inittab would respawn forever: the VM has no virtual terminals.
sed -i 's/^\\([1-6]:23*45*:respawn:\\/sbin\\/getty\\)/#\\1/' /etc/inittab
# root logs in on the console without a password (the console is the VM's owner's), and over
# ssh with the host user's key only.
passwd -d root >/dev/null
mkdir -p -m 0700 /root/.ssh
install -m 0600 /ringvisor/authorized_keys /root/.ssh/authorized_keys
ssh-keygen -A >/dev/null 2>&1
rm -rf /debootstrap /var/cache/apt/archives/*.deb
# A clean filesystem for the image: nothing left in the journal.
sync
mount -o remount,ro / 2>/dev/null || echo "ringvisor-firstboot: / stays writable; the host replays the journal"
echo "${DONE}"
echo o > /proc/sysrq-trigger
sleep 60
`;
}

// A getty for a console the VM may not have: without the device it sleeps instead of failing,
// so init does not respawn it in a loop.
const RV_GETTY = `#!/bin/sh
[ -c "/dev/$1" ] || exec sleep 2147483647
exec /sbin/agetty -L 115200 "$1" vt100
`;
const RV_READY = `#!/bin/sh
echo "${BOOT_COMPLETE}" > /dev/console
`;

// What besides the packages goes into the image: a change here rebuilds a cached image.
export function debianRootRecipe(publicKey: string, agent: Uint8Array | undefined): string {
  const h = createHash("sha256");
  h.update(firstBootScript("M")).update(RV_GETTY).update(RV_READY).update(DEBIAN_PACKAGES.join(",")).update(publicKey).update(agent ?? new Uint8Array(0));
  return h.digest("hex").slice(0, 16);
}

export interface DebianRootOptions extends PullOptions {
  // Build again even if the cached image is up to date.
  rebuild?: boolean;
  // Where the first boot's console goes besides the build log (tests: nowhere).
  onConsole?: (text: string) => void;
}

// The cached Debian root disk if it is up to date, else a new build.
export async function pullDebianRoot(opts: DebianRootOptions = {}): Promise<DebianRoot & { built: boolean }> {
  const env = opts.env ?? process.env;
  const cache = new ImageCache(opts.cacheDir ?? cacheRoot(env));
  const reporter = opts.reporter ?? createReporter({ quiet: opts.quiet });
  const guest = await ensureDefaultGuest({ ...opts, reporter });
  const { key, publicKey } = await ensureSshKey(env);
  const recipe = debianRootRecipe(publicKey, guestAgent());
  const dir = cache.guestDir(DEBIAN_ROOT);
  const current = async (): Promise<DebianRootManifest | undefined> => {
    const m = readRootManifest(dir);
    if (!m || m.recipe !== recipe) return undefined;
    const ok = await stat(join(dir, m.disk.file)).then((s) => s.size === m.disk.size, () => false);
    return ok ? m : undefined;
  };
  const ready = opts.rebuild ? undefined : await current();
  if (ready) return { disk: join(dir, ready.disk.file), sshKey: key, manifest: ready, built: false };
  await cache.prepare();
  const manifest = await cache.withLock(async () => {
    const again = opts.rebuild ? undefined : await current();
    if (again) return { m: again, built: false };
    const mirror = resolveMirror({ flag: opts.mirror, env });
    reporter.note(`building the Debian ${SUITE} root disk from ${mirror.url} (from ${mirror.from})`);
    return { m: await build(cache, dir, guest, mirror.url, publicKey, recipe, reporter, opts), built: true };
  }, (pid) => reporter.note(`waiting for process ${pid}, which is using the image cache ${cache.root}`), FIRST_BOOT_MS + 15 * 60_000);
  return { disk: join(dir, manifest.m.disk.file), sshKey: key, manifest: manifest.m, built: manifest.built };
}

// The manifest of the build in `dir`, if one finished (it is written last). A small file, read
// synchronously so that `disk create --backing debian` can resolve the name too.
function readRootManifest(dir: string): DebianRootManifest | undefined {
  try {
    const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as DebianRootManifest;
    return m.format === 1 && typeof m.disk?.file === "string" ? m : undefined;
  } catch {
    return undefined;
  }
}

async function build(cache: ImageCache, dir: string, guest: DefaultGuest, mirror: string, publicKey: string, recipe: string, reporter: Reporter, opts: DebianRootOptions): Promise<DebianRootManifest> {
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, `build.tmp-${process.pid}-`));
  const log = join(dir, "build.log");
  const logStream = createWriteStream(log);
  try {
    const root = join(work, "root");
    const fake = await privileges(work);
    // 1. The packages, unpacked on the host.
    const t0 = performance.now();
    reporter.note(`debootstrap --foreign: resolving, downloading and unpacking ${DEBIAN_PACKAGES.length} packages and their dependencies (log: ${log})`);
    const keyring = opts.keyring ?? DEBIAN_KEYRING;
    const verify = existsSync(keyring) ? [`--keyring=${keyring}`] : opts.allowUnverified ? ["--no-check-gpg"] : undefined;
    if (!verify) throw new ImageError(`Debian's archive keyring ${keyring} is missing (Debian package debian-archive-keyring); pass --allow-unverified to build without checking the mirror's signature (not recommended)`);
    await tool(fake.wrap(["debootstrap", "--foreign", `--arch=${ARCH}`, "--variant=minbase", `--include=${DEBIAN_PACKAGES.join(",")}`, ...verify, SUITE, root, mirror]), logStream,
      "debootstrap is not installed (Debian package debootstrap): it resolves and unpacks the Debian root disk's packages");
    const debs = (await readdir(join(root, "var/cache/apt/archives"))).filter((n) => n.endsWith(".deb"));
    reporter.note(`unpacked ${debs.length} packages in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

    // 2. Ringvisor's files, and the ext4 image.
    // debootstrap leaves /proc as a link to the host's /proc when it cannot mount one.
    if ((await lstat(join(root, "proc")).catch(() => undefined))?.isSymbolicLink()) {
      await unlink(join(root, "proc"));
      await mkdir(join(root, "proc"));
    }
    const agent = guestAgent();
    if (!agent) throw new ImageError("the guest agent is not built (build/guest/rv-agent): run npm run build");
    const rv = join(root, "ringvisor");
    await mkdir(rv, { recursive: true });
    const files: Array<[string, string | Uint8Array, number]> = [
      ["firstboot", firstBootScript(mirror), 0o755],
      ["rv-agent", agent, 0o755],
      ["rv-getty", RV_GETTY, 0o755],
      ["rv-ready", RV_READY, 0o755],
      ["authorized_keys", `${publicKey}\n`, 0o600],
    ];
    for (const [name, data, mode] of files) {
      await writeFile(join(rv, name), data);
      await chmod(join(rv, name), mode);
    }
    const img = join(work, "root.img");
    await tool(fake.wrap(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "debian-root", "-d", root, img, `${DEBIAN_DISK_BYTES / 2 ** 20}M`]), logStream,
      "mke2fs is not installed (Debian package e2fsprogs): it builds the root disk");
    await rm(root, { recursive: true, force: true });

    // 3. The first boot: debootstrap's second stage inside Ringvisor.
    reporter.note(`first boot in Ringvisor: dpkg installs and configures the packages (minutes; the console goes to ${log})`);
    const t1 = performance.now();
    let partial = "";
    const text = await firstBoot(guest, img, (s) => {
      logStream.write(s);
      opts.onConsole?.(s);
      const lines = (partial + s).split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (/^(I: Configuring|ringvisor-firstboot:)/.test(line)) reporter.note(line.trim());
    });
    const firstBootSeconds = (performance.now() - t1) / 1000;
    if (!text.includes(DONE)) {
      const why = /ringvisor-firstboot: failed: (.*)/.exec(text)?.[1] ?? "the guest stopped before it finished";
      throw new ImageError(`the Debian root disk's first boot failed: ${why}; the console is in ${log}`);
    }
    // 4. A clean filesystem: e2fsck replays what the journal holds (the guest could not always
    // remount / read-only) and must find nothing it cannot fix safely (status 0 or 1).
    await tool(["e2fsck", "-f", "-p", img], logStream, "e2fsck is not installed (Debian package e2fsprogs)", [0, 1]);
    // Each build has a file of its own: overlays made over an older build go on reading theirs.
    const createdAt = new Date().toISOString();
    const file = `root-${createdAt.replace(/[-:]/g, "").replace(/\..*/, "")}.img`;
    await rename(img, join(dir, file));
    const manifest: DebianRootManifest = {
      format: 1, name: DEBIAN_ROOT, suite: SUITE, arch: ARCH, mirror, createdAt, recipe,
      disk: { file, size: (await stat(join(dir, file))).size },
      packages: debs.map((n) => n.split("_")[0]!).sort(),
      sshPublicKey: publicKey,
      firstBootSeconds: Math.round(firstBootSeconds),
    };
    await writeAtomic(join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    await pruneBuilds(dir, file, opts.env ?? process.env, reporter);
    reporter.note(`${DEBIAN_ROOT}: ${manifest.packages.length} packages, ${formatBytes(manifest.disk.size)} disk (sparse), first boot ${manifest.firstBootSeconds} s`);
    return manifest;
  } finally {
    await new Promise<void>((r) => logStream.end(() => r()));
    await rm(work, { recursive: true, force: true });
  }
}

// Older builds go, except those a disk in the disk store is an overlay of.
async function pruneBuilds(dir: string, keep: string, env: NodeJS.ProcessEnv, reporter: Reporter): Promise<void> {
  const bases = new Set<string>();
  const store = diskStore(env);
  for (const n of await readdir(store).catch(() => [] as string[])) {
    if (!n.endsWith(".qcow2")) continue;
    const b = await qcow2Info(join(store, n)).then((i) => i.backingPath, () => undefined);
    if (b) bases.add(resolve(b));
  }
  for (const n of await readdir(dir)) {
    if (!/^root-\d+T\d+\.img$/.test(n) || n === keep) continue;
    if (bases.has(resolve(dir, n))) reporter.note(`keeping the older build ${n}: a disk in ${store} is an overlay of it`);
    else await rm(join(dir, n), { force: true });
  }
}

// Root runs the tools directly; anyone else runs them under one fakeroot session, whose saved
// state carries the owners and device nodes debootstrap made over to mke2fs.
async function privileges(work: string): Promise<{ wrap: (argv: string[]) => string[] }> {
  if (process.getuid?.() === 0) return { wrap: (a) => a };
  const state = join(work, "fakeroot.state");
  await writeFile(state, "");
  try {
    await run("fakeroot", ["-v"]);
  } catch {
    throw new ImageError("building the Debian root disk as a user other than root needs fakeroot (Debian package fakeroot)");
  }
  return { wrap: (a) => ["fakeroot", "-i", state, "-s", state, "--", ...a] };
}

async function tool(argv: string[], log: NodeJS.WritableStream, missing: string, ok: readonly number[] = [0]): Promise<void> {
  log.write(`$ ${argv.join(" ")}\n`);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let tail = "";
  const take = (b: Buffer): void => {
    log.write(b);
    tail = (tail + b.toString("utf8")).slice(-4000);
  };
  child.stdout.on("data", take);
  child.stderr.on("data", take);
  const code = await new Promise<number | string>((resolve) => {
    child.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
    child.on("close", (c, sig) => resolve(c ?? sig ?? "signal"));
  });
  if (code === "ENOENT") throw new ImageError(missing);
  if (typeof code !== "number" || !ok.includes(code)) {
    const last = tail.trim().split("\n").slice(-6).join("\n  ");
    throw new ImageError(`${argv[0]} failed (${code}):\n  ${last}`);
  }
}

// Boots the image once with the first-boot script as init, and returns its console.
async function firstBoot(guest: DefaultGuest, img: string, onText: (s: string) => void): Promise<string> {
  const host = new Host({ machineBytes: FIRST_BOOT_MEM + (512 << 20) });
  let text = "";
  try {
    const decoder = new TextDecoder();
    const vm = host.createVm({
      name: "debian-firstboot",
      kernel: readFileSync(guest.kernel), initrd: readFileSync(guest.initrd),
      cmdline: "console=ttyS0 panic=-1 loglevel=4 root=/dev/vda init=/ringvisor/firstboot",
      memBytes: FIRST_BOOT_MEM, cpus: 1, virt: "bt",
      console: (b) => {
        const s = decoder.decode(b, { stream: true });
        text = (text + s).slice(-1 << 20);
        onText(s);
      },
      disks: [{ name: "vda", backend: await openImage(img, false) }],
      vsock: false, balloon: false,
    });
    host.start(vm);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => { timer = setTimeout(() => r("timeout"), FIRST_BOOT_MS); });
    const r = await Promise.race([vm.finished, timeout]);
    clearTimeout(timer);
    if (r === "timeout") throw new ImageError(`the Debian root disk's first boot did not finish in ${FIRST_BOOT_MS / 60_000} minutes`);
    return text;
  } finally {
    await host.close();
  }
}

export function isDebianRootName(s: string): boolean {
  return s === "debian" || s === DEBIAN_ROOT;
}

// The current build, if there is one and its disk is there.
export function cachedDebianRoot(env: NodeJS.ProcessEnv = process.env): { manifest: DebianRootManifest; disk: string } | undefined {
  const dir = new ImageCache(cacheRoot(env)).guestDir(DEBIAN_ROOT);
  const manifest = readRootManifest(dir);
  if (!manifest) return undefined;
  const disk = join(dir, manifest.disk.file);
  return existsSync(disk) ? { manifest, disk } : undefined;
}
