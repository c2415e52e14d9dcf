// Host side of sampling on the device (native/cuda/sample.cu, penalties.cu): which requests the kernels serve
// exactly, and the per-row inputs they take — params F32 [B, 4] (temperature, topK, topP, minP), seeds I32
// [B, 2], and the penalty entries: index I32 [n, 2] (row, token), values F32 [n, 3] (bias, repetition, subtract).
import { getRandomValues } from 'node:crypto';
import { SplitMix64 } from './rng.js';
import type { PenaltyVisitor } from './sampler.js';
import type { SamplingParams } from './sampling-params.js';

/** Columns of one row of the kernel's params tensor. */
export const GPU_SAMPLING_PARAMS = 4;
/** Columns of one row of the kernel's seeds tensor: (seed, counter). */
export const GPU_SAMPLING_SEEDS = 2;
/** Columns of one penalty entry: index (row, token), values (bias, repetition, subtract). */
export const GPU_PENALTY_INDEX = 2;
export const GPU_PENALTY_VALUES = 3;

/**
 * True when the device kernels compute exactly this request's semantics: everything but logprobs, which
 * needs the whole distribution read back (such requests sample on the host).
 */
export function gpuSamplable(p: SamplingParams): boolean {
  return p.logprobs === 0;
}

/** Where a row's logit_bias and penalties come from: its request's SequenceSampler, whose history it reads. */
export interface PenaltySource {
  penaltyEntries(visit: PenaltyVisitor): void;
}

export interface GpuSamplingRow {
  params: SamplingParams;
  /** The request's 32-bit seed (requestSeed). */
  seed: number;
  /** Which draw of the request this is (0 for its first token, then 1, 2…): same seed and counter → same token. */
  counter: number;
  /** The request's logit_bias and penalties over its tokens so far (absent: none). */
  penalties?: PenaltySource;
}

/** Penalty entries of a step, exactly `count` long. */
export interface PackedPenalties {
  count: number;
  /** (row, token) per entry, row being the index in the step's sampling rows. */
  index: Int32Array;
  /** (bias, repetition factor or 1, amount subtracted) per entry. */
  values: Float32Array;
}

/** The penalty kernel's entries for `rows`; entries that change nothing are left out. */
export function packPenalties(rows: readonly GpuSamplingRow[]): PackedPenalties {
  let index = new Int32Array(0);
  let values = new Float32Array(0);
  let n = 0;
  rows.forEach((row, r) => {
    row.penalties?.penaltyEntries((token, bias, repetition, subtract) => {
      if (bias === 0 && repetition === 1 && subtract === 0) return;
      if (n * GPU_PENALTY_INDEX === index.length) {
        const grown = Math.max(64, 2 * n);
        index = grow(index, new Int32Array(grown * GPU_PENALTY_INDEX));
        values = grow(values, new Float32Array(grown * GPU_PENALTY_VALUES));
      }
      index[n * GPU_PENALTY_INDEX] = r;
      index[n * GPU_PENALTY_INDEX + 1] = token;
      values[n * GPU_PENALTY_VALUES] = bias;
      values[n * GPU_PENALTY_VALUES + 1] = repetition;
      values[n * GPU_PENALTY_VALUES + 2] = subtract;
      n++;
    });
  });
  return { count: n, index: index.subarray(0, n * GPU_PENALTY_INDEX), values: values.subarray(0, n * GPU_PENALTY_VALUES) };
}

function grow<T extends Int32Array | Float32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/**
 * The kernel's two inputs for `rows`, padded with greedy rows (seed 0) up to `padTo` rows (a CUDA graph's
 * batch size). topK ≤ 0 and topP 1 are passed as they are: the kernel treats them as off.
 */
export function packSamplingRows(rows: readonly GpuSamplingRow[], padTo = rows.length): { params: Float32Array; seeds: Int32Array } {
  const n = Math.max(rows.length, padTo);
  const params = new Float32Array(n * GPU_SAMPLING_PARAMS);
  const seeds = new Int32Array(n * GPU_SAMPLING_SEEDS);
  for (let r = 0; r < n; r++) {
    const row = rows[r];
    const o = r * GPU_SAMPLING_PARAMS;
    if (!row) {
      params.set([0, 0, 1, 0], o); // greedy: temperature 0
      continue;
    }
    const p = row.params;
    params[o] = p.temperature;
    // A topK beyond float precision is still ≥ V in float, which the kernel reads as off.
    params[o + 1] = p.topK;
    params[o + 2] = p.topP;
    params[o + 3] = p.minP;
    seeds[r * GPU_SAMPLING_SEEDS] = row.seed | 0;
    seeds[r * GPU_SAMPLING_SEEDS + 1] = row.counter | 0;
  }
  return { params, seeds };
}

/**
 * A request's 32-bit seed for the kernel: from `params.seed` (any safe integer, folded through splitmix64 so
 * nearby seeds give unrelated streams), or from the OS when the request gave none.
 */
export function requestSeed(p: Pick<SamplingParams, 'seed'>): number {
  if (p.seed === undefined) return getRandomValues(new Int32Array(1))[0]!;
  return Number(BigInt.asIntN(32, new SplitMix64(BigInt(p.seed)).next()));
}
