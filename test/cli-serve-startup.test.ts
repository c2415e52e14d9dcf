// `ktserve serve` binds before it loads (issue 13 #2): a taken port or a bad --host fails at once with exit 1 and
// a message naming it; while the weights load /health says 503 "loading" and API routes 503 `model_loading`; a
// load that fails after binding exits 1 too; --cpu_infer sizes the native pool.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cudaAvailable } from '../src/backend/cuda-backend.js';
import { repoRoot } from './fixtures.js';

const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

interface Run {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; ms: number }>;
  /** Resolves with the first match of `re` in stderr. */
  waitFor: (re: RegExp) => Promise<RegExpExecArray>;
}

function serve(args: string[], env: Record<string, string> = {}): Run {
  const t0 = performance.now();
  const child = spawn(process.execPath, [main, 'serve', '--demo', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let text = '';
  const waiters: (() => void)[] = [];
  child.stderr!.on('data', (d: Buffer) => {
    text += d.toString();
    for (const w of waiters) w();
  });
  const exited = new Promise<{ code: number | null; ms: number }>((resolve) => child.once('exit', (code) => resolve({ code, ms: performance.now() - t0 })));
  const waitFor = (re: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(text);
        if (m) resolve(m);
      };
      waiters.push(check);
      check();
      void exited.then(({ code }) => reject(new Error(`exited ${code} before ${re}: ${text}`)));
    });
  return { child, stderr: () => text, exited, waitFor };
}

async function stop(r: Run): Promise<number | null> {
  if (r.child.exitCode !== null) return r.child.exitCode;
  r.child.kill('SIGTERM');
  return (await r.exited).code;
}

describe('serve: binding comes first', () => {
  it('a port in use: exit 1 within 2 s, before loading, naming the port', async () => {
    const holder = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const port = (holder.address() as AddressInfo).port;
    try {
      const r = serve(['--port', String(port)]);
      const { code, ms } = await r.exited;
      assert.equal(code, 1, r.stderr());
      assert.ok(ms < 2000, `took ${ms} ms`);
      assert.match(r.stderr(), new RegExp(`port ${port} is already in use \\(EADDRINUSE\\)`));
      assert.doesNotMatch(r.stderr(), /loading ktserve-demo|loaded/);
    } finally {
      holder.close();
    }
  });

  it('a --host that is not this machine’s: exit 1 within 2 s, naming the flag', async () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it, so binding fails at once without any lookup.
    const r = serve(['--host', '192.0.2.1', '--port', '0']);
    const { code, ms } = await r.exited;
    assert.equal(code, 1, r.stderr());
    assert.ok(ms < 2000, `took ${ms} ms`);
    assert.match(r.stderr(), /--host 192\.0\.2\.1 is not an address of this machine/);
  });

  it('while the model loads: /health 503 loading, API routes 503 in each API’s shape, then ready', async () => {
    const r = serve(['--port', '0', '--cpu_infer', '1'], { KT_TEST_LOAD_DELAY_MS: '1500' });
    try {
      const url = `http://127.0.0.1:${(await r.waitFor(/bound http:\/\/127\.0\.0\.1:(\d+)/))[1]}`;
      assert.match(r.stderr(), /serving the built-in DEMO model/);
      const health = await fetch(`${url}/health`);
      assert.equal(health.status, 503);
      assert.deepEqual(await health.json(), { status: 'loading' });
      const chat = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'What is 2+2?' }] }),
      });
      assert.equal(chat.status, 503);
      assert.equal(chat.headers.get('retry-after'), '5');
      const body = (await chat.json()) as { error: { code: string; type: string; message: string } };
      assert.equal(body.error.code, 'model_loading');
      assert.match(body.error.message, /loading/);
      const ollama = await fetch(`${url}/api/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(ollama.status, 503);
      assert.equal(typeof ((await ollama.json()) as { error: unknown }).error, 'string');
      assert.equal((await fetch(`${url}/v1/models`)).status, 503);
      assert.equal((await fetch(`${url}/api/version`)).status, 200);
      assert.equal((await fetch(`${url}/metrics`)).status, 200);
      assert.equal(r.stderr().includes('listening on'), false, 'the ready line came before the load ended');

      await r.waitFor(/listening on/);
      assert.match(r.stderr(), /on CPU, 1 threads/, '--cpu_infer 1 reached the native pool');
      assert.deepEqual(await (await fetch(`${url}/health`)).json(), { status: 'ok' });
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { max_model_len: number }[] };
      assert.equal(models.data[0]!.max_model_len, 1024); // the demo's context, below its KV cache
    } finally {
      assert.equal(await stop(r), 0);
    }
  });

  it('SIGTERM while loading exits 0', async () => {
    const r = serve(['--port', '0'], { KT_TEST_LOAD_DELAY_MS: '5000' });
    await r.waitFor(/bound http/);
    assert.equal(await stop(r), 0);
  });

  it('a load that fails after binding exits 1 with the reason', { skip: cudaAvailable() ? 'this build has CUDA' : false }, async () => {
    const r = serve(['--port', '0', '--backend', 'cuda']);
    const { code } = await r.exited;
    assert.equal(code, 1, r.stderr());
    assert.match(r.stderr(), /bound http:.*\n(.|\n)*loading ktserve-demo failed: .*CUDA/);
  });
});
