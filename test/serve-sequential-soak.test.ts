// Issue 12's crash as its reporter hit it: one client looping sampled chat requests against `serve --demo`
// on the CPU killed the server (SIGSEGV/SIGFPE in a thread-pool worker) within 4–17 s, 68–389 requests.
// This runs that loop for longer than the slowest crash, with more pool threads than cores.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from './fixtures.js';

const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const SECONDS = Number(process.env.KT_SOAK_SECONDS ?? 25);

describe('serve --demo under a sequential chat loop', () => {
  it(`answers every request for ${SECONDS} s and stays up`, { timeout: (SECONDS + 60) * 1000 }, async () => {
    const child = spawn(process.execPath, [main, 'serve', '--demo', '--port', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, KT_NUM_THREADS: '4' },
    });
    let stderr = '';
    let exit: string | undefined;
    child.on('exit', (code, signal) => (exit = `exit code ${code}, signal ${signal}`));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /listening on (http:\/\/[\d.:]+)/.exec(stderr);
          if (m) resolve(m[1]!);
        });
        child.on('exit', () => reject(new Error(`server exited before listening: ${stderr}`)));
      });
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
          res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        } catch (e) {
          assert.fail(`request ${done + 1} failed (${(e as Error).message}); server: ${exit ?? 'alive'}\n${stderr}`);
        }
        assert.equal(res.status, 200, await res.clone().text());
        const json = (await res.json()) as { usage: { completion_tokens: number } };
        assert.equal(json.usage.completion_tokens, 64);
        done++;
      }
      assert.ok(done >= 50, `only ${done} requests in ${SECONDS} s`);
      assert.equal(exit, undefined);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
