// TextStream (detokenize → stop strings → reasoning split) with the fixture models' real tokenizers, over the
// fixture corpus: the streamed text equals the source text cut before its first stop string, no prefix of the stop
// string ever leaks into a piece, and thinking text separates from the answer whether `</think>` is one plain
// token (Qwen3), one special token (DeepSeek) or several tokens (Llama).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadTokenizerFromDir, type Tokenizer } from '../src/tokenizer/index.js';
import { partialSuffixLength, ReasoningSplitter, StopStringMatcher, TextStream, type ReasoningMode } from '../src/server/text-stream.js';
import { fixturePath, needFixtures, readFixtureJson } from './fixtures.js';

interface Cases {
  tokenizers: Record<string, { cases: Array<{ cat: string; text: string }> }>;
}

function run(tok: Tokenizer, ids: number[], stops: string[], reasoning: ReasoningMode = 'off') {
  const ts = new TextStream(tok, { promptIds: [], stopIds: tok.eosIds, stopStrings: stops, reasoning });
  const content: string[] = [];
  const thinking: string[] = [];
  let stoppedAt = -1;
  for (let i = 0; i < ids.length; i++) {
    const s = ts.push(ids[i]!);
    content.push(s.content);
    thinking.push(s.reasoning);
    if (s.stopped) {
      stoppedAt = i;
      break;
    }
  }
  const tail = ts.finish();
  content.push(tail.content);
  thinking.push(tail.reasoning);
  return { content, thinking, stoppedAt, hasReasoning: ts.hasReasoning };
}

describe('stop-string and reasoning helpers', () => {
  it('partialSuffixLength finds the longest tail that starts a needle', () => {
    assert.equal(partialSuffixLength('abc</th', ['</think>']), 4);
    assert.equal(partialSuffixLength('abc<', ['</think>', 'xyz']), 1);
    assert.equal(partialSuffixLength('abc', ['</think>']), 0);
    // A whole needle is not "partial": the matcher finds it as a match instead.
    assert.equal(partialSuffixLength('ab', ['ab']), 0);
  });

  it('StopStringMatcher holds back a possible start and cuts at the earliest stop', () => {
    const m = new StopStringMatcher(['END', 'STOP']);
    assert.deepEqual(m.push('hello E'), { text: 'hello ', stopped: false });
    assert.deepEqual(m.push('N'), { text: '', stopped: false });
    assert.deepEqual(m.push('x S'), { text: 'ENx ', stopped: false });
    assert.deepEqual(m.push('TOP and END'), { text: '', stopped: true });
    assert.deepEqual(m.push('more'), { text: '', stopped: true });
  });

  it('ReasoningSplitter detects a leading <think> tag split across pieces', () => {
    const r = new ReasoningSplitter('detect');
    const pieces = ['<th', 'ink>', '\nI ponder', '.</', 'think>\n\n', 'Answer'].map((p) => r.push(p));
    const flush = r.flush();
    assert.equal(pieces.map((p) => p.reasoning).join('') + flush.reasoning, 'I ponder.');
    assert.equal(pieces.map((p) => p.content).join('') + flush.content, 'Answer');
    assert.equal(r.used, true);
    const plain = new ReasoningSplitter('detect');
    assert.deepEqual(plain.push('<b>bold</b>'), { content: '<b>bold</b>', reasoning: '' });
    assert.equal(plain.used, false);
  });
});

describe('TextStream over the fixture tokenizers', needFixtures, () => {
  const llama = loadTokenizerFromDir(fixturePath('llama'));
  const qwen = loadTokenizerFromDir(fixturePath('qwen3'));
  const deepseek = loadTokenizerFromDir(fixturePath('deepseek'));
  const corpus = readFixtureJson<Cases>('tokenizer_cases.json')
    .tokenizers.llama3!.cases.filter((c) => c.cat !== 'special' && c.text.length >= 12)
    .map((c) => c.text);

  it('cuts every corpus text at a stop string taken from its middle, without leaking any of it', () => {
    let multiTokenStops = 0;
    let checked = 0;
    for (const text of corpus) {
      const ids = llama.encode(text, { addSpecialTokens: false });
      if (llama.decode(ids) !== text) continue; // the oracle is the text itself: it must round-trip
      const chars = [...text];
      const stop = chars.slice(Math.floor(chars.length / 2), Math.floor(chars.length / 2) + 4).join('');
      if (stop.trim() === '') continue;
      const expected = text.slice(0, text.indexOf(stop));
      const r = run(llama, ids, [stop, 'never-in-the-text-\u0001']);
      assert.equal(r.content.join(''), expected, JSON.stringify(text));
      let sofar = '';
      for (const piece of r.content) {
        sofar += piece;
        assert.ok(expected.startsWith(sofar), `${JSON.stringify(sofar)} leaks past the stop of ${JSON.stringify(text)}`);
        assert.ok(!piece.includes('\uFFFD') || text.includes('\uFFFD'), 'no broken character streamed');
      }
      // How many tokens the stop string spans: those after the one that completed it were never consumed.
      const before = llama.encode(expected, { addSpecialTokens: false }).length;
      if (r.stoppedAt - before >= 1) multiTokenStops++;
      checked++;
    }
    assert.ok(checked >= 60, `checked ${checked} texts`);
    assert.ok(multiTokenStops >= 20, `stop strings spanning several tokens: ${multiTokenStops}`);
  });

  it('without stop strings, streams the whole text and drops EOS', () => {
    for (const text of corpus.slice(0, 40)) {
      const ids = llama.encode(text, { addSpecialTokens: false });
      if (llama.decode(ids) !== text) continue;
      const r = run(llama, [...ids, llama.eosIds[0]!], []);
      assert.equal(r.content.join(''), text);
      assert.equal(r.stoppedAt, -1);
    }
  });

  const answer = 'The answer is 42, said the 🐳.';
  const thought = 'Let me think.\nSix times seven';
  for (const [name, tok] of [['qwen3', qwen], ['deepseek', deepseek], ['llama', llama]] as const) {
    it(`splits reasoning from content (${name}: </think> is ${describeTag(tok)})`, () => {
      const ids = [
        ...tok.encode(thought, { addSpecialTokens: false }),
        ...tok.encode('</think>', { addSpecialTokens: false }),
        ...tok.encode(`\n\n${answer}`, { addSpecialTokens: false }),
        tok.eosIds[0]!,
      ];
      const forced = run(tok, ids, [], 'forced');
      assert.equal(forced.thinking.join(''), thought);
      assert.equal(forced.content.join(''), answer);
      const opened = [...tok.encode('<think>\n', { addSpecialTokens: false }), ...ids];
      const detected = run(tok, opened, [], 'detect');
      assert.equal(detected.thinking.join(''), thought);
      assert.equal(detected.content.join(''), answer);
      assert.equal(detected.hasReasoning, true);
      // A stop string inside the answer still cuts it, after the reasoning.
      const stopped = run(tok, ids, [' said'], 'forced');
      assert.equal(stopped.thinking.join(''), thought);
      assert.equal(stopped.content.join(''), answer.slice(0, answer.indexOf(' said')));
    });
  }

  it('a think block never closed stays reasoning; with reasoning off, tags are plain text', () => {
    const ids = qwen.encode(thought, { addSpecialTokens: false });
    const r = run(qwen, ids, [], 'forced');
    assert.equal(r.thinking.join(''), thought);
    assert.equal(r.content.join(''), '');
    const off = run(qwen, qwen.encode(`<think>x</think>y`, { addSpecialTokens: false }), [], 'off');
    assert.equal(off.content.join(''), '<think>x</think>y');
  });
});

function describeTag(tok: Tokenizer): string {
  const ids = tok.encode('</think>', { addSpecialTokens: false });
  if (ids.length > 1) return `${ids.length} tokens`;
  return tok.isSpecial(ids[0]!) ? 'one special token' : 'one plain token';
}
