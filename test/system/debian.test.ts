// The Debian userland root disk (`ringvisor image pull debian`, src/host/images/userland.ts):
// built on first use (debootstrap --foreign on the host, dpkg's configuration at a first boot
// inside Ringvisor), then booted through a qcow2 overlay with root=/dev/vda behind the
// user-mode NAT, with the guest's ssh port forwarded to the host's loopback. Checked the way a
// person uses it: Debian's own init brings the system up; root logs in on the console; `ssh -p`
// with the host user's key runs commands (and a login without the key is refused); dpkg knows
// its packages; `apt-get install` fetches a package from the host's mirror through the NAT and
// it runs; the guest agent answers; and the cached image is unchanged.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Host } from "../../src/host/host.js";
import { Nat } from "../../src/host/net/nat.js";
import { macFor } from "../../src/host/net/switch.js";
import { createQcow2 } from "../../src/host/disks/qcow2.js";
import { openImage } from "../../src/host/disks/open.js";
import { execInGuest } from "../../src/host/agent.js";
import { pullDebianRoot } from "../../src/host/images/userland.js";
import { BOOT_COMPLETE } from "../../src/host/images/initramfs.js";
import { defaultGuest } from "./guest.js";
import { freePort } from "../helpers.js";
import { GuestConsole, until } from "./console.js";

const run = promisify(execFile);
const g = await defaultGuest();
const BUILD_MS = 50 * 60_000;
const BOOT_MS = 300_000;
const APT_MS = 20 * 60_000;


test("the Debian root disk: sysvinit boots it, console login, ssh -p with the host's key, dpkg, apt-get install through the NAT, the guest agent", { skip: g.skip, timeout: BUILD_MS + BOOT_MS + APT_MS }, async () => {
  const guest = g.need();
  const root = await pullDebianRoot({ quiet: true });
  assert.ok(root.manifest.packages.includes("openssh-server") && root.manifest.packages.includes("apt"), root.manifest.packages.join(" "));
  const baseStat = statSync(root.disk);
  const dir = mkdtempSync(join(tmpdir(), "ringvisor-debian-"));
  const overlay = join(dir, "debian.qcow2");
  await createQcow2(overlay, { sizeBytes: baseStat.size, backingFile: root.disk, backingFormat: "raw" });

  const port = await freePort();
  const nat = new Nat();
  await nat.forward({ hostPort: port, guestPort: 22 });
  const host = new Host({ machineBytes: 1 << 30 });
  const con = new GuestConsole();
  try {
    const vm = host.createVm({
      name: "debian", kernel: readFileSync(guest.kernel), initrd: readFileSync(guest.initrd),
      cmdline: "console=ttyS0 panic=-1 loglevel=4 root=/dev/vda", memBytes: 512 << 20, cpus: 1, virt: "bt", console: con.sink,
      disks: [{ name: "vda", backend: await openImage(overlay, false) }], nics: [{ port: nat, mac: macFor("debian", 0) }],
    });
    host.start(vm);
    const diag = (): string => con.tail();
    await until("runlevel 2 (the boot-complete line)", () => con.text.includes(BOOT_COMPLETE), BOOT_MS, diag, vm);
    assert.match(con.text, /INIT: Entering runlevel: 2/, "Debian's sysvinit ran the boot");

    // The console: root logs in without a password (the console is the VM owner's).
    await until("the login prompt", () => /debian login: $/m.test(con.text), BOOT_MS, diag, vm);
    const typed = con.text.length;
    vm.input(new TextEncoder().encode("root\n"));
    await until("a root shell on the console", () => con.text.slice(typed).includes("root@debian:~# "), BOOT_MS, diag, vm);
    const at = con.text.length;
    vm.input(new TextEncoder().encode("cat /etc/debian_version; id -un\n"));
    await until("the command's output", () => /[\r\n]13\.\d+\r?\nroot\r?\n/.test(con.text.slice(at)), BOOT_MS, diag, vm);

    // ssh through the forwarded port, with the key the image authorizes.
    const ssh = async (cmd: string, extra: string[] = [], timeout = BOOT_MS): Promise<string> => {
      const r = await run("ssh", ["-i", root.sshKey, "-p", String(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=60", "-o", "LogLevel=ERROR", ...extra, "root@127.0.0.1", cmd], { timeout, maxBuffer: 16 << 20 });
      return r.stdout;
    };
    let first = "";
    for (let i = 0; i < 30; i++) {
      try {
        first = await ssh("uname -m; . /etc/os-release; echo $PRETTY_NAME");
        break;
      } catch (e) {
        if (i === 29) throw new Error(`ssh never got in: ${(e as Error).message}\n${diag()}`);
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
    assert.match(first, /^riscv64\nDebian GNU\/Linux 13 \(trixie\)\n$/);
    await assert.rejects(ssh("true", ["-o", "PubkeyAuthentication=no", "-o", "PasswordAuthentication=no"]), "without the key the guest refuses the login");
    const status = await ssh("dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' openssh-server apt dpkg sysvinit-core; dpkg --audit; echo audit=$?");
    assert.match(status, /^apt ii \ndpkg ii \nopenssh-server ii \nsysvinit-core ii \naudit=0\n$/, "every package installed and configured");
    assert.match(await ssh("ip -4 addr show eth0; cat /etc/resolv.conf"), /inet 10\.0\.2\.15\/24[\s\S]*nameserver 10\.0\.2\.3/, "Debian's DHCP client took the NAT's lease");

    // apt-get through the NAT, against the mirror the host uses.
    const apt = await ssh("apt-get update -q >/tmp/apt.log 2>&1 && apt-get install -y -q --no-install-recommends hello >>/tmp/apt.log 2>&1; s=$?; tail -n 5 /tmp/apt.log; echo apt=$s; hello", [], APT_MS);
    assert.match(apt, /apt=0\nHello, world!\n$/, apt);

    // The guest agent runs under sysvinit too.
    const a = await execInGuest(vm, ["sh", "-c", "echo $((6*7)); ls /usr/bin/hello"], { timeoutMs: 120_000 });
    assert.deepEqual([a.status, a.stdout.toString()], [0, "42\n/usr/bin/hello\n"]);
  } finally {
    await host.close();
    nat.close();
  }
  assert.equal(statSync(root.disk).mtimeMs, baseStat.mtimeMs, "the cached root disk was not written: the guest wrote to its overlay");
  const check = await run("qemu-img", ["check", overlay]);
  assert.match(check.stdout, /No errors were found on the image/);
});
