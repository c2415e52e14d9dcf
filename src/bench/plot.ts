// An SVG chart of a concurrency sweep: output and total throughput, TTFT and TPOT (p50 and p99) against concurrency,
// one panel each, hand-written (a few dozen elements need no plotting library). Points show their values on hover.
import { writeFileSync } from 'node:fs';
import { formatNumber } from './report.js';
import type { BenchResult, RunResult } from './serve-bench.js';

interface Line {
  label: string;
  color: string;
  dashed?: boolean;
  values: (number | null)[];
}

interface Panel {
  title: string;
  unit: string;
  lines: Line[];
}

const PANEL_W = 420;
const PANEL_H = 300;
const MARGIN = { left: 62, right: 16, top: 40, bottom: 46 };
const HEADER_H = 56;
const BLUE = '#1f6fb4';
const ORANGE = '#e07b10';
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, DejaVu Sans, sans-serif"';

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Tick step of 1, 2 or 5 × 10^k giving about `count` intervals up to `max`. */
export function niceStep(max: number, count = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function tickLabel(v: number): string {
  if (v >= 10_000) return `${formatNumber(v / 1000)}k`;
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(3)));
}

function pick(runs: readonly RunResult[], f: (r: RunResult) => number | null): (number | null)[] {
  return runs.map((r) => {
    const v = f(r);
    return v !== null && Number.isFinite(v) ? v : null;
  });
}

/** One panel at (x0, y0): axes from 0, gridlines, one polyline with points per line, and a legend. */
function drawPanel(p: Panel, xs: readonly number[], x0: number, y0: number): string {
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const left = x0 + MARGIN.left;
  const top = y0 + MARGIN.top;
  const all = p.lines.flatMap((l) => l.values.filter((v): v is number => v !== null));
  const step = niceStep(Math.max(0, ...all));
  const yMax = Math.max(step, Math.ceil(Math.max(0, ...all) / step) * step);
  // Concurrency values sit evenly spaced (a sweep like 1,4,16,64 is geometric, so this reads as a log axis).
  const px = (i: number) => left + (xs.length === 1 ? w / 2 : (i * w) / (xs.length - 1));
  const py = (v: number) => top + h - (v / yMax) * h;
  const out: string[] = [];
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${y0 + 22}" text-anchor="middle" font-size="15" font-weight="600">${escapeXml(p.title)}</text>`);
  for (let v = 0; v <= yMax + step / 2; v += step) {
    const y = py(v).toFixed(1);
    out.push(`<line x1="${left}" x2="${left + w}" y1="${y}" y2="${y}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${left - 6}" y="${y}" dy="0.32em" text-anchor="end" font-size="11" fill="#555">${tickLabel(v)}</text>`);
  }
  xs.forEach((c, i) => {
    out.push(`<line x1="${px(i)}" x2="${px(i)}" y1="${top + h}" y2="${top + h + 4}" stroke="#888"/>`);
    out.push(`<text x="${px(i)}" y="${top + h + 17}" text-anchor="middle" font-size="11" fill="#555">${c}</text>`);
  });
  out.push(`<line x1="${left}" x2="${left + w}" y1="${top + h}" y2="${top + h}" stroke="#888"/>`);
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + h}" stroke="#888"/>`);
  out.push(`<text x="${left + w / 2}" y="${top + h + 36}" text-anchor="middle" font-size="12" fill="#333">concurrency</text>`);
  out.push(
    `<text transform="translate(${x0 + 14} ${top + h / 2}) rotate(-90)" text-anchor="middle" font-size="12" fill="#333">${escapeXml(p.unit)}</text>`,
  );
  p.lines.forEach((l, k) => {
    const dash = l.dashed ? ' stroke-dasharray="6 4"' : '';
    const pts = l.values.map((v, i) => (v === null ? null : [px(i), py(v)] as const));
    // A missing value (no data at that concurrency) breaks the line rather than bridging it.
    let run: string[] = [];
    const segments: string[][] = [];
    for (const pt of pts) {
      if (pt) {
        run.push(`${pt[0].toFixed(1)},${pt[1].toFixed(1)}`);
      } else if (run.length > 0) {
        segments.push(run);
        run = [];
      }
    }
    if (run.length) segments.push(run);
    for (const s of segments) out.push(`<polyline points="${s.join(' ')}" fill="none" stroke="${l.color}" stroke-width="2.2"${dash}/>`);
    pts.forEach((pt, i) => {
      if (!pt) return;
      const tip = `${l.label} at concurrency ${xs[i]}: ${formatNumber(l.values[i])} ${p.unit}`;
      out.push(`<circle cx="${pt[0].toFixed(1)}" cy="${pt[1].toFixed(1)}" r="3.5" fill="${l.color}"><title>${escapeXml(tip)}</title></circle>`);
    });
    const ly = top + 6 + k * 16;
    const lx = left + 10;
    out.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${l.color}" stroke-width="2.2"${dash}/>`);
    out.push(`<text x="${lx + 28}" y="${ly}" dy="0.32em" font-size="11" fill="#333">${escapeXml(l.label)}</text>`);
  });
  return out.join('\n');
}

/** The chart for a result: throughput on top (output, then prompt + output), TTFT and TPOT below, under a title. */
export function renderPlot(r: BenchResult): string {
  const runs = r.runs;
  const xs = runs.map((x) => x.concurrency);
  // Output and total throughput get their own panels: with long prompts total is many times output and would
  // flatten the output line on a shared axis.
  const panels: Panel[] = [
    {
      title: 'Output token throughput',
      unit: 'tokens / s',
      lines: [{ label: 'output tok/s', color: BLUE, values: pick(runs, (x) => x.output_throughput) }],
    },
    {
      title: 'Total token throughput (prompt + output)',
      unit: 'tokens / s',
      lines: [{ label: 'total tok/s', color: BLUE, values: pick(runs, (x) => x.total_token_throughput) }],
    },
    {
      title: 'Time to first token',
      unit: 'ms',
      lines: [
        { label: 'p50', color: BLUE, values: pick(runs, (x) => x.ttft_ms.median) },
        { label: 'p99', color: ORANGE, dashed: true, values: pick(runs, (x) => x.ttft_ms.p99) },
      ],
    },
    {
      title: 'Time per output token',
      unit: 'ms',
      lines: [
        { label: 'p50', color: BLUE, values: pick(runs, (x) => x.tpot_ms.median) },
        { label: 'p99', color: ORANGE, dashed: true, values: pick(runs, (x) => x.tpot_ms.p99) },
      ],
    },
  ];
  const cols = 2;
  const width = PANEL_W * cols;
  const height = HEADER_H + PANEL_H * Math.ceil(panels.length / cols);
  const rate = r.config.request_rate === 'inf' ? 'all at once' : `${r.config.request_rate} req/s`;
  const input = r.config.dataset === 'random' ? `${r.config.input_len} in / ${r.config.output_len} out tokens` : r.config.dataset;
  const subtitle = `${input} · ${r.runs[0]?.num_prompts ?? 0} requests per run, ${rate} · ${r.date.slice(0, 16).replace('T', ' ')} UTC`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="16" y="24" font-size="17" font-weight="700">${escapeXml(`${r.server.model} · ${r.server.endpoint_url}`)}</text>`,
    `<text x="16" y="44" font-size="12" fill="#555">${escapeXml(`ktserve bench serve · ${subtitle}`)}</text>`,
    ...panels.map((p, i) => drawPanel(p, xs, (i % cols) * PANEL_W, HEADER_H + Math.floor(i / cols) * PANEL_H)),
    '</svg>',
    '',
  ].join('\n');
}

export function writePlot(path: string, r: BenchResult): void {
  writeFileSync(path, renderPlot(r));
}
