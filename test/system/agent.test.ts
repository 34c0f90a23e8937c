// The guest agent over virtio-vsock: commands run in the default Debian guest with their stdout,
// stderr and exit status returned as data (src/host/agent.ts, guest/rv-agent.c), nothing typed
// into the console: exit codes and signals, stdin in, megabytes out, several commands at once,
// and a clear error once nothing listens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Host } from "../../src/host/host.js";
import { execInGuest } from "../../src/host/agent.js";
import { readInput } from "../../src/cli/args.js";
import { defaultGuest } from "./guest.js";
import { GuestConsole, shell, sleep } from "./console.js";

const g = await defaultGuest();
const BOOT_MS = 180_000;
const T = { timeoutMs: 120_000 };

test("exec through the guest agent: output, status, stdin, 4 MB out, three at once, and an error when it is gone", { skip: g.skip, timeout: 2 * BOOT_MS }, async () => {
  const guest = g.need();
  const host = new Host({ machineBytes: 1 << 30 });
  try {
    const con = new GuestConsole();
    const vm = host.createVm({
      name: "agent", kernel: readInput(guest.kernel), initrd: readInput(guest.initrd), cmdline: "console=ttyS0 panic=-1 loglevel=1", memBytes: 256 << 20, cpus: 1,
      virt: "trap-and-emulate", console: con.sink,
    });
    host.start(vm);
    await shell(vm, con, BOOT_MS);
    const consoleBefore = con.text.length;

    const u = await execInGuest(vm, ["uname", "-m"], T);
    assert.deepEqual([u.status, u.stdout.toString(), u.stderr.toString()], [0, "riscv64\n", ""]);
    const e = await execInGuest(vm, ["sh", "-c", "echo to-out; echo to-err >&2; exit 7"], T);
    assert.deepEqual([e.status, e.stdout.toString(), e.stderr.toString()], [7, "to-out\n", "to-err\n"]);
    const k = await execInGuest(vm, ["sh", "-c", "kill -TERM $$"], T);
    assert.equal(k.status, 128 + 15, "a signal is 128 + its number");
    const missing = await execInGuest(vm, ["no-such-command"], T);
    assert.equal(missing.status, 127);
    assert.match(missing.stderr.toString(), /cannot run no-such-command/);

    const input = Buffer.alloc(3 << 20);
    for (let i = 0; i < input.length; i++) input[i] = (i * 131) & 255;
    const sum = await execInGuest(vm, ["sha256sum"], { ...T, stdin: input });
    assert.equal(sum.stdout.toString(), `${createHash("sha256").update(input).digest("hex")}  -\n`, "3 MiB of stdin arrive intact");
    const big = await execInGuest(vm, ["sh", "-c", "seq 1 600000"], T);
    assert.equal(big.stdout.toString(), Array.from({ length: 600000 }, (_, i) => `${i + 1}\n`).join(""), "4 MB of stdout, in order");

    const three = await Promise.all([1, 2, 3].map((n) => execInGuest(vm, ["sh", "-c", `sleep 1; echo job-${n}`], T)));
    assert.deepEqual(three.map((r) => r.stdout.toString()), ["job-1\n", "job-2\n", "job-3\n"]);
    assert.equal(con.text.length, consoleBefore, "nothing went through the console");

    await execInGuest(vm, ["killall", "rv-agent"], T).catch(() => undefined); // its own connection may end with it
    // killall returns once the signal is sent: until the agent has exited, a connection may still
    // be taken (then answered, or ended before its exit status). Once it is gone, nothing listens.
    let last: unknown;
    for (let i = 0; i < 50; i++) {
      last = await execInGuest(vm, ["true"], T).then(() => "answered", (e: unknown) => e);
      const gone = !(last === "answered" || (last instanceof Error && /connection ended before the exit status/.test(last.message)));
      if (gone) break;
      await sleep(100);
    }
    assert.ok(last instanceof Error, `exec after killall: ${String(last)}`);
    assert.match(last.message, /guest agent does not answer/);
    const st = vm.stats().virtio.find((d) => d.name === "virtio-vsock")!;
    assert.equal(st.lastError, undefined);
    assert.ok(st.device.bytesIn! > 4_000_000 && st.device.bytesOut! > 3 << 20, JSON.stringify(st.device));
  } finally {
    await host.close();
  }
});
