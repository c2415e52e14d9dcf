// The sampler against distributions whose answer is computed here by hand or by a plain float64 reference:
// truncation (top-k → top-p → min-p), temperature, penalties, logit_bias, seeds and logprobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SequenceSampler } from '../src/engine/sampler.js';
import {
  SamplingParamError,
  defaultSamplingParams,
  validateSamplingParams,
  type SamplingParams,
} from '../src/engine/sampling-params.js';

const sampler = (p: Partial<SamplingParams>, prompt: number[] = []) =>
  new SequenceSampler(validateSamplingParams({ seed: 1234, ...p }), prompt);

const logitsOf = (probs: number[]) => Float32Array.from(probs, (q) => Math.log(q));

function histogram(s: SequenceSampler, logits: Float32Array, n: number): number[] {
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[s.sample(logits).token]!++;
  return counts;
}

/** Every count within 5 binomial standard deviations of n·p; tokens with p = 0 never drawn. */
function assertFrequencies(counts: number[], probs: number[], n: number): void {
  probs.forEach((q, i) => {
    const c = counts[i]!;
    if (q === 0) return assert.equal(c, 0, `token ${i} has probability 0 but was drawn ${c}×`);
    const sd = Math.sqrt(n * q * (1 - q));
    assert.ok(Math.abs(c - n * q) <= 5 * sd + 1e-9, `token ${i}: ${c} draws, expected ${(n * q).toFixed(1)} ± ${sd.toFixed(1)}`);
  });
}

/** Pearson chi-square of observed vs expected counts, checked against df + 6·sqrt(2·df) (≈ 6σ). */
function assertChiSquare(observed: number[], expected: number[]): void {
  let chi2 = 0;
  for (let i = 0; i < observed.length; i++) chi2 += (observed[i]! - expected[i]!) ** 2 / expected[i]!;
  const df = observed.length - 1;
  assert.ok(chi2 < df + 6 * Math.sqrt(2 * df), `chi-square ${chi2.toFixed(1)} with ${df} degrees of freedom`);
}

/** Deterministic Gaussian logits from a small LCG (independent of the generator under test). */
function gaussianLogits(n: number, std: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uni = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  return Float32Array.from({ length: n }, () => std * Math.sqrt(-2 * Math.log(uni())) * Math.cos(2 * Math.PI * uni()));
}

/** Reference: float64 probabilities after temperature, top-k, top-p, min-p, by a full sort (ties → lower id). */
function referenceProbs(x: Float32Array, p: Partial<SamplingParams>): number[] {
  const T = p.temperature ?? 1;
  const order = Array.from(x.keys()).sort((a, b) => x[b]! - x[a]! || a - b);
  const m = x[order[0]!]!;
  const w = Array.from(x, (v) => Math.exp((v - m) / T));
  let kept = p.topK && p.topK > 0 ? order.slice(0, p.topK) : order;
  if (p.topP !== undefined && p.topP < 1) {
    const z = kept.reduce((s, i) => s + w[i]!, 0);
    let before = 0;
    const nucleus: number[] = [];
    for (const i of kept) {
      if (before >= p.topP * z) break;
      nucleus.push(i);
      before += w[i]!;
    }
    kept = nucleus;
  }
  if (p.minP) kept = kept.filter((i) => w[i]! >= p.minP! * w[order[0]!]!);
  const z = kept.reduce((s, i) => s + w[i]!, 0);
  const probs = new Array<number>(x.length).fill(0);
  for (const i of kept) probs[i] = w[i]! / z;
  return probs;
}

/** Draws n tokens; checks support ⊆ reference and a chi-square over ~10 groups of equal expected mass. */
function assertMatchesReference(x: Float32Array, p: Partial<SamplingParams>, n: number): void {
  const ref = referenceProbs(x, p);
  const counts = histogram(sampler(p), x, n);
  counts.forEach((c, i) => assert.ok(c === 0 || ref[i]! > 0, `token ${i} drawn ${c}× outside the kept set`));
  const byProb = Array.from(ref.keys()).filter((i) => ref[i]! > 0).sort((a, b) => ref[b]! - ref[a]!);
  const obs: number[] = [];
  const exp: number[] = [];
  let o = 0;
  let e = 0;
  for (const i of byProb) {
    o += counts[i]!;
    e += n * ref[i]!;
    if (e >= n / 10) {
      obs.push(o);
      exp.push(e);
      o = e = 0;
    }
  }
  if (e > 0) {
    obs.push(o);
    exp.push(e);
  }
  if (obs.length > 1) assertChiSquare(obs, exp);
}

test('validateSamplingParams fills defaults and names the bad field', () => {
  assert.deepEqual(validateSamplingParams({}), { ...defaultSamplingParams });
  assert.equal(validateSamplingParams({ temperature: undefined }).temperature, defaultSamplingParams.temperature);
  const bad: [Partial<SamplingParams>, keyof SamplingParams][] = [
    [{ temperature: -0.1 }, 'temperature'],
    [{ temperature: NaN }, 'temperature'],
    [{ topK: -2 }, 'topK'],
    [{ topK: 1.5 }, 'topK'],
    [{ topP: 0 }, 'topP'],
    [{ topP: 1.01 }, 'topP'],
    [{ minP: -0.1 }, 'minP'],
    [{ minP: 1.5 }, 'minP'],
    [{ repetitionPenalty: 0 }, 'repetitionPenalty'],
    [{ presencePenalty: 2.5 }, 'presencePenalty'],
    [{ frequencyPenalty: -2.01 }, 'frequencyPenalty'],
    [{ logitBias: new Map([[3, 101]]) }, 'logitBias'],
    [{ logitBias: new Map([[-1, 1]]) }, 'logitBias'],
    [{ seed: 0.5 }, 'seed'],
    [{ logprobs: 21 }, 'logprobs'],
    [{ logprobs: -1 }, 'logprobs'],
  ];
  for (const [p, field] of bad) {
    assert.throws(
      () => validateSamplingParams(p),
      (e: unknown) => e instanceof SamplingParamError && e.field === field && e.message.startsWith(field),
      JSON.stringify(p),
    );
  }
  assert.throws(() => validateSamplingParams({ logitBias: new Map([[10, 1]]) }, { vocabSize: 10 }), SamplingParamError);
  for (const ok of [{ topK: -1 }, { topK: 0 }, { topP: 1 }, { minP: 1 }, { presencePenalty: -2 }, { seed: -7 }]) {
    validateSamplingParams(ok);
  }
});

test('temperature 0 is argmax with ties to the lowest id', () => {
  const s = sampler({ temperature: 0 });
  assert.equal(s.sample(Float32Array.from([1, 3, 3, 2])).token, 1);
  assert.equal(s.sample(Float32Array.from([-5, -1, -3, -1])).token, 1);
  assert.equal(s.sample(Float32Array.from([0.5])).token, 0);
  assert.equal(sampler({ temperature: 1e-7 }).sample(Float32Array.from([0, 2, 1])).token, 1);
});

test('top_k = 1 is greedy at any temperature', () => {
  const x = gaussianLogits(3000, 2, 7);
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  const s = sampler({ temperature: 1.5, topK: 1 });
  for (let i = 0; i < 50; i++) assert.equal(s.sample(x).token, best);
  assert.equal(sampler({ temperature: 1, topK: 1 }).sample(Float32Array.from([0, 4, 4])).token, 1);
});

test('top_p 0.8 over [0.5, 0.3, 0.15, 0.05] keeps {0, 1} at 0.625 / 0.375', () => {
  const n = 20000;
  const counts = histogram(sampler({ topP: 0.8 }), logitsOf([0.5, 0.3, 0.15, 0.05]), n);
  assertFrequencies(counts, [0.625, 0.375, 0, 0], n);
});

test('top_k 2 over [0.4, 0.3, 0.2, 0.1] keeps {0, 1} at 4/7 / 3/7', () => {
  const n = 20000;
  assertFrequencies(histogram(sampler({ topK: 2 }), logitsOf([0.4, 0.3, 0.2, 0.1]), n), [4 / 7, 3 / 7, 0, 0], n);
});

test('min_p 0.5 keeps tokens with p ≥ 0.5 · p_max', () => {
  const n = 20000;
  const probs = [0.4, 0.25, 0.19, 0.16]; // cut at 0.2
  assertFrequencies(histogram(sampler({ minP: 0.5 }), logitsOf(probs), n), [0.4 / 0.65, 0.25 / 0.65, 0, 0], n);
});

test('top-p is applied to the top-k distribution, renormalised', () => {
  // Over top-2 (4/7, 3/7), top_p 0.5 keeps only token 0; top-p over the full distribution would keep {0, 1}.
  const s = sampler({ topK: 2, topP: 0.5 });
  const x = logitsOf([0.4, 0.3, 0.2, 0.1]);
  for (let i = 0; i < 200; i++) assert.equal(s.sample(x).token, 0);
  // Same where the k-th token has near-equal neighbours: over top-2, 0.4 / 0.6 ≥ 0.6 keeps token 0 alone.
  const close = logitsOf([0.4, 0.2, 0.199, 0.198, 0.003]);
  const t = sampler({ topK: 2, topP: 0.6 });
  for (let i = 0; i < 200; i++) assert.equal(t.sample(close).token, 0);
});

test('top-k → top-p → min-p together', () => {
  // top_k 4 → [.3,.25,.2,.15]/.9; top_p 0.7 keeps 3 (mass before the third is .611); min_p 0.7 cuts below .21.
  const n = 20000;
  const counts = histogram(sampler({ topK: 4, topP: 0.7, minP: 0.7 }), logitsOf([0.3, 0.25, 0.2, 0.15, 0.1]), n);
  assertFrequencies(counts, [0.3 / 0.55, 0.25 / 0.55, 0, 0, 0], n);
});

test('temperature draws from softmax(logits / T)', () => {
  const n = 20000;
  const x = [1, 0, -1, 0.5, 2];
  const T = 0.5;
  const w = x.map((v) => Math.exp(v / T));
  const z = w.reduce((a, b) => a + b);
  assertFrequencies(histogram(sampler({ temperature: T }), Float32Array.from(x), n), w.map((v) => v / z), n);
});

test('untruncated draws over 200 tokens follow softmax', () => {
  assertMatchesReference(gaussianLogits(200, 1.5, 11), { temperature: 1 }, 20000);
});

test('large vocabularies: top-p, top-k + top-p, min-p and flat distributions match a full-sort reference', () => {
  const x = gaussianLogits(4000, 2.5, 3);
  for (let k = 0; k < 6; k++) x[k * 631] = 9 + k * 0.3; // a few strong candidates, as in real logits
  assertMatchesReference(x, { topP: 0.9 }, 6000);
  assertMatchesReference(x, { temperature: 0.7, topK: 50, topP: 0.95 }, 6000);
  assertMatchesReference(x, { temperature: 1.2, minP: 0.01 }, 6000);
  assertMatchesReference(x, { temperature: 3, topP: 0.5 }, 6000); // flat: the nucleus has hundreds of tokens
  assertMatchesReference(x, { temperature: 0.8, topK: 400, minP: 0.001 }, 6000);
});

test('ties at a top-k boundary go to the lower ids', () => {
  const x = new Float32Array(1000);
  const twos = [900, 17, 500, 3, 777];
  const ones = [950, 40, 41, 600, 2, 999, 10];
  for (const i of twos) x[i] = 2;
  for (const i of ones) x[i] = 1;
  const counts = histogram(sampler({ topK: 8 }), x, 4000);
  const expected = new Set([...twos, 2, 10, 40]); // the three lowest ids among the ones
  counts.forEach((c, i) => assert.equal(c > 0, expected.has(i), `token ${i} drawn ${c}×`));
});

test('repetition penalty divides positive and multiplies negative logits (prompt and generated)', () => {
  const greedy = (prompt: number[], x: number[]) =>
    sampler({ temperature: 0, repetitionPenalty: 2 }, prompt).sample(Float32Array.from(x)).token;
  assert.equal(greedy([0], [2.0, 1.1]), 1); // 2.0 / 2 = 1.0 < 1.1
  assert.equal(greedy([0], [2.0, 0.9]), 0);
  assert.equal(greedy([0], [-1.0, -1.9]), 1); // -1.0 · 2 = -2.0 < -1.9
  assert.equal(greedy([0], [-1.0, -2.1]), 0);
  const s = sampler({ temperature: 0, repetitionPenalty: 2 });
  assert.equal(s.sample(Float32Array.from([2.0, 1.1])).token, 0);
  assert.equal(s.sample(Float32Array.from([2.0, 1.1])).token, 1); // token 0 is now generated, so penalised
  // Distribution: prompt [0, 1], penalty 1.5 → logits [1/1.5, 0·1.5] → p0 = σ(2/3).
  const n = 20000;
  const p0 = 1 / (1 + Math.exp(-2 / 3));
  assertFrequencies(histogram(sampler({ repetitionPenalty: 1.5 }, [0, 1]), Float32Array.from([1, 0]), n), [p0, 1 - p0], n);
});

test('presence and frequency penalties count generated tokens only, by the OpenAI formula', () => {
  // Prompt tokens are not penalised.
  assert.equal(sampler({ temperature: 0, presencePenalty: 1 }, [0]).sample(Float32Array.from([2.0, 1.5])).token, 0);
  const afterTwoZeros = (second: number) => {
    const s = sampler({ temperature: 0, frequencyPenalty: 0.5, presencePenalty: 0.3 });
    const force = Float32Array.from([5, 0]);
    assert.equal(s.sample(force).token, 0);
    assert.equal(s.sample(force).token, 0); // 5 − 0.5 − 0.3 still wins
    return s.sample(Float32Array.from([2.0, second])).token;
  };
  assert.equal(afterTwoZeros(0.75), 1); // 2.0 − 0.5·2 − 0.3 = 0.7 < 0.75
  assert.equal(afterTwoZeros(0.65), 0);
});

test('order: logit_bias, then repetition, then presence/frequency', () => {
  // bias then repetition: (1 + 1) / 2 = 1.0 < 1.2; the other order would give 1/2 + 1 = 1.5.
  const biased = sampler({ temperature: 0, repetitionPenalty: 2, logitBias: new Map([[0, 1]]) }, [0]);
  assert.equal(biased.sample(Float32Array.from([1.0, 1.2])).token, 1);
  // repetition then presence: 3 / 2 − 1 = 0.5 < 0.9; the other order would give (3 − 1) / 2 = 1.0.
  const s = sampler({ temperature: 0, repetitionPenalty: 2, presencePenalty: 1 });
  assert.equal(s.sample(Float32Array.from([10, 0])).token, 0);
  assert.equal(s.sample(Float32Array.from([3.0, 0.9])).token, 1);
});

test('record(token) counts a token for the penalties as sampling it does (the device path records its tokens)', () => {
  // After token 0 once: 2.0 / 2 − 0.5 − 0.3 = 0.2 against 0.25 for token 1.
  const p = { temperature: 0, repetitionPenalty: 2, frequencyPenalty: 0.5, presencePenalty: 0.3 };
  const recorded = sampler(p);
  recorded.record(0);
  assert.equal(recorded.sample(Float32Array.from([2.0, 0.25])).token, 1);
  const plain = sampler(p);
  assert.equal(plain.sample(Float32Array.from([2.0, 0.25])).token, 0);
});

test('logit_bias −100 bans a token and +100 forces one', () => {
  const n = 20000;
  const banned = sampler({ logitBias: new Map([[0, -100]]) });
  assertFrequencies(histogram(banned, logitsOf([0.5, 0.3, 0.15, 0.05]), n), [0, 0.6, 0.3, 0.1], n);
  const x = gaussianLogits(500, 3, 5);
  const forced = sampler({ temperature: 1.5, logitBias: new Map([[37, 100]]) });
  for (let i = 0; i < 200; i++) assert.equal(forced.sample(x).token, 37);
  const b = new Map([[1, 1]]); // +1 on one of two equal logits: p1 = e / (1 + e)
  assertFrequencies(histogram(sampler({ logitBias: b }), new Float32Array(2), n), [1 / (1 + Math.E), Math.E / (1 + Math.E)], n);
});

test('same seed → identical tokens; different seeds and unseeded requests differ', () => {
  const rows = [gaussianLogits(1000, 1, 1), gaussianLogits(1000, 1, 2), gaussianLogits(1000, 1, 3)];
  const run = (seed: number | undefined) => {
    const s = new SequenceSampler(validateSamplingParams({ seed, topP: 0.95, presencePenalty: 0.5 }), [1, 2, 3]);
    return Array.from({ length: 100 }, (_, i) => s.sample(rows[i % 3]!).token);
  };
  assert.deepEqual(run(99), run(99));
  assert.notDeepEqual(run(99), run(100));
  assert.notDeepEqual(run(undefined), run(undefined));
});

test('logprobs are the raw log-softmax (before penalties and temperature), top-N most likely first', () => {
  const x = gaussianLogits(1000, 2, 9);
  const m = Math.max(...x);
  const lse = m + Math.log(Array.from(x).reduce((s, v) => s + Math.exp(v - m), 0));
  const order = Array.from(x.keys()).sort((a, b) => x[b]! - x[a]! || a - b);
  const s = sampler({ temperature: 0.7, topP: 0.9, repetitionPenalty: 1.3, logitBias: new Map([[5, 3]]), logprobs: 5 }, [
    order[0]!,
    order[1]!,
  ]);
  for (let step = 0; step < 20; step++) {
    const r = s.sample(x);
    assert.ok(Math.abs(r.logprob - (x[r.token]! - lse)) < 1e-9, `chosen ${r.token}: ${r.logprob} vs ${x[r.token]! - lse}`);
    assert.equal(r.topLogprobs?.length, 5);
    r.topLogprobs!.forEach((t, j) => {
      assert.equal(t.token, order[j]);
      assert.ok(Math.abs(t.logprob - (x[order[j]!]! - lse)) < 1e-9);
    });
  }
  const none = sampler({}).sample(x);
  assert.equal(none.topLogprobs, undefined);
  assert.ok(Number.isNaN(none.logprob));
});

test('sample() leaves its input untouched; degenerate rows', () => {
  const x = gaussianLogits(300, 1, 4);
  const copy = Float32Array.from(x);
  const s = sampler({ repetitionPenalty: 1.2, presencePenalty: 1, logitBias: new Map([[2, 5]]), topP: 0.9 }, [1, 2, 3]);
  for (let i = 0; i < 10; i++) s.sample(x);
  assert.deepEqual(x, copy);
  const banned = Float32Array.from([-Infinity, -Infinity, 0.5, -Infinity]);
  assert.equal(sampler({ topP: 0.9 }).sample(banned).token, 2);
  assert.equal(sampler({}).sample(Float32Array.from([0, Infinity, 1])).token, 1);
});

test('a 152k vocabulary with top-p stays within the reference nucleus', () => {
  const x = gaussianLogits(151936, 2.5, 8);
  for (let k = 0; k < 8; k++) x[k * 18000 + 5] = 12 + k * 0.25;
  const ref = referenceProbs(x, { topP: 0.9 });
  const s = sampler({ topP: 0.9 });
  for (let i = 0; i < 30; i++) {
    const t = s.sample(x).token;
    assert.ok(ref[t]! > 0, `token ${t} outside the nucleus`);
  }
});
