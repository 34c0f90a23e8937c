// Shared helpers for the test suite.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CLI = join(ROOT, "dist/src/cli/main.js");
export const PROGRAMS = join(ROOT, "build/programs");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function ringvisor(args: string[], input?: string, timeoutMs = 120_000, env?: NodeJS.ProcessEnv): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: "utf8", timeout: timeoutMs, env: env ? { ...process.env, ...env } : undefined });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// The translator's own tests run programs of a few hundred thousand instructions, too short for
// code to reach the default hotness threshold (JIT_HOT_THRESHOLD, set for real guests): they
// translate after this many samples instead, so their hot loops do run translated.
export const TEST_JIT_THRESHOLD = 16;
