// A host folder shared into the default Debian guest over virtio-9p (src/host/share.ts), with
// the guest's own 9p modules: files read back with their checksums, a read-only share refusing
// every change, a read-write one whose changes (create, write 4 MiB, mkdir, rename, truncate,
// remove) are on the host afterwards, and no way out of the folder: symlinks that point outside
// resolve inside the guest, "..", symlink and hard-link creation get errors, and a canary file
// next to the share is never read or changed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Host } from "../../src/host/host.js";
import { Share } from "../../src/host/share.js";
import { execInGuest } from "../../src/host/agent.js";
import { readInput } from "../../src/cli/args.js";
import { defaultGuest } from "./guest.js";
import { GuestConsole, shell } from "./console.js";

const g = await defaultGuest();
const BOOT_MS = 180_000;
const T = { timeoutMs: 120_000 };
const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

test("virtio-9p: a read-only and a read-write host folder, confined", { skip: g.skip, timeout: 2 * BOOT_MS }, async () => {
  const top = mkdtempSync(join(tmpdir(), "ringvisor-share-"));
  const ro = join(top, "ro");
  const rw = join(top, "rw");
  mkdirSync(join(ro, "sub"), { recursive: true });
  mkdirSync(rw);
  const blob = randomBytes(2 << 20);
  writeFileSync(join(ro, "sub", "blob"), blob);
  writeFileSync(join(ro, "hello.txt"), "hello from the host\n");
  const canary = join(top, "canary");
  writeFileSync(canary, "host secret\n");
  symlinkSync(canary, join(ro, "out-abs"));
  symlinkSync("../canary", join(ro, "out-rel"));
  const canaryMtime = statSync(canary).mtimeMs;
  const guest = g.need();
  const host = new Host({ machineBytes: 1 << 30 });
  try {
    const con = new GuestConsole();
    const vm = host.createVm({
      name: "shared", kernel: readInput(guest.kernel), initrd: readInput(guest.initrd), cmdline: "console=ttyS0 panic=-1 loglevel=1", memBytes: 256 << 20, cpus: 1,
      virt: "trap-and-emulate", console: con.sink, shares: [new Share(ro, "ro", true), new Share(rw, "rw", false)],
    });
    host.start(vm);
    await shell(vm, con, BOOT_MS);
    const sh = async (c: string): Promise<{ out: string; err: string; status: number }> => {
      const r = await execInGuest(vm, ["sh", "-c", c], T);
      return { out: r.stdout.toString(), err: r.stderr.toString(), status: r.status };
    };
    for (const t of ["ro", "rw"]) assert.equal((await sh(`mkdir -p /mnt/${t} && mount -t 9p -o trans=virtio,version=9p2000.L ${t} /mnt/${t}`)).status, 0);
    assert.equal((await sh("cat /mnt/ro/hello.txt")).out, "hello from the host\n");
    assert.equal((await sh("sha256sum /mnt/ro/sub/blob")).out, `${sha(blob)}  /mnt/ro/sub/blob\n`);
    assert.equal((await sh("ls /mnt/ro | sort | tr '\\n' ' '")).out, "hello.txt out-abs out-rel sub ");
    // Read-only: every change refused.
    for (const c of ["echo x > /mnt/ro/new", "mkdir /mnt/ro/d", "rm /mnt/ro/hello.txt", "mv /mnt/ro/hello.txt /mnt/ro/h2", "truncate -s 0 /mnt/ro/hello.txt", "chmod 777 /mnt/ro/hello.txt"]) {
      const r = await sh(c);
      assert.notEqual(r.status, 0, `refused: ${c}`);
      assert.match(r.err, /Read-only file system/, c);
    }
    // Confinement: links pointing out resolve in the guest's own namespace, never the host's.
    assert.doesNotMatch((await sh("cat /mnt/ro/out-abs /mnt/ro/out-rel /mnt/ro/../canary 2>&1")).out, /host secret/);
    assert.equal((await sh("ls /mnt/ro/.. | grep -c canary")).out, "0\n");
    // Read-write: changes land on the host.
    assert.equal((await sh("dd if=/dev/urandom of=/mnt/rw/big bs=64k count=64 2>/dev/null && sha256sum /mnt/rw/big | cut -d' ' -f1")).status, 0);
    const bigSum = (await sh("sha256sum /mnt/rw/big | cut -d' ' -f1")).out.trim();
    assert.equal((await sh("mkdir /mnt/rw/d && echo one > /mnt/rw/d/a && mv /mnt/rw/d/a /mnt/rw/d/b && echo two >> /mnt/rw/d/b && echo gone > /mnt/rw/tmp && rm /mnt/rw/tmp && sync")).status, 0);
    for (const c of ["ln -s /etc /mnt/rw/link", "ln /mnt/rw/big /mnt/rw/hard", "mknod /mnt/rw/dev c 1 3"]) assert.notEqual((await sh(c)).status, 0, `refused: ${c}`);
    assert.equal(sha(readFileSync(join(rw, "big"))), bigSum, "4 MiB written by the guest, as the host reads it");
    assert.equal(readFileSync(join(rw, "d", "b"), "utf8"), "one\ntwo\n");
    assert.ok(!existsSync(join(rw, "tmp")) && !existsSync(join(rw, "link")) && !existsSync(join(rw, "hard")) && !existsSync(join(rw, "dev")));
    assert.equal(readFileSync(canary, "utf8"), "host secret\n");
    assert.equal(statSync(canary).mtimeMs, canaryMtime);
    for (const d of vm.stats().virtio.filter((x) => x.name.startsWith("virtio-9p"))) assert.equal(d.lastError, undefined);
  } finally {
    await host.close();
    rmSync(top, { recursive: true, force: true });
  }
});
