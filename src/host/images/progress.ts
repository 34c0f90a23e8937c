// What the image builder tells the user while it works: a progress bar per download when stderr
// is a terminal, a plain line per file otherwise (logs, CI), nothing when quiet.
import cliProgress from "cli-progress";

export interface Reporter {
  // A step worth a line ("index: cached, 2 h old").
  note(message: string): void;
  // Something the user must see even when quiet: a pull that goes on with unverified indexes.
  warn(message: string): void;
  // A download of `total` bytes (0 if unknown); returns a handle to report bytes received.
  download(label: string, total: number): DownloadProgress;
}

export interface DownloadProgress {
  advance(bytes: number): void;
  // Called once; `ok` false when the attempt failed (the file will be fetched again or given up).
  done(ok: boolean): void;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function createReporter(opts: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): Reporter {
  const stream = opts.stream ?? process.stderr;
  const line = (s: string): void => void stream.write(`ringvisor: ${s}\n`);
  const warn = (s: string): void => line(`warning: ${s}`);
  if (opts.quiet) return { note() {}, warn, download: () => ({ advance() {}, done() {} }) };
  if (!stream.isTTY) {
    return {
      note: line,
      warn,
      download(label, total) {
        const t0 = performance.now();
        let got = 0;
        return {
          advance: (n) => void (got += n),
          done: (ok) => {
            const secs = ((performance.now() - t0) / 1000).toFixed(1);
            line(ok ? `downloaded ${label} (${formatBytes(got)}, ${secs} s)` : `download of ${label} failed after ${formatBytes(got)}`);
          },
        };
      },
    };
  }
  return {
    note: line,
    warn,
    download(label, total) {
      const bar = new cliProgress.SingleBar(
        {
          stream,
          format: `ringvisor: {label} [{bar}] {percentage}% {got}/{size} {speed}`,
          hideCursor: true,
          barsize: 24,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      const t0 = performance.now();
      let got = 0;
      const payload = (): object => ({
        label,
        got: formatBytes(got),
        size: total > 0 ? formatBytes(total) : "?",
        speed: `${formatBytes(Math.round(got / Math.max((performance.now() - t0) / 1000, 0.001)))}/s`,
      });
      bar.start(total > 0 ? total : 1, 0, payload());
      return {
        advance(n) {
          got += n;
          bar.update(total > 0 ? Math.min(got, total) : 0, payload());
        },
        done(ok) {
          bar.stop();
          if (!ok) line(`download of ${label} failed after ${formatBytes(got)}`);
        },
      };
    },
  };
}
