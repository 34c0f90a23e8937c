// HTTP downloads into the cache: streamed to a temporary file while hashing, then renamed into
// place only if size and SHA-256 match what the archive index promised. Network failures are
// retried with backoff; a corrupt or truncated body is deleted and fetched again, never used.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { once } from "node:events";
import { UserError } from "../../errors.js";
import type { DownloadProgress, Reporter } from "./progress.js";

export interface Expected {
  size?: number;
  sha256?: string;
}

// Counters that explain what a pull cost; a pull served from cache leaves `requests` at 0.
export interface DownloadStats {
  requests: number;
  bytes: number;
  networkRetries: number;
  corruptRetries: number;
}

export function newDownloadStats(): DownloadStats {
  return { requests: 0, bytes: 0, networkRetries: 0, corruptRetries: 0 };
}

export interface DownloadOptions {
  expect?: Expected;
  label?: string;
  reporter: Reporter;
  stats: DownloadStats;
  // Attempts after a network error (connection refused/reset, 5xx, timeout), per body attempt.
  networkAttempts?: number;
  // Attempts when the body arrived but failed verification.
  corruptAttempts?: number;
  // Delay before the first network retry; doubles each time.
  backoffMs?: number;
  timeoutMs?: number;
}

// A download that cannot succeed by retrying (404, a mirror that keeps serving bad bytes).
// `unreachable` marks the case where no answer came at all (no network, DNS failure, refused
// connections, timeouts): the caller may fall back to a cache or say that it is offline.
// `status` is the HTTP status of a final refusal (404: the file is not on the mirror).
export class DownloadError extends UserError {
  override name = "DownloadError";
  constructor(message: string, readonly unreachable = false, readonly status?: number) {
    super(message);
  }
}

class RetryableError extends Error {
  constructor(message: string, readonly unreachable = false) {
    super(message);
  }
}
class CorruptError extends Error {}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function download(url: string, dest: string, opts: DownloadOptions): Promise<{ size: number; sha256: string }> {
  const corruptAttempts = opts.corruptAttempts ?? 3;
  const networkAttempts = opts.networkAttempts ?? 4;
  let lastProblem = "";
  for (let c = 1; c <= corruptAttempts; c++) {
    for (let n = 1; ; n++) {
      try {
        return await fetchOnce(url, dest, opts);
      } catch (e) {
        if (e instanceof CorruptError) {
          lastProblem = e.message;
          opts.stats.corruptRetries++;
          if (c < corruptAttempts) opts.reporter.note(`${e.message}; deleted, fetching again`);
          break;
        }
        if (!(e instanceof RetryableError)) throw e;
        if (n >= networkAttempts) throw new DownloadError(`cannot download ${url}: ${e.message} (tried ${n} times)`, e.unreachable);
        opts.stats.networkRetries++;
        const delay = (opts.backoffMs ?? 500) * 2 ** (n - 1);
        opts.reporter.note(`${e.message}; retrying in ${(delay / 1000).toFixed(1)} s`);
        await sleep(delay);
      }
    }
  }
  throw new DownloadError(`${url} failed verification ${corruptAttempts} times (${lastProblem}); the mirror may be inconsistent, try another with --mirror`);
}

async function fetchOnce(url: string, dest: string, opts: DownloadOptions): Promise<{ size: number; sha256: string }> {
  const label = opts.label ?? url.slice(url.lastIndexOf("/") + 1);
  const part = `${dest}.part-${process.pid}`;
  const controller = new AbortController();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  // Restarted on every chunk: a stalled connection is aborted, a slow but moving one is not.
  let timer = setTimeout(() => controller.abort(), timeoutMs);
  let progress: DownloadProgress | undefined;
  let ok = false;
  try {
    opts.stats.requests++;
    let res: Response;
    try {
      res = await fetch(url, { signal: controller.signal });
    } catch (e) {
      throw new RetryableError(`${label}: ${describe(e)}`, true);
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      throw new RetryableError(`${label}: HTTP ${res.status} ${res.statusText}`);
    }
    if (!res.ok || !res.body) throw new DownloadError(`cannot download ${url}: HTTP ${res.status} ${res.statusText}`, false, res.status);
    progress = opts.reporter.download(label, opts.expect?.size ?? (Number(res.headers.get("content-length")) || 0));

    const hash = createHash("sha256");
    const out = createWriteStream(part);
    let size = 0;
    try {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(), timeoutMs);
        size += value.byteLength;
        opts.stats.bytes += value.byteLength;
        hash.update(value);
        progress.advance(value.byteLength);
        if (!out.write(value)) await once(out, "drain");
        if (opts.expect?.size !== undefined && size > opts.expect.size) break;
      }
    } catch (e) {
      out.destroy();
      await rm(part, { force: true });
      throw new RetryableError(`${label}: connection lost after ${size} bytes (${describe(e)})`);
    }
    out.end();
    await once(out, "finish");

    const sha256 = hash.digest("hex");
    const want = opts.expect;
    const problem =
      want?.size !== undefined && size !== want.size
        ? `${label} has ${size} bytes, the index says ${want.size}`
        : want?.sha256 !== undefined && sha256 !== want.sha256
          ? `${label} has SHA-256 ${sha256}, the index says ${want.sha256}`
          : undefined;
    if (problem) {
      await rm(part, { force: true });
      throw new CorruptError(problem);
    }
    await rename(part, dest);
    ok = true;
    return { size, sha256 };
  } finally {
    clearTimeout(timer);
    // Drops the connection if the body was abandoned (e.g. longer than the index says).
    controller.abort();
    progress?.done(ok);
    if (!ok) await rm(part, { force: true });
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    if (e.name === "AbortError") return "timed out";
    if (cause instanceof Error) return `${e.message}: ${(cause as NodeJS.ErrnoException).code ?? cause.message}`;
    return e.message;
  }
  return String(e);
}
