// The server's log (issue 13 #3): one access line per request with its route, status, duration, tokens and
// TTFT; the error a client was told on a 4xx; a 5xx's cause with its stack; probes at debug only; and the text
// rendering of pino's lines. Oracles: the responses' own usage, the statuses sent.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loggerOptions, textLine } from '../src/server/logging.js';
import { fixtureTokenizer, startFakeServer, type FakeServer } from './helpers/fake-engine.js';
import { needFixtures } from './fixtures.js';

interface Line {
  level: number;
  msg: string;
  [k: string]: unknown;
}

describe('server log', needFixtures, () => {
  let s: FakeServer;
  const lines: Line[] = [];
  before(async () => {
    const tok = fixtureTokenizer('llama');
    s = await startFakeServer(
      {
        // A prompt with "slow" streams long enough for its client to leave mid-way.
        script: (r) => tok.encode(tok.decode(r.promptIds).includes('slow') ? ' word'.repeat(200) : ' one two three four', { addSpecialTokens: false }),
        stepMs: 2,
      },
      { logger: loggerOptions({ level: 'debug', format: 'json', destination: { write: (l: string) => lines.push(JSON.parse(l) as Line) } }) },
    );
  });
  after(() => s.close());

  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  async function lineFor(pred: (l: Line) => boolean): Promise<Line> {
    for (let i = 0; i < 100; i++) {
      const found = lines.find(pred);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.fail(`no such log line in:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
  }

  it('writes one info line per generation request with its tokens and TTFT, as the usage says', async () => {
    const res = await post('/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'Hi there' }] });
    const usage = ((await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
    const line = await lineFor((l) => l['route'] === '/v1/chat/completions' && l['status'] === 200);
    assert.equal(line.level, 30);
    assert.equal(line['method'], 'POST');
    assert.equal(line['prompt_tokens'], usage.prompt_tokens);
    assert.equal(line['completion_tokens'], usage.completion_tokens);
    assert.equal(line['finish'], 'stop');
    assert.equal(typeof line['ttft_ms'], 'number');
    assert.ok((line['ms'] as number) >= (line['ttft_ms'] as number));
    assert.match(line.msg, /^POST \/v1\/chat\/completions 200 \d+ ms$/);
  });

  it('counts a streamed request whose client leaves as client_gone with finish abort', async () => {
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
      body: JSON.stringify({ model: 'm', prompt: 'slow', stream: true, max_tokens: 60 }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    const line = await lineFor((l) => l['route'] === '/v1/completions' && l['client_gone'] === true);
    assert.equal(line['status'], 200);
  });

  it("puts the client's error in a 4xx line, and a 5xx's cause with its stack at error level", async () => {
    await post('/v1/chat/completions', { model: 'm', messages: [], temperature: 'hot' });
    const bad = await lineFor((l) => l['status'] === 400);
    assert.match(String(bad['error']), /temperature/);
    s.engine.failNextSubmit = new TypeError('secret internal detail');
    assert.equal((await post('/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'x' }] })).status, 500);
    const err = await lineFor((l) => l.level === 50);
    assert.match(JSON.stringify(err['err']), /secret internal detail/);
    assert.match(JSON.stringify(err['err']), /TypeError/);
    assert.match(JSON.stringify(err['err']), /stack/);
  });

  it('logs probes and scrapes at debug, so the info log shows traffic', async () => {
    await fetch(`${s.url}/health`);
    await fetch(`${s.url}/metrics`);
    const health = await lineFor((l) => l['route'] === '/health');
    assert.equal(health.level, 20);
    assert.equal((await lineFor((l) => l['route'] === '/metrics')).level, 20);
  });

  it('renders a line as text: time, level, message, fields, then the stack', () => {
    const text = textLine(JSON.stringify({ level: 30, time: Date.UTC(2026, 11, 7, 16, 0, 0), msg: 'POST /v1/chat/completions 200 12 ms', route: '/v1/chat/completions', status: 200, note: 'two words' }));
    assert.equal(text, '2026-12-07T16:00:00.000Z INFO  POST /v1/chat/completions 200 12 ms route=/v1/chat/completions status=200 note="two words"\n');
    const withErr = textLine(JSON.stringify({ level: 50, time: 0, msg: 'request failed', err: { message: 'boom', stack: 'Error: boom\n    at x.js:1:1' } }));
    assert.match(withErr, /ERROR request failed\nError: boom\n {4}at x\.js:1:1\n$/);
  });
});
