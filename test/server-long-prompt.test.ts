// A multi-megabyte prompt must not stall every other client: one that cannot fit the context is refused before
// any tokenization (at the longest token per character it would still be too long), and one that may fit is
// tokenized on a worker thread while /health keeps answering over a real socket. Oracles: the OpenAI error
// fields, wall-clock latency of /health, and the ids of inline tokenization (itself checked against
// @lenml/tokenizers in tokenizer-encode-workers.test.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Tokenizer } from '../src/tokenizer/index.js';
import { fixtureTokenizer, startFakeServer, type FakeServer } from './helpers/fake-engine.js';
import { needFixtures } from './fixtures.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function post(s: FakeServer, path: string, body: unknown): Promise<Response> {
  return fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Counts the tokenizations the server does, inline and on its workers. */
interface Counted {
  inline: number;
  worker: number;
}

/** The fixture tokenizer, with its encode counted (everything else as it is). */
function countingTokenizer(counted: Counted): Tokenizer {
  const tok = fixtureTokenizer('qwen3');
  const spy = Object.create(tok) as Tokenizer & { encode: Tokenizer['encode'] };
  spy.encode = (text, opts) => {
    counted.inline++;
    return tok.encode(text, opts);
  };
  return spy;
}

function countWorkers(s: FakeServer, counted: Counted): void {
  const pool = s.app.ktserve.context.encodeWorkers;
  if (pool === undefined) return; // the tests below then fail on their counts
  const encode = pool.encode.bind(pool);
  pool.encode = (text, opts) => {
    counted.worker++;
    return encode(text, opts);
  };
}

describe('a prompt that cannot fit the context is refused unread', needFixtures, () => {
  const counted: Counted = { inline: 0, worker: 0 };
  let s: FakeServer;
  before(async () => {
    s = await startFakeServer({ script: () => [] }, { fixture: 'qwen3', tokenizer: countingTokenizer(counted), maxModelLen: 4096 });
    countWorkers(s, counted);
  });
  after(() => s.close());

  it('15 MB of completion prompt or chat content → 400 context_length_exceeded, with no tokenization', async () => {
    const text = 'hello world '.repeat(1_300_000);
    for (const [path, body, param] of [
      ['/v1/completions', { prompt: text }, 'prompt'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: text }] }, 'messages'],
    ] as const) {
      const res = await post(s, path, body);
      const e = ((await res.json()) as ErrorBody).error;
      assert.deepEqual(counted, { inline: 0, worker: 0 }, `${path}: no tokenization`);
      assert.equal(res.status, 400, e.message);
      assert.equal(e.code, 'context_length_exceeded');
      assert.equal(e.param, param);
      assert.match(e.message, /maximum context length is 4096 tokens, but the prompt has at least \d+ tokens/);
    }
  });

  it('a prompt within the bound is still tokenized, and refused by its true count', async () => {
    const res = await post(s, '/v1/completions', { prompt: 'hello world '.repeat(1000) });
    const e = ((await res.json()) as ErrorBody).error;
    assert.equal(res.status, 400);
    assert.equal(e.code, 'context_length_exceeded');
    assert.match(e.message, /but the prompt has \d+ tokens/);
    assert.equal(counted.inline, 1, 'short: inline');
  });
});

describe('a long prompt is tokenized on a worker while /health answers', needFixtures, () => {
  const counted: Counted = { inline: 0, worker: 0 };
  let s: FakeServer;
  before(async () => {
    s = await startFakeServer(
      { script: () => [] },
      { fixture: 'qwen3', tokenizer: countingTokenizer(counted), maxModelLen: 2 ** 23, bodyLimit: 32 << 20 },
    );
    countWorkers(s, counted);
  });
  after(() => s.close());

  it('4 MB of prompt: /health answers within 100 ms throughout, and the ids are those of inline tokenization', async () => {
    const words = ['def', 'self', 'return', 'import', 'class', 'the', 'of', '漢字', '😀', '\n\t', 'x=1;', '  '];
    const text = Array.from({ length: 800_000 }, (_, i) => words[(i * 7919) % words.length]).join(' ');
    const t0 = performance.now();
    const expected = fixtureTokenizer('qwen3').encode(text);
    const inlineMs = performance.now() - t0;

    // Encoded up front: this process is the client too, and its own JSON and UTF-8 work would count as a stall.
    const payload = Buffer.from(JSON.stringify({ prompt: text, max_tokens: 1 }));
    let done = false;
    const request = fetch(`${s.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload })
      .finally(() => (done = true));
    const latencies: number[] = [];
    while (!done) {
      const start = performance.now();
      const health = await fetch(`${s.url}/health`);
      assert.equal(health.status, 200);
      await health.arrayBuffer();
      latencies.push(performance.now() - start);
      await new Promise((r) => setTimeout(r, 10));
    }
    const res = await request;
    assert.equal(res.status, 200, await res.clone().text());
    // Inline, this text holds the event loop for inlineMs (half a second here): /health would wait that long.
    assert.ok(latencies.length >= 5, `${latencies.length} polls while the request ran (inline: ${inlineMs.toFixed(0)} ms)`);
    const worst = Math.max(...latencies);
    assert.ok(worst < 100, `/health took up to ${worst.toFixed(0)} ms (inline tokenization: ${inlineMs.toFixed(0)} ms)`);
    assert.deepEqual(counted, { inline: 0, worker: 1 });
    assert.deepEqual(s.engine.submitted.at(-1)!.promptIds, expected);
  });

  it('a short prompt stays inline', async () => {
    const before = { ...counted };
    assert.equal((await post(s, '/v1/completions', { prompt: 'hello world '.repeat(80), max_tokens: 1 })).status, 200);
    assert.deepEqual(counted, { inline: before.inline + 1, worker: before.worker });
  });
});
