// Choices per request (issue 12, item 6): prompts × n is capped per request (400 naming n or prompt and the cap), a
// request that could never be queued is a 400 rather than a 503 forever, a request is queued whole or not at all,
// and no request keeps a later one waiting for more than one round of the biggest request the server takes.
// Oracles: the status and error fields; the engine's step counts (the real scheduler over a fake runner).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UsageError } from '../src/cli/args.js';
import { checkServeFlags, type ServeFlags } from '../src/cli/serve-command.js';
import { needFixtures } from './fixtures.js';
import { drive, postJson, startSteppedServer, until, type SteppedServer } from './helpers/stepped-engine.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function expectError(res: Response, status: number, param: string): Promise<ErrorBody['error']> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const e = (JSON.parse(text) as ErrorBody).error;
  assert.equal(e.param, param, e.message);
  return e;
}

const MAX_BATCH = 4;

describe('choices per request', needFixtures, () => {
  let s: SteppedServer;
  // The CLI's default cap is --max_batch_size: one request's choices fit one step's batch.
  before(async () => {
    s = await startSteppedServer(
      { numBlocks: 256, blockSize: 16, chunkSize: 256, maxBatchSize: MAX_BATCH, maxQueue: 64 },
      { maxChoicesPerRequest: MAX_BATCH },
    );
  });
  after(() => s.close());
  const completions = (body: Record<string, unknown>) => postJson(`${s.url}/v1/completions`, { model: 'm', ...body });
  const chat = (body: Record<string, unknown>) =>
    postJson(`${s.url}/v1/chat/completions`, { model: 'm', messages: [{ role: 'user', content: 'Hi' }], ...body });

  it('more choices than --max_choices_per_request: a 400 that names n or prompt and says the cap', async () => {
    const pending = [chat({ n: 5 }), completions({ prompt: ['a', 'b', 'c'], n: 2, max_tokens: 2 })];
    await drive(s.engine, pending);
    const [byN, byPrompts] = await Promise.all(pending);
    let e = await expectError(byN!, 400, 'n');
    assert.match(e.message, /n is 5, but this server takes at most 4 choices per request/);
    assert.equal(e.code, 'too_many_choices');
    e = await expectError(byPrompts!, 400, 'prompt');
    assert.match(e.message, /3 prompts × n 2 = 6 choices, but this server takes at most 4 choices per request/);
    assert.equal(s.engine.submitted.length, 0, 'nothing of them reached the engine');
    const ok = completions({ prompt: ['a', 'b'], n: 2, max_tokens: 2 });
    await drive(s.engine, [ok]);
    assert.equal((await ok).status, 200, 'exactly the cap is served');
  });

  it("a later request's first token comes within one round of the biggest request taken", async () => {
    const M = 16;
    // What the client did, scaled down: a prompt list × n, each choice generating M tokens.
    const big = (n: number, prompts: string[]) => completions({ prompt: prompts, n, max_tokens: M, ignore_eos: true });
    const scenario = async (bigRequest: Promise<Response>): Promise<{ bigStatus: number; wait: number }> => {
      const admitted = s.engine.submitted.length;
      let settled = false;
      void bigRequest.then(() => (settled = true));
      await until(() => settled || s.engine.submitted.length > admitted, 'the big request to be admitted or refused');
      const small = chat({ max_tokens: 2 });
      await until(() => s.engine.submitted.length > admitted && s.engine.submitted.at(-1)!.maxTokens === 2, 'the small request');
      const smallId = s.engine.submitted.at(-1)!.id;
      await drive(s.engine, [bigRequest, small]);
      assert.equal((await small).status, 200);
      return { bigStatus: (await bigRequest).status, wait: s.engine.firstTokenAt.get(smallId)! - s.engine.admittedAt.get(smallId)! };
    };
    // One round of a capped request: a prefill step, then M - 1 decode steps; the small one starts the step after.
    const bound = M + 2;
    const over = await scenario(big(4, ['x y', 'z w', 'u v']));
    assert.ok(over.wait <= bound, `behind 3 prompts × n 4 the small request waited ${over.wait} steps (bound ${bound})`);
    assert.equal(over.bigStatus, 400);
    const atCap = await scenario(big(MAX_BATCH, ['x y']));
    assert.equal(atCap.bigStatus, 200);
    assert.ok(atCap.wait <= bound, `behind n ${MAX_BATCH} the small request waited ${atCap.wait} steps (bound ${bound})`);
  });
});

describe('choices against --max_queue', needFixtures, () => {
  let s: SteppedServer;
  before(async () => {
    s = await startSteppedServer({ numBlocks: 256, blockSize: 16, chunkSize: 256, maxBatchSize: 8, maxQueue: 6 }, { maxChoicesPerRequest: 8 });
  });
  after(() => s.close());
  const completions = (body: Record<string, unknown>) => postJson(`${s.url}/v1/completions`, { model: 'm', max_tokens: 2, ...body });

  it('more choices than the queue holds: a 400 on an idle server, not a 503 "retry later" forever', async () => {
    const res = completions({ prompt: 'a', n: 7 });
    await drive(s.engine, [res]);
    const e = await expectError(await res, 400, 'n');
    assert.match(e.message, /queues at most 6 \(--max_queue\), so the request could never be queued/);
  });

  it('a request whose choices do not fit beside those waiting: a 503, and none of its choices is queued', async () => {
    const n0 = s.engine.submitted.length;
    const first = completions({ prompt: 'a', n: 4 });
    await until(() => s.engine.submitted.length === n0 + 4, 'the first request to be queued');
    const second = completions({ prompt: 'b', n: 3 });
    const res = await second;
    assert.equal(res.status, 503, await res.text());
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal(s.engine.submitted.length, n0 + 4, 'not admitted in part (then aborted)');
    await drive(s.engine, [first]);
    assert.equal((await first).status, 200);
    const again = completions({ prompt: 'b', n: 3 });
    await drive(s.engine, [again]);
    assert.equal((await again).status, 200, 'served once the queue has room');
  });
});

it('--max_choices_per_request beyond --max_queue is refused at start, naming both flags', () => {
  const flags: ServeFlags = {
    host: '127.0.0.1', port: 0, demo: true, maxNewTokens: 16, gpuMemoryUtilization: 0.9, cudaGraphs: false, kvCacheDtype: 'f32',
    chunkSize: 512, maxBatchSize: 32, backendType: 'balance_serve', forceThink: false, blockSize: 16, maxQueue: 8, prefixCache: true,
    backend: 'cpu', shutdownTimeout: 10,
  };
  checkServeFlags({ ...flags, maxChoicesPerRequest: 8 });
  assert.throws(
    () => checkServeFlags({ ...flags, maxChoicesPerRequest: 9 }),
    (e: unknown) => e instanceof UsageError && /--max_choices_per_request 9 exceeds --max_queue 8/.test(e.message),
  );
});
