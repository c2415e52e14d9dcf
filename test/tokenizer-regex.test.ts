// Oniguruma constructs that JavaScript spells differently or lacks, checked against their documented meaning
// (Oniguruma doc/RE): the real pre-tokenizer patterns are covered end to end by the tokenizer corpus tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileOnigurumaRegex, UnsupportedRegexError } from '../src/tokenizer/regex.js';

const all = (pattern: string, text: string, lineAnchors = true): string[] =>
  [...text.matchAll(compileOnigurumaRegex(pattern, { lineAnchors }))].map((m) => m[0]);

describe('Oniguruma → JavaScript regex translation', () => {
  it('(?i:...) groups match either case, and only inside the group', () => {
    assert.deepEqual(all("(?i:'s|'ll)x", "'Sx 'LLx 'sX"), ["'Sx", "'LLx"]);
  });

  it('possessive quantifiers and atomic groups never give back what they matched', () => {
    assert.deepEqual(all('a++a', 'aaa'), []);
    assert.deepEqual(all('a*+b', 'aaab'), ['aaab']);
    assert.deepEqual(all('(?>a+)a', 'aaa'), []);
    assert.deepEqual(all('\\p{N}{1,3}+', '12345'), ['123', '45']);
  });

  it('\\s is Unicode White_Space: U+0085 and U+3000 are spaces, U+FEFF and U+200B are not', () => {
    assert.deepEqual(all('\\s', 'a\u0085b\u3000c\ufeffd\u200be'), ['\u0085', '\u3000']);
    assert.deepEqual(all('[^\\s\\p{L}]', 'a \ufeff1'), ['\ufeff', '1']);
  });

  it('script names, \\x{...}, escaped punctuation and "." (everything but \\n)', () => {
    assert.deepEqual(all('\\p{Han}+', 'ab漢字cd'), ['漢字']);
    assert.deepEqual(all('\\x{41}\\-', 'A-B-'), ['A-']);
    assert.deepEqual(all('.', 'a\r\n'), ['a', '\r']);
  });

  it('^ and $ are line anchors in Hugging Face patterns, whole-text anchors in llama.cpp ones', () => {
    assert.deepEqual(all('\\w+$', 'ab\ncd'), ['ab', 'cd']);
    assert.deepEqual(all('\\w+$', 'ab\ncd', false), ['cd']);
  });

  it('refuses what it cannot translate', () => {
    assert.throws(() => compileOnigurumaRegex('(a)\\1'), UnsupportedRegexError);
    assert.throws(() => compileOnigurumaRegex('[[:alpha:]]'), UnsupportedRegexError);
  });
});
