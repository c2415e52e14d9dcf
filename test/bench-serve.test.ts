// `ktserve bench serve` end to end against a small fake OpenAI-compatible server (node:http) that streams tokens
// with known delays, reports usage, and on one route fails requests (HTTP 500 and cut connections). The server's
// own log is the oracle: what it sent, how many it failed, how many it served at once.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomPrompts } from '../src/bench/dataset.js';
import type { BenchResult } from '../src/bench/serve-bench.js';
import { arrivalTimes } from '../src/bench/serve-bench.js';
import { runBenchServe } from '../src/cli/bench-command.js';
import { Rng } from '../src/engine/rng.js';
import { loadTokenizerFromDir } from '../src/tokenizer/index.js';
import { fixturePath, needFixtures } from './fixtures.js';

const TTFT_MS = 40;
const ITL_MS = 10;

interface Served {
  route: 'plain' | 'flaky';
  body: Record<string, unknown>;
  outcome: 'ok' | '500' | 'cut';
  tokens: number;
  promptWords: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The fake server: every request gets TTFT_MS before its first token, ITL_MS between tokens, max_tokens tokens. */
function fakeServer() {
  const served: Served[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let flakyCount = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'fake-model', object: 'model' }] }));
      return;
    }
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = JSON.parse(raw) as Record<string, unknown>;
    const flaky = req.url!.startsWith('/flaky/');
    const chat = req.url!.endsWith('/chat/completions');
    const n = flaky ? flakyCount++ : -1;
    const prompt = chat ? (body.messages as { content: string }[]).map((m) => m.content).join(' ') : String(body.prompt);
    const log: Served = { route: flaky ? 'flaky' : 'plain', body, outcome: 'ok', tokens: 0, promptWords: prompt.split(' ').length };
    served.push(log);
    if (flaky && n % 4 === 1) {
      log.outcome = '500';
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'fake overload', type: 'server_error' } }));
      return;
    }
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
    // Chat streams open with a role-only chunk at once, as several servers do: it must not count as the first token.
    if (chat) send({ choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] });
    const max = Number(body.max_tokens);
    await sleep(TTFT_MS);
    for (let i = 0; i < max; i++) {
      if (i > 0) await sleep(ITL_MS);
      send({ choices: [{ index: 0, ...(chat ? { delta: { content: ' hello' } } : { text: ' hello' }), finish_reason: null }] });
      log.tokens++;
      if (flaky && n % 4 === 3 && i === 1) {
        log.outcome = 'cut';
        inFlight--;
        res.socket?.destroy();
        return;
      }
    }
    send({ choices: [{ index: 0, ...(chat ? { delta: {} } : { text: '' }), finish_reason: 'length' }] });
    // The flaky route sends no usage, so the client must count tokens itself.
    if (!flaky) send({ choices: [], usage: { prompt_tokens: log.promptWords, completion_tokens: max, total_tokens: log.promptWords + max } });
    res.write('data: [DONE]\n\n');
    res.end();
    inFlight--;
  };
  const server = createServer((req, res) => void handle(req, res));
  return { server, served, maxInFlight: () => maxInFlight };
}

/** Runs the CLI entry, keeping the table it prints, and returns the JSON it wrote. */
async function bench(args: string[], out: string): Promise<{ json: BenchResult; table: string }> {
  let table = '';
  await runBenchServe([...args, '--out', out], { write: (s: string) => (table += s) });
  return { json: JSON.parse(readFileSync(out, 'utf8')) as BenchResult, table };
}

describe('ktserve bench serve against a fake server', () => {
  const fake = fakeServer();
  let url = '';
  let dir = '';
  before(async () => {
    await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), 'bench-serve-'));
  });
  after(() => {
    fake.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('measures TTFT/ITL/TPOT/E2E consistent with the server delays; the JSON has every field', async () => {
    const start = fake.served.length;
    const out = join(dir, 'plain.json');
    const svg = join(dir, 'plain.svg');
    const args = ['--base_url', url, '--endpoint', 'completions', '--input_len', '24', '--output_len', '6', '--num_prompts', '6'];
    const { json, table } = await bench([...args, '--concurrency', '1,4', '--ignore_eos', '--seed', '3', '--plot', svg], out);
    const sent = fake.served.slice(start);
    // Warm-up + 2 runs × 6; every body streamed with usage, max_tokens and ignore_eos, to the listed model.
    assert.equal(sent.length, 13);
    for (const s of sent) {
      assert.equal(s.body.model, 'fake-model');
      assert.equal(s.body.stream, true);
      assert.deepEqual(s.body.stream_options, { include_usage: true });
      assert.equal(s.body.max_tokens, 6);
      assert.equal(s.body.ignore_eos, true);
      assert.equal(typeof s.body.prompt, 'string');
    }
    assert.equal(fake.maxInFlight(), 4);
    assert.equal(json.server.model, 'fake-model');
    assert.equal(json.server.base_url, url);
    assert.ok(!Number.isNaN(Date.parse(json.date)));
    assert.deepEqual(json.config.concurrency, [1, 4]);
    assert.equal(json.config.request_rate, 'inf');
    assert.equal(json.runs.length, 2);
    const runSent = sent.slice(1);
    for (const [k, run] of json.runs.entries()) {
      const mine = runSent.slice(k * 6, k * 6 + 6);
      assert.equal(run.concurrency, [1, 4][k]);
      assert.equal(run.completed, 6);
      assert.equal(run.failed, 0);
      assert.equal(run.max_concurrent_requests, [1, 4][k]);
      assert.equal(run.total_output_tokens, mine.reduce((s, x) => s + x.tokens, 0));
      assert.equal(run.total_input_tokens, mine.reduce((s, x) => s + x.promptWords, 0));
      assert.deepEqual(run.output_tokens_from, { usage: 6, retokenized: 0, content_chunks: 0 });
      for (const key of ['duration_s', 'request_throughput', 'output_throughput', 'total_token_throughput'] as const) {
        assert.ok(Number.isFinite(run[key]) && run[key] > 0, key);
      }
      for (const key of ['ttft_ms', 'tpot_ms', 'itl_ms', 'e2el_ms'] as const) {
        for (const stat of ['mean', 'median', 'std', 'p90', 'p99', 'min', 'max'] as const) {
          assert.equal(typeof run[key][stat], 'number', `${key}.${stat}`);
        }
      }
      // The client can never see a token before the server's delay; scheduling and I/O add a little.
      assert.ok(run.ttft_ms.min! >= TTFT_MS - 1 && run.ttft_ms.median! < TTFT_MS + 40, `TTFT ${run.ttft_ms.median}`);
      assert.equal(run.itl_ms.n, 6 * 5);
      assert.ok(run.itl_ms.median! >= ITL_MS - 3 && run.itl_ms.median! < ITL_MS + 25, `ITL ${run.itl_ms.median}`);
      assert.ok(run.tpot_ms.mean! >= ITL_MS - 1 && run.tpot_ms.mean! < ITL_MS + 25, `TPOT ${run.tpot_ms.mean}`);
      const e2e = TTFT_MS + 5 * ITL_MS;
      assert.ok(run.e2el_ms.min! >= e2e - 1 && run.e2el_ms.median! < e2e + 80, `E2E ${run.e2el_ms.median}`);
      assert.deepEqual(run.errors, []);
    }
    assert.match(table, /TTFT ms/);
    assert.equal(table.split('\n').filter((l) => /^\s+(1|4)\s/.test(l)).length, 4); // a row per run in both tables
    const plot = readFileSync(svg, 'utf8');
    assert.match(plot, /^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.equal((plot.match(/<polyline /g) ?? []).length, 6); // throughput 1 + 1, TTFT 2, TPOT 2
  });

  it('counts failed requests (HTTP 500, cut streams) and summarizes their errors', async () => {
    const start = fake.served.length;
    const out = join(dir, 'flaky.json');
    const args = ['--base_url', `${url}/flaky/v1`, '--model', 'm', '--endpoint', 'chat', '--input_len', '16', '--output_len', '5'];
    const { json, table } = await bench([...args, '--num_prompts', '8', '--concurrency', '1,4'], out);
    const sent = fake.served.slice(start + 1); // after the warm-up
    assert.equal(sent.length, 16);
    for (const [k, run] of json.runs.entries()) {
      const mine = sent.filter((_, i) => Math.floor(i / 8) === k);
      const failedHere = mine.filter((s) => s.outcome !== 'ok');
      assert.equal(run.failed, failedHere.length);
      assert.equal(run.completed + run.failed, 8);
      const overload = run.errors.find((e) => e.message.includes('fake overload'));
      assert.equal(overload?.count, mine.filter((s) => s.outcome === '500').length);
      assert.match(overload!.message, /^HTTP 500/);
      const cut = run.errors.filter((e) => !e.message.includes('fake overload')).reduce((s, e) => s + e.count, 0);
      assert.equal(cut, mine.filter((s) => s.outcome === 'cut').length);
      // No usage on this route and no --tokenizer: output tokens are the content chunks (one token each here).
      assert.deepEqual(run.output_tokens_from, { usage: 0, retokenized: 0, content_chunks: run.completed });
      assert.deepEqual(run.input_tokens_from, { usage: 0, client: run.completed });
      assert.equal(run.total_output_tokens, mine.filter((s) => s.outcome === 'ok').reduce((s, x) => s + x.tokens, 0));
      // Despite the role-only chunk sent at once, TTFT waits for content.
      assert.ok(run.ttft_ms.min! >= TTFT_MS - 1);
    }
    assert.ok(json.runs.every((r) => r.failed > 0));
    assert.match(table, /Failures at concurrency 1/);
    assert.ok(json.notes.some((n) => /counting content chunks for 8 completed/.test(n)));
    // Every request's prompt was one user turn of input_len words from the built-in list (range ratio 0), and
    // the client counted one token per word.
    for (const s of sent) {
      assert.equal((s.body.messages as unknown[]).length, 1);
      assert.equal(s.promptWords, 16);
    }
    for (const r of json.runs) assert.equal(r.total_input_tokens, 16 * r.completed);
  });
});

describe('bench datasets and arrivals', () => {
  it('random prompts from a tokenizer have the drawn token length (counted by the tokenizer)', needFixtures, () => {
    const tok = loadTokenizerFromDir(fixturePath('llama'));
    const { prompts } = randomPrompts({ inputLen: 64, outputLen: 8, rangeRatio: 0.25, num: 6, rng: Rng.fromSeed(7), tokenizer: tok, countBos: true });
    for (const p of prompts) {
      // This tokenizer adds BOS, as /v1/completions will: the prompt's tokens plus BOS are the promptTokens reported.
      const n = tok.encode(p.prompt).length;
      assert.equal(n, p.promptTokens);
      assert.ok(n >= 48 && n <= 80, `length ${n} outside 64 ± 25%`);
      assert.ok(p.maxTokens >= 6 && p.maxTokens <= 10);
    }
  });

  it('Poisson arrival times increase, and the last falls at n / rate', () => {
    const t = arrivalTimes(50, 10, Rng.fromSeed(1));
    for (let i = 1; i < t.length; i++) assert.ok(t[i]! > t[i - 1]!);
    assert.ok(Math.abs(t[49]! - 5) < 1e-9);
    assert.deepEqual(arrivalTimes(3, Infinity, Rng.fromSeed(1)), [0, 0, 0]);
  });
});
