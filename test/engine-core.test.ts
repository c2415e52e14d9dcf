// The engine's step loop with the real CPU model: continuous batching, chunked prefill and
// the prefix cache must not change any request's greedy output (DESIGN §6.5), and KV
// exhaustion must end with every request complete and every block free.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineEvent, GenerationRequest } from '../src/engine/engine-api.js';
import { createEngine } from '../src/engine/engine-factory.js';
import { validateSamplingParams } from '../src/engine/sampling-params.js';
import type { EngineOptions } from '../src/engine/worker-protocol.js';
import { CpuBackend } from '../src/backend/cpu-backend.js';
import { EngineCore } from '../src/engine/engine-core.js';
import { packPenalties, type GpuSamplingRow } from '../src/engine/gpu-sampling.js';
import type { StepRunner } from '../src/engine/model-runner.js';
import type { SamplingParams } from '../src/engine/sampling-params.js';
import type { ModelConfig } from '../src/models/config.js';
import { PagedKvCache, perHeadKvLayout } from '../src/models/kv-cache.js';
import { openModelFiles } from '../src/models/model-files.js';
import { createModel, type CausalLM } from '../src/models/registry.js';
import { fixturePath, needFixtures } from './fixtures.js';

function options(over: Partial<EngineOptions> = {}): EngineOptions {
  return {
    model: { modelPath: fixturePath('llama') },
    cacheTokens: 4096,
    blockSize: 16,
    chunkSize: 512,
    maxBatchSize: 32,
    maxQueue: 256,
    prefixCaching: true,
    ...over,
  };
}

/** Prompts of different lengths sharing a 40-token prefix, as a system prompt would. */
function prompts(n: number): number[][] {
  const shared = Array.from({ length: 40 }, (_, i) => (i * 7 + 3) % 368);
  return Array.from({ length: n }, (_, r) => [...shared, ...Array.from({ length: 3 + ((r * 13) % 50) }, (_, i) => (r * 31 + i * 11) % 368)]);
}

function request(id: number, ids: number[], maxTokens: number): GenerationRequest {
  return { id: `r${id}`, promptIds: ids, sampling: validateSamplingParams({ temperature: 0 }), maxTokens, stopIds: [] };
}

/** Runs requests to completion; returns generated ids per request id and all events. */
function runAll(opts: EngineOptions, reqs: GenerationRequest[], arrivalEvery = 0): { out: Map<string, number[]>; events: EngineEvent[]; core: ReturnType<typeof createEngine>['core'] } {
  const { core } = createEngine(opts);
  const out = new Map<string, number[]>();
  const events: EngineEvent[] = [];
  let next = 0;
  let steps = 0;
  while (next < reqs.length || core.hasWork()) {
    // Staggered arrivals: new requests join while others are mid-prefill or decoding.
    while (next < reqs.length && (arrivalEvery === 0 || steps % arrivalEvery === 0 || !core.hasWork())) {
      core.submit(reqs[next]!);
      out.set(reqs[next]!.id, []);
      next++;
      if (arrivalEvery !== 0) break;
    }
    for (const e of core.step()) {
      events.push(e);
      if (e.type === 'tokens') out.get(e.id)!.push(...e.tokens);
    }
    steps++;
    assert.ok(steps < 10000, 'engine did not finish');
  }
  return { out, events, core };
}

describe('engine core on the CPU model', needFixtures, () => {
  const reqs = prompts(16).map((p, i) => request(i, p, 6 + (i % 5)));
  const alone = new Map<string, number[]>();
  it('runs each request alone', () => {
    for (const r of reqs) alone.set(r.id, runAll(options({ prefixCaching: false }), [r]).out.get(r.id)!);
  });

  for (const [name, over, every] of [
    ['16 at once, whole prefills, prefix cache on', {}, 0],
    ['16 at once, chunk_size 24, prefix cache off', { chunkSize: 24, prefixCaching: false }, 0],
    ['staggered arrivals, chunk_size 16, max_batch_size 5, prefix cache on', { chunkSize: 16, maxBatchSize: 5 }, 3],
    // Overlap: each step is planned before the previous one's tokens are read (their stand-ins filled in later).
    ['overlap, 16 at once, chunk_size 24, prefix cache on', { chunkSize: 24, overlap: true }, 0],
    ['overlap, staggered arrivals, chunk_size 16, max_batch_size 5, prefix cache on', { chunkSize: 16, maxBatchSize: 5, overlap: true }, 3],
  ] as const) {
    it(`${name}: every request's greedy tokens equal its run alone`, () => {
      const { out, core } = runAll(options(over), reqs, every);
      for (const r of reqs) assert.deepEqual(out.get(r.id), alone.get(r.id), r.id);
      assert.equal(core.stats().kvBlocksUsed, 0);
    });
  }

  it('a shared prefix is prefilled once (prefix-cache hits counted)', () => {
    const { core } = runAll(options(), reqs.slice(0, 4), 8);
    const s = core.stats();
    // 40 shared tokens = 2 full blocks of 16 reused by each later request.
    assert.ok(s.prefixCacheHitTokens >= 3 * 32, `hit tokens ${s.prefixCacheHitTokens}`);
  });

  it('KV exhaustion: small cache, long requests: all complete through preemption, blocks all free (with and without overlap)', () => {
    const long = prompts(8).map((p, i) => request(100 + i, p, 40));
    const baseline = new Map(long.map((r) => [r.id, runAll(options({ prefixCaching: false }), [r]).out.get(r.id)!]));
    for (const overlap of [false, true]) {
      const { out, core, events } = runAll(options({ cacheTokens: 160, chunkSize: 32, prefixCaching: false, overlap }), long);
      for (const r of long) assert.deepEqual(out.get(r.id), baseline.get(r.id), `${r.id}, overlap ${overlap}`);
      assert.ok(core.stats().preemptions > 0, 'expected preemptions');
      assert.equal(core.stats().kvBlocksUsed, 0);
      assert.equal(events.filter((e) => e.type === 'finished').length, long.length);
    }
  });

  it('overlap: stop tokens and max_tokens end each request at the same token as alone; usage counts what was sent', () => {
    // Each request stops at the third token it generated alone (or earlier, where that id came before).
    const stopping = reqs.map((r) => ({ ...r, stopIds: [alone.get(r.id)![2]!] }));
    const expected = new Map(stopping.map((r) => {
      const a = alone.get(r.id)!;
      return [r.id, a.slice(0, a.indexOf(r.stopIds[0]!) + 1)];
    }));
    for (const overlap of [false, true]) {
      const { out, events, core } = runAll(options({ chunkSize: 24, overlap }), stopping, 2);
      for (const r of stopping) assert.deepEqual(out.get(r.id), expected.get(r.id), `${r.id}, overlap ${overlap}`);
      for (const e of events) {
        if (e.type !== 'finished') continue;
        assert.equal(e.reason, 'stop');
        assert.equal(e.completionTokens, expected.get(e.id)!.length, `${e.id} usage`);
      }
      assert.equal(core.stats().kvBlocksUsed, 0);
      assert.equal(core.hasWork(), false);
    }
  });

  it('abort mid-decode frees its blocks and reports abort (with and without a step in flight)', () => {
    for (const overlap of [false, true]) {
      const { core } = createEngine(options({ overlap }));
      core.submit(request(1, prompts(1)[0]!, 50));
      core.submit(request(2, prompts(2)[1]!, 8));
      let sent = 0;
      for (let i = 0; i < 4; i++) sent += core.step().filter((e) => e.type === 'tokens' && e.id === 'r1').length;
      assert.ok(core.stats().kvBlocksUsed > 0);
      core.abort('r1');
      const ev: EngineEvent[] = [];
      while (core.hasWork()) ev.push(...core.step());
      const fin = ev.filter((e) => e.type === 'finished');
      assert.deepEqual(fin.map((e) => [e.id, e.reason]), [['r1', 'abort'], ['r2', 'length']], `overlap ${overlap}`);
      // No token of r1 after its abort; its usage counts the tokens it was sent.
      assert.equal(ev.filter((e) => e.type === 'tokens' && e.id === 'r1').length, 0);
      assert.equal((fin[0] as { completionTokens: number }).completionTokens, sent);
      assert.equal(core.stats().kvBlocksUsed, 0);
    }
  });

  it('a failed step fails only its requests, with the reason, and the engine goes on', () => {
    const files = openModelFiles({ modelPath: fixturePath('llama') });
    const backend = new CpuBackend();
    const real = createModel(files.config, backend, files.weights);
    let failNext = false;
    const flaky: CausalLM = {
      config: real.config,
      kvLayout: real.kvLayout,
      backend: real.backend,
      forward: (batch, cache) => real.forward(batch, cache),
      forwardTensors: (inputs, cache) => {
        if (failNext) {
          failNext = false;
          throw new Error('simulated kernel failure');
        }
        return real.forwardTensors(inputs, cache);
      },
    };
    const cache = new PagedKvCache(backend, { numLayers: 2, numBlocks: 64, blockSize: 16, layout: real.kvLayout });
    const core = new EngineCore(flaky, cache, { chunkSize: 512, maxBatchSize: 8, maxQueue: 8 });
    core.submit(request(1, prompts(1)[0]!, 5));
    core.step();
    failNext = true;
    const failed = core.step();
    assert.deepEqual(failed.map((e) => e.type === 'finished' && e.reason), ['error']);
    assert.match((failed[0] as { error?: string }).error ?? '', /simulated kernel failure/);
    assert.equal(core.stats().kvBlocksUsed, 0);
    core.submit(request(2, prompts(1)[0]!, 3));
    const later: EngineEvent[] = [];
    while (core.hasWork()) later.push(...core.step());
    assert.equal(later.filter((e) => e.type === 'tokens').length, 3);
  });

  it('prefillFirst: every prompt is read before any request decodes its second token', () => {
    const reqs = prompts(4).map((p, i) => request(i, p, 4));
    const order = (prefillFirst: boolean): string[] => {
      const { events } = runAll(options({ chunkSize: 32, prefillFirst }), reqs);
      const seen = new Map<string, number>();
      const out: string[] = [];
      for (const e of events) {
        if (e.type !== 'tokens') continue;
        const k = (seen.get(e.id) ?? 0) + e.tokens.length;
        seen.set(e.id, k);
        out.push(k === 1 ? 'first' : 'later');
      }
      return out;
    };
    const held = order(true);
    assert.equal(held.lastIndexOf('first'), 3, `all four first tokens come first: ${held.join(' ')}`);
    assert.equal(held.length, 16);
    // Interleaved (serve's policy), an early request decodes while later prompts are still read.
    assert.ok(order(false).indexOf('later') < order(false).lastIndexOf('first'));
  });

  it('without --cache_lens the CPU engine takes 32768 tokens; a bf16 KV cache is refused on the CPU', () => {
    const { info } = createEngine(options({ cacheTokens: undefined }));
    assert.equal(info.kvTokens, 32768);
    assert.equal(info.kvCacheDtype, 'f32');
    assert.deepEqual(info.cudaGraphs, []);
    assert.throws(() => createEngine(options({ kvCacheDtype: 'bf16' })), /KV cache dtype bf16 is not available on the cpu backend/);
  });

  it('refuses what can never fit, naming the numbers', () => {
    const { core } = createEngine(options({ cacheTokens: 64 }));
    assert.throws(() => core.submit(request(1, prompts(1)[0]!, 100)), /exceeds the whole KV cache of 64 tokens/);
  });
});

/** The penalty entries a row hands the device, sorted by token: (token, bias, repetition, subtract). */
function rowEntries(row: GpuSamplingRow): number[][] {
  const { count, index, values } = packPenalties([row]);
  const out = Array.from({ length: count }, (_, e) => [index[2 * e + 1]!, values[3 * e]!, values[3 * e + 1]!, values[3 * e + 2]!]);
  return out.sort((a, b) => a[0]! - b[0]!);
}

/** The same, from the definitions in sampling-params.ts, for a request with this prompt that generated these. */
function expectedEntries(p: SamplingParams, prompt: number[], generated: number[]): number[][] {
  const rep = p.repetitionPenalty !== 1;
  const tokens = new Set([...p.logitBias.keys(), ...generated, ...(rep ? prompt : [])]);
  const out: number[][] = [];
  for (const t of tokens) {
    const bias = p.logitBias.get(t) ?? 0;
    const r = rep && (prompt.includes(t) || generated.includes(t)) ? p.repetitionPenalty : 1;
    const c = generated.filter((g) => g === t).length;
    const sub = c > 0 ? p.frequencyPenalty * c + p.presencePenalty : 0;
    if (bias !== 0 || r !== 1 || sub !== 0) out.push([t, Math.fround(bias), Math.fround(r), Math.fround(sub)]);
  }
  return out.sort((a, b) => a[0]! - b[0]!);
}

describe('engine core with a runner that samples on the device (fake: tokens chosen by the test)', () => {
  const config: ModelConfig = {
    architecture: 'llama', vocabSize: 64, hiddenSize: 8, intermediateSize: 8, numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: 8,
    rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: undefined, maxPositions: 256, tieWordEmbeddings: true, qkNorm: false,
    bosTokenId: undefined, eosTokenIds: [],
  };
  const noForward = (): never => {
    throw new Error('the fake runner runs no model');
  };

  for (const overlap of [true, false]) {
    it(`${overlap ? 'overlap' : 'no overlap'}: each step's penalty entries count every token generated so far${overlap ? ', the in-flight step\'s included' : ''}`, () => {
      const backend = new CpuBackend();
      const model: CausalLM = { config, kvLayout: perHeadKvLayout(1, 8), backend, forward: noForward, forwardTensors: noForward };
      const cache = new PagedKvCache(backend, { numLayers: 1, numBlocks: 16, blockSize: 16, layout: perHeadKvLayout(1, 8) });
      const a = validateSamplingParams({ temperature: 0, repetitionPenalty: 1.5, presencePenalty: 0.5, frequencyPenalty: 0.25, logitBias: new Map([[40, 2]]) });
      const b = validateSamplingParams({ temperature: 0.7, frequencyPenalty: 1, seed: 3 });
      // Rows carry no request id: the runner tells the requests apart by their params object.
      const prompts = new Map([[a, [1, 2, 3, 10]], [b, [4, 5, 20]]]);
      const scripts = new Map([[a, [10, 11, 10, 40, 10, 12, 13, 14]], [b, [20, 20, 21, 20, 22, 23, 24, 25]]]);
      const counters = new Map<SamplingParams, number[]>([[a, []], [b, []]]);
      const problems: string[] = [];
      let started = 0;
      let waited = 0;
      const runner: StepRunner = {
        samplesOnDevice: true,
        start(_batch, rows) {
          started++;
          if (!rows) throw new Error('no device rows');
          for (const row of rows) {
            const generated = scripts.get(row.params)!.slice(0, row.counter);
            counters.get(row.params)!.push(row.counter);
            const got = JSON.stringify(rowEntries(row));
            const want = JSON.stringify(expectedEntries(row.params, prompts.get(row.params)!, generated));
            if (got !== want) problems.push(`start ${started}, token ${row.counter} of ${row.params === a ? 'a' : 'b'}: entries ${got}, expected ${want}`);
          }
          const tokens = Int32Array.from(rows, (row) => scripts.get(row.params)![row.counter] ?? 0);
          return { wait: () => (waited++, { tokens }) };
        },
      };
      const core = new EngineCore(model, cache, { chunkSize: 64, maxBatchSize: 4, maxQueue: 4, overlap }, runner);
      core.submit({ id: 'a', promptIds: prompts.get(a)!, sampling: a, maxTokens: 6, stopIds: [] });
      core.submit({ id: 'b', promptIds: prompts.get(b)!, sampling: b, maxTokens: 6, stopIds: [22] });
      const out = new Map<string, number[]>([['a', []], ['b', []]]);
      const reasons: string[] = [];
      for (let step = 0; core.hasWork(); step++) {
        assert.ok(step < 50, 'engine did not finish');
        for (const e of core.step()) {
          if (e.type === 'tokens') out.get(e.id)!.push(...e.tokens);
          if (e.type === 'finished') reasons.push(`${e.id} ${e.reason} ${e.error ?? ''}`.trim());
        }
        // With overlap the first step() call already launched the second step, after waiting for the first.
        if (step === 0 && overlap) assert.deepEqual([started, waited], [2, 1]);
      }
      assert.deepEqual(problems, []);
      assert.deepEqual(reasons.sort(), ['a length', 'b stop']);
      assert.deepEqual(out.get('a'), scripts.get(a)!.slice(0, 6));
      assert.deepEqual(out.get('b'), [20, 20, 21, 20, 22]);
      // Every token had its step; with overlap, b's stop token may have had one more row planned (dropped).
      assert.deepEqual(counters.get(a), [0, 1, 2, 3, 4, 5]);
      assert.deepEqual(counters.get(b)!.slice(0, 5), [0, 1, 2, 3, 4]);
      assert.ok(counters.get(b)!.length <= 6);
    });
  }
});
