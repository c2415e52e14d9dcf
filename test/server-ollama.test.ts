// The Ollama routes driven with plain fetch, as an Ollama client does: NDJSON streaming by default, `options`
// mapped onto sampling, the final `done: true` object with counts, and the model-information routes.
// Oracles: the text the fake engine was scripted to generate and the fixture chat template's literal markers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GenerationRequest } from '../src/engine/engine-api.js';
import { fixtureTokenizer, startFakeServer, type FakeServer } from './helpers/fake-engine.js';
import { needFixtures } from './fixtures.js';

const REPLY = 'Ollama style reply, streamed line by line.';

async function post(s: FakeServer, path: string, body: unknown): Promise<Response> {
  return fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Reads an NDJSON body into its objects, checking that every line is one JSON object. */
async function ndjson(res: Response): Promise<Record<string, unknown>[]> {
  const text = await res.text();
  assert.ok(text.endsWith('\n'));
  return text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('Ollama API', needFixtures, () => {
  let s: FakeServer;
  const tok = () => fixtureTokenizer('llama');
  const script = (_req: GenerationRequest): number[] => tok().encode(REPLY, { addSpecialTokens: false });
  const last = (): GenerationRequest => s.engine.submitted[s.engine.submitted.length - 1]!;
  const replyTokens = (): number => tok().encode(REPLY, { addSpecialTokens: false }).length;

  before(async () => {
    s = await startFakeServer({ script }, { model: { family: 'llama', format: 'gguf', quantization: 'F16', sizeBytes: 1234 } });
  });
  after(() => s.close());

  it('/api/generate streams NDJSON by default, ending with done and counts', async () => {
    const res = await post(s, '/api/generate', { model: 'tiny-llama', prompt: 'Why is the sky blue?' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/x-ndjson/);
    const lines = await ndjson(res);
    assert.ok(lines.length > 3);
    const final = lines[lines.length - 1]!;
    assert.equal(lines.slice(0, -1).every((l) => l.done === false), true);
    assert.equal(lines.map((l) => l.response).join(''), REPLY);
    assert.equal(final.done, true);
    assert.equal(final.done_reason, 'stop');
    assert.equal(final.model, 'tiny-llama');
    assert.equal(final.prompt_eval_count, last().promptIds.length);
    assert.equal(final.eval_count, replyTokens() + 1);
    for (const k of ['total_duration', 'prompt_eval_duration', 'eval_duration']) assert.equal(typeof final[k], 'number');
    assert.ok(!Number.isNaN(Date.parse(String(final.created_at))));
    // Templated as one user turn.
    assert.equal(
      tok().decode(last().promptIds),
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhy is the sky blue?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    // Ollama's defaults where options are absent.
    assert.equal(last().sampling.temperature, 0.8);
    assert.equal(last().sampling.topK, 40);
    assert.equal(last().sampling.topP, 0.9);
  });

  it('/api/generate with stream false, raw prompt, system prompt and options', async () => {
    const res = await post(s, '/api/generate', {
      model: 'tiny-llama',
      prompt: 'raw text',
      raw: true,
      stream: false,
      options: {
        temperature: 0, top_p: 0.7, top_k: 3, min_p: 0.05, num_predict: 6, seed: 42, repeat_penalty: 1.3,
        presence_penalty: 0.2, frequency_penalty: 0.1,
      },
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.done, true);
    assert.equal(body.done_reason, 'length');
    assert.equal(body.response, tok().decode(tok().encode(REPLY, { addSpecialTokens: false }).slice(0, 6)));
    assert.equal(body.eval_count, 6);
    const q = last();
    assert.deepEqual(q.promptIds, tok().encode('raw text'));
    assert.deepEqual(body.context, [...q.promptIds, ...tok().encode(REPLY, { addSpecialTokens: false }).slice(0, 6)]);
    assert.deepEqual(
      { t: q.sampling.temperature, p: q.sampling.topP, k: q.sampling.topK, m: q.sampling.minP, seed: q.sampling.seed },
      { t: 0, p: 0.7, k: 3, m: 0.05, seed: 42 },
    );
    assert.equal(q.sampling.repetitionPenalty, 1.3);
    assert.equal(q.sampling.presencePenalty, 0.2);
    assert.equal(q.sampling.frequencyPenalty, 0.1);
    assert.equal(q.maxTokens, 6);

    await post(s, '/api/generate', { model: 'x', prompt: 'question', system: 'Be brief.', stream: false });
    assert.match(tok().decode(last().promptIds), /system<\|end_header_id\|>\n\nBe brief\.<\|eot_id\|>.*user<\|end_header_id\|>\n\nquestion/s);
  });

  it('/api/chat streams messages; stop strings end the text', async () => {
    const res = await post(s, '/api/chat', {
      model: 'tiny-llama',
      messages: [{ role: 'user', content: 'Hello' }],
      options: { stop: [' line'] },
    });
    const lines = await ndjson(res);
    const final = lines[lines.length - 1]!;
    const text = lines.map((l) => (l.message as { content: string }).content).join('');
    assert.equal(text, REPLY.slice(0, REPLY.indexOf(' line')));
    assert.equal(final.done, true);
    assert.equal(final.done_reason, 'stop');
    assert.deepEqual(final.message, { role: 'assistant', content: '' });
    assert.ok(s.engine.aborted.includes(last().id));

    const whole = await post(s, '/api/chat', { model: 'tiny-llama', messages: [{ role: 'user', content: 'Hello' }], stream: false });
    const body = (await whole.json()) as { message: { role: string; content: string }; done: boolean; eval_count: number };
    assert.deepEqual(body.message, { role: 'assistant', content: REPLY });
    assert.equal(body.done, true);
    assert.equal(body.eval_count, replyTokens() + 1);
  });

  it('an empty prompt only "loads" the model', async () => {
    const n = s.engine.submitted.length;
    const body = (await (await post(s, '/api/generate', { model: 'tiny-llama' })).json()) as Record<string, unknown>;
    assert.equal(body.done, true);
    assert.equal(body.done_reason, 'load');
    assert.equal(s.engine.submitted.length, n, 'no engine request');
  });

  it('/api/tags, /api/show, /api/version, /api/ps describe the model', async () => {
    const tags = (await (await fetch(`${s.url}/api/tags`)).json()) as { models: Array<Record<string, unknown>> };
    assert.equal(tags.models.length, 1);
    assert.equal(tags.models[0]!.name, 'tiny-llama');
    assert.equal(tags.models[0]!.size, 1234);
    assert.deepEqual((tags.models[0]!.details as Record<string, unknown>).quantization_level, 'F16');
    const show = (await (await post(s, '/api/show', { model: 'tiny-llama' })).json()) as Record<string, unknown>;
    assert.match(String(show.template), /start_header_id/);
    assert.equal((show.model_info as Record<string, unknown>)['llama.context_length'], 512);
    const missing = await post(s, '/api/show', {});
    assert.equal(missing.status, 400);
    assert.equal(typeof ((await missing.json()) as { error: unknown }).error, 'string');
    const version = (await (await fetch(`${s.url}/api/version`)).json()) as { version: string };
    assert.equal(typeof version.version, 'string');
    const ps = (await (await fetch(`${s.url}/api/ps`)).json()) as { models: unknown[] };
    assert.equal(ps.models.length, 1);
  });

  it('errors on /api/* come in Ollama\'s shape, naming the option', async () => {
    const bad = await post(s, '/api/generate', { model: 'x', prompt: 'hi', options: { temperature: 'warm' } });
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { error: string };
    assert.match(body.error, /options\.temperature/);
    const range = await post(s, '/api/chat', { model: 'x', messages: [{ role: 'user', content: 'hi' }], options: { top_p: 1.5 } });
    assert.equal(range.status, 400);
    assert.match(((await range.json()) as { error: string }).error, /options\.top_p/);
  });
});

describe('Ollama API with --force_think', needFixtures, () => {
  let s: FakeServer;
  before(async () => {
    const qwen = fixtureTokenizer('qwen3');
    s = await startFakeServer({ script: () => qwen.encode('pondering</think>\n\nDone.', { addSpecialTokens: false }) }, { fixture: 'qwen3', forceThink: true });
  });
  after(() => s.close());

  it('returns thinking apart from the answer', async () => {
    const res = await post(s, '/api/chat', { model: 'q', messages: [{ role: 'user', content: 'Hi' }], stream: false });
    const body = (await res.json()) as { message: { content: string; thinking?: string } };
    assert.equal(body.message.content, 'Done.');
    assert.equal(body.message.thinking, 'pondering');
    const streamed = await ndjson(await post(s, '/api/generate', { model: 'q', prompt: 'Hi' }));
    assert.equal(streamed.map((l) => l.thinking ?? '').join(''), 'pondering');
    assert.equal(streamed.map((l) => l.response).join(''), 'Done.');
  });
});
