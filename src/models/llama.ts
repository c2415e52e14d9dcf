// The Llama family (Llama 2/3, Mistral, Qwen3 with q/k norm): grouped-query attention and a dense
// SwiGLU MLP in every layer. Owns its config reading and Hugging Face weight names.
import type { Backend } from '../backend/backend.js';
import { hfBaseConfig, ggufBaseConfig, ModelConfigError, type ModelConfig } from './config.js';
import type { Architecture } from './architecture.js';
import { ATTENTION_HF_NAMES, GqaAttention } from './layers/attention.js';
import { DecoderModel } from './layers/decoder.js';
import { GatedMlp, MLP_HF_NAMES } from './layers/mlp.js';
import { modelInvFreq, type Rope } from './layers/rope.js';
import { WeightLoader, type LoadProgress } from './layers/weight-loader.js';
import { perHeadKvLayout } from './kv-cache.js';
import { HF_GLOBAL_NAMES, type HfNameTable, type WeightSource } from './weights.js';

/** The names every Llama-like decoder layer has: input/post-attention norms, attention, and `ffn`'s. */
export function decoderHfNames(ffn: Readonly<Record<string, string>>, experts?: HfNameTable['experts']): HfNameTable {
  return {
    global: HF_GLOBAL_NAMES,
    layer: {
      'input_layernorm.weight': 'attn_norm.weight',
      'post_attention_layernorm.weight': 'ffn_norm.weight',
      ...ATTENTION_HF_NAMES,
      ...ffn,
    },
    ...(experts ? { experts } : {}),
  };
}

/** The rotary encoding of a per-head model: GGUF Llama weights pair adjacent dims (rows permuted at conversion). */
export function headRope(config: ModelConfig, backend: Backend, weights: WeightSource): Rope {
  const inv = modelInvFreq(config, weights);
  return {
    invFreq: backend.constantF32(inv, [inv.length]),
    rotDim: config.headDim,
    interleaved: weights.format === 'gguf' && config.architecture === 'llama',
  };
}

export function gqaShape(c: ModelConfig): ConstructorParameters<typeof GqaAttention>[3] {
  return { numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, rmsNormEps: c.rmsNormEps, qkNorm: c.qkNorm };
}

function requireDenseMlp(c: ModelConfig, where: string): ModelConfig {
  if (!(c.intermediateSize > 0)) throw new ModelConfigError(`${where}: missing "intermediate_size" (feed_forward_length)`);
  return c;
}

function createLlama(config: ModelConfig, backend: Backend, weights: WeightSource, onProgress?: LoadProgress): DecoderModel {
  const w = new WeightLoader(backend, weights, onProgress);
  const rope = headRope(config, backend, weights);
  return new DecoderModel(config, perHeadKvLayout(config.numKvHeads, config.headDim), w, (l, path) => ({
    attention: new GqaAttention(`${path}.self_attn`, w, l, gqaShape(config), rope),
    ffn: GatedMlp.ofLayer(`${path}.mlp`, w, l),
  }));
}

export const LLAMA: Architecture = {
  key: 'llama',
  hfNames: ['LlamaForCausalLM', 'MistralForCausalLM'],
  ggufNames: ['llama', 'mistral'],
  hfConfig: (o, gen, where) => requireDenseMlp(hfBaseConfig(o, gen, 'llama', where), where),
  ggufConfig: (meta, arch, where) => requireDenseMlp(ggufBaseConfig(meta, arch, 'llama', where), where),
  hfWeightNames: decoderHfNames(MLP_HF_NAMES),
  create: createLlama,
};

export const QWEN3: Architecture = {
  key: 'qwen3',
  hfNames: ['Qwen3ForCausalLM'],
  ggufNames: ['qwen3'],
  hfConfig: (o, gen, where) => ({ ...requireDenseMlp(hfBaseConfig(o, gen, 'qwen3', where), where), qkNorm: true }),
  ggufConfig: (meta, arch, where) => ({ ...requireDenseMlp(ggufBaseConfig(meta, arch, 'qwen3', where), where), qkNorm: true }),
  hfWeightNames: decoderHfNames(MLP_HF_NAMES),
  create: createLlama,
};
