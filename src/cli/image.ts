// `ringvisor image ...`: the guest image cache (download, build, list).
import type { Command } from "commander";
import { listCache, pullDefaultGuest } from "../host/images/pull.js";
import { formatBytes } from "../host/images/progress.js";
import { cachedDebianRoot, pullDebianRoot } from "../host/images/userland.js";
import { UserError } from "../errors.js";

export function registerImageCommands(program: Command): void {
  const image = program.command("image").description("guest images: Debian's riscv64 kernel and a busybox initramfs, cached locally");

  image
    .command("pull")
    .description("download and build the default guest (kernel Image + initramfs), or check the cached one against the mirror; `pull debian` also builds a Debian root disk (dpkg, apt, an ssh server)")
    .argument("[image]", "debian: also the Debian userland root disk (debootstrap on the host, dpkg's configuration at a first boot in Ringvisor)")
    .option("--rebuild", "with debian: build the root disk again even if the cached one is up to date")
    .option("--mirror <url>", "Debian mirror (default: $RINGVISOR_MIRROR, else the first Debian mirror in the apt sources)")
    .option("-q, --quiet", "no progress output")
    .option("--allow-unverified", "go on if the mirror's index cannot be verified (no signature, no gpgv or keyring), with a warning; a bad signature is still refused")
    .action(async (which: string | undefined, opts: { mirror?: string; quiet?: boolean; allowUnverified?: boolean; rebuild?: boolean }) => {
      if (which !== undefined && which !== "debian") throw new UserError(`unknown image ${which}: \`image pull\` pulls the default guest, \`image pull debian\` also the Debian root disk`);
      const r = await pullDefaultGuest({ mirror: opts.mirror, quiet: opts.quiet, allowUnverified: opts.allowUnverified });
      const s = r.stats;
      const what = s.built ? "built" : "up to date";
      process.stdout.write(
        `${r.manifest.name}: ${what}\n` +
          `  kernel  ${r.kernelVersion}  ${formatBytes(r.manifest.kernel.size)}  ${r.kernel}\n` +
          `  initrd  busybox ${r.busyboxVersion}  ${formatBytes(r.manifest.initrd.size)}  ${r.initrd}\n` +
          (r.rootfs ? `  rootfs  ext4, ${formatBytes(r.manifest.rootfs!.size)}  ${r.rootfs}  (boot it through an overlay: ringvisor disk create NAME --backing ${r.rootfs}; run --disk NAME --append "console=ttyS0 root=/dev/vda")\n` : "") +
          `  ${s.requests} downloads (${formatBytes(s.bytes)}), ${s.debsFromCache} packages from cache, ${s.seconds.toFixed(1)} s\n`,
      );
      if (which === "debian") {
        const d = await pullDebianRoot({ mirror: opts.mirror, quiet: opts.quiet, allowUnverified: opts.allowUnverified, rebuild: opts.rebuild });
        process.stdout.write(
          `${d.manifest.name}: ${d.built ? "built" : "up to date"} (${d.manifest.packages.length} packages, built ${d.manifest.createdAt})\n` +
            `  disk    ext4, ${formatBytes(d.manifest.disk.size)} (sparse)  ${d.disk}\n` +
            `  ssh key ${d.sshKey}\n` +
            `  boot it through an overlay: ringvisor disk create NAME --backing debian; ringvisor run --disk NAME --append "console=ttyS0 root=/dev/vda" --forward 2222:22\n` +
            `  then: ssh -i ${d.sshKey} -p 2222 root@127.0.0.1\n`,
        );
      }
    });

  image
    .command("ls")
    .description("list what the image cache holds")
    .option("--json", "machine-readable output")
    .action(async (opts: { json?: boolean }) => {
      const l = await listCache();
      const root = cachedDebianRoot({ ...process.env, RINGVISOR_CACHE: l.root });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ...l, debianRoot: root ?? null }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`cache ${l.root}\n`);
      if (l.guests.length === 0) process.stdout.write("no guests cached; run `ringvisor image pull`\n");
      for (const g of l.guests) {
        process.stdout.write(
          `${g.name}  kernel ${g.kernelVersion}  busybox ${g.busyboxVersion}  (built ${g.manifest.createdAt})\n` +
            `  kernel  ${formatBytes(g.kernelSize).padStart(10)}  ${g.kernel}\n` +
            `  initrd  ${formatBytes(g.initrdSize).padStart(10)}  ${g.initrd}\n`,
        );
      }
      if (root) {
        const m = root.manifest;
        process.stdout.write(
          `${m.name}  Debian ${m.suite}, ${m.packages.length} packages  (built ${m.createdAt}; \`disk create NAME --backing debian\`)\n` +
            `  disk    ${formatBytes(m.disk.size).padStart(10)}  ${root.disk}\n`,
        );
      }
      for (const d of l.debs) {
        const name = d.package ? `${d.package} ${d.version}` : `${d.sha256.slice(0, 12)} (not used by any guest)`;
        process.stdout.write(`deb  ${formatBytes(d.size).padStart(10)}  ${name}  ${d.path}\n`);
      }
    });
}
