// Runs the fixture models on any backend the way the golden tests need: logits at every
// position, last-position logits of a chunked prefill, greedy continuations. Shared by the
// CPU tests and the CUDA tests so both hold their backend to the same oracles.
import type { Backend } from '../../src/backend/backend.js';
import { PagedKvCache } from '../../src/models/kv-cache.js';
import { openModelFiles } from '../../src/models/model-files.js';
import { createModel, type CausalLM } from '../../src/models/registry.js';
import { fixturePath } from '../fixtures.js';

export interface RefPrompt {
  id: string;
  argmax: number[];
  top1_minus_top2?: number[];
  greedy16: number[];
  last4_logits: string;
}

/** The parts of a fixture dir's refs.json the tests read. */
export interface Refs {
  prompts: { id: string; text: string; ids: number[]; add_special_tokens: boolean }[];
  hf: { per_prompt: RefPrompt[] };
  llama_cpp: Record<string, { shipped: boolean; per_prompt: RefPrompt[] }>;
}

const TABLE = Array.from({ length: 64 }, (_, i) => i);

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

/** Largest |a − b|; NaN anywhere counts as infinitely far. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Number.isNaN(a[i]!) ? Infinity : Math.abs(a[i]! - b[i]!));
  return m;
}

export class ModelHarness {
  constructor(readonly backend: Backend) {}

  /** A fixture model: HF safetensors of `dir`, or one of its GGUF files. */
  load(dir: string, gguf?: string): CausalLM {
    const files = openModelFiles({ modelPath: fixturePath(dir), ggufPath: gguf ? fixturePath(dir, gguf) : undefined });
    return createModel(files.config, this.backend, files.weights);
  }

  newCache(model: CausalLM, blocks = 64): PagedKvCache {
    return new PagedKvCache(this.backend, { numLayers: model.config.numLayers, numBlocks: blocks, blockSize: 16, width: model.kvWidth });
  }

  /** Logits at every prompt position, one decode step per token. */
  allLogits(model: CausalLM, ids: number[]): Float32Array[] {
    const cache = this.newCache(model);
    const rows: Float32Array[] = [];
    for (let t = 0; t < ids.length; t++) {
      const out = model.forward({ sequences: [{ cachedLen: t, tokens: [ids[t]!], blockTable: TABLE, wantLogits: true }] }, cache);
      rows.push(out.slice(0, model.config.vocabSize));
    }
    cache.dispose();
    return rows;
  }

  /** Last-position logits of a prefill in chunks of `chunk` tokens. */
  lastLogits(model: CausalLM, ids: number[], chunk: number): Float32Array {
    const cache = this.newCache(model);
    let out: Float32Array = new Float32Array(0);
    for (let c = 0; c < ids.length; c += chunk) {
      const tokens = ids.slice(c, c + chunk);
      out = model.forward({ sequences: [{ cachedLen: c, tokens, blockTable: TABLE, wantLogits: c + chunk >= ids.length }] }, cache);
    }
    cache.dispose();
    return out;
  }

  greedy(model: CausalLM, ids: number[], n: number): number[] {
    const cache = this.newCache(model);
    let logits = model.forward({ sequences: [{ cachedLen: 0, tokens: ids, blockTable: TABLE, wantLogits: true }] }, cache);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = argmax(logits);
      out.push(t);
      logits = model.forward({ sequences: [{ cachedLen: ids.length + i, tokens: [t], blockTable: TABLE, wantLogits: true }] }, cache);
    }
    cache.dispose();
    return out;
  }
}
