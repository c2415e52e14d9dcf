// The benchmark's human-readable table (one row per concurrency) and its JSON file.
import { writeFileSync } from 'node:fs';
import type { Summary } from './metrics.js';
import type { BenchResult } from './serve-bench.js';

/** Numbers at a precision that suits their size; '-' for a metric with no values. */
export function formatNumber(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  return v.toFixed(a >= 1000 ? 0 : a >= 10 ? 1 : 2);
}

/** Right-aligned columns under a header, optionally with a group line above the header. */
function renderTable(header: string[], rows: string[][], groups?: [string, number][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  const out: string[] = [];
  if (groups) {
    // Each group label is centred over the columns it spans.
    let col = 0;
    const parts: string[] = [];
    for (const [label, span] of groups) {
      const w = widths.slice(col, col + span).reduce((s, x) => s + x, 0) + 2 * (span - 1);
      const left = Math.floor((w - label.length) / 2);
      parts.push(label.padStart(left + label.length).padEnd(w));
      col += span;
    }
    out.push(parts.join('  ').trimEnd());
  }
  out.push(line(header), line(header.map((_, i) => '-'.repeat(widths[i]!))), ...rows.map(line));
  return out.join('\n');
}

function latencyCells(s: Summary): string[] {
  return [formatNumber(s.mean), formatNumber(s.median), formatNumber(s.p99)];
}

/** The report printed to stdout: throughput table, latency table, then how the numbers were obtained. */
export function formatReport(r: BenchResult): string {
  const throughput = renderTable(
    ['concurrency', 'ok', 'failed', 'duration s', 'req/s', 'output tok/s', 'total tok/s', 'in tokens', 'out tokens', 'peak in flight'],
    r.runs.map((x) => [
      String(x.concurrency),
      String(x.completed),
      String(x.failed),
      formatNumber(x.duration_s),
      formatNumber(x.request_throughput),
      formatNumber(x.output_throughput),
      formatNumber(x.total_token_throughput),
      String(x.total_input_tokens),
      String(x.total_output_tokens),
      String(x.max_concurrent_requests),
    ]),
  );
  const latency = renderTable(
    ['concurrency', ...Array.from({ length: 4 }, () => ['mean', 'p50', 'p99']).flat()],
    r.runs.map((x) => [String(x.concurrency), ...[x.ttft_ms, x.tpot_ms, x.itl_ms, x.e2el_ms].flatMap(latencyCells)]),
    [['', 1], ['TTFT ms', 3], ['TPOT ms', 3], ['ITL ms', 3], ['E2E ms', 3]],
  );
  const rate = r.config.request_rate === 'inf' ? 'all at once' : `${r.config.request_rate} req/s (Poisson)`;
  const lines = [
    `Serving benchmark: ${r.server.endpoint_url}, model ${r.server.model}, ${r.runs[0]?.num_prompts ?? 0} requests per run, sent ${rate}`,
    `Prompts: ${r.config.dataset === 'random' ? `random, ${r.config.input_len} in / ${r.config.output_len} out tokens (range ratio ${r.config.range_ratio})` : r.config.dataset}; text from ${r.dataset.prompt_text}; prompt token count ${r.dataset.prompt_token_count}`,
    '',
    throughput,
    '',
    latency,
    '',
    `Percentiles: ${r.percentile_method}.`,
    ...r.notes.map((n) => `Note: ${n}.`),
  ];
  for (const run of r.runs.filter((x) => x.errors.length > 0)) {
    lines.push(`Failures at concurrency ${run.concurrency} (${run.failed}):`);
    for (const e of run.errors.slice(0, 5)) lines.push(`  ${e.count} × ${e.message}`);
    if (run.errors.length > 5) lines.push(`  … and ${run.errors.length - 5} other messages (see the JSON)`);
  }
  return `${lines.join('\n')}\n`;
}

/** Non-finite numbers (a zero-length run's rates) become null, since JSON has no NaN or Infinity. */
export function resultJson(r: BenchResult): string {
  return `${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

export function writeJson(path: string, r: BenchResult): void {
  writeFileSync(path, resultJson(r));
}
