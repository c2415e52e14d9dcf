// `ktserve bench serve`: drives an OpenAI-compatible server with streamed requests, one run per concurrency value,
// at a fixed request rate (Poisson arrivals) or all at once, and measures what each run's clients saw.
import { Rng } from '../engine/rng.js';
import { ProgressBar, type ProgressStream } from '../cli/progress.js';
import { loadTokenizerFromDir, type Tokenizer } from '../tokenizer/index.js';
import { jsonlPrompts, randomPrompts, type BenchPrompt, type DatasetInfo } from './dataset.js';
import { closeDispatcher, createDispatcher, endpointUrl, fetchErrorText, sendRequest, type Endpoint, type RequestTarget } from './http-client.js';
import { computeMetrics, PERCENTILE_METHOD, type RunMetrics } from './metrics.js';
import type { RequestRecord } from './stream-record.js';

export interface BenchServeOptions {
  baseUrl: string;
  /** The model name to send; asked from GET /v1/models when absent. */
  model?: string;
  endpoint: Endpoint;
  /** 'random', or the path of a JSONL file of prompts/conversations. */
  dataset: string;
  inputLen: number;
  outputLen: number;
  rangeRatio: number;
  numPrompts: number;
  /** One run per value: the most requests in flight at once. */
  concurrency: number[];
  /** Requests per second (Poisson arrivals); Infinity sends them all at once, bounded by the concurrency. */
  requestRate: number;
  seed: number;
  ignoreEos: boolean;
  apiKey?: string;
  /** A Hugging Face tokenizer directory: exact random prompt lengths, and token counts when usage is missing. */
  tokenizerDir?: string;
  timeoutS: number;
  /** Send one untimed request first, and stop with its error if it fails. */
  warmup: boolean;
  /** Where the progress bar goes (drawn only on a TTY); default stderr. */
  progress?: ProgressStream;
  /** Status lines; default stderr. */
  log?: (line: string) => void;
}

/** One run's result: its settings and metrics. */
export interface RunResult extends RunMetrics {
  concurrency: number;
  request_rate: number | 'inf';
  num_prompts: number;
}

/** The whole report, as written to --out. */
export interface BenchResult {
  tool: 'ktserve bench serve';
  /** When the benchmark started (ISO 8601, UTC). */
  date: string;
  server: { base_url: string; endpoint_url: string; model: string };
  config: {
    endpoint: Endpoint;
    dataset: string;
    input_len: number;
    output_len: number;
    range_ratio: number;
    num_prompts: number;
    concurrency: number[];
    request_rate: number | 'inf';
    seed: number;
    ignore_eos: boolean;
    tokenizer: string | null;
    timeout_s: number;
    warmup: boolean;
    api_key_set: boolean;
  };
  dataset: DatasetInfo;
  percentile_method: string;
  definitions: Record<string, string>;
  /** What the reader should know about how the numbers were obtained (token counting, repeated prompts). */
  notes: string[];
  runs: RunResult[];
}

export const DEFINITIONS: Record<string, string> = {
  ttft_ms: 'time to first token: first chunk with content − request start',
  tpot_ms: 'time per output token after the first: (E2E − TTFT) / (output tokens − 1), per request with > 1 output token',
  itl_ms: 'inter-token latency: gaps between consecutive content chunks, pooled over all requests',
  e2el_ms: 'end-to-end latency: last content chunk − request start',
  request_throughput: 'completed requests / run duration (first request sent → last one finished)',
  output_throughput: 'output tokens / run duration',
  total_token_throughput: '(prompt + output tokens) / run duration',
  output_tokens: 'usage.completion_tokens; without usage, the text re-tokenized with --tokenizer, else the count of content chunks',
};

/** A FIFO counting semaphore: requests take concurrency slots in arrival order. */
class Slots {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}

  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * Send times in seconds from the run's start: all 0 for an infinite rate; else exponential gaps (a Poisson process)
 * rescaled so the last request goes at n / rate, as vLLM does, which keeps the offered load the same for every seed.
 */
export function arrivalTimes(n: number, rate: number, rng: Rng): number[] {
  if (!Number.isFinite(rate)) return new Array<number>(n).fill(0);
  const times: number[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) times.push((t += -Math.log(1 - rng.nextFloat()) / rate));
  const scale = n > 0 && t > 0 ? n / rate / t : 1;
  return times.map((x) => x * scale);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One run: every prompt sent at its arrival time once a concurrency slot is free; all records, and the duration. */
async function runOnce(
  target: RequestTarget,
  prompts: readonly BenchPrompt[],
  concurrency: number,
  arrivals: readonly number[],
  bar: ProgressBar,
): Promise<{ records: RequestRecord[]; durationS: number }> {
  const slots = new Slots(concurrency);
  let done = 0;
  const start = performance.now();
  const pending: Promise<RequestRecord>[] = [];
  for (let i = 0; i < prompts.length; i++) {
    const wait = start + arrivals[i]! * 1000 - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(
      (async () => {
        await slots.take();
        try {
          return await sendRequest(target, prompts[i]!);
        } finally {
          slots.give();
          bar.update(++done);
        }
      })(),
    );
  }
  const records = await Promise.all(pending);
  const durationS = (performance.now() - start) / 1000;
  bar.finish();
  return { records, durationS };
}

/** The first model the server lists (GET /v1/models), for when --model is not given. */
async function firstModel(baseUrl: string, apiKey: string | undefined): Promise<string> {
  const url = endpointUrl(baseUrl, 'completions').replace(/completions$/, 'models');
  const res = await fetch(url, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} }).catch((e: unknown) => {
    throw new Error(`cannot reach ${url} to find the model name (${fetchErrorText(e)}); pass --model`);
  });
  const body = (await res.json().catch(() => undefined)) as { data?: { id?: unknown }[] } | undefined;
  const id = body?.data?.[0]?.id;
  if (!res.ok || typeof id !== 'string') throw new Error(`GET ${url} gave no model (HTTP ${res.status}); pass --model`);
  return id;
}

/**
 * One generator per use, all from --seed: prompts stream 0 is the warm-up prompt and run k uses stream k + 1, so no
 * run repeats another's random prompts (a server's prefix cache would make the repeat look fast).
 */
function rngFor(seed: number, use: 'prompts' | 'arrivals', stream: number): Rng {
  return Rng.fromSeed((BigInt(seed) << 21n) + (use === 'arrivals' ? 1n << 20n : 0n) + BigInt(stream));
}

function makePrompts(o: BenchServeOptions, tok: Tokenizer | undefined, num: number, stream: number) {
  const rng = rngFor(o.seed, 'prompts', stream);
  if (o.dataset === 'random') {
    return randomPrompts({
      inputLen: o.inputLen,
      outputLen: o.outputLen,
      rangeRatio: o.rangeRatio,
      num,
      rng,
      ...(tok ? { tokenizer: tok } : {}),
      countBos: o.endpoint === 'completions',
    });
  }
  return jsonlPrompts({ path: o.dataset, outputLen: o.outputLen, num, rng, ...(tok ? { tokenizer: tok } : {}) });
}

/** How the token counts were obtained, summed over the runs, plus caveats the reader needs. */
function notesFor(o: BenchServeOptions, runs: readonly RunResult[]): string[] {
  const sum = (f: (r: RunResult) => number) => runs.reduce((s, r) => s + f(r), 0);
  const out = {
    usage: sum((r) => r.output_tokens_from.usage),
    retokenized: sum((r) => r.output_tokens_from.retokenized),
    chunks: sum((r) => r.output_tokens_from.content_chunks),
  };
  const input = { usage: sum((r) => r.input_tokens_from.usage), client: sum((r) => r.input_tokens_from.client) };
  const parts = (entries: [number, string][]) =>
    entries
      .filter(([n]) => n > 0)
      .map(([n, how]) => `${how} for ${n}`)
      .join(', ');
  const notes: string[] = [];
  if (out.usage + out.retokenized + out.chunks > 0) {
    const how = parts([
      [out.usage, "the server's usage.completion_tokens"],
      [out.retokenized, `re-tokenizing the text with ${o.tokenizerDir}`],
      [out.chunks, 'counting content chunks'],
    ]);
    notes.push(`output tokens counted by ${how} completed requests`);
    if (out.chunks > 0) notes.push('content chunks are tokens only where the server sends one token per chunk; --tokenizer counts them exactly');
    const inHow = parts([
      [input.usage, "the server's usage.prompt_tokens"],
      [input.client, "the client's prompt count"],
    ]);
    notes.push(`prompt tokens counted by ${inHow} completed requests`);
  }
  if (o.dataset !== 'random' && o.concurrency.length > 1) {
    notes.push("a JSONL dataset's prompts repeat across runs: a server's prefix cache will see them again");
  }
  return notes;
}

export async function benchServe(o: BenchServeOptions): Promise<BenchResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const tok = o.tokenizerDir ? loadTokenizerFromDir(o.tokenizerDir) : undefined;
  const model = o.model ?? (await firstModel(o.baseUrl, o.apiKey));
  const dispatcher = await createDispatcher();
  const target: RequestTarget = {
    url: endpointUrl(o.baseUrl, o.endpoint),
    endpoint: o.endpoint,
    model,
    ...(o.apiKey ? { apiKey: o.apiKey } : {}),
    ignoreEos: o.ignoreEos,
    timeoutMs: o.timeoutS * 1000,
    ...(dispatcher ? { dispatcher } : {}),
  };
  const rate = Number.isFinite(o.requestRate) ? o.requestRate : ('inf' as const);
  const date = new Date().toISOString();
  try {
    const warm = makePrompts(o, tok, 1, 0);
    const info = warm.info;
    log(`bench serve: ${target.url}, model ${model}; prompts: ${info.prompt_text}, token counts ${info.prompt_token_count}`);
    if (o.warmup) {
      const r = await sendRequest(target, warm.prompts[0]!);
      if (!r.ok) throw new Error(`the warm-up request failed: ${r.error}`);
    }
    const runs: RunResult[] = [];
    for (const [k, concurrency] of o.concurrency.entries()) {
      const { prompts } = makePrompts(o, tok, o.numPrompts, k + 1);
      const arrivals = arrivalTimes(prompts.length, o.requestRate, rngFor(o.seed, 'arrivals', k));
      const bar = new ProgressBar(`concurrency ${concurrency}`, prompts.length, { unit: 'items', ...(o.progress ? { stream: o.progress } : {}) });
      const { records, durationS } = await runOnce(target, prompts, concurrency, arrivals, bar);
      const metrics = computeMetrics(records, durationS, tok ? (text) => tok.encode(text, { addSpecialTokens: false }).length : undefined);
      runs.push({ concurrency, request_rate: rate, num_prompts: prompts.length, ...metrics });
      log(`concurrency ${concurrency}: ${metrics.completed} ok, ${metrics.failed} failed in ${durationS.toFixed(2)} s`);
    }
    return {
      tool: 'ktserve bench serve',
      date,
      server: { base_url: o.baseUrl, endpoint_url: target.url, model },
      config: {
        endpoint: o.endpoint,
        dataset: o.dataset,
        input_len: o.inputLen,
        output_len: o.outputLen,
        range_ratio: o.rangeRatio,
        num_prompts: o.numPrompts,
        concurrency: [...o.concurrency],
        request_rate: rate,
        seed: o.seed,
        ignore_eos: o.ignoreEos,
        tokenizer: o.tokenizerDir ?? null,
        timeout_s: o.timeoutS,
        warmup: o.warmup,
        api_key_set: o.apiKey !== undefined,
      },
      dataset: info,
      percentile_method: PERCENTILE_METHOD,
      definitions: DEFINITIONS,
      notes: notesFor(o, runs),
      runs,
    };
  } finally {
    await closeDispatcher(dispatcher);
  }
}
