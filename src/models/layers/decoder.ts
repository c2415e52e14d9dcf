// A decoder-only transformer assembled from layer modules: token embedding, N pre-norm layers of
// (attention, feed-forward), final norm, LM head. Architecture files (llama.ts, qwen3-moe.ts) choose the
// modules per layer; this runs one engine step over them, whatever the mix of prefill and decode.
import type { Backend, Tensor } from '../../backend/backend.js';
import type { ModelConfig } from '../config.js';
import { flattenBatch, uploadStepInputs, type ForwardBatch, type StepTensors } from '../forward-batch.js';
import type { KvLayout, PagedKvCache } from '../kv-cache.js';
import type { SelfAttention } from './attention.js';
import type { FeedForward } from './mlp.js';
import { SparseMoe } from './moe.js';
import type { PlacedWeight, WeightLoader } from './weight-loader.js';

/** What the runner needs of any model. */
export interface CausalLM {
  readonly config: ModelConfig;
  /** What the paged cache holds per token per layer. */
  readonly kvLayout: KvLayout;
  readonly backend: Backend;
  /** One step: K/V stored, logits of the sequences that asked, read back to the host. */
  forward(batch: ForwardBatch, cache: PagedKvCache): Float32Array;
  /**
   * Issues one step's ops over inputs already on the device and returns the logits tensor ([rows of
   * inputs.logitRows, or every token's row without it, vocab]), or undefined when inputs.logitRows is null
   * (no sequence samples). Reads nothing back, so a CUDA graph can capture it; the caller ends the step.
   */
  forwardTensors(inputs: StepTensors, cache: PagedKvCache): Tensor | undefined;
  /** MoE models: sets (or clears) a probe that sees each layer's expert ids in eager steps. */
  setRoutingProbe?(fn: ((layer: number, ids: Tensor) => void) | undefined): void;
}

export interface DecoderLayer {
  /** HF module path ("model.layers.3"). */
  readonly path: string;
  readonly attnNorm: Tensor;
  readonly attention: SelfAttention;
  readonly ffnNorm: Tensor;
  readonly ffn: FeedForward;
}

export class DecoderModel implements CausalLM {
  readonly backend: Backend;
  private readonly tokenEmbd: Tensor;
  private readonly outputNorm: Tensor;
  private readonly output: Tensor;
  readonly layers: DecoderLayer[] = [];
  /** Every weight with its module path and device, in load order. */
  readonly placed: readonly PlacedWeight[];

  constructor(
    readonly config: ModelConfig,
    readonly kvLayout: KvLayout,
    w: WeightLoader,
    /** Builds layer l's attention and feed-forward modules (loading their weights, in file order). */
    layer: (l: number, path: string) => { attention: SelfAttention; ffn: FeedForward },
  ) {
    this.backend = w.backend;
    this.tokenEmbd = w.weight('model.embed_tokens', 'token_embd.weight');
    for (let l = 0; l < config.numLayers; l++) {
      const path = `model.layers.${l}`;
      const attnNorm = w.vector(`${path}.input_layernorm`, `blk.${l}.attn_norm.weight`);
      const ffnNorm = w.vector(`${path}.post_attention_layernorm`, `blk.${l}.ffn_norm.weight`);
      this.layers.push({ path, attnNorm, ffnNorm, ...layer(l, path) });
    }
    this.outputNorm = w.vector('model.norm', 'output_norm.weight');
    this.output = w.has('output.weight') ? w.weight('lm_head', 'output.weight') : this.tokenEmbd;
    this.placed = w.placed;
  }

  /** Sets (or clears) every MoE layer's routing probe: fn(layer, ids I32 [T, k]) per eager step. */
  setRoutingProbe(fn: ((layer: number, ids: Tensor) => void) | undefined): void {
    this.layers.forEach((layer, l) => {
      if (layer.ffn instanceof SparseMoe) layer.ffn.routingProbe = fn && ((ids) => fn(l, ids));
    });
  }

  forward(batch: ForwardBatch, cache: PagedKvCache): Float32Array {
    const b = this.backend;
    try {
      const flat = flattenBatch(batch, cache.shape.blockSize);
      if (flat.logitRows.length === 0) {
        this.forwardTensors(uploadStepInputs(b, flat, false), cache);
        return new Float32Array(0);
      }
      return b.read(this.forwardTensors(uploadStepInputs(b, flat, true), cache)!);
    } finally {
      b.endStep();
    }
  }

  forwardTensors(inputs: StepTensors, cache: PagedKvCache): Tensor | undefined {
    const b = this.backend;
    const eps = this.config.rmsNormEps;
    const x = b.embedding(this.tokenEmbd, inputs.ids);
    // Each layer's last residual add is carried into the next layer's first norm (addRmsNorm).
    let pending: Tensor | undefined;
    this.layers.forEach((layer, l) => {
      const h = pending ? b.addRmsNorm(x, pending, layer.attnNorm, eps) : b.rmsNorm(x, layer.attnNorm, eps);
      if (pending) b.free(pending);
      const o = layer.attention.forward(b, h, inputs.attention, cache.layer(l));
      b.free(h);
      const h2 = b.addRmsNorm(x, o, layer.ffnNorm, eps);
      b.free(o);
      pending = layer.ffn.forward(b, h2);
      b.free(h2);
    });
    if (pending) {
      b.addInPlace(x, pending);
      b.free(pending);
    }
    if (inputs.logitRows === null) return undefined;
    const last = inputs.logitRows ? b.gatherRows(x, inputs.logitRows) : x;
    const normed = b.rmsNorm(last, this.outputNorm, eps);
    return b.matmul(normed, this.output);
  }
}
