// Writes a random-weight preset as a GGUF file that llama.cpp loads unchanged: tensor names, shapes and metadata
// as its converter (convert_hf_to_gguf.py) writes them, tensor types as its converter (F16/BF16/Q8_0) or its
// quantizer (llama-quantize Q4_K_M) would choose them.
import { GgufWriter } from '../formats/gguf-writer.js';
import { GGML_TYPE, ggmlTypeByName, llamaFileTypeId, tensorByteLength } from '../formats/gguf-types.js';
import {
  RandomTensorSource, addTokenizerMetadata, hasQkNorm, llama3RopeFactors, loadPresetTokenizer, outputStd,
  type GgufTokenizerData, type RandomModelShape,
} from './random-model.js';

/** One tensor to write; `shape` in ggml order (shape[0] is the row length). */
export interface PlannedTensor {
  name: string;
  shape: number[];
  mean: number;
  std: number;
  /** Kept in F32 whatever the output type (norms, router, rope factors), as the converter does. */
  f32: boolean;
  /** Fixed contents instead of random ones. */
  data?: Float32Array;
}

const lin = (name: string, inDim: number, outDim: number, extra: number[] = []): PlannedTensor =>
  ({ name, shape: [inDim, outDim, ...extra], mean: 0, std: 1 / Math.sqrt(inDim), f32: false });
// Norm weights near 1, like a trained model's (and the fixtures': 1 + N(0, 0.1)).
const norm = (name: string, n: number): PlannedTensor => ({ name, shape: [n], mean: 1, std: 0.1, f32: true });

/** The tensors llama.cpp expects for this shape, with llama.cpp's names (llama-arch.cpp / gguf-py constants). */
export function ggufTensorPlan(s: RandomModelShape): PlannedTensor[] {
  const plan: PlannedTensor[] = [];
  if (s.ropeScaling?.type === 'llama3') {
    plan.push({ name: 'rope_freqs.weight', shape: [s.headDim / 2], mean: 0, std: 0, f32: true, data: llama3RopeFactors(s.headDim, s.ropeTheta, s.ropeScaling) });
  }
  // Untied models: embeddings of std 1 (RMSNorm follows); tied ones double as the output projection.
  plan.push({ name: 'token_embd.weight', shape: [s.hidden, s.vocab], mean: 0, std: s.tiedEmbeddings ? outputStd(s.hidden) : 1, f32: false });
  for (let l = 0; l < s.layers; l++) {
    const p = `blk.${l}.`;
    plan.push(norm(`${p}attn_norm.weight`, s.hidden));
    if (s.mla) {
      const m = s.mla;
      const qDim = s.heads * (m.qkNope + m.qkRope);
      if (m.qLoraRank === undefined) plan.push(lin(`${p}attn_q.weight`, s.hidden, qDim));
      else plan.push(lin(`${p}attn_q_a.weight`, s.hidden, m.qLoraRank), norm(`${p}attn_q_a_norm.weight`, m.qLoraRank), lin(`${p}attn_q_b.weight`, m.qLoraRank, qDim));
      // kv_b_proj is split by the converter into k_b (transposed, per head) and v_b, for MLA weight absorption.
      plan.push(
        lin(`${p}attn_kv_a_mqa.weight`, s.hidden, m.kvLoraRank + m.qkRope),
        norm(`${p}attn_kv_a_norm.weight`, m.kvLoraRank),
        { ...lin(`${p}attn_k_b.weight`, m.qkNope, m.kvLoraRank, [s.heads]), std: 1 / Math.sqrt(m.kvLoraRank) },
        lin(`${p}attn_v_b.weight`, m.kvLoraRank, m.vHead, [s.heads]),
        lin(`${p}attn_output.weight`, s.heads * m.vHead, s.hidden),
      );
    } else {
      plan.push(
        lin(`${p}attn_q.weight`, s.hidden, s.heads * s.headDim),
        lin(`${p}attn_k.weight`, s.hidden, s.kvHeads * s.headDim),
        lin(`${p}attn_v.weight`, s.hidden, s.kvHeads * s.headDim),
        lin(`${p}attn_output.weight`, s.heads * s.headDim, s.hidden),
      );
      if (hasQkNorm(s)) plan.push(norm(`${p}attn_q_norm.weight`, s.headDim), norm(`${p}attn_k_norm.weight`, s.headDim));
    }
    plan.push(norm(`${p}ffn_norm.weight`, s.hidden));
    if (s.moe && l >= s.moe.leadingDense) {
      const e = s.moe;
      const sharedFfn = e.shared * e.ffn;
      // The router's std 1/√hidden on RMS-normed input gives each expert a logit of std ≈ 1, independent across
      // experts and tokens: every token's top-k is a near-uniform draw, so routing spreads over all experts.
      plan.push(
        { ...lin(`${p}ffn_gate_inp.weight`, s.hidden, e.experts), f32: true },
        lin(`${p}ffn_gate_exps.weight`, s.hidden, e.ffn, [e.experts]),
        lin(`${p}ffn_up_exps.weight`, s.hidden, e.ffn, [e.experts]),
        lin(`${p}ffn_down_exps.weight`, e.ffn, s.hidden, [e.experts]),
      );
      if (e.shared > 0) {
        plan.push(lin(`${p}ffn_gate_shexp.weight`, s.hidden, sharedFfn), lin(`${p}ffn_up_shexp.weight`, s.hidden, sharedFfn), lin(`${p}ffn_down_shexp.weight`, sharedFfn, s.hidden));
      }
    } else {
      plan.push(lin(`${p}ffn_gate.weight`, s.hidden, s.ffn), lin(`${p}ffn_up.weight`, s.hidden, s.ffn), lin(`${p}ffn_down.weight`, s.ffn, s.hidden));
    }
  }
  plan.push(norm('output_norm.weight', s.hidden));
  if (!s.tiedEmbeddings) plan.push({ ...lin('output.weight', s.hidden, s.vocab), std: outputStd(s.hidden) });
  return plan;
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor types

/** Output types: the converter's --outtype values, llama-quantize's Q4_K_M mixture, or one GGML type for all (--pure). */
export const GGUF_OUTTYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_K_M'] as const;

/** A pure K-quant (--pure) is written with its mixture's general.file_type, as llama-quantize does. */
const PURE_K_QUANT_MIXES: Record<string, string> = { Q4_K: 'Q4_K_M', Q5_K: 'Q5_K_M' };

/** general.file_type (llama_ftype) of an output type. */
export function ggufFileType(outtype: string): number {
  const name = outtype.toUpperCase();
  const t = llamaFileTypeId(PURE_K_QUANT_MIXES[name] ?? name);
  if (t === undefined) throw new Error(`no general.file_type for output type ${outtype}`);
  return t;
}

/** What llama.cpp's quantizer knows of the model when it picks types (llama_model hparams). */
export interface MixtureModelInfo {
  arch: string;
  layers: number;
  /** hparams.n_expert: 0 for dense models. */
  experts: number;
  heads: number;
  kvHeads: number;
}

const typeId = (name: string): number => {
  const id = GGML_TYPE[name];
  if (id === undefined) throw new Error(`GGML type ${name} missing from the type table`);
  return id;
};
const [F32, F16, BF16, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K] = ['F32', 'F16', 'BF16', 'Q5_0', 'Q5_1', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K'].map(typeId) as [
  number, number, number, number, number, number, number, number, number,
];

/** llama.cpp's weight_name_comparer: by layer number (no layer first), then by name. The quantizer's counters follow this order. */
export function llamaTensorOrder(a: string, b: string): number {
  const la = /^blk\.(\d+)\./.exec(a)?.[1];
  const lb = /^blk\.(\d+)\./.exec(b)?.[1];
  const na = la === undefined ? -1 : Number(la);
  const nb = lb === undefined ? -1 : Number(lb);
  if (na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

// attn_qkv and attn_kv_b count as attn_v (category_is_attn_v), so they share its category here.
type Category = 'token_embd' | 'output' | 'attn_v' | 'attn_k' | 'attn_q' | 'attn_output' | 'ffn_up' | 'ffn_gate' | 'ffn_down' | 'other';

// llama-quant.cpp's tensor_get_category: substring tests, in this order.
function category(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight') return 'token_embd';
  if (name.includes('attn_qkv.weight') || name.includes('attn_kv_b.weight') || name.includes('attn_v.weight')) return 'attn_v';
  if (name.includes('attn_k.weight')) return 'attn_k';
  if (name.includes('attn_q.weight')) return 'attn_q';
  if (name.includes('attn_output.weight')) return 'attn_output';
  if (name.includes('ffn_up')) return 'ffn_up';
  if (name.includes('ffn_gate')) return 'ffn_gate';
  if (name.includes('ffn_down')) return 'ffn_down';
  return 'other';
}

/** llama-quant.cpp's tensor_allows_quantization, for the tensors these presets have. */
function quantizable(name: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && name.endsWith('weight') && !name.includes('_norm.weight') && !name.includes('ffn_gate_inp.weight');
}

/** The same rule llama.cpp uses to spend more bits on some layers: the first and last eighth, and every third one between. */
const useMoreBits = (i: number, n: number): boolean => i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;

/** tensor_type_fallback: K-quants need rows of 256 values; other blocks take 32. */
function fallback(type: number, rowLen: number): number {
  const block = type === Q4_K || type === Q5_K || type === Q6_K ? 256 : type === F16 || type === F32 || type === BF16 ? 1 : 32;
  if (rowLen % block === 0) return type;
  const next = type === Q4_K ? Q5_0 : type === Q5_K ? Q5_1 : type === Q6_K ? Q8_0 : F16;
  return rowLen % 32 === 0 ? next : F16;
}

/**
 * The type of every tensor for an output type. F32/F16/BF16/Q8_0 follow convert_hf_to_gguf.py: 1-D tensors and
 * the MoE router stay F32, Q8_0 rows that are not whole blocks become F16. Q4_K_M follows llama-quant.cpp's
 * llama_tensor_get_type (quantizing an F32/F16 GGUF, no imatrix), walking tensors in the loader's order:
 *  - default Q4_K;
 *  - output.weight (and token_embd.weight when there is no output.weight, i.e. tied): Q6_K, or Q8_0 when its
 *    rows are not a multiple of 256; an untied token_embd keeps Q4_K;
 *  - attn_v / attn_qkv / attn_kv_b: Q6_K when use_more_bits(i, n) over their count; 8-expert models Q8_0;
 *    a 70B Llama bumps the Q4_K ones to Q5_K;
 *  - attn_k: Q8_0 in 8-expert models; attn_output: Q5_K in 8-expert models;
 *  - ffn_down (also *_exps, *_shexp): Q6_K when use_more_bits(layer, n_layer) — the layer is the tensor's
 *    position among ffn_down tensors, or for MoE models the blk number in its name;
 *  - then the fallback for rows that are not whole blocks: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0 (→ F16).
 * Any other GGML type name is applied to every quantizable tensor (llama-quantize --pure), with the fallback.
 */
export function tensorTypes(outtype: string, tensors: readonly { name: string; shape: readonly number[] }[], info: MixtureModelInfo): Map<string, number> {
  const types = new Map<string, number>();
  const up = outtype.toUpperCase();
  const keepF32 = (t: { name: string; shape: readonly number[] }) => !quantizable(t.name, t.shape);
  if (up === 'F32' || up === 'F16' || up === 'BF16' || up === 'Q8_0') {
    const base = ggmlTypeByName(up)!;
    for (const t of tensors) types.set(t.name, keepF32(t) ? F32 : base === Q8_0 && t.shape[0]! % 32 !== 0 ? F16 : base);
    return types;
  }
  const pure = up !== 'Q4_K_M';
  const base = pure ? ggmlTypeByName(up) : Q4_K;
  if (base === undefined) throw new Error(`unknown output type ${outtype} (${GGUF_OUTTYPES.join(', ')}, or a GGML type name)`);
  const sorted = [...tensors].sort((a, b) => llamaTensorOrder(a.name, b.name));
  const nAttnV = sorted.filter((t) => category(t.name) === 'attn_v').length;
  const tied = !tensors.some((t) => t.name === 'output.weight');
  const is70B = info.arch === 'llama' && info.layers === 80 && info.heads !== info.kvHeads;
  let iAttnV = 0;
  let iFfnDown = 0;
  for (const t of sorted) {
    if (keepF32(t)) {
      types.set(t.name, F32);
      continue;
    }
    const cat = category(t.name);
    let type = base;
    if (!pure) {
      if (cat === 'output' || (tied && cat === 'token_embd')) type = t.shape[0]! % 256 !== 0 ? Q8_0 : Q6_K;
      else if (cat === 'attn_v') {
        if (useMoreBits(iAttnV, nAttnV)) type = Q6_K;
        if (is70B && type === Q4_K) type = Q5_K;
        if (info.experts === 8) type = Q8_0;
        iAttnV++;
      } else if (cat === 'attn_k' && info.experts === 8) type = Q8_0;
      else if (cat === 'attn_output' && info.experts === 8) type = Q5_K;
      else if (cat === 'ffn_down') {
        const layer = info.experts > 1 ? Number(/^blk\.(\d+)\./.exec(t.name)?.[1] ?? -1) : iFfnDown;
        if (useMoreBits(layer, info.layers)) type = Q6_K;
        iFfnDown++;
      }
    }
    types.set(t.name, fallback(type, t.shape[0]!));
  }
  return types;
}

// ---------------------------------------------------------------------------------------------------------------
// Metadata and the file

/** general.size_label as gguf-py writes it: 1.2B, 984K, or 64x2.1B for MoE (shared + one expert's parameters). */
export function sizeLabel(plan: readonly PlannedTensor[]): string {
  let shared = 0;
  let expert = 0;
  let experts = 0;
  for (const t of plan) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.name.includes('_exps.')) {
      expert += n;
      experts = t.shape[2] ?? 1;
    } else shared += n;
  }
  const fmt = (n: number): string => {
    const [scaled, suffix] = n > 1e12 ? [n / 1e12, 'T'] : n > 1e9 ? [n / 1e9, 'B'] : n > 1e6 ? [n / 1e6, 'M'] : [n / 1e3, 'K'];
    const digits = String(Math.round(scaled)).replace(/^0+/, '').length;
    return `${scaled.toFixed(Math.max(2 - digits, 0))}${suffix}`;
  };
  return experts > 0 ? `${experts}x${fmt(shared + expert / experts)}` : fmt(shared);
}

/** Declares the metadata llama.cpp's converter writes for this shape, in its order. */
export function addGgufMetadata(w: GgufWriter, s: RandomModelShape, tok: GgufTokenizerData, name: string, fileType: number, plan: readonly PlannedTensor[]): void {
  const a = s.architecture;
  const u32 = (key: string, v: number) => w.addMetadata(`${a}.${key}`, v, 'u32');
  const f32 = (key: string, v: number) => w.addMetadata(`${a}.${key}`, v, 'f32');
  w.addMetadata('general.architecture', a);
  w.addMetadata('general.type', 'model');
  w.addMetadata('general.name', name);
  w.addMetadata('general.size_label', sizeLabel(plan));
  u32('block_count', s.layers);
  u32('context_length', s.context);
  u32('embedding_length', s.hidden);
  u32('feed_forward_length', s.ffn);
  u32('attention.head_count', s.heads);
  u32('attention.head_count_kv', s.mla ? 1 : s.kvHeads); // MLA runs as MQA over the compressed KV
  const rs = s.ropeScaling;
  if (rs?.type === 'yarn') {
    w.addMetadata(`${a}.rope.scaling.type`, 'yarn');
    f32('rope.scaling.factor', rs.factor);
    u32('rope.scaling.original_context_length', rs.originalContext);
    f32('rope.scaling.yarn_beta_fast', rs.betaFast);
    f32('rope.scaling.yarn_beta_slow', rs.betaSlow);
  }
  f32('rope.freq_base', s.ropeTheta);
  f32('attention.layer_norm_rms_epsilon', s.rmsEps);
  // DeepSeek's config has n_group, topk_group and scoring_func, which the converter writes; Qwen3-MoE's has none.
  const deepseek = a === 'deepseek2';
  if (s.moe) {
    u32('expert_count', s.moe.experts);
    u32('expert_used_count', s.moe.used);
  }
  if (s.moe && deepseek) {
    u32('expert_group_count', s.moe.groups);
    u32('expert_group_used_count', s.moe.groupsUsed);
    u32('expert_gating_func', s.moe.gating === 'softmax' ? 1 : 2);
  }
  const m = s.mla;
  u32('attention.key_length', m ? m.kvLoraRank + m.qkRope : s.headDim);
  u32('attention.value_length', m ? m.kvLoraRank : s.headDim);
  w.addMetadata('general.file_type', fileType, 'u32');
  if (s.moe && deepseek) u32('leading_dense_block_count', s.moe.leadingDense);
  if (a === 'llama' || deepseek) u32('vocab_size', s.vocab);
  if (m) {
    if (m.qLoraRank !== undefined) u32('attention.q_lora_rank', m.qLoraRank);
    u32('attention.kv_lora_rank', m.kvLoraRank);
    u32('attention.key_length_mla', m.qkNope + m.qkRope);
    u32('attention.value_length_mla', m.vHead);
  }
  // Qwen3-MoE ends here: llama.cpp's qwen3moe always renormalizes the top-k weights and has no shared expert.
  if (s.moe) u32('expert_feed_forward_length', s.moe.ffn);
  if (s.moe && deepseek) {
    u32('expert_shared_count', s.moe.shared);
    f32('expert_weights_scale', s.moe.scalingFactor);
    if (s.moe.normTopk) w.addMetadata(`${a}.expert_weights_norm`, true);
  }
  if (a === 'llama') u32('rope.dimension_count', s.headDim);
  if (m) u32('rope.dimension_count', m.qkRope);
  // deepseek2 keeps 0.1·mscale_all_dim here (llama.cpp's TAG_DEEPSEEK2_YARN_LOG_MUL_FIX).
  if (rs?.type === 'yarn' && s.architecture === 'deepseek2') f32('rope.scaling.yarn_log_multiplier', 0.1 * rs.mscaleAllDim);
  w.addMetadata('general.quantization_version', 2, 'u32');
  addTokenizerMetadata(w, tok);
}

export interface WriteRandomOptions {
  /** F32, F16, BF16, Q8_0, Q4_K_M, or one GGML type for every weight (e.g. Q4_K). */
  outtype: string;
  seed: number;
  /** general.name. */
  name: string;
  /** Called as bytes are written (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** Values per chunk handed to the writer: bounds memory whatever the tensor size. */
const CHUNK_ELEMS = 1 << 22;

/** A model's file before any byte is written: every key and tensor declared on `writer`, each tensor's type. */
export interface DeclaredGguf {
  writer: GgufWriter;
  plan: PlannedTensor[];
  types: Map<string, number>;
  /** Bytes of tensor data (unpadded). */
  tensorBytes: number;
}

/** Declares the model's metadata and tensors on a writer for `path` (nothing is written yet). */
export function declareRandomGguf(path: string, s: RandomModelShape, opts: Pick<WriteRandomOptions, 'outtype' | 'name'>): DeclaredGguf {
  const tok = loadPresetTokenizer(s.tokenizer, s.vocab).gguf;
  if (tok.tokens.length !== s.vocab) throw new Error(`tokenizer has ${tok.tokens.length} tokens, the model ${s.vocab} embedding rows`);
  const plan = ggufTensorPlan(s);
  const info: MixtureModelInfo = { arch: s.architecture, layers: s.layers, experts: s.moe?.experts ?? 0, heads: s.heads, kvHeads: s.kvHeads };
  const types = tensorTypes(opts.outtype, plan, info);
  const writer = new GgufWriter(path);
  addGgufMetadata(writer, s, tok, opts.name, ggufFileType(opts.outtype), plan);
  for (const t of plan) writer.addTensorInfo(t.name, types.get(t.name)!, t.shape);
  const tensorBytes = plan.reduce((n, t) => n + tensorByteLength(types.get(t.name)!, t.shape), 0);
  return { writer, plan, types, tensorBytes };
}

/** Writes the whole model; returns the bytes of tensor data written. */
export async function writeRandomGguf(path: string, s: RandomModelShape, opts: WriteRandomOptions): Promise<number> {
  const { writer: w, plan, types, tensorBytes: total } = declareRandomGguf(path, s, opts);
  await w.writeHeader();
  const source = new RandomTensorSource(opts.seed);
  let done = 0;
  for (const t of plan) {
    const type = types.get(t.name)!;
    if (t.data) {
      await w.writeTensorData(t.name, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      done += t.data.byteLength;
      continue;
    }
    const rowLen = t.shape[0]!;
    const rows = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMS / rowLen));
    for (let r = 0; r < rows; r += rowsPerChunk) {
      const bytes = source.bytes(type, t.mean, t.std, Math.min(rowsPerChunk, rows - r) * rowLen);
      await w.writeTensorData(t.name, bytes);
      done += bytes.byteLength;
      opts.onProgress?.(done, total);
    }
  }
  await w.close();
  return total;
}
