// Issue 12's crash as its reporter hit it: one client looping sampled chat requests against `serve --demo`
// on the CPU killed the server (SIGSEGV/SIGFPE in a thread-pool worker) within 4–17 s, 68–389 requests.
// This runs that loop for longer than the slowest crash, with more pool threads than cores.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startKtserve } from '../bench/ktserve-process.js';

const SECONDS = Number(process.env.KT_SOAK_SECONDS ?? 25);

describe('serve --demo under a sequential chat loop', () => {
  it(`answers every request for ${SECONDS} s and stays up`, { timeout: (SECONDS + 60) * 1000 }, async () => {
    const server = await startKtserve(['--demo', '--cpu_infer', '4']);
    const state = (): string => {
      const e = server.exited();
      return e === null ? 'alive' : `exit code ${e.code}, signal ${e.signal}`;
    };
    try {
      const body = JSON.stringify({
        messages: [{ role: 'user', content: 'Count from 1 to 50.' }],
        max_tokens: 64,
        ignore_eos: true,
        temperature: 0.7,
      });
      const end = Date.now() + SECONDS * 1000;
      let done = 0;
      while (Date.now() < end) {
        let res: Response;
        try {
          res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        } catch (e) {
          assert.fail(`request ${done + 1} failed (${(e as Error).message}); server: ${state()}\n${server.stderr()}`);
        }
        assert.equal(res.status, 200, await res.clone().text());
        const json = (await res.json()) as { usage: { completion_tokens: number } };
        assert.equal(json.usage.completion_tokens, 64);
        done++;
      }
      assert.ok(done >= 50, `only ${done} requests in ${SECONDS} s`);
      assert.equal(server.exited(), null);
      assert.match(server.stderr(), /on CPU, 4 threads/, 'the pool has more threads than the CI box has cores');
    } finally {
      await server.stop();
    }
  });
});
