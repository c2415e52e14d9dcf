// A plain float64 Qwen3-MoE FFN for tests, beside reference-forward.ts (whose matvec it uses): router logits,
// softmax top-k with the chosen weights renormalized (norm_topk_prob), and the weighted sum of the chosen
// experts' SwiGLU. It shares no kernel with the engine.
import { matvec, type Mat } from './reference-forward.js';

/** One layer's MoE weights: the router [experts × hidden] and each expert's gate/up [ffn × hidden], down [hidden × ffn]. */
export interface MoeWeights {
  router: Mat;
  gate: Mat[];
  up: Mat[];
  down: Mat[];
}

/** Splits a merged GGUF expert tensor (ne = [cols, rows, experts]) into one matrix per expert. */
export function expertMats(data: Float32Array, rows: number, cols: number): Mat[] {
  const n = rows * cols;
  return Array.from({ length: data.length / n }, (_, e) => ({ rows, cols, data: Float64Array.from(data.subarray(e * n, (e + 1) * n)) }));
}

/** The k largest logits' experts, best first, with their softmax probabilities renormalized over the k. */
export function topKSoftmax(logits: Float64Array, k: number): { experts: number[]; weights: number[] } {
  const experts = Array.from({ length: logits.length }, (_, e) => e).sort((a, b) => logits[b]! - logits[a]!).slice(0, k);
  const max = logits[experts[0]!]!;
  const p = experts.map((e) => Math.exp(logits[e]! - max));
  const sum = p.reduce((a, b) => a + b, 0);
  return { experts, weights: p.map((v) => v / sum) };
}

/** The MoE FFN's output for the (already normed) input `x`. */
export function moeFfn(w: MoeWeights, x: Float64Array, used: number): Float64Array {
  const y = new Float64Array(x.length);
  const { experts, weights } = topKSoftmax(matvec(w.router, x), used);
  experts.forEach((e, j) => {
    const u = matvec(w.up[e]!, x);
    const act = matvec(w.gate[e]!, x).map((g, r) => (g / (1 + Math.exp(-g))) * u[r]!);
    const out = matvec(w.down[e]!, act);
    for (let o = 0; o < y.length; o++) y[o] = y[o]! + weights[j]! * out[o]!;
  });
  return y;
}
