// `ktserve bench engine` on the fixture tiny Llama: every (npp, npl) run reports both phases, and the token
// counts add up to what the scheduler must do (one step prefills a batch that fits the chunk; then ntg − 1 decode steps).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { EngineBenchReport } from '../src/bench/engine-bench.js';
import { runBenchEngine } from '../src/cli/bench-engine-command.js';
import { fixturePath, needFixtures } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ktserve-bench-engine-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('bench engine on the fixture Llama', needFixtures, () => {
  const out = join(dir, 'results.json');
  let table = '';
  let report: EngineBenchReport;
  const npp = [8, 20, 600];
  const npl = [1, 2, 3];
  const ntg = 5;
  const chunk = 16;

  it('runs the sweep through the CLI, printing a row per run and writing JSON', async () => {
    await runBenchEngine(
      ['--model_path', fixturePath('llama'), '--npp', npp.join(','), '--ntg', String(ntg), '--npl', npl.join(','), '--chunk_size', String(chunk), '--out', out],
      { write: (t: string) => (table += t) },
    );
    report = JSON.parse(readFileSync(out, 'utf8')) as EngineBenchReport;
    const lines = table.split('\n');
    assert.match(lines[0]!, /PP .*TG .*B .*N_KV .*T_PP s .*S_PP t\/s .*T_TG s .*S_TG t\/s .*T s .*S t\/s/);
    assert.equal(lines.filter((l) => /^\|\s+\d/.test(l)).length, 6);
    assert.deepEqual(report.settings.npp, npp);
    assert.equal(report.settings.chunk_size, chunk);
    assert.ok(report.settings.cache_tokens >= 3 * (20 + ntg));
    assert.ok(report.engine.kvTokens >= report.settings.cache_tokens);
  });

  it('skips runs longer than the model context (512), saying why', () => {
    assert.deepEqual(report.skipped.map((s) => [s.npp, s.npl]), [[600, 1], [600, 2], [600, 3]]);
    assert.match(report.skipped[0]!.reason, /605 exceeds the model's context of 512/);
  });

  it('token counts add up in every run', () => {
    assert.deepEqual(report.results.map((r) => [r.npp, r.npl]), [[8, 1], [8, 2], [8, 3], [20, 1], [20, 2], [20, 3]]);
    for (const r of report.results) {
      const what = `npp ${r.npp} npl ${r.npl}`;
      assert.equal(r.ntg, ntg);
      assert.equal(r.n_kv, r.npl * (r.npp + ntg), what);
      assert.equal(r.prefill.tokens, r.npl * r.npp, what);
      assert.equal(r.generated_tokens, r.npl * ntg, what);
      // Every generated token is a first token, a decode token, or a decode during the prefill phase.
      assert.equal(r.npl + r.decode_tokens_during_prefill + r.decode.tokens, r.generated_tokens, what);
      assert.ok(r.prefill.steps >= Math.ceil((r.npl * r.npp) / chunk), what);
      for (const p of [r.prefill, r.decode]) {
        assert.ok(p.time_s > 0 && p.steps > 0, what);
        assert.ok(Math.abs(p.tok_per_s - p.tokens / p.time_s) <= 1e-6 * p.tok_per_s, what);
        assert.ok(Math.abs(p.mean_step_ms - (p.time_s * 1000) / p.steps) < 1e-9, what);
      }
      assert.ok(Math.abs(r.total.time_s - r.prefill.time_s - r.decode.time_s) < 1e-9, what);
    }
  });

  it('a batch whose prompts fit one chunk is prefilled in one step, then decodes in ntg − 1 steps', () => {
    for (const r of report.results.filter((x) => x.npl * x.npp <= chunk)) {
      assert.equal(r.prefill.steps, 1);
      assert.equal(r.decode_tokens_during_prefill, 0);
      assert.equal(r.decode.steps, ntg - 1);
      assert.equal(r.decode.tokens, r.npl * (ntg - 1));
    }
    // 3 × 20 prompt tokens need 4 chunks of 16: the first requests decode while the last prompt is read.
    const big = report.results.find((x) => x.npp === 20 && x.npl === 3)!;
    assert.ok(big.prefill.steps >= 4);
    assert.ok(big.decode_tokens_during_prefill > 0);
  });
});
