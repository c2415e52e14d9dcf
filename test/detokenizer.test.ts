// IncrementalDetokenizer: ids pushed one at a time give text pieces that concatenate to decode(all ids), and no piece
// holds a U+FFFD when the text has none, though the tiny fixture vocabularies split every non-ASCII character
// (CJK, emoji, ZWJ sequences, flags) into single-byte tokens.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { GgufValue } from '../src/formats/gguf.js';
import { IncrementalDetokenizer, loadTokenizerFromDir, loadTokenizerFromGguf, type Tokenizer } from '../src/tokenizer/index.js';
import { fixturePath, needFixtures, readFixtureJson, repoRoot } from './fixtures.js';

interface Cases {
  tokenizers: Record<string, { package: string; cases: Array<{ cat: string; text: string; ids: number[] }> }>;
}

function stream(tok: Tokenizer, ids: readonly number[], opts: { skipSpecialTokens?: boolean; promptIds?: number[] } = {}): { pieces: string[]; tail: string } {
  const d = new IncrementalDetokenizer(tok, opts);
  const pieces = ids.map((id) => d.push(id));
  return { pieces, tail: d.flush() };
}

function checkCorpus(tok: Tokenizer, corpus: Array<{ text: string; ids: number[] }>): number {
  let heldBack = 0;
  for (const { text, ids } of corpus) {
    for (const skipSpecialTokens of [false, true]) {
      const { pieces, tail } = stream(tok, ids, { skipSpecialTokens });
      assert.equal(pieces.join('') + tail, tok.decode(ids, { skipSpecialTokens }), JSON.stringify(text));
      if (!text.includes('\uFFFD')) {
        assert.ok(!pieces.some((p) => p.includes('\uFFFD')), `no U+FFFD streamed for ${JSON.stringify(text)}`);
        assert.equal(tail, '', 'nothing left for flush');
      }
      heldBack += pieces.filter((p) => p === '').length;
    }
  }
  return heldBack;
}

describe('IncrementalDetokenizer', needFixtures, () => {
  const cases = readFixtureJson<Cases>('tokenizer_cases.json').tokenizers;
  const texts = cases.llama3!.cases.filter((c) => c.cat !== 'special').map((c) => c.text);

  for (const dir of ['llama', 'qwen3', 'deepseek']) {
    it(`${dir} fixture tokenizer (bytes split across tokens): pieces concatenate to decode(all), never U+FFFD`, () => {
      const tok = loadTokenizerFromDir(fixturePath(dir));
      const corpus = texts.map((text) => ({ text, ids: tok.encode(text, { addSpecialTokens: true }) }));
      const held = checkCorpus(tok, corpus);
      assert.ok(held > 100, 'multi-byte characters were held back until complete');
    });
  }

  it('real DeepSeek-V3 tokenizer on the corpus ids from Hugging Face, special tokens included', () => {
    const entry = cases.deepseek_v3!;
    const tok = loadTokenizerFromDir(join(repoRoot, 'node_modules', entry.package, 'models'));
    checkCorpus(tok, entry.cases);
  });

  it('a tokenizer without tokenBytes is held back on a trailing U+FFFD instead', () => {
    const full = loadTokenizerFromDir(fixturePath('qwen3'));
    // Another Tokenizer implementation, which has no tokenBytes.
    const bare: Tokenizer = {
      vocabSize: full.vocabSize, bosId: full.bosId, addsBos: full.addsBos, eosIds: full.eosIds,
      encode: (t, o) => full.encode(t, o), decode: (ids, o) => full.decode(ids, o),
      idToToken: (id) => full.idToToken(id), tokenToId: (t) => full.tokenToId(t), isSpecial: (id) => full.isSpecial(id),
    };
    const text = '日本語 👨‍👩‍👧 🇫🇷 ok';
    const ids = full.encode(text);
    const { pieces, tail } = stream(bare, ids);
    assert.equal(pieces.join('') + tail, text);
    assert.ok(!pieces.some((p) => p.includes('\uFFFD')));
  });

  it('flush gives out an incomplete character as decode does', () => {
    const tok = loadTokenizerFromDir(fixturePath('llama'));
    const ids = tok.encode('a😀', { addSpecialTokens: false }).slice(0, -1); // drop the emoji's last byte
    const { pieces, tail } = stream(tok, ids);
    assert.equal(pieces.join('') + tail, tok.decode(ids));
    assert.ok(tail.endsWith('\uFFFD'));
  });

  it('with promptIds, the first generated word keeps the space a full decode keeps (SentencePiece vocabulary)', () => {
    // Hand-made "llama" vocabulary: the space prefix makes "hello" → ▁hello, and decode strips the leading space.
    const pieces: Array<[string, number]> = [['▁', 0], ['h', 0], ['e', 0], ['l', 0], ['o', 0], ['▁hello', -1]];
    const tokens = ['<unk>', '<s>', '</s>', ...pieces.map(([p]) => p)];
    const metadata = new Map<string, GgufValue>([
      ['tokenizer.ggml.model', 'llama'],
      ['tokenizer.ggml.tokens', tokens],
      ['tokenizer.ggml.token_type', [2, 3, 3, ...pieces.map(() => 1)]],
      ['tokenizer.ggml.scores', [0, 0, 0, ...pieces.map(([, s]) => s)]],
      ['tokenizer.ggml.bos_token_id', 1],
      ['tokenizer.ggml.eos_token_id', 2],
    ]);
    const tok = loadTokenizerFromGguf(metadata);
    const prompt = tok.encode('hello');
    const generated = tok.encode('hello', { addSpecialTokens: false });
    const all = [...prompt, ...generated];
    const expected = tok.decode(all, { skipSpecialTokens: true }).slice(tok.decode(prompt, { skipSpecialTokens: true }).length);
    assert.equal(expected, ' hello');
    const { pieces: out, tail } = stream(tok, generated, { skipSpecialTokens: true, promptIds: prompt });
    assert.equal(out.join('') + tail, expected);
  });
});
