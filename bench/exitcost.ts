// The price of each kind of VMM exit, for bench/virt.ts. bench/programs/exitcost.c is an S-mode
// guest kernel that times one operation per section between two markers (CSR reads and writes,
// SUM toggles, sret, sfence.vma, a shadow fill, an SBI call, a system call and a page fault round
// trip), after an empty loop that is subtracted. Run once per --virt mode, it gives ns per
// operation in each; the difference is what the hypervisor adds per exit. Multiplied by the exit
// counts of a Linux run's --stats report, that says where trap-and-emulate's time goes.
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";

const SECTION = /^section (\d+) (\S+): (\d+) iterations, (\d+) ops? each: (.*)$/;
const MARKER = /^marker (\d+): hart (\d+) instret (\d+) at ([\d.]+) s$/;
const EMPTY = "empty";

export class ExitCostError extends Error {}

interface Section { key: string; what: string; iterations: number; ops: number; seconds: number }

// ns per operation by operation key, for one mode.
export type Costs = Map<string, number>;

// Builds build/bench/exitcost.elf with the guest kernels' runtime; returns its path.
export function buildExitCost(root: string, out: string): string {
  const script = join(root, "bench/programs/build-exitcost.sh");
  const b = spawnSync("bash", [script, out], { encoding: "utf8" });
  if (b.error || b.status !== 0) throw new ExitCostError(`${script} failed:\n${b.error?.message ?? b.stderr}`);
  return join(out, "exitcost.elf");
}

// One run of the kernel under `mode`: each section's ns per operation, the empty loop's own time
// subtracted (its key is "empty": ns per iteration of the loop alone), and the derived costs.
export function runExitCost(cli: string, elf: string, mode: string, timeoutS: number): Promise<Costs> {
  return new Promise((resolve, reject) => {
    const args = [cli, "run", "--kernel", elf, "--append", "", "--mem", "64", "--virt", mode, "--markers"];
    const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutS * 1000);
    p.stdout.on("data", (d: Buffer) => { out += d.toString("latin1"); });
    p.stderr.on("data", (d: Buffer) => { err += d.toString(); });
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      const tail = `console:\n${out.slice(-800)}\nstderr:\n${err.slice(-800)}`;
      const heads = out.split(/\r?\n/).flatMap((l) => {
        const m = SECTION.exec(l.trim());
        return m ? [{ key: m[2]!, iterations: Number(m[3]), ops: Number(m[4]), what: m[5]! }] : [];
      });
      const marks = err.split("\n").flatMap((l) => {
        const m = MARKER.exec(l.trim());
        return m ? [Number(m[4])] : [];
      });
      if (code !== 0 || heads.length === 0 || marks.length !== 2 * heads.length) {
        const why = code !== 0 ? `exit status ${code ?? signal}` : `${heads.length} sections, ${marks.length} markers`;
        reject(new ExitCostError(`exitcost --virt ${mode}: ${why}; ${tail}`));
        return;
      }
      const sections: Section[] = heads.map((h, i) => ({ ...h, seconds: marks[2 * i + 1]! - marks[2 * i]! }));
      const empty = sections.find((s) => s.key === EMPTY);
      const loopNs = empty ? (empty.seconds / empty.iterations) * 1e9 : 0;
      resolve(withDerived(new Map(sections.map((s) => [
        s.key,
        s.key === EMPTY ? loopNs : ((s.seconds * 1e9) / s.iterations - loopNs) / s.ops,
      ]))));
    });
  });
}

// What a composite section contains besides the operation it is named for, taken out by
// subtracting the sections that measure those parts alone.
const DERIVED: { key: string; what: string; from: string; minus: string[] }[] = [
  { key: "sret alone", what: "sret S to S, without the csrs sstatus.SPP", from: "sret", minus: ["sstatus-spp"] },
  { key: "shadow fill", what: "a load's shadow page fault (fill), without the sfence.vma", from: "shadow-fill", minus: ["sfence"] },
  { key: "ecall reflection", what: "a U ecall reflected to S, without its sret", from: "u-ecall", minus: ["sret alone"] },
  { key: "fault reflection", what: "a page fault reflected to S, without fence, sret and fill", from: "page-fault", minus: ["shadow-fill", "sret alone"] },
];

function withDerived(costs: Costs): Costs {
  const all = new Map(costs);
  for (const d of DERIVED) {
    const parts = [d.from, ...d.minus].map((k) => all.get(k));
    if (parts.every((x) => x !== undefined)) all.set(d.key, parts.slice(1).reduce((a, b) => a! - b!, parts[0])!);
  }
  return all;
}

// Per operation, the median over several runs of one mode.
export function medianCosts(runs: Costs[]): Costs {
  const keys = [...new Set(runs.flatMap((c) => [...c.keys()]))];
  return new Map(keys.map((k) => {
    const xs = runs.flatMap((c) => (c.has(k) ? [c.get(k)!] : [])).sort((x, y) => x - y);
    return [k, xs[Math.floor(xs.length / 2)]!] as [string, number];
  }));
}

// other - base for every operation measured in both modes: what an exit adds.
export function extraCosts(byMode: Map<string, Costs>, base: string, other: string): Costs {
  const b = byMode.get(base);
  const o = byMode.get(other);
  if (!b || !o) return new Map();
  return new Map([...o].flatMap(([k, y]) => (b.has(k) && k !== EMPTY ? [[k, y - b.get(k)!] as [string, number]] : [])));
}

const ns = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(0));

// The table: operation, ns per op in each mode, and the extra per exit (other - base); further
// modes (bt) get a column of their own after it.
export function costTable(byMode: Map<string, Costs>, base: string, other: string): string {
  const b = byMode.get(base);
  const o = byMode.get(other);
  const rest = [...byMode.keys()].filter((m) => m !== base && m !== other);
  const extras = extraCosts(byMode, base, other);
  const keys = [...new Set([...byMode.values()].flatMap((c) => [...c.keys()]))];
  const lines = [`${"operation".padEnd(18)}${`ns/op ${base}`.padStart(14)}${`ns/op ${other}`.padStart(24)}${"extra ns per exit".padStart(19)}${rest.map((m) => `ns/op ${m}`.padStart(14)).join("")}`];
  for (const k of keys) {
    const x = b?.get(k);
    const y = o?.get(k);
    const label = k === EMPTY ? "empty loop (iter)" : DERIVED.some((d) => d.key === k) ? `${k} *` : k;
    lines.push(`${label.padEnd(18)}${ns(x).padStart(14)}${ns(y).padStart(24)}${(k === EMPTY ? "" : ns(extras.get(k))).padStart(19)}${rest.map((m) => ns(byMode.get(m)?.get(k)).padStart(14)).join("")}`);
  }
  lines.push("* derived: " + DERIVED.map((d) => `${d.key} = ${d.from} - ${d.minus.join(" - ")}`).join("; "));
  return lines.join("\n");
}

// Which measured operation prices each exit reason of the --stats table; the first match wins.
const PRICE: [RegExp, string][] = [
  [/^csr write sstatus$/, "sstatus-sum"],
  [/^csr read sepc$/, "csrr-sepc"],
  [/^csr read /, "csrr-sscratch"],
  [/^csr write /, "csrw-sscratch"],
  [/^sfence\.vma$/, "sfence"],
  [/^sret$/, "sret alone"],
  [/^shadow page fault$/, "shadow fill"],
  [/^hypercall \(SBI\)$/, "sbi"],
  [/^reflected ecall from U$/, "ecall reflection"],
  [/^reflected .*page fault$/, "fault reflection"],
];

// VMM exits by reason from a --stats report ("  <reason>   1,234   5.6%"), summed over vCPUs.
export function exitCounts(report: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of report.matchAll(/^\s*(\S.*?)\s{2,}([\d,]+)\s+[\d.]+%\s*$/gm)) {
    const n = Number(m[2]!.replace(/,/g, ""));
    counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + n);
  }
  return counts;
}

export const runSeconds = (report: string): number | undefined => {
  const m = /\brun:\s*([\d.]+)\s*s\b/.exec(report);
  return m ? Number(m[1]) : undefined;
};

// Estimated time in exits: each priced reason's count times its extra ns per exit, largest first.
// Reasons with no price (mmio, wfi, other reflected traps) and prices not measured are left out.
export function exitTime(report: string, extra: Costs, otherSeconds: number | undefined, baseSeconds: number | undefined): string {
  const rows = [...exitCounts(report)].flatMap(([reason, count]) => {
    const op = PRICE.find(([re]) => re.test(reason))?.[1];
    const each = op === undefined ? undefined : extra.get(op);
    return each === undefined ? [] : [{ reason, count, op: op!, each, seconds: (count * each) / 1e9 }];
  }).sort((a, b) => b.seconds - a.seconds);
  if (rows.length === 0) return "estimated time in exits: no priced exit reason in the --stats report";
  const pct = (s: number): string => (otherSeconds ? `${((100 * s) / otherSeconds).toFixed(1)}%` : "-");
  const lines = [
    `estimated time in exits (count x extra ns per exit), of the ${otherSeconds?.toFixed(2) ?? "?"} s trap-and-emulate --stats run:`,
    `${"reason".padEnd(32)}${"count".padStart(11)}${"ns each".padStart(9)}${"seconds".padStart(9)}${"% of run".padStart(10)}  priced as`,
  ];
  for (const r of rows) {
    lines.push(`${r.reason.padEnd(32)}${r.count.toLocaleString("en-US").padStart(11)}${r.each.toFixed(0).padStart(9)}${r.seconds.toFixed(3).padStart(9)}${pct(r.seconds).padStart(10)}  ${r.op}`);
  }
  const total = rows.reduce((s, r) => s + r.seconds, 0);
  lines.push(`${"total".padEnd(32)}${rows.reduce((s, r) => s + r.count, 0).toLocaleString("en-US").padStart(11)}${"".padStart(9)}${total.toFixed(3).padStart(9)}${pct(total).padStart(10)}`);
  if (otherSeconds !== undefined && baseSeconds !== undefined) {
    lines.push(`the native --stats run of the same workload took ${baseSeconds.toFixed(2)} s (one run each, noisy): trap-and-emulate's whole overhead there was ${(otherSeconds - baseSeconds).toFixed(2)} s`);
  }
  return lines.join("\n");
}
