// One HTTP generation request in flight: its choices (one engine request each), the engine events turned into
// text deltas and a final result per choice, cancellation of every choice when the client goes away, and metrics.
import type { FastifyReply } from 'fastify';
import { RequestRejectedError, type EngineClient, type EngineEvent, type TokenLogprobInfo } from '../engine/engine-api.js';
import type { SamplingParams } from '../engine/sampling-params.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { cacheSaltFor } from './cache-isolation.js';
import { ApiError, fromRejection } from './errors.js';
import { SHUTDOWN_MESSAGE } from './in-flight.js';
import type { ServerMetrics } from './metrics.js';
import { TextStream, type ReasoningMode } from './text-stream.js';

/** One engine request, as the routes plan it. */
export interface ChoicePlan {
  /** The choice's `index` in the response. */
  index: number;
  engineId: string;
  promptIds: number[];
  sampling: SamplingParams;
  maxTokens: number;
  stopIds: number[];
  stopStrings: string[];
  reasoning: ReasoningMode;
  /** The request's cache_salt; submitted combined with the API key's identity (cacheSaltFor). */
  cacheSalt?: string | undefined;
}

export interface TokenOut {
  id: number;
  logprob: TokenLogprobInfo | undefined;
  /** Offset of the token's text in the choice's text. */
  offset: number;
}

export interface ChoiceUsage {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
}

export type ChoiceOutput =
  | { kind: 'delta'; index: number; content: string; reasoning: string; tokens: TokenOut[] }
  | {
      kind: 'end';
      index: number;
      finishReason: 'stop' | 'length';
      usage: ChoiceUsage;
      hasReasoning: boolean;
      /** performance.now() at the first token, if any came. */
      firstTokenAt: number | undefined;
    }
  | { kind: 'error'; index: number; message: string };

/** What one HTTP request's generation did, summed over its choices (for its access log line). */
export interface RequestSummary {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  /** Milliseconds from arrival to the first token of any choice. */
  ttftMs: number | undefined;
  /** The finish reason of each finished choice, in choice order ('abort' for those the client left). */
  finishReasons: string[];
}

export interface GenerationDeps {
  engine: EngineClient;
  tokenizer: Tokenizer;
  metrics: ServerMetrics;
  /** A request gets a 503 while its choices don't fit beside the engine's waiting requests. */
  maxQueue?: number | undefined;
}

/** Drives one choice: engine events in, ChoiceOutputs out. */
class ChoiceRun {
  private readonly text: TextStream;
  private stoppedByString = false;
  private consumed = 0;
  private firstTokenAt: number | undefined;
  private lastTokenAt: number | undefined;
  private ended = false;
  /** The engine's account of the choice once it finished. */
  outcome: { reason: string; promptTokens: number; cachedTokens: number; completionTokens: number } | undefined;

  constructor(
    private readonly deps: GenerationDeps,
    readonly plan: ChoicePlan,
    private readonly arrivedAt: number,
    private readonly emit: (out: ChoiceOutput) => void,
    private readonly cancelled: () => boolean,
  ) {
    this.text = new TextStream(deps.tokenizer, {
      promptIds: plan.promptIds,
      stopIds: plan.stopIds,
      stopStrings: plan.stopStrings,
      reasoning: plan.reasoning,
    });
  }

  get finished(): boolean {
    return this.ended;
  }

  /** Milliseconds from arrival to this choice's first token. */
  get ttftMs(): number | undefined {
    return this.firstTokenAt === undefined ? undefined : this.firstTokenAt - this.arrivedAt;
  }

  onEvent(e: EngineEvent): void {
    if (this.ended) return;
    if (e.type === 'tokens') this.onTokens(e.tokens, e.logprobs);
    else this.onFinished(e);
  }

  private onTokens(ids: number[], logprobs: TokenLogprobInfo[] | undefined): void {
    if (this.stoppedByString || ids.length === 0) return;
    const now = performance.now();
    if (this.lastTokenAt === undefined) {
      this.firstTokenAt = now;
      this.deps.metrics.firstToken((now - this.arrivedAt) / 1000, this.plan.promptIds.length);
    } else this.deps.metrics.interToken((now - this.lastTokenAt) / 1000, ids.length);
    const consumedBefore = this.consumed;
    this.lastTokenAt = now;
    const out: ChoiceOutput & { kind: 'delta' } = { kind: 'delta', index: this.plan.index, content: '', reasoning: '', tokens: [] };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const offset = this.text.textOffset;
      const step = this.text.push(id);
      this.consumed++;
      out.content += step.content;
      out.reasoning += step.reasoning;
      out.tokens.push({ id, logprob: logprobs?.[i], offset });
      if (step.stopped) {
        // The stop string ends the choice here; the engine's later tokens (this step's or the next) are dropped.
        this.stoppedByString = true;
        this.deps.engine.abort(this.plan.engineId);
        break;
      }
    }
    // Counted as delivered, so that with a stop string the count is the usage's completion tokens.
    this.deps.metrics.tokensGenerated(this.consumed - consumedBefore);
    this.emit(out);
  }

  private onFinished(e: EngineEvent & { type: 'finished' }): void {
    this.ended = true;
    const seconds = (performance.now() - this.arrivedAt) / 1000;
    const completionTokens = this.stoppedByString ? this.consumed : e.completionTokens;
    const reason = this.stoppedByString ? 'stop' : e.reason;
    this.outcome = { reason, promptTokens: e.promptTokens, cachedTokens: e.cachedTokens, completionTokens };
    this.deps.metrics.requestFinished({
      reason, promptTokens: e.promptTokens, cachedTokens: e.cachedTokens, completionTokens, e2eSeconds: seconds, timing: e.timing,
    });
    if (reason === 'error' || (reason === 'abort' && !this.cancelled())) {
      const message = reason === 'error' ? e.error ?? 'the engine failed this request' : 'the engine cancelled this request';
      this.emit({ kind: 'error', index: this.plan.index, message });
      return;
    }
    if (reason === 'abort') return; // our own cancellation: nobody is listening
    const tail = this.text.finish();
    if (tail.content !== '' || tail.reasoning !== '') {
      this.emit({ kind: 'delta', index: this.plan.index, content: tail.content, reasoning: tail.reasoning, tokens: [] });
    }
    this.emit({
      kind: 'end',
      index: this.plan.index,
      finishReason: reason,
      usage: { promptTokens: e.promptTokens, cachedTokens: e.cachedTokens, completionTokens },
      hasReasoning: this.text.hasReasoning,
      firstTokenAt: this.firstTokenAt,
    });
  }
}

/**
 * All choices of one HTTP request. Outputs are queued until a consumer attaches, so that the response (status,
 * headers) is decided only after every choice was admitted or one was refused.
 */
export class Generation {
  private readonly runs: ChoiceRun[];
  private queue: ChoiceOutput[] = [];
  private sink: ((out: ChoiceOutput) => void) | undefined;
  private cancelled = false;
  private admitted = new Set<string>();
  private resolveDone!: () => void;
  /** Resolves when every choice has ended (finished, failed, or aborted). */
  readonly done = new Promise<void>((resolve) => {
    this.resolveDone = resolve;
  });

  constructor(
    private readonly deps: GenerationDeps,
    plans: readonly ChoicePlan[],
    /** Whose request this is (req.apiKeyId): its prefix-cache entries are that key's alone. */
    private readonly apiKeyId?: string | undefined,
  ) {
    const arrivedAt = performance.now();
    this.runs = plans.map((p) => new ChoiceRun(deps, p, arrivedAt, (out) => this.push(out), () => this.cancelled));
    if (plans.length === 0) this.resolveDone();
  }

  /** Submits every choice. If the engine refuses one, the others are aborted and the refusal is thrown. */
  async start(): Promise<void> {
    const results = await Promise.allSettled(
      this.runs.map(async (run) => {
        await this.deps.engine.submit(
          {
            id: run.plan.engineId,
            promptIds: run.plan.promptIds,
            sampling: run.plan.sampling,
            maxTokens: run.plan.maxTokens,
            stopIds: run.plan.stopIds,
            cacheSalt: cacheSaltFor(this.apiKeyId, run.plan.cacheSalt),
          },
          (e) => {
            run.onEvent(e);
            if (run.finished) this.checkDone();
          },
        );
        this.admitted.add(run.plan.engineId);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      this.cancel();
      throw failed.reason;
    }
    if (this.cancelled) this.cancel();
  }

  /** Receives every output so far, then each new one as it comes. */
  attach(sink: (out: ChoiceOutput) => void): void {
    this.sink = sink;
    const queued = this.queue;
    this.queue = [];
    for (const out of queued) sink(out);
  }

  /** The client went away (or one choice failed): abort every choice still running. */
  cancel(): void {
    this.cancelled = true;
    for (const run of this.runs) {
      if (!run.finished && this.admitted.has(run.plan.engineId)) this.deps.engine.abort(run.plan.engineId);
    }
    this.checkDone();
  }

  summary(): RequestSummary {
    const s: RequestSummary = { promptTokens: 0, cachedTokens: 0, completionTokens: 0, ttftMs: undefined, finishReasons: [] };
    const prompts = new Set<number[]>();
    for (const run of this.runs) {
      const o = run.outcome;
      const t = run.ttftMs;
      if (t !== undefined && (s.ttftMs === undefined || t < s.ttftMs)) s.ttftMs = t;
      if (!o) continue;
      s.completionTokens += o.completionTokens;
      s.finishReasons.push(o.reason);
      // n > 1 choices share one prompt array: bill it once, as usage does.
      if (prompts.has(run.plan.promptIds)) continue;
      prompts.add(run.plan.promptIds);
      s.promptTokens += o.promptTokens;
      s.cachedTokens += o.cachedTokens;
    }
    return s;
  }

  /** Whether the request was cancelled (the client went away, or a choice failed). */
  get isCancelled(): boolean {
    return this.cancelled;
  }

  /** Aborts the generation when the client disconnects before the response is complete. */
  watchDisconnect(reply: FastifyReply): void {
    reply.raw.once('close', () => {
      if (!reply.raw.writableEnded) this.cancel();
    });
  }

  private push(out: ChoiceOutput): void {
    if (this.sink) this.sink(out);
    else this.queue.push(out);
  }

  private checkDone(): void {
    // A choice the engine never admitted will send no events: it counts as ended once we gave up on it.
    const open = this.runs.some((r) => !r.finished && (this.admitted.has(r.plan.engineId) || !this.cancelled));
    if (!open) this.resolveDone();
  }
}

/**
 * Submits the choices of one request, cancelled when the client disconnects. Throws an ApiError (503 queue full,
 * 400 too large) when the engine refuses. Each choice is one engine request, so a request is queued only when
 * all of its choices fit (the routes refuse with a 400 what could never fit: checkChoiceCount).
 */
export async function launch(deps: GenerationDeps, reply: FastifyReply, plans: readonly ChoicePlan[]): Promise<Generation> {
  const waiting = deps.engine.stats().waiting;
  if (deps.maxQueue !== undefined && waiting + plans.length > deps.maxQueue) {
    const message = plans.length === 1
      ? `the queue is full (${deps.maxQueue} requests waiting); retry later`
      : `the queue has no room for this request's ${plans.length} choices (${waiting} of ${deps.maxQueue} places taken); retry later`;
    throw fromRejection(new RequestRejectedError('queue_full', message));
  }
  const gen = new Generation(deps, plans, reply.request.apiKeyId);
  reply.request.generationSummary = () => gen.summary();
  gen.watchDisconnect(reply);
  await gen.start();
  return gen;
}

/** Collects a non-streaming response: text, reasoning, tokens and usage per choice, in index order. */
export interface CollectedChoice {
  index: number;
  content: string;
  reasoning: string;
  tokens: TokenOut[];
  finishReason: 'stop' | 'length';
  usage: ChoiceUsage;
  hasReasoning: boolean;
  firstTokenAt: number | undefined;
}

/** Waits for every choice; if one failed, cancels the others and throws a 500 with the engine's message. */
export async function collect(gen: Generation, indexes: readonly number[]): Promise<CollectedChoice[]> {
  const acc = new Map<number, CollectedChoice>();
  for (const index of indexes) {
    acc.set(index, {
      index, content: '', reasoning: '', tokens: [], finishReason: 'stop',
      usage: { promptTokens: 0, cachedTokens: 0, completionTokens: 0 }, hasReasoning: false, firstTokenAt: undefined,
    });
  }
  let error: string | undefined;
  gen.attach((out) => {
    const c = acc.get(out.index)!;
    if (out.kind === 'delta') {
      c.content += out.content;
      c.reasoning += out.reasoning;
      c.tokens.push(...out.tokens);
    } else if (out.kind === 'end') {
      c.finishReason = out.finishReason;
      c.usage = out.usage;
      c.hasReasoning = out.hasReasoning;
      c.firstTokenAt = out.firstTokenAt;
    } else if (error === undefined) {
      error = out.message;
      gen.cancel();
    }
  });
  await gen.done;
  if (error !== undefined) throw engineFailure(error);
  return [...acc.values()];
}

/** The engine failed a request (finish reason 'error'): a 500 that says why; a 503 when a shutdown ended it. */
export function engineFailure(message: string): ApiError {
  if (message === SHUTDOWN_MESSAGE) return new ApiError(503, message, { code: 'server_shutting_down' });
  return new ApiError(500, message, { code: 'engine_error' });
}

/** Sums usage over choices: the prompt is counted once per distinct prompt (`promptOf` maps choice → prompt). */
export function totalUsage(choices: readonly { index: number; usage: ChoiceUsage }[], promptOf: (index: number) => number): ChoiceUsage {
  const seen = new Set<number>();
  const total: ChoiceUsage = { promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
  for (const c of choices) {
    total.completionTokens += c.usage.completionTokens;
    const p = promptOf(c.index);
    if (seen.has(p)) continue;
    // The first choice of each prompt bills it; later choices of the same prompt reuse it.
    seen.add(p);
    total.promptTokens += c.usage.promptTokens;
    total.cachedTokens += c.usage.cachedTokens;
  }
  return total;
}
