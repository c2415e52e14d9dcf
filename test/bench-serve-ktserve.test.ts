// `ktserve bench serve` against our own server on the tiny CPU model for a few seconds: every
// field of the JSON is there, and its token counts agree with what the server's /metrics counted.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runBenchServe } from '../src/cli/bench-command.js';
import { WorkerEngineClient } from '../src/engine/worker-client.js';
import { openModelFiles } from '../src/models/model-files.js';
import { buildServer } from '../src/server/app.js';
import { fixturePath, needFixtures } from './fixtures.js';
import { sample, scrape } from '../bench/prom-text.js';

describe('bench serve against ktserve', needFixtures, () => {
  it('runs a concurrency sweep and writes a complete JSON and plot', async () => {
    const model = { modelPath: fixturePath('llama') };
    const files = openModelFiles(model);
    const engine = await WorkerEngineClient.start({ model, cacheTokens: 4096, blockSize: 16, chunkSize: 128, maxBatchSize: 16, maxQueue: 64, prefixCaching: true });
    const app = buildServer({ engine, tokenizer: files.tokenizer, chatTemplate: files.chatTemplate, modelName: 'tiny', maxModelLen: 512, maxNewTokens: 64, forceThink: false });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'ktserve-bench-'));
    try {
      const out: string[] = [];
      await runBenchServe(
        ['--base_url', url, '--endpoint', 'chat', '--concurrency', '1,4', '--num_prompts', '8', '--input_len', '48', '--output_len', '16',
          '--ignore_eos', '--tokenizer', fixturePath('llama'), '--seed', '1', '--out', join(dir, 'r.json'), '--plot', join(dir, 'r.svg')],
        { write: (s: string) => (out.push(s), true) },
      );
      const r = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as {
        runs: { concurrency: number; completed: number; failed: number; total_output_tokens: number; ttft_ms: { median: number | null }; tpot_ms: { median: number | null }; itl_ms: { n: number }; e2el_ms: { p99: number | null }; request_throughput: number; output_throughput: number; total_token_throughput: number }[];
      };
      assert.deepEqual(r.runs.map((x) => x.concurrency), [1, 4]);
      for (const run of r.runs) {
        assert.equal(run.completed, 8);
        assert.equal(run.failed, 0);
        assert.equal(run.total_output_tokens, 8 * 16, 'ignore_eos: every request gives output_len tokens');
        for (const v of [run.ttft_ms.median, run.tpot_ms.median, run.e2el_ms.p99, run.request_throughput, run.output_throughput, run.total_token_throughput]) {
          assert.ok(typeof v === 'number' && v > 0, 'metric present and positive');
        }
      }
      // The server counted the same completion tokens (plus the untimed warm-up request's).
      const generated = sample(await scrape(url), 'ktserve_generation_tokens_total');
      assert.ok(generated >= 2 * 8 * 16 && generated <= 2 * 8 * 16 + 2 * 16, `server generated ${generated}`);
      assert.match(readFileSync(join(dir, 'r.svg'), 'utf8'), /<svg/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await app.close();
      await engine.shutdown();
    }
  });
});
