// Generation for one request without the scheduler (the `generate` command and tests):
// chunked prefill, then decode, over a private run of KV blocks.
import type { PagedKvCache } from '../models/kv-cache.js';
import type { CausalLM } from '../models/registry.js';
import { SequenceSampler } from './sampler.js';
import type { SamplingParams } from './sampling-params.js';

export interface GenerateOptions {
  maxNewTokens: number;
  sampling: SamplingParams;
  stopIds: ReadonlySet<number>;
  /** Prompt tokens per forward pass (chunked prefill). */
  chunkSize: number;
  /** Called with each new token; return false to stop early. */
  onToken?: (id: number) => boolean | void;
}

export interface GenerateResult {
  ids: number[];
  finishReason: 'stop' | 'length';
}

export class ContextOverflowError extends Error {
  override name = 'ContextOverflowError';
}

export function generate(model: CausalLM, cache: PagedKvCache, promptIds: number[], opts: GenerateOptions): GenerateResult {
  if (promptIds.length === 0) throw new Error('generate: empty prompt');
  const { blockSize } = cache.shape;
  const need = promptIds.length + opts.maxNewTokens;
  if (need > cache.tokens) {
    throw new ContextOverflowError(`prompt (${promptIds.length} tokens) + max_new_tokens (${opts.maxNewTokens}) = ${need} exceeds the KV cache of ${cache.tokens} tokens`);
  }
  if (need > model.config.maxPositions) {
    throw new ContextOverflowError(`prompt (${promptIds.length} tokens) + max_new_tokens (${opts.maxNewTokens}) = ${need} exceeds the model's context of ${model.config.maxPositions}`);
  }
  const blockTable = Array.from({ length: Math.ceil(need / blockSize) }, (_, i) => i);
  const sampler = new SequenceSampler(opts.sampling, promptIds);
  let cached = 0;
  let logits: Float32Array = new Float32Array(0);
  while (cached < promptIds.length) {
    const chunk = promptIds.slice(cached, cached + opts.chunkSize);
    const last = cached + chunk.length === promptIds.length;
    logits = model.forward({ sequences: [{ cachedLen: cached, tokens: chunk, blockTable, wantLogits: last }] }, cache);
    cached += chunk.length;
  }
  const ids: number[] = [];
  for (;;) {
    const { token } = sampler.sample(logits);
    ids.push(token);
    if (opts.onToken?.(token) === false) return { ids, finishReason: 'stop' };
    if (opts.stopIds.has(token)) return { ids, finishReason: 'stop' };
    if (ids.length >= opts.maxNewTokens) return { ids, finishReason: 'length' };
    logits = model.forward({ sequences: [{ cachedLen: cached, tokens: [token], blockTable, wantLogits: true }] }, cache);
    cached += 1;
  }
}
