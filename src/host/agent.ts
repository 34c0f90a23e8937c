// Running commands in a guest through its agent (guest/rv-agent.c) over virtio-vsock: the
// command's stdout, stderr and exit status come back as data, with nothing typed into or read
// from the console. The frames are [type][u32 length, little-endian][data]; see the agent.
import type { Vm } from "../vm/vm.js";
import { UserError } from "../errors.js";

export const AGENT_PORT = 1024;

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  status: number; // the exit code, or 128 + the signal that ended it
}

function frame(type: string, data: Uint8Array): Uint8Array {
  const f = new Uint8Array(5 + data.length);
  f[0] = type.charCodeAt(0);
  new DataView(f.buffer).setUint32(1, data.length, true);
  f.set(data, 5);
  return f;
}

// With `onOutput`, output is handed over as it comes and not kept: the result's stdout and
// stderr are then empty.
export async function execInGuest(vm: Vm, argv: string[], opts: { stdin?: Uint8Array; timeoutMs?: number; onOutput?: (stream: "stdout" | "stderr", data: Buffer) => void } = {}): Promise<ExecResult> {
  if (!vm.vsock) throw new UserError(`VM ${vm.name} has no vsock device, so no guest agent`);
  if (argv.length === 0) throw new UserError("exec needs a command");
  const s = await vm.vsock.connect(AGENT_PORT).catch((e: Error) => {
    throw new UserError(`VM ${vm.name}: the guest agent does not answer (${e.message}); is the guest up, with rv-agent running?`);
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let pending = Buffer.alloc(0);
  return new Promise<ExecResult>((resolve, reject) => {
    const timer = opts.timeoutMs ? setTimeout(() => done(() => reject(new Error(`exec ${argv[0]}: no exit status within ${opts.timeoutMs} ms`))), opts.timeoutMs) : undefined;
    // Settles once: the connection is closed without its close being reported back here.
    const done = (f: () => void): void => {
      if (timer) clearTimeout(timer);
      s.onClose = undefined;
      s.onData = undefined;
      if (!s.closed) s.close();
      f();
    };
    s.onData = (d) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 5) {
        const len = pending.readUInt32LE(1);
        if (pending.length < 5 + len) break;
        const type = String.fromCharCode(pending[0]!);
        const body = pending.subarray(5, 5 + len);
        pending = pending.subarray(5 + len);
        if ((type === "O" || type === "R") && opts.onOutput) opts.onOutput(type === "O" ? "stdout" : "stderr", Buffer.from(body));
        else if (type === "O") out.push(Buffer.from(body));
        else if (type === "R") err.push(Buffer.from(body));
        else if (type === "F") return done(() => { reject(new UserError(`VM ${vm.name}: the agent could not run ${argv[0]}: ${body.toString()}`)); });
        else if (type === "X") {
          const status = body.readUInt32LE(0);
          return done(() => { resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err), status }); });
        }
      }
    };
    s.onClose = (why) => done(() => reject(new Error(`exec ${argv[0]}: the connection ended before the exit status (${why})`)));
    s.write(frame("A", Buffer.from(argv.map((a) => `${a}\0`).join(""))));
    if (opts.stdin && opts.stdin.length > 0) {
      for (let at = 0; at < opts.stdin.length; at += 32768) s.write(frame("I", opts.stdin.subarray(at, at + 32768)));
    }
    s.write(frame("E", new Uint8Array(0)));
  });
}
