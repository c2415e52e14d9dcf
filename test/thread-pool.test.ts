// The native ThreadPool under stress (issue 12: a late worker ran a chunk of the next loop with the
// previous loop's dead captures). Each loop checks its own coverage and captures; ThreadSanitizer runs
// the same stress in a dedicated build: scripts/tsan-thread-pool.sh.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadNative } from '../src/backend/native.js';
import { repoRoot } from './fixtures.js';

const native = loadNative();

describe('ThreadPool', () => {
  // More threads than the CI box has cores: workers are preempted mid-loop, which is what exposed the race.
  for (const threads of [2, 4, 8]) {
    it(`runs 1,000,000 loops of alternating sizes on ${threads} threads, each index once, captures intact`, () => {
      const r = native.threadPoolStress(1_000_000, threads, 1000 + threads);
      assert.equal(r.threads, threads);
      assert.equal(r.loops, 1_000_000);
      assert.equal(r.failures, 0, r.firstFailure);
    });
  }

  it('holds on the process-wide pool the kernels use', () => {
    const r = native.threadPoolStress(300_000, 0, 7);
    assert.equal(r.threads, native.info().threads);
    assert.equal(r.failures, 0, r.firstFailure);
  });

  const tsanProbe = spawnSync('sh', ['-c', 'echo "int main(){}" | g++ -x c++ -fsanitize=thread -o /dev/null -'], { encoding: 'utf8' });
  const tsan = tsanProbe.status === 0 ? {} : { skip: 'g++ with ThreadSanitizer (libtsan) is not available here' };
  it('is free of data races under ThreadSanitizer (scripts/tsan-thread-pool.sh)', { ...tsan, timeout: 300_000 }, () => {
    const r = spawnSync(join(repoRoot, 'scripts', 'tsan-thread-pool.sh'), ['40000', '4', '99'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /40000 loops on 4 threads, seed 99: 0 failed/);
  });
});
