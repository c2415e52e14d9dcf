// Soak benchmark: N clients loop for M minutes over a mix of OpenAI chat (streamed and not) and Ollama chat against
// one ktserve, then the server must drain to idle with every KV block back. Prints a table, writes JSON; exits 1 on
// any failed request, a server that dies, KV blocks that do not come back, or a greedy answer that changed.
// Run: npm run build && npm run bench:soak -- --clients 8 --minutes 1   (or --url http://host:port [--pid N])
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarize } from '../src/bench/metrics.js';
import type { FlagSpec, ParsedFlags } from '../src/cli/args.js';
import { afterChecks, finish, firstModel, formatNumber, renderTable, rssLine, runBenchCli, sampleRss, TARGET_FLAGS, withTarget } from './bench-cli.js';
import { QuestionSource } from './demo-questions.js';
import { baseline, waitForIdle } from './server-probe.js';
import { SOAK_KINDS, soakRequest, type SoakRecord, type SoakTarget } from './soak-requests.js';

const flags = [
  ...TARGET_FLAGS,
  { name: 'clients', type: 'int', help: 'concurrent clients, each sending one request after another', default: 16, min: 1 },
  { name: 'minutes', type: 'float', help: 'how long the clients keep sending', default: 2, min: 0.01 },
  { name: 'max_tokens', type: 'int', help: 'max_tokens (OpenAI, with ignore_eos) / num_predict (Ollama) per request', default: 48, min: 1 },
  { name: 'long_share', type: 'float', help: 'fraction of requests with a ~600-token prompt (long prefill)', default: 0.1, min: 0, max: 1 },
  { name: 'seed', type: 'int', help: 'seed of the questions', default: 0 },
  { name: 'timeout', type: 'float', help: 'seconds one request may take', default: 120, min: 1 },
  { name: 'sample_ms', type: 'int', help: 'RSS sampling period', default: 1000, min: 50 },
  { name: 'out', type: 'string', help: 'JSON result file', default: join(tmpdir(), 'ktserve-soak.json') },
] as const satisfies readonly FlagSpec[];

type Flags = ParsedFlags<typeof flags>;

/** One client: requests back to back until the deadline, cycling through the kinds from its own offset. */
async function client(index: number, f: Flags, t: SoakTarget, deadline: number, out: SoakRecord[]): Promise<void> {
  const q = new QuestionSource(f.seed * 1000 + index);
  for (let i = 0; performance.now() < deadline; i++) {
    const kind = SOAK_KINDS[(index + i) % SOAK_KINDS.length]!;
    const question = q.chance(f.long_share) ? q.long(600) : q.short();
    out.push(await soakRequest(kind, t, question, f.max_tokens));
  }
}

const HEADER = ['kind', 'done', 'failed', 'TTFT p50 ms', 'TTFT p99 ms', 'E2E p50 ms', 'E2E p99 ms', 'tok/s'];

function row(name: string, rs: readonly SoakRecord[], seconds: number): string[] {
  const ok = rs.filter((r) => r.ok);
  const ttft = summarize(ok.flatMap((r) => (r.ttftMs === undefined ? [] : [r.ttftMs])));
  const e2e = summarize(ok.map((r) => r.e2eMs));
  const tokens = ok.reduce((s, r) => s + r.completionTokens, 0);
  return [name, String(ok.length), String(rs.length - ok.length), formatNumber(ttft.median), formatNumber(ttft.p99),
    formatNumber(e2e.median), formatNumber(e2e.p99), formatNumber(tokens / seconds)];
}

function errorCounts(rs: readonly SoakRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs) if (!r.ok) out[`${r.kind}: ${r.errorKind}`] = (out[`${r.kind}: ${r.errorKind}`] ?? 0) + 1;
  return out;
}

const main = (f: Flags): Promise<number> => withTarget(f, async (target, dispatcher) => {
  const before = await baseline(target.url, f.drain_timeout * 1000);
  const t: SoakTarget = { url: target.url, model: await firstModel(target.url), timeoutMs: f.timeout * 1000, ...(dispatcher ? { dispatcher } : {}) };
  const rss = sampleRss(() => target.rssKiB(), f.sample_ms);
  const records: SoakRecord[] = [];
  const t0 = performance.now();
  const progress = setInterval(() => {
    const failed = records.filter((r) => !r.ok).length;
    process.stderr.write(`soak: ${((performance.now() - t0) / 1000).toFixed(0)} s, ${records.length} requests, ${failed} failed\n`);
  }, 10_000);
  await Promise.all(Array.from({ length: f.clients }, (_, i) => client(i, f, t, t0 + f.minutes * 60_000, records)));
  clearInterval(progress);
  const seconds = (performance.now() - t0) / 1000;
  const drain = await waitForIdle(target.url, f.drain_timeout * 1000);
  rss.stop();
  const { alive, changed } = await afterChecks(target, before.answers);

  const errors = errorCounts(records);
  const failed = records.filter((r) => !r.ok).length;
  const reasons = [
    ...(failed > 0 ? [`${failed} requests failed`] : []),
    ...(drain.idle && drain.gauges.kvFree === before.gauges.kvFree ? [] : [`KV blocks free ${drain.gauges.kvFree} after draining, ${before.gauges.kvFree} before (idle: ${drain.idle})`]),
    ...(alive ? [] : ['the server is gone']),
    ...changed.map((d) => `greedy answer changed: ${d}`),
  ];
  const rows = [...SOAK_KINDS.map((k) => row(k, records.filter((r) => r.kind === k), seconds)), row('all', records, seconds)];
  process.stdout.write(
    `soak: ${f.clients} clients × ${f.minutes} min against ${target.url}${target.process ? ` (ktserve serve ${f.serve_args})` : ''}\n\n` +
      `${renderTable(HEADER, rows)}\n\n` +
      `errors: ${Object.entries(errors).map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}\n` +
      `${rssLine(rss.samples)}\n` +
      `KV free blocks: ${before.gauges.kvFree}/${before.gauges.kvTotal} at start, ${drain.gauges.kvFree}/${drain.gauges.kvTotal} after draining (${formatNumber(drain.ms)} ms to idle)\n` +
      `greedy answers: ${changed.length === 0 ? 'unchanged' : 'CHANGED'}\n`,
  );
  return finish(target, f.out, {
    flags: f, url: target.url, seconds, requests: records.length, failed, errors,
    kinds: Object.fromEntries(rows.map((r) => [r[0], Object.fromEntries(HEADER.slice(1).map((h, i) => [h, r[i + 1]]))])),
    kv: { before: before.gauges, after: drain.gauges, drain_ms: drain.ms, idle: drain.idle },
    rss_samples: rss.samples, alive, greedy_changed: changed,
    first_errors: records.filter((r) => !r.ok).slice(0, 20).map((r) => ({ kind: r.kind, error: r.error })),
  }, reasons, alive);
});

await runBenchCli('soak', flags, { command: 'npm run bench:soak --', description: 'Soak a ktserve server with a mix of chat requests.' }, main);
