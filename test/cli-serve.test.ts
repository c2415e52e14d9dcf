// `ktserve serve` as a user starts it: flag checks at start, the KV line, serving, clean exit on SIGTERM.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cudaAvailable } from '../src/backend/cuda-backend.js';
import { fixturePath, needFixtures, repoRoot } from './fixtures.js';

const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

describe('ktserve serve', needFixtures, () => {
  it('refuses a KV cache smaller than one request can need, naming the flag', () => {
    const r = spawnSync(process.execPath, [main, 'serve', '--model_path', fixturePath('llama'), '--cache_lens', '100', '--max_new_tokens', '200'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--cache_lens 100 is smaller than one request can need/);
    const bad = spawnSync(process.execPath, [main, 'serve', '--model_path', fixturePath('llama'), '--backend_type', 'vllm'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /backend_type/);
  });

  it('states the KV cache size at start, serves, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [main, 'serve', '--model_path', fixturePath('llama'), '--port', '0', '--cache_lens', '1000', '--page_size', '32', '--max_new_tokens', '256'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /listening on (http:\/\/[\d.:]+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    try {
      // 1000 tokens round up to 32 blocks of 32; 2 layers × K and V × 128 values per token, 4 bytes each
      // in f32 (the CPU's cache) or 2 in bf16 (the default on a GPU, which `serve` picks where there is one).
      const kv = cudaAvailable() ? 'bf16\\), 1\\.0 MiB' : 'f32\\), 2\\.0 MiB';
      assert.match(stderr, new RegExp(`KV cache 1024 tokens \\(32 blocks of 32, ${kv}`));
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
      assert.equal(models.data.length, 1);
    } catch (err) {
      child.kill('SIGKILL'); // a failed check must not leave the server running (the test run would hang)
      throw err;
    }
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', (c) => resolve(c));
      child.kill('SIGTERM');
    });
    assert.equal(code, 0);
  });
});
