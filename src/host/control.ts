// The control socket of a running VM. A VM lives in the process that started it (`ringvisor run`
// or `ringvisor up`; there is no daemon yet), so other commands reach it through a Unix socket
// that process serves: `ringvisor exec` runs a command through the guest agent, `ringvisor
// forward` adds, removes and lists port forwards, `ringvisor ls` lists the VMs that run, and
// `ringvisor stop` ends one.
//
// Where: $XDG_RUNTIME_DIR/ringvisor/NAME.sock, or /tmp/ringvisor-UID/NAME.sock where no runtime
// directory is set. Only the VM's user may connect: the directory is made 0700 and must be that
// user's own, not a link (/tmp is everybody's, and a directory planted there first is refused),
// and the socket is 0600. A VM name is one socket: a second VM of the same name is refused while
// the first runs, and a socket left by a process that died is found dead and replaced.
//
// Protocol: one request per connection, one JSON object on one line; one JSON line answers it,
// {"ok":true,...} or {"ok":false,"error":"..."}. Bytes (a command's stdin and output) travel as
// base64. A request is checked against a schema before anything acts on it, and is bounded in
// size (MAX_REQUEST_BYTES) and in time (a client that sends half a line is cut off).
//
// Threads: all of it runs on the main thread's event loop, which owns the VM's host side (its
// devices, its NAT, the vsock the agent answers on); nothing here touches a vCPU's state.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { chmodSync, lstatSync, mkdirSync, readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { Type, type Static } from "typebox";
import { Ajv } from "ajv";
import { UserError } from "../errors.js";
import { execInGuest } from "./agent.js";
import type { Nat, Forward } from "./net/nat.js";
import type { Vm } from "../vm/vm.js";
import { VM_NAME, VM_NAME_EXPECTED } from "../vm/spec.js";

// 64 MiB of stdin, as base64, and the rest of the request.
export const MAX_STDIN_BYTES = 64 << 20;
const MAX_REQUEST_BYTES = Math.ceil(MAX_STDIN_BYTES / 3) * 4 + 65536;
// A connection that has not sent its whole request by then is closed.
const REQUEST_MS = 30_000;
// Longest path a Unix socket may have (sun_path is 108 bytes on Linux, with its NUL).
const MAX_SOCKET_PATH = 107;

const Port = Type.Integer({ minimum: 1, maximum: 65535 });
const RequestSchema = Type.Union([
  Type.Object({ op: Type.Literal("status") }, { additionalProperties: false }),
  Type.Object({
    op: Type.Literal("exec"),
    argv: Type.Array(Type.String({ maxLength: 65536 }), { minItems: 1, maxItems: 4096 }),
    stdin: Type.Optional(Type.String({ maxLength: MAX_REQUEST_BYTES })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
    // Output as it comes, a line {"stdout"|"stderr": base64} each, before the answer.
    stream: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false }),
  Type.Object({ op: Type.Literal("forward"), hostPort: Port, guestPort: Port }, { additionalProperties: false }),
  Type.Object({ op: Type.Literal("unforward"), hostPort: Port }, { additionalProperties: false }),
  Type.Object({ op: Type.Literal("stop") }, { additionalProperties: false }),
]);
export type ControlRequest = Static<typeof RequestSchema>;
const checkRequest = new Ajv({ strict: false }).compile<ControlRequest>(RequestSchema);

export interface VmStatus {
  name: string;
  pid: number;
  state: string;
  vcpus: number;
  memMiB: number;
  virt: string;
  uptimeSeconds: number;
  forwards: Forward[];
  agent: boolean; // whether the VM has the vsock device the guest agent answers on
}

export interface ExecReply {
  status: number;
  stdout: Buffer;
  stderr: Buffer;
}

// What the control socket acts on: the VM, and the NAT of its network card if it has one.
export interface ControlTarget {
  vm: Vm;
  nat?: Nat;
}

export function controlDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, "ringvisor") : join("/tmp", `ringvisor-${process.getuid?.() ?? 0}`);
}

export function socketPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(controlDir(env), `${name}.sock`);
}

export function checkVmName(name: string, what: string): void {
  if (!VM_NAME.test(name)) throw new UserError(`${what} '${name}' is not a VM name: ${VM_NAME_EXPECTED}`);
}

// Makes the directory (0700) or checks that the one there is safe to put sockets in.
function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new UserError(`cannot make the control socket directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory()) throw new UserError(`the control socket directory ${dir} is not a directory (a link or a file is in its place); remove it`);
  if (uid !== undefined && st.uid !== uid) throw new UserError(`the control socket directory ${dir} belongs to user ${st.uid}, not to you (${uid}); remove it or set XDG_RUNTIME_DIR`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

// Whether something answers on the socket (a live VM of that name); false for a dead socket.
function alive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export class ControlServer {
  private readonly sockets = new Set<Socket>();
  private readonly answered = new WeakSet<Socket>();
  private closed = false;
  private started = performance.now();
  private target: ControlTarget | undefined;

  private constructor(readonly name: string, readonly path: string, private readonly server: Server) {}

  // Listens for the VM `name` (and so reserves the name before the VM is made); refused if a VM
  // of that name already runs. Requests wait for serve() to name the VM.
  static async open(name: string, env: NodeJS.ProcessEnv = process.env): Promise<ControlServer> {
    checkVmName(name, "the name");
    const dir = controlDir(env);
    const path = socketPath(name, env);
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) throw new UserError(`the control socket ${path} is longer than a Unix socket path may be (${MAX_SOCKET_PATH} bytes); set XDG_RUNTIME_DIR to a shorter directory`);
    ensureDir(dir);
    if (lstatSync(path, { throwIfNoEntry: false })) {
      if (await alive(path)) throw new UserError(`a VM named '${name}' is already running (its control socket is ${path}); give this one another name`);
      unlinkSync(path); // left by a process that died
    }
    const server = createServer({ allowHalfOpen: false });
    const cs = new ControlServer(name, path, server);
    server.on("connection", (s) => cs.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e: NodeJS.ErrnoException) => reject(new UserError(`cannot listen on the control socket ${path}: ${e.code === "EADDRINUSE" ? "another VM of that name started just now" : (e.code ?? e.message)}`)));
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    // The socket keeps nothing alive: the VM's run does.
    server.unref();
    return cs;
  }

  // The VM is made and started: requests act on it from now on.
  serve(target: ControlTarget): void {
    this.target = target;
    this.started = performance.now();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    // Answers already written still reach their clients (a `stop` is answered as the VM ends).
    for (const s of this.sockets) if (!this.answered.has(s)) s.destroy();
    try {
      // The socket file, if it is still there and still a socket.
      const st = lstatSync(this.path, { throwIfNoEntry: false });
      if (st?.isSocket()) unlinkSync(this.path);
    } catch {
      /* gone already */
    }
  }

  private accept(s: Socket): void {
    this.sockets.add(s);
    const chunks: Buffer[] = [];
    let size = 0;
    let answered = false;
    const timer = setTimeout(() => reply({ ok: false, error: `no complete request within ${REQUEST_MS / 1000} s` }), REQUEST_MS);
    const reply = (r: object): void => {
      if (answered) return;
      answered = true;
      this.answered.add(s);
      clearTimeout(timer);
      s.end(`${JSON.stringify(r)}\n`);
    };
    s.on("close", () => {
      clearTimeout(timer);
      this.sockets.delete(s);
    });
    s.on("error", () => s.destroy());
    s.on("data", (d: Buffer) => {
      if (answered) return;
      const nl = d.indexOf(0x0a);
      size += nl >= 0 ? nl : d.length;
      if (size > MAX_REQUEST_BYTES) return reply({ ok: false, error: `request longer than ${MAX_REQUEST_BYTES} bytes` });
      chunks.push(nl >= 0 ? d.subarray(0, nl) : d);
      if (nl < 0) return;
      s.pause();
      let req: unknown;
      try {
        req = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return reply({ ok: false, error: "the request is not JSON" });
      }
      if (!checkRequest(req)) return reply({ ok: false, error: `not a request this VM understands (ops: status, exec, forward, unforward, stop): ${JSON.stringify(req).slice(0, 200)}` });
      // A streamed exec's output goes out as lines of its own before the answer.
      const emit = (line: object): void => { if (!answered) s.write(`${JSON.stringify(line)}\n`); };
      this.handle(req, emit).then((r) => reply({ ok: true, ...r }), (e: unknown) => {
        reply({ ok: false, error: e instanceof UserError ? e.message : `internal error: ${e instanceof Error ? e.message : String(e)}` });
      });
    });
  }

  private async handle(req: ControlRequest, emit: (line: object) => void): Promise<object> {
    if (!this.target) throw new UserError(`VM ${this.name} is still being made; try again in a moment`);
    const { vm, nat } = this.target;
    switch (req.op) {
      case "status":
        return { status: this.status() };
      case "exec": {
        if (vm.state !== "running") throw new UserError(`VM ${this.name} is ${vm.state}, not running`);
        const stdin = req.stdin !== undefined ? Buffer.from(req.stdin, "base64") : undefined;
        if (stdin && stdin.length > MAX_STDIN_BYTES) throw new UserError(`stdin is limited to ${MAX_STDIN_BYTES >> 20} MiB`);
        const onOutput = req.stream ? (stream: "stdout" | "stderr", d: Buffer): void => emit({ [stream]: d.toString("base64") }) : undefined;
        const r = await execInGuest(vm, req.argv, { stdin, timeoutMs: req.timeoutMs, onOutput });
        return { exit: r.status, stdout: r.stdout.toString("base64"), stderr: r.stderr.toString("base64") };
      }
      case "forward":
        if (!nat) throw new UserError(`VM ${this.name} has no NAT network card to forward a port to`);
        await nat.forward({ hostPort: req.hostPort, guestPort: req.guestPort });
        return { forwards: nat.forwards() };
      case "unforward":
        if (!nat || !nat.unforward(req.hostPort)) throw new UserError(`VM ${this.name} has no forward from host port ${req.hostPort}`);
        return { forwards: nat.forwards() };
      case "stop":
        // After the answer is written: the VM's end closes this socket.
        setImmediate(() => { if (vm.state === "running") vm.stop(130, "stopped by `ringvisor stop`"); });
        return {};
    }
  }

  private status(): VmStatus {
    const t = this.target!;
    return {
      name: this.name, pid: process.pid, state: t.vm.state, vcpus: t.vm.vcpus.length, memMiB: t.vm.memoryBytes / 2 ** 20, virt: t.vm.virt,
      uptimeSeconds: Math.round((performance.now() - this.started) / 1000), forwards: t.nat?.forwards() ?? [], agent: t.vm.vsock !== undefined,
    };
  }
}

// ---- the client side ----

// Sends one request to the VM `name` and returns its answer's fields; a VM that does not run,
// or that refuses the request, is a UserError.
// `onLine`: each line before the answer (a streamed exec's output), parsed.
export async function control(name: string, req: ControlRequest, env: NodeJS.ProcessEnv = process.env, onLine?: (l: Record<string, unknown>) => void): Promise<Record<string, unknown>> {
  checkVmName(name, "VM");
  const path = socketPath(name, env);
  const line = await new Promise<string>((resolve, reject) => {
    const s = createConnection(path);
    let chunks: Buffer[] = [];
    let answer: string | undefined;
    s.on("connect", () => s.write(`${JSON.stringify(req)}\n`));
    s.on("data", (d: Buffer) => {
      chunks.push(d);
      if (!onLine || !d.includes(0x0a)) return;
      const text = Buffer.concat(chunks);
      const last = text.lastIndexOf(0x0a);
      for (const l of text.subarray(0, last).toString("utf8").split("\n")) {
        let parsed: Record<string, unknown> | undefined;
        try {
          parsed = JSON.parse(l) as Record<string, unknown>;
        } catch {
          /* not a line of ours: the answer's check below says so */
        }
        // The answer (it has "ok") is the last line; it is kept for below.
        if (parsed && !("ok" in parsed)) onLine(parsed);
        else answer = l;
      }
      chunks = [text.subarray(last + 1)];
    });
    s.on("end", () => resolve(answer ?? Buffer.concat(chunks).toString("utf8").trim()));
    s.on("error", (e: NodeJS.ErrnoException) => {
      reject(e.code === "ENOENT" || e.code === "ECONNREFUSED"
        ? new UserError(`no VM named '${name}' is running${others(name, env)}`)
        : new UserError(`VM ${name}: its control socket ${path}: ${e.code ?? e.message}`));
    });
  });
  let r: { ok?: boolean; error?: string } & Record<string, unknown>;
  try {
    r = JSON.parse(line) as typeof r;
  } catch {
    throw new UserError(`VM ${name}: its control socket answered something that is not JSON${line === "" ? " (nothing: did the VM just stop?)" : ""}`);
  }
  if (r.ok !== true) throw new UserError(`VM ${name}: ${r.error ?? "the request failed"}`);
  return r;
}

function others(name: string, env: NodeJS.ProcessEnv): string {
  const names = socketNames(env).filter((n) => n !== name);
  return names.length > 0 ? ` (the VMs with control sockets are ${names.join(", ")}; \`ringvisor ls\` lists those that run)` : " (`ringvisor ls` lists the VMs that run)";
}

function socketNames(env: NodeJS.ProcessEnv): string[] {
  try {
    return readdirSync(controlDir(env)).filter((f) => f.endsWith(".sock")).map((f) => f.slice(0, -5)).filter((n) => VM_NAME.test(n)).sort();
  } catch {
    return [];
  }
}

// The VMs that run (their control sockets answer), each with its status.
export async function listVms(env: NodeJS.ProcessEnv = process.env): Promise<VmStatus[]> {
  const all = await Promise.all(socketNames(env).map((n) => control(n, { op: "status" }, env).then((r) => r.status as VmStatus, () => undefined)));
  return all.filter((s): s is VmStatus => s !== undefined);
}

// With `onOutput` the output is streamed to it as the command runs (and the reply's is empty).
export async function execVm(name: string, argv: string[], opts: { stdin?: Buffer; timeoutMs?: number; onOutput?: (stream: "stdout" | "stderr", data: Buffer) => void } = {}, env: NodeJS.ProcessEnv = process.env): Promise<ExecReply> {
  if (opts.stdin && opts.stdin.length > MAX_STDIN_BYTES) throw new UserError(`stdin is limited to ${MAX_STDIN_BYTES >> 20} MiB`);
  const on = opts.onOutput;
  const onLine = on ? (l: Record<string, unknown>): void => {
    if (typeof l.stdout === "string") on("stdout", Buffer.from(l.stdout, "base64"));
    else if (typeof l.stderr === "string") on("stderr", Buffer.from(l.stderr, "base64"));
  } : undefined;
  const r = await control(name, { op: "exec", argv, stdin: opts.stdin?.toString("base64"), timeoutMs: opts.timeoutMs, stream: on ? true : undefined }, env, onLine);
  return { status: r.exit as number, stdout: Buffer.from(r.stdout as string, "base64"), stderr: Buffer.from(r.stderr as string, "base64") };
}
