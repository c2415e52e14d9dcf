// The web UI's routes without a browser: the page and its files with their types, cache validators and CSP;
// files of other kinds stay unserved; ServerOptions.webUi: false leaves / to the 404 handler; the key is not asked.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { WEB_UI_CSP, WEB_UI_DIR, registerWebUi } from '../src/server/web-ui.js';
import { needFixtures } from './fixtures.js';
import { startFakeServer, type FakeServer } from './helpers/fake-engine.js';

describe('web UI routes', needFixtures, () => {
  let s: FakeServer;
  before(async () => {
    s = await startFakeServer({ script: () => [] }, { apiKey: 'k' });
  });
  after(() => s.close());

  it('serves the page at / with a strict CSP and no-cache, without the API key', async () => {
    const r = await fetch(`${s.url}/`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(r.headers.get('content-security-policy'), WEB_UI_CSP);
    assert.match(WEB_UI_CSP, /script-src 'self'(;|$)/);
    assert.doesNotMatch(WEB_UI_CSP, /unsafe-inline|unsafe-eval/);
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(await r.text(), readFileSync(join(WEB_UI_DIR, 'index.html'), 'utf8'));
  });

  it('serves every script and style the page names, with its type', async () => {
    const html = await (await fetch(`${s.url}/`)).text();
    const refs = [...html.matchAll(/(?:src|href)="(\/web\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(refs.includes('/web/app.js') && refs.includes('/web/style.css'), refs.join(' '));
    const types: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', svg: 'image/svg+xml' };
    for (const ref of refs) {
      const r = await fetch(`${s.url}${ref}`);
      assert.equal(r.status, 200, ref);
      assert.equal(r.headers.get('content-type'), types[ref.split('.').pop()!], ref);
    }
    // Module imports inside the scripts resolve to served files too.
    const app = await (await fetch(`${s.url}/web/app.js`)).text();
    for (const m of app.matchAll(/from '\.\/([\w-]+\.js)'/g)) {
      assert.equal((await fetch(`${s.url}/web/${m[1]}`)).status, 200, m[1]);
    }
  });

  it('answers a matching If-None-Match with a 304', async () => {
    const first = await fetch(`${s.url}/web/app.js`);
    const etag = first.headers.get('etag');
    assert.ok(etag);
    const again = await fetch(`${s.url}/web/app.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal((await fetch(`${s.url}/web/app.js`, { headers: { 'if-none-match': '"other"' } })).status, 200);
  });

  it('answers unknown files and POST / in the API error shape', async () => {
    const missing = await fetch(`${s.url}/web/../package.json`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
    const post = await fetch(`${s.url}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(post.status, 405);
    assert.match(post.headers.get('allow') ?? '', /GET/);
  });

  it('leaves / unserved with webUi: false', async () => {
    const off = await startFakeServer({ script: () => [] }, { webUi: false });
    try {
      assert.equal((await fetch(`${off.url}/`)).status, 404);
      assert.equal((await fetch(`${off.url}/web/app.js`)).status, 404);
    } finally {
      await off.close();
    }
  });

  it('serves only html, js, css and svg files of the folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ktserve-web-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    writeFileSync(join(dir, 'a.js'), '');
    writeFileSync(join(dir, 'notes.md'), 'private');
    const app = Fastify();
    registerWebUi(app, dir);
    try {
      assert.equal((await app.inject('/web/a.js')).statusCode, 200);
      assert.equal((await app.inject('/web/notes.md')).statusCode, 404);
      assert.equal((await app.inject('/web/index.html')).statusCode, 404);
    } finally {
      await app.close();
    }
  });
});
