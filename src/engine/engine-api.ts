// The boundary between the server tier (HTTP thread) and the engine (worker thread).
// The server hands in token ids and sampling parameters; the engine hands back token ids
// per step. Text (templates, detokenization, stop strings) stays on the server side.
import type { SamplingParams } from './sampling-params.js';

export interface GenerationRequest {
  /** Unique per request (and per choice when n > 1). */
  id: string;
  promptIds: number[];
  sampling: SamplingParams;
  /** Tokens to generate at most (already clamped to the server's --max_new_tokens). */
  maxTokens: number;
  /** Token ids that end generation (EOS, EOT…); empty with ignore_eos. */
  stopIds: number[];
  /**
   * Prefix-cache isolation domain: only requests with the same salt share cached KV blocks (absent: the
   * shared domain). The server derives it from the API key and the request's cache_salt (cacheSaltFor).
   */
  cacheSalt?: string | undefined;
}

export interface TokenLogprobInfo {
  logprob: number;
  top: { token: number; logprob: number }[] | undefined;
}

export type FinishReason = 'stop' | 'length' | 'abort' | 'error';

/**
 * Where a request's time went inside the engine, in seconds: vLLM's request phases, which dashboards chart.
 * Durations, not timestamps: the engine's clock (a worker thread's performance.now()) has another origin than
 * the server's.
 */
export interface RequestTiming {
  /** Submitted → first scheduled (left the waiting queue; a later preemption's wait is not counted). */
  queueSeconds: number;
  /** First scheduled → first token: the prompt's prefill, all its chunks. Ended before a token: until the end. */
  prefillSeconds: number;
  /** First token → last token (0 with fewer than two tokens). */
  decodeSeconds: number;
}

/** One engine step as metrics see it: how much work the batch held. */
export interface StepRecord {
  /** Tokens run through the model (prefill chunks + one per decode). */
  tokens: number;
  /** Of those, prompt tokens (prefill chunks, recomputation after a preemption included); prefix-cache hits are not run. */
  prefillTokens: number;
}

export type EngineEvent =
  | { type: 'tokens'; id: string; tokens: number[]; logprobs: TokenLogprobInfo[] | undefined }
  | {
      type: 'finished';
      id: string;
      reason: FinishReason;
      /** For 'error': what went wrong, for the 500 body. */
      error?: string;
      promptTokens: number;
      /** Prompt tokens served from the prefix cache. */
      cachedTokens: number;
      completionTokens: number;
      /** Absent where no engine ran the request (a worker that died, a fake). */
      timing?: RequestTiming | undefined;
    };

export interface EngineStats {
  running: number;
  waiting: number;
  kvBlocksUsed: number;
  kvBlocksFree: number;
  kvBlocksTotal: number;
  prefixCacheHitTokens: number;
  prefixCacheQueryTokens: number;
  preemptions: number;
  steps: number;
}

/** An engine's stats before its first step: nothing running, no cache in use. */
export function emptyEngineStats(): EngineStats {
  return {
    running: 0, waiting: 0, kvBlocksUsed: 0, kvBlocksFree: 0, kvBlocksTotal: 0,
    prefixCacheHitTokens: 0, prefixCacheQueryTokens: 0, preemptions: 0, steps: 0,
  };
}

/** What the server needs of an engine, in the same thread or across a worker boundary. */
export interface EngineClient {
  /** Queues a request. Resolves once the engine has admitted it, or rejects with a
   * RequestRejectedError (too large, queue full) before any event; after admission,
   * events arrive through `onEvent` until exactly one 'finished' event. */
  submit(req: GenerationRequest, onEvent: (e: EngineEvent) => void): Promise<void>;
  /** Cancels a request; it finishes with reason 'abort' within one engine step. */
  abort(id: string): void;
  stats(): EngineStats;
  /**
   * Calls `listener` with each step the engine runs (per-step metrics: tokens per iteration, prefill
   * throughput); returns the function that stops it.
   */
  onStep(listener: (step: StepRecord) => void): () => void;
  shutdown(): Promise<void>;
  /** True while the model is still loading: the server then answers 503 `model_loading`. Absent: always ready. */
  loading?(): boolean;
  /** Tokens one sequence can hold at most (prompt + completion: the KV cache's size); absent: only the model bounds it. */
  readonly maxSequenceTokens?: number | undefined;
}

export class RequestRejectedError extends Error {
  override name = 'RequestRejectedError';
  constructor(
    readonly kind: 'too_large' | 'queue_full' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}
