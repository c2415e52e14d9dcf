// Qwen3-MoE served end to end on the CPU engine worker (the qwen3moe fixture, HF safetensors): the
// official openai client, 12 concurrent chats under a shared system prompt give each one's greedy text
// alone (continuous batching mixes their prefill chunks and decodes through the MoE layers), the prefix
// cache hits, and every KV block comes back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { FastifyInstance } from 'fastify';
import { WorkerEngineClient } from '../src/engine/worker-client.js';
import type { EngineOptions } from '../src/engine/worker-protocol.js';
import { openModelFiles } from '../src/models/model-files.js';
import { buildServer } from '../src/server/app.js';
import { sample, scrape } from '../bench/prom-text.js';
import { fixturePath, needFixtures } from './fixtures.js';

interface Running {
  app: FastifyInstance;
  engine: WorkerEngineClient;
  client: OpenAI;
  url: string;
}

async function start(over: Partial<EngineOptions>): Promise<Running> {
  const model = { modelPath: fixturePath('qwen3moe') };
  const files = openModelFiles(model);
  const backend = process.env['KT_TEST_BACKEND'] === 'cuda' ? ('cuda' as const) : undefined;
  const engine = await WorkerEngineClient.start({
    backend, model, cacheTokens: 4096, blockSize: 16, chunkSize: 64, maxBatchSize: 16, maxQueue: 64, prefixCaching: true, ...over,
  });
  const app = buildServer({
    engine, tokenizer: files.tokenizer, chatTemplate: files.chatTemplate, modelName: 'tiny-qwen3moe',
    maxModelLen: Math.min(files.config.maxPositions, engine.info.kvTokens), maxNewTokens: 64, forceThink: false,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, engine, url, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 }) };
}

async function stop(r: Running): Promise<void> {
  await r.app.close();
  await r.engine.shutdown();
}

const system = 'You answer questions about the Python standard library, briefly and exactly. '.repeat(2);
const questions = Array.from({ length: 12 }, (_, i) => `What does module number ${i} do? ${'Explain. '.repeat(i % 4)}`);

async function ask(client: OpenAI, q: string): Promise<string> {
  const r = await client.chat.completions.create({
    model: 'tiny-qwen3moe', temperature: 0, max_tokens: 10,
    messages: [{ role: 'system', content: system }, { role: 'user', content: q }],
  });
  return r.choices[0]!.message.content ?? '';
}

describe('Qwen3-MoE served over the CPU engine worker', needFixtures, () => {
  const alone = new Map<string, string>();
  let serial: Running;
  before(async () => {
    serial = await start({ prefixCaching: false, maxBatchSize: 1 });
  });
  after(async () => stop(serial));

  it('answers each chat alone', async () => {
    for (const q of questions) alone.set(q, await ask(serial.client, q));
    assert.ok([...alone.values()].some((t) => t.length > 0), 'some text generated');
  });

  it('12 concurrent chats give each one its text alone; the prefix cache hits; blocks come back', async () => {
    const r = await start({});
    try {
      const texts = await Promise.all(questions.map((q) => ask(r.client, q)));
      questions.forEach((q, i) => assert.equal(texts[i], alone.get(q), `request ${i}`));
      const f = await scrape(r.url);
      assert.ok(sample(f, 'ktserve_prefix_cache_hits_total') > 0, 'prefix-cache hits');
      assert.equal(sample(f, 'ktserve_kv_blocks_used'), 0);
    } finally {
      await stop(r);
    }
  });
});
