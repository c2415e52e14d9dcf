// What the soak and storm CLIs share: the flags that pick the server, its start and stop around a run, the checks
// after it (alive, greedy answers unchanged), a right-aligned table, RSS samples, and the JSON file and exit status.
import { writeFileSync } from 'node:fs';
import { closeDispatcher, createDispatcher, type Dispatcher } from '../src/bench/http-client.js';
import { formatNumber } from '../src/bench/report.js';
import { HelpRequested, parseFlags, UsageError, type FlagSpec, type ParsedFlags, type ParseOptions } from '../src/cli/args.js';
import { serverTarget, type ServerTarget } from './ktserve-process.js';
import { greedyAnswers, greedyDiff } from './server-probe.js';

export { formatNumber };

/** Where the server comes from: --url (and --pid), or a `ktserve serve` the bench starts with --serve_args. */
export const TARGET_FLAGS = [
  { name: 'url', type: 'string', help: 'a running server (default: start ktserve serve with --serve_args)' },
  { name: 'pid', type: 'int', help: "the --url server's pid, to sample its RSS from /proc" },
  { name: 'serve_args', type: 'string', help: "arguments of the ktserve serve the bench starts (as --serve_args='--demo …': a value starting with - needs the = form)", default: '--demo --max_new_tokens 256' },
  { name: 'drain_timeout', type: 'float', help: 'seconds the server may take to be idle before and after the run', default: 60, min: 1 },
] as const satisfies readonly FlagSpec[];

type TargetFlags = ParsedFlags<typeof TARGET_FLAGS>;

/** Parses argv and runs `main`; its result is the exit status (2 for a bad command line). */
export async function runBenchCli<const S extends readonly FlagSpec[]>(
  name: string, spec: S, opts: ParseOptions, main: (f: ParsedFlags<S>) => Promise<number>,
): Promise<void> {
  try {
    process.exitCode = await main(parseFlags(process.argv.slice(2), spec, opts));
  } catch (e) {
    if (e instanceof HelpRequested) process.stdout.write(e.text);
    else if (e instanceof UsageError) {
      process.stderr.write(`${name}: ${e.message}\n`);
      process.exitCode = 2;
    } else throw e;
  }
}

/** Runs `body` against the chosen server with an uncapped connection pool; stops what it started, whatever happens. */
export async function withTarget(f: TargetFlags, body: (t: ServerTarget, d: Dispatcher | undefined) => Promise<number>): Promise<number> {
  const target = await serverTarget({ url: f.url, pid: f.pid, serveArgs: f.serve_args.split(/\s+/).filter(Boolean) });
  const dispatcher = await createDispatcher();
  try {
    return await body(target, dispatcher);
  } finally {
    await closeDispatcher(dispatcher);
    await target.close();
  }
}

/** After a run: is the server still there, and do the greedy probes answer as in `before`? */
export async function afterChecks(target: ServerTarget, before: Map<string, string>): Promise<{ alive: boolean; changed: string[] }> {
  const alive = !target.dead() && (await fetch(`${target.url}/health`).then((r) => r.status === 200, () => false));
  return { alive, changed: alive ? greedyDiff(before, await greedyAnswers(target.url)) : ['(the server is gone)'] };
}

/** Writes the JSON result, says the verdict, shows a dead server's last words; returns the exit status. */
export function finish(target: ServerTarget, out: string, result: Record<string, unknown>, reasons: readonly string[], alive: boolean): number {
  writeFileSync(out, `${JSON.stringify({ ...result, ok: reasons.length === 0, reasons }, null, 2)}\n`);
  process.stdout.write(`verdict: ${reasons.length === 0 ? 'OK' : `FAIL: ${reasons.join('; ')}`}\nwrote ${out}\n`);
  if (target.process && !alive) process.stderr.write(target.process.stderr().slice(-3000));
  return reasons.length === 0 ? 0 : 1;
}

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(header.map((_, i) => '-'.repeat(widths[i]!))), ...rows.map(line)].join('\n');
}

export interface RssSample {
  t_s: number;
  rss_kib: number;
}

/** Samples `read()` every `everyMs` until stopped; the first sample is taken at once. */
export function sampleRss(read: () => number | undefined, everyMs: number): { samples: RssSample[]; stop(): void } {
  const t0 = performance.now();
  const samples: RssSample[] = [];
  const take = (): void => {
    const v = read();
    if (v !== undefined) samples.push({ t_s: (performance.now() - t0) / 1000, rss_kib: v });
  };
  take();
  const timer = setInterval(take, everyMs);
  return { samples, stop: () => { take(); clearInterval(timer); } };
}

export function rssLine(samples: readonly RssSample[]): string {
  if (samples.length === 0) return 'RSS: not known (no pid: pass --pid with --url, or let the bench start the server)';
  const mib = (k: number): string => (k / 1024).toFixed(1);
  const max = Math.max(...samples.map((s) => s.rss_kib));
  return `RSS MiB: start ${mib(samples[0]!.rss_kib)}, max ${mib(max)}, end ${mib(samples[samples.length - 1]!.rss_kib)} (${samples.length} samples)`;
}

/** The first model /v1/models lists, to name in requests. */
export async function firstModel(url: string): Promise<string> {
  const v = (await (await fetch(`${url}/v1/models`)).json()) as { data?: { id?: string }[] };
  return v.data?.[0]?.id ?? 'default';
}
