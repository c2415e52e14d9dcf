// The MoE ops on the device (native/cuda/moe_*.cu) against float64 references (moe-reference.ts, weights
// dequantized by the native dequantizer) and, where the CPU ops exist (opMoeRoute, opMoeExperts), the CPU.
// Tolerances, by what each path rounds:
//   routing: ids exact (inputs drawn with no near-ties: relative gaps ≥ 1e-5 between deciding scores; ties
//     themselves are tested apart), weights ≤ 1e-6 absolute (f32 softmax / sigmoid against float64);
//   GEMV path (decode): quantized weights take q8 activations (x and silu(g)·u per row, as the CPU):
//     NMSE ≤ 1e-6 against float64 over the same q8-rounded activations (the device's f32 sums and a rare
//     code flipped by them are all that differ), ≤ 3e-3 against float64 with no rounding (what q8 costs);
//     plain weights f32 activations: ≤ 1e-9;
//   tensor-core path (prefill): bf16 x, weights and silu(g)·u, f32 sums: NMSE ≤ 1e-6 against float64 over
//     the same bf16 roundings, ≤ 2e-4 against float64 with none.
// Per-step device tensors are poisoned (NaN) so that an element no kernel writes fails the NMSE (Infinity).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cudaNative, type CudaNative } from '../../src/backend/cuda-backend.js';
import { DType } from '../../src/backend/dtype.js';
import { loadNative } from '../../src/backend/native.js';
import { RandomTensorSource, uniformSampler } from '../../src/make-model/random-model.js';
import { freshSeed, maxAbsDiff, needCuda, nmse, randn } from './helpers.js';
import { asPathSees, expertsRef, routeRef, type ExpertWeightsRef, type Rounding, type RouteSpec } from './moe-reference.js';

const ROUTE_W_TOL = 1e-6;
const TIGHT_TOL = 1e-6; // against float64 rounded as the path rounds
const PLAIN_TOL = 1e-9;
const Q8_EXACT_TOL = 3e-3; // GEMV path (q8 activations) against float64 with no rounding
const BF16_EXACT_TOL = 2e-4; // tensor-core path against float64 with no rounding
const PLAIN = new Set<number>([DType.F32, DType.F16, DType.BF16]);
type Path = 'gemv' | 'mma';

/** The CPU ops of the same contract, where the CPU engineer's build has them (native/napi). */
interface CpuMoe {
  tAlloc(dtype: number, shape: number[], scratch: boolean): number;
  tUpload(h: number, data: ArrayBufferView): void;
  tDownload(h: number): Float32Array | Int32Array;
  tRelease(h: number): void;
  tReleaseScratch(): void;
  opMoeRoute?(logits: number, bias: number, scoring: number, topK: number, numGroups: number, topKGroups: number, groupScore: number, normalize: boolean, scale: number): [number, number];
  opMoeExperts?(x: number, ids: number, weights: number, gate: number, up: number, down: number): number;
}

/** One MoE layer on the device and its dequantized values for the references. */
interface Layer {
  E: number;
  H: number;
  I: number;
  handles: { gate: number; up: number; down: number };
  bytes: { gate: Uint8Array; up: Uint8Array; down: Uint8Array };
  ref: { gate: ExpertWeightsRef; up: ExpertWeightsRef; down: ExpertWeightsRef };
  label: string;
}

describe('CUDA MoE ops vs float64 (and the CPU ops where present)', needCuda, () => {
  let n: CudaNative;
  const cpu = loadNative() as unknown as CpuMoe;
  const live: number[] = [];
  const report: string[] = [];

  before(() => {
    n = cudaNative()!;
    n.cudaSetOptions({ poison: true });
    if (!cpu.opMoeRoute || !cpu.opMoeExperts) report.push('CPU opMoeRoute / opMoeExperts not in this build: compared with float64 only');
  });
  after(() => {
    n?.cudaSetOptions({ poison: false, moeGemvMaxSlots: -1, gemvWarps: 0 });
    for (const h of live.splice(0)) n?.cudaRelease(h);
    if (report.length) console.log(report.join('\n'));
  });

  const upload = (dtype: number, shape: number[], data: ArrayBufferView): number => {
    const h = n.cudaAlloc(dtype, shape, false);
    n.cudaUpload(h, data as Float32Array);
    return h;
  };
  const path = (p: Path): void => void n.cudaSetOptions({ moeGemvMaxSlots: p === 'gemv' ? 1 << 30 : 0 });

  /**
   * Weights [E, N, K] of a type from N(0, 1/K) values: the device tensor's bytes and the dequantized values. Large
   * tensors are assembled from runs of blocks encoded once (RandomTensorSource: ggml's K-quant encoder takes
   * seconds for a layer), small ones encoded value by value.
   */
  function projection(type: number, E: number, N: number, K: number, seed: number): { bytes: Uint8Array; ref: ExpertWeightsRef } {
    const count = E * N * K;
    const bytes = count > 1 << 23 ? new RandomTensorSource(seed).bytes(type, 0, 1 / Math.sqrt(K), count) : loadNative().quantize(type, randn(count, seed, 1 / Math.sqrt(K)));
    return { bytes, ref: { type, values: loadNative().dequantize(type, bytes, E * N * K), E, N, K } };
  }

  function layer(gateType: number, downType: number, E: number, H: number, I: number, seed: number): Layer {
    const g = projection(gateType, E, I, H, seed);
    const u = projection(gateType, E, I, H, seed + 1);
    const d = projection(downType, E, H, I, seed + 2);
    const handles = { gate: upload(gateType, [E, I, H], g.bytes), up: upload(gateType, [E, I, H], u.bytes), down: upload(downType, [E, H, I], d.bytes) };
    live.push(handles.gate, handles.up, handles.down);
    const name = (t: number): string => Object.entries(DType).find(([, v]) => v === t)![0];
    return { E, H, I, handles, bytes: { gate: g.bytes, up: u.bytes, down: d.bytes }, ref: { gate: g.ref, up: u.ref, down: d.ref }, label: `${name(gateType)}/${name(downType)} E=${E} H=${H} I=${I}` };
  }

  /** ids [T, k]: every token's slot 0 is expert `hot` (one expert chosen by all), the others distinct and random. */
  function skewedIds(T: number, k: number, E: number, seed: number, hot = 3): Int32Array {
    const rand = uniformSampler(seed);
    const ids = new Int32Array(T * k);
    for (let t = 0; t < T; t++) {
      const chosen = [hot];
      while (chosen.length < k) {
        const e = Math.floor(rand() * E);
        if (!chosen.includes(e)) chosen.push(e);
      }
      ids.set(chosen, t * k);
    }
    return ids;
  }

  /** The device's moeExperts on uploaded inputs, downloaded. */
  function experts(L: Layer, x: Float32Array, ids: Int32Array, w: Float32Array, T: number, k: number, handles = L.handles): Float32Array {
    const hx = upload(DType.F32, [T, L.H], x);
    const hi = upload(DType.I32, [T, k], ids);
    const hw = upload(DType.F32, [T, k], w);
    try {
      const out = n.cudaOpMoeExperts(hx, hi, hw, handles.gate, handles.up, handles.down);
      const got = n.cudaDownload(out) as Float32Array;
      n.cudaRelease(out);
      return got;
    } finally {
      for (const h of [hx, hi, hw]) n.cudaRelease(h);
    }
  }

  /** The CPU's opMoeExperts on the same inputs, or undefined where the build has none. */
  function cpuExperts(L: Layer, x: Float32Array, ids: Int32Array, w: Float32Array, T: number, k: number): Float32Array | undefined {
    if (!cpu.opMoeExperts) return undefined;
    const t = (dtype: number, shape: number[], data: ArrayBufferView): number => {
      const h = cpu.tAlloc(dtype, shape, false);
      cpu.tUpload(h, data);
      return h;
    };
    const hs = [t(DType.F32, [T, L.H], x), t(DType.I32, [T, k], ids), t(DType.F32, [T, k], w), t(L.ref.gate.type, [L.E, L.I, L.H], L.bytes.gate),
      t(L.ref.up.type, [L.E, L.I, L.H], L.bytes.up), t(L.ref.down.type, [L.E, L.H, L.I], L.bytes.down)] as const;
    const out = cpu.opMoeExperts(...hs);
    const got = cpu.tDownload(out) as Float32Array;
    for (const h of [out, ...hs]) cpu.tRelease(h);
    return got;
  }

  const roundingOf = (p: Path): Rounding => (p === 'gemv' ? 'q8' : 'bf16');
  const reference = (L: Layer, x: Float32Array, ids: Int32Array, w: ArrayLike<number>, T: number, k: number, r: Rounding): Float64Array =>
    expertsRef(x, T, ids, w, k, asPathSees(L.ref.gate, r), asPathSees(L.ref.up, r), asPathSees(L.ref.down, r), r);

  /** Checks moeExperts on one path against float64 (and the CPU at T ≤ 64); returns the NMSE against the rounded reference. */
  function checkExperts(L: Layer, T: number, k: number, p: Path, seed: number, exact = false): number {
    const x = randn(T * L.H, seed, 2);
    const ids = skewedIds(T, k, L.E, seed + 1);
    const w = Float32Array.from(randn(T * k, seed + 2), (v) => 0.25 + Math.abs(v));
    path(p);
    const got = experts(L, x, ids, w, T, k);
    const label = `moeExperts ${L.label} T=${T} k=${k} path ${p} (seed ${seed})`;
    const tol = p === 'gemv' && PLAIN.has(L.ref.gate.type) && PLAIN.has(L.ref.down.type) ? PLAIN_TOL : TIGHT_TOL;
    const want = reference(L, x, ids, w, T, k, roundingOf(p));
    const e = nmse(got, want);
    assert.ok(e <= tol, `${label}: NMSE ${e} > ${tol} against float64 rounded as the ${p} path rounds (max abs ${maxAbsDiff(got, want)}; Infinity: NaN, an unwritten element)`);
    if (exact) {
      const ex = nmse(got, reference(L, x, ids, w, T, k, 'exact'));
      const exTol = p === 'gemv' ? Q8_EXACT_TOL : BF16_EXACT_TOL;
      assert.ok(ex <= exTol, `${label}: NMSE ${ex} > ${exTol} against float64 with no rounding`);
      report.push(`${label}: NMSE ${e.toExponential(2)} vs rounded float64, ${ex.toExponential(2)} vs exact float64`);
    }
    const c = T <= 64 ? cpuExperts(L, x, ids, w, T, k) : undefined;
    if (c) {
      const ce = nmse(got, c);
      // The CPU rounds activations to q8 as the GEMV path does; the tensor-core path rounds to bf16 instead, and
      // the two roundings differ by NMSE 1.6e-4 (Q8_0) to 3.5e-4 (K-quants), measured with this file's reference.
      const cTol = p === 'gemv' ? TIGHT_TOL : 1e-3;
      assert.ok(ce <= cTol, `${label}: NMSE ${ce} > ${cTol} against the CPU's opMoeExperts`);
    }
    n.cudaReleaseScratch();
    return e;
  }

  it('moeRoute: exact ids, weights ≤ 1e-6, every spec variant; ties pick the lower index; bad specs throw', () => {
    const seed = freshSeed();
    const softmax = (topK: number, normalize: boolean): RouteSpec => ({ scoring: 'softmax', topK, numGroups: 1, topKGroups: 1, groupScore: 'max', normalize, scale: 1 });
    const variants: [string, number, RouteSpec, boolean][] = [
      ['Qwen3 (softmax, top-8, normalized)', 128, softmax(8, true), false],
      ['softmax, not normalized', 128, softmax(8, false), false],
      ['softmax top-1', 64, softmax(1, false), false],
      ['tiny E (8, top-2)', 8, softmax(2, true), false],
      ['E = 512', 512, softmax(8, true), false],
      ['DeepSeek-V2 (softmax, groups by max, scale 16)', 160, { scoring: 'softmax', topK: 6, numGroups: 8, topKGroups: 3, groupScore: 'max', normalize: false, scale: 16 }, false],
      ['DeepSeek-V3 (sigmoid, bias, groups by top-2 sum, scale 2.5)', 256, { scoring: 'sigmoid', topK: 8, numGroups: 8, topKGroups: 4, groupScore: 'top2sum', normalize: true, scale: 2.5 }, true],
      ['sigmoid with bias, no groups', 64, { scoring: 'sigmoid', topK: 4, numGroups: 1, topKGroups: 1, groupScore: 'max', normalize: false, scale: 1 }, true],
    ];
    const T = 37; // not a multiple of the 4 tokens a block
    for (const [name, E, s, withBias] of variants) {
      let logits = randn(T * E, seed, 2);
      let bias = withBias ? randn(E, seed + 1, 0.1) : undefined;
      let want = routeRef(logits, T, E, s, bias);
      for (let tries = 1; want.margin < 1e-5 && tries < 50; tries++) {
        logits = randn(T * E, seed + 100 * tries, 2);
        bias = withBias ? randn(E, seed + 100 * tries + 1, 0.1) : undefined;
        want = routeRef(logits, T, E, s, bias);
      }
      const got = route(logits, T, E, s, bias);
      const label = `${name} (seed ${seed})`;
      const bad = want.ids.findIndex((v, i) => got.ids[i] !== v);
      assert.equal(bad, -1, `${label}: token ${Math.floor(bad / s.topK)} ids ${got.ids.subarray(bad - (bad % s.topK), bad - (bad % s.topK) + s.topK).join(',')}, want ${want.ids.subarray(bad - (bad % s.topK), bad - (bad % s.topK) + s.topK).join(',')}`);
      assert.ok(maxAbsDiff(got.weights, want.weights) <= ROUTE_W_TOL, `${label}: weights max abs diff ${maxAbsDiff(got.weights, want.weights)}`);
      const c = cpuRoute(logits, T, E, s, bias);
      if (c) {
        assert.deepEqual(Array.from(c.ids), Array.from(got.ids), `${label}: ids differ from the CPU's opMoeRoute`);
        assert.ok(maxAbsDiff(c.weights, got.weights) <= ROUTE_W_TOL, `${label}: weights differ from the CPU's by ${maxAbsDiff(c.weights, got.weights)}`);
      }
    }
    // Ties: equal logits choose the lowest ids (equal groups: the lowest groups), in order; the bias never weighs.
    const flat = route(new Float32Array(2 * 256), 2, 256, variants[6]![2], new Float32Array(256));
    assert.deepEqual(Array.from(flat.ids), [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7], 'ties (DeepSeek-V3 spec, all equal)');
    assert.ok(maxAbsDiff(flat.weights, new Float32Array(16).fill(2.5 / 8)) <= ROUTE_W_TOL, 'tied weights: normalized then scaled');
    const pushed = new Float32Array(64).fill(0);
    pushed[40] = 10;
    const b = route(new Float32Array(64), 1, 64, variants[7]![2], pushed);
    assert.equal(b.ids[0], 40, 'the bias chooses');
    assert.ok(Math.abs(b.weights[0]! - 0.5) <= ROUTE_W_TOL, `the bias does not weigh: sigmoid(0) = 0.5, got ${b.weights[0]}`);
    const l = upload(DType.F32, [2, 8], new Float32Array(16));
    assert.throws(() => n.cudaOpMoeRoute(l, -1, 0, 9, 1, 1, 0, false, 1), /top_k/);
    assert.throws(() => n.cudaOpMoeRoute(l, -1, 0, 2, 3, 1, 0, false, 1), /num_groups must divide E/);
    n.cudaRelease(l);
    n.cudaReleaseScratch();
  });

  function route(logits: Float32Array, T: number, E: number, s: RouteSpec, bias?: Float32Array): { ids: Int32Array; weights: Float32Array } {
    const hl = upload(DType.F32, [T, E], logits);
    const hb = bias ? upload(DType.F32, [E], bias) : -1;
    const [ids, w] = n.cudaOpMoeRoute(hl, hb, s.scoring === 'sigmoid' ? 1 : 0, s.topK, s.numGroups, s.topKGroups, s.groupScore === 'top2sum' ? 1 : 0, s.normalize, s.scale);
    const out = { ids: n.cudaDownload(ids) as Int32Array, weights: n.cudaDownload(w) as Float32Array };
    for (const h of [ids, w, hl, ...(bias ? [hb] : [])]) n.cudaRelease(h);
    return out;
  }

  function cpuRoute(logits: Float32Array, T: number, E: number, s: RouteSpec, bias?: Float32Array): { ids: Int32Array; weights: Float32Array } | undefined {
    if (!cpu.opMoeRoute) return undefined;
    const hl = cpu.tAlloc(DType.F32, [T, E], false);
    cpu.tUpload(hl, logits);
    let hb = -1;
    if (bias) {
      hb = cpu.tAlloc(DType.F32, [E], false);
      cpu.tUpload(hb, bias);
    }
    const [ids, w] = cpu.opMoeRoute(hl, hb, s.scoring === 'sigmoid' ? 1 : 0, s.topK, s.numGroups, s.topKGroups, s.groupScore === 'top2sum' ? 1 : 0, s.normalize, s.scale);
    const out = { ids: cpu.tDownload(ids) as Int32Array, weights: cpu.tDownload(w) as Float32Array };
    for (const h of [ids, w, hl, ...(bias ? [hb] : [])]) cpu.tRelease(h);
    return out;
  }

  it('moeExperts, every weight type, T = 1, 3, 16, 64, 300 with one expert chosen by every token: both paths against float64', () => {
    const seed = freshSeed();
    const types: [number, number][] = [[DType.Q4_K, DType.Q6_K], [DType.Q4_K, DType.Q4_K], [DType.Q5_K, DType.Q5_K], [DType.Q6_K, DType.Q6_K],
      [DType.Q8_0, DType.Q8_0], [DType.BF16, DType.BF16], [DType.F16, DType.F16], [DType.F32, DType.F32]];
    for (const [gt, dt] of types) {
      const L = layer(gt, dt, 32, 512, 256, seed + gt);
      let worst = 0;
      for (const T of [1, 3, 16, 64, 300]) for (const p of ['gemv', 'mma'] as const) worst = Math.max(worst, checkExperts(L, T, 8, p, seed + T, T === 64));
      report.push(`moeExperts ${L.label}: worst NMSE ${worst.toExponential(2)} against float64 rounded as each path rounds`);
    }
  });

  it('moeExperts at the Qwen3-30B-A3B layer shape (H 2048, I 768, Q4_K gate/up, Q6_K down; 16 experts), and 4 warps a row pair', () => {
    const seed = freshSeed();
    const L = layer(DType.Q4_K, DType.Q6_K, 16, 2048, 768, seed);
    for (const [T, p] of [[1, 'gemv'], [2, 'gemv'], [16, 'gemv'], [16, 'mma'], [40, 'mma']] as const) checkExperts(L, T, 8, p, seed + T, T === 16);
    n.cudaSetOptions({ gemvWarps: 4 }); // more warps than the rows have units: every thread's share still counted once
    checkExperts(L, 16, 8, 'gemv', seed + 99);
    n.cudaSetOptions({ gemvWarps: 0 });
  });

  it('batch invariance: on one path, a token gives the same output bits at every batch size', () => {
    const seed = freshSeed();
    const L = layer(DType.Q4_K, DType.Q6_K, 32, 512, 256, seed);
    const T = 300;
    const k = 8;
    const x = randn(T * L.H, seed + 1, 2);
    const ids = skewedIds(T, k, L.E, seed + 2);
    const w = Float32Array.from(randn(T * k, seed + 3), (v) => Math.abs(v));
    // GEMV: T = 1, 2 single-slot tiles; 16 and 300 grouped (8 slots a tile). Tensor cores: 32-slot tiles at T = 3, 64 at 300.
    for (const [p, sizes] of [['gemv', [1, 2, 16, 300]], ['mma', [1, 3, 300]]] as const) {
      path(p);
      const full = experts(L, x, ids, w, T, k);
      for (const t of sizes) {
        const part = experts(L, x.subarray(0, t * L.H), ids.subarray(0, t * k), w.subarray(0, t * k), t, k);
        assert.equal(maxAbsDiff(part, full.subarray(0, t * L.H)), 0, `${p} path: the first ${t} tokens alone differ from the same tokens in a batch of ${T} (seed ${seed})`);
      }
      n.cudaReleaseScratch();
    }
  });

  it('ids outside [0, E) throw naming the id; shapes are checked', () => {
    const L = layer(DType.Q8_0, DType.Q8_0, 8, 256, 512, 5);
    for (const bad of [8, -1]) {
      const ids = Int32Array.from([0, 1, bad, 2]);
      assert.throws(() => experts(L, randn(2 * 256, 1), ids, new Float32Array(4).fill(1), 2, 2), new RegExp(`moe_experts: expert id ${bad} outside \\[0, 8\\)`));
    }
    const narrow = upload(DType.F32, [2, 128], new Float32Array(256));
    const x = upload(DType.F32, [2, 256], new Float32Array(512));
    const ids = upload(DType.I32, [2, 2], new Int32Array(4));
    const w = upload(DType.F32, [2, 2], new Float32Array(4));
    assert.throws(() => n.cudaOpMoeExperts(narrow, ids, w, L.handles.gate, L.handles.up, L.handles.down), /moe_experts: gate must be \[E, I, H = 128\]/);
    assert.throws(() => n.cudaOpMoeExperts(x, ids, w, L.handles.gate, L.handles.down, L.handles.down), /moe_experts: up .* must match gate/);
    assert.throws(() => n.cudaOpMoeExperts(x, ids, w, L.handles.gate, L.handles.up, L.handles.up), /moe_experts: down must be \[E, H, I\]/);
    for (const h of [narrow, x, ids, w]) n.cudaRelease(h);
    n.cudaReleaseScratch();
  });

  it('repeated calls after the first reserve no more pool memory (both paths)', () => {
    const L = layer(DType.Q4_K, DType.Q6_K, 32, 512, 256, 7);
    for (const [p, T] of [['gemv', 2], ['gemv', 40], ['mma', 300]] as const) {
      path(p);
      const x = randn(T * L.H, 1);
      const ids = skewedIds(T, 8, L.E, 2);
      const w = new Float32Array(T * 8).fill(0.125);
      experts(L, x, ids, w, T, 8);
      n.cudaReleaseScratch();
      const first = n.cudaStats();
      for (let i = 0; i < 3; i++) {
        experts(L, x, ids, w, T, 8);
        n.cudaReleaseScratch();
      }
      const later = n.cudaStats();
      assert.equal(later.poolReservedBytes, first.poolReservedBytes, `${p} path T=${T}: the pool grew from ${first.poolReservedBytes} to ${later.poolReservedBytes} bytes`);
      assert.equal(later.liveTensors, first.liveTensors, `${p} path T=${T}: tensors leaked`);
    }
  });

  it('a captured graph of moeRoute + moeExperts replays with new logits: the routing changes and each replay matches float64', () => {
    const seed = freshSeed();
    const L = layer(DType.Q4_K, DType.Q6_K, 32, 512, 256, seed);
    const s: RouteSpec = { scoring: 'softmax', topK: 8, numGroups: 1, topKGroups: 1, groupScore: 'max', normalize: true, scale: 1 };
    n.cudaSetOptions({ moeGemvMaxSlots: -1 }); // the default threshold: T = 2 direct GEMV, 4 grouped GEMV, 200 tensor cores
    for (const T of [2, 4, 200]) {
      const p: Path = T * 8 <= 1024 ? 'gemv' : 'mma';
      const logits = upload(DType.F32, [T, L.E], new Float32Array(T * L.E));
      const x = upload(DType.F32, [T, L.H], randn(T * L.H, seed, 2));
      live.push(logits, x);
      const run = (): [number, number, number] => {
        const [ids, w] = n.cudaOpMoeRoute(logits, -1, 0, s.topK, 1, 1, 0, s.normalize, s.scale);
        return [ids, w, n.cudaOpMoeExperts(x, ids, w, L.handles.gate, L.handles.up, L.handles.down)];
      };
      n.cudaUpload(logits, randn(T * L.E, seed + 1));
      run(); // warms the pool and the kernels outside the capture
      n.cudaReleaseScratch();
      n.cudaCaptureBegin();
      let graph = 0;
      let outs: [number, number, number] = [0, 0, 0];
      try {
        outs = run();
      } finally {
        graph = n.cudaCaptureEnd();
      }
      for (const h of outs) n.cudaPersist(h);
      let previous = '';
      for (let trial = 0; trial < 3; trial++) {
        let lg = randn(T * L.E, seed + 10 + trial, 2);
        for (let tries = 1; routeRef(lg, T, L.E, s).margin < 1e-5 && tries < 50; tries++) lg = randn(T * L.E, seed + 1000 * tries + trial, 2);
        const xs = randn(T * L.H, seed + 20 + trial, 2);
        n.cudaUpload(logits, lg);
        n.cudaUpload(x, xs);
        n.cudaGraphReplay(graph);
        const ids = n.cudaDownload(outs[0]) as Int32Array;
        const w = n.cudaDownload(outs[1]) as Float32Array;
        const got = n.cudaDownload(outs[2]) as Float32Array;
        const want = routeRef(lg, T, L.E, s);
        const label = `graph T=${T} (${p} path) replay ${trial} (seed ${seed})`;
        assert.deepEqual(Array.from(ids), Array.from(want.ids), `${label}: routed ids`);
        assert.ok(maxAbsDiff(w, want.weights) <= ROUTE_W_TOL, `${label}: routed weights`);
        assert.notEqual(ids.join(','), previous, `${label}: the routing did not change between replays`);
        previous = ids.join(',');
        const e = nmse(got, reference(L, xs, ids, w, T, 8, roundingOf(p)));
        assert.ok(e <= TIGHT_TOL, `${label}: NMSE ${e} against float64`);
      }
      n.cudaGraphRelease(graph);
      for (const h of outs) n.cudaRelease(h);
      n.cudaReleaseScratch();
    }
  });

  it('cudaStackMappings: experts uploaded from separate files give the tensor uploaded whole; bad arguments throw', () => {
    const L = layer(DType.Q6_K, DType.Q6_K, 8, 256, 256, 11);
    const dir = mkdtempSync(join(tmpdir(), 'kt-moe-'));
    try {
      // Experts alternate between two files, each slice after a 48-byte header of its own.
      const slice = L.bytes.gate.length / L.E;
      const files = [0, 1].map((f) => {
        const parts = Array.from({ length: L.E / 2 }, (_, i) => [new Uint8Array(48).fill(7), L.bytes.gate.subarray((2 * i + f) * slice, (2 * i + f + 1) * slice)]).flat();
        const path = join(dir, `experts${f}.bin`);
        writeFileSync(path, Buffer.concat(parts));
        return n.cudaMapFile(path);
      });
      const maps = Array.from({ length: L.E }, (_, e) => files[e % 2]!);
      const offsets = Array.from({ length: L.E }, (_, e) => Math.floor(e / 2) * (48 + slice) + 48);
      const stacked = n.cudaStackMappings(maps, offsets, DType.Q6_K, [L.E, L.I, L.H]);
      live.push(stacked);
      const x = randn(3 * L.H, 3);
      const ids = skewedIds(3, 4, L.E, 4);
      const w = new Float32Array(12).fill(0.5);
      for (const p of ['gemv', 'mma'] as const) {
        path(p);
        const whole = experts(L, x, ids, w, 3, 4);
        const fromFiles = experts(L, x, ids, w, 3, 4, { ...L.handles, gate: stacked });
        assert.equal(maxAbsDiff(fromFiles, whole), 0, `${p} path: the stacked gate differs from the uploaded one`);
      }
      assert.throws(() => n.cudaStackMappings(maps.slice(1), offsets, DType.Q6_K, [L.E, L.I, L.H]), /mappings and \d+ offsets for \d+ experts/);
      assert.throws(() => n.cudaStackMappings(maps, offsets.map((o) => o + 10 ** 6), DType.Q6_K, [L.E, L.I, L.H]), /runs past the end/);
      assert.throws(() => n.cudaStackMappings(maps.map(() => 9999), offsets, DType.Q6_K, [L.E, L.I, L.H]), /unknown file mapping/);
      for (const m of files) n.cudaUnmapFile(m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    n.cudaReleaseScratch();
  });
});
