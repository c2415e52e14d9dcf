// The dense SwiGLU feed-forward block: down(silu(gate·x) ⊙ up·x). Also a MoE model's shared experts.
import type { Backend, Tensor } from '../../backend/backend.js';
import type { WeightLoader } from './weight-loader.js';

/** The part of a decoder layer after the attention: x [T, H] → [T, H]. */
export interface FeedForward {
  /** HF module path ("model.layers.3.mlp"). */
  readonly path: string;
  forward(b: Backend, x: Tensor): Tensor;
}

/** HF names of a dense MLP after "model.layers.N." → canonical after "blk.N.". */
export const MLP_HF_NAMES = {
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
} as const;

export class GatedMlp implements FeedForward {
  private readonly gate: Tensor;
  private readonly up: Tensor;
  private readonly down: Tensor;

  /** `names`: the canonical names of the three weights (a layer's MLP, or a MoE layer's shared experts). */
  constructor(
    readonly path: string,
    w: WeightLoader,
    names: { gate: string; up: string; down: string },
  ) {
    this.gate = w.weight(`${path}.gate_proj`, names.gate);
    this.up = w.weight(`${path}.up_proj`, names.up);
    this.down = w.weight(`${path}.down_proj`, names.down);
  }

  /** A layer's dense MLP under GGUF's names. */
  static ofLayer(path: string, w: WeightLoader, layer: number): GatedMlp {
    const p = `blk.${layer}.ffn_`;
    return new GatedMlp(path, w, { gate: `${p}gate.weight`, up: `${p}up.weight`, down: `${p}down.weight` });
  }

  forward(b: Backend, x: Tensor): Tensor {
    const m = b.matmulSiluMul(x, this.gate, this.up);
    const out = b.matmul(m, this.down);
    b.free(m);
    return out;
  }
}
