// `ktserve bench serve`: flags → a concurrency sweep against any OpenAI-compatible server → table on stdout,
// JSON (--out) and SVG chart (--plot).
import { benchServe } from '../bench/serve-bench.js';
import { writePlot } from '../bench/plot.js';
import { formatReport, writeJson } from '../bench/report.js';
import { parseFlags, UsageError, type FlagSpec } from './args.js';

export const benchServeFlags = [
  { name: 'base_url', type: 'string', help: 'the server, e.g. http://127.0.0.1:8000 (a trailing /v1 is fine)', required: true },
  { name: 'model', type: 'string', help: 'model name to send (default: the first one GET /v1/models lists)' },
  { name: 'endpoint', type: 'string', help: 'which API to call', default: 'completions', choices: ['chat', 'completions'] },
  {
    name: 'dataset',
    type: 'string',
    help: 'random, or a JSONL file: one {"prompt"}, {"messages"} (OpenAI) or {"conversations"} (ShareGPT) per line',
    default: 'random',
  },
  { name: 'input_len', type: 'int', help: 'prompt tokens of random prompts', default: 1024, min: 1 },
  { name: 'output_len', type: 'int', help: 'max_tokens of each request', default: 128, min: 1 },
  { name: 'range_ratio', type: 'float', help: 'random lengths vary uniformly within ±ratio of input_len/output_len', default: 0, min: 0, max: 0.999 },
  { name: 'num_prompts', type: 'int', help: 'requests per run', default: 100, min: 1 },
  { name: 'concurrency', type: 'int-list', help: 'most requests in flight; a list is a sweep, one run per value', default: [1], min: 1 },
  { name: 'request_rate', type: 'string', help: 'requests per second, Poisson arrivals; inf sends all at once', default: 'inf' },
  { name: 'seed', type: 'int', help: 'seed for prompts and arrival times', default: 0 },
  { name: 'ignore_eos', type: 'bool', help: 'send ignore_eos so every request generates output_len tokens' },
  { name: 'out', type: 'string', help: 'write the full results as JSON to this file' },
  { name: 'plot', type: 'string', help: 'write an SVG chart of throughput and latency against concurrency' },
  { name: 'api_key', type: 'string', help: 'bearer token (default: $OPENAI_API_KEY)' },
  { name: 'tokenizer', type: 'string', help: 'HF tokenizer directory: exact random prompt lengths; counts output when usage is missing' },
  { name: 'timeout', type: 'float', help: 'seconds one request may take before it counts as failed', default: 21600, min: 1 },
  { name: 'warmup', type: 'bool', help: 'send one untimed request first and stop if it fails (--no-warmup to skip)', default: true },
] as const satisfies readonly FlagSpec[];

function parseRate(raw: string): number {
  if (/^\+?inf(inity)?$/i.test(raw.trim())) return Infinity;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new UsageError(`--request_rate must be a positive number or inf, got '${raw}'`);
  return v;
}

/** Where the table goes; tests pass their own. */
export interface BenchOutput {
  write(text: string): unknown;
}

export async function runBenchServe(argv: string[], stdout: BenchOutput = process.stdout): Promise<void> {
  const f = parseFlags(argv, benchServeFlags, {
    command: 'ktserve bench serve',
    description:
      'Benchmark any OpenAI-compatible server (ktserve, vLLM, SGLang, llama.cpp) with streamed requests: TTFT, TPOT, ITL, E2E latency and throughput, as vLLM bench serve defines them.',
  });
  const apiKey = f.api_key ?? process.env.OPENAI_API_KEY;
  const result = await benchServe({
    baseUrl: f.base_url,
    ...(f.model !== undefined ? { model: f.model } : {}),
    endpoint: f.endpoint === 'chat' ? 'chat' : 'completions',
    dataset: f.dataset,
    inputLen: f.input_len,
    outputLen: f.output_len,
    rangeRatio: f.range_ratio,
    numPrompts: f.num_prompts,
    concurrency: f.concurrency,
    requestRate: parseRate(f.request_rate),
    seed: f.seed,
    ignoreEos: f.ignore_eos,
    ...(apiKey ? { apiKey } : {}),
    ...(f.tokenizer !== undefined ? { tokenizerDir: f.tokenizer } : {}),
    timeoutS: f.timeout,
    warmup: f.warmup,
  });
  stdout.write(formatReport(result));
  if (f.out !== undefined) writeJson(f.out, result);
  if (f.plot !== undefined) writePlot(f.plot, result);
}
