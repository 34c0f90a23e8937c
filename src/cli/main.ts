#!/usr/bin/env node
// The ringvisor command line.
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { UserError } from "../errors.js";
import { BareMachine } from "../vm/bare.js";
import { registerImageCommands } from "./image.js";
import { registerRunCommand } from "./run.js";

function positiveInt(v: string): number {
  const n = Number(v.replace(/_/g, ""));
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function readImage(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

const program = new Command();
program.name("ringvisor").description("A RISC-V hypervisor written in TypeScript").version("0.1.0");

program
  .command("bare")
  .description("run a bare-metal RV64 ELF in M-mode with HTIF (tohost/fromhost); its exit code becomes ours")
  .argument("<program.elf>", "RISC-V ELF64 image")
  .option("--mem <MiB>", "RAM size in MiB", positiveInt, 64)
  .option("--max-instructions <n>", "give up after this many instructions", positiveInt)
  .option("--stats", "print instructions, time, MIPS and hart counters to stderr at exit")
  .action((path: string, opts: { mem: number; maxInstructions?: number; stats?: boolean }) => {
    const m = new BareMachine({ memBytes: opts.mem << 20, maxInstructions: opts.maxInstructions });
    m.load(readImage(path), path);
    const r = m.run();
    if (opts.stats) {
      const mips = Number(r.instructions) / r.seconds / 1e6;
      process.stderr.write(`instructions ${r.instructions}  time ${r.seconds.toFixed(3)} s  ${mips.toFixed(1)} MIPS\n`);
      for (const [k, v] of Object.entries(r.stats)) process.stderr.write(`  ${k.padEnd(12)} ${v}\n`);
    }
    process.exitCode = r.exitCode;
  });

registerRunCommand(program);
registerImageCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof UserError) {
    process.stderr.write(`ringvisor: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
