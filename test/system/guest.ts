// The default guest for the system tests, from the user's image cache (pulled from the host's
// configured Debian mirror on first use; the cache's lock makes concurrent test files share one
// download). Loading never throws at import time: a test that needs the guest calls need(), so a
// pull that fails fails each such test with the pipeline's own message, and the tests of a file
// that need no guest still run. Only when the mirror cannot be reached at all (or
// RINGVISOR_SKIP_NETWORK is set) and nothing is cached are those tests skipped, saying so.
import { DownloadError } from "../../src/host/images/download.js";
import { ensureDefaultGuest, type DefaultGuest } from "../../src/host/images/pull.js";

export interface GuestForTests {
  // A skip reason for node:test, or false.
  skip: string | false;
  need(): DefaultGuest;
}

let loading: Promise<GuestForTests> | undefined;

export function defaultGuest(): Promise<GuestForTests> {
  return (loading ??= load());
}

async function load(): Promise<GuestForTests> {
  try {
    const env = process.env.RINGVISOR_SKIP_NETWORK ? { ...process.env, RINGVISOR_MIRROR: "http://127.0.0.1:9/debian" } : process.env;
    const g = await ensureDefaultGuest({ quiet: true, env });
    return { skip: false, need: () => g };
  } catch (e) {
    if (e instanceof DownloadError && e.unreachable) {
      const why = process.env.RINGVISOR_SKIP_NETWORK ? "RINGVISOR_SKIP_NETWORK is set" : `no network: ${e.message}`;
      process.stderr.write(`system tests: the default guest is not cached and cannot be downloaded (${why}); skipping the tests that boot it\n`);
      return { skip: `needs the default guest, which is not cached and cannot be downloaded (${why})`, need: () => { throw e; } };
    }
    return { skip: false, need: () => { throw e; } };
  }
}
