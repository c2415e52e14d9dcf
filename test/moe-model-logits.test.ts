// Qwen3-MoE end to end on the CPU backend against the qwen3moe fixture: Hugging Face transformers'
// logits for the safetensors (experts kept one tensor each, stacked at load) and for llama.cpp's f16
// conversion (merged 3-D expert tensors); the Q4_K_M file, which has no logit oracle of its own, against
// our f16 path within quantization noise. Then batching: a batch gives each sequence its alone bits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuBackend } from '../src/backend/cpu-backend.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openModelFiles } from '../src/models/model-files.js';
import { createModel } from '../src/models/registry.js';
import { fixturePath, needFixtures, readFixtureJson } from './fixtures.js';
import { writeSplits } from './helpers/gguf-split.js';
import { argmax, compareWithHf, maxAbsDiff, ModelHarness, type Refs } from './helpers/model-harness.js';

const backend = new CpuBackend();
const h = new ModelHarness(backend);
const report: string[] = [];

describe('qwen3moe safetensors vs Hugging Face', needFixtures, () => {
  it('reads the MoE config: 8 experts, top-2, renormalised, every layer sparse', () => {
    const m = h.load('qwen3moe');
    assert.deepEqual(
      { ...m.config.moe, moeLayers: m.config.moe?.moeLayers.join() },
      {
        numExperts: 8, topK: 2, expertIntermediateSize: 64, scoring: 'softmax', normalizeTopK: true, routedScale: 1,
        numGroups: 1, topKGroups: 1, groupScore: 'max', sharedIntermediateSize: 0, moeLayers: 'true,true',
      },
    );
  });

  it('last-4 logits within 1e-3, argmax equal at every clear position, greedy16 equal', () => {
    const worst = compareWithHf(h, h.load('qwen3moe'), 'qwen3moe');
    report.push(`qwen3moe safetensors vs HF: max abs ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-3, `max abs diff ${worst}`);
  });
});

describe('qwen3moe-f16.gguf vs Hugging Face', needFixtures, () => {
  it('last-4 logits within f16 noise (2e-2), argmax and greedy16 equal', () => {
    const worst = compareWithHf(h, h.load('qwen3moe', 'qwen3moe-f16.gguf'), 'qwen3moe');
    report.push(`qwen3moe-f16.gguf vs HF: max abs ${worst.toExponential(2)}`);
    assert.ok(worst <= 2e-2, `max abs diff ${worst}`);
  });
});

describe('qwen3moe-Q4_K_M.gguf vs our f16 path', needFixtures, () => {
  // Quantization noise of Q4_K_M on the dense fixtures is 1.1–4.7 in max abs logit against HF (fixtures
  // README, Qwen3 4.7); here an expert choice that flips under quantization adds to it (measured 5.8, argmax
  // agreement 86/115). A wrong expert layout (the q5_0 / q8_0 fallbacks of the 64-column down projections)
  // or a wrong routing gives noise at the logits' own scale and argmax agreement near chance (1/384).
  it('logits within quantization noise and mostly the same argmax', () => {
    const refs = readFixtureJson<Refs>('qwen3moe', 'refs.json');
    const f16 = h.load('qwen3moe', 'qwen3moe-f16.gguf');
    const q4 = h.load('qwen3moe', 'qwen3moe-Q4_K_M.gguf');
    let worst = 0;
    let agree = 0;
    let total = 0;
    for (const p of refs.prompts) {
      const a = h.allLogits(f16, p.ids);
      const b = h.allLogits(q4, p.ids);
      a.forEach((row, i) => {
        worst = Math.max(worst, maxAbsDiff(row, b[i]!));
        agree += argmax(row) === argmax(b[i]!) ? 1 : 0;
        total++;
      });
    }
    report.push(`qwen3moe-Q4_K_M.gguf vs our f16: max abs ${worst.toFixed(3)}, argmax agreement ${agree}/${total}`);
    assert.ok(worst < 8, `max abs diff ${worst}`);
    assert.ok(agree / total >= 0.65, `argmax agreement ${agree}/${total}`);
  });
});

describe('qwen3moe batching', needFixtures, () => {
  for (const file of [undefined, 'qwen3moe-Q4_K_M.gguf']) {
    it(`${file ?? 'safetensors'}: a mixed batch (prefill chunks and decodes, scattered blocks) gives each sequence its alone bits`, () => {
      const model = h.load('qwen3moe', file);
      const prompts = readFixtureJson<Refs>('qwen3moe', 'refs.json').prompts.map((p) => p.ids);
      const alone = prompts.map((ids) => h.lastLogits(model, ids, 1000));
      const cache = h.newCache(model, 64);
      const tables = prompts.map((_, s) => Array.from({ length: 8 }, (_, b) => b * prompts.length + s));
      const V = model.config.vocabSize;
      // Step 1: different prefix lengths; step 2: the rest of every prompt in one batch.
      const cut = [10, 3, 17];
      model.forward({ sequences: prompts.map((ids, s) => ({ cachedLen: 0, tokens: ids.slice(0, cut[s]), blockTable: tables[s]!, wantLogits: false })) }, cache);
      const out = model.forward({ sequences: prompts.map((ids, s) => ({ cachedLen: cut[s]!, tokens: ids.slice(cut[s]), blockTable: tables[s]!, wantLogits: true })) }, cache);
      prompts.forEach((_, s) => assert.deepEqual(out.subarray(s * V, (s + 1) * V), alone[s]!, `sequence ${s}`));
      cache.dispose();
    });
  }

  it('frees every per-step tensor', () => {
    const model = h.load('qwen3moe');
    const before = backend.stats().liveTensors;
    h.lastLogits(model, [1, 2, 3, 4, 5], 2);
    assert.equal(backend.stats().liveTensors, before);
  });

  it('report', () => {
    if (report.length) console.log(report.join('\n'));
  });
});

describe('qwen3moe split GGUF', needFixtures, () => {
  it('the Q4_K_M file cut into 3 splits (experts of a layer in different files) gives the same logits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qwen3moe-split-'));
    try {
      const paths = await writeSplits(fixturePath('qwen3moe', 'qwen3moe-Q4_K_M.gguf'), dir, 'qwen3moe', 3, true);
      const ids = readFixtureJson<Refs>('qwen3moe', 'refs.json').prompts[0]!.ids;
      const whole = h.lastLogits(h.load('qwen3moe', 'qwen3moe-Q4_K_M.gguf'), ids, 1000);
      const files = openModelFiles({ modelPath: fixturePath('qwen3moe'), ggufPath: paths[1]! });
      assert.equal(files.weights.description.split(', ').length, 3);
      const split = createModel(files.config, backend, files.weights);
      assert.deepEqual(h.lastLogits(split, ids, 1000), whole);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
