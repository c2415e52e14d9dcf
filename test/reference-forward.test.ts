// The float64 reference forward pass: first held against Hugging Face's logits (so it is a
// trustworthy oracle), then used to check the batched, paged engine on GGUF files HF never saw.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuBackend } from '../src/backend/cpu-backend.js';
import { PagedKvCache } from '../src/models/kv-cache.js';
import { openModelFiles } from '../src/models/model-files.js';
import { referenceForward } from './helpers/reference-forward.js';
import { createModel } from '../src/models/registry.js';
import { decodeF32, fixturePath, needFixtures, readFixtureJson } from './fixtures.js';

interface Refs {
  prompts: { id: string; ids: number[] }[];
  hf: { per_prompt: { id: string; last4_logits: string }[] };
}

describe('float64 reference forward', needFixtures, () => {
  for (const dir of ['llama', 'qwen3']) {
    it(`${dir}: matches Hugging Face within 1e-4`, () => {
      const refs = readFixtureJson<Refs>(dir, 'refs.json');
      const files = openModelFiles({ modelPath: fixturePath(dir) });
      const p = refs.prompts[0]!;
      const rows = referenceForward(files.config, files.weights, p.ids);
      const want = decodeF32(refs.hf.per_prompt.find((h) => h.id === p.id)!.last4_logits);
      const V = files.config.vocabSize;
      let worst = 0;
      for (let r = 0; r < 4; r++) {
        const got = rows[p.ids.length - 4 + r]!;
        for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(got[i]! - want[r * V + i]!));
      }
      assert.ok(worst < 1e-4, `max abs diff ${worst}`);
    });
  }

  // F16 GGUF files: GGUF names, permuted q/k rows with adjacent-pair RoPE and f16 weights, with
  // f32 activations on both sides (quantized files round activations to q8 as llama.cpp does,
  // and are held against llama.cpp's logits in model-logits.test.ts instead).
  for (const [dir, file] of [['llama', 'llama-f16.gguf'], ['qwen3', 'qwen3-f16.gguf']] as const) {
    it(`${file}: the engine's batched, paged logits equal the reference within 1e-3`, () => {
      const files = openModelFiles({ modelPath: fixturePath(dir), ggufPath: fixturePath(dir, file) });
      const backend = new CpuBackend();
      const model = createModel(files.config, backend, files.weights);
      const prompts = readFixtureJson<Refs>(dir, 'refs.json').prompts.map((p) => p.ids.slice(0, 24));
      const cache = new PagedKvCache(backend, { numLayers: files.config.numLayers, numBlocks: 24, blockSize: 4, layout: model.kvLayout });
      const tables = prompts.map((_, s) => Array.from({ length: 6 }, (_, b) => 23 - (b * prompts.length + s)));
      const out = model.forward({ sequences: prompts.map((ids, s) => ({ cachedLen: 0, tokens: ids, blockTable: tables[s]!, wantLogits: true })) }, cache);
      const V = files.config.vocabSize;
      prompts.forEach((ids, s) => {
        const ref = referenceForward(files.config, files.weights, ids).at(-1)!;
        let worst = 0;
        for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(out[s * V + i]! - ref[i]!));
        assert.ok(worst < 1e-3, `sequence ${s}: max abs diff ${worst}`);
      });
      cache.dispose();
    });
  }
});
