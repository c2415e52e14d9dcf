// A one-line progress bar on stderr for long loads (weights, warm-up): drawn only on a terminal, at most
// ten redraws a second, with percent, amount done, rate and ETA. Off a terminal it writes nothing.

/** The part of a stream the bar uses (process.stderr satisfies it; tests pass a fake). */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): unknown;
}

export interface ProgressOptions {
  stream?: ProgressStream;
  /** Milliseconds clock; injectable for tests. */
  now?: () => number;
  /** 'bytes' prints kB/MB/GB and a byte rate; 'items' prints plain counts. */
  unit?: 'bytes' | 'items';
  /** Least time between redraws; 100 ms gives at most ten a second. */
  minIntervalMs?: number;
}

const BYTE_UNITS: [number, string][] = [
  [1e12, 'TB'],
  [1e9, 'GB'],
  [1e6, 'MB'],
  [1e3, 'kB'],
];

/** Picks a decimal unit by `scale` (usually the total) so that done and total read in the same unit. */
export function formatBytes(n: number, scale = n): string {
  for (const [size, name] of BYTE_UNITS) if (scale >= size) return `${(n / size).toFixed(2)} ${name}`;
  return `${Math.round(n)} B`;
}

/** Seconds as m:ss, or h:mm:ss from an hour up. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export class ProgressBar {
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly unit: 'bytes' | 'items';
  private readonly minInterval: number;
  private readonly enabled: boolean;
  private readonly start: number;
  private lastDraw = -Infinity;
  private done = 0;
  private finished = false;

  constructor(
    readonly label: string,
    readonly total: number,
    opts: ProgressOptions = {},
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.now = opts.now ?? (() => performance.now());
    this.unit = opts.unit ?? 'bytes';
    this.minInterval = opts.minIntervalMs ?? 100;
    this.enabled = this.stream.isTTY === true;
    this.start = this.now();
  }

  /** Sets the amount done so far (absolute, not a delta); redraws if the last redraw is old enough. */
  update(done: number): void {
    this.done = done;
    if (!this.enabled || this.finished) return;
    const t = this.now();
    if (t - this.lastDraw < this.minInterval) return;
    this.lastDraw = t;
    this.stream.write(`\r${this.render(t)}\x1b[K`);
  }

  /** Draws the final state with the elapsed time and ends the line. Further updates are ignored. */
  finish(): void {
    if (!this.enabled || this.finished) return;
    this.finished = true;
    const t = this.now();
    this.stream.write(`\r${this.render(t, true)}\x1b[K\n`);
  }

  private amount(n: number): string {
    return this.unit === 'bytes' ? formatBytes(n, this.total > 0 ? this.total : n) : String(Math.round(n));
  }

  /** The line, e.g. `loading weights [######----] 60% 1.20/2.00 GB 250.00 MB/s ETA 0:03`. */
  private render(t: number, final = false): string {
    const elapsed = Math.max(0, (t - this.start) / 1000);
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const known = this.total > 0;
    const frac = known ? Math.min(1, Math.max(0, this.done / this.total)) : 0;
    const amount = known ? `${this.amount(this.done).replace(/ \S+$/, '')}/${this.amount(this.total)}` : this.amount(this.done);
    const rateText = this.unit === 'bytes' ? `${formatBytes(rate)}/s` : `${rate.toFixed(1)}/s`;
    const tail = final
      ? `${amount} in ${formatDuration(elapsed)}`
      : `${amount} ${rateText} ETA ${known && rate > 0 ? formatDuration((this.total - this.done) / rate) : '--:--'}`;
    const pct = known ? `${Math.floor(frac * 100)}%` : '';
    // The bar keeps one width for the whole run: what follows it takes at most ~50 columns.
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - this.label.length - 54));
    const filled = Math.round(frac * width);
    const bar = known ? ` [${'#'.repeat(filled)}${'-'.repeat(width - filled)}]` : '';
    return `${this.label}${bar} ${pct} ${tail}`.replace(/ +/g, ' ');
  }
}
