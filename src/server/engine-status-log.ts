// The periodic engine line, as vLLM logs it: throughput over the last interval, the queue, KV-cache usage and the
// prefix-cache hit rate. Only while the engine is or just was busy: an idle server's log stays quiet, but the
// interval in which work stopped still gets its line, so the log shows throughput falling to zero.
import type { FastifyBaseLogger } from 'fastify';
import type { EngineStats } from '../engine/engine-api.js';
import type { TokenTotals } from './metrics.js';

export interface StatusSources {
  engine: { stats(): EngineStats };
  /** Running token totals (ServerMetrics.totals). */
  totals: Readonly<TokenTotals>;
}

/** One line's numbers (also logged as fields, for JSON log pipelines). */
export interface StatusFields {
  /** Prompt tokens the engine ran per second (prefix-cache hits are not run: they show in the hit rate). */
  prompt_tokens_per_s: number;
  generation_tokens_per_s: number;
  running: number;
  waiting: number;
  /** Percent of KV blocks held. */
  kv_cache_usage_pct: number;
  /** Percent of prompt tokens looked up in the interval that the cache held (since start, when none were). */
  prefix_cache_hit_rate_pct: number;
}

interface Snapshot {
  at: number;
  prefill: number;
  generation: number;
  hits: number;
  queries: number;
}

export class EngineStatusLog {
  private last: Snapshot;
  private wasActive = false;

  constructor(
    private readonly src: StatusSources,
    private readonly write: (fields: StatusFields, line: string) => void,
    /** The clock reading (ms) the first interval starts at. */
    startedAt: number,
  ) {
    this.last = this.snapshot(startedAt, src.engine.stats());
  }

  /** Ends the interval at `now` (ms): logs its line if there was activity in it or in the one before; returns the line. */
  tick(now: number): string | undefined {
    const stats = this.src.engine.stats();
    const cur = this.snapshot(now, stats);
    const prev = this.last;
    this.last = cur;
    const seconds = (cur.at - prev.at) / 1000;
    if (seconds <= 0) return undefined;
    const prefill = cur.prefill - prev.prefill;
    const generation = cur.generation - prev.generation;
    const active = prefill > 0 || generation > 0 || stats.running > 0 || stats.waiting > 0;
    const wasActive = this.wasActive;
    this.wasActive = active;
    if (!active && !wasActive) return undefined;
    const queries = cur.queries - prev.queries;
    const hitRate = queries > 0 ? (cur.hits - prev.hits) / queries : cur.queries > 0 ? cur.hits / cur.queries : 0;
    const fields: StatusFields = {
      prompt_tokens_per_s: prefill / seconds,
      generation_tokens_per_s: generation / seconds,
      running: stats.running,
      waiting: stats.waiting,
      kv_cache_usage_pct: stats.kvBlocksTotal > 0 ? (100 * stats.kvBlocksUsed) / stats.kvBlocksTotal : 0,
      prefix_cache_hit_rate_pct: 100 * hitRate,
    };
    const line = formatStatusLine(fields);
    this.write(fields, line);
    return line;
  }

  private snapshot(at: number, s: EngineStats): Snapshot {
    const t = this.src.totals;
    return { at, prefill: t.prefillTokens, generation: t.generationTokens, hits: s.prefixCacheHitTokens, queries: s.prefixCacheQueryTokens };
  }
}

/** vLLM's wording, so that what greps vLLM's log for it finds ours ("GPU" dropped: the engine may run on the CPU). */
export function formatStatusLine(f: StatusFields): string {
  return (
    `Avg prompt throughput: ${f.prompt_tokens_per_s.toFixed(1)} tokens/s, ` +
    `Avg generation throughput: ${f.generation_tokens_per_s.toFixed(1)} tokens/s, ` +
    `Running: ${f.running} reqs, Waiting: ${f.waiting} reqs, ` +
    `KV cache usage: ${f.kv_cache_usage_pct.toFixed(1)}%, ` +
    `Prefix cache hit rate: ${f.prefix_cache_hit_rate_pct.toFixed(1)}%`
  );
}

/**
 * Logs the engine line every `intervalMs` at info level through `log`, so --log_level warn or above silences it
 * along with the access lines.
 * Returns the function that stops it.
 */
export function startEngineStatusLog(log: FastifyBaseLogger, src: StatusSources, intervalMs: number): () => void {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`statusLogIntervalMs must be > 0, got ${intervalMs}`);
  const out = log.child({ component: 'engine-status' });
  const status = new EngineStatusLog(src, (fields, line) => out.info(fields, line), performance.now());
  const timer = setInterval(() => status.tick(performance.now()), intervalMs);
  // The line never keeps a stopping process alive.
  timer.unref();
  return () => clearInterval(timer);
}
