// A sparse mixture-of-experts feed-forward block: the router picks each token's experts and weights on
// the device (no host sync, so decode graphs capture it), the routed experts run as one backend op over
// their 3-D weights, and shared experts (DeepSeek) add a dense MLP. The routed experts are one
// separable unit (`RoutedExperts`): the hybrid CPU/GPU placement moves exactly that unit to another
// backend.
import type { Backend, ExpertWeights, RouterSpec, Tensor } from '../../backend/backend.js';
import type { MoeConfig } from '../config.js';
import { GatedMlp, type FeedForward } from './mlp.js';
import type { WeightLoader } from './weight-loader.js';

/** HF names of a MoE block after "model.layers.N." (router, shared experts) → canonical after "blk.N.". */
export const MOE_HF_NAMES = {
  'mlp.gate.weight': 'ffn_gate_inp.weight',
  'mlp.gate.e_score_correction_bias': 'exp_probs_b.bias',
  'mlp.shared_experts.gate_proj.weight': 'ffn_gate_shexp.weight',
  'mlp.shared_experts.up_proj.weight': 'ffn_up_shexp.weight',
  'mlp.shared_experts.down_proj.weight': 'ffn_down_shexp.weight',
} as const;

/** Per-expert HF names after "model.layers.N.mlp.experts.E." → the canonical 3-D stack after "blk.N.". */
export const EXPERT_HF_NAMES = {
  prefix: 'mlp.experts',
  parts: {
    'gate_proj.weight': 'ffn_gate_exps.weight',
    'up_proj.weight': 'ffn_up_exps.weight',
    'down_proj.weight': 'ffn_down_exps.weight',
  },
} as const;

export function routerSpec(moe: MoeConfig): RouterSpec {
  return {
    scoring: moe.scoring,
    topK: moe.topK,
    numGroups: moe.numGroups,
    topKGroups: moe.topKGroups,
    groupScore: moe.groupScore,
    normalize: moe.normalizeTopK,
    scale: moe.routedScale,
  };
}

/** One layer's routed experts on the backend that holds them. */
export class RoutedExperts {
  readonly weights: ExpertWeights;

  constructor(
    readonly path: string,
    w: WeightLoader,
    layer: number,
    readonly numExperts: number,
  ) {
    const p = `blk.${layer}.`;
    this.weights = {
      gate: w.weight(`${path}.gate_proj`, `${p}ffn_gate_exps.weight`),
      up: w.weight(`${path}.up_proj`, `${p}ffn_up_exps.weight`),
      down: w.weight(`${path}.down_proj`, `${p}ffn_down_exps.weight`),
    };
    const e = this.weights.gate.shape[0];
    if (this.weights.gate.shape.length !== 3 || e !== numExperts) {
      throw new Error(`${path}: expert weights ${this.weights.gate.shape.join('×')}, expected ${numExperts} experts`);
    }
  }

  forward(b: Backend, x: Tensor, ids: Tensor, weights: Tensor): Tensor {
    return b.moeExperts(x, ids, weights, this.weights);
  }
}

export class SparseMoe implements FeedForward {
  private readonly router: Tensor;
  private readonly selectionBias: Tensor | undefined;
  private readonly spec: RouterSpec;
  readonly experts: RoutedExperts;
  private readonly shared: GatedMlp | undefined;
  /**
   * Called with each eager step's expert ids I32 [T, k] (benchmarks count the distinct experts a step
   * touches). Never set while a graph is captured: reading ids back syncs with the device.
   */
  routingProbe: ((ids: Tensor) => void) | undefined;

  constructor(
    readonly path: string,
    w: WeightLoader,
    layer: number,
    moe: MoeConfig,
  ) {
    const p = `blk.${layer}.`;
    this.router = w.weight(`${path}.gate`, `${p}ffn_gate_inp.weight`);
    this.selectionBias = w.has(`${p}exp_probs_b.bias`) ? w.vector(`${path}.gate`, `${p}exp_probs_b.bias`) : undefined;
    this.spec = routerSpec(moe);
    this.experts = new RoutedExperts(`${path}.experts`, w, layer, moe.numExperts);
    this.shared = moe.sharedIntermediateSize > 0
      ? new GatedMlp(`${path}.shared_experts`, w, { gate: `${p}ffn_gate_shexp.weight`, up: `${p}ffn_up_shexp.weight`, down: `${p}ffn_down_shexp.weight` })
      : undefined;
  }

  forward(b: Backend, x: Tensor): Tensor {
    const logits = b.matmul(x, this.router);
    const { ids, weights } = b.moeRoute(logits, this.spec, this.selectionBias);
    b.free(logits);
    this.routingProbe?.(ids);
    const out = this.experts.forward(b, x, ids, weights);
    b.free(ids, weights);
    if (this.shared) {
      const s = this.shared.forward(b, x);
      b.addInPlace(out, s);
      b.free(s);
    }
    return out;
  }
}
