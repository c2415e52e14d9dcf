// Host side of sampling on the device (native/cuda/sample.cu): which requests the kernel serves exactly, and
// the per-row inputs it takes — params F32 [B, 4] (temperature, topK, topP, minP) and seeds I32 [B, 2].
import { getRandomValues } from 'node:crypto';
import { SplitMix64 } from './rng.js';
import type { SamplingParams } from './sampling-params.js';

/** Columns of one row of the kernel's params tensor. */
export const GPU_SAMPLING_PARAMS = 4;
/** Columns of one row of the kernel's seeds tensor: (seed, counter). */
export const GPU_SAMPLING_SEEDS = 2;

/**
 * True when the device kernel computes exactly this request's semantics: temperature, top-k, top-p and min-p
 * only. Penalties and logit_bias need per-request token history, logprobs the whole distribution: such
 * requests sample on the host.
 */
export function gpuSamplable(p: SamplingParams): boolean {
  return p.logitBias.size === 0 && p.repetitionPenalty === 1 && p.presencePenalty === 0 && p.frequencyPenalty === 0 && p.logprobs === 0;
}

export interface GpuSamplingRow {
  params: SamplingParams;
  /** The request's 32-bit seed (requestSeed). */
  seed: number;
  /** Which draw of the request this is (0 for its first token, then 1, 2…): same seed and counter → same token. */
  counter: number;
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
