// Every CUDA op against the CPU backend on fresh random inputs, with the device's per-step
// tensors poisoned (NaN) first so an element an op fails to write shows as an error.
// Tolerances by precision: f32 paths ≤ 1e-10 NMSE, bf16 tensor-core matmuls ≤ 1e-4; the
// quantized GEMV (q8 activations, int8 dots as the CPU) ≤ 1e-8 (float steps reordered).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Tensor } from '../../src/backend/backend.js';
import { CpuBackend } from '../../src/backend/cpu-backend.js';
import { CudaBackend } from '../../src/backend/cuda-backend.js';
import { DType } from '../../src/backend/dtype.js';
import { readWeightF32 } from '../../src/backend/host-weights.js';
import { freshSeed, maxAbsDiff, needCuda, nmse, randn, WeightFiles } from './helpers.js';

const F32_TOL = 1e-10;
const BF16_TOL = 1e-4;
const Q8_TOL = 1e-8;
const PLAIN = new Set(['F32', 'F16', 'BF16']);
const WEIGHT_TYPES = ['F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'] as const;

/** Each value rounded to the nearest bfloat16 (ties to even), as float32: what a BF16 cache holds. */
function roundBf16(x: Float32Array): Float32Array {
  const bits = new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    bits[i] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
  return new Float32Array(bits.buffer);
}

describe('CUDA ops vs CPU', needCuda, () => {
  let cpu: CpuBackend;
  let gpu: CudaBackend;
  let files: WeightFiles;
  const report: string[] = [];

  before(() => {
    cpu = new CpuBackend();
    gpu = new CudaBackend({ poison: true, precision: 'f32' });
    files = new WeightFiles();
  });
  after(() => {
    files?.dispose();
    gpu?.setOptions({ poison: false });
    if (report.length) console.log(report.join('\n'));
  });

  /** The same F32 / I32 input on both backends. */
  const f32 = (data: Float32Array, shape: number[]): [Tensor, Tensor] => [cpu.constantF32(data, shape), gpu.constantF32(data, shape)];
  const i32 = (data: number[], shape: number[]): [Tensor, Tensor] => [cpu.inputI32(Int32Array.from(data), shape), gpu.inputI32(Int32Array.from(data), shape)];
  const compare = (name: string, c: Tensor, g: Tensor, tol: number, seed: number): number => {
    const want = cpu.read(c);
    const got = gpu.read(g);
    const e = nmse(got, want);
    assert.ok(e <= tol, `${name}: NMSE ${e} > ${tol} (seed ${seed}, max abs ${maxAbsDiff(got, want)})`);
    return e;
  };
  const done = (): void => {
    cpu.endStep();
    gpu.endStep();
  };

  it('embedding dequantizes every weight type exactly as the CPU does', () => {
    const seed = freshSeed();
    const V = 40;
    const D = 512;
    const ids = [3, 0, 39, 17, 17, 8, 25];
    for (const name of WEIGHT_TYPES) {
      const loc = files.write(DType[name], randn(V * D, seed), V, D);
      const [tc, tg] = [cpu.loadWeight(loc), gpu.loadWeight(loc)];
      const [ic, ig] = i32(ids, [ids.length]);
      const want = cpu.read(cpu.embedding(tc, ic));
      const got = gpu.read(gpu.embedding(tg, ig));
      assert.equal(maxAbsDiff(got, want), 0, `${name} (seed ${seed})`);
      cpu.free(tc);
      gpu.free(tg);
      done();
    }
  });

  it('rmsNorm', () => {
    const seed = freshSeed();
    for (const [rows, D] of [[5, 4096], [3, 256], [1, 100]] as const) {
      const [xc, xg] = f32(randn(rows * D, seed, 3), [rows, D]);
      const [wc, wg] = f32(randn(D, seed + 1), [D]);
      compare(`rmsNorm ${rows}x${D}`, cpu.rmsNorm(xc, wc, 1e-5), gpu.rmsNorm(xg, wg, 1e-5), F32_TOL, seed);
      cpu.free(wc);
      gpu.free(wg);
      done();
    }
  });

  /**
   * gemv: the GPU runs its GEMV path (M ≤ gemvMaxRows), which for quantized weights quantizes
   * the activations to q8 as the CPU does: the reference is the CPU's own matmul on the
   * quantized weights. Otherwise (cuBLAS path, f32 activations) it is the CPU's f32 matmul over
   * the same dequantized weights.
   */
  const matmulCase = (name: (typeof WEIGHT_TYPES)[number], M: number, N: number, K: number, tol: number, seed: number, gemv = false): number => {
    const loc = files.write(DType[name], randn(N * K, seed, 0.5), N, K);
    const q8 = gemv && !PLAIN.has(name);
    if (q8) tol = Q8_TOL;
    const [wc, wg] = [q8 ? cpu.loadWeight(loc) : cpu.constantF32(readWeightF32(loc), [N, K]), gpu.loadWeight(loc)];
    const [xc, xg] = f32(randn(M * K, seed + 7), [M, K]);
    const e = compare(`matmul ${name} M=${M} N=${N} K=${K}`, cpu.matmul(xc, wc), gpu.matmul(xg, wg), tol, seed);
    cpu.free(wc, xc);
    gpu.free(wg, xg);
    done();
    return e;
  };

  it('matmul, GEMV path (M ≤ 8): every weight type, q8 activations for quantized ones (both unroll depths)', () => {
    const seed = freshSeed();
    const { gemvUnroll } = gpu.setOptions({ gemvMaxRows: 8 });
    let worst = 0;
    for (const unroll of [2, 1]) {
      gpu.setOptions({ gemvUnroll: unroll });
      for (const name of WEIGHT_TYPES)
        for (const M of [1, 2, 3, 8])
          for (const [N, K] of [[77, 256], [130, 512]] as const) {
            const e = matmulCase(name, M, N, K, F32_TOL, seed + M, true);
            if (!PLAIN.has(name)) worst = Math.max(worst, e);
          }
    }
    report.push(`matmul quantized GEMV vs CPU q8 matmul: worst NMSE ${worst.toExponential(2)}`);
    gpu.setOptions({ gemvMaxRows: -1, gemvUnroll });
  });

  it('matmul, GEMV path with many rows (one warp per row pair) and odd N', () => {
    const seed = freshSeed();
    gpu.setOptions({ gemvMaxRows: 8 });
    // 4501 rows: one warp per row pair; 2500: two.
    for (const name of ['BF16', 'Q4_K', 'Q6_K', 'Q8_0'] as const) for (const M of [1, 3]) for (const N of [4501, 2500]) matmulCase(name, M, N, 256, F32_TOL, seed + M, true);
    gpu.setOptions({ gemvMaxRows: -1 });
  });

  it('matmulGroup and matmulSiluMul: one GEMV launch at decode (q, k, v; gate, up and SwiGLU) equals the CPU, with and without PDL', () => {
    const seed = freshSeed();
    const fused = new CudaBackend({ poison: true, precision: 'f32', fusedOps: true });
    const K = 512;
    /** A weight on both backends, as matmulCase loads it (the CPU's q8 matmul for quantized types, f32 values for plain ones). */
    const weight = (name: (typeof WEIGHT_TYPES)[number], N: number, s: number): [Tensor, Tensor] => {
      const loc = files.write(DType[name], randn(N * K, s, 0.5), N, K);
      return [PLAIN.has(name) ? cpu.constantF32(readWeightF32(loc), [N, K]) : cpu.loadWeight(loc), fused.loadWeight(loc)];
    };
    const tolFor = (names: readonly string[]): number => (names.every((n) => PLAIN.has(n)) ? F32_TOL : Q8_TOL);
    // Q5_K has no int8 kernel: that group runs as three matmuls; so does M = 3 (the grouped kernel takes 1 or 2
    // rows). GEMV rows up to 8 keep every case on the q8 arithmetic the CPU reference computes.
    fused.setOptions({ gemvMaxRows: 8 });
    const groups = [['Q4_K', 'Q4_K', 'Q6_K'], ['Q8_0', 'Q8_0', 'Q8_0'], ['BF16', 'BF16', 'BF16'], ['F16', 'BF16', 'F16'], ['Q4_K', 'Q5_K', 'Q4_K']] as const;
    for (const names of groups)
      for (const M of [1, 2, 3]) {
        const ws = names.map((n, i) => weight(n, [512, 128, 131][i]!, seed + 10 * i));
        const [xc, xg] = [cpu.constantF32(randn(M * K, seed + M), [M, K]), fused.constantF32(randn(M * K, seed + M), [M, K])];
        const got = fused.matmulGroup(xg, ws.map((w) => w[1]));
        const read = got.map((t) => fused.read(t));
        fused.setOptions({ pdl: false });
        const noPdl = fused.matmulGroup(xg, ws.map((w) => w[1])).map((t) => fused.read(t));
        fused.setOptions({ pdl: true });
        ws.forEach(([wc], i) => {
          const want = cpu.read(cpu.matmul(xc, wc));
          const e = nmse(read[i]!, want);
          assert.ok(e <= tolFor(names), `matmulGroup ${names.join('+')} M=${M} weight ${i}: NMSE ${e} (seed ${seed})`);
          assert.equal(maxAbsDiff(noPdl[i]!, read[i]!), 0, `matmulGroup ${names.join('+')} M=${M} weight ${i}: PDL changed the result`);
        });
        cpu.free(xc, ...ws.map((w) => w[0]));
        fused.free(xg, ...ws.map((w) => w[1]));
        cpu.endStep();
        fused.endStep();
      }
    for (const name of ['Q4_K', 'Q6_K', 'Q8_0', 'BF16', 'F16', 'Q5_K'] as const)
      for (const M of [1, 2, 3]) {
        const [gc, gg] = weight(name, 301, seed + 1);
        const [uc, ug] = weight(name, 301, seed + 2);
        const x = randn(M * K, seed + 3 + M, 2);
        const [xc, xg] = [cpu.constantF32(x, [M, K]), fused.constantF32(x, [M, K])];
        const want = cpu.read(cpu.siluMul(cpu.matmul(xc, gc), cpu.matmul(xc, uc)));
        const got = fused.read(fused.matmulSiluMul(xg, gg, ug));
        const e = nmse(got, want);
        assert.ok(e <= tolFor([name]), `matmulSiluMul ${name} M=${M}: NMSE ${e} (seed ${seed})`);
        cpu.free(xc, gc, uc);
        fused.free(xg, gg, ug);
        cpu.endStep();
        fused.endStep();
      }
    fused.setOptions({ gemvMaxRows: -1 });
  });

  it('rmsNorm and addRmsNorm at decode also write q8_K rows, which the GEMV reads: the same results as quantizing afresh, bit for bit', () => {
    const seed = freshSeed();
    const fused = new CudaBackend({ poison: true, precision: 'f32', fusedOps: true });
    for (const D of [4096, 512, 5120])
      for (const M of [1, 2]) {
        const loc = files.write(DType.Q4_K, randn(96 * D, seed, 0.5), 96, D);
        const loc6 = files.write(DType.Q6_K, randn(80 * D, seed + 1, 0.5), 80, D);
        const [w4, w6] = [fused.loadWeight(loc), fused.loadWeight(loc6)];
        const x = fused.constantF32(randn(M * D, seed + M, 3), [M, D]);
        const delta = fused.constantF32(randn(M * D, seed + 5), [M, D]);
        const g = fused.constantF32(randn(D, seed + 2), [D]);
        const rows = fused.inputI32(Int32Array.from({ length: M }, (_, i) => i), [M]);
        for (const add of [false, true]) {
          const h = add ? fused.addRmsNorm(x, delta, g, 1e-5) : fused.rmsNorm(x, g, 1e-5);
          const copy = fused.gatherRows(h, rows); // the same values without the q8_K rows beside them
          const label = `${add ? 'addRmsNorm' : 'rmsNorm'} D=${D} M=${M} (seed ${seed})`;
          assert.equal(maxAbsDiff(fused.read(fused.matmul(h, w4)), fused.read(fused.matmul(copy, w4))), 0, `${label}: Q4_K matmul`);
          const [a, b] = [fused.matmulGroup(h, [w4, w6, w4]), fused.matmulGroup(copy, [w4, w6, w4])];
          a.forEach((t, i) => assert.equal(maxAbsDiff(fused.read(t), fused.read(b[i]!)), 0, `${label}: matmulGroup weight ${i}`));
          assert.equal(maxAbsDiff(fused.read(fused.matmulSiluMul(h, w6, w6)), fused.read(fused.matmulSiluMul(copy, w6, w6))), 0, `${label}: matmulSiluMul`);
          // Written in place: the q8_K rows must not outlive the values they were made from.
          fused.addInPlace(h, delta);
          assert.equal(maxAbsDiff(fused.read(fused.matmul(h, w4)), fused.read(fused.matmul(fused.gatherRows(h, rows), w4))), 0, `${label}: after addInPlace`);
        }
        fused.free(w4, w6, x, delta, g);
        fused.endStep();
      }
  });

  it('matmul, cuBLAS path (M > 8) in f32 precision: every weight type', () => {
    const seed = freshSeed();
    for (const name of WEIGHT_TYPES) for (const M of [9, 64]) matmulCase(name, M, 200, 512, F32_TOL, seed + M);
  });

  it('matmul, tensor-core kernel with in-register dequantization (Q4_K, Q6_K; bf16 precision)', () => {
    const seed = freshSeed();
    gpu.setOptions({ precision: 'bf16', gemvMaxRows: 0, mmaMaxRows: 4096 });
    try {
      let worst = 0;
      for (const variant of [0, 1, 2]) {
        gpu.setOptions({ mmaVariant: variant });
        for (const name of ['Q4_K', 'Q6_K'] as const)
          for (const M of [1, 3, 9, 16, 33, 64, 100, 129])
            for (const [N, K] of [[77, 256], [1030, 2048]] as const) worst = Math.max(worst, matmulCase(name, M, N, K, BF16_TOL, seed + M));
      }
      report.push(`matmul mma (bf16 fragments dequantized in registers): worst NMSE ${worst.toExponential(2)}`);
    } finally {
      gpu.setOptions({ precision: 'f32', gemvMaxRows: -1, mmaMaxRows: -1, mmaVariant: 2 });
    }
  });

  it('matmul, cuBLAS path (M > 8) in bf16 precision (tensor cores)', () => {
    const seed = freshSeed();
    gpu.setOptions({ precision: 'bf16', mmaMaxRows: 0 });
    try {
      let worst = 0;
      for (const name of WEIGHT_TYPES) for (const M of [9, 100]) worst = Math.max(worst, matmulCase(name, M, 256, 1024, BF16_TOL, seed + M));
      report.push(`matmul bf16 path: worst NMSE ${worst.toExponential(2)}`);
    } finally {
      gpu.setOptions({ precision: 'f32', mmaMaxRows: -1 });
    }
  });

  it('rope, both pairings, partial rotation, long positions', () => {
    const seed = freshSeed();
    const T = 6;
    const heads = 4;
    const positions = [0, 1, 17, 4095, 65537, 131071];
    for (const [headDim, rotDim] of [[64, 64], [128, 128], [64, 32]] as const) {
      for (const interleaved of [false, true]) {
        const inv = Float32Array.from({ length: rotDim / 2 }, (_, i) => Math.pow(500000, (-2 * i) / rotDim));
        const [xc, xg] = f32(randn(T * heads * headDim, seed), [T, heads * headDim]);
        const [pc, pg] = i32(positions, [T]);
        const [fc, fg] = f32(inv, [inv.length]);
        cpu.rope(xc, pc, fc, headDim, rotDim, interleaved);
        gpu.rope(xg, pg, fg, headDim, rotDim, interleaved);
        compare(`rope ${headDim}/${rotDim} interleaved=${interleaved}`, xc, xg, F32_TOL, seed);
        cpu.free(xc, fc);
        gpu.free(xg, fg);
        done();
      }
    }
  });

  it('storeKv writes rows at their slots and nowhere else', () => {
    const seed = freshSeed();
    const [blocks, bs, width] = [6, 16, 128];
    const cache = randn(blocks * bs * width, seed);
    const [kc, kg] = f32(cache, [blocks, bs, width]);
    const [vc, vg] = f32(cache.map((x) => -x), [blocks, bs, width]);
    const slots = [5, 90, 16, 17, 63, 64];
    const [k1, k2] = f32(randn(slots.length * width, seed + 1), [slots.length, width]);
    const [v1, v2] = f32(randn(slots.length * width, seed + 2), [slots.length, width]);
    const [sc, sg] = i32(slots, [slots.length]);
    cpu.storeKv(kc, vc, k1, v1, sc);
    gpu.storeKv(kg, vg, k2, v2, sg);
    assert.equal(maxAbsDiff(gpu.read(kg), cpu.read(kc)), 0);
    assert.equal(maxAbsDiff(gpu.read(vg), cpu.read(vc)), 0);
    cpu.free(kc, vc, k1, v1);
    gpu.free(kg, vg, k2, v2);
    done();
  });

  it('pagedAttention: prefill chunks and decodes, GQA, scattered blocks, several head sizes', () => {
    const seed = freshSeed();
    const bs = 16;
    const blocks = 300;
    // [query rows, cached length after this step] per sequence: decodes, a chunk on a prefix, a fresh prompt.
    const seqs: [number, number][] = [[1, 1], [1, 70], [5, 37], [0, 12], [19, 19], [1, 130], [1, 600]];
    // Rows × KV heads below ~4 per SM split the keys over blocks (merged after); [64, 64, 32] does not.
    for (const [H, Hkv, D] of [[8, 2, 128], [4, 4, 64], [12, 4, 96], [32, 8, 128], [64, 64, 32], [4, 2, 256]] as const) {
      const width = Hkv * D;
      const T = seqs.reduce((a, [q]) => a + q, 0);
      const cuQ = [0];
      for (const [q] of seqs) cuQ.push(cuQ[cuQ.length - 1]! + q);
      const maxBlocks = 38;
      // Block b of sequence s is physical block (b * seqs.length + s * 7) % blocks: interleaved, out of order.
      const tables = seqs.flatMap((_, s) => Array.from({ length: maxBlocks }, (_, b) => (b * seqs.length + s * 7) % blocks));
      const [kc, kg] = f32(randn(blocks * bs * width, seed), [blocks, bs, width]);
      const [vc, vg] = f32(randn(blocks * bs * width, seed + 1), [blocks, bs, width]);
      const [qc, qg] = f32(randn(T * H * D, seed + 2), [T, H * D]);
      const [cuc, cug] = i32(cuQ, [cuQ.length]);
      const [lc, lg] = i32(seqs.map(([, l]) => l), [seqs.length]);
      const [tc, tg] = i32(tables, [seqs.length, maxBlocks]);
      const [zc, zg] = i32([0], [1]); // slots and positions: unused by attention
      const inputs = (cuQ: Tensor, kvLens: Tensor, blockTables: Tensor, unused: Tensor) => ({ cuQ, kvLens, blockTables, slots: unused, positions: unused });
      const scale = 1 / Math.sqrt(D);
      const want = cpu.pagedAttention(qc, kc, vc, inputs(cuc, lc, tc, zc), Hkv, scale);
      const got = gpu.pagedAttention(qg, kg, vg, inputs(cug, lg, tg, zg), Hkv, scale);
      compare(`pagedAttention H=${H} Hkv=${Hkv} D=${D}`, want, got, F32_TOL, seed);
      cpu.free(kc, vc, qc);
      gpu.free(kg, vg, qg);
      done();
    }
  });

  it('pagedAttention at decode: split blocks merge themselves (counters reset for the next call) and write q8_K rows the GEMV reads', () => {
    const seed = freshSeed();
    const bs = 16;
    const blocks = 120;
    const fused = new CudaBackend({ poison: true, precision: 'f32', fusedOps: true });
    for (const [H, Hkv, D] of [[32, 8, 128], [8, 2, 128], [8, 8, 64]] as const)
      for (const lens of [[700], [33, 1]]) {
        const S = lens.length;
        const width = Hkv * D;
        const maxBlocks = 48;
        const tables = lens.flatMap((_, s) => Array.from({ length: maxBlocks }, (_, b) => (b * S + s * 5) % blocks));
        const k = randn(blocks * bs * width, seed);
        const v = randn(blocks * bs * width, seed + 1);
        const q = randn(S * H * D, seed + 2);
        const on = <B extends CpuBackend | CudaBackend>(b: B) => {
          const inputs = { cuQ: b.inputI32(Int32Array.from(lens.map((_, i) => i).concat(S)), [S + 1]), kvLens: b.inputI32(Int32Array.from(lens), [S]),
            blockTables: b.inputI32(Int32Array.from(tables), [S, maxBlocks]), slots: b.inputI32(Int32Array.of(0), [1]), positions: b.inputI32(Int32Array.of(0), [1]) };
          return b.pagedAttention(b.constantF32(q, [S, H * D]), b.constantF32(k, [blocks, bs, width]), b.constantF32(v, [blocks, bs, width]), inputs, Hkv, 1 / Math.sqrt(D));
        };
        const label = `H=${H} Hkv=${Hkv} D=${D} lens ${lens.join(',')} (seed ${seed})`;
        const want = cpu.read(on(cpu));
        const first = on(fused);
        const again = fused.read(on(fused));
        const e = nmse(fused.read(first), want);
        assert.ok(e <= F32_TOL, `${label}: NMSE ${e}`);
        assert.equal(maxAbsDiff(again, fused.read(first)), 0, `${label}: a second call differs (split counters not reset?)`);
        const w = fused.loadWeight(files.write(DType.Q4_K, randn(64 * H * D, seed + 3, 0.5), 64, H * D));
        const copy = fused.gatherRows(first, fused.inputI32(Int32Array.from(lens.map((_, i) => i)), [S]));
        assert.equal(maxAbsDiff(fused.read(fused.matmul(first, w)), fused.read(fused.matmul(copy, w))), 0, `${label}: GEMV over the q8_K rows`);
        fused.free(w);
        cpu.endStep();
        fused.endStep();
      }
  });

  it('BF16 KV caches: storeKv rounds rows to bf16, attention over them equals the CPU over the rounded values', () => {
    const seed = freshSeed();
    const bs = 16;
    const blocks = 64;
    const [H, Hkv, D] = [32, 8, 128];
    const width = Hkv * D;
    // Every slot of the caches written through storeKv; the CPU caches get the same values rounded to bf16.
    const n = blocks * bs;
    const k = randn(n * width, seed);
    const v = randn(n * width, seed + 1);
    const [kc, vc] = [cpu.constantF32(roundBf16(k), [blocks, bs, width]), cpu.constantF32(roundBf16(v), [blocks, bs, width])];
    const [kg, vg] = [gpu.zeros(DType.BF16, [blocks, bs, width]), gpu.zeros(DType.BF16, [blocks, bs, width])];
    gpu.storeKv(kg, vg, gpu.constantF32(k, [n, width]), gpu.constantF32(v, [n, width]), gpu.inputI32(Int32Array.from({ length: n }, (_, i) => i), [n]));
    const seqs: [number, number][] = [[1, 1], [1, 300], [7, 40], [1, 1000]];
    const T = seqs.reduce((a, [q]) => a + q, 0);
    const cuQ = [0];
    for (const [q] of seqs) cuQ.push(cuQ[cuQ.length - 1]! + q);
    const maxBlocks = 63;
    const tables = seqs.flatMap((_, s) => Array.from({ length: maxBlocks }, (_, b) => (b * 5 + s * 3) % blocks));
    const [qc, qg] = f32(randn(T * H * D, seed + 2), [T, H * D]);
    const [cuc, cug] = i32(cuQ, [cuQ.length]);
    const [lc, lg] = i32(seqs.map(([, l]) => l), [seqs.length]);
    const [tc, tg] = i32(tables, [seqs.length, maxBlocks]);
    const [zc, zg] = i32([0], [1]);
    const inputs = (cuQ: Tensor, kvLens: Tensor, blockTables: Tensor, unused: Tensor) => ({ cuQ, kvLens, blockTables, slots: unused, positions: unused });
    const scale = 1 / Math.sqrt(D);
    const want = cpu.pagedAttention(qc, kc, vc, inputs(cuc, lc, tc, zc), Hkv, scale);
    const got = gpu.pagedAttention(qg, kg, vg, inputs(cug, lg, tg, zg), Hkv, scale);
    const e = compare('pagedAttention over BF16 caches', want, got, F32_TOL, seed);
    report.push(`attention over BF16 KV caches vs CPU over the bf16-rounded values: NMSE ${e.toExponential(2)}`);
    cpu.free(kc, vc, qc);
    gpu.free(kg, vg, qg);
    done();
  });

  it('addRmsNorm: the fused launch equals addInPlace + rmsNorm bit for bit, and the CPU', () => {
    const seed = freshSeed();
    const fused = new CudaBackend({ fusedOps: true });
    for (const [rows, D] of [[1, 4096], [7, 2048], [64, 256]] as const) {
      const x = randn(rows * D, seed);
      const d = randn(rows * D, seed + 1);
      const w = randn(D, seed + 2);
      const [xc, xg] = f32(x, [rows, D]);
      const [dc, dg] = f32(d, [rows, D]);
      const [wc, wg] = f32(w, [D]);
      const xf = fused.constantF32(x, [rows, D]);
      const hf = fused.addRmsNorm(xf, fused.constantF32(d, [rows, D]), fused.constantF32(w, [D]), 1e-5);
      const hg = gpu.addRmsNorm(xg, dg, wg, 1e-5); // two launches
      const hc = cpu.addRmsNorm(xc, dc, wc, 1e-5);
      assert.equal(maxAbsDiff(fused.read(hf), gpu.read(hg)), 0, `fused norm output, rows ${rows} D ${D}`);
      assert.equal(maxAbsDiff(fused.read(xf), gpu.read(xg)), 0, `fused residual, rows ${rows} D ${D}`);
      compare(`addRmsNorm ${rows}x${D}`, hc, hf, F32_TOL, seed);
      fused.free(xf);
      cpu.free(xc, dc, wc);
      gpu.free(xg, dg, wg);
      fused.endStep();
      done();
    }
  });

  it('ropeStoreKv: the fused launch equals rope, rope and storeKv bit for bit', () => {
    const seed = freshSeed();
    const fused = new CudaBackend({ fusedOps: true });
    const [blocks, bs] = [8, 16];
    const slots = [5, 90, 16, 17, 63, 64];
    const T = slots.length;
    for (const [Hq, Hkv, D, rot, interleaved] of [[8, 2, 128, 128, false], [4, 4, 64, 64, true], [4, 2, 64, 32, false]] as const) {
      const width = Hkv * D;
      const inv = Float32Array.from({ length: rot / 2 }, (_, i) => Math.pow(500000, (-2 * i) / rot));
      const q = randn(T * Hq * D, seed);
      const k = randn(T * width, seed + 1);
      const v = randn(T * width, seed + 2);
      const pos = Int32Array.from([0, 1, 17, 4095, 65537, 131071]);
      const run = (be: CudaBackend) => {
        const [qt, kt, vt] = [be.constantF32(q, [T, Hq * D]), be.constantF32(k, [T, width]), be.constantF32(v, [T, width])];
        const [kc, vc] = [be.zeros(DType.F32, [blocks, bs, width]), be.zeros(DType.F32, [blocks, bs, width])];
        const it = be.constantF32(inv, [inv.length]);
        be.ropeStoreKv(qt, kt, vt, kc, vc, be.inputI32(pos, [T]), be.inputI32(Int32Array.from(slots), [T]), it, D, rot, interleaved);
        const out = [be.read(qt), be.read(kc), be.read(vc)];
        be.free(qt, kt, vt, kc, vc, it);
        be.endStep();
        return out;
      };
      const [a, b] = [run(fused), run(gpu)];
      for (let i = 0; i < 3; i++) assert.equal(maxAbsDiff(a[i]!, b[i]!), 0, `${['q', 'k cache', 'v cache'][i]} Hq=${Hq} Hkv=${Hkv} D=${D} rot=${rot}`);
    }
  });

  it('siluMul, addInPlace, gatherRows', () => {
    const seed = freshSeed();
    const n = 3 * 14336;
    const [gc, gg] = f32(randn(n, seed, 4), [3, 14336]);
    const [uc, ug] = f32(randn(n, seed + 1), [3, 14336]);
    compare('siluMul', cpu.siluMul(gc, uc), gpu.siluMul(gg, ug), F32_TOL, seed);
    cpu.addInPlace(gc, uc);
    gpu.addInPlace(gg, ug);
    compare('addInPlace', gc, gg, 0, seed);
    const [ic, ig] = i32([2, 0, 2], [3]);
    compare('gatherRows', cpu.gatherRows(gc, ic), gpu.gatherRows(gg, ig), 0, seed);
    cpu.free(gc, uc);
    gpu.free(gg, ug);
    done();
  });

  it('a captured CUDA graph replays its ops over new input values', () => {
    const seed = freshSeed();
    const loc = files.write(DType.Q4_K, randn(64 * 256, seed, 0.5), 64, 256);
    const [wc, wg] = [cpu.loadWeight(loc), gpu.loadWeight(loc)]; // GEMV path: q8 activations on both
    const [nc, ng] = f32(randn(256, seed + 1), [256]);
    const xg = gpu.constantF32(new Float32Array(2 * 256), [2, 256]); // M = 2: the GEMV path
    gpu.matmul(gpu.rmsNorm(xg, ng, 1e-5), wg); // warms the pool: capture then allocates nothing
    gpu.endStep();
    const n = gpu.native;
    let out: Tensor | undefined;
    n.cudaCaptureBegin();
    let graph = 0;
    try {
      out = gpu.matmul(gpu.rmsNorm(xg, ng, 1e-5), wg);
    } finally {
      graph = n.cudaCaptureEnd();
    }
    for (let trial = 0; trial < 3; trial++) {
      const data = randn(2 * 256, seed + 10 + trial);
      gpu.write(xg, data);
      n.cudaGraphReplay(graph);
      const xc = cpu.constantF32(data, [2, 256]);
      compare(`graph replay ${trial}`, cpu.matmul(cpu.rmsNorm(xc, nc, 1e-5), wc), out!, Q8_TOL, seed);
      cpu.free(xc);
      cpu.endStep();
    }
    n.cudaGraphRelease(graph);
    gpu.endStep();
    cpu.free(wc, nc);
    gpu.free(wg, ng, xg);
  });

  it('bad inputs throw errors naming the op, as on the CPU', () => {
    const loc = files.write(DType.F32, randn(8 * 32, 1), 8, 32);
    const table = gpu.loadWeight(loc);
    assert.throws(() => gpu.embedding(table, gpu.inputI32(Int32Array.from([1, 8]), [2])), /embedding: token id 8 outside vocabulary of 8/);
    const x = gpu.constantF32(new Float32Array(3 * 30), [3, 30]);
    assert.throws(() => gpu.matmul(x, table), /matmul/);
    const cache = gpu.zeros(DType.F32, [2, 4, 32]);
    const row = gpu.constantF32(new Float32Array(32), [1, 32]);
    assert.throws(() => gpu.storeKv(cache, cache, row, row, gpu.inputI32(Int32Array.from([8]), [1])), /store_kv: slot 8 outside the cache of 8/);
    gpu.free(table, x, cache, row);
    done();
  });

  it('endStep frees every per-step tensor; the pool reuses its blocks', () => {
    const x = gpu.constantF32(randn(64 * 256, 5), [64, 256]);
    const w = gpu.constantF32(randn(256, 6), [256]);
    const start = gpu.stats();
    for (let step = 0; step < 3; step++) {
      gpu.rmsNorm(gpu.rmsNorm(x, w, 1e-6), w, 1e-6);
      gpu.endStep();
    }
    const afterStats = gpu.stats();
    assert.equal(afterStats.liveTensors, start.liveTensors);
    assert.equal(afterStats.poolInUseBytes, start.poolInUseBytes);
    report.push(`pool: ${(afterStats.poolReservedBytes / 2 ** 20).toFixed(1)} MiB reserved after the op tests`);
    gpu.free(x, w);
  });
});
