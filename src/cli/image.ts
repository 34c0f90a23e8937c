// `ringvisor image ...`: the guest image cache (download, build, list).
import type { Command } from "commander";
import { listCache, pullDefaultGuest } from "../host/images/pull.js";
import { formatBytes } from "../host/images/progress.js";

export function registerImageCommands(program: Command): void {
  const image = program.command("image").description("guest images: Debian's riscv64 kernel and a busybox initramfs, cached locally");

  image
    .command("pull")
    .description("download and build the default guest (kernel Image + initramfs), or check the cached one against the mirror")
    .option("--mirror <url>", "Debian mirror (default: $RINGVISOR_MIRROR, else the first Debian mirror in the apt sources)")
    .option("-q, --quiet", "no progress output")
    .option("--allow-unverified", "go on if the mirror's index cannot be verified (no signature, no gpgv or keyring), with a warning; a bad signature is still refused")
    .action(async (opts: { mirror?: string; quiet?: boolean; allowUnverified?: boolean }) => {
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
    });

  image
    .command("ls")
    .description("list what the image cache holds")
    .option("--json", "machine-readable output")
    .action(async (opts: { json?: boolean }) => {
      const l = await listCache();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(l, null, 2)}\n`);
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
      for (const d of l.debs) {
        const name = d.package ? `${d.package} ${d.version}` : `${d.sha256.slice(0, 12)} (not used by any guest)`;
        process.stdout.write(`deb  ${formatBytes(d.size).padStart(10)}  ${name}  ${d.path}\n`);
      }
    });
}
