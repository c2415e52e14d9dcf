// Writes a random-weight preset as a Hugging Face model directory: model.safetensors (streamed), config.json,
// generation_config.json, tokenizer.json and tokenizer_config.json, with the names and layouts transformers uses.
import { mkdirSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { GGML_TYPE } from '../formats/gguf-types.js';
import { RandomTensorSource, hasQkNorm, loadPresetTokenizer, outputStd, type RandomModelShape } from './random-model.js';

export const SAFETENSORS_DTYPES = ['BF16', 'F16', 'F32'] as const;
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

/** One tensor; `shape` row-major as torch has it ([out, in] for a linear layer). */
interface HfTensor {
  name: string;
  shape: number[];
  mean: number;
  std: number;
}

const lin = (name: string, outDim: number, inDim: number): HfTensor => ({ name, shape: [outDim, inDim], mean: 0, std: 1 / Math.sqrt(inDim) });
const norm = (name: string, n: number): HfTensor => ({ name, shape: [n], mean: 1, std: 0.1 });

/** The checkpoint's tensors as transformers names them (LlamaForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, DeepseekV2ForCausalLM). */
export function hfTensorPlan(s: RandomModelShape): HfTensor[] {
  const plan: HfTensor[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocab, s.hidden], mean: 0, std: s.tiedEmbeddings ? outputStd(s.hidden) : 1 }];
  const mlp = (p: string, width: number) => [lin(`${p}.gate_proj.weight`, width, s.hidden), lin(`${p}.up_proj.weight`, width, s.hidden), lin(`${p}.down_proj.weight`, s.hidden, width)];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}`;
    plan.push(norm(`${p}.input_layernorm.weight`, s.hidden));
    const m = s.mla;
    if (m) {
      const qDim = s.heads * (m.qkNope + m.qkRope);
      if (m.qLoraRank === undefined) plan.push(lin(`${p}.self_attn.q_proj.weight`, qDim, s.hidden));
      else plan.push(lin(`${p}.self_attn.q_a_proj.weight`, m.qLoraRank, s.hidden), norm(`${p}.self_attn.q_a_layernorm.weight`, m.qLoraRank), lin(`${p}.self_attn.q_b_proj.weight`, qDim, m.qLoraRank));
      plan.push(
        lin(`${p}.self_attn.kv_a_proj_with_mqa.weight`, m.kvLoraRank + m.qkRope, s.hidden),
        norm(`${p}.self_attn.kv_a_layernorm.weight`, m.kvLoraRank),
        lin(`${p}.self_attn.kv_b_proj.weight`, s.heads * (m.qkNope + m.vHead), m.kvLoraRank),
        lin(`${p}.self_attn.o_proj.weight`, s.hidden, s.heads * m.vHead),
      );
    } else {
      plan.push(
        lin(`${p}.self_attn.q_proj.weight`, s.heads * s.headDim, s.hidden),
        lin(`${p}.self_attn.k_proj.weight`, s.kvHeads * s.headDim, s.hidden),
        lin(`${p}.self_attn.v_proj.weight`, s.kvHeads * s.headDim, s.hidden),
        lin(`${p}.self_attn.o_proj.weight`, s.hidden, s.heads * s.headDim),
      );
      if (hasQkNorm(s)) plan.push(norm(`${p}.self_attn.q_norm.weight`, s.headDim), norm(`${p}.self_attn.k_norm.weight`, s.headDim));
    }
    plan.push(norm(`${p}.post_attention_layernorm.weight`, s.hidden));
    if (s.moe && l >= s.moe.leadingDense) {
      plan.push(lin(`${p}.mlp.gate.weight`, s.moe.experts, s.hidden));
      for (let e = 0; e < s.moe.experts; e++) plan.push(...mlp(`${p}.mlp.experts.${e}`, s.moe.ffn));
      if (s.moe.shared > 0) plan.push(...mlp(`${p}.mlp.shared_experts`, s.moe.shared * s.moe.ffn));
    } else plan.push(...mlp(`${p}.mlp`, s.ffn));
  }
  plan.push(norm('model.norm.weight', s.hidden));
  if (!s.tiedEmbeddings) plan.push({ name: 'lm_head.weight', shape: [s.vocab, s.hidden], mean: 0, std: outputStd(s.hidden) });
  return plan;
}

/** config.json as the model's own: the fields transformers (and our loader) read. */
export function hfConfig(s: RandomModelShape, dtype: SafetensorsDtype, bosId: number | undefined, eosIds: number[]): Record<string, unknown> {
  const common = {
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.ffn,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    hidden_act: 'silu',
    max_position_embeddings: s.context,
    rms_norm_eps: s.rmsEps,
    rope_theta: s.ropeTheta,
    tie_word_embeddings: s.tiedEmbeddings,
    attention_bias: false,
    attention_dropout: 0,
    initializer_range: 0.02,
    use_cache: true,
    bos_token_id: bosId ?? null,
    eos_token_id: eosIds.length === 1 ? eosIds[0] : eosIds,
    torch_dtype: { BF16: 'bfloat16', F16: 'float16', F32: 'float32' }[dtype],
  };
  const rs = s.ropeScaling;
  const ropeScaling = rs?.type === 'llama3'
    ? { rope_type: 'llama3', factor: rs.factor, low_freq_factor: rs.lowFreqFactor, high_freq_factor: rs.highFreqFactor, original_max_position_embeddings: rs.originalContext }
    : rs?.type === 'yarn'
      ? { type: 'yarn', factor: rs.factor, beta_fast: rs.betaFast, beta_slow: rs.betaSlow, mscale: rs.mscale, mscale_all_dim: rs.mscaleAllDim, original_max_position_embeddings: rs.originalContext }
      : null;
  if (s.architecture === 'llama') {
    return { architectures: ['LlamaForCausalLM'], model_type: 'llama', ...common, head_dim: s.headDim, rope_scaling: ropeScaling, mlp_bias: false };
  }
  if (s.architecture === 'qwen3') {
    return {
      architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', ...common, head_dim: s.headDim, rope_scaling: ropeScaling,
      use_sliding_window: false, sliding_window: null, max_window_layers: s.layers,
    };
  }
  const e = s.moe!;
  if (s.architecture === 'qwen3moe') {
    // Every layer sparse: llama.cpp's qwen3moe has no dense layers, so neither has this config.
    return {
      architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', ...common, head_dim: s.headDim, rope_scaling: ropeScaling,
      use_sliding_window: false, sliding_window: null, max_window_layers: s.layers,
      num_experts: e.experts, num_experts_per_tok: e.used, moe_intermediate_size: e.ffn, norm_topk_prob: e.normTopk,
      decoder_sparse_step: 1, mlp_only_layers: [], output_router_logits: false, router_aux_loss_coef: 0.001,
    };
  }
  const m = s.mla!;
  return {
    architectures: ['DeepseekV2ForCausalLM'], model_type: 'deepseek_v2', ...common,
    q_lora_rank: m.qLoraRank ?? null, kv_lora_rank: m.kvLoraRank, qk_nope_head_dim: m.qkNope, qk_rope_head_dim: m.qkRope, v_head_dim: m.vHead,
    n_routed_experts: e.experts, num_experts_per_tok: e.used, n_shared_experts: e.shared, moe_intermediate_size: e.ffn,
    first_k_dense_replace: e.leadingDense, moe_layer_freq: 1, norm_topk_prob: e.normTopk, routed_scaling_factor: e.scalingFactor,
    n_group: e.groups, topk_group: e.groupsUsed, topk_method: 'greedy', scoring_func: e.gating, aux_loss_alpha: 0.001, seq_aux: true,
    rope_scaling: ropeScaling,
  };
}

const DTYPE_TYPE: Record<SafetensorsDtype, number> = { BF16: GGML_TYPE['BF16']!, F16: GGML_TYPE['F16']!, F32: GGML_TYPE['F32']! };
const DTYPE_BYTES: Record<SafetensorsDtype, number> = { BF16: 2, F16: 2, F32: 4 };
const CHUNK_ELEMS = 1 << 22;

export interface WriteSafetensorsOptions {
  dtype: SafetensorsDtype;
  seed: number;
  onProgress?: (done: number, total: number) => void;
}

/** Writes the model directory `dir` (created if missing); returns the bytes of tensor data written. */
export async function writeRandomSafetensors(dir: string, s: RandomModelShape, opts: WriteSafetensorsOptions): Promise<number> {
  mkdirSync(dir, { recursive: true });
  const tok = loadPresetTokenizer(s.tokenizer, s.vocab);
  const plan = hfTensorPlan(s);
  const elemBytes = DTYPE_BYTES[opts.dtype];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of plan) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * elemBytes;
    header[t.name] = { dtype: opts.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const total = offset;
  // The header is padded with spaces to 8 bytes, so the data that follows stays aligned.
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const file = await open(join(dir, 'model.safetensors'), 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    await file.write(len);
    await file.write(json);
    const source = new RandomTensorSource(opts.seed);
    let done = 0;
    for (const t of plan) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      for (let i = 0; i < n; i += CHUNK_ELEMS) {
        const bytes = source.bytes(DTYPE_TYPE[opts.dtype], t.mean, t.std, Math.min(CHUNK_ELEMS, n - i));
        await file.write(bytes);
        done += bytes.byteLength;
        opts.onProgress?.(done, total);
      }
    }
  } finally {
    await file.close();
  }
  const eos = tok.eosIds;
  const write = (name: string, v: unknown) => writeFileSync(join(dir, name), `${JSON.stringify(v, null, 2)}\n`);
  write('config.json', hfConfig(s, opts.dtype, tok.gguf.bosId, eos));
  write('generation_config.json', { bos_token_id: tok.gguf.bosId ?? null, eos_token_id: eos.length === 1 ? eos[0] : eos, do_sample: false });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok.json));
  write('tokenizer_config.json', tok.config);
  return total;
}
