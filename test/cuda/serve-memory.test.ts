// `serve` sizes its KV cache last, after weights, activations and CUDA graphs (issue 13 #1): with the default
// --gpu_memory_utilization it must start on an 80 GB and a 141 GB card and then serve a full batch of sampled
// requests with long prompts; with --gpu_memory_limit it must keep everything under the cap. Needs a GPU and a
// big model: KT_MEMORY_MODEL=<gguf> (scripts/device/memory-check.sh writes make-model's llama-3.1-8b Q4_K_M).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cudaAvailable } from '../../src/backend/cuda-backend.js';
import { startKtserve, type KtserveProcess } from '../../bench/ktserve-process.js';

const model = process.env['KT_MEMORY_MODEL'];
const skip = !cudaAvailable()
  ? { skip: 'no CUDA device' }
  : model === undefined
    ? { skip: 'KT_MEMORY_MODEL is not set (a GGUF such as make-model --preset llama-3.1-8b --outtype Q4_K_M)' }
    : {};

function serve(flags: string[]): Promise<KtserveProcess> {
  return startKtserve(['--backend', 'cuda', '--model', model!, '--max_batch_size', '64', '--chunk_size', '512', ...flags], { startMs: 300_000 });
}

/** 64 concurrent sampled requests, half with prompts of several prefill chunks: every eager and graph path. */
async function fullBatch(url: string): Promise<void> {
  const long = 'The quick brown fox jumps over the lazy dog. '.repeat(200);
  const results = await Promise.all(
    Array.from({ length: 64 }, (_, i) =>
      fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: i % 2 ? long : `Request ${i}:`, max_tokens: 64, ignore_eos: true, temperature: 0.8, top_p: 0.9, top_k: 40 }),
      }).then(async (r) => ({ status: r.status, body: await r.text() })),
    ),
  );
  for (const r of results) assert.equal(r.status, 200, r.body);
}

function memoryLine(stderr: string): { used: number; limit: number } {
  const m = /GPU memory: .*; ([\d.]+) GiB free of ([\d.]+) GiB(?: \(capped at ([\d.]+) GiB\))?/.exec(stderr);
  assert.ok(m, `no GPU memory line:\n${stderr}`);
  const total = Number(m[2]);
  return { used: total - Number(m[1]), limit: m[3] === undefined ? total : Number(m[3]) };
}

describe('serve on the GPU: KV cache sized after everything else', skip, () => {
  for (const util of [undefined, 0.95, 0.8]) {
    it(`starts and serves a full batch at --gpu_memory_utilization ${util ?? 'default (0.9)'}`, { timeout: 600_000 }, async () => {
      const s = await serve(util === undefined ? [] : ['--gpu_memory_utilization', String(util)]);
      try {
        await fullBatch(s.url);
        const { used, limit } = memoryLine(s.stderr());
        process.stderr.write(`util ${util ?? 0.9}: ${/GPU memory: .*/.exec(s.stderr())![0]}\n`);
        // Everything the server holds fits the fraction, within 0.35 GiB: the printed figures are rounded to 0.1 GiB,
        // and the real graphs' block tables (sized to the real cache) outgrow the trial ones by a few MiB each.
        assert.ok(used <= (util ?? 0.9) * limit + 0.35, `${used} GiB used of ${limit}`);
      } finally {
        assert.equal((await s.stop()).code, 0);
      }
    });
  }

  it('keeps everything under --gpu_memory_limit 24 (a 24 GB card) and serves a full batch', { timeout: 600_000 }, async () => {
    const s = await serve(['--gpu_memory_limit', '24']);
    try {
      await fullBatch(s.url);
      const m = /GPU memory: weights ([\d.]+) GiB, activations ([\d.]+) GiB, graphs ([\d.]+) GiB, KV ([\d.]+) GiB/.exec(s.stderr());
      assert.ok(m, s.stderr());
      const held = Number(m[1]) + Number(m[2]) + Number(m[3]) + Number(m[4]);
      process.stderr.write(`limit 24: ${/GPU memory: .*/.exec(s.stderr())![0]}\n`);
      assert.ok(held <= 0.9 * 24 + 0.2, `the parts add up to ${held} GiB`);
      assert.equal(memoryLine(s.stderr()).limit, 24);
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
  });
});
