// A fake EngineClient for server tests: generates token ids by a deterministic rule (a script per request), one
// step every `stepMs`, with the real engine's contract (admission or rejection, one 'tokens' event per request per
// step, exactly one 'finished' event, abort within one step) and a record of what it was asked to do.
import {
  RequestRejectedError,
  type EngineClient,
  type EngineEvent,
  type EngineStats,
  type GenerationRequest,
  type RequestTiming,
  type StepRecord,
  type TokenLogprobInfo,
} from '../../src/engine/engine-api.js';
import type { FastifyInstance } from 'fastify';
import { buildServer, type ServerOptions } from '../../src/server/app.js';
import { ChatTemplate, loadTokenizerFromDir, type Tokenizer } from '../../src/tokenizer/index.js';
import { fixturePath } from '../fixtures.js';

export interface FakeEngineOptions {
  /** The ids a request generates, in order; when they run out, the request's first stop id (EOS) follows. */
  script: (req: GenerationRequest) => number[];
  /** Milliseconds between steps (default 1). */
  stepMs?: number;
  /** Tokens each request gets per step (default 1). */
  tokensPerStep?: number;
  /** More requests than this in flight → RequestRejectedError('queue_full'). */
  maxInFlight?: number;
  /** Prompt tokens the prefix cache "had" for a request (default 0). */
  cachedTokens?: (req: GenerationRequest) => number;
  /** After this many generated tokens the request fails with this message (finish reason 'error'). */
  failAfter?: (req: GenerationRequest) => { tokens: number; message: string } | undefined;
  /** Vocabulary size, for the logprob alternatives (default 384, the fixture models'). */
  vocabSize?: number;
}

interface Active {
  req: GenerationRequest;
  onEvent: (e: EngineEvent) => void;
  script: number[];
  generated: number;
  abortRequested: boolean;
  /** performance.now() at submission, at its first step, at its first and last tokens. */
  submittedAt: number;
  scheduledAt: number | undefined;
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;
}

/**
 * The fake's logprob rule, which tests use as their oracle: the k-th generated token (k from 0) has logprob
 * −(k+1)/8; alternative j (j from 0) is token (id + j) mod vocab with logprob −(k+1)/8 − j.
 */
export function fakeLogprob(id: number, k: number, n: number, vocabSize: number): TokenLogprobInfo {
  const logprob = -(k + 1) / 8;
  const top = Array.from({ length: n }, (_, j) => ({ token: (id + j) % vocabSize, logprob: logprob - j }));
  return { logprob, top };
}

export class FakeEngine implements EngineClient {
  readonly submitted: GenerationRequest[] = [];
  readonly aborted: string[] = [];
  readonly finished = new Map<string, EngineEvent & { type: 'finished' }>();
  private readonly active = new Map<string, Active>();
  private timer: NodeJS.Timeout | undefined;
  private steps = 0;
  private closed = false;
  private readonly stepListeners = new Set<(step: StepRecord) => void>();
  /** Every step record sent, in order (the oracle of the iteration-token series). */
  readonly stepRecords: StepRecord[] = [];
  /** Thrown by the next submit, as a bug in the engine client would be (tests of what a 500 tells the client). */
  failNextSubmit: Error | undefined;

  constructor(private readonly opts: FakeEngineOptions) {}

  async submit(req: GenerationRequest, onEvent: (e: EngineEvent) => void): Promise<void> {
    if (this.closed) throw new RequestRejectedError('invalid', 'engine is shut down');
    const failure = this.failNextSubmit;
    this.failNextSubmit = undefined;
    if (failure) throw failure;
    if (this.opts.maxInFlight !== undefined && this.active.size >= this.opts.maxInFlight) {
      throw new RequestRejectedError('queue_full', `fake engine: ${this.active.size} requests in flight`);
    }
    this.submitted.push(req);
    this.active.set(req.id, { req, onEvent, script: this.opts.script(req), generated: 0, abortRequested: false,
      submittedAt: performance.now(), scheduledAt: undefined, firstTokenAt: undefined, lastTokenAt: undefined,
    });
    this.schedule();
  }

  abort(id: string): void {
    this.aborted.push(id);
    const a = this.active.get(id);
    if (a) a.abortRequested = true;
  }

  stats(): EngineStats {
    let used = 0;
    for (const a of this.active.values()) used += Math.ceil((a.req.promptIds.length + a.generated) / 16);
    return {
      running: this.active.size,
      waiting: 0,
      kvBlocksUsed: used,
      kvBlocksFree: 1000 - used,
      kvBlocksTotal: 1000,
      prefixCacheHitTokens: [...this.finished.values()].reduce((s, f) => s + f.cachedTokens, 0),
      prefixCacheQueryTokens: [...this.finished.values()].reduce((s, f) => s + f.promptTokens, 0),
      preemptions: 0,
      steps: this.steps,
    };
  }

  onStep(listener: (step: StepRecord) => void): () => void {
    this.stepListeners.add(listener);
    return () => this.stepListeners.delete(listener);
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    for (const a of this.active.values()) this.finish(a, 'abort');
    if (this.timer) clearTimeout(this.timer);
  }

  get inFlight(): number {
    return this.active.size;
  }

  private schedule(): void {
    if (this.timer || this.active.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.step();
      this.schedule();
    }, this.opts.stepMs ?? 1);
  }

  private step(): void {
    this.steps++;
    const now = performance.now();
    // As the real engine counts: a request's first step runs its prompt (less the cached part), later ones feed back
    // one token per token generated.
    const record: StepRecord = { tokens: 0, prefillTokens: 0 };
    for (const a of [...this.active.values()]) {
      if (a.abortRequested) {
        this.finish(a, 'abort');
        continue;
      }
      if (a.scheduledAt === undefined) {
        a.scheduledAt = now;
        record.prefillTokens += a.req.promptIds.length - (this.opts.cachedTokens?.(a.req) ?? 0);
      }
      const tokens: number[] = [];
      const logprobs: TokenLogprobInfo[] = [];
      let reason: 'stop' | 'length' | undefined;
      const fail = this.opts.failAfter?.(a.req);
      for (let i = 0; i < (this.opts.tokensPerStep ?? 1) && reason === undefined; i++) {
        if (fail && a.generated >= fail.tokens) break;
        const id = this.nextId(a);
        if (a.req.sampling.logprobs > 0) {
          logprobs.push(fakeLogprob(id, a.generated, a.req.sampling.logprobs, this.opts.vocabSize ?? 384));
        }
        tokens.push(id);
        a.generated++;
        if (a.req.stopIds.includes(id)) reason = 'stop';
        else if (a.generated >= a.req.maxTokens) reason = 'length';
      }
      record.tokens += a.generated > tokens.length ? tokens.length : 0;
      if (tokens.length > 0) {
        a.firstTokenAt ??= now;
        a.lastTokenAt = now;
        a.onEvent({ type: 'tokens', id: a.req.id, tokens, logprobs: logprobs.length > 0 ? logprobs : undefined });
      }
      if (reason) this.finish(a, reason);
      else if (fail && a.generated >= fail.tokens) this.finish(a, 'error', fail.message);
    }
    record.tokens += record.prefillTokens;
    if (record.tokens === 0) return;
    this.stepRecords.push(record);
    for (const l of this.stepListeners) l(record);
  }

  /** The script, then EOS; without a stop id (ignore_eos) the script repeats. */
  private nextId(a: Active): number {
    const k = a.generated;
    if (k < a.script.length) return a.script[k]!;
    const eos = a.req.stopIds[0];
    if (eos !== undefined) return eos;
    return a.script[k % Math.max(a.script.length, 1)] ?? 0;
  }

  private finish(a: Active, reason: 'stop' | 'length' | 'abort' | 'error', error?: string): void {
    this.active.delete(a.req.id);
    const e: EngineEvent & { type: 'finished' } = {
      type: 'finished',
      id: a.req.id,
      reason,
      ...(error !== undefined ? { error } : {}),
      promptTokens: a.req.promptIds.length,
      cachedTokens: this.opts.cachedTokens?.(a.req) ?? 0,
      completionTokens: a.generated,
      timing: timingOf(a, performance.now()),
    };
    this.finished.set(a.req.id, e);
    a.onEvent(e);
  }
}

/** The engine's phases of a fake request that ends at `end`, by the same rules as EngineCore's. */
function timingOf(a: Active, end: number): RequestTiming {
  const scheduled = a.scheduledAt ?? end;
  const first = a.firstTokenAt ?? end;
  const last = a.lastTokenAt ?? first;
  return { queueSeconds: (scheduled - a.submittedAt) / 1000, prefillSeconds: (first - scheduled) / 1000, decodeSeconds: (last - first) / 1000 };
}

/** A server on an ephemeral port over an engine (a FakeEngine by default), with a fixture model's real tokenizer and chat template. */
export interface FakeServer<E extends EngineClient = FakeEngine> {
  url: string;
  app: FastifyInstance;
  engine: E;
  tokenizer: Tokenizer;
  close(): Promise<void>;
}

const tokenizers = new Map<string, Tokenizer>();

/** The fixture model's tokenizer (cached: tests build many servers). */
export function fixtureTokenizer(model: 'llama' | 'qwen3' | 'deepseek'): Tokenizer {
  let t = tokenizers.get(model);
  if (!t) {
    t = loadTokenizerFromDir(fixturePath(model));
    tokenizers.set(model, t);
  }
  return t;
}

export async function startFakeServer(
  engineOpts: FakeEngineOptions,
  serverOpts: Partial<ServerOptions> & { fixture?: 'llama' | 'qwen3' | 'deepseek' } = {},
): Promise<FakeServer> {
  return startServerOver(new FakeEngine(engineOpts), serverOpts);
}

export async function startServerOver<E extends EngineClient>(
  engine: E,
  serverOpts: Partial<ServerOptions> & { fixture?: 'llama' | 'qwen3' | 'deepseek' } = {},
): Promise<FakeServer<E>> {
  const fixture = serverOpts.fixture ?? 'llama';
  const tokenizer = fixtureTokenizer(fixture);
  const app = buildServer({
    engine,
    tokenizer,
    chatTemplate: ChatTemplate.fromTokenizerConfig(fixturePath(fixture)),
    modelName: `tiny-${fixture}`,
    maxModelLen: 512,
    maxNewTokens: 64,
    forceThink: false,
    ...serverOpts,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    app,
    engine,
    tokenizer,
    close: async () => {
      await engine.shutdown();
      await app.close();
    },
  };
}
