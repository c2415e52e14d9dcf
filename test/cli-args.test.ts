// Flag parsing (types, dashes ≡ underscores, defaults, bounds, errors, help) and the terminal progress bar.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HelpRequested, UsageError, formatHelp, parseFlags, type FlagSpec } from '../src/cli/args.js';
import { ProgressBar, formatBytes, formatDuration, type ProgressStream } from '../src/cli/progress.js';

const spec = [
  { name: 'model_path', type: 'string', help: 'Model directory or GGUF file', required: true, short: 'm' },
  { name: 'max_new_tokens', type: 'int', help: 'Tokens to generate', default: 512, min: 1, max: 65536 },
  { name: 'temperature', type: 'float', help: 'Sampling temperature', default: 0.6, min: 0 },
  { name: 'backend', type: 'string', help: 'Compute backend', default: 'cpu', choices: ['cpu', 'cuda'] },
  { name: 'stream', type: 'bool', help: 'Stream tokens' },
  { name: 'force_think', type: 'bool', help: 'Start the assistant turn with <think>', default: true },
  { name: 'batch_sizes', type: 'int-list', help: 'CUDA graph batch sizes', default: [1, 2, 4], min: 1 },
  { name: 'seed', type: 'int', help: 'Random seed' },
  { name: 'cache_lens', type: 'int', help: 'KV cache tokens', aliases: ['max_cache_tokens'] },
] as const satisfies readonly FlagSpec[];

const usage = (argv: string[], pattern: RegExp) =>
  assert.throws(
    () => parseFlags(argv, spec),
    (e: unknown) => e instanceof UsageError && pattern.test(e.message),
    `${argv.join(' ')} should fail with ${pattern}`,
  );

test('underscores and dashes, separate and = values, defaults', () => {
  const a = parseFlags(['--model_path', '/m', '--max_new_tokens', '8'], spec);
  const b = parseFlags(['--model-path=/m', '--max-new-tokens=8'], spec);
  assert.deepEqual(a, b);
  assert.equal(a.model_path, '/m');
  assert.equal(a.max_new_tokens, 8);
  assert.equal(a.temperature, 0.6);
  assert.equal(a.backend, 'cpu');
  assert.equal(a.stream, false);
  assert.equal(a.force_think, true);
  assert.deepEqual(a.batch_sizes, [1, 2, 4]);
  assert.equal(a.seed, undefined);
  assert.deepEqual(a._, []);
  // Typed result: these assignments compile only if the parser's types are right.
  const n: number = a.max_new_tokens;
  const s: number | undefined = a.seed;
  const l: number[] = a.batch_sizes;
  assert.ok(n && s === undefined && l);
});

test('typed values: floats, negatives, int lists, booleans, short flags, aliases, last one wins', () => {
  const r = parseFlags(
    ['-m', 'x.gguf', '--temperature', '1.5e-1', '--seed', '-7', '--batch_sizes', '1,4,16', '--stream',
      '--force-think', 'false', '--cache_lens', '4096', '--max_cache_tokens=8192', '--backend=cuda'],
    spec,
  );
  assert.equal(r.model_path, 'x.gguf');
  assert.equal(r.temperature, 0.15);
  assert.equal(r.seed, -7);
  assert.deepEqual(r.batch_sizes, [1, 4, 16]);
  assert.equal(r.stream, true);
  assert.equal(r.force_think, false);
  assert.equal(r.cache_lens, 8192);
  assert.equal(r.backend, 'cuda');
  assert.equal(parseFlags(['-mx', '--stream=false', '--no-force_think'], spec).force_think, false);
  assert.equal(parseFlags(['-m=x', '--stream', 'true'], spec).stream, true);
  // A bool flag does not swallow a word that is not true/false.
  assert.throws(() => parseFlags(['-m', 'x', '--stream', 'hello'], spec), /unexpected argument 'hello'/);
  const withPos = parseFlags(['-m', 'x', '--stream', 'hello', '--', '--not-a-flag'], spec, { positionals: '<prompt>' });
  assert.deepEqual(withPos._, ['hello', '--not-a-flag']);
});

test('unknown flags are named, with a did-you-mean suggestion', () => {
  usage(['-m', 'x', '--max_new_token', '3'], /unknown flag --max_new_token \(did you mean --max_new_tokens\?\)/);
  usage(['-m', 'x', '--max-tokens', '3'], /unknown flag --max-tokens \(did you mean --max_new_tokens\?\)/);
  usage(['-m', 'x', '--temprature=1'], /did you mean --temperature\?/);
  usage(['-m', 'x', '--zzz'], /^unknown flag --zzz; see --help$/);
  usage(['-m', 'x', '-q'], /unknown flag -q/);
});

test('bad values name the flag and the expected type or range', () => {
  usage(['-m', 'x', '--max_new_tokens', 'lots'], /--max_new_tokens expects an integer between 1 and 65536, got 'lots'/);
  usage(['-m', 'x', '--max_new_tokens', '2.5'], /--max_new_tokens expects an integer/);
  usage(['-m', 'x', '--max_new_tokens', '0'], /--max_new_tokens must be between 1 and 65536, got 0/);
  usage(['-m', 'x', '--max_new_tokens', '70000'], /between 1 and 65536, got 70000/);
  usage(['-m', 'x', '--temperature', '-1'], /--temperature must be ≥ 0, got -1/);
  usage(['-m', 'x', '--temperature', 'hot'], /--temperature expects a number ≥ 0, got 'hot'/);
  usage(['-m', 'x', '--backend', 'cdua'], /--backend must be one of cpu, cuda; got 'cdua' \(did you mean 'cuda'\?\)/);
  usage(['-m', 'x', '--batch_sizes', '1,,4'], /--batch_sizes expects a comma-separated list of integers/);
  usage(['-m', 'x', '--batch_sizes', '1,0'], /--batch_sizes must be ≥ 1, got 0/);
  usage(['-m', 'x', '--stream=maybe'], /--stream expects true or false, got 'maybe'/);
  usage(['-m', 'x', '--seed'], /--seed needs a value \(int\)/);
  usage(['-m', 'x', '--seed', '--stream'], /--seed needs a value/);
  usage(['--stream'], /missing required flag --model_path/);
});

test('--help and -h carry help generated from the spec', () => {
  for (const argv of [['--help'], ['-h'], ['--max_new_tokens', '3', '--help']]) {
    assert.throws(
      () => parseFlags(argv, spec, { command: 'ktserve generate', description: 'Generate text from a prompt.' }),
      (e: unknown) => e instanceof HelpRequested && e.text.startsWith('Usage: ktserve generate [options]'),
    );
  }
  const text = formatHelp(spec, { command: 'ktserve generate' });
  for (const s of spec) assert.ok(text.includes(`--${s.name}`), `help mentions --${s.name}`);
  assert.match(text, /--max_new_tokens <int> +Tokens to generate \(default: 512; between 1 and 65536\)/);
  assert.match(text, /-m, --model_path <string> +Model directory or GGUF file \(required\)/);
  assert.match(text, /--backend <cpu\|cuda>/);
  assert.match(text, /--cache_lens, --max_cache_tokens <int>/);
  assert.match(text, /--max-new-tokens/); // the dash spelling is explained
});

/** A fake terminal that records writes, and a clock the test moves. */
function fakeTerminal(isTTY: boolean) {
  const writes: string[] = [];
  const stream: ProgressStream = { isTTY, columns: 100, write: (s: string) => writes.push(s) };
  let t = 0;
  return { writes, stream, now: () => t, advance: (ms: number) => (t += ms) };
}

test('progress bar: nothing at all off a terminal', () => {
  const term = fakeTerminal(false);
  const p = new ProgressBar('loading weights', 1000, { stream: term.stream, now: term.now });
  for (let i = 0; i <= 1000; i += 10) {
    term.advance(50);
    p.update(i);
  }
  p.finish();
  assert.deepEqual(term.writes, []);
});

test('progress bar: at most ten redraws a second, percent, bytes, rate and ETA', () => {
  const term = fakeTerminal(true);
  const total = 2e9;
  const p = new ProgressBar('loading weights', total, { stream: term.stream, now: term.now });
  // 1000 updates, one per millisecond, over one second.
  for (let i = 1; i <= 1000; i++) {
    term.advance(1);
    p.update((i / 1000) * 0.25 * total);
  }
  assert.ok(term.writes.length >= 9 && term.writes.length <= 11, `${term.writes.length} redraws in one second`);
  term.advance(9000); // 10 s in, a quarter done: 50 MB/s, 30 s to go
  p.update(0.25 * total);
  const line = term.writes.at(-1)!;
  assert.ok(line.startsWith('\r') && line.endsWith('\x1b[K'), JSON.stringify(line));
  assert.match(line, /loading weights/);
  assert.match(line, / 25% /);
  assert.match(line, /0\.50\/2\.00 GB/);
  assert.match(line, /50\.00 MB\/s/);
  assert.match(line, /ETA 0:30/);
  assert.ok(line.length < 100 + 5, 'fits the terminal width');
  term.advance(30000);
  p.update(total);
  p.finish();
  const last = term.writes.at(-1)!;
  assert.ok(last.endsWith('\n'));
  assert.match(last, /100% 2\.00\/2\.00 GB in 0:40/);
  const n = term.writes.length;
  p.update(1);
  p.finish();
  assert.equal(term.writes.length, n, 'no output after finish');
});

test('progress formatting helpers', () => {
  assert.equal(formatBytes(1536), '1.54 kB');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(5e8, 2e9), '0.50 GB');
  assert.equal(formatDuration(59.4), '0:59');
  assert.equal(formatDuration(3725), '1:02:05');
  assert.equal(formatDuration(Infinity), '--:--');
});
