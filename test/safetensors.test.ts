// Safetensors reader against the fixture models (shapes from config.json, values from the llama.cpp-written
// GGUF of the same model) and against sharded sets assembled here by the format's spec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, needFixtures, readFixtureJson } from './fixtures.js';
import { readSafetensors, SAFETENSORS_DTYPE_BYTES } from '../src/formats/safetensors.js';
import { readGguf } from '../src/formats/gguf.js';

type HfConfig = Record<string, number>;

function readAt(t: { file: string; offset: number; byteLength: number }): Buffer {
  const fd = openSync(t.file, 'r');
  try {
    const b = Buffer.alloc(t.byteLength);
    readSync(fd, b, 0, b.length, t.offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** A safetensors file as the spec lays it out: u64 LE header length, JSON header (space-padded), data. */
function safetensorsBytes(tensors: Array<{ name: string; dtype: string; shape: number[]; data: Uint8Array }>, metadata?: Record<string, string>, pad = 0): Buffer {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.length] };
    at += t.data.length;
  }
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...tensors.map((t) => t.data)]);
}

test('fixture models: names, dtypes and shapes agree with config.json', needFixtures, () => {
  for (const model of ['llama', 'qwen3', 'deepseek']) {
    const cfg = readFixtureJson<HfConfig>(model, 'config.json');
    const st = readSafetensors(fixturePath(model));
    assert.deepEqual(st.files, [fixturePath(model, 'model.safetensors')]);
    assert.equal(st.metadata.format, 'pt');
    const shape = (n: string): number[] | undefined => st.tensors.get(n)?.shape;
    const hidden = cfg.hidden_size!;
    assert.deepEqual(shape('model.embed_tokens.weight'), [cfg.vocab_size, hidden]);
    assert.deepEqual(shape('model.norm.weight'), [hidden]);
    assert.deepEqual(shape('model.layers.0.mlp.gate_proj.weight'), [cfg.intermediate_size, hidden]);
    const layers = new Set([...st.tensors.keys()].map((n) => /^model\.layers\.(\d+)\./.exec(n)?.[1]).filter(Boolean));
    assert.equal(layers.size, cfg.num_hidden_layers);
    const dtypes = new Set([...st.tensors.values()].map((t) => t.dtype));
    assert.deepEqual([...dtypes], [model === 'llama' ? 'F32' : 'BF16']); // README: Llama F32, others BF16
    if (model !== 'deepseek') {
      const headDim = cfg.head_dim!;
      assert.deepEqual(shape('model.layers.1.self_attn.q_proj.weight'), [cfg.num_attention_heads! * headDim, hidden]);
      assert.deepEqual(shape('model.layers.1.self_attn.k_proj.weight'), [cfg.num_key_value_heads! * headDim, hidden]);
    } else {
      assert.deepEqual(shape('model.layers.1.self_attn.kv_b_proj.weight'),
        [cfg.num_attention_heads! * (cfg.qk_nope_head_dim! + cfg.v_head_dim!), cfg.kv_lora_rank]);
      assert.deepEqual(shape(`model.layers.1.mlp.experts.${cfg.n_routed_experts! - 1}.down_proj.weight`), [hidden, cfg.moe_intermediate_size]);
    }
    // Offsets: data is packed after the header, in the file, every size = elements × dtype size.
    const sorted = [...st.tensors.values()].sort((a, b) => a.offset - b.offset);
    for (const t of sorted) assert.equal(t.byteLength, t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[t.dtype]);
  }
});

test('fixture values: norms equal the F32 copies llama.cpp wrote into the GGUF', needFixtures, () => {
  for (const [model, file] of [['llama', 'llama-f16.gguf'], ['qwen3', 'qwen3-f16.gguf'], ['deepseek', 'deepseek-f16.gguf']] as const) {
    const st = readSafetensors(fixturePath(model, 'model.safetensors'));
    const g = readGguf(fixturePath(model, file));
    const pairs: Array<[string, string]> = [['model.norm.weight', 'output_norm.weight'], ['model.layers.1.input_layernorm.weight', 'blk.1.attn_norm.weight']];
    for (const [hfName, ggufName] of pairs) {
      const t = st.tensors.get(hfName)!;
      const hf = readAt(t);
      const gg = readAt(g.tensors.get(ggufName)!);
      for (let i = 0; i < t.shape[0]!; i++) {
        const v = t.dtype === 'F32' ? hf.readFloatLE(i * 4) : new Float32Array(new Uint32Array([hf.readUInt16LE(i * 2) << 16]).buffer)[0]!;
        assert.equal(v, gg.readFloatLE(i * 4), `${model} ${hfName}[${i}]`);
      }
    }
  }
});

test('sharded model: index weight_map, shards with metadata and header padding, tensors located in their shard', () => {
  const dir = mkdtempSync(join(tmpdir(), 'st-shards-'));
  try {
    const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 255);
    const shard1 = [
      { name: 'a', dtype: 'F32', shape: [2, 3], data: bytes(24, 1) },
      { name: 'b', dtype: 'BF16', shape: [5], data: bytes(10, 2) },
      { name: 'empty', dtype: 'I64', shape: [0, 7], data: bytes(0, 0) },
    ];
    const shard2 = [
      { name: 'c', dtype: 'I8', shape: [3, 1, 2], data: bytes(6, 3) },
      { name: 'd', dtype: 'F8_E4M3', shape: [4], data: bytes(4, 4) },
      { name: 'e', dtype: 'BOOL', shape: [], data: bytes(1, 5) },
    ];
    writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), safetensorsBytes(shard1, { format: 'pt' }, 5));
    writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), safetensorsBytes(shard2));
    const weightMap = Object.fromEntries([...shard1.map((t) => [t.name, 'model-00001-of-00002.safetensors']), ...shard2.map((t) => [t.name, 'model-00002-of-00002.safetensors'])]);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 45 }, weight_map: weightMap }));

    const st = readSafetensors(dir);
    assert.deepEqual(st.files, [join(dir, 'model-00001-of-00002.safetensors'), join(dir, 'model-00002-of-00002.safetensors')]);
    assert.deepEqual(st.metadata, { format: 'pt', total_size: '45' });
    assert.deepEqual([...st.tensors.keys()].sort(), ['a', 'b', 'c', 'd', 'e', 'empty']);
    for (const t of [...shard1, ...shard2]) {
      const got = st.tensors.get(t.name)!;
      assert.equal(got.file, join(dir, weightMap[t.name]!));
      assert.deepEqual([got.dtype, got.shape, got.byteLength], [t.dtype, t.shape, t.data.length]);
      assert.deepEqual(new Uint8Array(readAt(got)), t.data, `${t.name} bytes`);
    }
    // The index file itself, and a single shard, are accepted too.
    assert.equal(readSafetensors(join(dir, 'model.safetensors.index.json')).tensors.size, 6);
    assert.equal(readSafetensors(join(dir, 'model-00002-of-00002.safetensors')).tensors.size, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
