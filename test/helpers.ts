// Shared helpers for the test suite.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CLI = join(ROOT, "dist/src/cli/main.js");
export const PROGRAMS = join(ROOT, "build/programs");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

// Each test file (a process of its own under node --test) keeps its VMs' control sockets
// (src/host/control.ts) in a directory of its own, so that files running side by side may give
// their VMs the same names.
export const TEST_RUNTIME_DIR = mkdtempSync(join(tmpdir(), "ringvisor-test-run-"));
process.on("exit", () => rmSync(TEST_RUNTIME_DIR, { recursive: true, force: true }));

export function ringvisor(args: string[], input?: string, timeoutMs = 120_000, env?: NodeJS.ProcessEnv): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: "utf8", timeout: timeoutMs, env: { ...process.env, XDG_RUNTIME_DIR: TEST_RUNTIME_DIR, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// The translator's own tests run programs of a few hundred thousand instructions, too short for
// code to reach the default hotness threshold (JIT_HOT_THRESHOLD, set for real guests): they
// translate after this many samples instead, so their hot loops do run translated.
export const TEST_JIT_THRESHOLD = 16;

// A TCP port on the loopback that nothing listens on (at the moment of asking).
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
