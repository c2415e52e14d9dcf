// /metrics as dashboards read it: vLLM's series names and types beside ours, model_name on every series (the
// process's too), counters and histograms that add up. Oracles: what the fake engine was asked and answered
// (prompt ids it received, tokens it generated, its step records), the responses' usage, and prom-client's own
// registry (getMetricsAsJSON) for every value the text exposition shows.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GenerationRequest } from '../src/engine/engine-api.js';
import { buckets125 } from '../src/server/vllm-metrics.js';
import { fixtureTokenizer, startFakeServer, type FakeServer } from './helpers/fake-engine.js';
import { parsePrometheusText, sample, scrape, type MetricFamily, type MetricType } from '../bench/prom-text.js';
import { needFixtures } from './fixtures.js';

const MODEL = 'tiny-llama';

/** vLLM v1's series and their types, as its PrometheusStatLogger declares them. */
const VLLM_SERIES: Record<string, MetricType> = {
  'vllm:num_requests_running': 'gauge',
  'vllm:num_requests_waiting': 'gauge',
  'vllm:kv_cache_usage_perc': 'gauge',
  'vllm:gpu_cache_usage_perc': 'gauge',
  'vllm:prefix_cache_queries_total': 'counter',
  'vllm:prefix_cache_hits_total': 'counter',
  'vllm:num_preemptions_total': 'counter',
  'vllm:prompt_tokens_total': 'counter',
  'vllm:generation_tokens_total': 'counter',
  'vllm:request_success_total': 'counter',
  'vllm:iteration_tokens_total': 'histogram',
  'vllm:time_to_first_token_seconds': 'histogram',
  'vllm:inter_token_latency_seconds': 'histogram',
  'vllm:time_per_output_token_seconds': 'histogram',
  'vllm:request_time_per_output_token_seconds': 'histogram',
  'vllm:e2e_request_latency_seconds': 'histogram',
  'vllm:request_queue_time_seconds': 'histogram',
  'vllm:request_inference_time_seconds': 'histogram',
  'vllm:request_prefill_time_seconds': 'histogram',
  'vllm:request_decode_time_seconds': 'histogram',
  'vllm:request_prompt_tokens': 'histogram',
  'vllm:request_generation_tokens': 'histogram',
};

const KTSERVE_SERIES: Record<string, MetricType> = {
  ktserve_num_requests_running: 'gauge',
  ktserve_kv_blocks_used: 'gauge',
  ktserve_kv_cache_usage_ratio: 'gauge',
  ktserve_prompt_tokens_total: 'counter',
  ktserve_generation_tokens_total: 'counter',
  ktserve_requests_finished_total: 'counter',
  ktserve_time_to_first_token_seconds: 'histogram',
  ktserve_inter_token_latency_seconds: 'histogram',
  ktserve_e2e_request_latency_seconds: 'histogram',
  ktserve_http_requests_total: 'counter',
};

const PROCESS_SERIES: Record<string, MetricType> = {
  process_cpu_seconds_total: 'counter',
  process_resident_memory_bytes: 'gauge',
  process_start_time_seconds: 'gauge',
  nodejs_heap_size_used_bytes: 'gauge',
  nodejs_eventloop_lag_seconds: 'gauge',
};

async function complete(s: FakeServer, body: Record<string, unknown>): Promise<{ completion_tokens: number; prompt_tokens: number }> {
  const res = await fetch(`${s.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, ...body }),
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { usage: { completion_tokens: number; prompt_tokens: number } }).usage;
}

/** Histogram `_sum` / `_count` of a label-less vllm: histogram. */
const sum = (f: Map<string, MetricFamily>, name: string): number => sample(f, `${name}_sum`);
const count = (f: Map<string, MetricFamily>, name: string): number => sample(f, `${name}_count`);

describe('/metrics for dashboards', needFixtures, () => {
  let s: FakeServer;
  const tok = () => fixtureTokenizer('llama');
  const SCRIPT = ' one two three four five six';
  const scriptLen = (): number => tok().encode(SCRIPT, { addSpecialTokens: false }).length;
  /** Each request "finds" its first 2 prompt tokens in the prefix cache. */
  const CACHED = 2;
  const usages: { completion_tokens: number; prompt_tokens: number }[] = [];

  before(async () => {
    s = await startFakeServer({
      script: (_req: GenerationRequest) => tok().encode(SCRIPT, { addSpecialTokens: false }),
      cachedTokens: () => CACHED,
      stepMs: 2,
    });
    // Length-limited (3 tokens), run to EOS (script + EOS), two choices of 4 (both length), and a stop string.
    usages.push(await complete(s, { prompt: 'alpha beta', max_tokens: 3 }));
    usages.push(await complete(s, { prompt: 'gamma', max_tokens: 30 }));
    usages.push(await complete(s, { prompt: 'delta epsilon zeta', max_tokens: 4, n: 2 }));
    usages.push(await complete(s, { prompt: 'eta', max_tokens: 30, stop: [' three'] }));
  });
  after(() => s.close());

  it('has vLLM\'s series with vLLM\'s types, ours, and the process\'s, each with model_name', async () => {
    const f = await scrape(s.url);
    for (const [name, type] of Object.entries({ ...VLLM_SERIES, ...KTSERVE_SERIES, ...PROCESS_SERIES })) {
      assert.equal(f.get(name)?.type, type, `${name} is a ${type}`);
      assert.ok(f.get(name)!.samples.length > 0, `${name} has samples`);
    }
    for (const fam of f.values()) {
      for (const x of fam.samples) assert.equal(x.labels.model_name, MODEL, `${x.name} ${JSON.stringify(x.labels)} carries model_name`);
    }
    // vLLM's buckets, so `le` thresholds written for vLLM select the same boundaries.
    const les = (name: string): string[] => f.get(name)!.samples.filter((x) => x.name.endsWith('_bucket')).map((x) => x.labels.le!);
    assert.deepEqual(les('vllm:iteration_tokens_total'), [...[1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384].map(String), '+Inf']);
    assert.equal(les('vllm:time_to_first_token_seconds').length, 23);
    assert.equal(les('vllm:e2e_request_latency_seconds').length, 22);
    assert.deepEqual(les('vllm:request_prompt_tokens'), [...buckets125(512).map(String), '+Inf']);
    assert.deepEqual(buckets125(512), [1, 2, 5, 10, 20, 50, 100, 200, 500]);
  });

  it('counts tokens and finished requests as the engine and the responses say', async () => {
    const f = await scrape(s.url);
    const submitted = s.engine.submitted;
    assert.equal(submitted.length, 5, 'five engine requests (one per choice)');
    const promptTotal = submitted.reduce((n, r) => n + r.promptIds.length, 0);
    const completionTotal = usages.reduce((n, u) => n + u.completion_tokens, 0);
    assert.equal(sample(f, 'vllm:prompt_tokens_total'), promptTotal);
    assert.equal(sample(f, 'ktserve_prompt_tokens_total'), promptTotal);
    assert.equal(sample(f, 'vllm:generation_tokens_total'), completionTotal);
    assert.equal(sample(f, 'ktserve_generation_tokens_total'), completionTotal);
    assert.equal(completionTotal, 3 + (scriptLen() + 1) + 2 * 4 + usages[3]!.completion_tokens);
    const success = (reason: string): number => sample(f, 'vllm:request_success_total', { finished_reason: reason });
    assert.equal(success('length'), 3);
    assert.equal(success('stop'), 2, 'EOS and the stop string');
    assert.equal(success('abort'), 0, 'every reason has its series from the start');
    assert.equal(success('error'), 0);
    // Per-request histograms: one observation per engine request, summing to the totals.
    for (const name of ['e2e_request_latency_seconds', 'request_queue_time_seconds', 'request_prefill_time_seconds',
      'request_decode_time_seconds', 'request_inference_time_seconds', 'time_to_first_token_seconds', 'request_prompt_tokens',
      'request_generation_tokens']) assert.equal(count(f, `vllm:${name}`), 5, name);
    assert.equal(sum(f, 'vllm:request_prompt_tokens'), promptTotal);
    assert.equal(sum(f, 'vllm:request_generation_tokens'), completionTotal);
    assert.ok(Math.abs(sum(f, 'vllm:request_inference_time_seconds')
      - sum(f, 'vllm:request_prefill_time_seconds') - sum(f, 'vllm:request_decode_time_seconds')) < 1e-9, 'inference = prefill + decode');
    assert.ok(sum(f, 'vllm:request_decode_time_seconds') > 0);
    assert.ok(sum(f, 'vllm:e2e_request_latency_seconds') >= sum(f, 'vllm:request_inference_time_seconds'));
    // One gap per token after each request's first (the fake sends one token per step).
    assert.equal(count(f, 'vllm:inter_token_latency_seconds'), completionTotal - 5);
    assert.equal(count(f, 'vllm:time_per_output_token_seconds'), completionTotal - 5);
    assert.equal(count(f, 'vllm:request_time_per_output_token_seconds'), 5, 'every request made more than one token');
    // Prefix cache and queue, from the engine's stats.
    assert.equal(sample(f, 'vllm:prefix_cache_hits_total'), 5 * CACHED);
    assert.equal(sample(f, 'vllm:prefix_cache_queries_total'), promptTotal);
    assert.equal(sample(f, 'vllm:num_requests_running'), 0);
    assert.equal(sample(f, 'vllm:kv_cache_usage_perc'), 0);
  });

  it('counts each engine step\'s tokens: the prompt (less its cached part) once, then one per token fed back', async () => {
    const f = await scrape(s.url);
    const steps = s.engine.stepRecords;
    assert.equal(count(f, 'vllm:iteration_tokens_total'), steps.length);
    assert.equal(sum(f, 'vllm:iteration_tokens_total'), steps.reduce((n, r) => n + r.tokens, 0));
    // What the engine generated is the oracle here (a stop string ends a request by an abort, counted by the engine).
    const prompt = s.engine.submitted.reduce((n, r) => n + r.promptIds.length - CACHED, 0);
    const generated = [...s.engine.finished.values()].reduce((n, e) => n + e.completionTokens, 0);
    assert.equal(sum(f, 'vllm:iteration_tokens_total'), prompt + generated - 5);
  });

  it('shows the engine\'s state while it is busy', async () => {
    const slow = await startFakeServer({ script: () => tok().encode(SCRIPT.repeat(20), { addSpecialTokens: false }), stepMs: 20 });
    try {
      const busy = [1, 2, 3].map(() => complete(slow, { prompt: 'busy', max_tokens: 100 }));
      while (slow.engine.inFlight < 3) await new Promise((r) => setTimeout(r, 5));
      const f = await scrape(slow.url);
      assert.equal(sample(f, 'vllm:num_requests_running'), 3);
      const kv = sample(f, 'vllm:kv_cache_usage_perc');
      assert.ok(kv > 0 && kv < 1);
      assert.equal(sample(f, 'vllm:gpu_cache_usage_perc'), kv);
      assert.equal(sample(f, 'ktserve_kv_cache_usage_ratio'), kv);
      for (const p of busy) await p;
    } finally {
      await slow.close();
    }
  });

  it('exposes exactly what prom-client\'s registry holds', async () => {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const f = parsePrometheusText(text);
    const json = await s.app.ktserve.metrics.registry.getMetricsAsJSON();
    assert.ok(json.length >= Object.keys(VLLM_SERIES).length + Object.keys(KTSERVE_SERIES).length);
    for (const m of json) {
      const fam = f.get(m.name);
      assert.ok(fam, `${m.name} exposed`);
      assert.equal(fam.type, String(m.type), `${m.name} type`);
      for (const v of m.values) {
        const name = 'metricName' in v && typeof v.metricName === 'string' ? v.metricName : m.name;
        const labels = Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)]));
        // Gauges read at scrape time may have moved between the two reads, and so has the count of /metrics
        // responses; the rest has not.
        if (String(m.type) === 'gauge' || labels.route === '/metrics') continue;
        assert.equal(sample(f, name, labels), v.value, `${name} ${JSON.stringify(labels)}`);
      }
    }
  });
});
