// One description of a model's shape, whether it came from a Hugging Face config.json
// or from GGUF metadata, so model code never looks at either format.
import type { GgufValue } from '../formats/gguf.js';

export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: 'linear'; factor: number };

/** The routed experts of a mixture-of-experts model (absent: every layer is a dense MLP). */
export interface MoeConfig {
  numExperts: number;
  /** Experts per token. */
  topK: number;
  /** Each expert's FFN width (moe_intermediate_size). */
  expertIntermediateSize: number;
  scoring: 'softmax' | 'sigmoid';
  /** Divide the chosen weights by their sum (norm_topk_prob). */
  normalizeTopK: boolean;
  /** routed_scaling_factor. */
  routedScale: number;
  numGroups: number;
  topKGroups: number;
  groupScore: 'max' | 'top2sum';
  /** Shared experts' total FFN width (0: none). */
  sharedIntermediateSize: number;
  /** Which layers are MoE (the rest dense, intermediateSize wide). */
  moeLayers: boolean[];
}

export interface ModelConfig {
  /** Our architecture key: picks the model class from the registry. */
  architecture: 'llama' | 'qwen3' | 'qwen3moe';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | undefined;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  bosTokenId: number | undefined;
  eosTokenIds: number[];
  moe?: MoeConfig | undefined;
}

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

export function num(o: Record<string, unknown>, key: string, where: string, fallback?: number): number {
  const v = o[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ModelConfigError(`${where}: missing "${key}"`);
  }
  throw new ModelConfigError(`${where}: "${key}" must be a number, got ${JSON.stringify(v)}`);
}

function idList(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

function hfRopeScaling(o: Record<string, unknown>, where: string): RopeScaling | undefined {
  const rs = o['rope_scaling'];
  if (rs === null || rs === undefined) return undefined;
  if (typeof rs !== 'object') throw new ModelConfigError(`${where}: rope_scaling must be an object`);
  const r = rs as Record<string, unknown>;
  const type = String(r['rope_type'] ?? r['type'] ?? 'default');
  if (type === 'default') return undefined;
  if (type === 'llama3') {
    return {
      type,
      factor: num(r, 'factor', where),
      lowFreqFactor: num(r, 'low_freq_factor', where),
      highFreqFactor: num(r, 'high_freq_factor', where),
      originalMaxPositions: num(r, 'original_max_position_embeddings', where),
    };
  }
  if (type === 'linear') return { type, factor: num(r, 'factor', where) };
  throw new ModelConfigError(`${where}: rope_scaling type "${type}" is not supported yet (supported: llama3, linear)`);
}

/** The HF architecture name a config.json declares. */
export function hfArchitectureName(config: Record<string, unknown>): string {
  const archs = config['architectures'];
  return Array.isArray(archs) ? String(archs[0]) : String(config['model_type'] ?? '');
}

/**
 * The fields every decoder shares, from a parsed config.json (plus generation_config.json for EOS ids,
 * when present); the architecture's own reader adds the rest (registry.ts).
 */
export function hfBaseConfig(
  config: Record<string, unknown>,
  generation: Record<string, unknown> | undefined,
  architecture: ModelConfig['architecture'],
  where: string,
): ModelConfig {
  const hiddenSize = num(config, 'hidden_size', where);
  const numHeads = num(config, 'num_attention_heads', where);
  const eos = [...new Set([...idList(config['eos_token_id']), ...idList(generation?.['eos_token_id'])])];
  const bos = config['bos_token_id'];
  return {
    architecture,
    vocabSize: num(config, 'vocab_size', where),
    hiddenSize,
    intermediateSize: num(config, 'intermediate_size', where, 0),
    numLayers: num(config, 'num_hidden_layers', where),
    numHeads,
    numKvHeads: num(config, 'num_key_value_heads', where, numHeads),
    headDim: num(config, 'head_dim', where, hiddenSize / numHeads),
    rmsNormEps: num(config, 'rms_norm_eps', where, 1e-6),
    ropeTheta: num(config, 'rope_theta', where, 10000),
    ropeScaling: hfRopeScaling(config, where),
    maxPositions: num(config, 'max_position_embeddings', where, 4096),
    tieWordEmbeddings: config['tie_word_embeddings'] === true,
    qkNorm: false,
    bosTokenId: typeof bos === 'number' ? bos : undefined,
    eosTokenIds: eos,
  };
}

/** Reads `<arch>.<key>` from GGUF metadata as a number. */
export type GgufNumber = (key: string, fallback?: number) => number;

/** The GGUF architecture name (general.architecture). */
export function ggufArchitectureName(meta: Map<string, GgufValue>, where: string): string {
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') throw new ModelConfigError(`${where}: general.architecture is missing`);
  return arch;
}

export function ggufNumberReader(meta: Map<string, GgufValue>, arch: string, where: string): GgufNumber {
  return (key, fallback) => {
    const v = meta.get(`${arch}.${key}`);
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (fallback !== undefined) return fallback;
    throw new ModelConfigError(`${where}: GGUF metadata "${arch}.${key}" is missing`);
  };
}

/**
 * The fields every decoder shares, from GGUF metadata; the architecture's reader adds the rest.
 * Llama-3 rope scaling arrives as a rope_freqs tensor, handled by the loader.
 */
export function ggufBaseConfig(meta: Map<string, GgufValue>, arch: string, architecture: ModelConfig['architecture'], where: string): ModelConfig {
  const get = ggufNumberReader(meta, arch, where);
  const tokens = meta.get('tokenizer.ggml.tokens');
  const vocabSize = get('vocab_size', Array.isArray(tokens) ? tokens.length : undefined);
  const hiddenSize = get('embedding_length');
  const numHeads = get('attention.head_count');
  const scalingType = meta.get(`${arch}.rope.scaling.type`);
  const ropeScaling: RopeScaling | undefined =
    scalingType === 'linear' ? { type: 'linear', factor: get('rope.scaling.factor') } : undefined;
  if (typeof scalingType === 'string' && scalingType !== 'linear' && scalingType !== 'none') {
    throw new ModelConfigError(`${where}: rope scaling "${scalingType}" is not supported yet`);
  }
  const bos = meta.get('tokenizer.ggml.bos_token_id');
  const eos = ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id', 'tokenizer.ggml.eom_token_id']
    .map((k) => meta.get(k))
    .filter((v): v is number => typeof v === 'number');
  return {
    architecture,
    vocabSize,
    hiddenSize,
    intermediateSize: get('feed_forward_length', 0),
    numLayers: get('block_count'),
    numHeads,
    numKvHeads: get('attention.head_count_kv', numHeads),
    headDim: get('attention.key_length', hiddenSize / numHeads),
    rmsNormEps: get('attention.layer_norm_rms_epsilon', 1e-5),
    ropeTheta: get('rope.freq_base', 10000),
    ropeScaling,
    maxPositions: get('context_length', 4096),
    tieWordEmbeddings: false, // decided by the loader: no output.weight means tied
    qkNorm: false,
    bosTokenId: typeof bos === 'number' ? bos : undefined,
    eosTokenIds: [...new Set(eos)],
  };
}
