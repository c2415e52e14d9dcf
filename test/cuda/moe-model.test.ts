// Qwen3-MoE on the CUDA backend: the qwen3moe fixture's logits against HF (f32 precision: the GEMV and
// decode expert paths) and against the CPU backend for the Q4_K_M file; then the engine with decode graphs
// (routing decided on the device inside the graph): HF greedy16 through graphs, mixed prefill+decode graphs,
// and the divergence of batched vs alone greedy outputs over 64 prompts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu-backend.js';
import { CudaBackend } from '../../src/backend/cuda-backend.js';
import type { EngineEvent, GenerationRequest } from '../../src/engine/engine-api.js';
import { createEngine } from '../../src/engine/engine-factory.js';
import type { EngineCore } from '../../src/engine/engine-core.js';
import { validateSamplingParams } from '../../src/engine/sampling-params.js';
import type { EngineOptions } from '../../src/engine/worker-protocol.js';
import { decodeF32, fixturePath, haveFixtures, readFixtureJson } from '../fixtures.js';
import { compareWithHf, maxAbsDiff, ModelHarness, type Refs } from '../helpers/model-harness.js';
import { needCuda } from './helpers.js';

const skip = 'skip' in needCuda ? needCuda : haveFixtures ? {} : { skip: 'fixtures not found (set KT_FIXTURES)' };
const report: string[] = [];

describe('CUDA backend: Qwen3-MoE fixture logits', skip, () => {
  let backend: CudaBackend;
  let h: ModelHarness;
  before(() => {
    backend = new CudaBackend({ precision: 'f32' });
    h = new ModelHarness(backend);
  });
  after(() => {
    if (report.length) console.log(report.join('\n'));
  });

  for (const file of [undefined, 'qwen3moe-f16.gguf']) {
    it(`${file ?? 'safetensors'} vs HF (f32): last-4 within 1e-3 (f16: 2e-2), clear argmaxes, greedy16`, () => {
      const worst = compareWithHf(h, h.load('qwen3moe', file), 'qwen3moe');
      report.push(`cuda f32: qwen3moe ${file ?? 'safetensors'} vs HF: max abs ${worst.toExponential(2)}`);
      assert.ok(worst <= (file ? 2e-2 : 1e-3), `max abs diff ${worst}`);
    });
  }

  it('Q4_K_M token by token against the CPU backend (both round activations to q8)', () => {
    const cpu = new ModelHarness(new CpuBackend());
    const refs = readFixtureJson<Refs>('qwen3moe', 'refs.json');
    const a = cpu.load('qwen3moe', 'qwen3moe-Q4_K_M.gguf');
    const b = h.load('qwen3moe', 'qwen3moe-Q4_K_M.gguf');
    let worst = 0;
    for (const p of refs.prompts) {
      const x = cpu.allLogits(a, p.ids);
      h.allLogits(b, p.ids).forEach((row, i) => (worst = Math.max(worst, maxAbsDiff(row, x[i]!))));
    }
    report.push(`cuda f32: qwen3moe-Q4_K_M vs the CPU backend, every position: max abs ${worst.toExponential(2)}`);
    // As the dense Q4_K_M bound (0.35): an int8 rounding boundary crossed differently; an expert flip would be far more.
    assert.ok(worst <= 0.35, `max abs diff ${worst}`);
  });

  it('bf16 precision: one-shot prefill (grouped tensor-core experts) vs HF at the last position', () => {
    backend.setOptions({ precision: 'bf16' });
    try {
      const refs = readFixtureJson<Refs>('qwen3moe', 'refs.json');
      const model = h.load('qwen3moe');
      const V = model.config.vocabSize;
      let worst = 0;
      for (const p of refs.prompts) {
        const want = decodeF32(refs.hf.per_prompt.find((c) => c.id === p.id)!.last4_logits).subarray(3 * V, 4 * V);
        worst = Math.max(worst, maxAbsDiff(h.lastLogits(model, p.ids, 1000), want));
      }
      report.push(`cuda bf16: qwen3moe safetensors prefill vs HF: max abs ${worst.toExponential(2)}`);
      assert.ok(worst <= 0.5, `max abs diff ${worst}`);
    } finally {
      backend.setOptions({ precision: 'f32' });
    }
  });
});

function engine(over: Partial<EngineOptions> = {}): { core: EngineCore; info: { cudaGraphs: number[] } } {
  return createEngine({
    model: { modelPath: fixturePath('qwen3moe') }, backend: 'cuda', cudaPrecision: 'f32', cacheTokens: 16384, blockSize: 16,
    chunkSize: 256, maxBatchSize: 64, maxQueue: 1024, prefixCaching: false, ...over,
  });
}

const greedy = validateSamplingParams({ temperature: 0 });
let nextId = 0;
const req = (ids: number[], maxTokens: number): GenerationRequest => ({ id: `m${nextId++}`, promptIds: ids, sampling: greedy, maxTokens, stopIds: [] });

function runAll(core: EngineCore, reqs: GenerationRequest[], stagger = 0): Map<string, number[]> {
  const out = new Map<string, number[]>(reqs.map((r) => [r.id, []]));
  let next = 0;
  let finished = 0;
  for (let step = 0; finished < reqs.length; step++) {
    while (next < reqs.length && (stagger === 0 || step % stagger === 0)) {
      core.submit(reqs[next++]!);
      if (stagger) break;
    }
    for (const e of core.step() as EngineEvent[]) {
      if (e.type === 'tokens') out.get(e.id)!.push(...e.tokens);
      else finished++;
    }
  }
  return out;
}

describe('CUDA engine: Qwen3-MoE with decode graphs', skip, () => {
  it('fixture prompts batched through graphs give HF greedy16, also with mixed prefill+decode graphs', () => {
    const refs = readFixtureJson<Refs>('qwen3moe', 'refs.json');
    for (const over of [{}, { cudaMixedGraphs: true, chunkSize: 64, maxBatchSize: 8 }]) {
      const { core, info } = engine(over);
      assert.ok(info.cudaGraphs.length > 0, 'graphs captured');
      const reqs = refs.prompts.map((p) => req(p.ids, 16));
      const out = runAll(core, reqs, 'cudaMixedGraphs' in over ? 3 : 0);
      refs.prompts.forEach((p, i) => assert.deepEqual(out.get(reqs[i]!.id), refs.hf.per_prompt.find((x) => x.id === p.id)!.greedy16, `${p.id} ${JSON.stringify(over)}`));
    }
  });

  it('greedy outputs batched (graphs, B = 64) vs alone (eager): divergence over 64 prompts', () => {
    const pool = readFixtureJson<Refs>('qwen3moe', 'refs.json').prompts.flatMap((p) => p.ids);
    const prompts = Array.from({ length: 64 }, (_, i) => Array.from({ length: 5 + ((i * 7) % 56) }, (_, j) => pool[(i * 13 + j) % pool.length]!));
    const batched = [...runAll(engine().core, prompts.map((p) => req(p, 24))).values()];
    const alone = engine({ cudaGraphs: false, maxBatchSize: 1 }).core;
    let diverged = 0;
    batched.forEach((got, i) => {
      const want = [...runAll(alone, [req(prompts[i]!, 24)]).values()][0]!;
      if (want.some((t, j) => got[j] !== t)) diverged++;
    });
    console.log(`qwen3moe batched (graphs, B=64) vs alone (eager, B=1), greedy 24 tokens: ${diverged}/64 sequences diverge`);
    assert.ok(diverged <= 8, `${diverged}/64 diverged`);
  });
});
