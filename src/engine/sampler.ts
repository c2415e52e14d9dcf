// One request's sampler over one row of logits: logit_bias → repetition → presence/frequency → (greedy if
// temperature 0) → temperature → top-k → top-p → min-p → draw. It never sorts the whole vocabulary.
import { Rng } from './rng.js';
import type { SamplingParams } from './sampling-params.js';

export interface TokenLogprob {
  token: number;
  logprob: number;
}

export interface SampleResult {
  token: number;
  /** The chosen token's logprob (raw log-softmax, see SamplingParams.logprobs); NaN when logprobs is 0. */
  logprob: number;
  /** The `logprobs` most likely tokens, most likely first (ties → lower id); present when logprobs > 0. */
  topLogprobs?: TokenLogprob[];
}

/** Below this a temperature means greedy (vLLM's epsilon): 1/T would make every weight but the max 0 anyway. */
const GREEDY_TEMPERATURE = 1e-5;

// Distances d = (max − logit) / T are bucketed BINS_PER_UNIT to a unit up to D_MAX. A token with d ≥ D_MAX has
// weight < e^-64 ≈ 1.6e-28 of the most likely one; even 2^21 of them add less than one double ulp to the
// normaliser, so they are treated as weight 0 (never sampled) and skip the exp.
const BINS_PER_UNIT = 8;
const D_MAX = 64;
const OVERFLOW_BIN = D_MAX * BINS_PER_UNIT;
const NUM_BINS = OVERFLOW_BIN + 1;

// Candidates are sorted as packed doubles (see collect), which leaves 21 bits for the token id.
const ID_SPACE = 2097152;
export const MAX_VOCAB = ID_SPACE;

/** Top-p keeps token j while the mass before it is below topP · Z · (1 − ε): float32 logits of a probability
 * that sits exactly on the boundary (e.g. 0.5 + 0.3 with topP 0.8) must not pull in the next token. */
const TOP_P_REL_TOLERANCE = 1e-6;

// e^-d for 0 ≤ d < D_MAX as 2^(-n/64) · e^r with |r| ≤ ln2/128: a table lookup and a degree-4 polynomial,
// relative error < 4e-14, about 3× faster than Math.exp in V8 (which is not inlined).
const EXP_STEPS = 64;
const STEPS_PER_LN = EXP_STEPS / Math.LN2;
const LN_PER_STEP = Math.LN2 / EXP_STEPS;
const POW2_NEG = new Float64Array(Math.ceil(D_MAX * STEPS_PER_LN) + 2);
for (let n = 0; n < POW2_NEG.length; n++) POW2_NEG[n] = Math.pow(2, -n / EXP_STEPS);

function expNeg(d: number): number {
  const n = (d * STEPS_PER_LN + 0.5) | 0; // round half up; Math.round is not inlined and costs 4× here
  const r = n * LN_PER_STEP - d;
  return POW2_NEG[n]! * (1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24)))));
}

/** Index of the largest value, lowest index among ties; -inf everywhere → 0. */
function argmax(x: Float32Array): number {
  let best = 0;
  let bestVal = x[0]!;
  for (let i = 1; i < x.length; i++) {
    const v = x[i]!;
    if (v > bestVal) {
      bestVal = v;
      best = i;
    }
  }
  return best;
}

/** The n largest values of `x` (ties → lower id), most likely first, and log-softmax normaliser of `x`. */
function rawLogprobs(x: Float32Array, n: number): { lse: number; top: TokenLogprob[] } {
  const k = Math.min(n, x.length);
  const ids = new Int32Array(k);
  const vals = new Float64Array(k).fill(-Infinity);
  let filled = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (filled === k && !(v > vals[k - 1]!)) continue;
    // Insert after every kept value ≥ v, so an equal value seen earlier (lower id) stays ahead.
    let j = filled < k ? filled++ : k - 1;
    while (j > 0 && vals[j - 1]! < v) {
      vals[j] = vals[j - 1]!;
      ids[j] = ids[j - 1]!;
      j--;
    }
    vals[j] = v;
    ids[j] = i;
  }
  const m = vals[0]!;
  let z = 0;
  for (let i = 0; i < x.length; i++) {
    const d = m - x[i]!;
    if (d < D_MAX) z += expNeg(d);
  }
  const lse = m + Math.log(z);
  const top: TokenLogprob[] = [];
  for (let j = 0; j < filled; j++) top.push({ token: ids[j]!, logprob: vals[j]! - lse });
  return { lse, top };
}

/**
 * Scratch shared by every sampler of this thread: sample() is synchronous, so one set suffices, where one per
 * request would pin ~2 MB for a 152k vocabulary for the request's whole life.
 */
const scratch = {
  /** Penalised logits. */
  work: new Float32Array(0),
  /** Per-bin singly linked lists of token ids, built by the histogram pass: head[bin] → next[id] → … → -1. */
  next: new Int32Array(0),
  head: new Int32Array(NUM_BINS),
  count: new Int32Array(NUM_BINS),
  /** Σ e^-d per bin, where the pass computed weights. */
  mass: new Float64Array(NUM_BINS),
  /** Packed sort keys of the candidates, and their weights in sorted order. */
  keys: new Float64Array(0),
  weights: new Float64Array(0),
};

interface DrawContext {
  x: Float32Array;
  /** The largest logit and 1/T: a token's distance is d = (m − x[i]) · invT, its weight e^-d. */
  m: number;
  invT: number;
  p: SamplingParams;
  rng: Rng;
}

/**
 * Temperature, top-k, top-p, min-p and one draw. A histogram of d by bins of 1/8 stands in for a sort: each
 * filter keeps a prefix of the tokens ordered by logit, so every bin before a filter's boundary bin is kept
 * whole and only the boundary bin's tokens are ordered. Two passes over the vocabulary (max, histogram).
 */
function draw(x: Float32Array, p: SamplingParams, rng: Rng): number {
  const V = x.length;
  const m = x[argmax(x)]!;
  if (m === -Infinity) return 0; // every token banned: nothing to draw from
  if (m === Infinity) return x.indexOf(Infinity); // +inf holds all the mass (and would make d NaN)

  const ctx: DrawContext = { x, m, invT: 1 / p.temperature, p, rng };
  const topK = p.topK > 0 && p.topK < V ? p.topK : 0;
  const dCut = p.minP > 0 ? -Math.log(p.minP) : Infinity; // min-p keeps e^-d ≥ minP, i.e. d ≤ dCut
  // Weights are needed where bin masses decide: everywhere for top-p's normaliser and the untruncated draw,
  // up to the cut for min-p alone, nowhere with top-k (its few candidates are weighed after sorting).
  histogram(ctx, topK > 0 ? -1 : p.topP < 1 ? D_MAX : dCut);
  return topK > 0 ? drawTopK(ctx, topK, dCut) : drawByBins(ctx, dCut);
}

function histogram({ x, m, invT }: DrawContext, weighUpTo: number): void {
  const V = x.length;
  if (scratch.next.length < V) scratch.next = new Int32Array(V);
  const { next, head, count, mass } = scratch;
  head.fill(-1);
  count.fill(0);
  mass.fill(0);
  // Backwards, so that each bin's list runs in ascending id order.
  for (let i = V - 1; i >= 0; i--) {
    const d = (m - x[i]!) * invT;
    if (d < D_MAX) { // false for NaN logits too: they never enter a list
      const b = (d * BINS_PER_UNIT) | 0;
      count[b]!++;
      next[i] = head[b]!;
      head[b] = i;
      if (d <= weighUpTo) mass[b]! += expNeg(d);
    }
  }
}

/** Without top-k: top-p's and min-p's boundaries are found on the bins, then only that one bin is sorted. */
function drawByBins(ctx: DrawContext, dCut: number): number {
  const { p, rng } = ctx;
  const { count, mass } = scratch;
  let boundary = OVERFLOW_BIN - 1;
  while (count[boundary] === 0) boundary--; // bin 0 holds the max, so this stops
  let limit = Infinity; // top-p keeps a token while the mass before it is below this
  if (p.topP < 1) {
    let z = 0;
    for (let b = 0; b <= boundary; b++) z += mass[b]!;
    limit = p.topP * z * (1 - TOP_P_REL_TOLERANCE);
    let s = 0;
    for (let b = 0; b < boundary; b++) if ((s += mass[b]!) >= limit) { boundary = b; break; }
  }
  if (dCut < D_MAX) boundary = Math.min(boundary, (dCut * BINS_PER_UNIT) | 0);
  let before = 0; // mass of the bins before the boundary, all kept
  for (let b = 0; b < boundary; b++) before += mass[b]!;

  if (limit === Infinity && dCut >= D_MAX) {
    // Untruncated: the last bin is kept whole; pick a bin by mass, then a token in it.
    let u = rng.nextFloat() * (before + mass[boundary]!);
    let bin = 0;
    while (bin < boundary && (u >= mass[bin]! || count[bin] === 0)) u -= mass[bin++]!;
    return pickInBin(ctx, bin, u);
  }
  const c = collect(ctx, boundary, boundary);
  const kept = cut(c, before, limit, p.minP);
  let u = rng.nextFloat() * (before + massOf(c, kept));
  if (u >= before) return pick(c, kept, u - before);
  let lastFull = boundary - 1; // u < before, so some bin before the boundary holds tokens
  while (count[lastFull] === 0) lastFull--;
  let bin = 0;
  while (bin < lastFull && (u >= mass[bin]! || count[bin] === 0)) u -= mass[bin++]!;
  return pickInBin(ctx, bin, u);
}

/** With top-k: every token up to top-k's boundary bin is sorted (few), then top-p and min-p cut exactly. */
function drawTopK(ctx: DrawContext, topK: number, dCut: number): number {
  const { p, rng } = ctx;
  const count = scratch.count;
  let last = 0;
  for (let c = count[0]!; c < topK && last < OVERFLOW_BIN - 1; ) c += count[++last]!;
  // Top-p's normaliser is the whole top-k mass, so min-p may narrow the bins only when top-p is off.
  if (p.topP === 1 && dCut < D_MAX) last = Math.min(last, (dCut * BINS_PER_UNIT) | 0);
  const all = collect(ctx, 0, last);
  const n = Math.min(topK, all.keys.length);
  const c = { keys: all.keys.subarray(0, n), weights: all.weights };
  const limit = p.topP < 1 ? p.topP * massOf(c, n) * (1 - TOP_P_REL_TOLERANCE) : Infinity;
  const kept = cut(c, 0, limit, p.minP);
  return pick(c, kept, rng.nextFloat() * massOf(c, kept));
}

/** Sorted candidates: packed keys, most likely first, and their weights e^-d in the same order. */
interface Candidates {
  keys: Float64Array;
  weights: Float64Array;
}

/**
 * The tokens of bins first..last, sorted by logit (ties → lower id). Key: the float32 bits flipped to sort as
 * unsigned, times 2^21, plus 2^21 − 1 − id: below 2^53, so a plain numeric sort of doubles does it.
 */
function collect({ x, m, invT }: DrawContext, first: number, last: number): Candidates {
  const { head, next, count } = scratch;
  let n = 0;
  for (let b = first; b <= last; b++) n += count[b]!;
  if (scratch.keys.length < n) {
    scratch.keys = new Float64Array(Math.max(n, 2 * scratch.keys.length));
    scratch.weights = new Float64Array(scratch.keys.length);
  }
  const { keys, weights } = scratch;
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  let j = 0;
  for (let b = first; b <= last; b++) {
    for (let i = head[b]!; i >= 0; i = next[i]!) {
      const u = bits[i]!;
      const ordered = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0; // negatives reversed, below positives
      keys[j++] = ordered * ID_SPACE + (ID_SPACE - 1 - i);
    }
  }
  const sorted = keys.subarray(0, n).sort().reverse();
  for (let r = 0; r < n; r++) weights[r] = expNeg((m - x[idOf(sorted[r]!)]!) * invT);
  return { keys: sorted, weights };
}

function idOf(key: number): number {
  return ID_SPACE - 1 - (key % ID_SPACE);
}

/** How many candidates survive top-p (mass before a token, `before` included, below `limit`) and min-p. */
function cut({ keys, weights }: Candidates, before: number, limit: number, minP: number): number {
  for (let r = 0; r < keys.length; r++) {
    // Weights are relative to the max (weight 1), so min-p's test is w ≥ minP.
    if (before >= limit || weights[r]! < minP) return r;
    before += weights[r]!;
  }
  return keys.length;
}

function massOf({ weights }: Candidates, kept: number): number {
  let s = 0;
  for (let r = 0; r < kept; r++) s += weights[r]!;
  return s;
}

/** The candidate at mass offset u among the first `kept`. */
function pick({ keys, weights }: Candidates, kept: number, u: number): number {
  let r = 0;
  while (r < kept - 1 && (u -= weights[r]!) >= 0) r++;
  return idOf(keys[r]!);
}

/** The token at mass offset u within one bin, walking the bin's list. */
function pickInBin({ x, m, invT }: DrawContext, bin: number, u: number): number {
  const next = scratch.next;
  let i = scratch.head[bin]!;
  // The histogram summed this bin in the opposite order; if rounding leaves u a hair above the walked sum,
  // the bin's last token takes it.
  while (next[i]! >= 0 && (u -= expNeg((m - x[i]!) * invT)) >= 0) i = next[i]!;
  return i;
}

/**
 * One token's logit_bias and penalties, merged (see SequenceSampler.penaltyEntries): x += bias; then, if
 * repetition ≠ 1, x = x > 0 ? x / repetition : x · repetition; then x −= subtract.
 */
export type PenaltyVisitor = (token: number, bias: number, repetition: number, subtract: number) => void;

/**
 * One per request: owns its RNG and the token history the penalties need, so a step costs two passes over the
 * vocabulary plus O(#distinct tokens) for the penalties. `sample` never writes to the logits it is given
 * (penalties go to a scratch copy) and records the token it returns as generated; where the device samples,
 * the engine records its tokens instead, and the device applies penaltyEntries.
 */
export class SequenceSampler {
  readonly params: SamplingParams;
  private readonly rng: Rng;
  /** Prompt and generated tokens: the repetition penalty's domain. */
  private readonly seen = new Set<number>();
  /** Generated tokens only: presence/frequency penalties' domain. */
  private readonly counts = new Map<number, number>();

  constructor(params: SamplingParams, promptIds: ArrayLike<number>) {
    this.params = params;
    this.rng = params.seed === undefined ? Rng.fromEntropy() : Rng.fromSeed(params.seed);
    if (params.repetitionPenalty !== 1) for (let i = 0; i < promptIds.length; i++) this.seen.add(promptIds[i]!);
  }

  sample(logits: Float32Array): SampleResult {
    if (logits.length === 0 || logits.length > MAX_VOCAB) {
      throw new RangeError(`sampler: vocabulary size ${logits.length} outside 1..${MAX_VOCAB}`);
    }
    const p = this.params;
    const x = this.applyPenalties(logits);
    const greedy = p.temperature < GREEDY_TEMPERATURE || p.topK === 1;
    const token = greedy ? argmax(x) : draw(x, p, this.rng);
    let result: SampleResult = { token, logprob: NaN };
    if (p.logprobs > 0) {
      const { lse, top } = rawLogprobs(logits, p.logprobs);
      result = { token, logprob: logits[token]! - lse, topLogprobs: top };
    }
    this.record(token);
    return result;
  }

  /** Adds a generated token to the history the penalties read (sample does it for the tokens it draws). */
  record(token: number): void {
    const p = this.params;
    if (p.presencePenalty !== 0 || p.frequencyPenalty !== 0) this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
    if (p.repetitionPenalty !== 1) this.seen.add(token);
  }

  /**
   * What applyPenalties does, as one entry per affected token (each token once, in no particular order):
   * logit_bias's tokens, the repetition penalty's (prompt and generated), the generated ones' presence and
   * frequency penalties. Token ids are not checked against the vocabulary.
   */
  penaltyEntries(visit: PenaltyVisitor): void {
    const p = this.params;
    const bias = p.logitBias;
    // seen is empty unless repetitionPenalty ≠ 1, counts unless presence or frequency is; with both
    // kept, every counted token is also seen.
    const r = p.repetitionPenalty;
    const subtract = (id: number): number => {
      const c = this.counts.get(id);
      return c === undefined ? 0 : p.frequencyPenalty * c + p.presencePenalty;
    };
    for (const [id, b] of bias) visit(id, b, this.seen.has(id) ? r : 1, subtract(id));
    for (const id of this.seen) if (!bias.has(id)) visit(id, 0, r, subtract(id));
    for (const [id, c] of this.counts) {
      if (!bias.has(id) && !this.seen.has(id)) visit(id, 0, 1, p.frequencyPenalty * c + p.presencePenalty);
    }
  }

  /** logit_bias, then repetition, then presence/frequency, on a scratch copy; the input itself when none apply. */
  private applyPenalties(logits: Float32Array): Float32Array {
    const p = this.params;
    const rep = p.repetitionPenalty !== 1 && this.seen.size > 0;
    const openai = (p.presencePenalty !== 0 || p.frequencyPenalty !== 0) && this.counts.size > 0;
    if (p.logitBias.size === 0 && !rep && !openai) return logits;
    const V = logits.length;
    if (scratch.work.length !== V) scratch.work = new Float32Array(V);
    const x = scratch.work;
    x.set(logits);
    for (const [id, bias] of p.logitBias) if (id < V) x[id] = x[id]! + bias;
    if (rep) {
      const r = p.repetitionPenalty;
      for (const id of this.seen) {
        if (id >= V) continue;
        const v = x[id]!;
        x[id] = v > 0 ? v / r : v * r;
      }
    }
    if (openai) {
      for (const [id, c] of this.counts) if (id < V) x[id] = x[id]! - p.frequencyPenalty * c - p.presencePenalty;
    }
    return x;
  }
}
