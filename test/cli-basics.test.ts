// The command line's basics (issue 13 #4): --version, bench --help, a closed stdout pipe, and no model silently
// served: `serve` needs a model flag or --demo, and says loudly when it serves the demo.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from './fixtures.js';

const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const ktserve = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });

describe('ktserve command line basics', () => {
  it('--version prints package.json’s version', () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const r = ktserve('--version');
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `ktserve ${version}\n`);
  });

  it('bench --help lists the benchmarks and exits 0; an unknown one exits 2, said once', () => {
    const help = ktserve('bench', '--help');
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /serve .*\n.*engine/);
    const bad = ktserve('bench', 'nope');
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr.trim(), 'ktserve bench: unknown benchmark "nope" (available: serve, engine); see ktserve bench --help');
    assert.equal(ktserve('bench').status, 2);
  });

  it('generate … | head -c 10 ends quietly: exit 0, no stack trace', () => {
    const gen = [main, 'generate', '--demo', '--prompt', 'Count from 1 to 50.', '--chat', '--max_new_tokens', '200', '--ignore_eos', '--temperature', '0'];
    const quoted = gen.map((a) => `'${a}'`).join(' ');
    const r = spawnSync('bash', ['-c', `set -o pipefail; '${process.execPath}' ${quoted} | head -c 10`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.length, 10);
    assert.doesNotMatch(r.stderr, /EPIPE|Error|at /);
  });

  it('generate --cpu_infer sizes the native pool (KTransformers\' flag)', () => {
    const r = ktserve('generate', '--demo', '--prompt', 'What is 2+2?', '--chat', '--temperature', '0', '--cpu_infer', '1');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /, 1 threads /);
  });

  it('serve without a model flag refuses, naming --demo; --demo with a model flag too', () => {
    const none = ktserve('serve', '--port', '0');
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no model given: .*--demo for the built-in demo model/);
    const both = ktserve('serve', '--demo', '--model', 'x.gguf');
    assert.equal(both.status, 2);
    assert.match(both.stderr, /--demo serves the built-in demo model/);
  });
});
