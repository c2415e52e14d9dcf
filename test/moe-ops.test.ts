// The CPU MoE ops (native/cpu/op_moe.cpp) against the MoE op contract (notes/moe-contract.md): the router
// against a float64 reference (exact ids, weights within 1e-6); the experts against a float64
// reference within the noise q8 activation rounding explains, and bit for bit against the same
// math done op by op with the dense native matmul and siluMul; a token's bits whatever its batch,
// and (child processes, since KT_NUM_THREADS is read once) whatever the thread count, also under
// a many-thread stress of skewed experts; clear errors; no leaked tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RouterSpec } from '../src/backend/backend.js';
import { loadNative, type MoeGroupScore, type MoeScoring, type NativeAddon } from '../src/backend/native.js';
import { DType } from '../src/backend/dtype.js';
import { normalSampler, uniformSampler } from '../src/make-model/random-model.js';

/** The handle functions of native/napi/tensor_napi.cpp and ops_napi.cpp these tests use. */
interface TensorFns {
  tAlloc(dtype: number, shape: number[], scratch: boolean): number;
  tUpload(h: number, data: Float32Array | Int32Array | Uint8Array): void;
  tDownload(h: number): Float32Array | Int32Array;
  tRelease(h: number): void;
  tStats(): { liveTensors: number; liveBytes: number; mappings: number };
  mapFile(path: string): number;
  unmapFile(mapping: number): void;
  opSiluMul(g: number, u: number): number;
}
const native = loadNative() as unknown as NativeAddon & TensorFns;

const CHILD_ENV = 'KT_MOE_TEST_CHILD';
const DIGEST = 'KT_MOE_DIGEST ';

// ---- tensors ----

function upload(dtype: number, shape: number[], data: Float32Array | Int32Array | Uint8Array): number {
  const h = native.tAlloc(dtype, shape, false);
  native.tUpload(h, data);
  return h;
}

function download(h: number): Float32Array {
  const a = native.tDownload(h);
  native.tRelease(h);
  assert.ok(a instanceof Float32Array);
  return a;
}

function randn(count: number, seed: number, scale = 1): Float32Array {
  const normal = normalSampler(seed);
  return Float32Array.from({ length: count }, () => scale * normal());
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function fnv(a: Float32Array, h = 0x811c9dc5): number {
  for (const v of bits(a)) h = Math.imul(h ^ v, 0x01000193) >>> 0;
  return h;
}

function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, what);
  const b = bits(want);
  const at = bits(got).findIndex((v, i) => v !== b[i]);
  assert.equal(at, -1, `${what}: first difference at ${at}: ${got[at]} vs ${want[at]}`);
}

// ---- router ----


function route(logits: Float32Array, T: number, E: number, spec: RouterSpec, bias?: Float32Array): { ids: Int32Array; weights: Float32Array } {
  const hl = upload(DType.F32, [T, E], logits);
  const hb = bias ? upload(DType.F32, [bias.length], bias) : -1;
  try {
    const [ids, weights] = native.opMoeRoute(hl, hb, (spec.scoring === 'softmax' ? 0 : 1) satisfies MoeScoring, spec.topK, spec.numGroups,
      spec.topKGroups, (spec.groupScore === 'max' ? 0 : 1) satisfies MoeGroupScore, spec.normalize, spec.scale);
    const id = native.tDownload(ids);
    native.tRelease(ids);
    assert.ok(id instanceof Int32Array);
    return { ids: id, weights: download(weights) };
  } finally {
    native.tRelease(hl);
    if (hb >= 0) native.tRelease(hb);
  }
}

/** The n best of `items` by score (descending, ties: lower index first). */
function best(scores: number[], items: number[], n: number): number[] {
  return [...items].sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, n);
}

// The contract's five steps in float64 (weights agree within 1e-6, relative above 1: float32
// has 2^-24 of its own). Where float32 and float64 could order two scores differently (closer
// than 1e-6, not equal), the case is flagged: the test data must avoid it.
function refRoute(l: Float32Array, E: number, spec: RouterSpec, bias?: Float32Array): { ids: number[]; weights: number[]; nearTie: boolean } {
  const mx = Math.max(...l);
  const ex = [...l].map((v) => Math.exp(v - mx));
  const sum = ex.reduce((a, b) => a + b, 0);
  const s = spec.scoring === 'softmax' ? ex.map((v) => v / sum) : [...l].map((v) => 1 / (1 + Math.exp(-v)));
  const c = s.map((v, e) => v + (bias?.[e] ?? 0));
  const size = E / spec.numGroups;
  const all = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
  let nearTie = false;
  const rank = (sc: number[], items: number[], n: number): number[] => {
    const sorted = best(sc, items, n + 1);
    for (let i = 0; i + 1 < sorted.length; i++) {
      const gap = sc[sorted[i]!]! - sc[sorted[i + 1]!]!;
      if (gap !== 0 && gap < 1e-6) nearTie = true;
    }
    return sorted.slice(0, n);
  };
  let allowed = all(E);
  if (spec.numGroups > 1) {
    const gs = all(spec.numGroups).map((g) => {
      const top = best(c, all(size).map((i) => g * size + i), spec.groupScore === 'max' ? 1 : 2);
      return top.reduce((a, e) => a + c[e]!, 0);
    });
    const kept = rank(gs, all(spec.numGroups), spec.topKGroups);
    allowed = allowed.filter((e) => kept.includes(Math.floor(e / size)));
  }
  const ids = rank(c, allowed, spec.topK);
  let w = ids.map((e) => s[e]!);
  const total = w.reduce((a, b) => a + b, 0);
  if (spec.normalize) w = w.map((v) => v / (total + 1e-20));
  return { ids, weights: w.map((v) => v * spec.scale), nearTie };
}

// Logits with exact ties: repeated values, and (for grouped specs) a group copied into another.
function routerLogits(T: number, E: number, seed: number, groupSize: number): Float32Array {
  const l = randn(T * E, seed, 2);
  for (let t = 0; t < T; t++) {
    const row = l.subarray(t * E, (t + 1) * E);
    const top = row.indexOf(Math.max(...row));
    if (t % 3 === 0) row[(top + 5) % E] = row[top]!; // two best experts tie
    if (t % 3 === 1) row.fill(row[top]!, E - 3); // the last three tie with the best
    if (t % 4 === 2 && groupSize < E) row.copyWithin(2 * groupSize, 0, groupSize); // group 2 ties with group 0
  }
  return l;
}

const ROUTER_CASES: [string, RouterSpec, boolean][] = [
  ['Qwen3-MoE: softmax, normalized', { scoring: 'softmax', topK: 8, numGroups: 1, topKGroups: 1, groupScore: 'max', normalize: true, scale: 1 }, false],
  ['softmax, not normalized, with a selection bias', { scoring: 'softmax', topK: 6, numGroups: 1, topKGroups: 1, groupScore: 'max', normalize: false, scale: 1 }, true],
  ['DeepSeek-V2: softmax, group max, scaled', { scoring: 'softmax', topK: 6, numGroups: 8, topKGroups: 3, groupScore: 'max', normalize: false, scale: 16 }, false],
  ['DeepSeek-V3: sigmoid + bias, group top2sum, normalized, scale 2.5', { scoring: 'sigmoid', topK: 8, numGroups: 8, topKGroups: 4, groupScore: 'top2sum', normalize: true, scale: 2.5 }, true],
  ['sigmoid, no bias, top2sum, not normalized', { scoring: 'sigmoid', topK: 4, numGroups: 4, topKGroups: 2, groupScore: 'top2sum', normalize: false, scale: 1 }, false],
  ['k = 1, sigmoid normalized to 1', { scoring: 'sigmoid', topK: 1, numGroups: 1, topKGroups: 1, groupScore: 'max', normalize: true, scale: 1 }, false],
];

// ---- experts ----

interface Experts {
  types: readonly [number, number, number]; // gate, up, down
  E: number;
  H: number;
  I: number;
  bytes: Uint8Array[];
  deq: Float32Array[];
  handles: number[];
}

function makeExperts(types: readonly [number, number, number], E: number, H: number, I: number, seed: number): Experts {
  const sizes = [[I, H], [I, H], [H, I]] as const;
  const bytes = sizes.map(([N, K], p) => native.quantize(types[p]!, randn(E * N * K, seed + p, 1 / Math.sqrt(K))));
  return {
    types, E, H, I, bytes,
    deq: bytes.map((b, p) => native.dequantize(types[p]!, b, E * sizes[p]![0] * sizes[p]![1])),
    handles: bytes.map((b, p) => upload(types[p]!, [E, ...sizes[p]!], b)),
  };
}

function freeExperts(ex: Experts): void {
  for (const h of ex.handles) native.tRelease(h);
}

interface Batch {
  T: number;
  k: number;
  x: Float32Array;
  ids: Int32Array;
  weights: Float32Array;
}

// k distinct experts per token, skewed: expert 0 takes nearly every token, 1 most, 2 and 3 many,
// the rest few or none — a busy expert beside idle ones, as real routers produce.
function skewedBatch(T: number, k: number, E: number, H: number, seed: number): Batch {
  const uniform = uniformSampler(seed);
  const ids = new Int32Array(T * k);
  for (let t = 0; t < T; t++) {
    const score = Array.from({ length: E }, (_, e) => uniform() + (e === 0 ? 3 : e === 1 && t % 7 ? 2 : e < 4 ? 0.5 : 0));
    ids.set(best(score, Array.from({ length: E }, (_, e) => e), k), t * k);
  }
  return { T, k, x: randn(T * H, seed + 1), ids, weights: Float32Array.from({ length: T * k }, () => 0.1 + uniform()) };
}

function runExperts(ex: Experts, b: Batch): Float32Array {
  const hx = upload(DType.F32, [b.T, ex.H], b.x);
  const hi = upload(DType.I32, [b.T, b.k], b.ids);
  const hw = upload(DType.F32, [b.T, b.k], b.weights);
  try {
    return download(native.opMoeExperts(hx, hi, hw, ex.handles[0]!, ex.handles[1]!, ex.handles[2]!));
  } finally {
    for (const h of [hx, hi, hw]) native.tRelease(h);
  }
}

// Token t's rows of a batch, as a batch of their own.
function tokenBatch(b: Batch, t: number, H: number): Batch {
  return { T: 1, k: b.k, x: b.x.slice(t * H, (t + 1) * H), ids: b.ids.slice(t * b.k, (t + 1) * b.k), weights: b.weights.slice(t * b.k, (t + 1) * b.k) };
}

// The same math op by op: dense matmul of one row per (token, slot) on the expert's slice of
// the weight bytes, siluMul, and the combine in slot order in float32.
function composed(ex: Experts, b: Batch): Float32Array {
  const { E, H, I, types } = ex;
  const slice = (p: number, e: number): Uint8Array => {
    const per = ex.bytes[p]!.length / E;
    return ex.bytes[p]!.subarray(e * per, (e + 1) * per);
  };
  const n = b.T * b.k;
  const g = new Float32Array(n * I);
  const u = new Float32Array(n * I);
  for (let a = 0; a < n; a++) {
    const x = b.x.subarray(Math.floor(a / b.k) * H, (Math.floor(a / b.k) + 1) * H);
    g.set(native.matmulRaw(x, 1, H, slice(0, b.ids[a]!), types[0], I), a * I);
    u.set(native.matmulRaw(x, 1, H, slice(1, b.ids[a]!), types[1], I), a * I);
  }
  const hg = upload(DType.F32, [n, I], g);
  const hu = upload(DType.F32, [n, I], u);
  const h = download(native.opSiluMul(hg, hu));
  native.tRelease(hg);
  native.tRelease(hu);
  const out = new Float32Array(b.T * H);
  for (let a = 0; a < n; a++) {
    const t = Math.floor(a / b.k);
    const y = native.matmulRaw(h.subarray(a * I, (a + 1) * I), 1, I, slice(2, b.ids[a]!), types[2], H);
    for (let c = 0; c < H; c++) out[t * H + c] = Math.fround(out[t * H + c]! + Math.fround(b.weights[a]! * y[c]!));
  }
  return out;
}

// Activation block of a weight type's vec_dot format: 0 for plain weights (f32 activations).
function actBlock(type: number): 0 | 32 | 256 {
  if (type === DType.F32 || type === DType.F16 || type === DType.BF16) return 0;
  return new Set<number>([DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K]).has(type) ? 256 : 32;
}

// Per element, the rounding step d = amax/127 of its q8 block (0 for f32 activations).
function steps(v: ArrayLike<number>, B: number): Float64Array {
  const d = new Float64Array(v.length);
  if (B === 0) return d;
  for (let b = 0; b < v.length; b += B) {
    let amax = 0;
    for (let i = b; i < b + B; i++) amax = Math.max(amax, Math.abs(v[i]!));
    d.fill(amax / 127, b, b + B);
  }
  return d;
}

// Float64 reference and its tolerance per output. Rounding a value to a q8 code errs uniformly
// within ±d/2 (variance d²/12), independently per element; that noise is carried through
// gate/up (variances), SiLU·up (first order) and down, and each output may differ by 6 standard
// deviations of it. On top: q8_0's fp16 scale (relative 2^-11 per block, systematic) and float32
// accumulation, 1e-5 of the absolute sums at each stage. Plain weights leave only the latter.
function reference(ex: Experts, b: Batch): { ref: Float64Array; tol: Float64Array } {
  const { H, I, types, deq } = ex;
  const [bg, bu, bd] = types.map(actBlock);
  const f16 = (B: number): number => (B === 32 ? 2 ** -11 : 0);
  const acc = 1e-5;
  const ref = new Float64Array(b.T * H);
  const tol = new Float64Array(b.T * H);
  const std = new Float64Array(b.T * H);
  for (let a = 0; a < b.T * b.k; a++) {
    const t = Math.floor(a / b.k);
    const e = b.ids[a]!;
    const x = b.x.subarray(t * H, (t + 1) * H);
    const dg = steps(x, bg!), du = steps(x, bu!);
    const h = new Float64Array(I), hvar = new Float64Array(I), hsys = new Float64Array(I);
    for (let i = 0; i < I; i++) {
      const wg = deq[0]!.subarray((e * I + i) * H, (e * I + i + 1) * H);
      const wu = deq[1]!.subarray((e * I + i) * H, (e * I + i + 1) * H);
      let g = 0, u = 0, vg = 0, vu = 0, ag = 0, au = 0;
      for (let c = 0; c < H; c++) {
        g += wg[c]! * x[c]!;
        u += wu[c]! * x[c]!;
        vg += (wg[c]! * dg[c]!) ** 2 / 12;
        vu += (wu[c]! * du[c]!) ** 2 / 12;
        ag += Math.abs(wg[c]! * x[c]!);
        au += Math.abs(wu[c]! * x[c]!);
      }
      const sig = 1 / (1 + Math.exp(-g));
      const silu = g * sig;
      const dsilu = sig * (1 + g * (1 - sig));
      h[i] = silu * u;
      hvar[i] = (dsilu * u) ** 2 * vg + silu ** 2 * vu;
      hsys[i] = Math.abs(dsilu * u) * (f16(bg!) + acc) * ag + Math.abs(silu) * (f16(bu!) + acc) * au + acc * Math.abs(h[i]!);
    }
    const dh = steps(h, bd!);
    for (let c = 0; c < H; c++) {
      const wd = deq[2]!.subarray((e * H + c) * I, (e * H + c + 1) * I);
      let y = 0, v = 0, sys = 0, ay = 0;
      for (let i = 0; i < I; i++) {
        y += wd[i]! * h[i]!;
        v += wd[i]! ** 2 * (hvar[i]! + dh[i]! ** 2 / 12);
        sys += Math.abs(wd[i]!) * hsys[i]!;
        ay += Math.abs(wd[i]! * h[i]!);
      }
      const w = b.weights[a]!;
      const o = t * H + c;
      ref[o] = ref[o]! + w * y;
      std[o] = std[o]! + Math.abs(w) * Math.sqrt(v); // slots share x's rounding: add deviations, not variances
      tol[o] = tol[o]! + Math.abs(w) * (sys + (f16(bd!) + acc) * ay);
    }
  }
  for (let i = 0; i < tol.length; i++) tol[i] = tol[i]! + 6 * std[i]!;
  return { ref, tol };
}

const Q4_K_Q6_K = [DType.Q4_K, DType.Q4_K, DType.Q6_K] as const;
// [name, types, H, I]: plain types at sizes that are no multiple of any kernel's row count.
const EXPERT_CASES: [string, readonly [number, number, number], number, number][] = [
  ['F32', [DType.F32, DType.F32, DType.F32], 56, 37],
  ['BF16', [DType.BF16, DType.BF16, DType.BF16], 72, 45],
  ['Q8_0', [DType.Q8_0, DType.Q8_0, DType.Q8_0], 96, 160],
  ['Q4_K', [DType.Q4_K, DType.Q4_K, DType.Q4_K], 512, 256],
  ['Q5_K', [DType.Q5_K, DType.Q5_K, DType.Q5_K], 256, 512],
  ['Q6_K', [DType.Q6_K, DType.Q6_K, DType.Q6_K], 256, 256],
  ['Qwen3-MoE GGUF mix (Q4_K gate/up, Q6_K down)', Q4_K_Q6_K, 512, 256],
  ['gate and up in different activation formats (Q8_0, Q4_K; BF16 down)', [DType.Q8_0, DType.Q4_K, DType.BF16], 256, 64],
];
const E = 8;

// Outputs of fixed cases, hashed: the same in every process whatever its thread count.
function digest(stressLoops: number): string {
  let h = 0x811c9dc5;
  for (const [, types, H, I] of EXPERT_CASES) {
    const ex = makeExperts(types, E, H, I, 11);
    h = fnv(runExperts(ex, skewedBatch(37, 3, E, H, 5)), h);
    freeExperts(ex);
  }
  if (stressLoops > 0) h = stress(stressLoops, h);
  return h.toString(16);
}

// Many calls of varied skew and size, many small items each, in a shuffled order: every
// result must equal the first one for its input.
function stress(loops: number, h: number): number {
  const ex = makeExperts(Q4_K_Q6_K, 32, 256, 256, 23);
  const batches = [1, 2, 5, 37, 64].map((T, i) => skewedBatch(T, 4, 32, 256, 100 + i));
  const first = batches.map((b) => runExperts(ex, b));
  const uniform = uniformSampler(9);
  for (let i = 0; i < loops; i++) {
    const j = Math.floor(uniform() * batches.length);
    assertSameBits(runExperts(ex, batches[j]!), first[j]!, `stress loop ${i}, batch of ${batches[j]!.T}`);
  }
  freeExperts(ex);
  for (const f of first) h = fnv(f, h);
  return h;
}

const child = process.env[CHILD_ENV];
if (child !== undefined) {
  test(`digest (${child})`, () => {
    process.stdout.write(`\n${DIGEST}${digest(Number(child))}\n`);
  });
} else {
  parentTests();
}

async function runChild(env: NodeJS.ProcessEnv): Promise<string> {
  const full: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete full.NODE_TEST_CONTEXT; // else the child reports in the runner's binary protocol
  const p = spawn(process.execPath, [fileURLToPath(import.meta.url)], { env: full });
  let output = '';
  p.stdout.on('data', (d: Buffer) => (output += d.toString()));
  p.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const status = await new Promise<number | null>((resolve) => p.on('close', resolve));
  assert.equal(status, 0, `child failed:\n${output}`);
  const line = output.split('\n').find((l) => l.startsWith(DIGEST));
  assert.ok(line, `child printed no digest:\n${output}`);
  return line.slice(DIGEST.length);
}

function parentTests(): void {
  test('router: float64 reference, exact ids and ties to the lower index', () => {
    const T = 24;
    const E = 64;
    for (const [name, spec, withBias] of ROUTER_CASES) {
      const l = routerLogits(T, E, 3 + spec.topK, E / spec.numGroups);
      const bias = withBias ? Float32Array.from(randn(E, 77, 0.05), (v, e) => (e % 9 === 4 ? 0.2 : v)) : undefined;
      const got = route(l, T, E, spec, bias);
      for (let t = 0; t < T; t++) {
        const want = refRoute(l.subarray(t * E, (t + 1) * E), E, spec, bias);
        assert.ok(!want.nearTie, `${name}: token ${t}'s test data has a near-tie float32 may order either way`);
        assert.deepEqual([...got.ids.subarray(t * spec.topK, (t + 1) * spec.topK)], want.ids, `${name}: ids of token ${t}`);
        want.weights.forEach((w, j) => {
          const g = got.weights[t * spec.topK + j]!;
          assert.ok(Math.abs(g - w) <= 1e-6 * Math.max(1, Math.abs(w)), `${name}: token ${t} slot ${j}: weight ${g} vs ${w}`);
        });
      }
    }
  });

  test('router: ties go to the lower expert and the lower group', () => {
    const l = new Float32Array(16).fill(-1);
    l.set([2, 2], 6); // experts 6, 7 tie for first (group 3 of 2-expert groups)
    l.set([2, 2], 2); // and so do 2, 3 (group 1): group 1 wins the group tie
    const one = { scoring: 'softmax', topK: 2, numGroups: 8, topKGroups: 1, groupScore: 'top2sum', normalize: true, scale: 1 } as const;
    assert.deepEqual([...route(l, 1, 16, one).ids], [2, 3]);
    assert.deepEqual([...route(l, 1, 16, { ...one, numGroups: 1 }).ids], [2, 3]);
    assert.deepEqual([...route(l, 1, 16, { ...one, topK: 4, numGroups: 1 }).ids], [2, 3, 6, 7]);
    // The bias chooses but does not weigh: expert 9 chosen, weighted by its unbiased score.
    const bias = new Float32Array(16);
    bias[9] = 10;
    const r = route(l, 1, 16, { ...one, numGroups: 1, topK: 1, normalize: false }, bias);
    assert.deepEqual([...r.ids], [9]);
    const s9 = Math.exp(-1) / (4 * Math.exp(2) + 12 * Math.exp(-1));
    assert.ok(Math.abs(r.weights[0]! - s9) < 1e-7, `${r.weights[0]} vs ${s9}`);
  });

  for (const [name, types, H, I] of EXPERT_CASES) {
    test(`experts ${name}: float64 reference within q8 rounding noise, and op-by-op dense matmul bit for bit`, () => {
      const ex = makeExperts(types, E, H, I, 31);
      const b = skewedBatch(9, 3, E, H, 17);
      const got = runExperts(ex, b);
      const { ref, tol } = reference(ex, b);
      let worst = 0;
      for (let i = 0; i < got.length; i++) {
        const r = Math.abs(got[i]! - ref[i]!) / tol[i]!;
        assert.ok(r <= 1, `${name} at [${Math.floor(i / H)}, ${i % H}]: ${got[i]} vs ${ref[i]} (tolerance ${tol[i]})`);
        worst = Math.max(worst, r);
      }
      assert.ok(worst > 0, 'some rounding is seen');
      assertSameBits(got, composed(ex, b), `${name}: moeExperts vs matmul + siluMul + combine`);
      freeExperts(ex);
    });
  }

  test('experts: a token alone gives the bits it gets in a skewed batch of 37, in any order', () => {
    for (const types of [Q4_K_Q6_K, [DType.BF16, DType.BF16, DType.F32] as const]) {
      const H = 256;
      const ex = makeExperts(types, E, H, 256, 41);
      const b = skewedBatch(37, 4, E, H, 43);
      const all = runExperts(ex, b);
      for (let t = 0; t < b.T; t++) assertSameBits(runExperts(ex, tokenBatch(b, t, H)), all.subarray(t * H, (t + 1) * H), `token ${t} alone`);
      const order = Array.from({ length: b.T }, (_, t) => (t * 16) % b.T); // 16 is coprime to 37
      const parts = order.map((t) => tokenBatch(b, t, H));
      const shuffled: Batch = { T: b.T, k: b.k, x: new Float32Array(b.x.length), ids: new Int32Array(b.ids.length), weights: new Float32Array(b.weights.length) };
      parts.forEach((p, i) => {
        shuffled.x.set(p.x, i * H);
        shuffled.ids.set(p.ids, i * b.k);
        shuffled.weights.set(p.weights, i * b.k);
      });
      const got = runExperts(ex, shuffled);
      order.forEach((t, i) => assertSameBits(got.subarray(i * H, (i + 1) * H), all.subarray(t * H, (t + 1) * H), `token ${t} at row ${i}`));
      freeExperts(ex);
    }
  });

  test('experts: the same bits on 1 thread, 7 threads, and under an 8-thread stress of skewed experts', { timeout: 300_000 }, async () => {
    const STRESS = 600;
    const [one, seven] = await Promise.all([
      runChild({ [CHILD_ENV]: '0', KT_NUM_THREADS: '1' }),
      runChild({ [CHILD_ENV]: '0', KT_NUM_THREADS: '7' }),
    ]);
    const stressed = await runChild({ [CHILD_ENV]: String(STRESS), KT_NUM_THREADS: '8' });
    const threads = native.info().threads;
    const here = digest(0);
    assert.equal(one, here, `1 thread vs ${threads}`);
    assert.equal(seven, here, `7 threads vs ${threads}`);
    assert.equal(stressed, digest(2), `the stress's results on 8 threads vs ${threads}`);
  });

  test('stacking mapped experts equals uploading them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kt-moe-'));
    try {
      const ex = makeExperts(Q4_K_Q6_K, 4, 256, 256, 51);
      // Experts stored apart (as safetensors do), in two files, at odd offsets and out of order.
      const handles = ex.bytes.map((bytes, p) => {
        const per = bytes.length / ex.E;
        const files = [join(dir, `${p}a`), join(dir, `${p}b`)];
        const offsets = [13, 13 + per + 7, 5, 5 + per + 3];
        for (const [f, file] of files.entries()) {
          const buf = new Uint8Array(offsets[2 * f + 1]! + per + 11);
          buf.set(bytes.subarray((2 * f + 1) * per, (2 * f + 2) * per), offsets[2 * f]!); // experts 1, 3 first
          buf.set(bytes.subarray(2 * f * per, (2 * f + 1) * per), offsets[2 * f + 1]!);
          writeFileSync(file, buf);
        }
        const maps = files.map((f) => native.mapFile(f));
        const shape = p < 2 ? [ex.E, ex.I, ex.H] : [ex.E, ex.H, ex.I];
        const h = native.tStackMappings([maps[0]!, maps[0]!, maps[1]!, maps[1]!], [offsets[1]!, offsets[0]!, offsets[3]!, offsets[2]!], ex.types[p]!, shape);
        for (const m of maps) native.unmapFile(m); // the stack is a copy
        return h;
      });
      const b = skewedBatch(5, 2, 4, 256, 53);
      const want = runExperts(ex, b);
      freeExperts(ex);
      assertSameBits(runExperts({ ...ex, handles }, b), want, 'stacked vs uploaded');
      for (const h of handles) native.tRelease(h);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad ids, shapes, types and specs throw errors that say what is wrong', () => {
    const before = native.tStats();
    const ex = makeExperts(Q4_K_Q6_K, E, 256, 256, 61);
    const b = skewedBatch(3, 2, E, 256, 63);
    const bad = (ids: number[]): Batch => ({ ...b, ids: Int32Array.from(ids) });
    assert.throws(() => runExperts(ex, bad([0, 1, 2, 8, 4, 5])), /moe_experts: expert id 8 at ids\[1, 1\] is outside \[0, 8\)/);
    assert.throws(() => runExperts(ex, bad([0, 1, 2, 3, -1, 5])), /expert id -1 at ids\[2, 0\]/);
    const hx = upload(DType.F32, [3, 256], b.x);
    const hi = upload(DType.I32, [3, 2], b.ids);
    const hw = upload(DType.F32, [3, 2], b.weights);
    const hx2 = upload(DType.F32, [2, 384], b.x.subarray(0, 768));
    const hw3 = upload(DType.F32, [2, 3], b.weights);
    const [g, u, d] = ex.handles as [number, number, number];
    assert.throws(() => native.opMoeExperts(hx2, hi, hw, g, u, d), /moe_experts: x must be F32 \[T, 256\], got F32\[2,384\]/);
    assert.throws(() => native.opMoeExperts(hx, hw, hw, g, u, d), /ids must be I32 \[3, k\], got F32\[3,2\]/);
    assert.throws(() => native.opMoeExperts(hx, hi, hw3, g, u, d), /weights must be F32 like ids I32\[3,2\], got F32\[2,3\]/);
    assert.throws(() => native.opMoeExperts(hx, hi, hw, g, u, hx), /down must be \[8, 256, 256\], got F32\[3,256\]/);
    assert.throws(() => native.opMoeExperts(hx, hi, hw, hx, u, d), /gate must be \[E, I, H\], got F32\[3,256\]/);
    const loose = native.opMoeExperts as (...args: number[]) => number;
    assert.throws(() => loose(hx, hi, hw, g, u), /opMoeExperts: expected 6 arguments/);
    const ints = upload(DType.I32, [8, 256, 256], new Int32Array(8 * 256 * 256));
    assert.throws(() => native.opMoeExperts(hx, hi, hw, g, ints, d), /up: unsupported weight type I32\[8,256,256\]/);
    const spec = ROUTER_CASES[3]![1];
    const logits = randn(2 * 64, 1);
    assert.throws(() => route(logits, 2, 64, { ...spec, topK: 0 }), /opMoeRoute: topK must be an integer in \[1, 64\], got 0/);
    assert.throws(() => route(logits, 2, 64, { ...spec, numGroups: 5 }), /moe_route: 5 groups do not split 64 experts evenly/);
    assert.throws(() => route(logits, 2, 64, { ...spec, topKGroups: 9 }), /topKGroups must be an integer in \[1, 8\], got 9/);
    assert.throws(() => route(logits, 2, 64, { ...spec, topKGroups: 1, topK: 9 }), /topK 9 is not in \[1, 8\] \(the experts the kept groups hold\)/);
    assert.throws(() => route(logits, 2, 64, { ...spec, numGroups: 64, topKGroups: 4 }), /top2sum needs groups of at least 2 experts/);
    assert.throws(() => route(logits, 2, 64, spec, new Float32Array(63)), /selection bias must be F32 \[64\], got F32\[63\]/);
    assert.throws(() => route(logits, 4, 32, { ...spec, topK: 40 }), /topK must be an integer in \[1, 32\]/);
    assert.throws(() => native.tStackMappings([1], [0, 0], DType.Q4_K, [2, 256, 256]), /tStackMappings: 1 mappings and 2 offsets for 2 experts/);
    assert.throws(() => native.tStackMappings([123456], [0], DType.Q4_K, [1, 256, 256]), /tStackMappings: unknown file mapping/);
    assert.throws(() => native.tStackMappings([], [], DType.Q4_K, [1, 256, 100]), /rows of 100 are not whole Q4_K blocks/);
    for (const h of [hx, hi, hw, hx2, hw3, ints]) native.tRelease(h);
    freeExperts(ex);
    const after = native.tStats();
    assert.deepEqual([after.liveTensors, after.liveBytes], [before.liveTensors, before.liveBytes], 'failed calls leave no tensors');
  });

  test('route then experts, T = 0 and k = 0: results freed leave no tensor behind', () => {
    const before = native.tStats();
    const ex = makeExperts(Q4_K_Q6_K, E, 256, 256, 71);
    const T = 6;
    const hl = upload(DType.F32, [T, E], randn(T * E, 73));
    const hx = upload(DType.F32, [T, 256], randn(T * 256, 74));
    const [ids, w] = native.opMoeRoute(hl, -1, 0, 2, 1, 1, 0, true, 1);
    const out = download(native.opMoeExperts(hx, ids, w, ex.handles[0]!, ex.handles[1]!, ex.handles[2]!));
    assert.ok(out.every(Number.isFinite) && out.some((v) => v !== 0));
    const empty = runExperts(ex, { T: 0, k: 2, x: new Float32Array(0), ids: new Int32Array(0), weights: new Float32Array(0) });
    assert.equal(empty.length, 0);
    const noSlots = runExperts(ex, { T: 2, k: 0, x: randn(512, 75), ids: new Int32Array(0), weights: new Float32Array(0) });
    assert.ok(noSlots.length === 512 && noSlots.every((v) => v === 0));
    for (const h of [hl, hx, ids, w]) native.tRelease(h);
    freeExperts(ex);
    const after = native.tStats();
    assert.deepEqual([after.liveTensors, after.liveBytes], [before.liveTensors, before.liveBytes]);
  });
}
