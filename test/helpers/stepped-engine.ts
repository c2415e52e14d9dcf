// An EngineClient over the real EngineCore (scheduler, paged KV bookkeeping, prefix cache) with a runner that runs
// no model: every sampled token is `token`. Steps run only when the test calls step() (or drive()), so tests count
// scheduling in engine steps, not wall time, and read real prefix-cache hits (cached_tokens) through the server.
import { CpuBackend } from '../../src/backend/cpu-backend.js';
import type { EngineClient, EngineEvent, EngineStats, GenerationRequest, StepRecord } from '../../src/engine/engine-api.js';
import { EngineCore } from '../../src/engine/engine-core.js';
import type { StepRunner } from '../../src/engine/model-runner.js';
import type { ModelConfig } from '../../src/models/config.js';
import { PagedKvCache, perHeadKvLayout } from '../../src/models/kv-cache.js';
import type { CausalLM } from '../../src/models/registry.js';
import type { ServerOptions } from '../../src/server/app.js';
import { fixtureTokenizer, startServerOver, type FakeServer } from './fake-engine.js';

export interface SteppedEngineOptions {
  vocabSize: number;
  /** The token every sampled row gets (pick one that is no stop id). */
  token: number;
  numBlocks: number;
  blockSize: number;
  chunkSize: number;
  maxBatchSize: number;
  maxQueue: number;
  /** The engine's clock of request timings (default performance.now). */
  now?: () => number;
}

export class SteppedEngine implements EngineClient {
  readonly core: EngineCore;
  /** Steps run so far. */
  steps = 0;
  /** Every admitted request, in admission order. */
  readonly submitted: GenerationRequest[] = [];
  /** Per request id: the step count when it was admitted, and the step that gave its first token. */
  readonly admittedAt = new Map<string, number>();
  readonly firstTokenAt = new Map<string, number>();
  private readonly listeners = new Map<string, (e: EngineEvent) => void>();
  private readonly stepListeners = new Set<(step: StepRecord) => void>();

  constructor(opts: SteppedEngineOptions) {
    const backend = new CpuBackend();
    const config: ModelConfig = {
      architecture: 'llama', vocabSize: opts.vocabSize, hiddenSize: 8, intermediateSize: 8, numLayers: 1, numHeads: 1, numKvHeads: 1,
      headDim: 8, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: undefined, maxPositions: opts.numBlocks * opts.blockSize,
      tieWordEmbeddings: true, qkNorm: false, bosTokenId: undefined, eosTokenIds: [],
    };
    const noForward = (): never => {
      throw new Error('the stepped engine runs no model');
    };
    const model: CausalLM = { config, kvLayout: perHeadKvLayout(1, 1), backend, forward: noForward, forwardTensors: noForward };
    const cache = new PagedKvCache(backend, { numLayers: 1, numBlocks: opts.numBlocks, blockSize: opts.blockSize, layout: perHeadKvLayout(1, 1) });
    const runner: StepRunner = {
      samplesOnDevice: true,
      start(batch, rows) {
        // Device rows where every request samples plainly; host logits (a peak at `token`) where one wants logprobs.
        if (rows) {
          const tokens = Int32Array.from(rows, () => opts.token);
          return { wait: () => ({ tokens }) };
        }
        const n = batch.sequences.filter((c) => c.wantLogits).length;
        const logits = new Float32Array(n * opts.vocabSize);
        for (let r = 0; r < n; r++) logits[r * opts.vocabSize + opts.token] = 10;
        return { wait: () => ({ logits }) };
      },
    };
    const scheduling = { chunkSize: opts.chunkSize, maxBatchSize: opts.maxBatchSize, maxQueue: opts.maxQueue, prefixCaching: true, overlap: false, ...(opts.now ? { now: opts.now } : {}) };
    this.core = new EngineCore(model, cache, scheduling, runner);
  }

  async submit(req: GenerationRequest, onEvent: (e: EngineEvent) => void): Promise<void> {
    this.core.submit(req); // throws RequestRejectedError, as the worker's rejection would
    this.submitted.push(req);
    this.admittedAt.set(req.id, this.steps);
    this.listeners.set(req.id, onEvent);
  }

  abort(id: string): void {
    this.core.abort(id);
  }

  stats(): EngineStats {
    return this.core.stats();
  }

  onStep(listener: (step: StepRecord) => void): () => void {
    this.stepListeners.add(listener);
    return () => this.stepListeners.delete(listener);
  }

  async shutdown(): Promise<void> {
    for (const id of this.listeners.keys()) this.core.abort(id);
    while (this.core.hasWork()) this.step();
  }

  hasWork(): boolean {
    return this.core.hasWork();
  }

  /** Runs one engine step and hands its events to the requests. */
  step(): void {
    const events = this.core.step();
    this.steps++;
    for (const step of this.core.takeStepRecords()) for (const l of this.stepListeners) l(step);
    for (const e of events) {
      if (e.type === 'tokens' && !this.firstTokenAt.has(e.id)) this.firstTokenAt.set(e.id, this.steps);
      const listener = this.listeners.get(e.id);
      if (e.type === 'finished') this.listeners.delete(e.id);
      listener?.(e);
    }
  }
}

/** Yields to I/O (HTTP requests and responses in flight) once. */
export const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));

/** Waits, without stepping, until `cond` holds. */
export async function until(cond: () => boolean, what: string, ticks = 2000): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i >= ticks) throw new Error(`timed out waiting for ${what}`);
    await tick();
  }
}

/** Steps the engine (yielding to I/O between steps) until every one of `pending` has settled. */
export async function drive(engine: SteppedEngine, pending: readonly Promise<unknown>[], maxTicks = 20_000): Promise<void> {
  let open = pending.length;
  for (const p of pending) p.then(() => open--, () => open--);
  for (let i = 0; open > 0; i++) {
    if (i >= maxTicks) throw new Error(`requests still open after ${maxTicks} ticks (${engine.steps} steps)`);
    if (engine.hasWork()) engine.step();
    await tick();
  }
}

export type SteppedServer = FakeServer<SteppedEngine>;

/** A server over a SteppedEngine with the llama fixture's tokenizer and chat template; `token` is the id of " a". */
export async function startSteppedServer(
  engineOpts: Omit<SteppedEngineOptions, 'vocabSize' | 'token'>,
  serverOpts: Partial<ServerOptions> = {},
): Promise<SteppedServer> {
  const tokenizer = fixtureTokenizer('llama');
  const token = tokenizer.encode(' a', { addSpecialTokens: false })[0]!;
  const engine = new SteppedEngine({ ...engineOpts, vocabSize: tokenizer.vocabSize, token });
  return startServerOver(engine, { maxQueue: engineOpts.maxQueue, ...serverOpts, fixture: 'llama' });
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}
