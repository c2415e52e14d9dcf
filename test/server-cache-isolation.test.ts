// Prefix-cache isolation (issue 12, item 8): cached_tokens must not let one client confirm another's prompt. Requests
// share cached blocks only with the same cache_salt (vLLM's field) and, where API keys are configured, the same key.
// Oracle: usage.prompt_tokens_details.cached_tokens from the real scheduler and prefix cache (fake runner): a 64-token
// prompt in blocks of 16 has 48 tokens to reuse (the last token is always computed), or 0 when nothing is shared.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UsageError } from '../src/cli/args.js';
import { readApiKeyFile } from '../src/cli/serve-command.js';
import { apiKeyIdOf, cacheSaltFor } from '../src/server/cache-isolation.js';
import { needFixtures } from './fixtures.js';
import { drive, postJson, startSteppedServer, type SteppedServer } from './helpers/stepped-engine.js';

const PROMPT = Array.from({ length: 64 }, (_, i) => 10 + ((i * 7) % 300));
const REUSABLE = 48;
const ENGINE = { numBlocks: 256, blockSize: 16, chunkSize: 256, maxBatchSize: 8, maxQueue: 64 };

interface Completion {
  usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } };
  error?: { message: string; param: string | null };
}

/** One request run to its end; returns its status and body. */
async function run(s: SteppedServer, path: string, body: Record<string, unknown>, key?: string): Promise<{ status: number; body: Completion }> {
  const res = postJson(`${s.url}${path}`, { model: 'm', max_tokens: 2, ...body }, key === undefined ? {} : { authorization: `Bearer ${key}` });
  await drive(s.engine, [res]);
  const r = await res;
  return { status: r.status, body: (await r.json()) as Completion };
}

async function cachedTokens(s: SteppedServer, extra: Record<string, unknown>, key?: string): Promise<number> {
  const r = await run(s, '/v1/completions', { prompt: PROMPT, ...extra }, key);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.usage.prompt_tokens, PROMPT.length);
  return r.body.usage.prompt_tokens_details.cached_tokens;
}

describe('cache_salt', needFixtures, () => {
  let s: SteppedServer;
  before(async () => {
    s = await startSteppedServer(ENGINE);
  });
  after(() => s.close());

  it('completions: cached only for a later request with the same salt', async () => {
    assert.equal(await cachedTokens(s, { cache_salt: 'alice-secret' }), 0);
    assert.equal(await cachedTokens(s, { cache_salt: 'alice-secret' }), REUSABLE, 'same salt: the prefix is reused');
    assert.equal(await cachedTokens(s, { cache_salt: 'mallory' }), 0, 'another salt learns nothing');
    assert.equal(await cachedTokens(s, {}), 0, 'nor does a request without one');
    assert.equal(await cachedTokens(s, {}), REUSABLE, 'unsalted requests share among themselves');
    assert.equal(await cachedTokens(s, { cache_salt: null }), REUSABLE, 'null is no salt');
    assert.equal(await cachedTokens(s, { cache_salt: 'mallory' }), REUSABLE);
  });

  it('chat: the same, through the chat template', async () => {
    const messages = [{ role: 'user', content: 'word '.repeat(60) }];
    const chat = async (salt: string): Promise<number> => {
      const r = await run(s, '/v1/chat/completions', { messages, cache_salt: salt });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.usage.prompt_tokens_details.cached_tokens;
    };
    assert.equal(await chat('a'), 0);
    assert.ok((await chat('a')) >= 48, 'same salt: reused');
    assert.equal(await chat('b'), 0);
  });

  it('an empty, overlong or non-string cache_salt is a 400 naming it', async () => {
    for (const bad of ['', 'x'.repeat(1025), 42, ['a']]) {
      const r = await run(s, '/v1/completions', { prompt: PROMPT, cache_salt: bad });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.error!.param, 'cache_salt', r.body.error!.message);
    }
    assert.equal((await run(s, '/v1/completions', { prompt: PROMPT, cache_salt: 'x'.repeat(1024) })).status, 200);
  });
});

describe('several API keys', needFixtures, () => {
  let s: SteppedServer;
  before(async () => {
    s = await startSteppedServer(ENGINE, { apiKey: 'key-a', apiKeys: ['key-b', 'key-c'] });
  });
  after(() => s.close());

  it("each key has its own prefix cache: another key's prompt is never reported cached", async () => {
    assert.equal(await cachedTokens(s, {}, 'key-a'), 0);
    assert.equal(await cachedTokens(s, {}, 'key-a'), REUSABLE, 'the same key reuses its prefix');
    assert.equal(await cachedTokens(s, {}, 'key-b'), 0, 'another key does not');
    assert.equal(await cachedTokens(s, {}, 'key-c'), 0);
    assert.equal(await cachedTokens(s, {}, 'key-b'), REUSABLE);
    // A cache_salt splits a key's cache further, and can't reach into another key's.
    assert.equal(await cachedTokens(s, { cache_salt: 's' }, 'key-a'), 0);
    assert.equal(await cachedTokens(s, { cache_salt: 's' }, 'key-b'), 0);
    assert.equal(await cachedTokens(s, { cache_salt: 's' }, 'key-a'), REUSABLE);
    // The engine is handed digests, never a key.
    for (const r of s.engine.submitted) assert.ok(r.cacheSalt !== undefined && !/key-/.test(r.cacheSalt), r.cacheSalt);
  });

  it('every configured key is accepted, any other is a 401; /health stays open', async () => {
    for (const key of ['key-a', 'key-b', 'key-c']) assert.equal((await run(s, '/v1/completions', { prompt: 'hi' }, key)).status, 200, key);
    assert.equal((await run(s, '/v1/completions', { prompt: 'hi' }, 'key-d')).status, 401);
    assert.equal((await run(s, '/v1/completions', { prompt: 'hi' })).status, 401);
    assert.equal((await run(s, '/api/generate', { prompt: 'hi', stream: false })).status, 401);
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
  });
});

describe('isolation salts and key files', () => {
  it('cacheSaltFor: the shared cache only without key and salt; every (key, salt) pair distinct', () => {
    assert.equal(cacheSaltFor(undefined, undefined), undefined);
    const id = apiKeyIdOf('key-a');
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.ok(!id.includes('key-a'));
    const salts = [
      cacheSaltFor(id, undefined), cacheSaltFor(undefined, id), cacheSaltFor(id, 's'), cacheSaltFor(apiKeyIdOf('key-b'), 's'),
      cacheSaltFor(undefined, 's'), cacheSaltFor(id, ''), cacheSaltFor(undefined, `["${id}",null]`),
    ];
    assert.equal(new Set(salts).size, salts.length);
  });

  it('--api_key_file: one key per line, blank lines and # comments skipped; a file without keys is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ktserve-keys-'));
    const file = join(dir, 'keys');
    writeFileSync(file, '# tenants\nkey-one\n\n  key-two  \r\n#key-three\n');
    assert.deepEqual(readApiKeyFile(file), ['key-one', 'key-two']);
    writeFileSync(file, '# nobody\n\n');
    assert.throws(() => readApiKeyFile(file), (e: unknown) => e instanceof UsageError && /holds no key/.test(e.message));
    assert.throws(() => readApiKeyFile(join(dir, 'missing')), UsageError);
  });
});
