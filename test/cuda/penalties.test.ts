// logit_bias and the penalties on the device (native/cuda/penalties.cu) against a float64 reimplementation of
// the host sampler's transform (sampler.ts: bias → repetition → presence/frequency), and greedy sampling after
// them against an argmax of those logits. Packing the entries from a request's history needs no GPU.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cudaNative, type CudaNative } from '../../src/backend/cuda-backend.js';
import { DType } from '../../src/backend/dtype.js';
import { packPenalties, packSamplingRows, type GpuSamplingRow } from '../../src/engine/gpu-sampling.js';
import { SequenceSampler } from '../../src/engine/sampler.js';
import { defaultSamplingParams, validateSamplingParams, type SamplingParams } from '../../src/engine/sampling-params.js';
import { uniformSampler } from '../../src/make-model/random-model.js';
import { DeviceHandles, freshSeed, needCuda, randn } from './helpers.js';

const greedy: SamplingParams = { ...defaultSamplingParams, temperature: 0 };

/** Entries as sorted (row, token, bias, repetition, subtract) tuples. */
function entriesOf(rows: GpuSamplingRow[]): number[][] {
  const { count, index, values } = packPenalties(rows);
  const out = Array.from({ length: count }, (_, e) => [index[2 * e]!, index[2 * e + 1]!, values[3 * e]!, values[3 * e + 1]!, values[3 * e + 2]!]);
  return out.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
}

describe('packPenalties', () => {
  it("merges each token's logit_bias, repetition (prompt and generated) and presence/frequency into one entry", () => {
    const p = validateSamplingParams({ repetitionPenalty: 1.25, presencePenalty: 0.5, frequencyPenalty: 0.25, logitBias: new Map([[7, 3], [2, -1], [9, 0.5]]) });
    const a = new SequenceSampler(p, [2, 5, 5, 8]);
    for (const t of [7, 9, 7, 11]) a.record(t);
    const b = new SequenceSampler(validateSamplingParams({ presencePenalty: 0.5 }), [1, 2]);
    for (const t of [3, 3]) b.record(t);
    const plain = new SequenceSampler(defaultSamplingParams, [1, 2, 3]);
    plain.record(4);
    const rows: GpuSamplingRow[] = [a, plain, b].map((s) => ({ params: greedy, seed: 0, counter: 0, penalties: s }));
    rows.push({ params: greedy, seed: 0, counter: 0 }); // no source at all
    assert.deepEqual(entriesOf(rows), [
      // row, token, bias, repetition, subtract (0.25 · count + 0.5 where generated)
      [0, 2, -1, 1.25, 0], // biased, in the prompt
      [0, 5, 0, 1.25, 0], // in the prompt twice: once
      [0, 7, 3, 1.25, 1], // biased, generated twice
      [0, 8, 0, 1.25, 0],
      [0, 9, 0.5, 1.25, 0.75], // biased, generated once (not in the prompt)
      [0, 11, 0, 1.25, 0.75],
      [2, 3, 0, 1, 0.5], // presence only: no repetition, prompt tokens untouched
    ]);
  });

  it('leaves out entries that change nothing; none for requests without penalties', () => {
    const zeroBias = new SequenceSampler(validateSamplingParams({ logitBias: new Map([[4, 0], [6, 2]]) }), [4]);
    const cancelling = new SequenceSampler(validateSamplingParams({ presencePenalty: 0.5, frequencyPenalty: -0.5 }), []);
    cancelling.record(5); // 0.5 − 0.5 · 1 = 0
    cancelling.record(8);
    cancelling.record(8); // 0.5 − 0.5 · 2 = −0.5
    const rows = [zeroBias, cancelling].map((s) => ({ params: greedy, seed: 0, counter: 0, penalties: s }));
    assert.deepEqual(entriesOf(rows), [[0, 6, 2, 1, 0], [1, 8, 0, 1, -0.5]]);
    assert.equal(packPenalties([]).count, 0);
    assert.equal(packPenalties([{ params: greedy, seed: 0, counter: 0, penalties: new SequenceSampler(defaultSamplingParams, [1, 2]) }]).count, 0);
  });

  it('grows past its first buffers: 3 rows of 1000 prompt tokens each', () => {
    const rep = validateSamplingParams({ repetitionPenalty: 1.1 });
    const prompt = Array.from({ length: 1000 }, (_, i) => 2 * i);
    const rows = [0, 1, 2].map(() => ({ params: greedy, seed: 0, counter: 0, penalties: new SequenceSampler(rep, prompt) }));
    const got = entriesOf(rows);
    assert.equal(got.length, 3000);
    assert.deepEqual(got[2999], [2, 1998, 0, Math.fround(1.1), 0]);
  });
});

/** One random entry list: distinct (row, token) pairs, parameters over the validated ranges. */
interface Entries {
  rows: number[];
  tokens: number[];
  /** float32-rounded, as uploaded */
  bias: number[];
  rep: number[];
  sub: number[];
}

function randomEntries(B: number, V: number, perRow: number, seed: number): Entries {
  const u = uniformSampler(seed);
  const e: Entries = { rows: [], tokens: [], bias: [], rep: [], sub: [] };
  for (let r = 0; r < B; r++) {
    const taken = new Set<number>();
    while (taken.size < perRow) taken.add(Math.floor(u() * V));
    for (const t of taken) {
      e.rows.push(r);
      e.tokens.push(t);
      e.bias.push(Math.fround(u() < 0.5 ? 0 : 200 * u() - 100));
      e.rep.push(Math.fround(u() < 0.3 ? 1 : 0.5 + 1.5 * u()));
      e.sub.push(Math.fround(u() < 0.3 ? 0 : (4 * u() - 2) * Math.floor(1 + 5 * u()) + (4 * u() - 2)));
    }
  }
  return e;
}

/** The host sampler's transform of one logit, in float64. */
function penalised(x: number, bias: number, rep: number, sub: number): number {
  let v = x + bias;
  if (rep !== 1) v = v > 0 ? v / rep : v * rep;
  return v - sub;
}

/** Logits [B, V] after the entries, in float64. */
function expectedLogits(x: Float32Array, V: number, e: Entries, count = e.rows.length): Float64Array {
  const out = Float64Array.from(x);
  for (let i = 0; i < count; i++) out[e.rows[i]! * V + e.tokens[i]!] = penalised(x[e.rows[i]! * V + e.tokens[i]!]!, e.bias[i]!, e.rep[i]!, e.sub[i]!);
  return out;
}

function argmax(x: ArrayLike<number>, from: number, to: number): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (x[i]! > x[best]!) best = i;
  return best - from;
}

/** Each row's token is the argmax of `want` [B, V], or within a float32 near-tie of it (either may win). */
function assertGreedy(got: Int32Array, want: Float64Array, V: number, name: string): void {
  got.forEach((t, r) => {
    const best = argmax(want, r * V, (r + 1) * V);
    const gap = want[r * V + best]! - want[r * V + t]!;
    assert.ok(t === best || gap <= 1e-5 * Math.abs(want[r * V + best]!), `${name}, row ${r}: token ${t}, expected ${best}`);
  });
}

describe('CUDA penalties kernel', needCuda, () => {
  let n: CudaNative;
  let dev: DeviceHandles;

  before(() => {
    n = cudaNative()!;
    dev = new DeviceHandles(n);
  });
  after(() => {
    dev?.releaseAll();
  });

  /** index [cap, 2] and values [cap, 3] holding e (cap ≥ its length, the rest zero) and count. */
  const uploadEntries = (e: Entries, count: number, cap = e.rows.length): [number, number, number] => {
    const index = new Int32Array(cap * 2);
    const values = new Float32Array(cap * 3);
    e.rows.forEach((r, i) => {
      index.set([r, e.tokens[i]!], 2 * i);
      values.set([e.bias[i]!, e.rep[i]!, e.sub[i]!], 3 * i);
    });
    return [dev.upload(DType.I32, [cap, 2], index), dev.upload(DType.F32, [cap, 3], values), dev.upload(DType.I32, [1], Int32Array.of(count))];
  };
  const apply = (hl: number, [hi, hv, hc]: [number, number, number]): void => n.cudaOpApplyPenalties(hl, hi, hv, hc);
  const greedyTokens = (hl: number, B: number): Int32Array => {
    const packed = packSamplingRows(Array.from({ length: B }, () => ({ params: greedy, seed: 0, counter: 0 })));
    const hp = dev.upload(DType.F32, [B, 4], packed.params);
    const hs = dev.upload(DType.I32, [B, 2], packed.seeds);
    const ho = n.cudaOpSample(hl, hp, hs);
    const out = n.cudaDownload(ho) as Int32Array;
    n.cudaRelease(ho);
    dev.release(hp, hs);
    return out;
  };
  /** |got − want| within 1e-6 of the operands' magnitudes (float32 rounding of each stage is ~1e-7). */
  const assertClose = (got: Float32Array, want: Float64Array, x: Float32Array, V: number, e: Entries, name: string): void => {
    const scale = new Float64Array(got.length).map((_, i) => Math.abs(x[i]!));
    e.rows.forEach((r, i) => {
      const j = r * V + e.tokens[i]!;
      scale[j] = (Math.abs(x[j]!) + Math.abs(e.bias[i]!)) * Math.max(e.rep[i]!, 1 / e.rep[i]!) + Math.abs(e.sub[i]!);
    });
    for (let i = 0; i < got.length; i++) {
      assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6 * scale[i]!, `${name}: logit ${i} (row ${Math.floor(i / V)}) is ${got[i]}, expected ${want[i]}`);
    }
  };

  it('random entries: each penalised logit equals the float64 transform, every other logit is unchanged', () => {
    const B = 6;
    const V = 32000;
    const seed = freshSeed();
    const x = randn(B * V, seed, 4);
    const e = randomEntries(B, V, 700, seed);
    const valid = e.rows.length;
    // Entries outside [B, V] (before e) and past the count (after it; they would change logits) do nothing.
    const outside: [number, number][] = [[0, V], [0, V + 5], [B, 0], [-1, 3], [2, -1]];
    const extra = randomEntries(B, V, 50, seed + 1);
    const fresh = extra.rows.map((r, i) => !e.rows.some((r2, j) => r2 === r && e.tokens[j] === extra.tokens[i]));
    const all: Entries = {
      rows: [...outside.map((o) => o[0]), ...e.rows, ...extra.rows.filter((_, i) => fresh[i])],
      tokens: [...outside.map((o) => o[1]), ...e.tokens, ...extra.tokens.filter((_, i) => fresh[i])],
      bias: [...outside.map(() => 50), ...e.bias, ...extra.bias.filter((_, i) => fresh[i])],
      rep: [...outside.map(() => 2), ...e.rep, ...extra.rep.filter((_, i) => fresh[i])],
      sub: [...outside.map(() => 1), ...e.sub, ...extra.sub.filter((_, i) => fresh[i])],
    };
    const hl = dev.upload(DType.F32, [B, V], x);
    const bufs = uploadEntries(all, outside.length + valid, all.rows.length + 100);
    apply(hl, bufs);
    const got = n.cudaDownload(hl) as Float32Array;
    const want = expectedLogits(x, V, e);
    dev.release(hl, ...bufs);
    assertClose(got, want, x, V, e, `seed ${seed}`);
    const changed = got.reduce((c, v, i) => c + (v !== x[i] ? 1 : 0), 0);
    assert.ok(changed > 0.6 * valid && changed <= valid, `${changed} logits changed for ${valid} entries`);
  });

  it('count 0 leaves the logits untouched (full buffers), and so does a negative count', () => {
    const B = 3;
    const V = 1000;
    const seed = freshSeed();
    const x = randn(B * V, seed, 2);
    const e = randomEntries(B, V, 100, seed);
    const hl = dev.upload(DType.F32, [B, V], x);
    for (const count of [0, -4]) {
      const bufs = uploadEntries(e, count);
      apply(hl, bufs);
      dev.release(...bufs);
      assert.deepEqual(n.cudaDownload(hl), x, `count ${count}`);
    }
    dev.release(hl);
  });

  it('greedy sampling after the penalties picks the argmax of the float64-penalised logits', () => {
    const B = 16;
    const V = 50000;
    const seed = freshSeed();
    const u = uniformSampler(seed);
    const x = randn(B * V, seed, 3);
    const e = randomEntries(B, V, 200, seed);
    // Per row: the raw winner penalised hard, another token raised, so most winners change.
    for (let r = 0; r < B; r++) {
      const top = argmax(x, r * V, (r + 1) * V);
      let at = e.rows.findIndex((row, j) => row === r && e.tokens[j] === top);
      if (at < 0) {
        at = e.rows.length;
        e.rows.push(r);
      }
      e.tokens[at] = top; // appends where `at` is new
      [e.bias[at], e.rep[at], e.sub[at]] = [0, Math.fround(1.5), 2];
      let other = Math.floor(u() * V);
      while (other === top || e.rows.some((row, j) => row === r && e.tokens[j] === other)) other = Math.floor(u() * V);
      e.rows.push(r);
      e.tokens.push(other);
      e.bias.push(Math.fround(4 * u()));
      e.rep.push(1);
      e.sub.push(0);
    }
    const hl = dev.upload(DType.F32, [B, V], x);
    const bufs = uploadEntries(e, e.rows.length);
    apply(hl, bufs);
    const got = greedyTokens(hl, B);
    dev.release(hl, ...bufs);
    const want = expectedLogits(x, V, e);
    assertGreedy(got, want, V, `seed ${seed}`);
    let moved = 0;
    for (let r = 0; r < B; r++) if (argmax(want, r * V, (r + 1) * V) !== argmax(x, r * V, (r + 1) * V)) moved++;
    assert.ok(moved >= B / 2, `the penalties moved only ${moved}/${B} winners`);
  });

  it('a captured graph (penalties, then sampling) replays for new entries and counts in the same buffers', () => {
    const B = 8;
    const V = 4096;
    const cap = 2048;
    const seed = freshSeed();
    const hl = dev.upload(DType.F32, [B, V], new Float32Array(B * V));
    const bufs = uploadEntries(randomEntries(B, V, cap / B, seed), 0, cap);
    const packed = packSamplingRows(Array.from({ length: B }, () => ({ params: greedy, seed: 0, counter: 0 })));
    const hp = dev.upload(DType.F32, [B, 4], packed.params);
    const hs = dev.upload(DType.I32, [B, 2], packed.seeds);
    n.cudaRelease(n.cudaOpSample(hl, hp, hs)); // warms the pool: the capture allocates nothing new
    n.cudaCaptureBegin();
    let ho = -1;
    let graph = -1;
    try {
      apply(hl, bufs);
      ho = n.cudaOpSample(hl, hp, hs);
    } finally {
      graph = n.cudaCaptureEnd();
    }
    for (const [k, perRow] of [[1, 256], [2, 0], [3, 17], [4, 256]] as const) {
      const x = randn(B * V, seed + k, 3);
      const e = randomEntries(B, V, perRow, seed + k);
      for (let i = 0; i < e.rows.length; i++) e.bias[i] = Math.fround(e.bias[i]! / 10); // winners both kept and moved
      const index = new Int32Array(e.rows.flatMap((r, i) => [r, e.tokens[i]!]));
      const values = new Float32Array(e.rows.flatMap((_, i) => [e.bias[i]!, e.rep[i]!, e.sub[i]!]));
      n.cudaUpload(hl, x);
      n.cudaUpload(bufs[2], Int32Array.of(e.rows.length));
      if (e.rows.length > 0) {
        n.cudaUpload(bufs[0], index);
        n.cudaUpload(bufs[1], values);
      }
      n.cudaGraphReplay(graph);
      assertGreedy(n.cudaDownload(ho) as Int32Array, expectedLogits(x, V, e), V, `replay ${k} (seed ${seed})`);
    }
    n.cudaGraphRelease(graph);
    n.cudaRelease(ho);
    dev.release(hl, hp, hs, ...bufs);
  });

  it('bad inputs throw errors naming the op', () => {
    const hl = dev.upload(DType.F32, [2, 10], new Float32Array(20));
    const hi = dev.upload(DType.I32, [4, 2], new Int32Array(8));
    const hv = dev.upload(DType.F32, [4, 3], new Float32Array(12));
    const hc = dev.upload(DType.I32, [1], Int32Array.of(0));
    const flat = dev.upload(DType.F32, [20], new Float32Array(20));
    const hv5 = dev.upload(DType.F32, [5, 3], new Float32Array(15));
    const hiF = dev.upload(DType.F32, [4, 2], new Float32Array(8));
    const hc2 = dev.upload(DType.I32, [2], new Int32Array(2));
    assert.throws(() => n.cudaOpApplyPenalties(flat, hi, hv, hc), /apply_penalties: logits must be F32 \[B, V\]/);
    assert.throws(() => n.cudaOpApplyPenalties(hl, hiF, hv, hc), /apply_penalties: index must be I32 \[capacity, 2\]/);
    assert.throws(() => n.cudaOpApplyPenalties(hl, hi, hv5, hc), /apply_penalties: values must be F32 \[4, 3\]/);
    assert.throws(() => n.cudaOpApplyPenalties(hl, hi, hv, hc2), /apply_penalties: count must be I32 \[1\]/);
    assert.throws(() => n.cudaOpApplyPenalties(hl, hi, hv, 99999), /cudaOpApplyPenalties: argument 3/);
    dev.release(hl, hi, hv, hc, flat, hv5, hiF, hc2);
  });
});
