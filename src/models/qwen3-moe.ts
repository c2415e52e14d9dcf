// Qwen3-MoE (Qwen3MoeForCausalLM; GGUF arch qwen3moe): Qwen3's attention (GQA with q/k norm) and a
// sparse MoE block — softmax router, top-k, optional renormalisation (norm_topk_prob), no shared expert.
// Layers listed in mlp_only_layers, or off the decoder_sparse_step grid, keep a dense MLP.
import type { Backend } from '../backend/backend.js';
import type { GgufValue } from '../formats/gguf.js';
import { ggufBaseConfig, ggufNumberReader, hfBaseConfig, ModelConfigError, num, type ModelConfig, type MoeConfig } from './config.js';
import type { Architecture } from './architecture.js';
import { GqaAttention } from './layers/attention.js';
import { DecoderModel } from './layers/decoder.js';
import { GatedMlp, MLP_HF_NAMES } from './layers/mlp.js';
import { EXPERT_HF_NAMES, MOE_HF_NAMES, SparseMoe } from './layers/moe.js';
import { WeightLoader, type LoadProgress } from './layers/weight-loader.js';
import { perHeadKvLayout } from './kv-cache.js';
import { decoderHfNames, gqaShape, headRope } from './llama.js';
import type { WeightSource } from './weights.js';

function qwenMoe(numExperts: number, topK: number, width: number, normalize: boolean, moeLayers: boolean[], where: string): MoeConfig {
  if (!(numExperts > 0 && topK > 0 && topK <= numExperts)) {
    throw new ModelConfigError(`${where}: ${topK} experts per token of ${numExperts} is not a mixture of experts`);
  }
  return {
    numExperts,
    topK,
    expertIntermediateSize: width,
    scoring: 'softmax',
    normalizeTopK: normalize,
    routedScale: 1,
    numGroups: 1,
    topKGroups: 1,
    groupScore: 'max',
    sharedIntermediateSize: 0,
    moeLayers,
  };
}

function hfConfig(o: Record<string, unknown>, gen: Record<string, unknown> | undefined, where: string): ModelConfig {
  const base = hfBaseConfig(o, gen, 'qwen3moe', where);
  const step = num(o, 'decoder_sparse_step', where, 1);
  const dense = new Set(Array.isArray(o['mlp_only_layers']) ? o['mlp_only_layers'].filter((x): x is number => typeof x === 'number') : []);
  // As transformers decides it: MoE where the layer is not listed and (l + 1) is a multiple of the step.
  const moeLayers = Array.from({ length: base.numLayers }, (_, l) => !dense.has(l) && step > 0 && (l + 1) % step === 0);
  const moe = qwenMoe(num(o, 'num_experts', where), num(o, 'num_experts_per_tok', where), num(o, 'moe_intermediate_size', where), o['norm_topk_prob'] === true, moeLayers, where);
  if (moeLayers.some((m) => !m) && !(base.intermediateSize > 0)) throw new ModelConfigError(`${where}: dense layers need "intermediate_size"`);
  return { ...base, qkNorm: true, moe };
}

function ggufConfig(meta: Map<string, GgufValue>, arch: string, where: string): ModelConfig {
  const base = ggufBaseConfig(meta, arch, 'qwen3moe', where);
  const get = ggufNumberReader(meta, arch, where);
  // llama.cpp's qwen3moe renormalises the top-k weights unless told otherwise (its converter writes no flag).
  const norm = meta.get(`${arch}.expert_weights_norm`);
  const moe = qwenMoe(get('expert_count'), get('expert_used_count'), get('expert_feed_forward_length'), norm !== false, new Array<boolean>(base.numLayers).fill(true), where);
  return { ...base, qkNorm: true, moe };
}

function create(config: ModelConfig, backend: Backend, weights: WeightSource, onProgress?: LoadProgress): DecoderModel {
  const moe = config.moe;
  if (!moe) throw new ModelConfigError('qwen3moe: config has no experts');
  const w = new WeightLoader(backend, weights, onProgress);
  const rope = headRope(config, backend, weights);
  return new DecoderModel(config, perHeadKvLayout(config.numKvHeads, config.headDim), w, (l, path) => ({
    attention: new GqaAttention(`${path}.self_attn`, w, l, gqaShape(config), rope),
    ffn: moe.moeLayers[l] ? new SparseMoe(`${path}.mlp`, w, l, moe) : GatedMlp.ofLayer(`${path}.mlp`, w, l),
  }));
}

export const QWEN3_MOE: Architecture = {
  key: 'qwen3moe',
  hfNames: ['Qwen3MoeForCausalLM'],
  ggufNames: ['qwen3moe'],
  hfConfig,
  ggufConfig,
  hfWeightNames: decoderHfNames({ ...MLP_HF_NAMES, ...MOE_HF_NAMES }, EXPERT_HF_NAMES),
  create,
};
