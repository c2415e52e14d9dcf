// Random-weight models in real architectures and shapes, so benchmarks and tests need no download:
// the presets, their real tokenizers (shipped in models/tokenizers/), and a fast source of random tensor bytes.
import { loadNative } from '../backend/native.js';
import type { GgufWriter } from '../formats/gguf-writer.js';
import { readPresetTokenizerFiles, type TokenizerFamily } from './preset-tokenizer-files.js';
import { ggmlTypeInfo } from '../formats/gguf-types.js';

export type RopeScalingSpec =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number }
  | { type: 'yarn'; factor: number; originalContext: number; betaFast: number; betaSlow: number; mscale: number; mscaleAllDim: number };

/** Multi-head latent attention (DeepSeek-V2/V3). */
export interface MlaSpec {
  /** undefined: q is one full projection (V2-Lite); else q_a → norm → q_b. */
  qLoraRank: number | undefined;
  kvLoraRank: number;
  qkNope: number;
  qkRope: number;
  vHead: number;
}

export interface MoeSpec {
  experts: number;
  used: number;
  shared: number;
  /** moe_intermediate_size: one expert's FFN width. */
  ffn: number;
  /** first_k_dense_replace: this many leading layers keep a dense FFN. */
  leadingDense: number;
  normTopk: boolean;
  scalingFactor: number;
  groups: number;
  groupsUsed: number;
  gating: 'softmax' | 'sigmoid';
}

export type { TokenizerFamily };

export interface RandomModelShape {
  architecture: 'llama' | 'qwen3' | 'qwen3moe' | 'deepseek2';
  tokenizer: TokenizerFamily;
  /** Embedding rows: the tokenizer is padded ([PADn] tokens) or trimmed to this. */
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  /** As the HF config says (MLA models: = heads; the GGUF writes 1, as llama.cpp's converter does). */
  kvHeads: number;
  headDim: number;
  /** Dense FFN width (intermediate_size; Qwen3-MoE configs give experts_per_tok × moe_intermediate_size). */
  ffn: number;
  ropeTheta: number;
  ropeScaling: RopeScalingSpec | undefined;
  context: number;
  rmsEps: number;
  tiedEmbeddings: boolean;
  mla?: MlaSpec;
  moe?: MoeSpec;
}

/** Qwen3 and Qwen3-MoE RMS-normalize q and k per head before RoPE (q_norm, k_norm). */
export const hasQkNorm = (s: RandomModelShape): boolean => s.architecture === 'qwen3' || s.architecture === 'qwen3moe';

const llama3Rope = (factor: number, originalContext: number): RopeScalingSpec =>
  ({ type: 'llama3', factor, lowFreqFactor: 1, highFreqFactor: 4, originalContext });

const dense = { ropeScaling: undefined, tiedEmbeddings: false } as const;

const qwen3Moe = { shared: 0, leadingDense: 0, normTopk: true, scalingFactor: 1, groups: 1, groupsUsed: 1, gating: 'softmax' } as const;

/**
 * Real shapes from each model's config.json. The tiny-* presets copy the shapes of the fixture models
 * (shared/fixtures/*: hidden 256, 2 layers) with the real tokenizers, so their tensors can be checked
 * name by name against files made by llama.cpp.
 */
export const randomModelPresets: Record<string, RandomModelShape> = {
  'llama-3.2-1b': {
    ...dense, architecture: 'llama', tokenizer: 'llama3', vocab: 128256, hidden: 2048, layers: 16, heads: 32, kvHeads: 8, headDim: 64,
    ffn: 8192, ropeTheta: 500000, ropeScaling: llama3Rope(32, 8192), context: 131072, rmsEps: 1e-5, tiedEmbeddings: true,
  },
  'llama-3.1-8b': {
    ...dense, architecture: 'llama', tokenizer: 'llama3', vocab: 128256, hidden: 4096, layers: 32, heads: 32, kvHeads: 8, headDim: 128,
    ffn: 14336, ropeTheta: 500000, ropeScaling: llama3Rope(8, 8192), context: 131072, rmsEps: 1e-5,
  },
  'qwen3-0.6b': {
    ...dense, architecture: 'qwen3', tokenizer: 'qwen3', vocab: 151936, hidden: 1024, layers: 28, heads: 16, kvHeads: 8, headDim: 128,
    ffn: 3072, ropeTheta: 1000000, context: 40960, rmsEps: 1e-6, tiedEmbeddings: true,
  },
  'qwen3-8b': {
    ...dense, architecture: 'qwen3', tokenizer: 'qwen3', vocab: 151936, hidden: 4096, layers: 36, heads: 32, kvHeads: 8, headDim: 128,
    ffn: 12288, ropeTheta: 1000000, context: 40960, rmsEps: 1e-6,
  },
  // DeepSeek-V2-Lite ships its own 102400-entry tokenizer, which no package carries: the DeepSeek-V3 one is
  // trimmed to that size (its merges are id-ordered, so the kept part is a consistent BPE).
  'deepseek-v2-lite': {
    architecture: 'deepseek2', tokenizer: 'deepseek_v3', vocab: 102400, hidden: 2048, layers: 27, heads: 16, kvHeads: 16, headDim: 192,
    ffn: 10944, ropeTheta: 10000, context: 163840, rmsEps: 1e-6, tiedEmbeddings: false,
    ropeScaling: { type: 'yarn', factor: 40, originalContext: 4096, betaFast: 32, betaSlow: 1, mscale: 0.707, mscaleAllDim: 0.707 },
    mla: { qLoraRank: undefined, kvLoraRank: 512, qkNope: 128, qkRope: 64, vHead: 128 },
    moe: { experts: 64, used: 6, shared: 2, ffn: 1408, leadingDense: 1, normTopk: false, scalingFactor: 1, groups: 1, groupsUsed: 1, gating: 'softmax' },
  },
  // Every layer sparse (decoder_sparse_step 1, mlp_only_layers []), no shared expert, top-k weights renormalized.
  'qwen3-30b-a3b': {
    ...dense, architecture: 'qwen3moe', tokenizer: 'qwen3', vocab: 151936, hidden: 2048, layers: 48, heads: 32, kvHeads: 4, headDim: 128,
    ffn: 6144, ropeTheta: 1000000, context: 40960, rmsEps: 1e-6,
    moe: { ...qwen3Moe, experts: 128, used: 8, ffn: 768 },
  },
  'tiny-llama': {
    architecture: 'llama', tokenizer: 'llama3', vocab: 128256, hidden: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64,
    ffn: 256, ropeTheta: 500000, ropeScaling: llama3Rope(8, 64), context: 512, rmsEps: 1e-5, tiedEmbeddings: false,
  },
  'tiny-qwen3': {
    ...dense, architecture: 'qwen3', tokenizer: 'qwen3', vocab: 151936, hidden: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64,
    ffn: 256, ropeTheta: 1000000, context: 512, rmsEps: 1e-6, tiedEmbeddings: true,
  },
  // Qwen3-30B-A3B in miniature (a few MB): head_dim 128 and q wider than hidden, as there; rows of 256 so
  // Q4_K_M quantizes the experts with K-quants as it does the real model; 16 experts, so none of
  // llama-quantize's 8-expert rules apply. The Qwen3 tokenizer is trimmed to 4096 ids.
  'qwen3moe-tiny': {
    ...dense, architecture: 'qwen3moe', tokenizer: 'qwen3', vocab: 4096, hidden: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 128,
    ffn: 1024, ropeTheta: 1000000, context: 4096, rmsEps: 1e-6,
    moe: { ...qwen3Moe, experts: 16, used: 4, ffn: 256 },
  },
  'tiny-deepseek': {
    ...dense, architecture: 'deepseek2', tokenizer: 'deepseek_v3', vocab: 129280, hidden: 256, layers: 2, heads: 4, kvHeads: 4, headDim: 64,
    ffn: 256, ropeTheta: 10000, context: 512, rmsEps: 1e-6,
    mla: { qLoraRank: 128, kvLoraRank: 64, qkNope: 32, qkRope: 32, vHead: 32 },
    moe: { experts: 8, used: 2, shared: 1, ffn: 64, leadingDense: 1, normTopk: false, scalingFactor: 1, groups: 1, groupsUsed: 1, gating: 'softmax' },
  },
};

/**
 * A preset cut to its first `layers` blocks (`make-model --layers`): each layer keeps its real tensors, so a
 * shape too big for a machine can be measured a few layers at a time.
 */
export function withLayers(s: RandomModelShape, layers: number): RandomModelShape {
  if (!Number.isInteger(layers) || layers < 1 || layers > s.layers) throw new RangeError(`layer count ${layers} is outside 1..${s.layers}`);
  return { ...s, layers };
}

// ---------------------------------------------------------------------------------------------------------------
// Tokenizers

export interface TokenizerJson {
  model: { vocab: Record<string, number>; merges: (string | [string, string])[]; [k: string]: unknown };
  added_tokens: { id: number; content: string; special: boolean; normalized?: boolean; [k: string]: unknown }[];
  post_processor?: unknown;
  [k: string]: unknown;
}

/** A tokenizer as GGUF metadata (tokenizer.ggml.*), as llama.cpp's converter writes it. */
export interface GgufTokenizerData {
  pre: string;
  tokens: string[];
  tokenTypes: Int32Array;
  merges: string[];
  bosId: number | undefined;
  eosId: number | undefined;
  padId: number | undefined;
  addBos: boolean;
  addEos: boolean;
  chatTemplate: string | undefined;
}

/** The tokenizer of a preset in both forms: HF files for a safetensors directory, GGUF metadata. */
export interface PresetTokenizer {
  json: TokenizerJson;
  config: Record<string, unknown>;
  gguf: GgufTokenizerData;
  /** generation_config.json's eos_token_id: EOS plus the end-of-turn tokens the family's chat template ends turns with. */
  eosIds: number[];
}

interface FamilyInfo {
  pre: string;
  addBos: boolean;
  /** Texts of end-of-turn tokens besides eos_token, for generation_config.json. */
  endOfTurn: string[];
  /** When tokenizer_config.json names no bos_token (Qwen), the config.json one. */
  bosText?: string;
  padText?: string;
}

const FAMILIES: Record<TokenizerFamily, FamilyInfo> = {
  llama3: { pre: 'llama-bpe', addBos: true, endOfTurn: ['<|eot_id|>'] },
  qwen3: { pre: 'qwen2', addBos: false, endOfTurn: ['<|endoftext|>'], bosText: '<|endoftext|>' },
  deepseek_v3: { pre: 'deepseek-v3', addBos: true, endOfTurn: [] },
};

const contentOf = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'object' && v !== null && 'content' in v ? String((v as { content: unknown }).content) : undefined;

// The converter's does_token_look_special: added tokens not flagged special but shaped like control tokens.
const looksSpecial = (t: string): boolean => (t.startsWith('<|') && t.endsWith('|>')) || (t.startsWith('<｜') && t.endsWith('｜>'));

const loaded = new Map<string, PresetTokenizer>();

/** A family's tokenizer fitted to `vocab` entries; loaded once per process (callers only read it). */
export function loadPresetTokenizer(family: TokenizerFamily, vocab: number): PresetTokenizer {
  const key = `${family}:${vocab}`;
  let tok = loaded.get(key);
  if (!tok) {
    tok = readPresetTokenizer(family, vocab);
    loaded.set(key, tok);
  }
  return tok;
}

function readPresetTokenizer(family: TokenizerFamily, vocab: number): PresetTokenizer {
  const files = readPresetTokenizerFiles(family);
  const json = JSON.parse(files.tokenizerJson) as TokenizerJson;
  const config = files.config;
  const info = FAMILIES[family];
  fitVocab(json, config, vocab);
  if (family === 'llama3') addLlamaBosTemplate(json);
  const size = Math.max(vocab, ...json.added_tokens.map((t) => t.id + 1));
  const tokens = new Array<string>(size);
  const tokenTypes = new Int32Array(size).fill(5); // UNUSED until filled: the converter's [PADn] entries
  const vocabMap = json.model.vocab;
  for (const tok in vocabMap) {
    const id = vocabMap[tok]!;
    tokens[id] = tok;
    tokenTypes[id] = 1;
  }
  for (const t of json.added_tokens) {
    tokens[t.id] = t.content;
    tokenTypes[t.id] = t.special || looksSpecial(t.content) ? 3 : 4;
  }
  for (let i = 0; i < size; i++) if (tokens[i] === undefined) tokens[i] = `[PAD${i}]`;
  const idOf = (text: string | undefined): number | undefined => (text === undefined ? undefined : json.added_tokens.find((t) => t.content === text)?.id);
  const bosId = idOf(contentOf(config['bos_token']) ?? info.bosText);
  const eosId = idOf(contentOf(config['eos_token']));
  const padId = idOf(contentOf(config['pad_token']) ?? info.padText);
  const eosIds = [...new Set([eosId, ...info.endOfTurn.map(idOf)].filter((x): x is number => x !== undefined))];
  return {
    json,
    config,
    eosIds,
    gguf: {
      pre: info.pre,
      tokens,
      tokenTypes,
      merges: json.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m)),
      bosId,
      eosId,
      padId,
      addBos: typeof config['add_bos_token'] === 'boolean' ? config['add_bos_token'] : info.addBos,
      addEos: config['add_eos_token'] === true,
      chatTemplate: typeof config['chat_template'] === 'string' ? config['chat_template'] : undefined,
    },
  };
}

/**
 * Trims a tokenizer to `size` ids when it has more: the added tokens above the base vocabulary move to the
 * top ids, the base vocabulary keeps its lowest ids, and merges that touch a dropped token go. Byte-level
 * BPE files list merges in id order (a merge's parts have lower ids than its result), so what is kept is a
 * complete BPE of its own. A smaller tokenizer is left alone: the GGUF pads it with [PADn] tokens.
 */
function fitVocab(json: TokenizerJson, config: Record<string, unknown>, size: number): void {
  const vocab = json.model.vocab;
  let baseSize = 0;
  for (const tok in vocab) baseSize = Math.max(baseSize, vocab[tok]! + 1);
  const high = json.added_tokens.filter((t) => t.id >= baseSize).sort((a, b) => a.id - b.id);
  const total = Math.max(baseSize, ...high.map((t) => t.id + 1));
  if (total <= size) return;
  const keep = size - high.length;
  if (keep < 256) throw new Error(`cannot trim the tokenizer to ${size} ids: it has ${high.length} added tokens`);
  const kept: Record<string, number> = {};
  for (const tok in vocab) if (vocab[tok]! < keep) kept[tok] = vocab[tok]!;
  json.model.vocab = kept;
  json.model.merges = json.model.merges.filter((m) => {
    const [a, b] = Array.isArray(m) ? m : (m.split(' ') as [string, string]);
    return kept[a] !== undefined && kept[b] !== undefined && kept[a + b] !== undefined;
  });
  const renumber = new Map<number, number>(high.map((t, i) => [t.id, keep + i]));
  json.added_tokens = json.added_tokens.filter((t) => t.id < keep || renumber.has(t.id)).map((t) => ({ ...t, id: renumber.get(t.id) ?? t.id }));
  const decoder = config['added_tokens_decoder'];
  if (decoder && typeof decoder === 'object') {
    const next: Record<string, unknown> = {};
    for (const [id, v] of Object.entries(decoder)) {
      const n = Number(id);
      const to = renumber.get(n) ?? (n < keep ? n : undefined);
      if (to !== undefined) next[String(to)] = v;
    }
    config['added_tokens_decoder'] = next;
  }
}

/** Meta's Llama 3 tokenizer.json prepends <|begin_of_text|> in its post-processor; the packaged copy lost that step. */
function addLlamaBosTemplate(json: TokenizerJson): void {
  const bos = json.added_tokens.find((t) => t.content === '<|begin_of_text|>');
  if (!bos) return;
  const special = (type_id: number) => ({ SpecialToken: { id: bos.content, type_id } });
  const seq = (id: string, type_id: number) => ({ Sequence: { id, type_id } });
  json.post_processor = {
    type: 'Sequence',
    processors: [
      json.post_processor,
      {
        type: 'TemplateProcessing',
        single: [special(0), seq('A', 0)],
        pair: [special(0), seq('A', 0), special(1), seq('B', 1)],
        special_tokens: { [bos.content]: { id: bos.content, ids: [bos.id], tokens: [bos.content] } },
      },
    ].filter((p) => p !== undefined && p !== null),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Random numbers

/** Deterministic uniform samples in [0, 1) (mulberry32): the same stream on every machine. */
export function uniformSampler(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic normal samples (mulberry32 + Box–Muller). */
export function normalSampler(seed: number): () => number {
  const uniform = uniformSampler(seed);
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Elements per pool: 4 MB of f32 samples, large enough that every row of a real matrix is distinct. */
const POOL_ELEMS = 1 << 20;
/** Elements copied per random pick: long enough that copying is memcpy-bound, short enough to mix well. */
const RUN_ELEMS = 512;

/**
 * Random tensor bytes of any GGML type at memcpy speed. Drawing 8 G normals in JS and running ggml's K-quant
 * encoder over them takes many minutes (Q4_K encodes at ~7 M values/s here), so for each (type, mean, std)
 * one pool of N(mean, std²) samples is encoded once (exactly as ggml quantizes), and a tensor is assembled
 * from runs of whole blocks copied from random places in the pool. Values are finite, have the intended
 * distribution, and every block is a valid block of its type; rows repeat blocks, which no benchmark can see.
 */
export class RandomTensorSource {
  private readonly pools = new Map<string, { bytes: Uint8Array; units: number }>();
  private state: number;
  private poolSeed: number;

  constructor(seed: number) {
    this.state = (seed ^ 0x9e3779b9) >>> 0 || 1;
    this.poolSeed = seed >>> 0;
  }

  private next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  /** `elems` values (a whole number of the type's blocks) of N(mean, std²), encoded as GGML type `type`. */
  bytes(type: number, mean: number, std: number, elems: number): Uint8Array {
    const info = ggmlTypeInfo(type);
    if (!info) throw new Error(`unknown GGML type ${type}`);
    if (elems % info.blockElems !== 0) throw new Error(`${elems} values are not whole ${info.name} blocks`);
    const pool = this.pool(type, info.blockElems, mean, std, elems);
    const unitBytes = info.blockBytes;
    const units = elems / info.blockElems;
    const out = new Uint8Array(units * unitBytes);
    const run = Math.min(pool.units, Math.max(1, Math.floor(RUN_ELEMS / info.blockElems)));
    for (let u = 0; u < units; u += run) {
      const n = Math.min(run, units - u);
      const start = this.next() % (pool.units - n + 1);
      out.set(pool.bytes.subarray(start * unitBytes, (start + n) * unitBytes), u * unitBytes);
    }
    return out;
  }

  private pool(type: number, blockElems: number, mean: number, std: number, elems: number): { bytes: Uint8Array; units: number } {
    const key = `${type}:${mean}:${std}`;
    let pool = this.pools.get(key);
    if (!pool) {
      const n = Math.ceil(Math.min(POOL_ELEMS, Math.max(elems, RUN_ELEMS)) / blockElems) * blockElems;
      const rand = normalSampler(this.poolSeed++);
      const f = new Float32Array(n);
      for (let i = 0; i < n; i++) f[i] = mean + std * rand();
      const bytes = type === 0 ? new Uint8Array(f.buffer) : loadNative().quantize(type, f);
      pool = { bytes, units: n / blockElems };
      this.pools.set(key, pool);
    }
    return pool;
  }
}

/** Llama 3's per-frequency RoPE divisors, as llama.cpp's converter stores them in `rope_freqs.weight`. */
export function llama3RopeFactors(headDim: number, theta: number, s: Extract<RopeScalingSpec, { type: 'llama3' }>): Float32Array {
  const out = new Float32Array(headDim / 2);
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  for (let i = 0; i < out.length; i++) {
    const freq = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim))));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

/** Std of the output projection: logits come out with std ≈ 2.4, like the fixtures' (and trained models'). */
export const outputStd = (hidden: number): number => 2.4 / Math.sqrt(hidden);

/** Writes a byte-level BPE tokenizer's `tokenizer.ggml.*` keys (and chat template) as llama.cpp's converter does. */
export function addTokenizerMetadata(w: GgufWriter, t: GgufTokenizerData): void {
  w.addMetadata('tokenizer.ggml.model', 'gpt2');
  w.addMetadata('tokenizer.ggml.pre', t.pre);
  w.addMetadata('tokenizer.ggml.tokens', t.tokens, 'string');
  w.addMetadata('tokenizer.ggml.token_type', t.tokenTypes, 'i32');
  w.addMetadata('tokenizer.ggml.merges', t.merges, 'string');
  if (t.bosId !== undefined) w.addMetadata('tokenizer.ggml.bos_token_id', t.bosId, 'u32');
  if (t.eosId !== undefined) w.addMetadata('tokenizer.ggml.eos_token_id', t.eosId, 'u32');
  if (t.padId !== undefined) w.addMetadata('tokenizer.ggml.padding_token_id', t.padId, 'u32');
  w.addMetadata('tokenizer.ggml.add_bos_token', t.addBos);
  w.addMetadata('tokenizer.ggml.add_eos_token', t.addEos);
  if (t.chatTemplate !== undefined) w.addMetadata('tokenizer.chat_template', t.chatTemplate);
}
