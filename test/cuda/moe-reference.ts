// Float64 references of the MoE ops (the issue-14 contract), for test/cuda/moe-ops.test.ts. The expert
// FFN can round its activations the way a device path does, so that the comparison is tight: 'q8'
// rounds x and silu(g)·u per row to the weight type's q8 format (the GEMV path, as native/cpu/matmul.cpp),
// 'bf16' rounds x, the weights and silu(g)·u to bf16 (the tensor-core path); 'exact' rounds nothing.
import type { RouterSpec } from '../../src/backend/backend.js';
import { DType } from '../../src/backend/dtype.js';

/** The backend's router spec, under the name this reference's callers use. */
export type RouteSpec = RouterSpec;

export interface RouteResult {
  ids: Int32Array;
  weights: Float64Array;
  /** The smallest relative gap between choice scores that decided a pick, its order or a kept group. */
  margin: number;
}

const relGap = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30);

/** The contract's routing of logits [T, E], in float64. */
export function routeRef(logits: Float32Array, T: number, E: number, s: RouteSpec, bias?: Float32Array): RouteResult {
  const k = s.topK;
  const ids = new Int32Array(T * k);
  const weights = new Float64Array(T * k);
  let margin = Infinity;
  for (let t = 0; t < T; t++) {
    const row = Array.from(logits.subarray(t * E, (t + 1) * E));
    let sc: number[];
    if (s.scoring === 'sigmoid') sc = row.map((v) => 1 / (1 + Math.exp(-v)));
    else {
      const mx = Math.max(...row);
      const ex = row.map((v) => Math.exp(v - mx));
      const sum = ex.reduce((a, b) => a + b, 0);
      sc = ex.map((v) => v / sum);
    }
    const c = sc.map((v, e) => v + (bias ? bias[e]! : 0));
    const allowed = new Array<boolean>(E).fill(true);
    if (s.numGroups > 1) {
      const size = E / s.numGroups;
      const scores = Array.from({ length: s.numGroups }, (_, g) => {
        const members = c.slice(g * size, (g + 1) * size).sort((a, b) => b - a);
        return s.groupScore === 'top2sum' ? members[0]! + members[1]! : members[0]!;
      });
      const order = scores.map((v, g) => ({ v, g })).sort((a, b) => b.v - a.v || a.g - b.g);
      if (s.topKGroups < s.numGroups) margin = Math.min(margin, relGap(order[s.topKGroups - 1]!.v, order[s.topKGroups]!.v));
      const kept = new Set(order.slice(0, s.topKGroups).map((o) => o.g));
      for (let e = 0; e < E; e++) allowed[e] = kept.has(Math.floor(e / size));
    }
    const cand = c.map((v, e) => ({ v, e })).filter((o) => allowed[o.e]).sort((a, b) => b.v - a.v || a.e - b.e);
    for (let j = 0; j < k; j++) {
      ids[t * k + j] = cand[j]!.e;
      weights[t * k + j] = sc[cand[j]!.e]!;
      if (j + 1 < cand.length) margin = Math.min(margin, relGap(cand[j]!.v, cand[j + 1]!.v));
    }
    if (s.normalize) {
      let sum = 0;
      for (let j = 0; j < k; j++) sum += weights[t * k + j]!;
      for (let j = 0; j < k; j++) weights[t * k + j] = weights[t * k + j]! / (sum + 1e-20);
    }
    for (let j = 0; j < k; j++) weights[t * k + j] = weights[t * k + j]! * s.scale;
  }
  return { ids, weights, margin };
}

// ---- roundings (IEEE float32 semantics through Math.fround) ----

function roundEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** v rounded to the nearest float16 (ties to even, subnormals included), as a number. */
export function roundF16(v: number): number {
  if (v === 0 || !Number.isFinite(v)) return v;
  const a = Math.abs(v);
  if (a >= 65520) return Math.sign(v) * Infinity;
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  const q = 2 ** (Math.max(e, -14) - 10); // the spacing of float16 values near a
  return Math.sign(v) * roundEven(a / q) * q;
}

/** Each value rounded to the nearest bfloat16 (ties to even). */
export function roundBf16(x: Float32Array): Float32Array {
  const bits = new Uint32Array(Float32Array.from(x).buffer);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    bits[i] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
  return new Float32Array(bits.buffer);
}

/** q8_K (256 a block): scale -127 / the first value of largest magnitude, codes capped at 127; the values d · code. */
function q8kBlock(v: Float32Array, out: Float64Array, o: number): void {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 256; j++)
    if (Math.abs(v[o + j]!) > amax) {
      amax = Math.abs(v[o + j]!);
      max = v[o + j]!;
    }
  if (amax === 0) {
    out.fill(0, o, o + 256);
    return;
  }
  const iscale = Math.fround(-127 / max);
  const d = Math.fround(1 / iscale);
  for (let j = 0; j < 256; j++) out[o + j] = d * Math.min(127, roundEven(Math.fround(iscale * v[o + j]!)));
}

/** q8_0 (32 a block): d = fp16(amax / 127), codes round(x · 127 / amax); the values d · code. */
function q80Block(v: Float32Array, out: Float64Array, o: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(v[o + j]!));
  const d = roundF16(Math.fround(amax / 127));
  const id = amax !== 0 ? Math.fround(127 / amax) : 0;
  for (let j = 0; j < 32; j++) out[o + j] = d * roundEven(Math.fround(v[o + j]! * id));
}

const Q8K_TYPES = new Set<number>([DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K]);
const PLAIN_TYPES = new Set<number>([DType.F32, DType.F16, DType.BF16]);

export type Rounding = 'exact' | 'q8' | 'bf16';

/** A row of activations as the path computing against weights of `type` sees it. */
function roundRow(v: Float64Array | Float32Array, type: number, rounding: Rounding): Float64Array {
  const f = Float32Array.from(v); // the device holds activations in f32
  if (rounding === 'exact') return Float64Array.from(v);
  if (rounding === 'bf16') return Float64Array.from(roundBf16(f));
  if (PLAIN_TYPES.has(type)) return Float64Array.from(f);
  const out = new Float64Array(f.length);
  if (Q8K_TYPES.has(type)) for (let o = 0; o < f.length; o += 256) q8kBlock(f, out, o);
  else for (let o = 0; o < f.length; o += 32) q80Block(f, out, o);
  return out;
}

/** One projection of E experts: values the dequantized weights [E, N, K]. */
export interface ExpertWeightsRef {
  type: number;
  values: Float32Array;
  E: number;
  N: number;
  K: number;
}

/** The weights as a path multiplies them: bf16-rounded for the tensor-core path. */
export function asPathSees(w: ExpertWeightsRef, rounding: Rounding): ExpertWeightsRef {
  return rounding === 'bf16' ? { ...w, values: roundBf16(w.values) } : w;
}

function matvec(w: ExpertWeightsRef, e: number, x: Float64Array): Float64Array {
  const out = new Float64Array(w.N);
  const base = e * w.N * w.K;
  for (let n = 0; n < w.N; n++) {
    let s = 0;
    const o = base + n * w.K;
    for (let i = 0; i < w.K; i++) s += w.values[o + i]! * x[i]!;
    out[n] = s;
  }
  return out;
}

/**
 * out [T, H] = sum over j of weights[t, j] · down[e] · (silu(gate[e] · x_t) · (up[e] · x_t)), e = ids[t, j]
 * (the weights already as the path sees them: asPathSees). Slot outputs for one (token, expert) pair are shared.
 */
export function expertsRef(x: Float32Array, T: number, ids: Int32Array, weights: ArrayLike<number>, k: number, gate: ExpertWeightsRef,
  up: ExpertWeightsRef, down: ExpertWeightsRef, rounding: Rounding): Float64Array {
  const H = gate.K;
  const out = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    const xt = roundRow(x.subarray(t * H, (t + 1) * H), gate.type, rounding);
    const seen = new Map<number, Float64Array>();
    for (let j = 0; j < k; j++) {
      const e = ids[t * k + j]!;
      let y = seen.get(e);
      if (!y) {
        const g = matvec(gate, e, xt);
        const u = matvec(up, e, xt);
        const h = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!);
        y = matvec(down, e, roundRow(h, down.type, rounding));
        seen.set(e, y);
      }
      const w = weights[t * k + j]!;
      for (let i = 0; i < H; i++) out[t * H + i] = out[t * H + i]! + w * y[i]!;
    }
  }
  return out;
}
