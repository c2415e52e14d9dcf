// Inverse RoPE frequencies, including Llama 3's frequency-dependent scaling, computed in
// float32 steps as Hugging Face computes them so our angles round the same way.
import type { Tensor } from '../../backend/backend.js';
import { readWeightF32 } from '../../backend/host-weights.js';
import type { ModelConfig, RopeScaling } from '../config.js';
import type { WeightSource } from '../weights.js';

export function ropeInvFreq(rotDim: number, theta: number, scaling: RopeScaling | undefined): Float32Array {
  const half = rotDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / rotDim);
  if (!scaling) return inv;
  if (scaling.type === 'linear') return inv.map((f) => f / scaling.factor);
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
  const lowWavelen = originalMaxPositions / lowFreqFactor;
  const highWavelen = originalMaxPositions / highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / factor;
    const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** GGUF stores Llama 3 scaling as per-frequency divisors (tensor rope_freqs). */
export function applyRopeFreqFactors(inv: Float32Array, factors: Float32Array): Float32Array {
  if (factors.length !== inv.length) throw new Error(`rope_freqs has ${factors.length} entries, expected ${inv.length}`);
  return inv.map((f, i) => f / (factors[i] ?? 1));
}

/**
 * The model's inverse frequencies. A GGUF rope_freqs tensor already encodes Llama 3's scaling
 * (its converter writes the divisors), so config scaling is not applied on top of it.
 */
export function modelInvFreq(config: ModelConfig, weights: WeightSource): Float32Array {
  if (weights.has('rope_freqs.weight')) {
    return applyRopeFreqFactors(ropeInvFreq(config.headDim, config.ropeTheta, undefined), readWeightF32(weights.get('rope_freqs.weight')));
  }
  return ropeInvFreq(config.headDim, config.ropeTheta, config.ropeScaling);
}

/**
 * A model's rotary position encoding: the inverse frequencies on the device, the rotated dims of each
 * head, and the pairing (GGUF Llama weights have q/k rows permuted for adjacent pairs; HF uses rotate_half).
 */
export interface Rope {
  invFreq: Tensor;
  rotDim: number;
  interleaved: boolean;
}
