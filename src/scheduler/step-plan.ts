// What the scheduler decided for one engine step: a ForwardBatch for the model, and for each of its
// chunks which sequence it belongs to and whether a token is sampled after it.
import type { ForwardBatch, SequenceChunk } from '../models/forward-batch.js';
import type { FinishReason, SeqId, Sequence } from './sequence.js';

export interface PlanEntry<P = unknown> {
  seq: Sequence<P>;
  /** Also batch.sequences[i] for entry i. `blockTable` is the sequence's live table: valid until onStepDone. */
  chunk: SequenceChunk;
  /** A token is sampled after this chunk (it ends the uncomputed tokens: the prompt's end, or a decode). */
  sample: boolean;
  /** Where the sampled token goes in seq.tokens (set when the step is launched). */
  tokenIndex?: number;
}

/**
 * A launched step's sampled token is not known until the step is done, but the next step may be
 * planned before that: seq.tokens holds this stand-in meanwhile (row j of the launched step's
 * sampled tokens), and chunks of the next step may carry it as an input (see fillPendingTokens).
 */
export function pendingToken(row: number): number {
  return -1 - row;
}

/**
 * Replaces the stand-ins in a plan's chunks by the launched step's sampled tokens, before the
 * plan runs. Returns how many were replaced.
 */
export function fillPendingTokens(plan: StepPlan, sampled: ArrayLike<number>): number {
  let n = 0;
  for (const e of plan.entries) {
    const tokens = e.chunk.tokens as number[];
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t >= 0) continue;
      const v = sampled[-1 - t];
      if (v === undefined) throw new Error(`step ${plan.step}: stand-in token for row ${-1 - t} of ${sampled.length} sampled`);
      tokens[i] = v;
      n++;
    }
  }
  return n;
}

export class StepPlan<P = unknown> {
  readonly batch: ForwardBatch;
  /** Set by Scheduler.launch: the plan's effects are applied, its tokens are still to come. */
  launched = false;
  /** Tokens run through the model this step (prefill chunks + decodes). */
  readonly numTokens: number;
  /** Entries that sample; onStepDone takes one token per such entry, in entry order. */
  readonly numSamples: number;

  constructor(
    readonly step: number,
    readonly entries: readonly PlanEntry<P>[],
    /** Sequences preempted while planning this step (requeued for recompute). */
    readonly preempted: readonly SeqId[],
  ) {
    this.batch = { sequences: entries.map((e) => e.chunk) };
    let tokens = 0;
    let samples = 0;
    for (const e of entries) {
      tokens += e.chunk.tokens.length;
      if (e.sample) samples++;
    }
    this.numTokens = tokens;
    this.numSamples = samples;
  }
}

/** What happened to one sequence in a step: a new token, an end, or both. */
export interface SequenceEvent {
  seqId: SeqId;
  token: number | undefined;
  finishReason: FinishReason | undefined;
}
