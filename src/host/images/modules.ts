// Kernel modules from a kernel package. Debian's package ships no modules.dep (depmod writes it
// at install time), so dependencies come from where depmod reads them: the "depends=" entry of
// each module's .modinfo ELF section. modules.builtin says which drivers need no module at all.
import { ImageError } from "../../errors.js";
import { decompress, extractTar } from "./deb.js";

export interface KernelModule {
  name: string;
  // Relative to lib/modules/<version>/, e.g. kernel/drivers/virtio/virtio_mmio.ko (decompressed).
  path: string;
  data: Buffer;
  depends: string[];
}

export interface ModuleSet {
  // Load order: every module after the modules it depends on.
  modules: KernelModule[];
  // Requested drivers that are built into the kernel.
  builtin: string[];
  // The package's modules.builtin, for modprobe inside the guest.
  builtinList: string;
}

// Module names treat "-" and "_" alike (kmod does the same).
export const moduleName = (s: string): string => s.replace(/-/g, "_");

function moduleNameOfPath(path: string): string | undefined {
  const m = /\/([^/]+)\.ko(?:\.xz|\.gz|\.zst)?$/.exec(path);
  return m ? moduleName(m[1]) : undefined;
}

export async function collectModules(tar: Buffer, kernelVersion: string, wanted: readonly string[]): Promise<ModuleSet> {
  const esc = kernelVersion.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const inTree = new RegExp(`^(?:usr/)?lib/modules/${esc}/(.+)$`);
  const found = new Map<string, KernelModule>();
  let builtinList: string | undefined;
  let builtin = new Set<string>();
  let pending = new Set(wanted.map(moduleName));

  // Usually one pass; a dependency outside the requested set costs another walk of the tar.
  while (pending.size > 0) {
    const firstPass = builtinList === undefined;
    const entries = await extractTar(tar, (name) => {
      const rel = inTree.exec(name)?.[1];
      if (rel === undefined) return false;
      if (rel === "modules.builtin") return firstPass;
      const mod = moduleNameOfPath(rel);
      return mod !== undefined && pending.has(mod);
    });
    if (firstPass) {
      const list = entries.find((e) => e.name.endsWith("/modules.builtin"));
      if (!list) throw new ImageError(`the kernel package has no lib/modules/${kernelVersion}/modules.builtin`);
      builtinList = list.data.toString("utf8");
      builtin = new Set(builtinList.split("\n").map(moduleNameOfPath).filter((n): n is string => n !== undefined));
    }
    const next = new Set<string>();
    for (const e of entries) {
      const name = moduleNameOfPath(e.name);
      if (name === undefined || found.has(name) || builtin.has(name)) continue;
      const data = await decompress(e.data, e.name);
      const info = modinfo(data, e.name);
      const vermagic = info.get("vermagic")?.split(" ")[0];
      if (vermagic !== kernelVersion) throw new ImageError(`${e.name} is built for kernel ${vermagic}, not ${kernelVersion}`);
      const depends = (info.get("depends") ?? "").split(",").filter((d) => d !== "").map(moduleName);
      const path = inTree.exec(e.name)![1].replace(/\.(xz|gz|zst)$/, "");
      found.set(name, { name, path, data, depends });
      for (const d of depends) if (!found.has(d) && !builtin.has(d)) next.add(d);
    }
    for (const name of pending) {
      if (!found.has(name) && !builtin.has(name)) throw new ImageError(`kernel ${kernelVersion} has no module ${name} and does not build it in`);
    }
    pending = new Set([...next].filter((n) => !found.has(n)));
  }

  const order: KernelModule[] = [];
  const visiting = new Set<string>();
  const visit = (name: string): void => {
    const m = found.get(name);
    if (!m || order.includes(m)) return;
    if (visiting.has(name)) throw new ImageError(`kernel modules have a dependency cycle through ${name}`);
    visiting.add(name);
    m.depends.forEach(visit);
    visiting.delete(name);
    order.push(m);
  };
  wanted.map(moduleName).forEach(visit);
  return {
    modules: order,
    builtin: wanted.map(moduleName).filter((n) => builtin.has(n)),
    builtinList: builtinList ?? "",
  };
}

// A modules.dep (modules.dep(5)) for the given modules: "path: dep-path ...", with all
// transitive dependencies listed so that modprobe can load them from last to first.
export function modulesDep(modules: KernelModule[]): string {
  const byName = new Map(modules.map((m) => [m.name, m]));
  const closure = (m: KernelModule, acc: KernelModule[]): KernelModule[] => {
    for (const d of m.depends) {
      const dm = byName.get(d);
      if (dm && !acc.includes(dm)) {
        acc.push(dm);
        closure(dm, acc);
      }
    }
    return acc;
  };
  return modules.map((m) => `${m.path}:${closure(m, []).map((d) => ` ${d.path}`).join("")}\n`).join("");
}

// key=value strings of a module's .modinfo section (ELF64 little-endian relocatable object).
export function modinfo(ko: Uint8Array, what = "module"): Map<string, string> {
  const bad = (why: string): ImageError => new ImageError(`${what} is not a valid kernel module: ${why}`);
  if (ko.length < 64 || ko[0] !== 0x7f || ko[1] !== 0x45 || ko[2] !== 0x4c || ko[3] !== 0x46) throw bad("no ELF magic");
  if (ko[4] !== 2 || ko[5] !== 1) throw bad("not ELF64 little-endian");
  const dv = new DataView(ko.buffer, ko.byteOffset, ko.byteLength);
  const shoff = Number(dv.getBigUint64(40, true));
  const shentsize = dv.getUint16(58, true);
  const shnum = dv.getUint16(60, true);
  const shstrndx = dv.getUint16(62, true);
  if (shentsize < 64 || shoff + shnum * shentsize > ko.length || shstrndx >= shnum) throw bad("section headers lie outside the file");
  const section = (i: number): { name: number; offset: number; size: number } => {
    const o = shoff + i * shentsize;
    return { name: dv.getUint32(o, true), offset: Number(dv.getBigUint64(o + 24, true)), size: Number(dv.getBigUint64(o + 32, true)) };
  };
  const strtab = section(shstrndx);
  const text = (off: number, size: number): string => Buffer.from(ko.buffer, ko.byteOffset + off, size).toString("utf8");
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameOff = strtab.offset + s.name;
    if (nameOff + 9 > ko.length || text(nameOff, 9) !== ".modinfo\0") continue;
    if (s.offset + s.size > ko.length) throw bad(".modinfo lies outside the file");
    const info = new Map<string, string>();
    for (const kv of text(s.offset, s.size).split("\0")) {
      const eq = kv.indexOf("=");
      if (eq > 0 && !info.has(kv.slice(0, eq))) info.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    return info;
  }
  throw bad("no .modinfo section");
}
