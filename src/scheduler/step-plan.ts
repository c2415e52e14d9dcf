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
}

export class StepPlan<P = unknown> {
  readonly batch: ForwardBatch;
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
