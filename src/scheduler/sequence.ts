// One request as the scheduler sees it: its tokens (prompt then generated), its place in the
// paged KV cache, and where it is in its life (waiting → running → finished, or preempted back to the queue).

/** Engine-assigned request id; numbers keep the per-step maps cheap. */
export type SeqId = number;

/** `preempted`: was running, lost its KV blocks, waits at the head of the queue to be recomputed. */
export type SequenceStatus = 'waiting' | 'running' | 'finished' | 'preempted';

export type FinishReason = 'stop' | 'length' | 'abort' | 'error';

export interface SequenceInit<P> {
  id: SeqId;
  promptIds: ArrayLike<number>;
  /** Most tokens to generate (≥ 1). */
  maxTokens: number;
  /** Sampling one of these ends the sequence with reason `stop` (the token is still reported). */
  stopIds?: Iterable<number>;
  /** Whatever the engine needs per request (sampling params…); the scheduler never looks inside. */
  params?: P;
  /** Prefix-cache isolation: only sequences with the same salt share cached blocks (absent or '': the shared chain). */
  cacheSalt?: string | undefined;
}

export class Sequence<P = unknown> {
  readonly id: SeqId;
  /** Prompt ids followed by generated ids: after a preemption all of them are prefilled again. */
  readonly tokens: number[];
  readonly numPromptTokens: number;
  readonly maxTokens: number;
  readonly stopIds: ReadonlySet<number>;
  readonly params: P | undefined;
  /** '' when the request has none. */
  readonly cacheSalt: string;

  status: SequenceStatus = 'waiting';
  finishReason: FinishReason | undefined;
  /** Admission order, set by the scheduler; lower = older = higher priority. */
  arrival = -1;
  /** Physical KV block ids, in position order. */
  blockTable: number[] = [];
  /** Tokens whose K/V are in the cache (a prefix of `tokens`). */
  numCached = 0;
  /** Prompt tokens served from the prefix cache at first admission (OpenAI usage `cached_tokens`). */
  numCachedPromptTokens = 0;
  numPreemptions = 0;

  // Bookkeeping of the scheduler and block manager; not for the engine.
  /** Tokens planned in the step now being planned (0 when not in it). */
  plannedTokens = 0;
  /** Launched steps not yet done that hold this sequence (its blocks are freed only when 0). */
  inFlight = 0;
  /** Leading blocks already offered to the prefix cache. */
  numRegisteredBlocks = 0;
  /** The cached block that holds the same content as block numRegisteredBlocks-1 (-1: none), and its generation. */
  chainBlock = -1;
  chainGeneration = 0;
  /** Memo of the chained hash of each full block (content-only, so it survives preemption). */
  readonly blockKeys: number[] = [];

  constructor(init: SequenceInit<P>) {
    if (!Number.isSafeInteger(init.id)) throw new RangeError(`sequence id must be an integer, got ${init.id}`);
    if (init.promptIds.length === 0) throw new RangeError(`sequence ${init.id}: empty prompt`);
    if (!Number.isInteger(init.maxTokens) || init.maxTokens < 1) {
      throw new RangeError(`sequence ${init.id}: maxTokens must be an integer ≥ 1, got ${init.maxTokens}`);
    }
    this.id = init.id;
    this.tokens = Array.from(init.promptIds);
    this.numPromptTokens = this.tokens.length;
    this.maxTokens = init.maxTokens;
    this.stopIds = new Set(init.stopIds ?? []);
    this.params = init.params;
    this.cacheSalt = init.cacheSalt ?? '';
  }

  get length(): number {
    return this.tokens.length;
  }

  get numGenerated(): number {
    return this.tokens.length - this.numPromptTokens;
  }

  get promptIds(): number[] {
    return this.tokens.slice(0, this.numPromptTokens);
  }

  get generatedIds(): number[] {
    return this.tokens.slice(this.numPromptTokens);
  }

  /** Tokens still to run through the model before the next token can be sampled (1 = decoding). */
  get numUncomputed(): number {
    return this.tokens.length - this.numCached;
  }

  get isFinished(): boolean {
    return this.status === 'finished';
  }
}
