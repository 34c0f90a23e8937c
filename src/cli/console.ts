// Guest consoles on this process's stdin and stdout, shared by `ringvisor run` (one VM) and
// `ringvisor up` (several): the detach key, typing piped input the way a person would, ending
// the session when the input ends, and dropping terminal queries nobody will answer.
import type { Vm } from "../vm/vm.js";
import { UserError } from "../errors.js";

export const DETACH = 0x1d; // Ctrl-]

export const ON_EOF = ["poweroff", "wait"] as const;
export type OnEof = (typeof ON_EOF)[number];

export function checkOnEof(v: string): OnEof {
  if (!(ON_EOF as readonly string[]).includes(v)) throw new UserError(`unknown --on-eof action '${v}': choose one of ${ON_EOF.join(", ")}`);
  return v as OnEof;
}

// Piped input is typed the way a person at the console would: one line at a time, each when the
// guest has gone idle (every hart waiting for an interrupt) and the console has been quiet for a
// moment, as at a prompt. Input sent while the guest is still booting would otherwise be read
// and discarded before the shell starts. A kernel can also sit idle and quiet for a moment while
// it boots (an RCU grace period across vCPUs, a sleep in a driver), so the first line waits for
// a prompt as well: console output whose last line is unfinished (`~ # `, `login: `), which a
// kernel's log lines never are.
//
// When input ends (with --on-eof poweroff) the typist ends the session as a person logs out:
// end-of-file (Ctrl-D) at the prompt, typed once the last command is done. The default guest's
// /init powers off when its shell exits. A ^D typed while a command still runs may be eaten by it,
// so it is typed again whenever the guest has printed something (a new prompt) and gone quiet,
// up to EOF_TRIES times; a guest that ignores it and sits idle and silent for EOF_GIVE_UP_MS is
// stopped by the host.
const QUIET_MS = 150;
const EOT = 0x04;
const EOF_TRIES = 3;
const EOF_GIVE_UP_MS = 30_000;
export const EOF_STOP_STATUS = 4;
// How often a typist looks whether its guest sits at a prompt.
export const TYPIST_TICK_MS = 20;

export class Typist {
  private pending = Buffer.alloc(0);
  private ended = false;
  private eofsTyped = 0;
  private outputSinceEof = false;
  private lastEofAt = 0;
  private lastOutput = performance.now();
  private typedAny = false;
  private atPrompt = false; // the console's last byte ended a line (false) or not (true)

  constructor(private readonly vm: Vm, private readonly poweroffAtEnd: boolean) {}

  add(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
  }

  // The input has ended.
  end(): void {
    this.ended = true;
  }

  // The guest wrote to its console.
  output(b: Uint8Array): void {
    if (b.length > 0) this.atPrompt = b[b.length - 1] !== 0x0a;
    this.lastOutput = performance.now();
    this.outputSinceEof = true;
  }

  tick(): void {
    if (this.vm.state !== "running" || this.vm.idleSince === undefined) return;
    const now = performance.now();
    if (now - this.lastOutput < QUIET_MS || now - this.vm.idleSince < QUIET_MS) return;
    if (this.pending.length > 0) {
      if (!this.typedAny && !this.atPrompt) return;
      this.typedAny = true;
      const nl = this.pending.indexOf(0x0a);
      const end = nl < 0 ? this.pending.length : nl + 1;
      this.vm.input(new Uint8Array(this.pending.subarray(0, end)));
      this.pending = this.pending.subarray(end);
      return;
    }
    if (!this.ended || !this.poweroffAtEnd) return;
    if (this.eofsTyped === 0 || (this.outputSinceEof && this.eofsTyped < EOF_TRIES)) {
      this.vm.input(Uint8Array.of(EOT));
      this.eofsTyped++;
      this.outputSinceEof = false;
      this.lastEofAt = now;
    } else if (now - Math.max(this.lastEofAt, this.lastOutput) > EOF_GIVE_UP_MS) {
      this.vm.stop(EOF_STOP_STATUS, `input ended and the guest did not power off after end-of-file at its console; stopped it after ${EOF_GIVE_UP_MS / 1000} s idle`);
    }
  }
}

// Drops ESC [ 6 n (Device Status Report: cursor position) from the console stream, also when it
// arrives split across writes.
export class QueryFilter {
  private held = Buffer.alloc(0);
  private static readonly QUERY = Buffer.from("\x1b[6n", "latin1");

  pass(b: Uint8Array): Uint8Array {
    let buf = this.held.length > 0 ? Buffer.concat([this.held, b]) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    this.held = Buffer.alloc(0);
    const q = QueryFilter.QUERY;
    let i = buf.indexOf(q);
    while (i >= 0) {
      buf = Buffer.concat([buf.subarray(0, i), buf.subarray(i + q.length)]);
      i = buf.indexOf(q, i);
    }
    // Hold back a tail that could be the start of a query.
    for (let k = Math.min(q.length - 1, buf.length); k > 0; k--) {
      if (buf.subarray(buf.length - k).equals(q.subarray(0, k))) {
        this.held = Buffer.from(buf.subarray(buf.length - k));
        return buf.subarray(0, buf.length - k);
      }
    }
    return buf;
  }

  flush(): Uint8Array {
    const rest = this.held;
    this.held = Buffer.alloc(0);
    return rest;
  }
}

// Lets the process end although stdin may still be open (a terminal, a pipe nobody closes).
export function releaseStdin(stdin: NodeJS.ReadStream): void {
  stdin.pause();
  // A file on stdin is an fs.ReadStream, which cannot be unref'd; destroying it is enough.
  if (typeof (stdin as { unref?: unknown }).unref === "function") stdin.unref();
  else stdin.destroy();
}
