// The web UI's reading of /metrics (web/metrics.js, plain browser JavaScript without DOM use in these functions):
// ktserve's series, vLLM-style names with labels, and what it does where a series is missing.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './fixtures.js';

interface Readings {
  running: number | undefined;
  waiting: number | undefined;
  kvRatio: number | undefined;
  tokens: number | undefined;
}
interface MetricsModule {
  parsePrometheus(text: string): Map<string, number>;
  readings(sums: Map<string, number>): Readings;
}

describe('web UI metrics parsing', () => {
  let m: MetricsModule;
  before(async () => {
    m = (await import(pathToFileURL(join(repoRoot, 'web', 'metrics.js')).href)) as MetricsModule;
  });

  it('reads ktserve’s own series', () => {
    const text = [
      '# HELP ktserve_num_requests_running Sequences the engine is running.',
      '# TYPE ktserve_num_requests_running gauge',
      'ktserve_num_requests_running 3',
      'ktserve_num_requests_waiting 1',
      'ktserve_kv_cache_usage_ratio 0.25',
      'ktserve_time_to_first_token_seconds_bucket{le="0.001"} 0',
      'ktserve_time_to_first_token_seconds_count 4',
      'ktserve_inter_token_latency_seconds_count 96',
      'ktserve_generation_tokens_total 60',
    ].join('\n');
    assert.deepEqual(m.readings(m.parsePrometheus(text)), { running: 3, waiting: 1, kvRatio: 0.25, tokens: 100 });
  });

  it('takes vLLM-style names with labels, sums over models, and prefers ktserve’s where both are', () => {
    const text = [
      'vllm:num_requests_running{model_name="a"} 2',
      'vllm:num_requests_running{model_name="b",engine="0"} 1',
      'vllm:num_requests_waiting{model_name="a"} 5 1700000000000',
      'ktserve_num_requests_waiting 4',
      'vllm:kv_cache_usage_perc{model_name="a, {b}"} 0.5',
      'vllm:generation_tokens_total{model_name="a"} 7',
      'garbage line',
      'ktserve_something NaN',
    ].join('\n');
    assert.deepEqual(m.readings(m.parsePrometheus(text)), { running: 3, waiting: 4, kvRatio: 0.5, tokens: 7 });
  });

  it('falls back to used/total blocks, and leaves what is absent undefined', () => {
    const r = m.readings(m.parsePrometheus('ktserve_kv_blocks_used 25\nktserve_kv_blocks_total 100\n'));
    assert.deepEqual(r, { running: undefined, waiting: undefined, kvRatio: 0.25, tokens: undefined });
  });
});
