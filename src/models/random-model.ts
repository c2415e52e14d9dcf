// Writes models with random weights in real architectures and shapes, so benchmarks and
// tests need no download. Weights are scaled (std 1/sqrt(fan_in)) so activations stay finite.
import { readFileSync } from 'node:fs';
import { loadNative } from '../backend/native.js';
import { GgufWriter } from '../formats/gguf-writer.js';
import { ggmlTypeByName } from '../formats/gguf-types.js';

export interface RandomModelShape {
  architecture: 'llama' | 'qwen3';
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  ropeTheta: number;
  context: number;
  tiedEmbeddings: boolean;
}

export const randomModelPresets: Record<string, RandomModelShape> = {
  'llama-3.2-1b': { architecture: 'llama', hidden: 2048, layers: 16, heads: 32, kvHeads: 8, headDim: 64, ffn: 8192, ropeTheta: 500000, context: 131072, tiedEmbeddings: true },
  'llama-3.1-8b': { architecture: 'llama', hidden: 4096, layers: 32, heads: 32, kvHeads: 8, headDim: 128, ffn: 14336, ropeTheta: 500000, context: 131072, tiedEmbeddings: false },
  'qwen3-8b': { architecture: 'qwen3', hidden: 4096, layers: 36, heads: 32, kvHeads: 8, headDim: 128, ffn: 12288, ropeTheta: 1000000, context: 40960, tiedEmbeddings: false },
  'tiny-llama': { architecture: 'llama', hidden: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64, ffn: 512, ropeTheta: 500000, context: 4096, tiedEmbeddings: false },
};

/** A tokenizer as GGUF metadata: tokens by id, merges, types, special ids, chat template. */
export interface GgufTokenizerData {
  pre: string;
  tokens: string[];
  tokenTypes: Int32Array;
  merges: string[];
  bosId: number;
  eosId: number;
  eotId: number | undefined;
  chatTemplate: string | undefined;
}

/** Reads a Hugging Face byte-level BPE tokenizer.json (+ tokenizer_config.json) into GGUF form. */
export function tokenizerDataFromHf(tokenizerJson: string, tokenizerConfig: string | undefined, pre: string): GgufTokenizerData {
  const tj = JSON.parse(readFileSync(tokenizerJson, 'utf8')) as {
    model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
    added_tokens: { id: number; content: string; special: boolean }[];
  };
  const size = [...Object.values(tj.model.vocab), ...tj.added_tokens.map((t) => t.id)].reduce((m, id) => Math.max(m, id + 1), 0);
  const tokens = Array.from({ length: size }, (_, i) => `[PAD${i}]`);
  const tokenTypes = new Int32Array(size).fill(1);
  for (const [tok, id] of Object.entries(tj.model.vocab)) tokens[id] = tok;
  for (const t of tj.added_tokens) {
    tokens[t.id] = t.content;
    tokenTypes[t.id] = t.special ? 3 : 4;
  }
  const cfg = tokenizerConfig ? (JSON.parse(readFileSync(tokenizerConfig, 'utf8')) as Record<string, unknown>) : {};
  const idOf = (v: unknown): number | undefined => {
    const s = typeof v === 'string' ? v : typeof v === 'object' && v && 'content' in v ? String((v as { content: unknown }).content) : undefined;
    return s === undefined ? undefined : tj.added_tokens.find((t) => t.content === s)?.id;
  };
  const eot = tj.added_tokens.find((t) => t.content === '<|eot_id|>' || t.content === '<|im_end|>')?.id;
  return {
    pre,
    tokens,
    tokenTypes,
    merges: tj.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m)),
    bosId: idOf(cfg['bos_token']) ?? 0,
    eosId: idOf(cfg['eos_token']) ?? 0,
    eotId: eot,
    chatTemplate: typeof cfg['chat_template'] === 'string' ? cfg['chat_template'] : undefined,
  };
}

/** Deterministic normal samples (mulberry32 + Box–Muller). */
export function normalSampler(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

interface TensorPlan {
  name: string;
  /** ggml order: [row length, rows]. */
  dims: number[];
  std: number;
  type: number;
}

export interface WriteRandomOptions {
  weightType: string;
  seed: number;
  name: string;
  onProgress?: (done: number, total: number) => void;
}

export async function writeRandomGguf(path: string, s: RandomModelShape, tok: GgufTokenizerData, opts: WriteRandomOptions): Promise<void> {
  const wtype = ggmlTypeByName(opts.weightType);
  if (wtype === undefined) throw new Error(`unknown weight type ${opts.weightType}`);
  const F32 = 0;
  const vocab = tok.tokens.length;
  const a = s.architecture;
  const w = new GgufWriter(path);
  w.addMetadata('general.architecture', a);
  w.addMetadata('general.name', opts.name);
  w.addMetadata(`${a}.context_length`, s.context, 'u32');
  w.addMetadata(`${a}.embedding_length`, s.hidden, 'u32');
  w.addMetadata(`${a}.block_count`, s.layers, 'u32');
  w.addMetadata(`${a}.feed_forward_length`, s.ffn, 'u32');
  w.addMetadata(`${a}.attention.head_count`, s.heads, 'u32');
  w.addMetadata(`${a}.attention.head_count_kv`, s.kvHeads, 'u32');
  w.addMetadata(`${a}.attention.key_length`, s.headDim, 'u32');
  w.addMetadata(`${a}.attention.value_length`, s.headDim, 'u32');
  w.addMetadata(`${a}.rope.dimension_count`, s.headDim, 'u32');
  w.addMetadata(`${a}.attention.layer_norm_rms_epsilon`, 1e-5, 'f32');
  w.addMetadata(`${a}.rope.freq_base`, s.ropeTheta, 'f32');
  w.addMetadata(`${a}.vocab_size`, vocab, 'u32');
  w.addMetadata('tokenizer.ggml.model', 'gpt2');
  w.addMetadata('tokenizer.ggml.pre', tok.pre);
  w.addMetadata('tokenizer.ggml.tokens', tok.tokens, 'string');
  w.addMetadata('tokenizer.ggml.token_type', tok.tokenTypes, 'i32');
  w.addMetadata('tokenizer.ggml.merges', tok.merges, 'string');
  w.addMetadata('tokenizer.ggml.bos_token_id', tok.bosId, 'u32');
  w.addMetadata('tokenizer.ggml.eos_token_id', tok.eosId, 'u32');
  if (tok.eotId !== undefined) w.addMetadata('tokenizer.ggml.eot_token_id', tok.eotId, 'u32');
  if (tok.chatTemplate) w.addMetadata('tokenizer.chat_template', tok.chatTemplate);
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const lin = (name: string, inDim: number, outDim: number): TensorPlan => ({ name, dims: [inDim, outDim], std: 1 / Math.sqrt(inDim), type: wtype });
  const norm = (name: string, n: number): TensorPlan => ({ name, dims: [n], std: 0, type: F32 });
  const plan: TensorPlan[] = [{ name: 'token_embd.weight', dims: [s.hidden, vocab], std: 1, type: wtype }];
  for (let l = 0; l < s.layers; l++) {
    const p = `blk.${l}.`;
    plan.push(norm(`${p}attn_norm.weight`, s.hidden), lin(`${p}attn_q.weight`, s.hidden, q), lin(`${p}attn_k.weight`, s.hidden, kv), lin(`${p}attn_v.weight`, s.hidden, kv), lin(`${p}attn_output.weight`, q, s.hidden));
    if (a === 'qwen3') plan.push(norm(`${p}attn_q_norm.weight`, s.headDim), norm(`${p}attn_k_norm.weight`, s.headDim));
    plan.push(norm(`${p}ffn_norm.weight`, s.hidden), lin(`${p}ffn_gate.weight`, s.hidden, s.ffn), lin(`${p}ffn_up.weight`, s.hidden, s.ffn), lin(`${p}ffn_down.weight`, s.ffn, s.hidden));
  }
  plan.push(norm('output_norm.weight', s.hidden));
  if (!s.tiedEmbeddings) plan.push({ ...lin('output.weight', s.hidden, vocab), std: 0.15 / Math.sqrt(s.hidden / 64) });
  for (const t of plan) w.addTensorInfo(t.name, t.type, t.dims);
  await w.writeHeader();
  const rand = normalSampler(opts.seed);
  const native = loadNative();
  const total = plan.reduce((n, t) => n + t.dims.reduce((x, y) => x * y, 1), 0);
  let done = 0;
  for (const t of plan) {
    const rowLen = t.dims[0]!;
    const rows = t.dims.slice(1).reduce((x, y) => x * y, 1);
    // Chunks of whole rows keep memory bounded for multi-GB tensors.
    const rowsPerChunk = Math.max(1, Math.floor((1 << 22) / rowLen));
    for (let r = 0; r < rows; r += rowsPerChunk) {
      const n = Math.min(rowsPerChunk, rows - r) * rowLen;
      const f = new Float32Array(n);
      for (let i = 0; i < n; i++) f[i] = t.std === 0 ? 1 : rand() * t.std;
      const bytes = t.type === F32 ? new Uint8Array(f.buffer) : native.quantize(t.type, f);
      await w.writeTensorData(t.name, bytes);
      done += n;
      opts.onProgress?.(done, total);
    }
  }
  await w.close();
}
