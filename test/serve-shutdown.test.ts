// SIGTERM with requests in flight (issue 12 #7): those that finish within --shutdown_timeout finish normally;
// the rest end with a final error event and `[DONE]` (streams) or a 503 (waiting clients), the count is logged,
// and the process exits 0. Oracle: the OpenAI streaming format (an error event ends a stream, then [DONE]).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startKtserve, type KtserveProcess } from '../bench/ktserve-process.js';

const startDemo = (extra: string[]): Promise<KtserveProcess> => startKtserve(['--demo', ...extra]);

// The demo model's context is 1024 tokens: 1000 new ones take it several seconds, far past a 1 s grace.
const body = (stream: boolean, maxTokens: number): string =>
  JSON.stringify({ messages: [{ role: 'user', content: 'Tell me a long story.' }], max_tokens: maxTokens, ignore_eos: true, stream });

async function post(url: string, payload: string): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
}

describe('serve: SIGTERM with requests in flight', () => {
  it('ends long streams with an error event and [DONE], answers waiting clients 503, logs the count, exits 0', { timeout: 60_000 }, async (t) => {
    const s = await startDemo(['--shutdown_timeout', '1']);
    t.after(() => s.stop(0));
    const streams = await Promise.all([1, 2, 3].map(() => post(s.url, body(true, 1000))));
    for (const r of streams) assert.equal(r.status, 200);
    const texts = streams.map((r) => r.text());
    const waiting = post(s.url, body(false, 1000));
    await new Promise((r) => setTimeout(r, 300)); // every request is decoding
    const t0 = Date.now();
    // SIGTERM; SIGKILL only if it is still there long after the 1 s grace.
    const stopped = s.stop(30_000);
    for (const text of await Promise.all(texts)) {
      const events = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
      assert.ok(events.length > 3, 'the stream had started');
      assert.equal(events.at(-1), '[DONE]');
      const last = JSON.parse(events.at(-2)!) as { error?: { code: string; message: string } };
      assert.equal(last.error?.code, 'server_shutting_down', events.at(-2));
    }
    const w = await waiting;
    assert.equal(w.status, 503);
    assert.equal(((await w.json()) as { error: { code: string } }).error.code, 'server_shutting_down');
    assert.equal((await stopped).code, 0);
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 8000, `stopped after ${took} ms with a 1 s grace`);
    assert.match(s.stderr(), /4 request\(s\) still running after 1 s were ended/);
  });

  it('lets requests that finish within the grace period finish, and refuses new ones meanwhile', { timeout: 60_000 }, async (t) => {
    const s = await startDemo(['--shutdown_timeout', '20']);
    t.after(() => s.stop(0));
    const inFlight = post(s.url, body(true, 300)).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 200));
    const stopped = s.stop(30_000);
    await new Promise((r) => setTimeout(r, 200));
    const text = await inFlight;
    assert.match(text, /"finish_reason":"length"/);
    assert.doesNotMatch(text, /"error"/);
    assert.ok(text.trimEnd().endsWith('data: [DONE]'));
    assert.equal((await stopped).code, 0);
    assert.doesNotMatch(s.stderr(), /were ended/);
  });
});
