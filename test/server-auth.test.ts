// --api_key over every protected route and every way of spelling its path that the router still matches:
// percent-escapes anywhere in the path (issue 12 #2) and absolute-form targets (#3). Oracle: RFC 9110/6750 —
// a request the router routes to an API route without the key is a 401 with `WWW-Authenticate: Bearer`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixtureTokenizer, startFakeServer, type FakeServer } from './helpers/fake-engine.js';
import { httpRequest, rawRequest } from './helpers/raw-request.js';
import { needFixtures } from './fixtures.js';

const KEY = 'sekret-key';
const chatBody = { model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
/** Every route behind the key, with a body it accepts. */
const PROTECTED: { method: 'GET' | 'POST'; path: string; body?: unknown }[] = [
  { method: 'POST', path: '/v1/chat/completions', body: chatBody },
  { method: 'POST', path: '/v1/completions', body: { model: 'm', prompt: 'Hi', max_tokens: 2 } },
  { method: 'GET', path: '/v1/models' },
  { method: 'GET', path: '/v1/models/tiny-llama' },
  { method: 'POST', path: '/api/generate', body: { model: 'm', prompt: 'Hi', stream: false, options: { num_predict: 2 } } },
  { method: 'POST', path: '/api/chat', body: { model: 'm', messages: [{ role: 'user', content: 'Hi' }], stream: false, options: { num_predict: 2 } } },
  { method: 'GET', path: '/api/tags' },
  { method: 'GET', path: '/api/ps' },
  { method: 'POST', path: '/api/show', body: { model: 'm' } },
];

/** Spellings of the same path: each letter or digit of the first segment escaped, both hex cases, and more. */
function spellings(path: string): string[] {
  const [, first, rest] = /^\/([^/]+)(\/.*)$/.exec(path)!;
  const out = new Set<string>([path]);
  for (let i = 0; i < first!.length; i++) {
    const hex = first!.charCodeAt(i).toString(16);
    for (const h of [hex.toLowerCase(), hex.toUpperCase()]) out.add(`/${first!.slice(0, i)}%${h}${first!.slice(i + 1)}${rest}`);
  }
  out.add('/' + [...first!].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('') + rest);
  const lastSlash = path.lastIndexOf('/');
  out.add(`${path.slice(0, lastSlash + 1)}%${path.charCodeAt(lastSlash + 1).toString(16)}${path.slice(lastSlash + 2)}`);
  out.add(`${path}?x=1`);
  return [...out];
}

/** Request targets for one path: origin-form spellings and their absolute forms. */
function targets(path: string): string[] {
  const origin = spellings(path);
  return [...origin, ...origin.map((p) => `http://x${p}`), ...origin.map((p) => `http://127.0.0.1:1${p}`)];
}

describe('--api_key on every protected route, however the path is spelled', needFixtures, () => {
  let s: FakeServer;
  before(async () => {
    const tok = fixtureTokenizer('llama');
    s = await startFakeServer({ script: () => tok.encode('ok', { addSpecialTokens: false }) }, { apiKey: KEY });
  });
  after(() => s.close());

  it('covers all routes under /v1 and /api but the version probe', () => {
    for (const r of PROTECTED) assert.ok(s.app.hasRoute({ method: r.method, url: r.path.replace('tiny-llama', ':id') }), r.path);
    assert.equal(PROTECTED.length, 9);
  });

  for (const r of PROTECTED) {
    it(`${r.method} ${r.path}: 401 without the key for every spelling the router serves, 2xx with it`, async () => {
      const served: string[] = [];
      for (const target of targets(r.path)) {
        const withKey = await rawRequest(s.url, httpRequest(r.method, target, r.body, [`Authorization: Bearer ${KEY}`]));
        if (withKey.status === 404) continue; // a spelling the router does not route: nothing to protect
        assert.ok(withKey.status >= 200 && withKey.status < 300, `${target} with the key: ${withKey.status} ${withKey.body}`);
        served.push(target);
        for (const auth of [[], ['Authorization: Bearer wrong'], [`Authorization: Basic ${Buffer.from(KEY).toString('base64')}`], ['Authorization: Bearer ']]) {
          const res = await rawRequest(s.url, httpRequest(r.method, target, r.body, auth));
          assert.equal(res.status, 401, `${r.method} ${target} ${auth.join('')}: ${res.status} ${res.body}`);
          assert.equal(res.headers['www-authenticate'], 'Bearer');
          const body = JSON.parse(res.body) as { error: unknown };
          if (r.path.startsWith('/api/')) assert.equal(typeof body.error, 'string', `Ollama shape on ${target}`);
          else assert.equal((body.error as { code: string }).code, 'invalid_api_key');
        }
      }
      // The escapes of issue 12 are routed (so the test above did exercise them), and so is the absolute form.
      assert.ok(served.some((t) => /^\/(%76|v%31|ap%69)/i.test(t)), `no escaped spelling was served: ${served.join(' ')}`);
      assert.ok(served.some((t) => t.startsWith('http://x/')), 'the absolute form was not served');
    });
  }

  it('leaves /health, /metrics, /version and /api/version open', async () => {
    for (const path of ['/health', '/metrics', '/version', '/api/version', '/%68ealth']) {
      const res = await rawRequest(s.url, httpRequest('GET', path));
      assert.equal(res.status, 200, `${path}: ${res.status}`);
    }
  });
});
