// The device sampler (native/cuda/sample.cu) against mathematics: greedy rows against a plain argmax, and the
// empirical distribution of many draws against probabilities computed here in float64 from the definitions
// in sampling-params.ts (temperature → top-k → top-p → min-p). The host-side packing needs no GPU.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cudaNative, type CudaNative } from '../../src/backend/cuda-backend.js';
import { DType } from '../../src/backend/dtype.js';
import { gpuSamplable, packSamplingRows, requestSeed, type GpuSamplingRow } from '../../src/engine/gpu-sampling.js';
import { defaultSamplingParams, type SamplingParams } from '../../src/engine/sampling-params.js';
import { uniformSampler } from '../../src/make-model/random-model.js';
import { DeviceHandles, freshSeed, needCuda, randn } from './helpers.js';

interface Setting {
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
}

const params = (s: Setting): SamplingParams => ({ ...defaultSamplingParams, topK: -1, topP: 1, minP: 0, ...s });

/** Index of the largest value, lowest among ties. */
function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/**
 * Each token's probability under setting `s`, in float64. `slack` widens (> 0) or narrows (< 0) the top-p and
 * min-p boundaries by that relative amount: the device sums masses in float, so only a set that is the same
 * for slack ±1e-5 is unambiguous.
 */
function expectedProbs(logits: Float32Array, s: Setting, slack = 0): Float64Array {
  const V = logits.length;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  let kept = order;
  const k = s.topK ?? 0;
  if (k > 0 && k < V) kept = order.filter((i) => logits[i]! >= logits[order[k - 1]!]!);
  const zmax = logits[kept[0]!]! / s.temperature;
  let w = kept.map((i) => Math.exp(logits[i]! / s.temperature - zmax));
  const topP = s.topP ?? 1;
  if (topP < 1) {
    const total = w.reduce((a, b) => a + b, 0);
    let n = 0;
    for (let cum = 0; n < kept.length && cum < topP * total * (1 + slack); n++) cum += w[n]!;
    const t = logits[kept[n - 1]!]!; // tokens tied with the last one kept stay too
    const m = kept.filter((i) => logits[i]! >= t).length;
    kept = kept.slice(0, m);
    w = w.slice(0, m);
  }
  const minP = s.minP ?? 0;
  const probs = new Float64Array(V);
  let z = 0;
  kept.forEach((i, j) => {
    if (minP > 0 && w[j]! < minP * (1 - slack)) return;
    probs[i] = w[j]!;
    z += w[j]!;
  });
  return probs.map((p) => p / z);
}

function keptSet(p: Float64Array): string {
  return p.reduce<number[]>((a, v, i) => (v > 0 ? [...a, i] : a), []).join(',');
}

/** Every token's count within 5 standard errors of N·p (+1 for the integer count), none outside the kept set. */
function checkFrequencies(name: string, tokens: Int32Array, probs: Float64Array, allowed: Float64Array = probs): void {
  const N = tokens.length;
  const counts = new Float64Array(probs.length);
  for (const t of tokens) {
    assert.ok(t >= 0 && t < probs.length && allowed[t]! > 0, `${name}: token ${t} is outside the kept set`);
    counts[t]!++;
  }
  probs.forEach((p, i) => {
    const se = Math.sqrt(Math.max(0, N * p * (1 - p))); // p may sum to 1 + ε
    assert.ok(Math.abs(counts[i]! - N * p) <= 5 * se + 1, `${name}: token ${i} drawn ${counts[i]} times, expected ${(N * p).toFixed(1)} ± ${se.toFixed(1)}`);
  });
}

describe('packSamplingRows, gpuSamplable, requestSeed', () => {
  it('lays rows out as the kernel reads them, padding with greedy rows', () => {
    const rows: GpuSamplingRow[] = [{ params: params({ temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05 }), seed: -5, counter: 3 }];
    const { params: p, seeds } = packSamplingRows(rows, 3);
    assert.deepEqual([...p], [Math.fround(0.7), 40, Math.fround(0.9), Math.fround(0.05), 0, 0, 1, 0, 0, 0, 1, 0]);
    assert.deepEqual([...seeds], [-5, 3, 0, 0, 0, 0]);
  });

  it('every request samples on the device but those asking for logprobs (penalties and logit_bias included)', () => {
    assert.equal(gpuSamplable(params({ temperature: 0.7, topK: 5, topP: 0.5, minP: 0.1 })), true);
    assert.equal(gpuSamplable({ ...defaultSamplingParams, logitBias: new Map([[3, 1]]) }), true);
    assert.equal(gpuSamplable({ ...defaultSamplingParams, repetitionPenalty: 1.1 }), true);
    assert.equal(gpuSamplable({ ...defaultSamplingParams, presencePenalty: 0.5 }), true);
    assert.equal(gpuSamplable({ ...defaultSamplingParams, frequencyPenalty: -0.5 }), true);
    assert.equal(gpuSamplable({ ...defaultSamplingParams, logprobs: 1 }), false);
    assert.equal(gpuSamplable({ ...defaultSamplingParams, repetitionPenalty: 1.1, logprobs: 3 }), false);
  });

  it('seeds: the same request seed gives the same 32-bit seed; nearby ones differ; none given is random', () => {
    for (const s of [0, 1, -1, 2 ** 53 - 1]) {
      const a = requestSeed({ seed: s });
      assert.equal(a, requestSeed({ seed: s }));
      assert.ok(Number.isInteger(a) && a >= -(2 ** 31) && a < 2 ** 31);
    }
    assert.notEqual(requestSeed({ seed: 1 }), requestSeed({ seed: 2 }));
    const unseeded = new Set(Array.from({ length: 8 }, () => requestSeed({ seed: undefined })));
    assert.ok(unseeded.size > 1);
  });
});

describe('CUDA sampling kernel', needCuda, () => {
  let n: CudaNative;
  const report: string[] = [];
  let dev: DeviceHandles;

  before(() => {
    n = cudaNative()!; // needCuda: the addon has CUDA here
    dev = new DeviceHandles(n);
    n.cudaSetOptions({ poison: true }); // every id the op fails to write reads as -1
  });
  after(() => {
    dev?.releaseAll();
    n?.cudaSetOptions({ poison: false });
    if (report.length) console.log(report.join('\n'));
  });

  /** Token ids the device draws for logits tensor `hl` [rows.length, V]. */
  const draw = (hl: number, rows: GpuSamplingRow[]): Int32Array => {
    const B = rows.length;
    const packed = packSamplingRows(rows);
    const hp = dev.upload(DType.F32, [B, 4], packed.params);
    const hs = dev.upload(DType.I32, [B, 2], packed.seeds);
    const ho = n.cudaOpSample(hl, hp, hs);
    const out = n.cudaDownload(ho);
    dev.release(hp, hs);
    n.cudaRelease(ho);
    assert.ok(out instanceof Int32Array);
    return out;
  };
  const rowsOf = (s: Setting, B: number, seed: number): GpuSamplingRow[] =>
    Array.from({ length: B }, (_, r) => ({ params: params(s), seed: seed + r, counter: 7 }));

  it('greedy rows equal a plain argmax (lowest id among ties), V = 128256', () => {
    const V = 128256;
    const seed = freshSeed();
    const B = 8;
    const x = randn(B * V, seed, 3);
    const row = (r: number) => x.subarray(r * V, (r + 1) * V);
    row(1).fill(100, 5000, 5001);
    row(1).fill(100, 90000, 90001); // tie: the lower id wins
    row(2).fill(0); // all tied
    row(3)[V - 1] = 50; // the last id
    row(4).fill(-Infinity);
    row(4)[80000] = 1;
    row(4)[70000] = 1;
    const settings: Setting[] = [{ temperature: 0 }, { temperature: 0 }, { temperature: 0 }, { temperature: 0 }, { temperature: 0 },
      { temperature: 1, topK: 1 }, { temperature: 1e-6 }, { temperature: 0, topK: 7, topP: 0.3, minP: 0.5 }];
    const hl = dev.upload(DType.F32, [B, V], x);
    const got = draw(hl, settings.map((s, r) => ({ params: params(s), seed: r, counter: 0 })));
    dev.release(hl);
    for (let r = 0; r < B; r++) assert.equal(got[r], argmax(row(r)), `row ${r} (seed ${seed})`);
    assert.deepEqual([got[1], got[2], got[4]], [5000, 0, 70000]);
  });

  it('draws follow the float64 distribution of each setting (V = 40, 20000 draws each)', () => {
    const settings: Setting[] = [
      { temperature: 0.7 },
      { temperature: 1, topK: 5 },
      { temperature: 1, topP: 0.8 },
      { temperature: 1, minP: 0.1 },
      { temperature: 0.8, topK: 10, topP: 0.9, minP: 0.05 },
      { temperature: 1.5, topK: 30, topP: 0.7 }, // T > 1: bins in units of z
    ];
    const B = 20000;
    for (const s of settings) {
      // Fresh logits whose kept set is unambiguous (no boundary within float rounding).
      let seed = freshSeed();
      let x = randn(40, seed, 2);
      while (keptSet(expectedProbs(x, s, 1e-5)) !== keptSet(expectedProbs(x, s, -1e-5))) x = randn(40, ++seed, 2);
      const hl = dev.repeatedRow(x, B);
      const tokens = draw(hl, rowsOf(s, B, seed));
      dev.release(hl);
      checkFrequencies(`${JSON.stringify(s)} (seed ${seed})`, tokens, expectedProbs(x, s));
    }
  });

  it('large vocabulary: 2048 draws over V = 128256 match the float64 distribution', () => {
    const V = 128256;
    const seed = freshSeed();
    const x = randn(V, seed, 3);
    for (const s of [{ temperature: 0.8, topK: 50, topP: 0.9, minP: 0.02 }, { temperature: 0.6, topP: 0.95 }]) {
      const hl = dev.repeatedRow(x, 2048);
      const tokens = draw(hl, rowsOf(s, 2048, seed));
      dev.release(hl);
      checkFrequencies(`V=${V} ${JSON.stringify(s)} (seed ${seed})`, tokens, expectedProbs(x, s), expectedProbs(x, s, 1e-5));
    }
    // The same distribution from 16 rows split over clusters of blocks: 2048 draws in 128 launches.
    const s: Setting = { temperature: 0.8, topK: 50, topP: 0.9, minP: 0.02 };
    const hl = dev.repeatedRow(x, 16);
    const tokens = new Int32Array(2048);
    for (let k = 0; k < 128; k++) tokens.set(draw(hl, rowsOf(s, 16, seed + 16 * k)), 16 * k);
    dev.release(hl);
    checkFrequencies(`V=${V} 16 rows ${JSON.stringify(s)} (seed ${seed})`, tokens, expectedProbs(x, s), expectedProbs(x, s, 1e-5));
  });

  it('boundaries inside bins too big to sort (radix-select fallback) keep exactly the right tokens', () => {
    // 128k tokens within 0.02 of each other (float rounding makes many exact ties) below 100 spread-out ones.
    const V = 128256;
    const seed = freshSeed();
    const u = uniformSampler(seed);
    const spread = randn(100, seed, 0.5);
    const x = Float32Array.from({ length: V }, (_, i) => (i < 100 ? 5 + spread[i]! : 3 + 0.02 * u()));
    const settings: Setting[] = [
      { temperature: 1, topK: 5000 },
      { temperature: 1, topP: 0.5 },
      { temperature: 1, topK: 20000, topP: 0.5 },
      { temperature: 2, topP: 0.3 },
      { temperature: 0.5, topK: 50 },
    ];
    const B = 1024;
    for (const s of settings) {
      const name = `dense ${JSON.stringify(s)} (seed ${seed})`;
      const allowed = expectedProbs(x, s, 1e-5);
      // 8 rows: each row split over several blocks (a cluster); 1024 rows: one block each.
      const few = dev.repeatedRow(x, 8);
      const fewTokens = draw(few, rowsOf(s, 8, seed + B));
      dev.release(few);
      for (const t of fewTokens) assert.ok(allowed[t]! > 0, `${name}, 8 rows: token ${t} (logit ${x[t]}) is outside the kept set`);
      const hl = dev.repeatedRow(x, B);
      const tokens = draw(hl, rowsOf(s, B, seed));
      dev.release(hl);
      for (const t of tokens) assert.ok(allowed[t]! > 0, `${name}: token ${t} (logit ${x[t]}) is outside the kept set`);
      // The spread-out group's share of the draws, against its probability.
      const p = expectedProbs(x, s).subarray(0, 100).reduce((a, b) => a + b, 0);
      const hits = tokens.reduce((a, t) => a + (t < 100 ? 1 : 0), 0);
      const se = Math.sqrt(Math.max(0, B * p * (1 - p)));
      assert.ok(Math.abs(hits - B * p) <= 5 * se + 1, `${name}: ${hits} draws among the top 100, expected ${(B * p).toFixed(1)} ± ${se.toFixed(1)}`);
    }
    // A top-k boundary beyond 64 logits below the max: the last bin, tens of thousands of tokens.
    const far = Float32Array.from({ length: V }, (_, i) => (i < 10 ? 100 + i / 10 : 3 * Math.sin(i)));
    const hl = dev.repeatedRow(far, 64);
    const tokens = draw(hl, rowsOf({ temperature: 0.5, topK: 50 }, 64, seed));
    dev.release(hl);
    for (const t of tokens) assert.ok(t >= 0 && t < 10, `far top-k: token ${t}`);
  });

  it('the same (seed, counter) gives the same token, alone or in any batch; other counters and seeds vary', () => {
    const V = 40;
    const flat = new Float32Array(V); // uniform: every token as likely
    const s = params({ temperature: 1 });
    const byCounter = Array.from({ length: 64 }, (_, c) => ({ params: s, seed: 1234, counter: c }));
    const bySeed = Array.from({ length: 64 }, (_, r) => ({ params: s, seed: r, counter: 0 }));
    const rows = [...byCounter, ...bySeed];
    const hl = dev.repeatedRow(flat, rows.length);
    const first = draw(hl, rows);
    const again = draw(hl, rows);
    dev.release(hl);
    assert.deepEqual([...again], [...first]);
    const one = dev.repeatedRow(flat, 1);
    assert.equal(draw(one, [byCounter[17]!])[0], first[17]);
    dev.release(one);
    assert.ok(new Set(first.subarray(0, 64)).size >= 20, `counters 0..63 gave ${new Set(first.subarray(0, 64)).size} distinct tokens`);
    assert.ok(new Set(first.subarray(64)).size >= 20, `seeds 0..63 gave ${new Set(first.subarray(64)).size} distinct tokens`);
  });

  it('a captured graph replays the op over new logits, params and seeds in the same buffers', () => {
    const B = 64;
    const V = 1000;
    const seed = freshSeed();
    const settings: Setting[] = [{ temperature: 0 }, { temperature: 0.7, topK: 20 }, { temperature: 1, topP: 0.9 }, { temperature: 1.2, minP: 0.05 }];
    const inputs = (k: number) => ({
      x: randn(B * V, seed + k, 2),
      ...packSamplingRows(Array.from({ length: B }, (_, r) => ({ params: params(settings[(r + k) % settings.length]!), seed: seed + 1000 * k + r, counter: k }))),
    });
    const a = inputs(0);
    const hl = dev.upload(DType.F32, [B, V], a.x);
    const hp = dev.upload(DType.F32, [B, 4], a.params);
    const hs = dev.upload(DType.I32, [B, 2], a.seeds);
    n.cudaRelease(n.cudaOpSample(hl, hp, hs)); // warms the pool: the capture allocates nothing new
    n.cudaCaptureBegin();
    let ho = -1;
    let graph = -1;
    try {
      ho = n.cudaOpSample(hl, hp, hs);
    } finally {
      graph = n.cudaCaptureEnd();
    }
    for (let k = 1; k <= 3; k++) {
      const b = inputs(k);
      n.cudaUpload(hl, b.x);
      n.cudaUpload(hp, b.params);
      n.cudaUpload(hs, b.seeds);
      n.cudaGraphReplay(graph);
      const replayed = n.cudaDownload(ho);
      const eager = n.cudaOpSample(hl, hp, hs);
      assert.deepEqual([...replayed], [...n.cudaDownload(eager)], `replay ${k} (seed ${seed})`);
      n.cudaRelease(eager);
    }
    n.cudaGraphRelease(graph);
    n.cudaRelease(ho);
    dev.release(hl, hp, hs);
  });

  it('bad inputs throw errors naming the op', () => {
    const hl = dev.upload(DType.F32, [2, 10], new Float32Array(20));
    const hp = dev.upload(DType.F32, [2, 4], new Float32Array(8));
    const hs = dev.upload(DType.I32, [2, 2], new Int32Array(4));
    const flat = dev.upload(DType.F32, [20], new Float32Array(20));
    const hp3 = dev.upload(DType.F32, [2, 3], new Float32Array(6));
    const hsF = dev.upload(DType.F32, [2, 2], new Float32Array(4));
    assert.throws(() => n.cudaOpSample(flat, hp, hs), /sample: logits must be F32 \[B, V\]/);
    assert.throws(() => n.cudaOpSample(hl, hp3, hs), /sample: params must be F32 \[2, 4\]/);
    assert.throws(() => n.cudaOpSample(hl, hp, hsF), /sample: seeds must be I32 \[2, 2\]/);
    assert.throws(() => n.cudaOpSample(hl, hp, 99999), /cudaOpSample: argument 2/);
    dev.release(hl, hp, hs, flat, hp3, hsF);
  });

  it('speed (reported): V = 128256, B = 1 and 256, replayed from a graph', () => {
    const V = 128256;
    const x = randn(V, 7, 3);
    const settings: [string, Setting][] = [
      ['greedy', { temperature: 0 }],
      ['temperature 0.7', { temperature: 0.7 }],
      ['top-k 50, top-p 0.9, min-p 0.05', { temperature: 0.7, topK: 50, topP: 0.9, minP: 0.05 }],
      ['top-p 0.95', { temperature: 1, topP: 0.95 }],
    ];
    const reps = 20;
    for (const B of [1, 256]) {
      const hl = dev.repeatedRow(x, B);
      for (const [name, s] of settings) {
        const packed = packSamplingRows(rowsOf(s, B, 1));
        const hp = dev.upload(DType.F32, [B, 4], packed.params);
        const hs = dev.upload(DType.I32, [B, 2], packed.seeds);
        n.cudaRelease(n.cudaOpSample(hl, hp, hs));
        n.cudaCaptureBegin();
        const outs: number[] = [];
        let graph = -1;
        try {
          for (let i = 0; i < reps; i++) outs.push(n.cudaOpSample(hl, hp, hs));
        } finally {
          graph = n.cudaCaptureEnd();
        }
        n.cudaGraphReplay(graph);
        n.cudaTimerStart();
        n.cudaGraphReplay(graph);
        const ms = n.cudaTimerStop();
        report.push(`sample B=${B} V=${V} ${name}: ${((ms * 1000) / reps).toFixed(1)} µs per call`);
        n.cudaGraphRelease(graph);
        for (const h of outs) n.cudaRelease(h);
        dev.release(hp, hs);
      }
      dev.release(hl);
    }
  });
});
