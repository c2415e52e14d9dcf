// Looking at a running ktserve from outside, as the hardening suites do before and after they stress it: the engine
// gauges on /metrics (KV blocks, running, waiting), waiting until it is idle, and greedy requests whose text must
// not change (a server that leaks or corrupts state under abuse answers them differently, or not at all).
import { parsePrometheusText, sample } from './prom-text.js';

/** The engine gauges of src/server/metrics.ts, as one scrape of /metrics shows them. */
export interface EngineGauges {
  running: number;
  waiting: number;
  kvUsed: number;
  kvFree: number;
  kvTotal: number;
}

/** The sum of a series' samples whose labels match `labels` (a value, or a pattern: {status: /^5/}). */
export function sumLabelled(text: string, name: string, labels: Record<string, string | RegExp> = {}): number {
  let sum = 0;
  for (const f of parsePrometheusText(text).values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      const match = Object.entries(labels).every(([k, v]) => {
        const got = s.labels[k];
        return got !== undefined && (typeof v === 'string' ? got === v : v.test(got));
      });
      if (match) sum += s.value;
    }
  }
  return sum;
}

export async function metricsText(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

export async function engineGauges(url: string): Promise<EngineGauges> {
  const m = parsePrometheusText(await metricsText(url));
  const get = (name: string): number => sample(m, `ktserve_${name}`);
  return {
    running: get('num_requests_running'),
    waiting: get('num_requests_waiting'),
    kvUsed: get('kv_blocks_used'),
    kvFree: get('kv_blocks_free'),
    kvTotal: get('kv_blocks_total'),
  };
}

/** Nothing running or waiting and no KV block held by a sequence. */
export function isIdle(g: EngineGauges): boolean {
  return g.running === 0 && g.waiting === 0 && g.kvUsed === 0;
}

/**
 * Polls /metrics until the engine is idle; resolves with the gauges then and how long it took, or with the last
 * gauges seen and `idle: false` after `timeoutMs`.
 */
export async function waitForIdle(url: string, timeoutMs = 30_000, pollMs = 50): Promise<{ idle: boolean; ms: number; gauges: EngineGauges }> {
  const t0 = performance.now();
  for (;;) {
    const gauges = await engineGauges(url);
    const ms = performance.now() - t0;
    if (isIdle(gauges)) return { idle: true, ms, gauges };
    if (ms > timeoutMs) return { idle: false, ms, gauges };
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Greedy requests (temperature 0) over both APIs; the same server must answer each with the same text every time. */
const GREEDY_PROBES: readonly { path: string; body: Record<string, unknown>; text: (v: unknown) => unknown }[] = [
  {
    path: '/v1/chat/completions',
    body: { messages: [{ role: 'user', content: 'Count from 3 to 9.' }], temperature: 0, max_tokens: 24 },
    text: (v) => (v as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content,
  },
  {
    path: '/v1/completions',
    body: { prompt: 'What is 12 + 30?', temperature: 0, max_tokens: 16, ignore_eos: true },
    text: (v) => (v as { choices?: { text?: unknown }[] }).choices?.[0]?.text,
  },
  {
    path: '/api/chat',
    body: { model: 'any', messages: [{ role: 'user', content: 'List three colours.' }], stream: false, options: { temperature: 0, num_predict: 24 } },
    text: (v) => (v as { message?: { content?: unknown } }).message?.content,
  },
];

/** The greedy probes' answers, keyed by path; throws if any request fails (the server is not fit to compare). */
export async function greedyAnswers(url: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const p of GREEDY_PROBES) {
    const res = await fetch(`${url}${p.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(p.body),
      signal: AbortSignal.timeout(60_000),
    });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`greedy probe ${p.path} answered ${res.status}: ${body.slice(0, 300)}`);
    const text = p.text(JSON.parse(body));
    if (typeof text !== 'string') throw new Error(`greedy probe ${p.path}: no text in ${body.slice(0, 300)}`);
    out.set(p.path, text);
  }
  return out;
}

/** Lines naming each probe whose answer changed; empty when all match. */
export function greedyDiff(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [path, text] of before) {
    const now = after.get(path);
    if (now !== text) out.push(`${path}: before ${JSON.stringify(text)}, after ${JSON.stringify(now)}`);
  }
  return out;
}

/**
 * The state to compare against after a stress run: greedy answers, then the gauges once idle. The answers come
 * first because they also warm the server up: its engine gauges read 0 blocks in all until the first request.
 */
export async function baseline(url: string, timeoutMs = 60_000): Promise<{ answers: Map<string, string>; gauges: EngineGauges }> {
  const answers = await greedyAnswers(url);
  const idle = await waitForIdle(url, timeoutMs);
  if (!idle.idle) throw new Error(`the server is not idle before the run: ${JSON.stringify(idle.gauges)}`);
  return { answers, gauges: idle.gauges };
}
