// Serving metrics from request records, defined as `vllm bench serve` defines them: TTFT, TPOT, ITL, E2E latency,
// request / output / total token throughput. Field names are snake_case because these objects are the JSON report.
import type { RequestRecord } from './stream-record.js';

export const PERCENTILE_METHOD =
  'linear interpolation between closest ranks: p-th percentile of n sorted values at rank (n-1)·p/100 (numpy.percentile default)';

/** Distribution of one metric. All null when there are no values (e.g. TPOT when every request made one token). */
export interface Summary {
  n: number;
  mean: number | null;
  median: number | null;
  /** Population standard deviation (numpy.std, ddof 0), as vLLM reports it. */
  std: number | null;
  p90: number | null;
  p99: number | null;
  min: number | null;
  max: number | null;
}

/** The p-th percentile (0…100) of ascending `sorted` values, by linear interpolation between closest ranks. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of no values');
  const rank = ((sorted.length - 1) * p) / 100;
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  return a + (sorted[hi]! - a) * (rank - lo);
}

export function summarize(values: readonly number[]): Summary {
  const n = values.length;
  if (n === 0) return { n, mean: null, median: null, std: null, p90: null, p99: null, min: null, max: null };
  const sorted = [...values].sort((x, y) => x - y);
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
  return {
    n,
    mean,
    median: percentile(sorted, 50),
    std: Math.sqrt(variance),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    min: sorted[0]!,
    max: sorted[n - 1]!,
  };
}

/** Counts the tokens of generated text with the model's tokenizer (no special tokens added). */
export type TokenCounter = (text: string) => number;

export interface ErrorCount {
  message: string;
  count: number;
}

/** One run (one concurrency value) of the benchmark. */
export interface RunMetrics {
  completed: number;
  failed: number;
  /** From the first request sent to the last one finished. */
  duration_s: number;
  /** Prompt tokens of the completed requests (the server's usage.prompt_tokens where sent). */
  total_input_tokens: number;
  total_output_tokens: number;
  /** completed / duration. */
  request_throughput: number;
  /** total_output_tokens / duration. */
  output_throughput: number;
  /** (total_input_tokens + total_output_tokens) / duration. */
  total_token_throughput: number;
  /** Most requests in flight at one instant, from the client's [start, end) of every request (failed ones too). */
  max_concurrent_requests: number;
  /** Time to first token: first content chunk − request start, per completed request. */
  ttft_ms: Summary;
  /** Time per output token after the first: (E2E − TTFT) / (output tokens − 1), per request with > 1 token. */
  tpot_ms: Summary;
  /** Inter-token latency: gaps between consecutive content chunks, pooled over all completed requests. */
  itl_ms: Summary;
  /** End-to-end latency: last content chunk − request start, per completed request. */
  e2el_ms: Summary;
  /** How many completed requests had their output tokens counted each way. */
  output_tokens_from: { usage: number; retokenized: number; content_chunks: number };
  /** How many completed requests had their prompt tokens from the server's usage vs the client's count. */
  input_tokens_from: { usage: number; client: number };
  /** Failures grouped by message, most frequent first. */
  errors: ErrorCount[];
}

/**
 * Output tokens of one completed request: usage.completion_tokens; else the text re-tokenized; else (no tokenizer)
 * the number of content chunks, which is exact only for servers that send one token per chunk.
 */
function outputTokens(r: RequestRecord, retokenize: TokenCounter | undefined): [number, keyof RunMetrics['output_tokens_from']] {
  if (r.completionTokens !== undefined) return [r.completionTokens, 'usage'];
  if (retokenize) return [retokenize(r.text), 'retokenized'];
  return [r.contentChunks, 'content_chunks'];
}

/** Groups failure messages by their first line (long messages cut), most frequent first. */
export function summarizeErrors(records: readonly RequestRecord[]): ErrorCount[] {
  const counts = new Map<string, number>();
  for (const r of records) {
    if (r.ok) continue;
    const line = (r.error ?? 'unknown error').split('\n')[0]!.trim();
    const key = line.length > 300 ? `${line.slice(0, 300)}…` : line;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count);
}

/** Peak number of overlapping [start, end) intervals; at equal times an end is counted before a start. */
export function maxConcurrent(records: readonly RequestRecord[]): number {
  const events: [number, number][] = [];
  for (const r of records) events.push([r.startMs, 1], [r.endMs, -1]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, d] of events) peak = Math.max(peak, (now += d));
  return peak;
}

export function computeMetrics(records: readonly RequestRecord[], durationS: number, retokenize?: TokenCounter): RunMetrics {
  const ttft: number[] = [];
  const tpot: number[] = [];
  const itl: number[] = [];
  const e2el: number[] = [];
  const outFrom = { usage: 0, retokenized: 0, content_chunks: 0 };
  const inFrom = { usage: 0, client: 0 };
  let totalIn = 0;
  let totalOut = 0;
  let completed = 0;
  for (const r of records) {
    if (!r.ok) continue;
    completed++;
    const [out, from] = outputTokens(r, retokenize);
    outFrom[from]++;
    totalOut += out;
    if (r.promptTokens !== undefined) inFrom.usage++;
    else inFrom.client++;
    totalIn += r.promptTokens ?? r.clientPromptTokens;
    ttft.push(r.ttftMs);
    e2el.push(r.e2eMs);
    itl.push(...r.itlMs);
    if (out > 1) tpot.push((r.e2eMs - r.ttftMs) / (out - 1));
  }
  const dur = durationS > 0 ? durationS : Number.NaN;
  return {
    completed,
    failed: records.length - completed,
    duration_s: durationS,
    total_input_tokens: totalIn,
    total_output_tokens: totalOut,
    request_throughput: completed / dur,
    output_throughput: totalOut / dur,
    total_token_throughput: (totalIn + totalOut) / dur,
    max_concurrent_requests: maxConcurrent(records),
    ttft_ms: summarize(ttft),
    tpot_ms: summarize(tpot),
    itl_ms: summarize(itl),
    e2el_ms: summarize(e2el),
    output_tokens_from: outFrom,
    input_tokens_from: inFrom,
    errors: summarizeErrors(records),
  };
}
