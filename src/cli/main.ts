#!/usr/bin/env node
// The ringvisor command line.
import { Command, CommanderError } from "commander";
import { positiveInt, memMiB, readInput, jitSwitch, JIT_HELP, type JitMode } from "./args.js";
import { UserError } from "../errors.js";
import { BareMachine } from "../vm/bare.js";
import { registerImageCommands } from "./image.js";
import { registerRunCommand } from "./run.js";
import { registerUpCommand } from "./up.js";
import { registerDiskCommands } from "./disk.js";
import { registerControlCommands } from "./control.js";

const program = new Command();
program.name("ringvisor").description("A RISC-V hypervisor written in TypeScript").version("0.1.0");
// Bad flags are user errors like any other: exit status 2 (commander would use 1), and every
// message starts the same way.
program.exitOverride();
// `ringvisor exec VM CMD -x`: what follows the command is the command's.
program.enablePositionalOptions();
program.configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "ringvisor: ")) });

program
  .command("bare")
  .description("run a bare-metal RV64 ELF in M-mode with HTIF (tohost/fromhost); its exit code becomes ours")
  .argument("<program.elf>", "RISC-V ELF64 image")
  .option("--mem <MiB>", "RAM size in MiB", memMiB, 64)
  .option("--max-instructions <n>", "give up after this many instructions", positiveInt)
  .option("--jit <on|off|eager>", JIT_HELP, jitSwitch, true)
  .option("--stats", "print instructions, time, MIPS and hart counters to stderr at exit")
  .action((path: string, opts: { mem: number; maxInstructions?: number; stats?: boolean; jit: JitMode }) => {
    const m = new BareMachine({ memBytes: opts.mem * 2 ** 20, maxInstructions: opts.maxInstructions, jit: opts.jit });
    m.load(readInput(path), path);
    const r = m.run();
    if (opts.stats) {
      const mips = Number(r.instructions) / r.seconds / 1e6;
      process.stderr.write(`instructions ${r.instructions}  time ${r.seconds.toFixed(3)} s  ${mips.toFixed(1)} MIPS\n`);
      for (const [k, v] of Object.entries(r.stats)) process.stderr.write(`  ${k.padEnd(12)} ${v}\n`);
    }
    process.exitCode = r.exitCode;
  });

registerRunCommand(program);
registerUpCommand(program);
registerImageCommands(program);
registerDiskCommands(program);
registerControlCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  if (e instanceof UserError) {
    process.stderr.write(`ringvisor: ${e.message}\n`);
    process.exit(2);
  }
  // A bug, not the user's doing: one line for the user, the stack only when asked for.
  if (process.env.RINGVISOR_DEBUG) throw e;
  process.stderr.write(`ringvisor: internal error: ${e instanceof Error ? e.message : String(e)} (set RINGVISOR_DEBUG=1 to see where)\n`);
  process.exit(70);
}
