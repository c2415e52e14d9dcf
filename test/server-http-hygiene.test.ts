// What a browser page, a sloppy client or a hostile one meets at the HTTP layer (issue 12 #4, #11): JSON-only POST
// bodies (415, as a cross-origin text/plain or form POST needs no preflight), origin checks as Ollama makes them,
// a preflight that echoes the asked-for headers, 405 + Allow for a wrong method, parser-level errors (400, 431,
// 417, 408) in the OpenAI error shape, one Host header, and 500s that keep their internals to the log.
// Oracles: RFC 9110 (405/Allow, 415, 417, 431), RFC 9112 §3.2 (Host), the Fetch standard's CORS rules.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sameOriginByAddress } from '../src/server/cors.js';
import { fixtureTokenizer, startFakeServer, type FakeServer } from './helpers/fake-engine.js';
import { httpRequest, rawRequest, type RawResponse } from './helpers/raw-request.js';
import { needFixtures } from './fixtures.js';

const chat = { model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };

function openAiError(res: RawResponse, status: number): { message: string; type: string; code: string | null } {
  assert.equal(res.status, status, res.body);
  const body = JSON.parse(res.body) as { error: { message: string; type: string; param: unknown; code: string | null } };
  assert.equal(typeof body.error.message, 'string');
  assert.equal(typeof body.error.type, 'string');
  assert.ok('param' in body.error && 'code' in body.error, `OpenAI error shape: ${res.body}`);
  return body.error;
}

function withBody(target: string, contentType: string | undefined, body: string, extra: string[] = []): string {
  const lines = [`POST ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', `Content-Length: ${Buffer.byteLength(body)}`, ...extra];
  if (contentType !== undefined) lines.push(`Content-Type: ${contentType}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

describe('HTTP hygiene', needFixtures, () => {
  let s: FakeServer;
  let logged = '';
  before(async () => {
    const tok = fixtureTokenizer('llama');
    s = await startFakeServer(
      { script: () => tok.encode('ok', { addSpecialTokens: false }) },
      {
        requestTimeoutMs: 600,
        logger: { level: 'error', stream: { write: (line: string) => void (logged += line) } },
      },
    );
  });
  after(() => s.close());

  it('takes JSON bodies only: text/plain, forms and a missing type are 415; JSON with parameters or +json is fine', async () => {
    const body = JSON.stringify(chat);
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
      const res = await rawRequest(s.url, withBody('/v1/chat/completions', type, body));
      assert.equal(openAiError(res, 415).code, 'unsupported_media_type', `${type}`);
    }
    const ollama = await rawRequest(s.url, withBody('/api/chat', 'text/plain', JSON.stringify({ model: 'm', messages: [], stream: false })));
    assert.equal(ollama.status, 415);
    assert.equal(typeof (JSON.parse(ollama.body) as { error: unknown }).error, 'string');
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/vnd.api+json']) {
      const res = await rawRequest(s.url, withBody('/v1/chat/completions', type, body));
      assert.equal(res.status, 200, `${type}: ${res.body}`);
    }
  });

  it('refuses pages of other origins (403, no CORS grant) and grants localhost pages their own origin', async () => {
    for (const origin of ['http://evil.example', 'null', 'https://localhost.evil.example', 'http://127.0.0.1.nip.io:8000']) {
      const res = await rawRequest(s.url, httpRequest('POST', '/v1/chat/completions', chat, [`Origin: ${origin}`]));
      assert.equal(openAiError(res, 403).code, 'origin_not_allowed', origin);
      assert.equal(res.headers['access-control-allow-origin'], undefined);
    }
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:5173', 'https://localhost', 'http://[::1]:8080']) {
      const res = await rawRequest(s.url, httpRequest('POST', '/v1/chat/completions', chat, [`Origin: ${origin}`]));
      assert.equal(res.status, 200, `${origin}: ${res.body}`);
      assert.equal(res.headers['access-control-allow-origin'], origin);
      assert.match(res.headers['vary'] ?? '', /origin/i);
    }
    // No Origin at all: curl, SDKs, other servers. Served, and no CORS header is needed.
    const plain = await rawRequest(s.url, httpRequest('POST', '/v1/chat/completions', chat));
    assert.equal(plain.status, 200);
  });

  it('answers a preflight with the headers the page asked for (the openai SDK sends x-stainless-*)', async () => {
    const asked = 'authorization, content-type, x-stainless-os, x-stainless-retry-count';
    const pre = [`Origin: http://localhost:3000`, 'Access-Control-Request-Method: POST', `Access-Control-Request-Headers: ${asked}`];
    const res = await rawRequest(s.url, httpRequest('OPTIONS', '/v1/chat/completions', undefined, pre));
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-headers'], asked);
    assert.equal(res.headers['access-control-allow-origin'], 'http://localhost:3000');
    assert.match(res.headers['access-control-allow-methods'] ?? '', /POST/);
    const evil = await rawRequest(s.url, httpRequest('OPTIONS', '/v1/chat/completions', undefined, ['Origin: http://evil.example', 'Access-Control-Request-Method: POST']));
    assert.equal(evil.status, 403);
  });

  it('can allow every origin, or a pattern (--allowed_origins)', async () => {
    const tok = fixtureTokenizer('llama');
    for (const [patterns, origin, granted] of [
      [['*'], 'http://anything.example', '*'],
      [['https://*.example.com'], 'https://chat.example.com', 'https://chat.example.com'],
    ] as const) {
      const t = await startFakeServer({ script: () => tok.encode('ok', { addSpecialTokens: false }) }, { allowedOrigins: patterns });
      try {
        const res = await rawRequest(t.url, httpRequest('POST', '/v1/chat/completions', chat, [`Origin: ${origin}`]));
        assert.equal(res.status, 200, res.body);
        assert.equal(res.headers['access-control-allow-origin'], granted);
        const other = await rawRequest(t.url, httpRequest('POST', '/v1/chat/completions', chat, ['Origin: https://example.com.evil.net']));
        assert.equal(other.status, patterns[0] === '*' ? 200 : 403);
      } finally {
        await t.close();
      }
    }
  });

  it('treats a page served by this server at an IP address as same-origin, but not one reached by a DNS name', () => {
    assert.equal(sameOriginByAddress('http://192.168.1.5:8000', '192.168.1.5:8000'), true);
    assert.equal(sameOriginByAddress('http://[fe80::1]:8000', '[fe80::1]:8000'), true);
    assert.equal(sameOriginByAddress('http://192.168.1.5:8000', '192.168.1.5:9000'), false);
    // DNS rebinding: evil.example resolves to us, so Origin and Host agree; only a name can do that.
    assert.equal(sameOriginByAddress('http://evil.example:8000', 'evil.example:8000'), false);
    assert.equal(sameOriginByAddress('null', '127.0.0.1:8000'), false);
  });

  it('405 with Allow for a known path asked with the wrong method, in each API shape', async () => {
    let res = await rawRequest(s.url, httpRequest('GET', '/v1/chat/completions'));
    assert.equal(openAiError(res, 405).code, 'method_not_allowed');
    assert.equal(res.headers['allow'], 'POST');
    res = await rawRequest(s.url, httpRequest('DELETE', '/v1/models/tiny-llama'));
    openAiError(res, 405);
    assert.match(res.headers['allow'] ?? '', /GET/);
    res = await rawRequest(s.url, httpRequest('PUT', '/api/generate', {}));
    assert.equal(res.status, 405);
    assert.equal(typeof (JSON.parse(res.body) as { error: unknown }).error, 'string');
    res = await rawRequest(s.url, httpRequest('GET', '/v1/nothing-here'));
    openAiError(res, 404);
  });

  it('answers what the HTTP parser refuses in the OpenAI shape, with its own words', async () => {
    const cases: [string, number][] = [
      ['GARBAGE\r\n\r\n', 400],
      ['POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
      ['GET /health HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n', 400],
      [`GET /health HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      ['POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 2\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{}', 417],
    ];
    for (const [req, status] of cases) {
      const res = await rawRequest(s.url, req);
      const e = openAiError(res, status);
      assert.doesNotMatch(e.message, /HPE_|at .*\.js/, 'no parser internals');
    }
  });

  it('times out a request whose body never completes (408), and still serves', async () => {
    const t0 = Date.now();
    const res = await rawRequest(s.url, 'POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mod');
    const e = openAiError(res, 408);
    assert.equal(e.code, 'request_timeout');
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    assert.equal((await rawRequest(s.url, httpRequest('GET', '/health'))).status, 200);
  });

  it('refuses two Host headers', async () => {
    const res = await rawRequest(s.url, 'GET /v1/models HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n');
    openAiError(res, 400);
  });

  it('keeps an unexpected failure to the log: the client hears "internal server error"', async () => {
    logged = '';
    s.engine.failNextSubmit = new TypeError("Cannot read properties of undefined (reading 'secretInternalField')");
    const res = await rawRequest(s.url, httpRequest('POST', '/v1/chat/completions', chat));
    const e = openAiError(res, 500);
    assert.equal(e.message, 'internal server error');
    assert.match(logged, /secretInternalField/);
  });
});
