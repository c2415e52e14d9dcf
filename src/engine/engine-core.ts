// The engine's step loop without threads: scheduler → model forward → sampling → events.
// The worker thread drives it; tests can drive it directly.
import type { PagedKvCache } from '../models/kv-cache.js';
import type { CausalLM } from '../models/registry.js';
import { QueueFullError, RequestTooLargeError } from '../scheduler/errors.js';
import { Scheduler, type SchedulerConfig } from '../scheduler/scheduler.js';
import { Sequence, type SeqId } from '../scheduler/sequence.js';
import { fillPendingTokens, type StepPlan } from '../scheduler/step-plan.js';
import {
  RequestRejectedError, type EngineEvent, type EngineStats, type GenerationRequest, type RequestTiming, type StepRecord, type TokenLogprobInfo,
} from './engine-api.js';
import { gpuSamplable, requestSeed, type GpuSamplingRow } from './gpu-sampling.js';
import { ModelRunner, type PendingStep, type StepRunner } from './model-runner.js';
import { SequenceSampler } from './sampler.js';

type FinishedEvent = Extract<EngineEvent, { type: 'finished' }>;

/** What the engine keeps per request beside the scheduler's sequence. */
interface RequestState {
  requestId: string;
  sampler: SequenceSampler;
  /** The device sampler's 32-bit seed for this request (its counter is the token's index). */
  deviceSeed: number;
  wantLogprobs: boolean;
  /** Clock readings (ms) of the request's phases, for its RequestTiming. */
  submittedAt: number;
  scheduledAt: number | undefined;
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;
}

export type EngineCoreConfig = Omit<SchedulerConfig, 'numBlocks' | 'blockSize' | 'maxModelLen'> & {
  /**
   * Plan step N+1 (and report step N-1) while the device runs step N (default: where the runner
   * samples on the device). Sequences that end at step N then take one more row in step N+1,
   * whose token is dropped.
   */
  overlap?: boolean;
  /** The clock of request timings, in ms (default performance.now; tests pass their own). */
  now?: () => number;
};

interface SampledStep {
  tokens: number[];
  logprobs: (TokenLogprobInfo | undefined)[];
}

/** A step the runner has issued: wait() finishes it (and samples on the host where needed). */
interface LaunchedStep {
  plan: StepPlan<RequestState>;
  wait(): SampledStep;
}

export class EngineCore {
  private readonly scheduler: Scheduler<RequestState>;
  private readonly idOf = new Map<string, SeqId>();
  private nextSeq = 1;
  private steps = 0;
  /** Finish events of aborts, delivered with the next step's events. */
  private pending: EngineEvent[] = [];
  /** Steps launched since takeStepRecords last ran. */
  private stepRecords: StepRecord[] = [];
  private readonly now: () => number;

  private readonly runner: StepRunner;
  private readonly overlap: boolean;
  /** The step the device is running (overlap: between two calls of step()). */
  private launched: LaunchedStep | undefined;

  /** `runner` (default: eager, no CUDA graphs) runs the model's steps. */
  constructor(
    private readonly model: CausalLM,
    private readonly cache: PagedKvCache,
    config: EngineCoreConfig,
    runner?: StepRunner,
  ) {
    this.runner = runner ?? new ModelRunner(model, cache, { cudaGraphs: false, maxBatchSize: config.maxBatchSize });
    this.overlap = config.overlap ?? this.runner.samplesOnDevice;
    this.now = config.now ?? (() => performance.now());
    this.scheduler = new Scheduler<RequestState>({
      ...config,
      numBlocks: cache.shape.numBlocks,
      blockSize: cache.shape.blockSize,
      maxModelLen: model.config.maxPositions,
    });
  }

  /** Admits a request or throws RequestRejectedError; it runs from the next step on. */
  submit(req: GenerationRequest): void {
    if (this.idOf.has(req.id)) throw new RequestRejectedError('invalid', `request id ${req.id} is already running`);
    const vocab = this.model.config.vocabSize;
    const bad = req.promptIds.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
    if (bad !== undefined) throw new RequestRejectedError('invalid', `prompt token id ${bad} is outside the vocabulary (0..${vocab - 1})`);
    const state: RequestState = {
      requestId: req.id,
      sampler: new SequenceSampler(req.sampling, req.promptIds),
      deviceSeed: requestSeed(req.sampling),
      wantLogprobs: req.sampling.logprobs > 0,
      submittedAt: this.now(),
      scheduledAt: undefined,
      firstTokenAt: undefined,
      lastTokenAt: undefined,
    };
    const seq = new Sequence<RequestState>({
      id: this.nextSeq++, promptIds: req.promptIds, maxTokens: req.maxTokens, stopIds: req.stopIds, params: state, cacheSalt: req.cacheSalt,
    });
    try {
      this.scheduler.add(seq);
    } catch (err) {
      if (err instanceof RequestTooLargeError) throw new RequestRejectedError('too_large', err.message);
      if (err instanceof QueueFullError) throw new RequestRejectedError('queue_full', err.message);
      throw err;
    }
    this.idOf.set(req.id, seq.id);
  }

  abort(requestId: string): void {
    const seqId = this.idOf.get(requestId);
    if (seqId === undefined) return;
    const seq = this.scheduler.get(seqId);
    if (this.scheduler.abort(seqId) && seq) this.pending.push(this.finished(seq, 'abort'));
    this.idOf.delete(requestId);
  }

  hasWork(): boolean {
    return this.scheduler.hasWork() || this.pending.length > 0 || this.launched !== undefined;
  }

  /**
   * Runs one step; returns every event it produced (one message's worth). With overlap, the step
   * it finishes was launched by the previous call, and the next one is launched before its events
   * are made, so the device stays busy while the host reports.
   */
  step(): EngineEvent[] {
    const events = this.pending;
    this.pending = [];
    let cur = this.launched;
    this.launched = undefined;
    if (!cur) {
      const plan = this.scheduler.schedule();
      if (!plan) return events;
      cur = this.launch(plan, events);
      if (!cur) return events;
    }
    // Planned while the device runs `cur`: its decodes read cur's tokens, filled in below.
    const next = this.overlap ? this.scheduler.schedule() : undefined;
    let sampled: SampledStep;
    try {
      sampled = cur.wait();
      if (sampled.tokens.length !== cur.plan.numSamples) throw new Error(`${sampled.tokens.length} sampled tokens for ${cur.plan.numSamples} rows`);
    } catch (err) {
      this.fail(cur.plan, err, events);
      if (next) this.fail(next, err, events);
      return events;
    }
    if (next) {
      fillPendingTokens(next, sampled.tokens);
      this.launched = this.launch(next, events);
    }
    this.apply(cur.plan, sampled, events);
    return events;
  }

  /** Issues a planned step and marks it launched; on a failure its sequences end (events) and undefined is returned. */
  private launch(plan: StepPlan<RequestState>, events: EngineEvent[]): LaunchedStep | undefined {
    let wait: () => SampledStep;
    try {
      wait = this.start(plan);
    } catch (err) {
      this.fail(plan, err, events);
      return undefined;
    }
    this.steps++;
    this.record(plan);
    this.scheduler.launch(plan);
    return { plan, wait };
  }

  /** Notes a launched step's work, and the first scheduling of the requests it starts. */
  private record(plan: StepPlan<RequestState>): void {
    const now = this.now();
    let prefill = 0;
    for (const e of plan.entries) {
      e.seq.params!.scheduledAt ??= now;
      // A decode feeds one generated token; anything else is prompt (or, after a preemption, recomputation).
      // Read before launch() advances numCached.
      const decode = e.chunk.tokens.length === 1 && e.chunk.cachedLen >= e.seq.numPromptTokens;
      if (!decode) prefill += e.chunk.tokens.length;
    }
    this.stepRecords.push({ tokens: plan.numTokens, prefillTokens: prefill });
  }

  /** The steps launched since the last call (the worker sends them with its step message). */
  takeStepRecords(): StepRecord[] {
    const out = this.stepRecords;
    this.stepRecords = [];
    return out;
  }

  private fail(plan: StepPlan<RequestState>, err: unknown, events: EngineEvent[]): void {
    const message = `engine step failed: ${(err as Error).message}`;
    const seqs = new Map(plan.entries.map((e) => [e.seq.id, e.seq]));
    for (const ev of this.scheduler.onStepFailed(plan)) {
      const seq = seqs.get(ev.seqId);
      if (seq) events.push({ ...this.finished(seq, 'error'), error: message });
    }
  }

  private apply(plan: StepPlan<RequestState>, sampled: SampledStep, events: EngineEvent[]): void {
    const seqs = new Map(plan.entries.map((e) => [e.seq.id, e.seq]));
    const logprobOf = new Map<SeqId, TokenLogprobInfo | undefined>();
    let j = 0;
    for (const e of plan.entries) if (e.sample) logprobOf.set(e.seq.id, sampled.logprobs[j++]);
    const now = this.now();
    for (const ev of this.scheduler.onStepDone(plan, sampled.tokens)) {
      const seq = seqs.get(ev.seqId)!;
      const state = seq.params!;
      if (ev.token !== undefined) {
        state.firstTokenAt ??= now;
        state.lastTokenAt = now;
        const lp = logprobOf.get(seq.id);
        events.push({ type: 'tokens', id: state.requestId, tokens: [ev.token], logprobs: lp ? [lp] : undefined });
      }
      if (ev.finishReason) events.push(this.finished(seq, ev.finishReason));
    }
  }

  /** Starts the plan's forward pass; the returned function finishes it and samples. */
  private start(plan: StepPlan<RequestState>): () => SampledStep {
    const sampling = plan.entries.filter((e) => e.sample);
    // Where every sampling row's semantics are the device sampler's, only the ids come back.
    if (this.runner.samplesOnDevice && sampling.every((e) => gpuSamplable(e.seq.params!.sampler.params))) {
      const rows: GpuSamplingRow[] = sampling.map((e) => ({
        params: e.seq.params!.sampler.params,
        seed: e.seq.params!.deviceSeed,
        counter: e.seq.numGenerated,
        penalties: e.seq.params!.sampler,
      }));
      const pending: PendingStep = this.runner.start(plan.batch, rows);
      return () => {
        const tokens = Array.from(pending.wait().tokens ?? [], Number);
        // Recorded here, not in apply(): with overlap, step() launches the next step between the two, and
        // that step's penalties must count these tokens.
        sampling.forEach((e, j) => {
          const t = tokens[j];
          if (t !== undefined) e.seq.params!.sampler.record(t);
        });
        return { tokens, logprobs: tokens.map(() => undefined) };
      };
    }
    const pending = this.runner.start(plan.batch);
    return () => {
      const logits = pending.wait().logits ?? new Float32Array(0);
      const V = this.model.config.vocabSize;
      const tokens: number[] = [];
      const logprobs: (TokenLogprobInfo | undefined)[] = [];
      sampling.forEach((e, row) => {
        const state = e.seq.params!;
        const r = state.sampler.sample(logits.subarray(row * V, (row + 1) * V));
        tokens.push(r.token);
        logprobs.push(state.wantLogprobs ? { logprob: r.logprob, top: r.topLogprobs } : undefined);
      });
      return { tokens, logprobs };
    };
  }

  private finished(seq: Sequence<RequestState>, reason: FinishedEvent['reason']): FinishedEvent {
    const state = seq.params!;
    if (reason !== 'abort') this.idOf.delete(state.requestId);
    return {
      type: 'finished',
      id: state.requestId,
      reason,
      promptTokens: seq.numPromptTokens,
      cachedTokens: seq.numCachedPromptTokens,
      completionTokens: seq.numGenerated,
      timing: this.timing(state),
    };
  }

  /** vLLM's phases of a request that ends now; phases it never reached last 0. */
  private timing(s: RequestState): RequestTiming {
    const end = this.now();
    const scheduled = s.scheduledAt ?? end;
    const first = s.firstTokenAt ?? end;
    const last = s.lastTokenAt ?? first;
    return { queueSeconds: (scheduled - s.submittedAt) / 1000, prefillSeconds: (first - scheduled) / 1000, decodeSeconds: (last - first) / 1000 };
  }

  stats(): EngineStats {
    const s = this.scheduler.stats;
    return {
      running: s.running,
      waiting: s.waiting,
      kvBlocksUsed: s.blocksUsed,
      kvBlocksFree: s.blocksFree,
      kvBlocksTotal: s.blocksTotal,
      prefixCacheHitTokens: s.prefixCacheHitTokens,
      prefixCacheQueryTokens: s.prefixCacheQueryTokens,
      preemptions: s.preemptions,
      steps: this.steps,
    };
  }
}
