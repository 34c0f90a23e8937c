// `ringvisor disk ...`: disk images in the user's disk store (qcow2; overlays over a base).
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import type { Command } from "commander";
import { UserError } from "../errors.js";
import { DISK_NAME, diskStore, imageFormat, resolveDisk } from "../host/disks/open.js";
import { createQcow2, qcow2Info, type Qcow2Info } from "../host/disks/qcow2.js";
import { formatBytes } from "../host/images/progress.js";
import { cachedDebianRoot, isDebianRootName } from "../host/images/userland.js";

// 4G, 512M, 100K, 1T or plain bytes; a whole number of 512-byte sectors.
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(v.trim());
  if (!m) throw new UserError(`--size ${v}: expected a size such as 4G, 512M or 10737418240`);
  const mult = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2]!.toUpperCase() as "" | "K" | "M" | "G" | "T"];
  const n = Math.round(Number(m[1]) * mult);
  if (n < 512 || n % 512 !== 0) throw new UserError(`--size ${v}: a disk is a whole number of 512-byte sectors, at least one`);
  if (n > 2 ** 50) throw new UserError(`--size ${v}: at most 1024T`);
  return n;
}

interface Described {
  name: string;
  path: string;
  format: "raw" | "qcow2";
  virtualSize: number;
  fileSize: number;
  backing?: string;
  backingFormat?: string;
  clusterSize?: number;
  allocatedBytes?: number;
}

async function describe(path: string): Promise<Described> {
  const format = imageFormat(path);
  const name = basename(path).replace(/\.qcow2$/, "");
  if (format === "raw") {
    const st = statSync(path);
    return { name, path, format, virtualSize: st.size, fileSize: st.blocks * 512 };
  }
  const i: Qcow2Info = await qcow2Info(path);
  return {
    name, path, format, virtualSize: i.virtualSize, fileSize: statSync(path).size, backing: i.backingPath, backingFormat: i.backingFormat,
    clusterSize: i.clusterSize, allocatedBytes: i.allocatedClusters * i.clusterSize,
  };
}

export function registerDiskCommands(program: Command): void {
  const disk = program.command("disk").description(`disk images (qcow2) in the disk store (${diskStore()}); give them to a VM with --disk NAME`);

  disk
    .command("create")
    .description("create an empty qcow2 disk, or an overlay over a base image (copy-on-write: the base is only read)")
    .argument("<name>", "a name in the disk store (letters, digits, - _ .) or a path ending in .qcow2")
    .option("--size <size>", "virtual size, e.g. 4G (with --backing: default the base's size)", "")
    .option("--backing <base>", "base image (a disk name or a file, raw or qcow2, or debian: the image cache's Debian root disk), written as a path relative to the new disk")
    .action(async (name: string, opts: { size: string; backing?: string }) => {
      const path = targetPath(name);
      let backing: { path: string; format: "raw" | "qcow2"; size: number } | undefined;
      if (opts.backing !== undefined) {
        // `debian`: the Debian root disk of the image cache (ringvisor image pull debian).
        const bpath = isDebianRootName(opts.backing) ? cachedDebianRoot()?.disk : resolveDisk(opts.backing);
        if (bpath === undefined) throw new UserError("there is no Debian root disk in the image cache yet: run `ringvisor image pull debian`");
        const d = await describe(bpath).catch((e: unknown) => {
          throw e instanceof UserError ? e : new UserError(`backing image ${opts.backing}: ${(e as Error).message}`);
        });
        backing = { path: bpath, format: d.format, size: d.virtualSize };
      }
      const size = opts.size !== "" ? parseSize(opts.size) : backing ? Math.ceil(backing.size / 512) * 512 : undefined;
      if (size === undefined) throw new UserError("disk create needs --size (e.g. --size 4G), or --backing to take the base's size");
      mkdirSync(resolve(path, ".."), { recursive: true });
      await createQcow2(path, {
        sizeBytes: size,
        backingFile: backing ? relative(resolve(path, ".."), resolve(backing.path)) : undefined,
        backingFormat: backing?.format,
      });
      process.stdout.write(`created ${path}: qcow2, ${formatBytes(size)}${backing ? `, over ${backing.path} (${backing.format})` : ""}\n`);
    });

  disk
    .command("info")
    .description("what an image is: format, virtual size, space used, backing file")
    .argument("<disk>", "a disk name or an image file")
    .option("--json", "machine-readable output")
    .action(async (name: string, opts: { json?: boolean }) => {
      const d = await describe(resolveDisk(name));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
        return;
      }
      const lines = [
        `image: ${d.path}`,
        `format: ${d.format}`,
        `virtual size: ${formatBytes(d.virtualSize)} (${d.virtualSize} bytes)`,
        `file size: ${formatBytes(d.fileSize)}`,
      ];
      if (d.clusterSize) lines.push(`cluster size: ${d.clusterSize}`, `allocated: ${formatBytes(d.allocatedBytes ?? 0)}`);
      if (d.backing) lines.push(`backing file: ${d.backing} (${d.backingFormat ?? "format probed"})`);
      process.stdout.write(`${lines.join("\n")}\n`);
    });

  disk
    .command("ls")
    .description("list the disks in the disk store")
    .option("--json", "machine-readable output")
    .action(async (opts: { json?: boolean }) => {
      const dir = diskStore();
      let files: string[] = [];
      try {
        files = readdirSync(dir).filter((f) => f.endsWith(".qcow2")).sort();
      } catch {
        // no store yet: no disks
      }
      const all = await Promise.all(files.map((f) => describe(join(dir, f))));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
        return;
      }
      if (all.length === 0) {
        process.stdout.write(`no disks in ${dir}; create one with: ringvisor disk create NAME --size 4G\n`);
        return;
      }
      process.stdout.write(`${"NAME".padEnd(24)}${"SIZE".padStart(10)}${"USED".padStart(10)}  BACKING\n`);
      for (const d of all) {
        process.stdout.write(`${d.name.padEnd(24)}${formatBytes(d.virtualSize).padStart(10)}${formatBytes(d.fileSize).padStart(10)}  ${d.backing ?? "-"}\n`);
      }
    });
}

// Where `disk create NAME` puts its image.
function targetPath(name: string): string {
  if (name.includes("/")) {
    if (!name.endsWith(".qcow2")) throw new UserError(`${name}: a disk file's name ends in .qcow2`);
    return name;
  }
  const bare = name.replace(/\.qcow2$/, "");
  if (!DISK_NAME.test(bare)) throw new UserError(`disk name '${name}' must be 1 to 63 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit`);
  return join(diskStore(), `${bare}.qcow2`);
}
