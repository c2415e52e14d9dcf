// A stand-in for the model and its runner, to test and benchmark the scheduler with no engine: a
// deterministic "model" whose K/V entry at a position summarizes the whole prefix (as a transformer's does)
// and whose next token depends on every K/V entry it reads through the block table — so a wrong block
// table, a block shared when it must not be, or a stale prefix-cache hit changes the output.
import type { ForwardBatch } from '../models/forward-batch.js';
import type { Scheduler } from './scheduler.js';
import type { FinishReason, SeqId, Sequence } from './sequence.js';
import type { StepPlan } from './step-plan.js';

const UNWRITTEN = 0x7fffffff;

function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) | 0;
}

export class FakeModel {
  constructor(
    readonly vocabSize: number,
    readonly seed = 1,
  ) {}

  /** The "K/V" written at `pos`: a function of the entry before it (the whole prefix) and the token. */
  kvEntry(previous: number, token: number, pos: number): number {
    const e = mix(previous ^ mix(token + Math.imul(pos, 0x9e3779b9)));
    return e === UNWRITTEN ? 0 : e;
  }

  /** Next token from all K/V entries of the sequence, like attention reads them all. */
  nextToken(entries: ArrayLike<number>, len: number): number {
    let h = this.seed;
    for (let i = 0; i < len; i++) h = mix(h + entries[i]!);
    return (h >>> 0) % this.vocabSize;
  }

  /** The oracle: what this request yields run alone, with no cache, blocks or scheduler. */
  generateAlone(prompt: ArrayLike<number>, maxTokens: number, stopIds: ReadonlySet<number>): { tokens: number[]; finishReason: FinishReason } {
    const entries: number[] = [];
    const all = Array.from(prompt);
    const push = (t: number) => entries.push(this.kvEntry(entries.length === 0 ? this.seed : entries[entries.length - 1]!, t, entries.length));
    all.forEach(push);
    const out: number[] = [];
    for (;;) {
      const t = this.nextToken(entries, entries.length);
      out.push(t);
      if (stopIds.has(t)) return { tokens: out, finishReason: 'stop' };
      if (out.length >= maxTokens) return { tokens: out, finishReason: 'length' };
      push(t);
    }
  }
}

/** Runs a ForwardBatch against a simulated paged KV cache, checking every slot it reads was written. */
export class FakeRunner {
  private readonly kv: Int32Array;
  /** Tokens run through the model, prefill and decode. */
  tokensComputed = 0;

  constructor(
    readonly model: FakeModel,
    numBlocks: number,
    readonly blockSize: number,
  ) {
    this.kv = new Int32Array(numBlocks * blockSize).fill(UNWRITTEN);
  }

  /** Returns one sampled token per chunk that wants logits, in batch order. */
  step(batch: ForwardBatch): number[] {
    const written = new Set<number>();
    const out: number[] = [];
    const entries: number[] = [];
    for (const [i, c] of batch.sequences.entries()) {
      const slot = (pos: number): number => {
        const block = c.blockTable[Math.floor(pos / this.blockSize)];
        if (block === undefined) throw new Error(`chunk ${i}: no block for position ${pos}`);
        return block * this.blockSize + (pos % this.blockSize);
      };
      entries.length = 0;
      for (let p = 0; p < c.cachedLen; p++) {
        const e = this.kv[slot(p)]!;
        if (e === UNWRITTEN) throw new Error(`chunk ${i}: position ${p} read from a KV slot never written`);
        entries.push(e);
      }
      for (let j = 0; j < c.tokens.length; j++) {
        const pos = c.cachedLen + j;
        const e = this.model.kvEntry(pos === 0 ? this.model.seed : entries[pos - 1]!, c.tokens[j]!, pos);
        const s = slot(pos);
        if (written.has(s)) throw new Error(`chunk ${i}: KV slot ${s} written twice in one step`);
        written.add(s);
        this.kv[s] = e;
        entries.push(e);
      }
      this.tokensComputed += c.tokens.length;
      if (c.wantLogits) out.push(this.model.nextToken(entries, entries.length));
    }
    return out;
  }
}

export interface Arrival {
  /** Engine step before which the request is submitted. */
  step: number;
  seq: Sequence;
}

export interface DriveResult {
  tokens: Map<SeqId, number[]>;
  finishReasons: Map<SeqId, FinishReason>;
  /** Step at which each request was first in a plan. */
  firstScheduled: Map<SeqId, number>;
  steps: number;
}

/**
 * The engine loop over the fake runner: submit due arrivals, schedule, run, apply. `onPlan` sees each
 * plan before it runs (to check invariants, or abort something); throws when `maxSteps` pass first.
 */
export function driveToCompletion(
  scheduler: Scheduler,
  runner: FakeRunner,
  arrivals: readonly Arrival[],
  opts: { maxSteps?: number; onPlan?: (plan: StepPlan, step: number) => void } = {},
): DriveResult {
  const pending = [...arrivals].sort((a, b) => a.step - b.step);
  const res: DriveResult = { tokens: new Map(), finishReasons: new Map(), firstScheduled: new Map(), steps: 0 };
  const maxSteps = opts.maxSteps ?? 1_000_000;
  let next = 0;
  for (let step = 0; next < pending.length || scheduler.hasWork(); step++) {
    if (step >= maxSteps) throw new Error(`no completion after ${maxSteps} steps: ${JSON.stringify(scheduler.stats)}`);
    while (next < pending.length && pending[next]!.step <= step) {
      const { seq } = pending[next++]!;
      scheduler.add(seq);
      res.tokens.set(seq.id, []);
    }
    const plan = scheduler.schedule();
    if (!plan) {
      if (scheduler.hasWork()) throw new Error(`step ${step}: nothing scheduled with work left: ${JSON.stringify(scheduler.stats)}`);
      continue;
    }
    opts.onPlan?.(plan, step);
    for (const e of plan.entries) if (!res.firstScheduled.has(e.seq.id)) res.firstScheduled.set(e.seq.id, step);
    const events = scheduler.onStepDone(plan, runner.step(plan.batch));
    for (const ev of events) {
      if (ev.token !== undefined) res.tokens.get(ev.seqId)!.push(ev.token);
      if (ev.finishReason) res.finishReasons.set(ev.seqId, ev.finishReason);
    }
    res.steps = step + 1;
  }
  return res;
}

/**
 * Block-accounting invariants: a block's reference count equals the number of running sequences holding
 * it; a block held by several is a full, cached prefix block of each; used blocks are exactly those held.
 */
export function checkBlockInvariants(scheduler: Scheduler): void {
  const bm = scheduler.blocks;
  const owners = new Map<number, number>();
  for (const seq of scheduler.runningSequences()) {
    const need = Math.ceil((seq.numCached + seq.plannedTokens) / bm.blockSize);
    if (seq.blockTable.length !== need) {
      throw new Error(`sequence ${seq.id}: ${seq.blockTable.length} blocks for ${seq.numCached}+${seq.plannedTokens} tokens`);
    }
    const fullBlocks = Math.floor(seq.numCached / bm.blockSize);
    seq.blockTable.forEach((id, b) => {
      owners.set(id, (owners.get(id) ?? 0) + 1);
      if (bm.refCount(id) > 1 && (b >= fullBlocks || !bm.cache?.hasContent(id))) {
        throw new Error(`block ${id} (index ${b} of sequence ${seq.id}) is shared but is not a full cached prefix block`);
      }
    });
  }
  for (const seq of scheduler.waitingSequences()) {
    if (seq.blockTable.length > 0) throw new Error(`waiting sequence ${seq.id} holds blocks`);
  }
  for (let id = 0; id < bm.numBlocks; id++) {
    if (bm.refCount(id) !== (owners.get(id) ?? 0)) {
      throw new Error(`block ${id}: refcount ${bm.refCount(id)} but ${owners.get(id) ?? 0} holders`);
    }
  }
  if (bm.numUsed !== owners.size) throw new Error(`${bm.numUsed} blocks used but ${owners.size} held`);
}
