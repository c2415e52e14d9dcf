// Llama-family decoder (Llama 2/3, Mistral, Qwen3 with q/k norm) over the backend interface.
// One forward pass serves a whole engine step: prefill chunks and decodes of many sequences.
import type { Backend, Tensor } from '../backend/backend.js';
import { readWeightF32 } from '../backend/host-weights.js';
import type { ModelConfig } from './config.js';
import { flattenBatch, uploadStepInputs, type ForwardBatch, type StepTensors } from './forward-batch.js';
import type { PagedKvCache } from './kv-cache.js';
import { modelInvFreq } from './rope.js';
import type { WeightSource } from './weights.js';

interface LayerWeights {
  attnNorm: Tensor;
  wq: Tensor;
  wk: Tensor;
  wv: Tensor;
  wo: Tensor;
  qNorm: Tensor | undefined;
  kNorm: Tensor | undefined;
  ffnNorm: Tensor;
  wGate: Tensor;
  wUp: Tensor;
  wDown: Tensor;
}

export interface LoadProgress {
  (loadedBytes: number, totalBytes: number): void;
}

export class LlamaModel {
  private readonly layers: LayerWeights[] = [];
  private readonly tokenEmbd: Tensor;
  private readonly outputNorm: Tensor;
  private readonly output: Tensor;
  private readonly invFreq: Tensor;
  /** GGUF Llama weights have q/k rows permuted for adjacent-pair RoPE; HF weights use rotate_half. */
  private readonly interleavedRope: boolean;

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    weights: WeightSource,
    onProgress?: LoadProgress,
  ) {
    const total = weights.names().reduce((n, name) => n + weights.get(name).byteLength, 0);
    let loaded = 0;
    const big = (name: string): Tensor => {
      const loc = weights.get(name);
      loaded += loc.byteLength;
      onProgress?.(loaded, total);
      return backend.loadWeight(loc);
    };
    const small = (name: string): Tensor => {
      const loc = weights.get(name);
      loaded += loc.byteLength;
      return backend.constantF32(readWeightF32(loc), [loc.shape.reduce((a, b) => a * b, 1)]);
    };
    this.tokenEmbd = big('token_embd.weight');
    for (let i = 0; i < config.numLayers; i++) {
      const p = `blk.${i}.`;
      this.layers.push({
        attnNorm: small(`${p}attn_norm.weight`),
        wq: big(`${p}attn_q.weight`),
        wk: big(`${p}attn_k.weight`),
        wv: big(`${p}attn_v.weight`),
        wo: big(`${p}attn_output.weight`),
        qNorm: config.qkNorm ? small(`${p}attn_q_norm.weight`) : undefined,
        kNorm: config.qkNorm ? small(`${p}attn_k_norm.weight`) : undefined,
        ffnNorm: small(`${p}ffn_norm.weight`),
        wGate: big(`${p}ffn_gate.weight`),
        wUp: big(`${p}ffn_up.weight`),
        wDown: big(`${p}ffn_down.weight`),
      });
    }
    this.outputNorm = small('output_norm.weight');
    this.output = weights.has('output.weight') ? big('output.weight') : this.tokenEmbd;
    const inv = modelInvFreq(config, weights);
    this.invFreq = backend.constantF32(inv, [inv.length]);
    this.interleavedRope = weights.format === 'gguf' && config.architecture === 'llama';
  }

  /** Floats per token per layer in K (and V) of the KV cache. */
  get kvWidth(): number {
    return this.config.numKvHeads * this.config.headDim;
  }

  /**
   * Runs one step. Stores every token's K/V into the cache and returns the logits of each
   * sequence that asked for them, rows in sequence order, as one [n, vocab] array.
   */
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

  /**
   * Issues one step's ops over inputs already on the device and returns the logits tensor
   * ([rows of inputs.logitRows, or every token's row without it, vocab]), or undefined when
   * inputs.logitRows is null (no sequence samples). Reads nothing back, so a CUDA graph can
   * capture it; the caller ends the step.
   */
  forwardTensors(inputs: StepTensors, cache: PagedKvCache): Tensor | undefined {
    const b = this.backend;
    const c = this.config;
    const x = b.embedding(this.tokenEmbd, inputs.ids);
    const scale = 1 / Math.sqrt(c.headDim);
    const attn = inputs.attention;
    // Each layer's last residual add is carried into the next layer's first norm (addRmsNorm).
    let pending: Tensor | undefined;
    this.layers.forEach((w, l) => {
      const h = pending ? b.addRmsNorm(x, pending, w.attnNorm, c.rmsNormEps) : b.rmsNorm(x, w.attnNorm, c.rmsNormEps);
      if (pending) b.free(pending);
      const qkv = b.matmulGroup(h, [w.wq, w.wk, w.wv]);
      let q = qkv[0]!;
      let k = qkv[1]!;
      const v = qkv[2]!;
      b.free(h);
      if (w.qNorm && w.kNorm) {
        const qn = b.rmsNorm(q, w.qNorm, c.rmsNormEps);
        const kn = b.rmsNorm(k, w.kNorm, c.rmsNormEps);
        b.free(q, k);
        q = qn;
        k = kn;
      }
      b.ropeStoreKv(q, k, v, cache.k[l]!, cache.v[l]!, attn.positions, attn.slots, this.invFreq, c.headDim, c.headDim, this.interleavedRope);
      const a = b.pagedAttention(q, cache.k[l]!, cache.v[l]!, attn, c.numKvHeads, scale);
      const o = b.matmul(a, w.wo);
      b.free(q, k, v, a);
      const h2 = b.addRmsNorm(x, o, w.ffnNorm, c.rmsNormEps);
      b.free(o);
      const m = b.matmulSiluMul(h2, w.wGate, w.wUp);
      pending = b.matmul(m, w.wDown);
      b.free(h2, m);
    });
    if (pending) {
      b.addInPlace(x, pending);
      b.free(pending);
    }
    if (inputs.logitRows === null) return undefined;
    const last = inputs.logitRows ? b.gatherRows(x, inputs.logitRows) : x;
    const normed = b.rmsNorm(last, this.outputNorm, c.rmsNormEps);
    return b.matmul(normed, this.output);
  }
}
