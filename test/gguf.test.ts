// GGUF reader against the fixture files written by llama.cpp, checked with independent facts: the HF
// config.json / tokenizer.json / model.safetensors of the same model, the fixture README, and the file sizes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, needFixtures, readFixtureJson } from './fixtures.js';
import { readAt, writeSplits } from './helpers/gguf-split.js';
import {
  getArray, getBool, getNumber, getString, getStringArray, readGguf, readGgufFile, type GgufModelFile, type GgufTensorInfo,
} from '../src/formats/gguf.js';
import { GGML_TYPES, ggmlTypeByName, tensorByteLength } from '../src/formats/gguf-types.js';
import { ModelDirectoryError } from '../src/formats/errors.js';
import { readSafetensors, type SafetensorsTensorInfo } from '../src/formats/safetensors.js';

type HfConfig = Record<string, number | boolean | string | null>;
interface TokenizerJson { model: { vocab: Record<string, number>; merges: Array<string | [string, string]> }; added_tokens: Array<{ id: number; content: string }> }

const MODELS = ['llama', 'qwen3', 'deepseek'] as const;
// llama.cpp's architecture names for these HF model types.
const ARCH: Record<string, string> = { llama: 'llama', qwen3: 'qwen3', deepseek_v2: 'deepseek2' };

function ggufFiles(model: string): string[] {
  return readdirSync(fixturePath(model)).filter((n) => n.endsWith('.gguf')).sort().map((n) => fixturePath(model, n));
}

/** A tensor's values as float64, for the plain float types of either format. */
function readFloats(t: { file: string; offset: number; byteLength: number }, dtype: string): Float64Array {
  const b = readAt(t.file, t.offset, t.byteLength);
  const size = dtype === 'F32' ? 4 : 2;
  const out = new Float64Array(b.length / size);
  const bits = new Uint32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  for (let i = 0; i < out.length; i++) {
    if (dtype === 'F32') out[i] = b.readFloatLE(i * 4);
    else if (dtype === 'BF16') {
      bits[0] = b.readUInt16LE(i * 2) << 16;
      out[i] = asFloat[0]!;
    } else out[i] = halfToFloat(b.readUInt16LE(i * 2));
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** HF tensor name → GGUF name and shape (ggml order), as llama.cpp's converter maps them. */
function expectedGguf(hf: SafetensorsTensorInfo, cfg: HfConfig): Array<{ name: string; shape: number[] }> {
  const rev = [...hf.shape].reverse();
  const global: Record<string, string> = { 'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight' };
  if (global[hf.name]) return [{ name: global[hf.name]!, shape: rev }];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf.name);
  assert.ok(m, `unexpected HF tensor ${hf.name}`);
  const blk = `blk.${m[1]}.`;
  const parts: Record<string, string> = {
    'input_layernorm.weight': 'attn_norm', 'post_attention_layernorm.weight': 'ffn_norm',
    'self_attn.q_proj.weight': 'attn_q', 'self_attn.k_proj.weight': 'attn_k', 'self_attn.v_proj.weight': 'attn_v',
    'self_attn.o_proj.weight': 'attn_output', 'self_attn.q_norm.weight': 'attn_q_norm', 'self_attn.k_norm.weight': 'attn_k_norm',
    'mlp.gate_proj.weight': 'ffn_gate', 'mlp.up_proj.weight': 'ffn_up', 'mlp.down_proj.weight': 'ffn_down',
    'self_attn.q_a_proj.weight': 'attn_q_a', 'self_attn.q_a_layernorm.weight': 'attn_q_a_norm', 'self_attn.q_b_proj.weight': 'attn_q_b',
    'self_attn.kv_a_proj_with_mqa.weight': 'attn_kv_a_mqa', 'self_attn.kv_a_layernorm.weight': 'attn_kv_a_norm',
    'mlp.gate.weight': 'ffn_gate_inp', 'mlp.shared_experts.gate_proj.weight': 'ffn_gate_shexp',
    'mlp.shared_experts.up_proj.weight': 'ffn_up_shexp', 'mlp.shared_experts.down_proj.weight': 'ffn_down_shexp',
  };
  const part = parts[m[2]!];
  if (part) return [{ name: `${blk}${part}.weight`, shape: rev }];
  const expert = /^mlp\.experts\.\d+\.(gate|up|down)_proj\.weight$/.exec(m[2]!);
  if (expert) return [{ name: `${blk}ffn_${expert[1]}_exps.weight`, shape: [...rev, cfg.n_routed_experts as number] }];
  if (m[2] === 'self_attn.kv_b_proj.weight') {
    // The converter splits kv_b per head into k_b (transposed) and v_b.
    const heads = cfg.num_attention_heads as number;
    const rank = cfg.kv_lora_rank as number;
    return [
      { name: `${blk}attn_k_b.weight`, shape: [cfg.qk_nope_head_dim as number, rank, heads] },
      { name: `${blk}attn_v_b.weight`, shape: [rank, cfg.v_head_dim as number, heads] },
    ];
  }
  assert.fail(`no GGUF mapping for ${hf.name}`);
}

for (const model of MODELS) {
  test(`${model}: every GGUF file agrees with config.json, tokenizer.json and model.safetensors`, needFixtures, () => {
    const cfg = readFixtureJson<HfConfig>(model, 'config.json');
    const tok = readFixtureJson<TokenizerJson>(model, 'tokenizer.json');
    const hf = readSafetensors(fixturePath(model));
    const arch = ARCH[cfg.model_type as string]!;
    const vocab: string[] = [];
    for (const [s, id] of Object.entries(tok.model.vocab)) vocab[id] = s;
    for (const a of tok.added_tokens) vocab[a.id] = a.content;
    const merges = tok.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));

    const files = ggufFiles(model);
    assert.ok(files.length >= 2);
    for (const file of files) {
      const g = readGguf(file);
      const md = g.metadata;
      assert.deepEqual(g.paths, [file]);
      assert.equal(g.version, 3);
      assert.equal(getString(md, 'general.architecture'), arch);
      assert.equal(getNumber(md, `${arch}.block_count`), cfg.num_hidden_layers);
      assert.equal(getNumber(md, `${arch}.embedding_length`), cfg.hidden_size);
      assert.equal(getNumber(md, `${arch}.feed_forward_length`), cfg.intermediate_size);
      assert.equal(getNumber(md, `${arch}.attention.head_count`), cfg.num_attention_heads);
      assert.equal(getNumber(md, `${arch}.context_length`), cfg.max_position_embeddings);
      assert.equal(getNumber(md, `${arch}.rope.freq_base`), cfg.rope_theta);
      assert.ok(Math.abs(getNumber(md, `${arch}.attention.layer_norm_rms_epsilon`)! - (cfg.rms_norm_eps as number)) < 1e-12);
      assert.equal(getArray(md, 'tokenizer.ggml.tokens')!.length, cfg.vocab_size);
      assert.deepEqual(getStringArray(md, 'tokenizer.ggml.tokens'), vocab);
      assert.deepEqual(getStringArray(md, 'tokenizer.ggml.merges'), merges);
      assert.equal(getNumber(md, 'tokenizer.ggml.bos_token_id'), cfg.bos_token_id);
      assert.equal(getBool(md, 'tokenizer.ggml.add_eos_token'), false);
      checkLayout(g, file);
      checkAgainstSafetensors(g, hf.tensors, cfg, model);
    }
  });
}

/** Data sections as llama.cpp lays them out: aligned, in the file, not overlapping, ending at the file's end. */
function checkLayout(g: GgufModelFile, file: string): void {
  const tensors = [...g.tensors.values()].sort((a, b) => a.offset - b.offset);
  const size = readGgufFile(file).fileSize;
  const dataStart = readGgufFile(file).dataOffset;
  let end = dataStart;
  for (const t of tensors) {
    assert.equal(t.file, file);
    assert.equal((t.offset - dataStart) % g.alignment, 0, `${t.name} aligned`);
    assert.ok(t.offset >= end, `${t.name} does not overlap the previous tensor`);
    assert.equal(t.byteLength, tensorByteLength(t.type, t.shape));
    end = t.offset + t.byteLength;
  }
  assert.ok(end <= size && size - end < g.alignment, `last tensor ends within one alignment of the end (${end} vs ${size})`);
}

function checkAgainstSafetensors(g: GgufModelFile, hf: Map<string, SafetensorsTensorInfo>, cfg: HfConfig, model: string): void {
  const seen = new Set<string>();
  let compared = 0;
  const headDim = (cfg.head_dim as number | null) ?? (cfg.hidden_size as number) / (cfg.num_attention_heads as number);
  for (const t of hf.values()) {
    for (const want of expectedGguf(t, cfg)) {
      const got = g.tensors.get(want.name);
      assert.ok(got, `${want.name} (from ${t.name}) is in the GGUF`);
      assert.deepEqual(got.shape, want.shape, `${want.name} shape`);
      seen.add(want.name);
      // Plain float tensors (norms, and every weight in f16 files) must hold the HF values.
      if (got.shape.length === 1 || GGML_TYPES[got.type]!.name === 'F16') compared += compareValues(got, t, want.name) ? 1 : 0;
    }
  }
  // Norms at least: 2 per layer plus the final one.
  assert.ok(compared >= 2 * (cfg.num_hidden_layers as number) + 1, `compared ${compared} tensors' values`);
  const extra = [...g.tensors.keys()].filter((n) => !seen.has(n));
  // Llama 3 rope scaling is baked into a rope_freqs tensor of head_dim/2 factors; tied Qwen3 has no output.weight.
  assert.deepEqual(extra, model === 'llama' ? ['rope_freqs.weight'] : []);
  if (model === 'llama') assert.deepEqual(g.tensors.get('rope_freqs.weight')!.shape, [headDim / 2]);
  if (cfg.tie_word_embeddings) assert.equal(g.tensors.has('output.weight'), false);
}

function compareValues(g: GgufTensorInfo, hf: SafetensorsTensorInfo, name: string): boolean {
  // The converter permutes Llama q/k rows for its RoPE layout and splits/merges some MLA and MoE tensors.
  if (/attn_[qk]\.weight$|_exps\.|attn_[kv]_b\./.test(name)) return false;
  const type = GGML_TYPES[g.type]!.name;
  const a = readFloats(g, type);
  const b = readFloats(hf, hf.dtype);
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    const tol = type === 'F32' ? 0 : Math.abs(b[i]!) * 2 ** -11 + 2 ** -24;
    if (Math.abs(a[i]! - b[i]!) > tol) assert.fail(`${name}[${i}]: GGUF ${a[i]} vs safetensors ${b[i]}`);
  }
  return true;
}

test('tensor types follow the fixture README (f16, Q4_K_M, Q5_K_M, DeepSeek fallbacks)', needFixtures, () => {
  const typeOf = (g: GgufModelFile, n: string): string => GGML_TYPES[g.tensors.get(n)!.type]!.name;
  for (const model of MODELS) {
    for (const file of ggufFiles(model)) {
      const g = readGguf(file);
      const quant = /-(Q\d_K)_M\.gguf$/.exec(file)?.[1];
      for (const t of g.tensors.values()) {
        const type = GGML_TYPES[t.type]!.name;
        if (t.shape.length === 1) assert.equal(type, 'F32', `${file}: 1-D ${t.name} stays F32`);
        else if (!quant) assert.ok(type === 'F16' || t.name.endsWith('ffn_gate_inp.weight'), `${file}: ${t.name} is ${type}`);
        else if (model !== 'deepseek') assert.ok([quant, 'Q6_K'].includes(type), `${file}: ${t.name} is ${type} (no fallbacks)`);
      }
      if (quant) assert.equal(getNumber(g.metadata, 'general.file_type'), quant === 'Q4_K' ? 15 : 17);
      else assert.equal(getNumber(g.metadata, 'general.file_type'), 1);
      if (model === 'deepseek' && quant) {
        for (const l of [0, 1]) {
          for (const p of ['attn_q_b', 'attn_k_b', 'attn_v_b']) assert.equal(typeOf(g, `blk.${l}.${p}.weight`), 'Q5_0');
          assert.equal(typeOf(g, `blk.${l}.attn_output.weight`), 'Q5_1');
        }
        assert.equal(typeOf(g, 'blk.1.ffn_down_exps.weight'), 'Q8_0');
        assert.equal(typeOf(g, 'blk.1.ffn_down_shexp.weight'), 'Q8_0');
        assert.equal(ggmlTypeByName('q5_0'), g.tensors.get('blk.0.attn_q_b.weight')!.type);
      }
    }
  }
});

test('a directory: refused when it holds several models, read when it holds one', needFixtures, () => {
  assert.throws(() => readGguf(fixturePath('llama')), (e: unknown) =>
    e instanceof ModelDirectoryError && e.message.includes(fixturePath('llama')) && e.message.includes('llama-f16.gguf'));
  const dir = mkdtempSync(join(tmpdir(), 'gguf-dir-'));
  try {
    const src = fixturePath('qwen3', 'qwen3-Q4_K_M.gguf');
    symlinkSync(src, join(dir, 'model.gguf'));
    const g = readGguf(dir);
    assert.equal(g.tensors.size, readGguf(src).tensors.size);
    assert.equal(getString(g.metadata, 'general.architecture'), 'qwen3');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('split models: any split finds the others; tensors remember their own file', needFixtures, async () => {
  const src = fixturePath('llama', 'llama-Q4_K_M.gguf');
  const orig = readGguf(src);
  const dir = mkdtempSync(join(tmpdir(), 'gguf-split-'));
  try {
    for (const withMetadata of [true, false]) {
      const prefix = withMetadata ? 'meta' : 'named';
      const paths = await writeSplits(src, dir, prefix, 3, withMetadata);
      for (const entry of paths) {
        const g = readGguf(entry);
        assert.deepEqual(g.paths, paths);
        assert.equal(getString(g.metadata, 'general.architecture'), 'llama');
        assert.deepEqual([...g.tensors.keys()], [...orig.tensors.keys()]);
        for (const [name, t] of g.tensors) {
          const o = orig.tensors.get(name)!;
          assert.deepEqual([t.type, t.shape, t.byteLength], [o.type, o.shape, o.byteLength]);
          assert.ok(paths.includes(t.file));
          assert.ok(readAt(t.file, t.offset, t.byteLength).equals(readAt(o.file, o.offset, o.byteLength)), `${name} bytes`);
        }
      }
      assert.ok(new Set([...readGguf(paths[1]!).tensors.values()].map((t) => t.file)).size === 3);
    }
    // A directory holding one split set is one model.
    const setDir = mkdtempSync(join(tmpdir(), 'gguf-splitdir-'));
    try {
      const paths = await writeSplits(src, setDir, 'model', 2, true);
      assert.deepEqual(readGguf(setDir).paths, paths);
    } finally {
      rmSync(setDir, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
