// The `vllm:` series: vLLM v1's names, types and bucket boundaries, so that dashboards and alerts written for vLLM
// (its Grafana board, autoscalers reading vllm:num_requests_waiting, gateways reading vllm:kv_cache_usage_perc) work
// on ktserve unchanged. ServerMetrics feeds them beside the ktserve_ series; the definitions follow vLLM's where the
// two differ (prompt tokens counted when the prefill ends, generation tokens as they are produced).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { FinishReason, RequestTiming } from '../engine/engine-api.js';

/** vLLM's bucket boundaries: a dashboard's histogram_quantile() and `le` thresholds read the same buckets here. */
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const PER_TOKEN_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const REQUEST_LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
const ITERATION_TOKEN_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];

/** 1, 2, 5, 10, 20, 50… up to max (vLLM's buckets for token counts per request). */
export function buckets125(max: number): number[] {
  const out: number[] = [];
  for (let scale = 1; ; scale *= 10) {
    for (const m of [1, 2, 5]) {
      if (m * scale > max) return out;
      out.push(m * scale);
    }
  }
}

/** Every finish reason gets its series at 0 from the start, as vLLM's do: a rate() over a series born later misses its first count. */
const FINISH_REASONS: readonly FinishReason[] = ['stop', 'length', 'abort', 'error'];

export interface FinishedRequest {
  reason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Arrival at the server → the request's end. */
  e2eSeconds: number;
  /** The engine's phases; absent where the engine did not report them. */
  timing: RequestTiming | undefined;
}

export class VllmMetrics {
  readonly running: Gauge;
  readonly waiting: Gauge;
  readonly kvUsage: Gauge;
  /** vLLM < 0.10's name of kv_cache_usage_perc, which older dashboards still chart. */
  readonly gpuCacheUsage: Gauge;
  readonly prefixQueries: Counter;
  readonly prefixHits: Counter;
  readonly preemptions: Counter;
  private readonly promptTokens: Counter;
  private readonly generationTokens: Counter;
  private readonly success: Counter<'finished_reason'>;
  private readonly iterationTokens: Histogram;
  private readonly ttft: Histogram;
  private readonly itl: Histogram;
  /** vLLM's older name of inter_token_latency_seconds, observed alike. */
  private readonly tpot: Histogram;
  private readonly requestTpot: Histogram;
  private readonly e2e: Histogram;
  private readonly queue: Histogram;
  private readonly inference: Histogram;
  private readonly prefill: Histogram;
  private readonly decode: Histogram;
  private readonly requestPromptTokens: Histogram;
  private readonly requestGenerationTokens: Histogram;

  constructor(registry: Registry, maxModelLen: number) {
    const registers = [registry];
    const gauge = (name: string, help: string): Gauge => new Gauge({ name: `vllm:${name}`, help, registers });
    const counter = (name: string, help: string): Counter => new Counter({ name: `vllm:${name}`, help, registers });
    const histogram = (name: string, help: string, buckets: number[]): Histogram =>
      new Histogram({ name: `vllm:${name}`, help, buckets, registers });
    this.running = gauge('num_requests_running', 'Requests in the engine\'s running batch (prefill or decode).');
    this.waiting = gauge('num_requests_waiting', 'Requests waiting in the engine\'s queue (not started, or preempted).');
    this.kvUsage = gauge('kv_cache_usage_perc', 'KV-cache usage: fraction of blocks held by requests, 0 to 1.');
    this.gpuCacheUsage = gauge('gpu_cache_usage_perc', 'KV-cache usage, 0 to 1 (vLLM\'s older name of vllm:kv_cache_usage_perc).');
    this.prefixQueries = counter('prefix_cache_queries_total', 'Prompt tokens looked up in the prefix cache.');
    this.prefixHits = counter('prefix_cache_hits_total', 'Prompt tokens found in the prefix cache.');
    this.preemptions = counter('num_preemptions_total', 'Requests preempted by the engine (KV blocks freed, recomputed later).');
    this.promptTokens = counter('prompt_tokens_total', 'Prompt tokens of requests whose prefill ended (first token produced).');
    this.generationTokens = counter('generation_tokens_total', 'Tokens generated.');
    this.success = new Counter({
      name: 'vllm:request_success_total',
      help: 'Requests (one per choice) finished, by finished_reason: stop, length, abort, error.',
      labelNames: ['finished_reason'],
      registers,
    });
    for (const r of FINISH_REASONS) this.success.inc({ finished_reason: r }, 0);
    this.iterationTokens = histogram('iteration_tokens_total', 'Tokens per engine step (prefill chunks + decodes).', ITERATION_TOKEN_BUCKETS);
    this.ttft = histogram('time_to_first_token_seconds', 'Arrival → first generated token.', TTFT_BUCKETS);
    this.itl = histogram('inter_token_latency_seconds', 'Between consecutive generated tokens of a request.', PER_TOKEN_BUCKETS);
    this.tpot = histogram('time_per_output_token_seconds', 'Between consecutive generated tokens (older name of vllm:inter_token_latency_seconds).', PER_TOKEN_BUCKETS);
    this.requestTpot = histogram('request_time_per_output_token_seconds', 'Per request: decode time / (generated tokens − 1).', PER_TOKEN_BUCKETS);
    this.e2e = histogram('e2e_request_latency_seconds', 'Arrival → the request\'s end.', REQUEST_LATENCY_BUCKETS);
    this.queue = histogram('request_queue_time_seconds', 'Time in the engine\'s waiting queue before first scheduled.', REQUEST_LATENCY_BUCKETS);
    this.inference = histogram('request_inference_time_seconds', 'First scheduled → last token (prefill + decode).', REQUEST_LATENCY_BUCKETS);
    this.prefill = histogram('request_prefill_time_seconds', 'First scheduled → first token.', REQUEST_LATENCY_BUCKETS);
    this.decode = histogram('request_decode_time_seconds', 'First token → last token.', REQUEST_LATENCY_BUCKETS);
    const tokenBuckets = buckets125(maxModelLen);
    this.requestPromptTokens = histogram('request_prompt_tokens', 'Prompt tokens per finished request.', tokenBuckets);
    this.requestGenerationTokens = histogram('request_generation_tokens', 'Generated tokens per finished request.', tokenBuckets);
  }

  engineStep(tokens: number): void {
    this.iterationTokens.observe(tokens);
  }

  firstToken(seconds: number, promptTokens: number): void {
    this.ttft.observe(seconds);
    this.promptTokens.inc(promptTokens);
  }

  tokensGenerated(n: number): void {
    this.generationTokens.inc(n);
  }

  /** One gap between tokens. */
  interToken(seconds: number): void {
    this.itl.observe(seconds);
    this.tpot.observe(seconds);
  }

  requestFinished(r: FinishedRequest): void {
    this.success.inc({ finished_reason: r.reason });
    this.e2e.observe(r.e2eSeconds);
    this.requestPromptTokens.observe(r.promptTokens);
    this.requestGenerationTokens.observe(r.completionTokens);
    const t = r.timing;
    if (!t) return;
    this.queue.observe(t.queueSeconds);
    this.prefill.observe(t.prefillSeconds);
    this.decode.observe(t.decodeSeconds);
    this.inference.observe(t.prefillSeconds + t.decodeSeconds);
    if (r.completionTokens > 1) this.requestTpot.observe(t.decodeSeconds / (r.completionTokens - 1));
  }
}
