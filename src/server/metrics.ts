// Prometheus metrics of one server (its own prom-client Registry, so several servers in one process don't clash):
// engine state read from EngineClient.stats() at scrape time, per-step records the engine pushes, and
// request/token/latency series the server records. Two views of the same facts:
// - ktserve_ series: ours, kept stable (their names are in use), with finer latency buckets than vLLM's (a GPU
//   decode step takes 3–10 ms, below vLLM's first inter-token bucket of 10 ms) and the KV-block counts;
// - vllm: series (vllm-metrics.ts), so that what was built for vLLM reads ktserve unchanged.
// Every series, the process's included, carries model_name (the served model name), as vLLM's do.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineStats, StepRecord } from '../engine/engine-api.js';
import { VllmMetrics, type FinishedRequest } from './vllm-metrics.js';

const PREFIX = 'ktserve_';

/** Latency buckets in seconds: sub-millisecond steps on a fast GPU up to minutes-long prefills on a CPU. */
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const ITL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5];
const E2E_BUCKETS = [0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 300];

let processRegistry: Registry | undefined;

/**
 * The process's own series (process_cpu_seconds_total, process_resident_memory_bytes, nodejs_* …), collected once
 * per process: prom-client's collectors never stop (a GC observer each), so one per server would pile up in a
 * process that builds many servers (the tests). Each server's scrape merges them in.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** Running totals of tokens (what the periodic status line turns into throughputs). */
export interface TokenTotals {
  /** Tokens generated and delivered. */
  generationTokens: number;
  /** Prompt tokens the engine ran through the model (prefix-cache hits are not run). */
  prefillTokens: number;
}

export interface ServerMetricsOptions {
  /** The served model name: every series' model_name label. */
  modelName: string;
  /** The context length: the top bucket of the per-request token-count histograms. */
  maxModelLen: number;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly totals: TokenTotals = { generationTokens: 0, prefillTokens: 0 };
  private readonly vllm: VllmMetrics;
  private readonly modelName: string;
  private readonly running: Gauge;
  private readonly waiting: Gauge;
  private readonly kvUsed: Gauge;
  private readonly kvFree: Gauge;
  private readonly kvTotal: Gauge;
  private readonly kvUsage: Gauge;
  private readonly prefixHitRate: Gauge;
  private readonly prefixHits: Counter;
  private readonly prefixQueries: Counter;
  private readonly preemptions: Counter;
  private readonly steps: Counter;
  private readonly promptTokens: Counter;
  private readonly cachedPromptTokens: Counter;
  private readonly generationTokens: Counter;
  private readonly finished: Counter<'reason'>;
  private readonly httpRequests: Counter<'route' | 'status'>;
  private readonly ttft: Histogram;
  private readonly itl: Histogram;
  private readonly e2e: Histogram;
  /** Last engine counters seen, so Prometheus counters advance by the difference. */
  private last = { hits: 0, queries: 0, preemptions: 0, steps: 0 };

  constructor(opts: ServerMetricsOptions) {
    this.modelName = opts.modelName;
    this.registry.setDefaultLabels({ model_name: opts.modelName });
    this.vllm = new VllmMetrics(this.registry, opts.maxModelLen);
    const registers = [this.registry];
    const gauge = (name: string, help: string): Gauge => new Gauge({ name: PREFIX + name, help, registers });
    const counter = (name: string, help: string): Counter => new Counter({ name: PREFIX + name, help, registers });
    this.running = gauge('num_requests_running', 'Sequences the engine is running (prefill or decode).');
    this.waiting = gauge('num_requests_waiting', 'Sequences queued in the engine, not yet started or preempted.');
    this.kvUsed = gauge('kv_blocks_used', 'KV-cache blocks held by sequences.');
    this.kvFree = gauge('kv_blocks_free', 'KV-cache blocks free (including cached blocks no sequence holds).');
    this.kvTotal = gauge('kv_blocks_total', 'KV-cache blocks in all.');
    this.kvUsage = gauge('kv_cache_usage_ratio', 'Fraction of KV-cache blocks in use, 0 to 1.');
    this.prefixHitRate = gauge('prefix_cache_hit_rate', 'Prompt tokens served from the prefix cache / prompt tokens looked up, since start.');
    this.prefixHits = counter('prefix_cache_hits_total', 'Prompt tokens served from the prefix cache.');
    this.prefixQueries = counter('prefix_cache_queries_total', 'Prompt tokens looked up in the prefix cache.');
    this.preemptions = counter('num_preemptions_total', 'Sequences preempted (KV blocks freed, recomputed later).');
    this.steps = counter('engine_steps_total', 'Engine steps run.');
    this.promptTokens = counter('prompt_tokens_total', 'Prompt tokens of finished requests.');
    this.cachedPromptTokens = counter('prompt_tokens_cached_total', 'Prompt tokens of finished requests served from the prefix cache.');
    this.generationTokens = counter('generation_tokens_total', 'Tokens generated.');
    this.finished = new Counter({
      name: PREFIX + 'requests_finished_total',
      help: 'Engine requests (one per choice) finished, by reason: stop, length, abort, error.',
      labelNames: ['reason'],
      registers,
    });
    this.httpRequests = new Counter({
      name: PREFIX + 'http_requests_total',
      help: 'HTTP responses, by route and status code.',
      labelNames: ['route', 'status'],
      registers,
    });
    this.ttft = new Histogram({
      name: PREFIX + 'time_to_first_token_seconds',
      help: 'From request arrival to its first generated token.',
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.itl = new Histogram({
      name: PREFIX + 'inter_token_latency_seconds',
      help: 'Between consecutive generated tokens of one request.',
      buckets: ITL_BUCKETS,
      registers,
    });
    this.e2e = new Histogram({
      name: PREFIX + 'e2e_request_latency_seconds',
      help: 'From request arrival to its last token.',
      buckets: E2E_BUCKETS,
      registers,
    });
  }

  /** Copies an engine snapshot into the gauges and advances the counters; called at scrape time. */
  observeEngine(s: EngineStats): void {
    const usage = s.kvBlocksTotal > 0 ? s.kvBlocksUsed / s.kvBlocksTotal : 0;
    for (const g of [this.running, this.vllm.running]) g.set(s.running);
    for (const g of [this.waiting, this.vllm.waiting]) g.set(s.waiting);
    for (const g of [this.kvUsage, this.vllm.kvUsage, this.vllm.gpuCacheUsage]) g.set(usage);
    this.kvUsed.set(s.kvBlocksUsed);
    this.kvFree.set(s.kvBlocksFree);
    this.kvTotal.set(s.kvBlocksTotal);
    this.prefixHitRate.set(s.prefixCacheQueryTokens > 0 ? s.prefixCacheHitTokens / s.prefixCacheQueryTokens : 0);
    const advance = (counters: Counter[], now: number, before: number): void => {
      // An engine restarted underneath us starts from zero again: count from there.
      if (now > before) for (const c of counters) c.inc(now - before);
    };
    advance([this.prefixHits, this.vllm.prefixHits], s.prefixCacheHitTokens, this.last.hits);
    advance([this.prefixQueries, this.vllm.prefixQueries], s.prefixCacheQueryTokens, this.last.queries);
    advance([this.preemptions, this.vllm.preemptions], s.preemptions, this.last.preemptions);
    advance([this.steps], s.steps, this.last.steps);
    this.last = { hits: s.prefixCacheHitTokens, queries: s.prefixCacheQueryTokens, preemptions: s.preemptions, steps: s.steps };
  }

  /** A step the engine ran. */
  engineStep(step: StepRecord): void {
    this.totals.prefillTokens += step.prefillTokens;
    this.vllm.engineStep(step.tokens);
  }

  /** A request's first token came `seconds` after it arrived: its prefill is done. */
  firstToken(seconds: number, promptTokens: number): void {
    this.ttft.observe(seconds);
    this.vllm.firstToken(seconds, promptTokens);
  }

  /** Tokens delivered to a client, as they come. */
  tokensGenerated(n: number): void {
    this.vllm.tokensGenerated(n);
    this.totals.generationTokens += n;
  }

  /** `tokens` arrived together `seconds` after the previous ones: each counts as an equal share of the gap. */
  interToken(seconds: number, tokens: number): void {
    for (let i = 0; i < tokens; i++) {
      this.itl.observe(seconds / tokens);
      this.vllm.interToken(seconds / tokens);
    }
  }

  requestFinished(r: FinishedRequest & { cachedTokens: number }): void {
    this.finished.inc({ reason: r.reason });
    this.promptTokens.inc(r.promptTokens);
    this.cachedPromptTokens.inc(r.cachedTokens);
    this.generationTokens.inc(r.completionTokens);
    this.e2e.observe(r.e2eSeconds);
    this.vllm.requestFinished(r);
  }

  httpResponse(route: string, status: number): void {
    this.httpRequests.inc({ route, status: String(status) });
  }

  /** The exposition text: this server's series and the process's, all labelled with the model name. */
  text(): Promise<string> {
    const all = Registry.merge([this.registry, processMetrics()]);
    all.setDefaultLabels({ model_name: this.modelName });
    return all.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
