// Every bad input and failure the server must answer with a status and an OpenAI-shaped error naming the field,
// while it keeps serving: malformed JSON, wrong types, out-of-range values, prompts beyond the context, unknown
// routes, API keys, a full queue, oversized bodies, engine failures; client disconnects abort the engine request;
// /health answers while busy; /metrics moves. Oracle: the status codes and fields the OpenAI API defines.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GenerationRequest } from '../src/engine/engine-api.js';
import { FakeEngine, fixtureTokenizer, startFakeServer, type FakeServer } from './helpers/fake-engine.js';
import { needFixtures } from './fixtures.js';
import { parsePrometheusText, sample } from '../bench/prom-text.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function post(s: FakeServer, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${s.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function expectError(res: Response, status: number, param?: string | null): Promise<ErrorBody['error']> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as ErrorBody;
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.equal(typeof body.error.type, 'string');
  assert.ok('param' in body.error && 'code' in body.error, 'OpenAI error shape');
  if (param !== undefined) assert.equal(body.error.param, param, body.error.message);
  return body.error;
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const chat = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'm', messages: [{ role: 'user', content: 'Hi' }], ...extra,
});

describe('bad requests and failures', needFixtures, () => {
  let s: FakeServer;
  const tok = () => fixtureTokenizer('llama');
  const script = (req: GenerationRequest): number[] => {
    const text = tok().decode(req.promptIds).includes('slow') ? 'word '.repeat(60) : 'fine';
    return tok().encode(text, { addSpecialTokens: false });
  };

  before(async () => {
    s = await startFakeServer(
      {
        script,
        stepMs: 2,
        failAfter: (r) => (tok().decode(r.promptIds).includes('explode') ? { tokens: 2, message: 'boom: kernel matmul failed' } : undefined),
      },
      { maxModelLen: 64, maxNewTokens: 32, bodyLimit: 4096 },
    );
  });
  after(() => s.close());

  const ok = async (): Promise<void> => {
    const res = await post(s, '/v1/chat/completions', chat());
    assert.equal(res.status, 200, 'the server keeps serving');
  };

  it('malformed JSON and an empty body → 400', async () => {
    const e = await expectError(await post(s, '/v1/chat/completions', '{"model": "m", "messages": ['), 400, null);
    assert.equal(e.type, 'invalid_request_error');
    await expectError(await post(s, '/v1/completions', ''), 400);
    await ok();
  });

  it('wrong types → 400 naming the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [chat({ temperature: 'hot' }), 'temperature'],
      [chat({ temperature: '0.5' }), 'temperature'],
      [chat({ max_tokens: 2.5 }), 'max_tokens'],
      [chat({ stop: 7 }), 'stop'],
      [chat({ stream: 'yes' }), 'stream'],
      [chat({ n: 'two' }), 'n'],
      [chat({ logit_bias: { '5': 'lots' } }), 'logit_bias.5'],
      [{ model: 'm' }, 'messages'],
      [{ model: 'm', messages: 'hello' }, 'messages'],
      [{ model: 'm', messages: [{ content: 'no role' }] }, 'messages[0].role'],
      [{ model: 'm', messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
    ];
    for (const [body, param] of cases) await expectError(await post(s, '/v1/chat/completions', body), 400, param);
    await expectError(await post(s, '/v1/completions', { model: 'm', prompt: 5 }), 400, 'prompt');
    await expectError(await post(s, '/v1/completions', { model: 'm', prompt: [1, 'a'] }), 400, 'prompt');
    await ok();
  });

  it('out-of-range values → 400 naming the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [chat({ temperature: 3 }), 'temperature'],
      [chat({ temperature: -1 }), 'temperature'],
      [chat({ top_p: 0 }), 'top_p'],
      [chat({ top_p: 1.5 }), 'top_p'],
      [chat({ top_k: -5 }), 'top_k'],
      [chat({ min_p: 2 }), 'min_p'],
      [chat({ presence_penalty: 3 }), 'presence_penalty'],
      [chat({ frequency_penalty: -2.5 }), 'frequency_penalty'],
      [chat({ repetition_penalty: 0 }), 'repetition_penalty'],
      [chat({ logit_bias: { '5': 101 } }), 'logit_bias'],
      [chat({ logit_bias: { '99999': 1 } }), 'logit_bias'],
      [chat({ logit_bias: { abc: 1 } }), 'logit_bias'],
      [chat({ n: 0 }), 'n'],
      [chat({ max_tokens: 0 }), 'max_tokens'],
      [chat({ logprobs: true, top_logprobs: 21 }), 'top_logprobs'],
      [chat({ top_logprobs: 2 }), 'top_logprobs'],
    ];
    for (const [body, param] of cases) await expectError(await post(s, '/v1/chat/completions', body), 400, param);
    await expectError(await post(s, '/v1/completions', { prompt: [1, 2, 99999] }), 400, 'prompt[2]');
    await expectError(await post(s, '/v1/completions', { prompt: 'x', logprobs: 50 }), 400, 'logprobs');
    await ok();
  });

  it('a prompt beyond the context, or prompt + max_tokens beyond it → 400', async () => {
    const long = 'many words here '.repeat(40);
    assert.ok(tok().encode(long).length > 64);
    let e = await expectError(await post(s, '/v1/chat/completions', chat({ messages: [{ role: 'user', content: long }] })), 400, 'messages');
    assert.equal(e.code, 'context_length_exceeded');
    assert.match(e.message, /64/);
    e = await expectError(await post(s, '/v1/completions', { prompt: long }), 400, 'prompt');
    e = await expectError(await post(s, '/v1/chat/completions', chat({ max_tokens: 60 })), 400, 'max_tokens');
    assert.equal(e.code, 'context_length_exceeded');
    await expectError(await post(s, '/v1/chat/completions', chat({ max_completion_tokens: 60 })), 400, 'max_completion_tokens');
    // max_tokens within the context but above --max_new_tokens is clamped, not refused.
    const res = await post(s, '/v1/completions', { prompt: 'slow', max_tokens: 40 });
    assert.equal(res.status, 200);
    assert.equal(s.engine.submitted[s.engine.submitted.length - 1]!.maxTokens, 32);
  });

  it('unknown route → 404; body over the limit → 413', async () => {
    const e = await expectError(await fetch(`${s.url}/v1/nothing-here`), 404);
    assert.match(e.message, /nothing-here/);
    await expectError(await post(s, '/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'x'.repeat(10_000) }] })), 413);
    await ok();
  });

  it('an engine failure → 500 with its message; streamed: an error event, then [DONE]', async () => {
    const e = await expectError(await post(s, '/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'explode' }] })), 500);
    assert.match(e.message, /boom: kernel matmul failed/);
    const res = await post(s, '/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'explode' }], stream: true }));
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /data: \{"error":\{"message":"boom: kernel matmul failed"/);
    assert.ok(text.endsWith('data: [DONE]\n\n'));
    await ok();
  });

  it('a client that disconnects mid-stream, or while waiting, aborts its engine request', async () => {
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat({ messages: [{ role: 'user', content: 'slow' }], stream: true })),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // the first chunk is there: generation is under way
    const id = s.engine.submitted[s.engine.submitted.length - 1]!.id;
    ac.abort();
    await until(() => s.engine.aborted.includes(id));
    await until(() => s.engine.finished.get(id)?.reason === 'abort');
    assert.ok(s.engine.finished.get(id)!.completionTokens < 32, 'stopped early');

    const ac2 = new AbortController();
    const pending = fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'slow' }),
      signal: ac2.signal,
    }).catch(() => undefined);
    const n = s.engine.submitted.length;
    await until(() => s.engine.submitted.length > n);
    const id2 = s.engine.submitted[n]!.id;
    ac2.abort();
    await pending;
    await until(() => s.engine.finished.get(id2)?.reason === 'abort');
    await ok();
  });

  it('/health answers at once while the engine is busy; /metrics names its series and they move', async () => {
    const busy = Array.from({ length: 8 }, () => post(s, '/v1/completions', { prompt: 'slow' }));
    await until(() => s.engine.inFlight >= 8);
    let ms = Infinity;
    // Best of three: one slow round trip on a loaded 2-core CI machine is the machine, not the server.
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const health = await fetch(`${s.url}/health`);
      ms = Math.min(ms, performance.now() - t0);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
    }
    assert.ok(ms < 50, `/health took ${ms.toFixed(1)} ms`);
    const during = await (await fetch(`${s.url}/metrics`)).text();
    assert.equal(sample(parsePrometheusText(during), 'ktserve_num_requests_running'), 8);
    await Promise.all(busy);

    const metric = (text: string, name: string, labels: Record<string, string> = {}): number => {
      try {
        return sample(parsePrometheusText(text), name, labels);
      } catch {
        return 0; // a labelled series not yet born
      }
    };
    const m1 = await fetch(`${s.url}/metrics`);
    assert.match(m1.headers.get('content-type') ?? '', /text\/plain/);
    const before = await m1.text();
    for (const name of [
      'ktserve_num_requests_running', 'ktserve_num_requests_waiting', 'ktserve_kv_blocks_used', 'ktserve_kv_blocks_free',
      'ktserve_prefix_cache_hit_rate', 'ktserve_prompt_tokens_total', 'ktserve_generation_tokens_total',
      'ktserve_time_to_first_token_seconds_bucket', 'ktserve_inter_token_latency_seconds_bucket', 'ktserve_http_requests_total',
      'ktserve_requests_finished_total',
    ]) assert.match(before, new RegExp(`^${name}`, 'm'), name);
    await post(s, '/v1/chat/completions', chat({ temperature: 9 }));
    const res = await post(s, '/v1/completions', { prompt: 'hello', max_tokens: 3 });
    const usage = ((await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
    const afterText = await (await fetch(`${s.url}/metrics`)).text();
    assert.equal(metric(afterText, 'ktserve_generation_tokens_total') - metric(before, 'ktserve_generation_tokens_total'), usage.completion_tokens);
    assert.equal(metric(afterText, 'ktserve_prompt_tokens_total') - metric(before, 'ktserve_prompt_tokens_total'), usage.prompt_tokens);
    const bad = { route: '/v1/chat/completions', status: '400' };
    assert.equal(metric(afterText, 'ktserve_http_requests_total', bad) - metric(before, 'ktserve_http_requests_total', bad), 1);
    const ttft = 'ktserve_time_to_first_token_seconds_count';
    assert.equal(metric(afterText, ttft) - metric(before, ttft), 1);
  });
});

describe('queue full → 503 with Retry-After', needFixtures, () => {
  let s: FakeServer;
  before(async () => {
    const tok = fixtureTokenizer('llama');
    s = await startFakeServer({ script: () => tok.encode('a b c d e f g h', { addSpecialTokens: false }), stepMs: 10, maxInFlight: 1 });
  });
  after(() => s.close());

  it('refuses while full, then serves again', async () => {
    const first = post(s, '/v1/chat/completions', chat());
    await until(() => s.engine.inFlight === 1);
    const res = await post(s, '/v1/chat/completions', chat());
    const e = await expectError(res, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal(e.code, 'queue_full');
    assert.equal((await first).status, 200);
    assert.equal((await post(s, '/v1/chat/completions', chat())).status, 200);
  });

  it('maxQueue: refuses while the engine reports that many waiting', async () => {
    const tok = fixtureTokenizer('llama');
    const q = await startFakeServer({ script: () => tok.encode('x', { addSpecialTokens: false }) }, { maxQueue: 2 });
    try {
      assert.equal((await post(q, '/v1/completions', { prompt: 'a' })).status, 200);
      q.engine.stats = () => ({ ...FakeEngine.prototype.stats.call(q.engine), waiting: 2 });
      const res = await post(q, '/api/generate', { model: 'm', prompt: 'a' });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.equal(typeof ((await res.json()) as { error: unknown }).error, 'string', "Ollama's shape on /api");
    } finally {
      await q.close();
    }
  });
});

describe('--api_key', needFixtures, () => {
  let s: FakeServer;
  before(async () => {
    const tok = fixtureTokenizer('llama');
    s = await startFakeServer({ script: () => tok.encode('ok', { addSpecialTokens: false }) }, { apiKey: 'sekret' });
  });
  after(() => s.close());

  it('401 without or with a wrong key, 200 with it; /health stays open', async () => {
    let e = await expectError(await post(s, '/v1/chat/completions', chat()), 401);
    assert.equal(e.code, 'invalid_api_key');
    e = await expectError(await post(s, '/v1/chat/completions', chat(), { authorization: 'Bearer wrong' }), 401);
    await expectError(await fetch(`${s.url}/v1/models`, { headers: { authorization: 'Basic c2VrcmV0' } }), 401);
    const okRes = await post(s, '/v1/chat/completions', chat(), { authorization: 'Bearer sekret' });
    assert.equal(okRes.status, 200);
    const ollama = await fetch(`${s.url}/api/tags`);
    assert.equal(ollama.status, 401);
    assert.equal(typeof ((await ollama.json()) as { error: unknown }).error, 'string');
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
  });
});
