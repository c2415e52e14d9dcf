// Model weights by canonical (GGUF-style) name, whatever file format holds them.
// Hugging Face names are translated; shapes are reported row-major [N, K].
import type { WeightLocation } from '../backend/backend.js';
import { dtypeFromSafetensors } from '../backend/dtype.js';
import type { GgufModelFile } from '../formats/gguf.js';
import type { SafetensorsModel } from '../formats/safetensors.js';

export class MissingWeightError extends Error {
  override name = 'MissingWeightError';
}

export interface WeightSource {
  /** Files the weights come from, for messages. */
  readonly description: string;
  /** How weights are laid out: decides RoPE pairing for Llama (GGUF permutes q/k rows). */
  readonly format: 'gguf' | 'safetensors';
  has(name: string): boolean;
  get(name: string): WeightLocation;
  /** Every canonical tensor name. */
  names(): string[];
}

export class GgufWeights implements WeightSource {
  readonly format = 'gguf';
  readonly description: string;
  constructor(readonly file: GgufModelFile) {
    this.description = file.paths.join(', ');
  }
  has(name: string): boolean {
    return this.file.tensors.has(name);
  }
  get(name: string): WeightLocation {
    const t = this.file.tensors.get(name);
    if (!t) throw new MissingWeightError(`tensor "${name}" not found in ${this.description}`);
    return { file: t.file, offset: t.offset, byteLength: t.byteLength, dtype: t.type, shape: [...t.shape].reverse() };
  }
  names(): string[] {
    return [...this.file.tensors.keys()];
  }
}

/**
 * How an architecture's Hugging Face tensor names map to canonical (GGUF) ones. Each layer module
 * declares its part (layers/*.ts `hfNames`); the architecture file merges them.
 */
export interface HfNameTable {
  /** Whole names outside the layers ("model.embed_tokens.weight" → "token_embd.weight"). */
  global: Readonly<Record<string, string>>;
  /** A layer's names after "model.layers.N." → after "blk.N.". */
  layer: Readonly<Record<string, string>>;
  /**
   * Experts kept one tensor each ("mlp.experts.E.gate_proj.weight"): after "model.layers.N.<prefix>.E." →
   * the canonical 3-D stack after "blk.N." ("ffn_gate_exps.weight"), expert E its E-th slice.
   */
  experts?: { prefix: string; parts: Readonly<Record<string, string>> };
}

/** The names of the Llama-family decoders' whole-model tensors. */
export const HF_GLOBAL_NAMES: Readonly<Record<string, string>> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

/** The canonical name of a HF tensor, and for a per-expert tensor its expert index. */
export function hfToCanonical(name: string, table: HfNameTable): { name: string; expert?: number } | undefined {
  const g = table.global[name];
  if (g) return { name: g };
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  const rest = m[2] ?? '';
  const part = table.layer[rest];
  if (part) return { name: `blk.${m[1]}.${part}` };
  const ex = table.experts;
  if (ex && rest.startsWith(`${ex.prefix}.`)) {
    const e = /^(\d+)\.(.+)$/.exec(rest.slice(ex.prefix.length + 1));
    const stacked = e ? ex.parts[e[2] ?? ''] : undefined;
    if (e && stacked) return { name: `blk.${m[1]}.${stacked}`, expert: Number(e[1]) };
  }
  return undefined;
}

export class SafetensorsWeights implements WeightSource {
  readonly format = 'safetensors';
  readonly description: string;
  private readonly byName = new Map<string, WeightLocation>();
  constructor(model: SafetensorsModel, table: HfNameTable) {
    this.description = model.files.join(', ');
    const stacks = new Map<string, WeightLocation[]>();
    for (const t of model.tensors.values()) {
      const c = hfToCanonical(t.name, table);
      if (!c) continue;
      const dtype = dtypeFromSafetensors(t.dtype);
      if (dtype === undefined) throw new MissingWeightError(`tensor "${t.name}" in ${t.file} has dtype ${t.dtype}, which ktserve cannot compute with`);
      const loc: WeightLocation = { file: t.file, offset: t.offset, byteLength: t.byteLength, dtype, shape: [...t.shape] };
      if (c.expert === undefined) {
        this.byName.set(c.name, loc);
        continue;
      }
      const parts = stacks.get(c.name) ?? [];
      parts[c.expert] = loc;
      stacks.set(c.name, parts);
    }
    for (const [name, parts] of stacks) this.byName.set(name, stackOf(name, parts, this.description));
  }
  has(name: string): boolean {
    return this.byName.has(name);
  }
  get(name: string): WeightLocation {
    const w = this.byName.get(name);
    if (!w) throw new MissingWeightError(`tensor "${name}" not found in ${this.description}`);
    return w;
  }
  names(): string[] {
    return [...this.byName.keys()];
  }
}

/** One 3-D weight [E, N, K] from its experts' [N, K] pieces, which must all be there and alike. */
function stackOf(name: string, parts: WeightLocation[], where: string): WeightLocation {
  const first = parts[0];
  for (let e = 0; e < parts.length; e++) {
    const p = parts[e];
    if (!p || !first) throw new MissingWeightError(`${where}: expert ${e} of "${name}" is missing`);
    if (p.dtype !== first.dtype || p.shape.join() !== first.shape.join()) {
      throw new MissingWeightError(`${where}: expert ${e} of "${name}" is ${p.shape.join('×')} (dtype ${p.dtype}), expert 0 ${first.shape.join('×')} (dtype ${first.dtype})`);
    }
  }
  return {
    file: first!.file,
    offset: first!.offset,
    byteLength: parts.reduce((n, p) => n + p.byteLength, 0),
    dtype: first!.dtype,
    shape: [parts.length, ...first!.shape],
    parts,
  };
}
