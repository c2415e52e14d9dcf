// SentencePiece-style vocabularies on small hand-made vocabularies. The expected ids are derived by hand (in the
// comments) from the algorithms' definitions: llama.cpp's SPM tokenizer for GGUF "llama" vocabularies (merge the
// adjacent pair whose concatenation is a vocabulary piece of highest score, leftmost on ties; pieces left over
// become <0xXX> byte tokens) and Hugging Face's BPE with byte_fallback (merge the lowest-ranked pair, leftmost).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GgufValue } from '../src/formats/gguf.js';
import { loadTokenizerFromGguf, tokenizerFromJson } from '../src/tokenizer/index.js';

const BYTE_BASE = 3; // <unk>, <s>, </s>, then <0x00>..<0xFF>

function byteTokens(): string[] {
  return Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
}

/** GGUF metadata of a "llama" vocabulary: <unk>, <s>, </s>, 256 byte tokens, then `pieces` with their scores. */
function spmMetadata(pieces: Array<[string, number]>, addSpacePrefix: boolean): Map<string, GgufValue> {
  const tokens = ['<unk>', '<s>', '</s>', ...byteTokens(), ...pieces.map(([p]) => p)];
  const types = [2, 3, 3, ...byteTokens().map(() => 6), ...pieces.map(() => 1)];
  const scores = [0, 0, 0, ...byteTokens().map(() => 0), ...pieces.map(([, s]) => s)];
  return new Map<string, GgufValue>([
    ['tokenizer.ggml.model', 'llama'],
    ['tokenizer.ggml.tokens', tokens],
    ['tokenizer.ggml.token_type', types],
    ['tokenizer.ggml.scores', scores],
    ['tokenizer.ggml.unknown_token_id', 0],
    ['tokenizer.ggml.bos_token_id', 1],
    ['tokenizer.ggml.eos_token_id', 2],
    ['tokenizer.ggml.add_space_prefix', addSpacePrefix],
  ]);
}

describe('GGUF "llama" (SentencePiece) vocabularies, merged by score', () => {
  const base = 3 + 256; // id of the first piece
  const ids = (tok: { tokenToId(t: string): number | undefined }, ...pieces: string[]): number[] => pieces.map((p) => tok.tokenToId(p)!);

  it('the higher-scored pair merges first', () => {
    // "abc": pairs ab and bc are both pieces. bc (-1) beats ab (-5): a|bc, and "abc" is no piece: [a, bc].
    const bcFirst = loadTokenizerFromGguf(spmMetadata([['a', 0], ['b', 0], ['c', 0], ['ab', -5], ['bc', -1]], false));
    assert.deepEqual(bcFirst.encode('abc', { addSpecialTokens: false }), ids(bcFirst, 'a', 'bc'));
    // Scores swapped: ab (-1) first, then "abc" is no piece: [ab, c].
    const abFirst = loadTokenizerFromGguf(spmMetadata([['a', 0], ['b', 0], ['c', 0], ['ab', -1], ['bc', -5]], false));
    assert.deepEqual(abFirst.encode('abc', { addSpecialTokens: false }), ids(abFirst, 'ab', 'c'));
  });

  it('on equal scores the leftmost pair merges first', () => {
    const tok = loadTokenizerFromGguf(spmMetadata([['a', 0], ['b', 0], ['c', 0], ['ab', -2], ['bc', -2]], false));
    assert.deepEqual(tok.encode('abc', { addSpecialTokens: false }), ids(tok, 'ab', 'c'));
  });

  it('merges chain through new pairs, with the space prefix written as ▁, and BOS is added by default', () => {
    // "hello" → "▁hello": ll (-1) → ▁ h e ll o; he (-2) → ▁ he ll o; llo (-3) → ▁ he llo; hello (-4) → ▁ hello;
    // ▁hello (-5) → one piece.
    const tok = loadTokenizerFromGguf(spmMetadata(
      [['▁', 0], ['h', 0], ['e', 0], ['l', 0], ['o', 0], ['he', -2], ['ll', -1], ['llo', -3], ['hello', -4], ['▁hello', -5]], true));
    assert.deepEqual(tok.encode('hello', { addSpecialTokens: false }), ids(tok, '▁hello'));
    assert.deepEqual(tok.encode('hello'), [1, ...ids(tok, '▁hello')]);
    assert.equal(tok.addsBos, true);
    // Decoding drops the space the prefix put before the first word.
    assert.equal(tok.decode(ids(tok, '▁hello')), 'hello');
  });

  it('characters that form no piece become byte tokens, and decode back', () => {
    // "aé": 'a' is a piece; 'é' is not, so its UTF-8 bytes C3 A9 become <0xC3> <0xA9>.
    const tok = loadTokenizerFromGguf(spmMetadata([['a', 0]], false));
    const encoded = tok.encode('aé', { addSpecialTokens: false });
    assert.deepEqual(encoded, [base, BYTE_BASE + 0xc3, BYTE_BASE + 0xa9]);
    assert.equal(tok.decode(encoded), 'aé');
  });

  it('control tokens in the text are matched, and the text after them gets the space prefix', () => {
    // "<s>a b" → <s>, then " a b" → "▁a▁b": ▁a and ▁b tie (-1); leftmost first; "a▁" is no piece: [▁a, ▁b].
    const tok = loadTokenizerFromGguf(spmMetadata([['▁', 0], ['a', 0], ['b', 0], ['▁a', -1], ['▁b', -1]], true));
    const encoded = tok.encode('<s>a b', { addSpecialTokens: false });
    assert.deepEqual(encoded, [1, ...ids(tok, '▁a', '▁b')]);
    assert.ok(tok.isSpecial(1));
    assert.equal(tok.decode(encoded, { skipSpecialTokens: true }), 'a b');
  });
});

describe('tokenizer.json BPE with byte_fallback (SentencePiece converted by Hugging Face)', () => {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  byteTokens().forEach((t, b) => (vocab[t] = BYTE_BASE + b));
  for (const piece of ['▁', 'a', 'b', '▁a', 'ab', '▁ab']) vocab[piece] = Object.keys(vocab).length;
  const json = {
    added_tokens: [
      { id: 0, content: '<unk>', special: true, normalized: false },
      { id: 1, content: '<s>', special: true, normalized: false },
      { id: 2, content: '</s>', special: true, normalized: false },
    ],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: { type: 'BPE', byte_fallback: true, unk_token: '<unk>', fuse_unk: true, vocab, merges: ['▁ a', 'a b', '▁a b'] },
  };

  it('merges by rank (leftmost first), falls back to bytes, and decodes back', () => {
    const tok = tokenizerFromJson(json);
    // "ab ab é" → "▁ab▁ab▁é". Rank 0 (▁ a) merges both ▁a, leftmost first, so rank 1 (a b) never applies; rank 2
    // (▁a b) gives ▁ab twice. ▁ has no merge with a byte; é is not in the vocabulary: <0xC3> <0xA9>.
    const expected = [vocab['▁ab']!, vocab['▁ab']!, vocab['▁']!, BYTE_BASE + 0xc3, BYTE_BASE + 0xa9];
    assert.deepEqual(tok.encode('ab ab é', { addSpecialTokens: false }), expected);
    assert.deepEqual(tok.encode('ab ab é'), [1, ...expected]);
    // Replace ▁ → ' ', bytes → "é", fuse, strip one leading space.
    assert.equal(tok.decode([1, ...expected], { skipSpecialTokens: true }), 'ab ab é');
  });
});
