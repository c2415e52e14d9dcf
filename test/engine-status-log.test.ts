// The periodic engine line: vLLM's wording and numbers over each interval, one line while busy and one more when
// work stops, nothing while idle. Oracles: throughputs worked out from the token totals fed in and the fake clock;
// through a server, the lines its logger writes while a fake engine generates and after it stops.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { EngineStats } from '../src/engine/engine-api.js';
import { EngineStatusLog, type StatusFields } from '../src/server/engine-status-log.js';
import type { TokenTotals } from '../src/server/metrics.js';
import { fixtureTokenizer, startFakeServer } from './helpers/fake-engine.js';
import { needFixtures } from './fixtures.js';

function stats(over: Partial<EngineStats> = {}): EngineStats {
  return {
    running: 0, waiting: 0, kvBlocksUsed: 0, kvBlocksFree: 100, kvBlocksTotal: 100,
    prefixCacheHitTokens: 0, prefixCacheQueryTokens: 0, preemptions: 0, steps: 0, ...over,
  };
}

describe('engine status line', () => {
  it('logs throughput over the interval, the queue, KV usage and hit rate; silent while idle', () => {
    let s = stats();
    const totals: TokenTotals = { generationTokens: 0, prefillTokens: 0 };
    const logged: { fields: StatusFields; line: string }[] = [];
    const log = new EngineStatusLog({ engine: { stats: () => s }, totals }, (fields, line) => logged.push({ fields, line }), 0);

    assert.equal(log.tick(10_000), undefined, 'idle: nothing');
    // 10 s in which 1000 prompt tokens ran and 250 were generated, 40 of 80 looked-up tokens hit.
    totals.prefillTokens = 1000;
    totals.generationTokens = 250;
    s = stats({ running: 3, waiting: 2, kvBlocksUsed: 25, kvBlocksFree: 75, prefixCacheHitTokens: 40, prefixCacheQueryTokens: 80 });
    assert.equal(
      log.tick(20_000),
      'Avg prompt throughput: 100.0 tokens/s, Avg generation throughput: 25.0 tokens/s, Running: 3 reqs, Waiting: 2 reqs, ' +
        'KV cache usage: 25.0%, Prefix cache hit rate: 50.0%',
    );
    assert.deepEqual(logged[0]!.fields, {
      prompt_tokens_per_s: 100, generation_tokens_per_s: 25, running: 3, waiting: 2, kv_cache_usage_pct: 25, prefix_cache_hit_rate_pct: 50,
    });
    // 5 s more: only decoding, no new lookups (the hit rate since start stands in), then the work ends.
    totals.generationTokens = 300;
    s = stats({ running: 1, kvBlocksUsed: 10, prefixCacheHitTokens: 40, prefixCacheQueryTokens: 80 });
    assert.match(log.tick(25_000)!, /^Avg prompt throughput: 0\.0 tokens\/s, Avg generation throughput: 10\.0 tokens\/s, Running: 1 reqs, Waiting: 0 reqs, KV cache usage: 10\.0%, Prefix cache hit rate: 50\.0%$/);
    s = stats({ prefixCacheHitTokens: 40, prefixCacheQueryTokens: 80 });
    assert.match(log.tick(35_000)!, /Avg generation throughput: 0\.0 tokens\/s, Running: 0 reqs/, 'the interval work stopped in still logs');
    assert.equal(log.tick(45_000), undefined, 'then silence');
    assert.equal(logged.length, 3);
    // New lookups in an interval: that interval's rate, not the rate since start.
    totals.prefillTokens = 1100;
    s = stats({ running: 1, prefixCacheHitTokens: 40, prefixCacheQueryTokens: 180 });
    assert.match(log.tick(55_000)!, /Prefix cache hit rate: 0\.0%$/);
  });

  it('comes through the server\'s logger while a request runs, at info even when the logger logs errors only', needFixtures, async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        // The access lines of the same logger are not the subject here.
        for (const l of chunk.toString().split('\n')) {
          if (l.trim() === '') continue;
          const line = JSON.parse(l) as Record<string, unknown>;
          if (line.component === 'engine-status') lines.push(line);
        }
        done();
      },
    });
    const tok = fixtureTokenizer('llama');
    const s = await startFakeServer(
      { script: () => tok.encode(' word'.repeat(40), { addSpecialTokens: false }), stepMs: 5 },
      { statusLogIntervalMs: 40, logger: { level: 'info', stream } },
    );
    try {
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(lines.length, 0, 'idle: no line');
      const res = await fetch(`${s.url}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'go', max_tokens: 40 }),
      });
      assert.equal(res.status, 200);
      const busyLines = lines.length;
      assert.ok(busyLines >= 1, 'a line while it ran');
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(lines.length <= busyLines + 2, 'at most the intervals it ended in, then silence');
      const status = lines;
      for (const l of status) {
        assert.equal(l.level, 30, 'info');
        assert.match(String(l.msg), /^Avg prompt throughput: [\d.]+ tokens\/s, Avg generation throughput: [\d.]+ tokens\/s, Running: \d+ reqs, Waiting: \d+ reqs, KV cache usage: [\d.]+%, Prefix cache hit rate: [\d.]+%$/);
      }
      assert.ok(status.some((l) => (l.generation_tokens_per_s as number) > 0));
      assert.equal(status[status.length - 1]!.generation_tokens_per_s, 0, 'the last line shows the work stopped');
    } finally {
      await s.close();
    }
  });
});
