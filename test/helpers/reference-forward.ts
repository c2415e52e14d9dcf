// A plain float64 forward pass of the Llama family for tiny models: one sequence, whole
// prompt, no cache, no batching. It shares no kernel with the engine, so tests can hold the
// engine (paged, batched, chunked, multithreaded) against it.
import { readWeightF32 } from '../../src/backend/host-weights.js';
import type { ModelConfig } from '../../src/models/config.js';
import { modelInvFreq } from '../../src/models/layers/rope.js';
import type { WeightSource } from '../../src/models/weights.js';

export type Mat = { rows: number; cols: number; data: Float64Array };

function load(weights: WeightSource, name: string): Mat {
  const loc = weights.get(name);
  const f = readWeightF32(loc);
  const cols = loc.shape[loc.shape.length - 1] ?? 1;
  return { rows: f.length / cols, cols, data: Float64Array.from(f) };
}

export function matvec(w: Mat, x: Float64Array): Float64Array {
  const out = new Float64Array(w.rows);
  for (let r = 0; r < w.rows; r++) {
    let s = 0;
    const o = r * w.cols;
    for (let k = 0; k < w.cols; k++) s += w.data[o + k]! * x[k]!;
    out[r] = s;
  }
  return out;
}

export function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let off = 0; off < x.length; off += w.length) {
    let ss = 0;
    for (let i = 0; i < w.length; i++) ss += x[off + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / w.length + eps);
    for (let i = 0; i < w.length; i++) out[off + i] = x[off + i]! * inv * w[i]!;
  }
  return out;
}

function rope(x: Float64Array, pos: number, inv: Float32Array, headDim: number, interleaved: boolean): void {
  const half = headDim / 2;
  for (let h = 0; h < x.length / headDim; h++) {
    const o = h * headDim;
    for (let i = 0; i < half; i++) {
      const angle = pos * inv[i]!;
      const [a, b] = interleaved ? [o + 2 * i, o + 2 * i + 1] : [o + i, o + i + half];
      const x0 = x[a]!;
      const x1 = x[b]!;
      x[a] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
      x[b] = x1 * Math.cos(angle) + x0 * Math.sin(angle);
    }
  }
}

/** Logits [ids.length][vocab] of every position, float64. */
export function referenceForward(config: ModelConfig, weights: WeightSource, ids: number[]): Float64Array[] {
  const c = config;
  const vec = (name: string): Float64Array => load(weights, name).data;
  const inv = modelInvFreq(config, weights);
  const interleaved = weights.format === 'gguf' && c.architecture === 'llama';
  const emb = load(weights, 'token_embd.weight');
  let xs = ids.map((id) => emb.data.slice(id * emb.cols, (id + 1) * emb.cols));
  const group = c.numHeads / c.numKvHeads;
  for (let l = 0; l < c.numLayers; l++) {
    const p = `blk.${l}.`;
    const [wq, wk, wv, wo] = ['attn_q', 'attn_k', 'attn_v', 'attn_output'].map((n) => load(weights, `${p}${n}.weight`)) as [Mat, Mat, Mat, Mat];
    const attnNorm = vec(`${p}attn_norm.weight`);
    const qNorm = c.qkNorm ? vec(`${p}attn_q_norm.weight`) : undefined;
    const kNorm = c.qkNorm ? vec(`${p}attn_k_norm.weight`) : undefined;
    const qs: Float64Array[] = [];
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    xs.forEach((x, t) => {
      const h = rmsNorm(x, attnNorm, c.rmsNormEps);
      let q = matvec(wq, h);
      let k = matvec(wk, h);
      if (qNorm && kNorm) {
        q = rmsNorm(q, qNorm, c.rmsNormEps);
        k = rmsNorm(k, kNorm, c.rmsNormEps);
      }
      rope(q, t, inv, c.headDim, interleaved);
      rope(k, t, inv, c.headDim, interleaved);
      qs.push(q);
      ks.push(k);
      vs.push(matvec(wv, h));
    });
    xs = xs.map((x, t) => {
      const attn = new Float64Array(c.numHeads * c.headDim);
      for (let h = 0; h < c.numHeads; h++) {
        const kvOff = Math.floor(h / group) * c.headDim;
        const scores = ks.slice(0, t + 1).map((k) => {
          let s = 0;
          for (let d = 0; d < c.headDim; d++) s += qs[t]![h * c.headDim + d]! * k[kvOff + d]!;
          return s / Math.sqrt(c.headDim);
        });
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= t; j++) {
          for (let d = 0; d < c.headDim; d++) attn[h * c.headDim + d]! += (e[j]! / sum) * vs[j]![kvOff + d]!;
        }
      }
      const o = matvec(wo, attn);
      return x.map((v, i) => v + o[i]!);
    });
    const ffnNorm = vec(`${p}ffn_norm.weight`);
    const [wg, wu, wd] = ['ffn_gate', 'ffn_up', 'ffn_down'].map((n) => load(weights, `${p}${n}.weight`)) as [Mat, Mat, Mat];
    xs = xs.map((x) => {
      const h = rmsNorm(x, ffnNorm, c.rmsNormEps);
      const g = matvec(wg, h);
      const u = matvec(wu, h);
      const m = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!);
      const d = matvec(wd, m);
      return x.map((v, i) => v + d[i]!);
    });
  }
  const outNorm = vec('output_norm.weight');
  const out = weights.has('output.weight') ? load(weights, 'output.weight') : emb;
  return xs.map((x) => matvec(out, rmsNorm(x, outNorm, c.rmsNormEps)));
}
