// Continuous-batching FCFS scheduler over a paged KV cache: each step takes every running decode,
// then fills the token budget with prefill chunks of the oldest sequences; blocks are allocated as tokens
// arrive, and when they run out the newest running sequence is preempted (recomputed later).
import { BlockManager } from './block-manager.js';
import { QueueFullError, RequestTooLargeError } from './errors.js';
import { PrefixCache } from './prefix-cache.js';
import type { FinishReason, SeqId, Sequence } from './sequence.js';
import { pendingToken, StepPlan, type PlanEntry, type SequenceEvent } from './step-plan.js';

export interface SchedulerConfig {
  /** KV cache size in blocks (cache_lens / block_size). */
  numBlocks: number;
  blockSize: number;
  /** Token budget of one step (decodes count 1 each). */
  chunkSize: number;
  /** Most sequences in one step. */
  maxBatchSize: number;
  /** Most requests waiting for admission; more → QueueFullError. */
  maxQueue: number;
  /** Reuse KV blocks of identical prefixes (default on). */
  prefixCaching?: boolean;
  /** The model's context: prompt + max_tokens must fit in it. */
  maxModelLen: number;
  /** Model identity mixed into prefix-cache keys. */
  cacheSalt?: string;
  /**
   * Hold decodes while any admitted or waiting prompt is still being read (llama-batched-bench's order,
   * for comparable benchmarks; serving interleaves them). Decodes still run when nothing else can.
   */
  prefillFirst?: boolean;
}

export interface SchedulerStats {
  running: number;
  waiting: number;
  blocksTotal: number;
  blocksUsed: number;
  blocksFree: number;
  /** Free blocks still holding reusable prefix content (counted in blocksFree). */
  blocksCachedFree: number;
  prefixCacheQueryTokens: number;
  prefixCacheHitTokens: number;
  /** hit / query tokens over all admissions (0 before any). */
  prefixCacheHitRate: number;
  preemptions: number;
}

export class Scheduler<P = unknown> {
  readonly blocks: BlockManager;
  private readonly cfg: Required<SchedulerConfig>;
  /**
   * Sequences holding KV blocks, oldest first. Invariant: every running sequence arrived before every
   * waiting one (admission is FCFS and the newest running is the one preempted to the queue's head).
   */
  private readonly running: Sequence<P>[] = [];
  private readonly waiting: Sequence<P>[] = [];
  private readonly byId = new Map<SeqId, Sequence<P>>();
  /**
   * Running sequences at once: at most one step's worth, so every decode fits each step. chunkSize below
   * maxBatchSize also bounds it, or decodes alone could overrun the token budget.
   */
  private readonly maxRunning: number;
  /** The plan schedule() returned, until it is launched (or done). */
  private planned: StepPlan<P> | undefined;
  /** Launched plans not yet done, oldest first. */
  private readonly launched: StepPlan<P>[] = [];
  private nextArrival = 0;
  private stepCount = 0;
  private numPreemptions = 0;

  constructor(config: SchedulerConfig) {
    for (const k of ['numBlocks', 'blockSize', 'chunkSize', 'maxBatchSize', 'maxQueue', 'maxModelLen'] as const) {
      const v = config[k];
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`scheduler: ${k} must be an integer ≥ 1, got ${v}`);
    }
    this.cfg = { prefixCaching: true, cacheSalt: '', prefillFirst: false, ...config };
    const cache = this.cfg.prefixCaching ? new PrefixCache(config.numBlocks, config.blockSize, this.cfg.cacheSalt) : undefined;
    this.blocks = new BlockManager(config.numBlocks, config.blockSize, cache);
    this.maxRunning = Math.min(config.maxBatchSize, config.chunkSize);
  }

  /** Queues a request, or throws RequestTooLargeError / QueueFullError without queueing it. */
  add(seq: Sequence<P>): void {
    if (seq.status !== 'waiting' || seq.arrival >= 0) throw new Error(`sequence ${seq.id} was already submitted`);
    if (this.byId.has(seq.id)) throw new Error(`sequence id ${seq.id} is already in the scheduler`);
    const prompt = seq.numPromptTokens;
    const need = prompt + seq.maxTokens;
    const what = `prompt (${prompt} tokens) + max_tokens (${seq.maxTokens}) = ${need} tokens`;
    if (need > this.cfg.maxModelLen) {
      throw new RequestTooLargeError(`${what} exceeds the model's context of ${this.cfg.maxModelLen} tokens`, prompt, seq.maxTokens, this.cfg.maxModelLen);
    }
    const cacheTokens = this.cfg.numBlocks * this.cfg.blockSize;
    if (need > cacheTokens) {
      throw new RequestTooLargeError(
        `${what} exceeds the whole KV cache of ${cacheTokens} tokens (${this.cfg.numBlocks} blocks of ${this.cfg.blockSize})`,
        prompt, seq.maxTokens, cacheTokens,
      );
    }
    if (this.waiting.length >= this.cfg.maxQueue) throw new QueueFullError(this.cfg.maxQueue);
    seq.arrival = this.nextArrival++;
    this.waiting.push(seq);
    this.byId.set(seq.id, seq);
  }

  /**
   * Plans the next step; undefined when there is nothing to run. Before the next call, either finish
   * the plan (onStepDone / onStepFailed) or launch it: then the next step can be planned while this
   * one runs, its sequences' tokens standing in for the ones still to come.
   */
  schedule(): StepPlan<P> | undefined {
    if (this.planned) throw new Error(`schedule(): step ${this.planned.step} is planned but neither launched nor done`);
    const planned: Sequence<P>[] = [];
    const preempted: SeqId[] = [];
    const budget = { left: this.cfg.chunkSize };
    const preemptNewest = (): void => {
      const victim = this.running.pop()!;
      if (victim.plannedTokens > 0) {
        budget.left += victim.plannedTokens;
        victim.plannedTokens = 0;
        planned.splice(planned.indexOf(victim), 1);
      }
      this.blocks.free(victim);
      victim.status = 'preempted';
      victim.numPreemptions++;
      this.waiting.unshift(victim);
      preempted.push(victim.id);
      this.numPreemptions++;
    };
    const plan = (seq: Sequence<P>, n: number): void => {
      this.blocks.append(seq, n);
      seq.plannedTokens = n;
      budget.left -= n;
      planned.push(seq);
    };

    // 1. Decodes, oldest first; one that can't get a block takes them from the newest running sequence
    //    (which may be itself: then it waits at the queue's head).
    const decodes = (): void => {
      for (let i = 0; i < this.running.length; i++) {
        const seq = this.running[i]!;
        if (seq.numUncomputed !== 1 || seq.plannedTokens > 0) continue;
        // Its last token, still to come from a launched step, is its last allowed one.
        if (seq.numGenerated >= seq.maxTokens) continue;
        while (!this.blocks.canAppend(seq, 1) && this.running[this.running.length - 1] !== seq) preemptNewest();
        if (this.blocks.canAppend(seq, 1)) plan(seq, 1);
        else preemptNewest();
      }
    };
    const holdDecodes = this.cfg.prefillFirst && (this.waiting.length > 0 || this.running.some((s) => s.numUncomputed > 1));
    if (!holdDecodes) decodes();
    // 2. Partially prefilled sequences, oldest first. Only when no block is free at all does one preempt
    //    newer ones (un-planning their decodes): the oldest sequence always progresses, so nothing deadlocks.
    for (let i = 0; i < this.running.length && budget.left > 0; i++) {
      const seq = this.running[i]!;
      if (seq.plannedTokens > 0 || seq.numUncomputed <= 1) continue;
      while (this.blocks.appendableTokens(seq) === 0 && this.running[this.running.length - 1] !== seq) preemptNewest();
      const n = Math.min(seq.numUncomputed, budget.left, this.blocks.appendableTokens(seq));
      if (n > 0) plan(seq, n);
    }
    // 3. Admission, strictly FCFS: stop at the first request that can't start. Not in a step that had to
    //    preempt, which would only refill the cache to preempt again.
    if (preempted.length === 0 || planned.length === 0) this.admit(budget, plan);
    if (holdDecodes && planned.length === 0) decodes();

    if (planned.length === 0) return undefined;
    const entries = planned.map((seq) => this.entryOf(seq));
    this.planned = new StepPlan(++this.stepCount, entries, preempted);
    return this.planned;
  }

  private admit(budget: { left: number }, plan: (seq: Sequence<P>, n: number) => void): void {
    while (budget.left > 0 && this.running.length < this.maxRunning && this.waiting.length > 0) {
      const seq = this.waiting[0]!;
      const reused = this.blocks.attachCachedPrefix(seq);
      const n = Math.min(seq.numUncomputed, budget.left, this.blocks.appendableTokens(seq));
      if (n === 0) {
        this.blocks.free(seq);
        return;
      }
      const cache = this.blocks.cache;
      if (cache) {
        cache.queryTokens += seq.length;
        cache.hitTokens += reused;
      }
      if (seq.numPreemptions === 0) seq.numCachedPromptTokens = reused;
      this.waiting.shift();
      seq.status = 'running';
      this.running.push(seq);
      plan(seq, n);
    }
  }

  private entryOf(seq: Sequence<P>): PlanEntry<P> {
    const start = seq.numCached;
    const end = start + seq.plannedTokens;
    const sample = end === seq.length;
    return {
      seq,
      sample,
      chunk: { cachedLen: start, tokens: seq.tokens.slice(start, end), blockTable: seq.blockTable, wantLogits: sample },
    };
  }

  /**
   * Applies the plan's effects before its tokens are known: its tokens count as cached and each
   * sampling sequence gets a stand-in token (pendingToken), so the next step can be planned while
   * this one runs. onStepDone fills the stand-ins in.
   */
  launch(plan: StepPlan<P>): void {
    if (plan !== this.planned) throw new Error(`launch(): step ${plan.step} is not the planned step`);
    this.planned = undefined;
    plan.launched = true;
    this.launched.push(plan);
    let row = 0;
    for (const e of plan.entries) {
      const seq = e.seq;
      seq.plannedTokens = 0;
      seq.inFlight++;
      seq.numCached += e.chunk.tokens.length;
      if (e.sample) {
        e.tokenIndex = seq.tokens.length;
        seq.tokens.push(pendingToken(row++));
      }
    }
  }

  /**
   * Applies a finished step (launching it first if it was not). `sampled` holds one token per
   * sampling entry: a Map by sequence id, or an array in entry order (the runner's logit-row order).
   * Returns each sequence's new token and/or end. Launched steps finish in launch order.
   */
  onStepDone(plan: StepPlan<P>, sampled: ReadonlyMap<SeqId, number> | ArrayLike<number>): SequenceEvent[] {
    this.takeLaunched(plan);
    const isMap = sampled instanceof Map;
    if (!isMap && (sampled as ArrayLike<number>).length !== plan.numSamples) {
      throw new Error(`onStepDone: ${(sampled as ArrayLike<number>).length} sampled tokens for ${plan.numSamples} sampling sequences`);
    }
    const events: SequenceEvent[] = [];
    let j = 0;
    for (const { seq, chunk, sample, tokenIndex } of plan.entries) {
      seq.inFlight--;
      let token: number | undefined;
      if (sample) {
        token = isMap ? (sampled as ReadonlyMap<SeqId, number>).get(seq.id) : (sampled as ArrayLike<number>)[j];
        j++;
        if (token === undefined && seq.status !== 'finished') throw new Error(`onStepDone: no sampled token for sequence ${seq.id}`);
      }
      if (seq.status === 'finished') {
        // Ended (aborted, or by an earlier step's token) while this step ran: its blocks were in use until now.
        if (seq.inFlight === 0) this.blocks.free(seq);
        continue;
      }
      if (seq.status === 'running') this.blocks.registerFullBlocks(seq, chunk.cachedLen + chunk.tokens.length);
      if (token === undefined || tokenIndex === undefined) continue;
      seq.tokens[tokenIndex] = token;
      const generated = tokenIndex + 1 - seq.numPromptTokens;
      const reason: FinishReason | undefined = seq.stopIds.has(token) ? 'stop' : generated >= seq.maxTokens ? 'length' : undefined;
      events.push({ seqId: seq.id, token, finishReason: reason });
      if (reason) {
        seq.tokens.length = tokenIndex + 1; // a later step's stand-in, if any, is not its token
        this.finishSequence(seq, reason);
      }
    }
    return events;
  }

  /** The runner failed this step (launched or only planned): its sequences end with `error` (the others go on). */
  onStepFailed(plan: StepPlan<P>): SequenceEvent[] {
    const wasLaunched = plan.launched;
    if (wasLaunched) this.takeLaunched(plan);
    else if (plan === this.planned) this.planned = undefined;
    else throw new Error(`step ${plan.step} is neither planned nor launched`);
    const events: SequenceEvent[] = [];
    for (const { seq } of plan.entries) {
      seq.plannedTokens = 0;
      if (wasLaunched) seq.inFlight--;
      if (seq.status === 'finished') {
        if (seq.inFlight === 0) this.blocks.free(seq);
      } else {
        this.finishSequence(seq, 'error');
        events.push({ seqId: seq.id, token: undefined, finishReason: 'error' });
      }
    }
    return events;
  }

  /**
   * Cancels a request (client gone) or fails it. Its blocks are freed now, or when its last planned or
   * launched step is done. Returns its final event; undefined when the id is unknown or already finished.
   */
  abort(seqId: SeqId, reason: 'abort' | 'error' = 'abort'): SequenceEvent | undefined {
    if (!this.byId.has(seqId)) return undefined;
    const seq = this.byId.get(seqId)!;
    dropPendingTokens(seq);
    this.finishSequence(seq, reason);
    return { seqId, token: undefined, finishReason: reason };
  }

  get(seqId: SeqId): Sequence<P> | undefined {
    return this.byId.get(seqId);
  }

  /** Unfinished requests (running or waiting). */
  get size(): number {
    return this.byId.size;
  }

  hasWork(): boolean {
    return this.byId.size > 0;
  }

  runningSequences(): readonly Sequence<P>[] {
    return this.running;
  }

  waitingSequences(): readonly Sequence<P>[] {
    return this.waiting;
  }

  get stats(): SchedulerStats {
    const cache = this.blocks.cache;
    return {
      running: this.running.length,
      waiting: this.waiting.length,
      blocksTotal: this.blocks.numBlocks,
      blocksUsed: this.blocks.numUsed,
      blocksFree: this.blocks.numFree,
      blocksCachedFree: this.blocks.numCachedFree,
      prefixCacheQueryTokens: cache?.queryTokens ?? 0,
      prefixCacheHitTokens: cache?.hitTokens ?? 0,
      prefixCacheHitRate: cache?.hitRate ?? 0,
      preemptions: this.numPreemptions,
    };
  }

  /** Takes a plan off the launched list (launching it first where it was only planned). */
  private takeLaunched(plan: StepPlan<P>): void {
    if (!plan.launched) this.launch(plan);
    if (plan !== this.launched[0]) throw new Error(`step ${plan.step} is not the oldest launched step`);
    this.launched.shift();
  }

  /** Ends a running or queued sequence; its blocks go back unless a step still uses them (then at its end). */
  private finishSequence(seq: Sequence<P>, reason: FinishReason): void {
    const queue = seq.status === 'running' ? this.running : this.waiting;
    const i = queue.indexOf(seq);
    if (i >= 0) queue.splice(i, 1);
    if (seq.plannedTokens === 0 && seq.inFlight === 0) this.blocks.free(seq);
    this.byId.delete(seq.id);
    seq.status = 'finished';
    seq.finishReason = reason;
  }
}

/** Cuts a sequence's tokens before its first stand-in: what it really generated. */
function dropPendingTokens(seq: Sequence): void {
  for (let i = seq.numPromptTokens; i < seq.tokens.length; i++) {
    if (seq.tokens[i]! < 0) {
      seq.tokens.length = i;
      return;
    }
  }
}
