// The whole server on the CPU engine worker, driven by the official openai client: batching,
// chunked prefill and the prefix cache keep every request's greedy text as it is alone; KV
// exhaustion and client disconnects leave every block free; /health stays fast under load.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { FastifyInstance } from 'fastify';
import { WorkerEngineClient } from '../src/engine/worker-client.js';
import type { EngineOptions } from '../src/engine/worker-protocol.js';
import { openModelFiles } from '../src/models/model-files.js';
import { buildServer } from '../src/server/app.js';
import { fixturePath, needFixtures } from './fixtures.js';
import { sample, scrape } from '../bench/prom-text.js';

interface Running {
  app: FastifyInstance;
  engine: WorkerEngineClient;
  client: OpenAI;
  url: string;
}

async function start(over: Partial<EngineOptions> = {}): Promise<Running> {
  const model = { modelPath: fixturePath('llama') };
  const files = openModelFiles(model);
  // KT_TEST_BACKEND=cuda runs these tests on the GPU (scripts/device/gpu-bench.sh check).
  const backend = process.env['KT_TEST_BACKEND'] === 'cuda' ? ('cuda' as const) : undefined;
  const engine = await WorkerEngineClient.start({
    backend, model, cacheTokens: 4096, blockSize: 16, chunkSize: 512, maxBatchSize: 32, maxQueue: 256, prefixCaching: true, ...over,
  });
  const app = buildServer({
    engine, tokenizer: files.tokenizer, chatTemplate: files.chatTemplate, modelName: 'tiny-llama',
    maxModelLen: Math.min(files.config.maxPositions, engine.info.kvTokens), maxNewTokens: 256, forceThink: false,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, engine, url, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 }) };
}

async function stop(r: Running): Promise<void> {
  await r.app.close();
  await r.engine.shutdown();
}

const topics = ['import os', 'def parse(text):', 'class Reader:', 'for i in range(10):', 'while True:', 'return None', 'x = [1, 2, 3]', 'print("hello")'];
/** 16 chat requests with different lengths, all under one long shared system prompt. */
const system = 'You are a careful assistant who answers questions about the Python standard library and its modules. '.repeat(3);
const conversations = Array.from({ length: 16 }, (_, i) => `${topics[i % topics.length]} ${'and more '.repeat(i % 5)}(${i})`);

async function ask(client: OpenAI, user: string, maxTokens: number): Promise<string> {
  const r = await client.chat.completions.create({
    model: 'tiny-llama', temperature: 0, max_tokens: maxTokens,
    messages: [{ role: 'system', content: system }, { role: 'user', content: user }],
  });
  return r.choices[0]!.message.content ?? '';
}

async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sample(await scrape(url), name, labels);
}

async function waitFor(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('ktserve over the CPU engine worker', needFixtures, () => {
  const alone = new Map<string, string>();
  let serial: Running;
  before(async () => {
    serial = await start({ prefixCaching: false, maxBatchSize: 1 });
  });
  after(async () => stop(serial));

  it('reports the whole KV cache free before the first request', async () => {
    assert.ok(serial.engine.info.kvBlocks > 0);
    assert.equal(await metric(serial.url, 'ktserve_kv_blocks_total'), serial.engine.info.kvBlocks);
    assert.equal(await metric(serial.url, 'ktserve_kv_blocks_free'), serial.engine.info.kvBlocks);
    assert.equal(await metric(serial.url, 'ktserve_kv_blocks_used'), 0);
  });

  it('answers each request alone', async () => {
    for (const c of conversations) alone.set(c, await ask(serial.client, c, 12));
  });

  it('reports every engine step and each request\'s phases through the worker', async () => {
    const f = await scrape(serial.url);
    const requests = conversations.length;
    assert.equal(sample(f, 'vllm:iteration_tokens_total_count'), sample(f, 'ktserve_engine_steps_total'));
    // No prefix cache: each prompt runs whole, then every generated token but the last is fed back.
    const prompt = sample(f, 'ktserve_prompt_tokens_total');
    const generated = sample(f, 'ktserve_generation_tokens_total');
    assert.equal(sample(f, 'vllm:iteration_tokens_total_sum'), prompt + generated - requests);
    for (const h of ['request_queue_time_seconds', 'request_prefill_time_seconds', 'request_decode_time_seconds']) {
      assert.equal(sample(f, `vllm:${h}_count`), requests, h);
    }
    assert.ok(sample(f, 'vllm:request_prefill_time_seconds_sum') > 0);
    assert.ok(sample(f, 'vllm:request_decode_time_seconds_sum') > 0);
  });

  for (const [name, over] of [
    ['prefix cache on, chunk_size 32', { chunkSize: 32 }],
    ['prefix cache off, chunk_size 48', { chunkSize: 48, prefixCaching: false }],
  ] as const) {
    it(`16 concurrent requests give each one's text alone (${name})`, async () => {
      const r = await start(over);
      try {
        const texts = await Promise.all(conversations.map((c) => ask(r.client, c, 12)));
        conversations.forEach((c, i) => assert.equal(texts[i], alone.get(c), `request ${i}`));
        if (over.prefixCaching !== false) {
          // The shared system prompt is prefilled once: later requests hit its cached blocks.
          assert.ok((await metric(r.url, 'ktserve_prefix_cache_hits_total')) > 0, 'prefix-cache hits counted');
        }
        assert.equal(await metric(r.url, 'ktserve_kv_blocks_used'), 0);
      } finally {
        await stop(r);
      }
    });
  }

  it('KV exhaustion: many long requests on a small cache all complete; blocks come back', async () => {
    const r = await start({ cacheTokens: 320, chunkSize: 64, prefixCaching: false });
    try {
      const prompts = Array.from({ length: 10 }, (_, i) => `${topics[i % topics.length]} ${'word '.repeat(20 + i * 3)}`);
      const outs = await Promise.all(
        prompts.map((p) => r.client.completions.create({ model: 'tiny-llama', prompt: p, max_tokens: 60, temperature: 0, ...{ ignore_eos: true } })),
      );
      for (const o of outs) {
        assert.equal(o.choices[0]!.finish_reason, 'length');
        assert.equal(o.usage!.completion_tokens, 60);
      }
      assert.ok((await metric(r.url, 'ktserve_num_preemptions_total')) > 0, 'expected preemptions');
      assert.equal(await metric(r.url, 'ktserve_kv_blocks_used'), 0);
      assert.equal(await metric(r.url, 'ktserve_kv_blocks_free'), 20);
    } finally {
      await stop(r);
    }
  });

  it('an engine that dies fails its open requests with a 500 and /health says 503', async () => {
    const r = await start();
    try {
      const pending = r.client.completions.create({ model: 'tiny-llama', prompt: 'long', max_tokens: 250, temperature: 0, ...{ ignore_eos: true } });
      await waitFor(async () => r.engine.stats().running > 0, 'the request to run');
      await r.engine.kill();
      await assert.rejects(pending, (e: { status?: number }) => e.status === 500);
      const health = await fetch(`${r.url}/health`);
      assert.equal(health.status, 503);
      assert.match(((await health.json()) as { message: string }).message, /engine worker/);
    } finally {
      await r.app.close();
    }
  });

  it('a client that disconnects mid-stream is cancelled and its blocks freed; /health answers fast under load', async () => {
    const r = await start({ chunkSize: 64 });
    try {
      const busy = Array.from({ length: 8 }, (_, i) =>
        r.client.completions.create({ model: 'tiny-llama', prompt: `busy ${i}`, max_tokens: 200, temperature: 0, ...{ ignore_eos: true } }),
      );
      const ctrl = new AbortController();
      const stream = await r.client.completions.create(
        { model: 'tiny-llama', prompt: 'stream me', max_tokens: 200, stream: true, ...{ ignore_eos: true } },
        { signal: ctrl.signal },
      );
      let chunks = 0;
      const t0 = performance.now();
      const health = await fetch(`${r.url}/health`);
      const healthMs = performance.now() - t0;
      assert.equal(health.status, 200);
      assert.ok(healthMs < 50, `/health took ${healthMs.toFixed(1)} ms while the engine was busy`);
      try {
        for await (const _ of stream) {
          if (++chunks === 3) ctrl.abort();
        }
      } catch {
        // the abort surfaces as an error in the iterator
      }
      await Promise.all(busy);
      await waitFor(async () => (await metric(r.url, 'ktserve_kv_blocks_used')) === 0, 'blocks to be freed');
      assert.equal(await metric(r.url, 'ktserve_requests_finished_total', { reason: 'abort' }), 1);
    } finally {
      await stop(r);
    }
  });
});
