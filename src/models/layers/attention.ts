// Grouped-query self-attention over the paged KV cache (Llama, Mistral, Qwen3 with q/k norm): the q/k/v
// projections in one group, optional per-head RMSNorm of q and k, RoPE with the cache write, paged
// attention, the output projection. The model's KV layout is per-head K and V (perHeadKvLayout).
import type { AttentionInputs, Backend, Tensor } from '../../backend/backend.js';
import type { Rope } from './rope.js';
import type { WeightLoader } from './weight-loader.js';

/** The attention half of a decoder layer: normed x [T, H] → its contribution to the residual [T, H]. */
export interface SelfAttention {
  /** HF module path ("model.layers.3.self_attn"). */
  readonly path: string;
  /** `cache`: this layer's tensors of the paged KV cache, in the model's KV layout order. */
  forward(b: Backend, x: Tensor, step: AttentionInputs, cache: readonly Tensor[]): Tensor;
}

/** HF names of the attention after "model.layers.N." → canonical after "blk.N.". */
export const ATTENTION_HF_NAMES = {
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.bias': 'attn_v.bias',
} as const;

export interface GqaShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3). */
  qkNorm: boolean;
}

export class GqaAttention implements SelfAttention {
  private readonly wq: Tensor;
  private readonly wk: Tensor;
  private readonly wv: Tensor;
  private readonly wo: Tensor;
  private readonly qNorm: Tensor | undefined;
  private readonly kNorm: Tensor | undefined;
  private readonly scale: number;

  constructor(
    readonly path: string,
    w: WeightLoader,
    layer: number,
    private readonly shape: GqaShape,
    private readonly rope: Rope,
  ) {
    const p = `blk.${layer}.`;
    this.wq = w.weight(`${path}.q_proj`, `${p}attn_q.weight`);
    this.wk = w.weight(`${path}.k_proj`, `${p}attn_k.weight`);
    this.wv = w.weight(`${path}.v_proj`, `${p}attn_v.weight`);
    this.wo = w.weight(`${path}.o_proj`, `${p}attn_output.weight`);
    this.qNorm = shape.qkNorm ? w.vector(`${path}.q_norm`, `${p}attn_q_norm.weight`) : undefined;
    this.kNorm = shape.qkNorm ? w.vector(`${path}.k_norm`, `${p}attn_k_norm.weight`) : undefined;
    this.scale = 1 / Math.sqrt(shape.headDim);
  }

  forward(b: Backend, x: Tensor, step: AttentionInputs, cache: readonly Tensor[]): Tensor {
    const s = this.shape;
    const [kCache, vCache] = cache;
    if (!kCache || !vCache) throw new Error(`${this.path}: the KV cache has no K and V for this layer`);
    const qkv = b.matmulGroup(x, [this.wq, this.wk, this.wv]);
    let q = qkv[0]!;
    let k = qkv[1]!;
    const v = qkv[2]!;
    if (this.qNorm && this.kNorm) {
      const qn = b.rmsNorm(q, this.qNorm, s.rmsNormEps);
      const kn = b.rmsNorm(k, this.kNorm, s.rmsNormEps);
      b.free(q, k);
      q = qn;
      k = kn;
    }
    const r = this.rope;
    b.ropeStoreKv(q, k, v, kCache, vCache, step.positions, step.slots, r.invFreq, s.headDim, r.rotDim, r.interleaved);
    const a = b.pagedAttention(q, kCache, vCache, step, s.numKvHeads, this.scale);
    const o = b.matmul(a, this.wo);
    b.free(q, k, v, a);
    return o;
  }
}
