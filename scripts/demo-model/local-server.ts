// ktserve's whole server in this process, on a free port, over the CPU engine worker: what `npm start` runs,
// for the demo model's evaluation and tests to drive with the official openai client.
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { WorkerEngineClient } from '../../src/engine/worker-client.js';
import type { EngineOptions } from '../../src/engine/worker-protocol.js';
import { openModelFiles, type ModelLocation } from '../../src/models/model-files.js';
import { buildServer } from '../../src/server/app.js';

export interface LocalServer {
  url: string;
  client: OpenAI;
  close(): Promise<void>;
}

export async function startLocalServer(model: ModelLocation, over: Partial<EngineOptions> = {}): Promise<LocalServer> {
  const files = openModelFiles(model);
  const engine = await WorkerEngineClient.start({
    model, cacheTokens: 8192, blockSize: 16, chunkSize: 512, maxBatchSize: 32, maxQueue: 1024, prefixCaching: true, ...over,
  });
  const app: FastifyInstance = buildServer({
    engine, tokenizer: files.tokenizer, chatTemplate: files.chatTemplate, modelName: files.name,
    maxModelLen: Math.min(files.config.maxPositions, engine.info.kvTokens), maxNewTokens: 256, forceThink: false,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 }),
    close: async () => {
      await app.close();
      await engine.shutdown();
    },
  };
}

/** One question as a single user turn, answered greedily; the reply's text. */
export async function ask(client: OpenAI, question: string, system?: string): Promise<string> {
  const r = await client.chat.completions.create({
    model: 'demo', temperature: 0, max_tokens: 64,
    messages: [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user' as const, content: question }],
  });
  return r.choices[0]?.message.content ?? '';
}
