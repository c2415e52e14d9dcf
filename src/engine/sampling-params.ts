// Per-request sampling parameters: their defaults, meaning, and validation of user-supplied values.
// The HTTP layer maps OpenAI / Ollama fields onto this shape and calls validateSamplingParams once per request.

export interface SamplingParams {
  /** 0 → greedy (argmax, ties → lowest id). Values below 1e-5 are treated as 0, as vLLM does, to avoid overflow. */
  temperature: number;
  /** Keep the k most likely tokens; 0 or -1 → off. */
  topK: number;
  /** Nucleus: keep the smallest most-likely set with mass ≥ topP; 1 → off. */
  topP: number;
  /** Keep tokens with p ≥ minP · p_max; 0 → off. */
  minP: number;
  /** HF/vLLM semantics over prompt + generated tokens: logit > 0 → logit / p, else logit · p; 1 → off. */
  repetitionPenalty: number;
  /** OpenAI semantics over generated tokens only: logit −= presencePenalty if the token occurred. */
  presencePenalty: number;
  /** OpenAI semantics over generated tokens only: logit −= frequencyPenalty · count. */
  frequencyPenalty: number;
  /** Token id → bias added to its logit before everything else (OpenAI range −100…100). */
  logitBias: ReadonlyMap<number, number>;
  /** Per request; same seed and same logits → same tokens. undefined → seeded from the OS. */
  seed: number | undefined;
  /**
   * 0 → no logprobs. N ≥ 1 → the chosen token's logprob plus the N most likely tokens' logprobs.
   * Semantics are vLLM's default (`logprobs_mode = raw_logprobs`): log-softmax of the model's raw logits,
   * before logit_bias, penalties, temperature and truncation. For OpenAI `logprobs: true, top_logprobs: 0`,
   * ask for 1 and drop the list (the cost is the same).
   */
  logprobs: number;
}

/** OpenAI's and vLLM's default cap on top_logprobs. */
export const MAX_LOGPROBS = 20;

export const defaultSamplingParams: SamplingParams = Object.freeze({
  temperature: 1,
  topK: -1,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  logitBias: new Map<number, number>(),
  seed: undefined,
  logprobs: 0,
});

/** A sampling parameter out of range; `field` names it as SamplingParams spells it. */
export class SamplingParamError extends Error {
  override readonly name = 'SamplingParamError';
  constructor(
    readonly field: keyof SamplingParams,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export interface ValidateOptions {
  /** When known, logit_bias token ids are checked against it. */
  vocabSize?: number;
}

function finite(field: keyof SamplingParams, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new SamplingParamError(field, `must be a finite number, got ${String(v)}`);
  }
  return v;
}

function integer(field: keyof SamplingParams, v: unknown): number {
  const n = finite(field, v);
  if (!Number.isInteger(n)) throw new SamplingParamError(field, `must be an integer, got ${n}`);
  if (!Number.isSafeInteger(n)) throw new SamplingParamError(field, `must be below 2^53 in magnitude, got ${n}`);
  return n;
}

function inRange(field: keyof SamplingParams, v: number, lo: number, hi: number, what: string): number {
  if (!(v >= lo && v <= hi)) throw new SamplingParamError(field, `must be ${what}, got ${v}`);
  return v;
}

function validateLogitBias(v: unknown, vocabSize: number | undefined): ReadonlyMap<number, number> {
  if (!(v instanceof Map)) throw new SamplingParamError('logitBias', 'must be a Map of token id → bias');
  for (const [id, bias] of v as Map<unknown, unknown>) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new SamplingParamError('logitBias', `token id must be a non-negative integer, got ${String(id)}`);
    }
    if (vocabSize !== undefined && id >= vocabSize) {
      throw new SamplingParamError('logitBias', `token id ${id} is outside the vocabulary (size ${vocabSize})`);
    }
    const b = finite('logitBias', bias);
    inRange('logitBias', b, -100, 100, `in [-100, 100] (token ${id})`);
  }
  return v as ReadonlyMap<number, number>;
}

/** Fills defaults and checks every field; throws SamplingParamError naming the first bad field. */
export function validateSamplingParams(p: Partial<SamplingParams>, opts: ValidateOptions = {}): SamplingParams {
  const q = { ...defaultSamplingParams, ...p };
  // An explicit `undefined` in `p` means "not given": fall back to the default rather than fail.
  for (const k of Object.keys(q) as (keyof SamplingParams)[]) {
    if (q[k] === undefined && k !== 'seed') (q as Record<string, unknown>)[k] = defaultSamplingParams[k];
  }
  const temperature = finite('temperature', q.temperature);
  if (temperature < 0) throw new SamplingParamError('temperature', `must be ≥ 0, got ${temperature}`);
  const topK = integer('topK', q.topK);
  if (topK < -1) throw new SamplingParamError('topK', `must be -1, 0 (off) or a positive integer, got ${topK}`);
  const topP = finite('topP', q.topP);
  if (!(topP > 0 && topP <= 1)) throw new SamplingParamError('topP', `must be in (0, 1], got ${topP}`);
  const minP = inRange('minP', finite('minP', q.minP), 0, 1, 'in [0, 1]');
  const repetitionPenalty = finite('repetitionPenalty', q.repetitionPenalty);
  if (!(repetitionPenalty > 0)) {
    throw new SamplingParamError('repetitionPenalty', `must be > 0, got ${repetitionPenalty}`);
  }
  const presencePenalty = inRange('presencePenalty', finite('presencePenalty', q.presencePenalty), -2, 2, 'in [-2, 2]');
  const frequencyPenalty = inRange(
    'frequencyPenalty',
    finite('frequencyPenalty', q.frequencyPenalty),
    -2,
    2,
    'in [-2, 2]',
  );
  const logitBias = validateLogitBias(q.logitBias, opts.vocabSize);
  const seed = q.seed === undefined ? undefined : integer('seed', q.seed);
  const logprobs = inRange('logprobs', integer('logprobs', q.logprobs), 0, MAX_LOGPROBS, `in [0, ${MAX_LOGPROBS}]`);
  return {
    temperature,
    topK,
    topP,
    minP,
    repetitionPenalty,
    presencePenalty,
    frequencyPenalty,
    logitBias,
    seed,
    logprobs,
  };
}
