// Added-token matching per Hugging Face's AddedToken documentation: leftmost-longest matches; `lstrip` / `rstrip`
// swallow the whitespace on that side; a `single_word` token only matches where it is not part of a longer word.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddedTokenMatcher, type AddedToken, type Segment } from '../src/tokenizer/added-tokens.js';

function token(id: number, content: string, extra: Partial<AddedToken> = {}): AddedToken {
  return { id, content, special: true, singleWord: false, lstrip: false, rstrip: false, normalized: false, ...extra };
}

function split(tokens: AddedToken[], text: string): Segment[] {
  const out: Segment[] = [];
  new AddedTokenMatcher(tokens).split(text, out);
  return out;
}

describe('added tokens in text', () => {
  it('are cut out leftmost first, the longest at a position winning', () => {
    assert.deepEqual(split([token(1, '<a>'), token(2, '<a><b>')], 'x<a><b>y<a>'), ['x', 2, 'y', 1]);
    assert.deepEqual(split([token(1, '<a>')], 'no tokens here'), ['no tokens here']);
  });

  it('lstrip and rstrip take the whitespace on their side with the token', () => {
    assert.deepEqual(split([token(7, '<mask>', { lstrip: true })], 'a  <mask> b'), ['a', 7, ' b']);
    assert.deepEqual(split([token(7, '<mask>', { rstrip: true })], 'a <mask>\n b'), ['a ', 7, 'b']);
  });

  it('single_word tokens do not match inside words', () => {
    assert.deepEqual(split([token(3, 'ab', { singleWord: true })], 'ab xab abc ab,'), [3, ' xab abc ', 3, ',']);
  });
});
