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

// Hugging Face tensor names (per layer parts after "model.layers.N.") → GGUF names.
const hfLayerParts: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};
const hfGlobal: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

export function hfToCanonical(name: string): string | undefined {
  const g = hfGlobal[name];
  if (g) return g;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  const part = hfLayerParts[m[2] ?? ''];
  return part ? `blk.${m[1]}.${part}` : undefined;
}

export class SafetensorsWeights implements WeightSource {
  readonly format = 'safetensors';
  readonly description: string;
  private readonly byName = new Map<string, WeightLocation>();
  constructor(model: SafetensorsModel) {
    this.description = model.files.join(', ');
    for (const t of model.tensors.values()) {
      const canonical = hfToCanonical(t.name);
      if (!canonical) continue;
      const dtype = dtypeFromSafetensors(t.dtype);
      if (dtype === undefined) throw new MissingWeightError(`tensor "${t.name}" in ${t.file} has dtype ${t.dtype}, which ktserve cannot compute with`);
      this.byName.set(canonical, { file: t.file, offset: t.offset, byteLength: t.byteLength, dtype, shape: [...t.shape] });
    }
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
