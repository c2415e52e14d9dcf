// Which model class runs which architecture. New families (Qwen3-MoE, DeepSeek) register here.
import type { Backend, Tensor } from '../backend/backend.js';
import type { ModelConfig } from './config.js';
import type { ForwardBatch, StepTensors } from './forward-batch.js';
import type { PagedKvCache } from './kv-cache.js';
import { LlamaModel, type LoadProgress } from './llama.js';
import type { WeightSource } from './weights.js';

/** What the runner needs of any model. */
export interface CausalLM {
  readonly config: ModelConfig;
  /** Floats per token per layer in K (and V) of the paged cache. */
  readonly kvWidth: number;
  readonly backend: Backend;
  /** One step: K/V stored, logits of the sequences that asked, read back to the host. */
  forward(batch: ForwardBatch, cache: PagedKvCache): Float32Array;
  /** One step over inputs already on the device; returns the logits tensor unread (see LlamaModel). */
  forwardTensors(inputs: StepTensors, cache: PagedKvCache): Tensor | undefined;
}

type Factory = (config: ModelConfig, backend: Backend, weights: WeightSource, onProgress?: LoadProgress) => CausalLM;

const factories: Record<ModelConfig['architecture'], Factory> = {
  llama: (c, b, w, p) => new LlamaModel(c, b, w, p),
  qwen3: (c, b, w, p) => new LlamaModel(c, b, w, p),
};

export function createModel(config: ModelConfig, backend: Backend, weights: WeightSource, onProgress?: LoadProgress): CausalLM {
  return factories[config.architecture](config, backend, weights, onProgress);
}
