// Disconnect storm: waves of clients that leave at random points (socket reset before any answer, upload cut off,
// abort while the prompt is in prefill, mid-stream over OpenAI and Ollama, non-streamed abandoned), then the server
// must drain: alive, running/waiting 0, every KV block back, no 5xx, and a greedy request answering as before.
// Run: npm run build && npm run bench:storm -- --waves 5 --per_wave 60   (or --url http://host:port)
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FlagSpec, ParsedFlags } from '../src/cli/args.js';
import { Rng } from '../src/engine/rng.js';
import { afterChecks, finish, firstModel, formatNumber, renderTable, rssLine, runBenchCli, sampleRss, TARGET_FLAGS, withTarget } from './bench-cli.js';
import { QuestionSource } from './demo-questions.js';
import { baseline, engineGauges, metricsText, sumLabelled, waitForIdle } from './server-probe.js';
import { ABORT_MODES, stormClient, type AbortMode, type StormOutcome, type StormPlan, type StormTarget } from './storm-clients.js';

const flags = [
  ...TARGET_FLAGS,
  { name: 'waves', type: 'int', help: 'waves of clients', default: 5, min: 1 },
  { name: 'per_wave', type: 'int', help: 'clients per wave, all started at once', default: 60, min: 1 },
  { name: 'pause_ms', type: 'int', help: 'pause between waves (the server is not waited for)', default: 200, min: 0 },
  { name: 'max_tokens', type: 'int', help: 'max_tokens of each request (with ignore_eos: they would run long)', default: 128, min: 1 },
  { name: 'long_tokens', type: 'int', help: 'prompt tokens of the prefill-abort requests', default: 700, min: 1 },
  { name: 'seed', type: 'int', help: 'seed of the plan (modes, abort points, questions)', default: 0 },
  { name: 'out', type: 'string', help: 'JSON result file', default: join(tmpdir(), 'ktserve-storm.json') },
] as const satisfies readonly FlagSpec[];

type Flags = ParsedFlags<typeof flags>;

function plans(f: Flags, rng: Rng, q: QuestionSource): StormPlan[] {
  return Array.from({ length: f.per_wave }, () => {
    const mode = ABORT_MODES[rng.nextUint32() % ABORT_MODES.length]!;
    // Ollama has no ignore_eos: its answers are the model's own length, so it gets a question with a long answer
    // and leaves within its first few chunks.
    const ollama = mode === 'ollama-mid-stream';
    return {
      mode,
      question: mode === 'abort-at-headers' || mode === 'reset-before-headers' ? q.long(f.long_tokens) : ollama ? q.multiplication() : q.short(),
      maxTokens: f.max_tokens,
      afterChunks: 1 + (rng.nextUint32() % (ollama ? 6 : Math.max(1, f.max_tokens >> 1))),
      delayMs: rng.nextUint32() % (mode === 'non-stream' ? 300 : 20),
    };
  });
}

interface ModeTally {
  launched: number;
  aborted: number;
  completed: number;
  httpErrors: Record<string, number>;
  networkErrors: Record<string, number>;
}

function tally(results: readonly { mode: AbortMode; outcome: StormOutcome }[]): Record<AbortMode, ModeTally> {
  const out = Object.fromEntries(ABORT_MODES.map((m) => [m, { launched: 0, aborted: 0, completed: 0, httpErrors: {}, networkErrors: {} }])) as Record<AbortMode, ModeTally>;
  for (const { mode, outcome: o } of results) {
    const t = out[mode];
    t.launched++;
    if (o.kind === 'aborted') t.aborted++;
    else if (o.kind === 'completed') t.completed++;
    else if (o.kind === 'http-error') t.httpErrors[String(o.status)] = (t.httpErrors[String(o.status)] ?? 0) + 1;
    else t.networkErrors[o.message.slice(0, 80)] = (t.networkErrors[o.message.slice(0, 80)] ?? 0) + 1;
  }
  return out;
}

/** Server-side counters the storm moves: engine requests ended by abort, and 5xx responses. */
async function serverCounters(url: string): Promise<{ aborts: number; http5xx: number }> {
  const text = await metricsText(url);
  return {
    aborts: sumLabelled(text, 'ktserve_requests_finished_total', { reason: 'abort' }),
    http5xx: sumLabelled(text, 'ktserve_http_requests_total', { status: /^5/ }),
  };
}

const main = (f: Flags): Promise<number> => withTarget(f, async (target, dispatcher) => {
  const before = await baseline(target.url, f.drain_timeout * 1000);
  const countersBefore = await serverCounters(target.url);
  const t: StormTarget = { url: target.url, model: await firstModel(target.url), ...(dispatcher ? { dispatcher } : {}) };
  const rng = Rng.fromSeed(f.seed);
  const q = new QuestionSource(f.seed);
  const rss = sampleRss(() => target.rssKiB(), 500);
  // Peak load the storm put on the engine, sampled while it runs.
  let peak = { running: 0, waiting: 0, kvUsed: 0 };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const g = await engineGauges(target.url).catch(() => undefined);
      if (g) peak = { running: Math.max(peak.running, g.running), waiting: Math.max(peak.waiting, g.waiting), kvUsed: Math.max(peak.kvUsed, g.kvUsed) };
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const results: { mode: AbortMode; outcome: StormOutcome }[] = [];
  const t0 = performance.now();
  for (let w = 0; w < f.waves; w++) {
    const wave = plans(f, rng, q);
    const outcomes = await Promise.all(wave.map((p) => stormClient(t, p)));
    wave.forEach((p, i) => results.push({ mode: p.mode, outcome: outcomes[i]! }));
    process.stderr.write(`storm: wave ${w + 1}/${f.waves} done, ${outcomes.filter((o) => o.kind === 'aborted').length} aborted\n`);
    if (w + 1 < f.waves) await new Promise((r) => setTimeout(r, f.pause_ms));
  }
  const stormS = (performance.now() - t0) / 1000;
  sampling = false;
  await sampler;
  const drain = await waitForIdle(target.url, f.drain_timeout * 1000, 10);
  rss.stop();
  const { alive, changed } = await afterChecks(target, before.answers);
  const countersAfter = alive ? await serverCounters(target.url) : countersBefore;

  const modes = tally(results);
  const clientHttp5xx = results.filter((r) => r.outcome.kind === 'http-error' && r.outcome.status >= 500).length;
  const server5xx = countersAfter.http5xx - countersBefore.http5xx;
  const reasons = [
    ...(alive ? [] : ['the server is gone']),
    ...(drain.idle ? [] : [`not idle ${f.drain_timeout} s after the storm: ${JSON.stringify(drain.gauges)}`]),
    ...(drain.gauges.kvFree === before.gauges.kvFree ? [] : [`KV blocks free ${drain.gauges.kvFree}, ${before.gauges.kvFree} before`]),
    ...(clientHttp5xx > 0 ? [`${clientHttp5xx} clients got a 5xx`] : []),
    ...(server5xx > 0 ? [`the server counted ${server5xx} 5xx responses`] : []),
    ...changed.map((d) => `greedy answer changed: ${d}`),
  ];
  const aborted = results.filter((r) => r.outcome.kind === 'aborted').length;
  const rows = ABORT_MODES.map((m) => {
    const x = modes[m];
    const errs = [...Object.entries(x.httpErrors).map(([s, n]) => `HTTP ${s} ×${n}`), ...Object.entries(x.networkErrors).map(([s, n]) => `${s} ×${n}`)];
    return [m, String(x.launched), String(x.aborted), String(x.completed), errs.join(', ') || '-'];
  });
  process.stdout.write(
    `disconnect storm: ${f.waves} waves × ${f.per_wave} clients against ${target.url}${target.process ? ` (ktserve serve ${f.serve_args})` : ''}\n\n` +
      `${renderTable(['mode', 'launched', 'aborted', 'finished first', 'errors'], rows)}\n\n` +
      `aborted ${aborted} of ${results.length} requests in ${formatNumber(stormS)} s; engine aborts counted: ${countersAfter.aborts - countersBefore.aborts}\n` +
      `peak during the storm: running ${peak.running}, waiting ${peak.waiting}, KV blocks used ${peak.kvUsed}\n` +
      `drain: ${drain.idle ? `idle ${formatNumber(drain.ms)} ms after the last wave` : 'NOT idle'} (running ${drain.gauges.running}, waiting ${drain.gauges.waiting})\n` +
      `KV free blocks: ${before.gauges.kvFree}/${before.gauges.kvTotal} before, ${drain.gauges.kvFree}/${drain.gauges.kvTotal} after\n` +
      `${rssLine(rss.samples)}\n` +
      `greedy answers: ${changed.length === 0 ? 'unchanged' : 'CHANGED'}; 5xx: clients ${clientHttp5xx}, server-counted ${server5xx}\n`,
  );
  return finish(target, f.out, {
    flags: f, url: target.url, storm_s: stormS, requests: results.length, aborted, modes, peak,
    drain: { idle: drain.idle, ms: drain.ms, gauges: drain.gauges }, kv_before: before.gauges,
    engine_aborts: countersAfter.aborts - countersBefore.aborts, client_5xx: clientHttp5xx, server_5xx: server5xx,
    greedy_changed: changed, rss_samples: rss.samples, alive,
  }, reasons, alive);
});

await runBenchCli('storm', flags, { command: 'npm run bench:storm --', description: 'Waves of clients that disconnect at random points; the server must drain clean.' }, main);
