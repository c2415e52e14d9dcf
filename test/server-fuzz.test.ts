// A seeded fuzz of `ktserve serve --demo` over a real socket: a few thousand malformed requests on every route the
// app registers (bodies mutated from valid ones, malformed JSON, wrong content types and methods, odd paths, raw
// HTTP). Oracle: no 5xx; errors are 4xx in the client's shape (OpenAI's object, Ollama's string under /api/);
// the process survives; a greedy request answers as it did before the fuzz; every KV block is free once idle.
// Failures are reported per category, all of them, grouped by kind of fault: the report is the bug list.
//
// KT_FUZZ_SEED=<n> replays a run (the seed is in every failure); KT_FUZZ_ONLY=cat1,cat2 runs some categories;
// KT_FUZZ_REPORT=<file> writes the groups as JSON.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startKtserve, type KtserveProcess } from '../bench/ktserve-process.js';
import { baseline, engineGauges, greedyAnswers, greedyDiff, waitForIdle, type EngineGauges } from '../bench/server-probe.js';
import { demoModelPath } from '../src/make-model/demo-model.js';
import { openModelFiles } from '../src/models/model-files.js';
import { buildServer } from '../src/server/app.js';
import { DEFAULT_BODY_LIMIT } from '../src/server/request-options.js';
import { FakeEngine } from './helpers/fake-engine.js';
import { CATEGORIES, fuzzCases, fuzzedPaths, routesWithoutBase, type FuzzCase } from './helpers/fuzz-cases.js';
import { FaultLog, formatGroups, judge } from './helpers/fuzz-verdict.js';
import { exchange } from './helpers/raw-http.js';
import { routeTable, type RouteEntry } from './helpers/route-table.js';

const SEED = Number(process.env.KT_FUZZ_SEED ?? 20_261_207);
const ONLY = process.env.KT_FUZZ_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
const RANDOM_CASES = 600;
/** Sockets in flight at once: enough to keep the server busy on two cores, few enough not to time cases out. */
const CONCURRENCY = 4;
const CASE_TIMEOUT_MS = 20_000;
const rerun = `seed ${SEED}; rerun: KT_FUZZ_SEED=${SEED} node --test dist/test/server-fuzz.test.js`;

/** The routes buildServer registers, from an app of its own (over a fake engine: only the table is wanted). */
async function appRoutes(): Promise<RouteEntry[]> {
  const files = openModelFiles({ ggufPath: demoModelPath() });
  const app = buildServer({
    engine: new FakeEngine({ script: () => [] }), tokenizer: files.tokenizer, chatTemplate: files.chatTemplate,
    modelName: 'ktserve-demo', maxModelLen: 1024, maxNewTokens: 8, forceThink: false,
  });
  await app.ready();
  try {
    return routeTable(app);
  } finally {
    await app.close();
  }
}

interface Run {
  log: FaultLog;
  cases: number;
  seconds: number;
  /** Set when the server stopped answering for good: the case that was in flight and how the process ended. */
  died?: string;
}

async function runCases(server: KtserveProcess, cases: readonly FuzzCase[]): Promise<Run> {
  const { hostname, port } = new URL(server.url);
  const log = new FaultLog();
  const t0 = performance.now();
  let next = 0;
  let died: string | undefined;
  const worker = async (): Promise<void> => {
    while (next < cases.length && died === undefined) {
      const c = cases[next++]!;
      const o = await exchange(hostname, Number(port), c.bytes(), { timeoutMs: CASE_TIMEOUT_MS, head: c.method === 'HEAD', halfClose: c.halfClose ?? false });
      if (o.kind === 'refused' && server.exited() !== null) {
        died ??= `after "${c.label}": ${JSON.stringify(server.exited())}\n${server.stderr().slice(-3000)}`;
        return;
      }
      log.add(c, judge(c, o));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { log, cases: next, seconds: (performance.now() - t0) / 1000, ...(died !== undefined ? { died } : {}) };
}

describe(`server fuzz (${rerun})`, () => {
  let server: KtserveProcess;
  let routes: RouteEntry[];
  let run: Run;
  let labels: string[];
  let answersBefore: Map<string, string>;
  let gaugesBefore: EngineGauges;

  before(async () => {
    server = await startKtserve(['--demo', '--max_new_tokens', '8', '--cache_lens', '2048']);
    routes = await appRoutes();
    ({ answers: answersBefore, gauges: gaugesBefore } = await baseline(server.url));
    const cases = fuzzCases(routes, { seed: SEED, bodyLimit: DEFAULT_BODY_LIMIT, randomCount: RANDOM_CASES })
      .filter((c) => ONLY === undefined || ONLY.includes(c.category));
    labels = cases.map((c) => c.label);
    run = await runCases(server, cases);
    const groups = run.log.all();
    process.stdout.write(`server fuzz: ${run.cases} cases in ${run.seconds.toFixed(1)} s, ${groups.length} fault groups (${rerun})\n`);
    if (process.env.KT_FUZZ_REPORT) writeFileSync(process.env.KT_FUZZ_REPORT, JSON.stringify({ seed: SEED, cases: run.cases, groups }, null, 2));
  });

  after(async () => {
    await server?.stop();
  });

  it('covers every route the app registers', () => {
    const missing = routesWithoutBase(routes);
    // Not a failure: such a route still gets the generic cases, but mutations start from `{}`.
    for (const path of missing) process.stdout.write(`note: no valid base body for POST ${path} in test/helpers/fuzz-values.ts\n`);
    assert.ok(routes.some((r) => r.url === '/v1/chat/completions'), 'the route table was read');
    const unfuzzed = fuzzedPaths(routes).filter((p) => !labels.some((l) => l.includes(` ${p}`)));
    if (ONLY === undefined) assert.deepEqual(unfuzzed, [], 'routes no case was sent to');
  });

  for (const category of CATEGORIES) {
    it(`${category}: no 5xx, the right statuses, errors in the client's shape`, { skip: ONLY !== undefined && !ONLY.includes(category) }, () => {
      const groups = run.log.byCategory(category);
      const total = groups.reduce((s, g) => s + g.count, 0);
      assert.equal(total, 0, `${total} faulty answers in ${groups.length} groups (${rerun}):\n${formatGroups(groups)}`);
    });
  }

  it('the server process survives the fuzz and stays healthy', async () => {
    assert.equal(run.died, undefined, `the server died ${run.died}`);
    assert.equal(server.exited(), null, `the server exited: ${JSON.stringify(server.exited())}\n${server.stderr().slice(-3000)}`);
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
  });

  it('greedy answers are the same as before the fuzz', async () => {
    const diff = greedyDiff(answersBefore, await greedyAnswers(server.url));
    assert.deepEqual(diff, [], `answers changed (${rerun}):\n${diff.join('\n')}`);
  });

  it('every KV block is free again once the server is idle', async () => {
    const idle = await waitForIdle(server.url, 30_000);
    assert.ok(idle.idle, `not idle after 30 s: ${JSON.stringify(idle.gauges)}`);
    const g = await engineGauges(server.url);
    assert.equal(g.kvFree, g.kvTotal, `KV blocks free ${g.kvFree} of ${g.kvTotal} (before the fuzz: ${gaugesBefore.kvFree})`);
    assert.equal(g.kvFree, gaugesBefore.kvFree);
  });
});
