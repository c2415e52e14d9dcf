// The float64 MoE reference of the CUDA tests (test/cuda/moe-reference.ts) checked where no GPU is needed:
// its q8 rounding of the activations must be the CPU's (native/cpu/matmul.cpp), so that the device's GEMV
// path can be held to a tight tolerance against it; and its routing must follow the contract's tie rules.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DType } from '../src/backend/dtype.js';
import { loadNative } from '../src/backend/native.js';
import { expertsRef, roundF16, routeRef, type ExpertWeightsRef } from './cuda/moe-reference.js';
import { nmse, randn } from './cuda/helpers.js';

describe('float64 MoE reference (for the CUDA tests)', () => {
  it('q8 rounding: the expert FFN equals a chain of the CPU q8 matmuls per slot', () => {
    const nat = loadNative();
    const [E, H, I, T, k] = [3, 512, 256, 5, 2];
    for (const [gt, dt] of [[DType.Q4_K, DType.Q6_K], [DType.Q8_0, DType.Q8_0], [DType.Q5_K, DType.Q5_K]] as const) {
      const make = (type: number, N: number, K: number, seed: number): { bytes: Uint8Array; ref: ExpertWeightsRef } => {
        const bytes = nat.quantize(type, randn(E * N * K, seed, 1 / Math.sqrt(K)));
        return { bytes, ref: { type, values: nat.dequantize(type, bytes, E * N * K), E, N, K } };
      };
      const [g, u, d] = [make(gt, I, H, 1), make(gt, I, H, 2), make(dt, H, I, 3)];
      const x = randn(T * H, 9, 2);
      const ids = Int32Array.from([0, 2, 1, 0, 2, 1, 1, 2, 0, 1]);
      const w = Float32Array.from([0.5, 0.25, 1, 2, 0.3, 0.7, 1, 1, 0.1, 0.9]);
      const expert = (b: Uint8Array, e: number): Uint8Array => b.subarray((e * b.length) / E, ((e + 1) * b.length) / E);
      const want = new Float64Array(T * H);
      for (let t = 0; t < T; t++)
        for (let j = 0; j < k; j++) {
          const e = ids[t * k + j]!;
          const xt = x.subarray(t * H, (t + 1) * H);
          const gv = nat.matmulRaw(xt, 1, H, expert(g.bytes, e), gt, I);
          const uv = nat.matmulRaw(xt, 1, H, expert(u.bytes, e), gt, I);
          const h = Float32Array.from(gv, (v, i) => (v / (1 + Math.exp(-v))) * uv[i]!);
          const y = nat.matmulRaw(h, 1, I, expert(d.bytes, e), dt, H);
          for (let i = 0; i < H; i++) want[t * H + i] = want[t * H + i]! + w[t * k + j]! * y[i]!;
        }
      const e = nmse(expertsRef(x, T, ids, w, k, g.ref, u.ref, d.ref, 'q8'), want);
      assert.ok(e <= 1e-10, `types ${gt}/${dt}: NMSE ${e}`);
    }
  });

  it('float16 rounding: ties to even, subnormals', () => {
    assert.deepEqual([2049, 2051, 1 / 3, 65504, 1e-5].map(roundF16), [2048, 2052, 0.333251953125, 65504, 168 * 2 ** -24]);
  });

  it('routing: ties choose the lower expert and the lower group; the bias chooses but does not weigh', () => {
    const spec = { scoring: 'sigmoid', topK: 4, numGroups: 4, topKGroups: 2, groupScore: 'top2sum', normalize: false, scale: 1 } as const;
    const r = routeRef(new Float32Array(16), 1, 16, spec, Float32Array.from({ length: 16 }, (_, e) => (e === 13 ? 1 : 0)));
    assert.deepEqual(Array.from(r.ids), [13, 0, 1, 2]); // group 3 (expert 13) first, then group 0 on the tie
    assert.deepEqual(Array.from(r.weights), [0.5, 0.5, 0.5, 0.5]);
  });
});
