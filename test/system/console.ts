// Driving guests booted in-process on a Host (test/system/host.test.ts, sched.test.ts,
// smp.test.ts): a console that keeps what a VM printed, waiting for the default guest's shell
// and typing a command at it the way a person would (only once the guest sits idle at its
// prompt, as test/system/idle.test.ts does), with the command's output cut out of the console;
// and a session piped to `ringvisor run` split at the shell's prompts (linux, jit, rtc, userland).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Host } from "../../src/host/host.js";
import type { Vm } from "../../src/vm/vm.js";
import { BOOT_COMPLETE } from "../../src/host/images/initramfs.js";
import { ROOT } from "../helpers.js";

// The busybox prompt of the default guest (PS1 '\w \$ ' in /root).
const PROMPT = "\n~ # ";

// Waits for `cond`; gives up after `ms`, or at once when `vm` (if given) is no longer running,
// so that a test that failed does not leave waits behind that outlive its host.
export async function until(what: string, cond: () => boolean, ms: number, diag: () => string = () => "", vm?: Vm): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (vm && vm.state !== "running") throw new Error(`${vm.name} ${vm.state} (${vm.result?.reason ?? "never started"}) while waiting for ${what}\n${diag()}`);
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${diag()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class GuestConsole {
  text = "";
  // Called with each chunk the guest prints (after it has been added to `text`).
  onText: ((chunk: string) => void) | undefined;
  readonly sink = (b: Uint8Array): void => {
    const s = Buffer.from(b).toString("latin1");
    this.text += s;
    this.onText?.(s);
  };

  tail(n = 3000): string {
    return this.text.slice(-n);
  }
}

// The default guest's shell is up and the guest has gone idle at its first prompt.
export async function shell(vm: Vm, con: GuestConsole, ms: number): Promise<void> {
  await until(`${vm.name}'s shell`, () => {
    const boot = con.text.indexOf(BOOT_COMPLETE);
    return boot >= 0 && con.text.indexOf("# ", boot) >= 0 && vm.idleSince !== undefined;
  }, ms, () => `${vm.name}'s console tail:\n${con.tail()}`, vm);
}

// Types `command` at the prompt and resolves with what it printed up to the next prompt (line
// ends as LF). The shell must be at its prompt (shell() or a previous command()).
export async function command(vm: Vm, con: GuestConsole, cmd: string, ms: number): Promise<string> {
  await until(`${vm.name} to sit idle at its prompt`, () => vm.idleSince !== undefined, ms, () => con.tail(), vm);
  const from = con.text.length;
  vm.input(new TextEncoder().encode(`${cmd}\n`));
  const reply = (): string => con.text.slice(from).replace(/\r/g, "");
  await until(`${vm.name}: the prompt after '${cmd}'`, () => reply().includes(PROMPT) && vm.idleSince !== undefined, ms,
    () => `${vm.name}'s reply so far:\n${reply()}`, vm);
  const r = reply();
  const body = r.slice(0, r.indexOf(PROMPT) + 1);
  const nl = body.indexOf("\n");
  if (body.slice(0, nl) !== cmd) throw new Error(`${vm.name}: the shell echoed '${body.slice(0, nl)}', not '${cmd}'`);
  return body.slice(nl + 1);
}

// The stress guest kernels of tests/stress (npm run build:programs).
export function stressKernel(name: string): Uint8Array {
  return readFileSync(join(ROOT, "build/stress", `${name}.elf`));
}

// A VM's scheduler counters, summed over its vCPUs, its instructions retired and the traps its
// vCPUs took (an instruction that traps does not retire), now.
export interface Sample {
  atMs: number;
  runUs: number;
  waitUs: number;
  instructions: bigint;
  traps: number;
}

export function sample(host: Host, vm: Vm): Sample {
  const s = host.stats().vms.find((v) => v.name === vm.name);
  if (!s) throw new Error(`${vm.name} is not on the host`);
  return {
    atMs: performance.now(),
    runUs: s.sched.reduce((n, v) => n + v.runUs, 0),
    waitUs: s.sched.reduce((n, v) => n + v.waitUs, 0),
    instructions: BigInt(s.instructions),
    // Natively the hart takes the guest's traps; under trap-and-emulate each is an exit of the
    // real hart that the VMM handles.
    traps: s.cpus.reduce((n, c) => n + (c.hart.traps ?? 0) + (c.vmm?.exits ?? 0), 0),
  };
}

// A session piped to `ringvisor run` as the console printed it: the boot log, then each command
// as the shell echoed it at its prompt ("~ # ", then the cursor position query ash sends when the
// console is not filtered) with its output up to the next prompt, line ends as LF. A kernel log
// line can land between a prompt and the echo of the command typed at it (printk does not know
// where the shell's line stands); such lines are set aside in `kernel`, not taken for the command.
export interface Step {
  command: string;
  output: string;
}

const PROMPT_SPLIT = /(?:^|\n)~ # (?:\x1b\[6n)?/;
const KERNEL_LINE = /^\[\s*\d+\.\d+\] [^\n]*\n/;

export function session(stdout: string): { boot: string; steps: Step[]; kernel: string[] } {
  const parts = stdout.replace(/\r/g, "").split(PROMPT_SPLIT);
  const boot = parts.shift() ?? "";
  const kernel: string[] = [];
  const steps = parts.map((part) => {
    let p = part;
    for (let m = KERNEL_LINE.exec(p); m; m = KERNEL_LINE.exec(p)) {
      kernel.push(m[0].trimEnd());
      p = p.slice(m[0].length);
    }
    const nl = p.indexOf("\n");
    return nl < 0 ? { command: p, output: "" } : { command: p.slice(0, nl), output: p.slice(nl + 1) };
  });
  return { boot, steps, kernel };
}

// What to print when a session did not go as typed: the commands as the shell took them, and the
// console from the first prompt on (or its tail), so that the cause is in the test's report. A
// caller that has parsed the session already passes it.
export function sessionDiag(stdout: string, status: number | null, stderr: string, s = session(stdout)): string {
  const text = stdout.replace(/\r/g, "");
  const first = text.search(PROMPT_SPLIT);
  const from = first < 0 ? Math.max(0, text.length - 3000) : Math.max(0, Math.min(first - 500, text.length - 6000));
  return `status ${status}\ncommands as the shell took them: ${JSON.stringify(s.steps.map((x) => x.command))}\n` +
    (s.kernel.length ? `kernel lines after a prompt: ${JSON.stringify(s.kernel)}\n` : "") +
    `--- stderr:\n${stderr.slice(-3000)}\n--- stdout from ${from} of ${text.length}:\n${JSON.stringify(text.slice(from))}`;
}
