// Commands that act on a VM another ringvisor process runs (`run` or `up`), through its control
// socket (src/host/control.ts): ls, exec, forward, stop.
import { Command } from "commander";
import { control, execVm, listVms, MAX_STDIN_BYTES, type VmStatus } from "../host/control.js";
import type { Forward } from "../host/net/nat.js";
import { parseForward, positiveInt } from "./args.js";
import { UserError } from "../errors.js";
import { formatTable } from "./table.js";

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (d: Buffer) => {
      size += d.length;
      if (size > MAX_STDIN_BYTES) reject(new UserError(`--stdin: more than ${MAX_STDIN_BYTES >> 20} MiB of input`));
      else chunks.push(d);
    });
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

function uptime(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

const forwardsText = (f: Forward[]): string => (f.length === 0 ? "-" : f.map((x) => `${x.hostPort}->${x.guestPort}`).join(","));

export function registerControlCommands(program: Command): void {
  program
    .command("ls")
    .description("list the VMs that run (started by ringvisor run or up), with their port forwards")
    .option("--json", "machine-readable output")
    .action(async (opts: { json?: boolean }) => {
      const vms = await listVms();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(vms, null, 2)}\n`);
        return;
      }
      const rows = [["NAME", "STATE", "VCPUS", "MEMORY", "VIRT", "PID", "UP", "FORWARDS"]];
      for (const v of vms) rows.push([v.name, v.state, String(v.vcpus), `${v.memMiB} MiB`, v.virt, String(v.pid), uptime(v.uptimeSeconds), forwardsText(v.forwards)]);
      for (const line of formatTable(rows)) process.stdout.write(`${line}\n`);
    });

  program
    .command("exec")
    .description("run a command in a running VM through its guest agent; its stdout, stderr and exit status become this command's")
    .argument("<vm>", "the VM's name (ringvisor ls)")
    .argument("<command...>", "the command and its arguments (put -- before them if they start with -)")
    .option("--stdin", "send this command's standard input, read to its end, to the guest command (without it the guest command reads nothing)")
    .option("--timeout <seconds>", "give up if the command has not ended by then", positiveInt)
    .passThroughOptions()
    .action(async (name: string, args: string[], opts: { stdin?: boolean; timeout?: number }) => {
      // With options passed through, commander keeps the `--` that separates them.
      const argv = args[0] === "--" ? args.slice(1) : args;
      if (argv.length === 0) throw new UserError("exec needs a command after the VM's name");
      const stdin = opts.stdin ? await readAll(process.stdin) : undefined;
      // Output is written as the command produces it (a long apt-get shows its progress).
      const r = await execVm(name, argv, {
        stdin, timeoutMs: opts.timeout !== undefined ? opts.timeout * 1000 : undefined,
        onOutput: (stream, d) => (stream === "stdout" ? process.stdout : process.stderr).write(d),
      });
      await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
      process.exitCode = r.status;
    });

  program
    .command("forward")
    .description("add a port forward to a running VM (host loopback port to guest port, through its NAT), remove one, or list them")
    .argument("<vm>", "the VM's name (ringvisor ls)")
    .argument("[host:guest]", "the forward to add, e.g. 2222:22")
    .option("--remove <host-port>", "remove the forward from this host port", positiveInt)
    .action(async (name: string, spec: string | undefined, opts: { remove?: number }) => {
      if (spec !== undefined && opts.remove !== undefined) throw new UserError("forward: give either HOST:GUEST to add or --remove HOST_PORT, not both");
      let forwards: Forward[];
      if (spec !== undefined) {
        const f = parseForward(spec);
        forwards = (await control(name, { op: "forward", hostPort: f.hostPort, guestPort: f.guestPort })).forwards as Forward[];
      } else if (opts.remove !== undefined) {
        forwards = (await control(name, { op: "unforward", hostPort: opts.remove })).forwards as Forward[];
      } else {
        forwards = ((await control(name, { op: "status" })).status as VmStatus).forwards;
      }
      for (const f of forwards) process.stdout.write(`127.0.0.1:${f.hostPort} -> ${name}:${f.guestPort}\n`);
    });

  program
    .command("stop")
    .description("stop a running VM at once (as pulling its plug: the guest is not asked); its disks are flushed and closed")
    .argument("<vm>", "the VM's name (ringvisor ls)")
    .action(async (name: string) => {
      await control(name, { op: "stop" });
    });
}
