// The shipped demo model through the whole server (the one `npm start` serves) and the official openai client:
// exact answers, computed here from the questions, alone and 32 at a time through batching, chunked prefill and
// the prefix cache; and the HF→GGUF converter that made it, against llama.cpp's converter on the fixtures.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readWeightBytes } from '../src/backend/host-weights.js';
import { readGguf, type GgufModelFile } from '../src/formats/gguf.js';
import { ensureDemoModel } from '../src/make-model/demo-model.js';
import { convertHfLlamaToGguf, ggufTokenizerFromHf } from '../src/make-model/hf-to-gguf.js';
import { GgufWeights } from '../src/models/weights.js';
import { ask, startLocalServer, type LocalServer } from '../scripts/demo-model/local-server.js';
import { fixturePath, needFixtures } from './fixtures.js';

/** Deterministic operands (an LCG), so the questions are fixed but not hand-picked. */
function operands(seed: number, n: number): [number, number][] {
  let s = seed;
  const next = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 90 + 10; // 10..99
  return Array.from({ length: n }, () => [next(), next()]);
}

describe('the demo model served by ktserve', () => {
  let server: LocalServer;
  before(async () => {
    // Small chunks and batches of up to 32: long prompts are prefilled over several steps while others decode.
    server = await startLocalServer({ ggufPath: await ensureDemoModel() }, { chunkSize: 32, maxBatchSize: 32, prefixCaching: true });
  });
  after(async () => server.close());

  it('answers a handful of questions exactly', async () => {
    const nums = [42, 7, 19, 88, 3];
    const items = ['moon', 'apple', 'car', 'green'];
    const cases: [string, string][] = [
      ['What is 47+38?', String(47 + 38)],
      ['What is 91 - 56?', String(91 - 56)],
      ['Which is larger, 412 or 398?', String(Math.max(412, 398))],
      [`Sort these numbers from smallest to largest: ${nums.join(', ')}.`, [...nums].sort((a, b) => a - b).join(', ')],
      [`Reverse the list: ${items.join(', ')}.`, [...items].reverse().join(', ')],
      ['Convert 3 kilometers to meters.', `${3 * 1000} meters`],
    ];
    for (const [q, expected] of cases) assert.equal(await ask(server.client, q), expected, q);
  });

  it('answers 32 concurrent questions, each correctly', async () => {
    const system = 'You are a careful calculator.';
    const qs = operands(20261126, 32).map(([a, b], i) =>
      i % 2 === 0 ? { q: `What is ${a}+${b}?`, expected: String(a + b) } : { q: `What is ${a} - ${b}?`, expected: String(a - b) });
    // Half share a system prompt (prefix-cache hits), half have none; all are in flight at once.
    const answers = await Promise.all(qs.map(({ q }, i) => ask(server.client, q, i % 4 < 2 ? system : undefined)));
    qs.forEach(({ q, expected }, i) => assert.equal(answers[i], expected, q));
  });
});

describe('HF → GGUF converter against llama.cpp convert_hf_to_gguf.py (fixtures)', needFixtures, () => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-hf2gguf-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const bytes = (g: GgufModelFile, name: string): Uint8Array => {
    assert.ok(g.tensors.has(name), `tensor ${name}`);
    return readWeightBytes(new GgufWeights(g).get(name));
  };

  it('writes the Llama fixture as llama.cpp does: every weight byte for byte (q/k rows permuted), same metadata', async () => {
    const out = join(dir, 'llama-f16.gguf');
    await convertHfLlamaToGguf(fixturePath('llama'), out, { outtype: 'F16' });
    const ours = readGguf(out);
    const ref = readGguf(fixturePath('llama', 'llama-f16.gguf'));
    assert.deepEqual([...ours.tensors.keys()].sort(), [...ref.tensors.keys()].sort());
    for (const [name, t] of ref.tensors) {
      const mine = ours.tensors.get(name)!;
      assert.equal(mine.type, t.type, name);
      assert.deepEqual([...mine.shape], [...t.shape], name);
      if (name === 'rope_freqs.weight') continue; // computed, not copied: compared as numbers below
      assert.ok(Buffer.from(bytes(ours, name)).equals(Buffer.from(bytes(ref, name))), `${name} bytes`);
    }
    const f = (g: GgufModelFile) => new Float32Array(bytes(g, 'rope_freqs.weight').slice().buffer);
    f(ref).forEach((v, i) => assert.ok(Math.abs(f(ours)[i]! - v) <= 1e-6 * Math.abs(v), `rope_freqs[${i}]`));
    const skip = new Set(['general.name', 'general.size_label', 'tokenizer.ggml.add_sep_token']); // naming only; add_sep is BERT's
    for (const [key, value] of ref.metadata) {
      if (!skip.has(key)) assert.deepEqual(ours.metadata.get(key), value, key);
    }
  });

  it('writes a Qwen-style byte-level BPE tokenizer as llama.cpp does (pre-tokenizer qwen2, ids, merges, types)', () => {
    const t = ggufTokenizerFromHf(fixturePath('qwen3'));
    const ref = readGguf(fixturePath('qwen3', 'qwen3-f16.gguf')).metadata;
    const K = 'tokenizer.ggml.';
    assert.equal(t.pre, ref.get(K + 'pre'));
    assert.deepEqual(t.tokens, ref.get(K + 'tokens'));
    assert.deepEqual(Array.from(t.tokenTypes), Array.from(ref.get(K + 'token_type') as ArrayLike<number>));
    assert.deepEqual(t.merges, ref.get(K + 'merges'));
    assert.equal(t.bosId, ref.get(K + 'bos_token_id'));
    assert.equal(t.eosId, ref.get(K + 'eos_token_id'));
    assert.equal(t.padId, ref.get(K + 'padding_token_id'));
    assert.equal(t.addBos, ref.get(K + 'add_bos_token'));
    assert.equal(t.chatTemplate, ref.get('tokenizer.chat_template'));
  });
});
