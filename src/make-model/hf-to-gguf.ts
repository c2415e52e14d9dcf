// Converts a Hugging Face Llama directory (config.json, safetensors, tokenizer.json + tokenizer_config.json) to one
// GGUF file with our writer, laid out as llama.cpp's converter lays out the `llama` architecture, so llama.cpp loads it.
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { readWeightF32 } from '../backend/host-weights.js';
import { loadNative } from '../backend/native.js';
import { GGML_TYPE } from '../formats/gguf-types.js';
import { GgufWriter } from '../formats/gguf-writer.js';
import { readJsonFile } from '../formats/json-file.js';
import { readSafetensors } from '../formats/safetensors.js';
import type { ModelConfig } from '../models/config.js';
import { configFromHf, hfWeightNames } from '../models/registry.js';
import { addTokenizerMetadata, llama3RopeFactors, type GgufTokenizerData } from './random-model.js';
import { SafetensorsWeights } from '../models/weights.js';

export type GgufOutType = 'F32' | 'F16' | 'Q8_0';

export interface HfToGgufOptions {
  /** Type of the 2-D weights; 1-D tensors (norms, rope_freqs) stay F32, as llama.cpp keeps them. */
  outtype: GgufOutType;
  /** general.name; the directory's name otherwise. */
  name?: string;
  /** tokenizer.ggml.pre; found from tokenizer.json's pre-tokenizer regex when left out. */
  pre?: string;
}

export class HfToGgufError extends Error {
  override name = 'HfToGgufError';
}

// llama.cpp's general.file_type (LLAMA_FTYPE_*) per weight type.
const FILE_TYPE: Record<GgufOutType, number> = { F32: 0, F16: 1, Q8_0: 7 };
const TENSOR_TYPE: Record<GgufOutType, number> = { F32: GGML_TYPE.F32!, F16: GGML_TYPE.F16!, Q8_0: GGML_TYPE.Q8_0! };

// Known pre-tokenizer regexes (Hugging Face spelling, contractions case-folded) → tokenizer.ggml.pre.
const CONTRACTIONS_HF = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
const CONTRACTIONS_EXPANDED = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const REST = (digits: string) => `|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|${digits}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const KNOWN_PRE: Record<string, string> = {
  [CONTRACTIONS_EXPANDED + REST('\\p{N}{1,3}')]: 'llama-bpe',
  [CONTRACTIONS_EXPANDED + REST('\\p{N}')]: 'qwen2',
};

type Json = Record<string, unknown>;

function splitRegexes(pre: unknown): string[] {
  if (typeof pre !== 'object' || pre === null) return [];
  const p = pre as Json;
  if (p['type'] === 'Sequence' && Array.isArray(p['pretokenizers'])) return p['pretokenizers'].flatMap(splitRegexes);
  const pattern = p['pattern'] as Json | undefined;
  return p['type'] === 'Split' && typeof pattern?.['Regex'] === 'string' ? [pattern['Regex']] : [];
}

/** The llama.cpp pre-tokenizer name whose regex is tokenizer.json's (one Split regex, then byte-level). */
export function preTokenizerName(tokenizerJson: Json): string {
  const regexes = splitRegexes(tokenizerJson['pre_tokenizer']);
  const name = regexes.length === 1 ? KNOWN_PRE[regexes[0]!.replace(CONTRACTIONS_HF, CONTRACTIONS_EXPANDED)] : undefined;
  if (!name) throw new HfToGgufError(`no known GGUF pre-tokenizer for ${JSON.stringify(regexes)}; pass one (e.g. llama-bpe, qwen2)`);
  return name;
}

const contentOf = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'object' && v !== null && typeof (v as Json)['content'] === 'string' ? ((v as Json)['content'] as string) : undefined;
const firstId = (v: unknown): number | undefined => (typeof v === 'number' ? v : Array.isArray(v) && typeof v[0] === 'number' ? v[0] : undefined);

/** tokenizer.ggml.* for a byte-level BPE tokenizer.json, with special ids as llama.cpp's converter picks them:
 * tokenizer_config.json's *_token, else config.json's *_token_id. */
export function ggufTokenizerFromHf(dir: string, pre?: string): GgufTokenizerData {
  const json = readJsonFile<Json>(join(dir, 'tokenizer.json'), 'tokenizer');
  const cfgPath = join(dir, 'tokenizer_config.json');
  const tcfg = existsSync(cfgPath) ? readJsonFile<Json>(cfgPath, 'tokenizer config') : {};
  const config = readJsonFile<Json>(join(dir, 'config.json'), 'model config');
  const model = json['model'] as { type?: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
  if (model.type !== 'BPE') throw new HfToGgufError(`${dir}: tokenizer model ${String(model.type)} (only byte-level BPE converts)`);
  const added = (json['added_tokens'] ?? []) as { id: number; content: string; special: boolean }[];
  const rows = typeof config['vocab_size'] === 'number' ? config['vocab_size'] : 0; // embedding rows beyond the tokenizer are [PADn]
  const size = Math.max(...Object.values(model.vocab).map((id) => id + 1), ...added.map((t) => t.id + 1), rows);
  const tokens = new Array<string>(size);
  const tokenTypes = new Int32Array(size).fill(5); // UNUSED until filled: the converter's [PADn] entries
  for (const [tok, id] of Object.entries(model.vocab)) {
    tokens[id] = tok;
    tokenTypes[id] = 1;
  }
  for (const t of added) {
    tokens[t.id] = t.content;
    tokenTypes[t.id] = t.special || (t.content.startsWith('<|') && t.content.endsWith('|>')) ? 3 : 4;
  }
  for (let i = 0; i < size; i++) tokens[i] ??= `[PAD${i}]`;
  const idOfText = (text: string | undefined): number | undefined => {
    const id = text === undefined ? -1 : tokens.indexOf(text);
    return id >= 0 ? id : undefined;
  };
  const special = (key: string): number | undefined => idOfText(contentOf(tcfg[`${key}_token`])) ?? firstId(config[`${key}_token_id`]);
  const template = tcfg['chat_template'];
  return {
    pre: pre ?? preTokenizerName(json),
    tokens,
    tokenTypes,
    merges: model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m)),
    bosId: special('bos'),
    eosId: special('eos'),
    padId: special('pad'),
    addBos: tcfg['add_bos_token'] === true,
    addEos: tcfg['add_eos_token'] === true,
    chatTemplate: typeof template === 'string' ? template : undefined,
  };
}

/**
 * Reorders q/k projection rows from Hugging Face's rotate-half RoPE pairing (i, i + d/2) to the adjacent pairs
 * (2i, 2i + 1) that GGUF Llama files use: within each head, row 2i takes row i and row 2i + 1 takes row d/2 + i.
 */
export function permuteRopeRows(w: Float32Array, heads: number, cols: number): Float32Array {
  const rows = w.length / cols;
  const d = rows / heads;
  if (!Number.isInteger(d) || d % 2 !== 0) throw new HfToGgufError(`cannot split ${rows} rows into ${heads} heads of an even size`);
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < d / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * d + j * (d / 2) + i) * cols;
        out.set(w.subarray(from, from + cols), (h * d + 2 * i + j) * cols);
      }
    }
  }
  return out;
}

function encode(values: Float32Array, type: number): Uint8Array {
  return type === GGML_TYPE.F32 ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength) : loadNative().quantize(type, values);
}

function addModelMetadata(w: GgufWriter, c: ModelConfig, name: string, outtype: GgufOutType): void {
  const u32 = (key: string, v: number) => w.addMetadata(`llama.${key}`, v, 'u32');
  w.addMetadata('general.architecture', 'llama');
  w.addMetadata('general.type', 'model');
  w.addMetadata('general.name', name);
  u32('block_count', c.numLayers);
  u32('context_length', c.maxPositions);
  u32('embedding_length', c.hiddenSize);
  u32('feed_forward_length', c.intermediateSize);
  u32('attention.head_count', c.numHeads);
  u32('attention.head_count_kv', c.numKvHeads);
  w.addMetadata('llama.rope.freq_base', c.ropeTheta, 'f32');
  w.addMetadata('llama.attention.layer_norm_rms_epsilon', c.rmsNormEps, 'f32');
  u32('attention.key_length', c.headDim);
  u32('attention.value_length', c.headDim);
  if (c.ropeScaling?.type === 'linear') {
    w.addMetadata('llama.rope.scaling.type', 'linear');
    w.addMetadata('llama.rope.scaling.factor', c.ropeScaling.factor, 'f32');
  }
  w.addMetadata('general.file_type', FILE_TYPE[outtype], 'u32');
  u32('vocab_size', c.vocabSize);
  u32('rope.dimension_count', c.headDim);
  w.addMetadata('general.quantization_version', 2, 'u32');
}


/** Converts `dir` to `outPath` (written beside as .tmp, then renamed). Returns the tensor count and data bytes. */
export async function convertHfLlamaToGguf(dir: string, outPath: string, opts: HfToGgufOptions): Promise<{ tensors: number; bytes: number }> {
  const config = configFromHf(readJsonFile<Json>(join(dir, 'config.json'), 'model config'), undefined, join(dir, 'config.json'));
  if (config.architecture !== 'llama') throw new HfToGgufError(`${dir}: only Llama-architecture models convert (got ${config.architecture})`);
  const weights = new SafetensorsWeights(readSafetensors(dir), hfWeightNames(config));
  const tok = ggufTokenizerFromHf(dir, opts.pre);
  if (tok.tokens.length !== config.vocabSize) {
    throw new HfToGgufError(`${dir}: tokenizer has ${tok.tokens.length} ids, the model ${config.vocabSize} embedding rows`);
  }
  const matrixType = TENSOR_TYPE[opts.outtype];
  // What goes in, in llama.cpp's order within a block; each as [name, values in GGUF row order, GGML type].
  const plan: { name: string; shape: number[]; load: () => Float32Array; type: number }[] = [];
  const add = (name: string, permuteHeads?: number) => {
    const loc = weights.get(name);
    const shape = [...loc.shape].reverse(); // GGUF lists the row length first
    const load = () => {
      const v = readWeightF32(loc);
      return permuteHeads === undefined ? v : permuteRopeRows(v, permuteHeads, loc.shape[1]!);
    };
    plan.push({ name, shape, load, type: loc.shape.length === 1 ? GGML_TYPE.F32! : matrixType });
  };
  const rs = config.ropeScaling;
  if (rs?.type === 'llama3') {
    const factors = llama3RopeFactors(config.headDim, config.ropeTheta, { ...rs, originalContext: rs.originalMaxPositions });
    plan.push({ name: 'rope_freqs.weight', shape: [factors.length], load: () => factors, type: GGML_TYPE.F32! });
  }
  add('token_embd.weight');
  for (let l = 0; l < config.numLayers; l++) {
    const p = `blk.${l}.`;
    add(`${p}attn_norm.weight`);
    add(`${p}attn_q.weight`, config.numHeads);
    add(`${p}attn_k.weight`, config.numKvHeads);
    add(`${p}attn_v.weight`);
    add(`${p}attn_output.weight`);
    add(`${p}ffn_norm.weight`);
    add(`${p}ffn_gate.weight`);
    add(`${p}ffn_up.weight`);
    add(`${p}ffn_down.weight`);
  }
  add('output_norm.weight');
  if (weights.has('output.weight') && !config.tieWordEmbeddings) add('output.weight');

  const tmp = `${outPath}.tmp`;
  const w = new GgufWriter(tmp);
  addModelMetadata(w, config, opts.name ?? dir.replace(/\/+$/, '').split('/').pop()!, opts.outtype);
  addTokenizerMetadata(w, tok);
  for (const t of plan) w.addTensorInfo(t.name, t.type, t.shape);
  await w.writeHeader();
  let bytes = 0;
  for (const t of plan) {
    const data = encode(t.load(), t.type);
    await w.writeTensorData(t.name, data);
    bytes += data.byteLength;
  }
  await w.close();
  renameSync(tmp, outPath);
  return { tensors: plan.length, bytes };
}

