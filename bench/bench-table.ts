// Small output helpers the soak and storm benches share: a right-aligned table, RSS samples, and the JSON file.
import { writeFileSync } from 'node:fs';
import { formatNumber } from '../src/bench/report.js';

export { formatNumber };

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(header.map((_, i) => '-'.repeat(widths[i]!))), ...rows.map(line)].join('\n');
}

export interface RssSample {
  t_s: number;
  rss_kib: number;
}

/** Samples `read()` every `everyMs` until stopped; the first sample is taken at once. */
export function sampleRss(read: () => number | undefined, everyMs: number): { samples: RssSample[]; stop(): void } {
  const t0 = performance.now();
  const samples: RssSample[] = [];
  const take = (): void => {
    const v = read();
    if (v !== undefined) samples.push({ t_s: (performance.now() - t0) / 1000, rss_kib: v });
  };
  take();
  const timer = setInterval(take, everyMs);
  return { samples, stop: () => { take(); clearInterval(timer); } };
}

export function rssLine(samples: readonly RssSample[]): string {
  if (samples.length === 0) return 'RSS: not known (no pid: pass --pid with --url, or let the bench start the server)';
  const mib = (k: number): string => (k / 1024).toFixed(1);
  const max = Math.max(...samples.map((s) => s.rss_kib));
  return `RSS MiB: start ${mib(samples[0]!.rss_kib)}, max ${mib(max)}, end ${mib(samples[samples.length - 1]!.rss_kib)} (${samples.length} samples)`;
}

export function writeResult(path: string, result: unknown): void {
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
}

/** `--serve_args` as argv words. */
export function words(s: string): string[] {
  return s.split(/\s+/).filter(Boolean);
}
