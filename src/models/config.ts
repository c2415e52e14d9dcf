// One description of a model's shape, whether it came from a Hugging Face config.json
// or from GGUF metadata, so model code never looks at either format.
import type { GgufValue } from '../formats/gguf.js';

export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: 'linear'; factor: number };

export interface ModelConfig {
  /** Our architecture key: picks the model class from the registry. */
  architecture: 'llama' | 'qwen3';
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
}

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

const hfArchitectures: Record<string, ModelConfig['architecture']> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'llama',
  Qwen3ForCausalLM: 'qwen3',
};

function num(o: Record<string, unknown>, key: string, where: string, fallback?: number): number {
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

/** From a parsed config.json (plus generation_config.json for EOS ids, when present). */
export function configFromHf(config: Record<string, unknown>, generation: Record<string, unknown> | undefined, where: string): ModelConfig {
  const archs = config['architectures'];
  const archName = Array.isArray(archs) ? String(archs[0]) : String(config['model_type'] ?? '');
  const architecture = hfArchitectures[archName];
  if (!architecture) {
    throw new ModelConfigError(`${where}: architecture "${archName}" is not supported (supported: ${Object.keys(hfArchitectures).join(', ')})`);
  }
  const hiddenSize = num(config, 'hidden_size', where);
  const numHeads = num(config, 'num_attention_heads', where);
  const eos = [...new Set([...idList(config['eos_token_id']), ...idList(generation?.['eos_token_id'])])];
  const bos = config['bos_token_id'];
  return {
    architecture,
    vocabSize: num(config, 'vocab_size', where),
    hiddenSize,
    intermediateSize: num(config, 'intermediate_size', where),
    numLayers: num(config, 'num_hidden_layers', where),
    numHeads,
    numKvHeads: num(config, 'num_key_value_heads', where, numHeads),
    headDim: num(config, 'head_dim', where, hiddenSize / numHeads),
    rmsNormEps: num(config, 'rms_norm_eps', where, 1e-6),
    ropeTheta: num(config, 'rope_theta', where, 10000),
    ropeScaling: hfRopeScaling(config, where),
    maxPositions: num(config, 'max_position_embeddings', where, 4096),
    tieWordEmbeddings: config['tie_word_embeddings'] === true,
    qkNorm: architecture === 'qwen3',
    bosTokenId: typeof bos === 'number' ? bos : undefined,
    eosTokenIds: eos,
  };
}

const ggufArchitectures: Record<string, ModelConfig['architecture']> = { llama: 'llama', mistral: 'llama', qwen3: 'qwen3' };

/** From GGUF metadata. Llama-3 rope scaling arrives as a rope_freqs tensor, handled by the loader. */
export function configFromGguf(meta: Map<string, GgufValue>, where: string): ModelConfig {
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') throw new ModelConfigError(`${where}: general.architecture is missing`);
  const architecture = ggufArchitectures[arch];
  if (!architecture) {
    throw new ModelConfigError(`${where}: GGUF architecture "${arch}" is not supported (supported: ${Object.keys(ggufArchitectures).join(', ')})`);
  }
  const get = (key: string, fallback?: number): number => {
    const v = meta.get(`${arch}.${key}`);
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (fallback !== undefined) return fallback;
    throw new ModelConfigError(`${where}: GGUF metadata "${arch}.${key}" is missing`);
  };
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
    intermediateSize: get('feed_forward_length'),
    numLayers: get('block_count'),
    numHeads,
    numKvHeads: get('attention.head_count_kv', numHeads),
    headDim: get('attention.key_length', hiddenSize / numHeads),
    rmsNormEps: get('attention.layer_norm_rms_epsilon', 1e-5),
    ropeTheta: get('rope.freq_base', 10000),
    ropeScaling,
    maxPositions: get('context_length', 4096),
    tieWordEmbeddings: false, // decided by the loader: no output.weight means tied
    qkNorm: architecture === 'qwen3',
    bosTokenId: typeof bos === 'number' ? bos : undefined,
    eosTokenIds: [...new Set(eos)],
  };
}
