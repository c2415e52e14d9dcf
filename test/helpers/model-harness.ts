// Runs the fixture models on any backend the way the golden tests need: logits at every
// position, last-position logits of a chunked prefill, greedy continuations. Shared by the
// CPU tests and the CUDA tests so both hold their backend to the same oracles.
import assert from 'node:assert/strict';
import type { Backend } from '../../src/backend/backend.js';
import { PagedKvCache } from '../../src/models/kv-cache.js';
import { openModelFiles } from '../../src/models/model-files.js';
import { createModel, type CausalLM } from '../../src/models/registry.js';
import { decodeF32, fixturePath, readFixtureJson } from '../fixtures.js';

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
    return new PagedKvCache(this.backend, { numLayers: model.config.numLayers, numBlocks: blocks, blockSize: 16, layout: model.kvLayout });
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

/**
 * Holds a model's logits on every fixture prompt of `dir` against Hugging Face's: argmax equal
 * wherever HF's top-1 margin exceeds 1e-3, greedy16 equal. Returns the worst last-4 max abs diff.
 */
export function compareWithHf(h: ModelHarness, model: CausalLM, dir: string): number {
  const refs = readFixtureJson<Refs>(dir, 'refs.json');
  const V = model.config.vocabSize;
  let worst = 0;
  for (const p of refs.prompts) {
    const hf = refs.hf.per_prompt.find((x) => x.id === p.id)!;
    const rows = h.allLogits(model, p.ids);
    const want = decodeF32(hf.last4_logits);
    for (let r = 0; r < 4; r++) worst = Math.max(worst, maxAbsDiff(rows[p.ids.length - 4 + r]!, want.subarray(r * V, (r + 1) * V)));
    rows.forEach((row, i) => {
      if (hf.top1_minus_top2![i]! > 1e-3) assert.equal(argmax(row), hf.argmax[i], `${p.id}: argmax at position ${i}`);
    });
    assert.deepEqual(h.greedy(model, p.ids, 16), hf.greedy16, `${p.id}: greedy16`);
  }
  return worst;
}

/**
 * Holds a model's last-4 logits on every fixture prompt of `dir` against llama.cpp's for `file`:
 * argmax equal where llama.cpp's top-1 margin exceeds 0.25. Returns the worst max abs diff.
 */
export function compareWithLlamaCpp(h: ModelHarness, model: CausalLM, dir: string, file: string): number {
  const refs = readFixtureJson<Refs>(dir, 'refs.json');
  const cpp = refs.llama_cpp[file]!;
  const V = model.config.vocabSize;
  let worst = 0;
  for (const p of refs.prompts) {
    const want = decodeF32(cpp.per_prompt.find((c) => c.id === p.id)!.last4_logits);
    const rows = h.allLogits(model, p.ids);
    for (let r = 0; r < 4; r++) {
      const got = rows[p.ids.length - 4 + r]!;
      const ref = want.subarray(r * V, (r + 1) * V);
      worst = Math.max(worst, maxAbsDiff(got, ref));
      const sorted = [...ref].sort((a, b) => b - a);
      if (sorted[0]! - sorted[1]! > 0.25) assert.equal(argmax(got), argmax(ref), `${p.id}: argmax at last4[${r}]`);
    }
  }
  return worst;
}
