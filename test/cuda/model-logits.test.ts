// Whole-model golden tests on the CUDA backend: the fixture models' logits through LlamaModel
// against Hugging Face (safetensors) and llama.cpp (GGUF) as recorded in refs.json, with the
// CPU tests' tolerances in 'f32' precision (token by token: the GEMV path), and measured (looser bounds) in 'bf16' precision.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CudaBackend } from '../../src/backend/cuda-backend.js';
import { decodeF32, haveFixtures, readFixtureJson } from '../fixtures.js';
import { compareWithHf, compareWithLlamaCpp, maxAbsDiff, ModelHarness, type Refs } from '../helpers/model-harness.js';
import { needCuda } from './helpers.js';

const skip = 'skip' in needCuda ? needCuda : haveFixtures ? {} : { skip: 'fixtures not found (set KT_FIXTURES)' };
let backend: CudaBackend;
const report: string[] = [];

let h: ModelHarness;

describe('CUDA backend: fixture models', skip, () => {
  before(() => {
    backend = new CudaBackend({ precision: 'f32' });
    h = new ModelHarness(backend);
  });
  after(() => {
    if (report.length) console.log(report.join('\n'));
  });

  for (const dir of ['llama', 'qwen3']) {
    it(`${dir} safetensors vs Hugging Face (f32): last-4 within 1e-3, clear argmaxes, greedy16`, () => {
      backend.setOptions({ precision: 'f32' });
      const worst = compareWithHf(h, h.load(dir), dir);
      report.push(`cuda f32: ${dir} safetensors vs HF: max abs ${worst.toExponential(2)}`);
      assert.ok(worst <= 1e-3, `max abs diff ${worst}`);
    });
  }

  // Token by token (M = 1) every matmul runs the GEMV path, which for quantized weights rounds
  // activations to q8 and takes integer dot products as llama.cpp and the CPU backend do: the
  // CPU test's bounds. llama-Q4_K_M matches to ~1e-5; on two file×prompt pairs an activation sits
  // on an int8 rounding boundary that non-identical float ops cross differently (0.106 and 0.285
  // on the CPU), hence 0.15 / 0.35, far under each file's own error vs HF (0.57, 3.6).
  const ggufCases: [string, string, number][] = [
    ['llama', 'llama-f16.gguf', 2e-2],
    ['qwen3', 'qwen3-f16.gguf', 2e-2],
    ['llama', 'llama-Q4_K_M.gguf', 1e-4],
    ['llama', 'llama-Q5_K_M.gguf', 0.15],
    ['qwen3', 'qwen3-Q4_K_M.gguf', 0.35],
  ];
  for (const [dir, file, tol] of ggufCases) {
    it(`${file} vs llama.cpp (f32): last-4 within ${tol}, argmax equal where the margin is clear`, () => {
      backend.setOptions({ precision: 'f32' });
      const worst = compareWithLlamaCpp(h, h.load(dir, file), dir, file);
      report.push(`cuda f32: ${file} vs llama.cpp: max abs ${worst.toExponential(2)}`);
      assert.ok(worst <= tol, `max abs diff ${worst} > ${tol}`);
    });
  }

  // bf16 precision rounds activations of every prefill matmul (M > 8) to bf16, as serving
  // does; the bounds are loose and the measured errors go to the report.
  const bf16Cases: [string, string | undefined, 'hf' | string, number][] = [
    ['qwen3', undefined, 'hf', 0.25],
    ['llama', 'llama-f16.gguf', 'llama-f16.gguf', 0.1],
    ['llama', 'llama-Q4_K_M.gguf', 'llama-Q4_K_M.gguf', 0.2],
    ['qwen3', 'qwen3-Q4_K_M.gguf', 'qwen3-Q4_K_M.gguf', 0.75],
  ];
  for (const [dir, file, ref, tol] of bf16Cases) {
    it(`bf16 precision: one-shot prefill of ${file ?? `${dir} safetensors`} vs ${ref === 'hf' ? 'HF' : 'llama.cpp'} (last position)`, () => {
      backend.setOptions({ precision: 'bf16' });
      try {
        const refs = readFixtureJson<Refs>(dir, 'refs.json');
        const model = h.load(dir, file);
        const V = model.config.vocabSize;
        let worst = 0;
        for (const p of refs.prompts) {
          const entry = ref === 'hf' ? refs.hf : refs.llama_cpp[ref]!;
          const want = decodeF32(entry.per_prompt.find((c) => c.id === p.id)!.last4_logits).subarray(3 * V, 4 * V);
          worst = Math.max(worst, maxAbsDiff(h.lastLogits(model, p.ids, 1000), want));
        }
        report.push(`cuda bf16: ${file ?? `${dir} safetensors`} prefill vs ${ref === 'hf' ? 'HF' : 'llama.cpp'}: max abs ${worst.toExponential(2)}`);
        assert.ok(worst <= tol, `max abs diff ${worst} > ${tol}`);
      } finally {
        backend.setOptions({ precision: 'f32' });
      }
    });
  }

  it('chunked prefill gives the logits of a one-shot prefill (f32)', () => {
    const model = h.load('llama');
    const ids = readFixtureJson<Refs>('llama', 'refs.json').prompts[0]!.ids;
    const whole = h.lastLogits(model, ids, 1000);
    for (const chunk of [1, 5, 16, 17]) assert.ok(maxAbsDiff(h.lastLogits(model, ids, chunk), whole) < 1e-4, `chunk ${chunk}`);
  });

  it('a batch of sequences with different lengths and scattered blocks equals each alone (f32)', () => {
    const model = h.load('qwen3', 'qwen3-Q4_K_M.gguf');
    // Every matmul on the f32 cuBLAS path: the batch's lm_head has 3 rows, each alone 1, and the
    // GEMV path (q8 activations) would compare two different roundings of the activations.
    backend.setOptions({ gemvMaxRows: 0 });
    const prompts = readFixtureJson<Refs>('qwen3', 'refs.json').prompts.map((p) => p.ids);
    const alone = prompts.map((ids) => h.lastLogits(model, ids, 1000));
    const cache = h.newCache(model, 64);
    const tables = prompts.map((_, s) => Array.from({ length: 8 }, (_, b) => b * prompts.length + s));
    model.forward({ sequences: prompts.map((ids, s) => ({ cachedLen: 0, tokens: ids.slice(0, 10), blockTable: tables[s]!, wantLogits: false })) }, cache);
    const V = model.config.vocabSize;
    const out = model.forward({ sequences: prompts.map((ids, s) => ({ cachedLen: 10, tokens: ids.slice(10), blockTable: tables[s]!, wantLogits: true })) }, cache);
    cache.dispose();
    backend.setOptions({ gemvMaxRows: -1 });
    prompts.forEach((_, s) => assert.ok(maxAbsDiff(out.subarray(s * V, (s + 1) * V), alone[s]!) < 1e-4, `sequence ${s}`));
  });

  it('frees every per-step tensor', () => {
    const model = h.load('llama');
    const start = backend.stats().liveTensors;
    h.lastLogits(model, [1, 2, 3, 4, 5], 2);
    assert.equal(backend.stats().liveTensors, start);
  });
});
