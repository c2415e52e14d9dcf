// The tensor-core prefill attention (native/cuda/paged_attention_prefill.cu) against the CPU backend's
// attention. paged_attention takes it in bf16 precision for runs of 16+ query rows; it rounds Q, K, V
// and the softmax weights to bf16, so the bound is bf16-class (NMSE ≤ 1e-4 against the f32 CPU), and a
// call whose runs are all shorter keeps the f32 kernel (≤ 1e-10). Per-step tensors are poisoned (NaN).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Tensor } from '../../src/backend/backend.js';
import { CpuBackend } from '../../src/backend/cpu-backend.js';
import { CudaBackend } from '../../src/backend/cuda-backend.js';
import { DType } from '../../src/backend/dtype.js';
import { freshSeed, maxAbsDiff, needCuda, nmse, randn } from './helpers.js';

const BF16_TOL = 1e-4;
const F32_TOL = 1e-10;
const PREFILL_ROWS = 16; // the shortest run the prefill kernel takes (paged_attention.cu)

interface AttentionCase {
  /** [query rows, cached length after this step] per sequence. */
  seqs: [number, number][];
  H: number;
  Hkv: number;
  D: number;
  blockSize: number;
  cache: 'F32' | 'BF16';
  /** The GPU's block table sits in a wider buffer, its row stride passed as tableStride. */
  wideTable?: boolean;
}

const describeCase = (c: AttentionCase): string =>
  `H=${c.H} Hkv=${c.Hkv} D=${c.D} bs=${c.blockSize} ${c.cache}${c.wideTable ? ' wide table' : ''} seqs ${JSON.stringify(c.seqs)}`;

describe('CUDA prefill attention (tensor cores) vs CPU', needCuda, () => {
  let cpu: CpuBackend;
  let gpu: CudaBackend;
  const report: string[] = [];

  before(() => {
    cpu = new CpuBackend();
    gpu = new CudaBackend({ poison: true, precision: 'bf16' });
  });
  after(() => {
    gpu?.setOptions({ poison: false });
    if (report.length) console.log(report.join('\n'));
  });

  /**
   * NMSE of the GPU's attention against the CPU's for one case, asserting the bound of the kernel that
   * should run: by default the prefill kernel where a run has 16+ rows.
   */
  const run = (c: AttentionCase, seed: number, kernel = Math.max(...c.seqs.map(([q]) => q)) >= PREFILL_ROWS ? 'prefill' : 'f32'): number => {
    const { seqs, H, Hkv, D, blockSize: bs } = c;
    const S = seqs.length;
    const width = Hkv * D;
    const T = seqs.reduce((a, [q]) => a + q, 0);
    const cuQ = [0];
    for (const [q] of seqs) cuQ.push(cuQ[cuQ.length - 1]! + q);
    const maxBlocks = Math.max(...seqs.map(([, l]) => Math.ceil(l / bs))) + 1;
    const blocks = S * maxBlocks + 3;
    // Every sequence's blocks scattered over the cache in a random order.
    const order = randn(blocks, seed + 3);
    const perm = Array.from({ length: blocks }, (_, i) => i).sort((a, b) => order[a]! - order[b]!);
    const tables = Array.from({ length: S * maxBlocks }, (_, i) => perm[i]!);
    // A BF16 cache gets values bf16 holds exactly (multiples of 1/64 below 4), so the CPU sees what it holds.
    const onGrid = (x: Float32Array): Float32Array => (c.cache === 'BF16' ? x.map((y) => Math.max(-255, Math.min(255, Math.round(y * 64))) / 64) : x);
    const k = onGrid(randn(blocks * bs * width, seed));
    const v = onGrid(randn(blocks * bs * width, seed + 1));
    const q = randn(T * H * D, seed + 2);
    const shape = [blocks, bs, width];

    const [kc, vc, qc] = [cpu.constantF32(k, shape), cpu.constantF32(v, shape), cpu.constantF32(q, [T, H * D])];
    const unusedC = cpu.inputI32(Int32Array.of(0), [1]);
    const inputsC = { cuQ: cpu.inputI32(Int32Array.from(cuQ), [S + 1]), kvLens: cpu.inputI32(Int32Array.from(seqs.map(([, l]) => l)), [S]),
      blockTables: cpu.inputI32(Int32Array.from(tables), [S, maxBlocks]), slots: unusedC, positions: unusedC };

    let kg: Tensor;
    let vg: Tensor;
    if (c.cache === 'F32') [kg, vg] = [gpu.constantF32(k, shape), gpu.constantF32(v, shape)];
    else {
      // Written through storeKv, as serving does.
      [kg, vg] = [gpu.zeros(DType.BF16, shape), gpu.zeros(DType.BF16, shape)];
      const n = blocks * bs;
      const [kr, vr] = [gpu.constantF32(k, [n, width]), gpu.constantF32(v, [n, width])];
      gpu.storeKv(kg, vg, kr, vr, gpu.inputI32(Int32Array.from({ length: n }, (_, i) => i), [n]));
      gpu.free(kr, vr);
    }
    const qg = gpu.constantF32(q, [T, H * D]);
    const unusedG = gpu.inputI32(Int32Array.of(0), [1]);
    const wide = c.wideTable ? maxBlocks + 5 : maxBlocks;
    const gpuTables = new Int32Array(S * wide); // a compact table at the start of a wider buffer
    gpuTables.set(tables);
    const inputsG = { cuQ: gpu.inputI32(Int32Array.from(cuQ), [S + 1]), kvLens: gpu.inputI32(Int32Array.from(seqs.map(([, l]) => l)), [S]),
      blockTables: gpu.inputI32(gpuTables, [S, wide]), slots: unusedG, positions: unusedG,
      ...(c.wideTable ? { tableStride: gpu.inputI32(Int32Array.of(maxBlocks), [1]) } : {}) };

    const scale = 1 / Math.sqrt(D);
    const want = cpu.read(cpu.pagedAttention(qc, kc, vc, inputsC, Hkv, scale));
    const got = gpu.read(gpu.pagedAttention(qg, kg, vg, inputsG, Hkv, scale));
    cpu.free(kc, vc, qc);
    gpu.free(kg, vg, qg);
    cpu.endStep();
    gpu.endStep();

    const e = nmse(got, want);
    const where = `${describeCase(c)}: NMSE ${e} (seed ${seed}, max abs ${maxAbsDiff(got, want)})`;
    // The f32 kernel computes what the CPU does; a bf16-class error shows that the tensor-core kernel ran.
    if (kernel === 'prefill') assert.ok(e <= BF16_TOL && e > F32_TOL, `prefill kernel expected, ${where}`);
    else assert.ok(e <= F32_TOL, `f32 kernel expected, ${where}`);
    return e;
  };

  it('one sequence: 1..300 rows, fresh prompts and chunks on a cached prefix', () => {
    const seed = freshSeed();
    let worst = 0;
    for (const rows of [1, 15, 16, 17, 31, 63, 64, 65, 100, 129, 300])
      for (const prefix of [0, 45, 333]) {
        const c: AttentionCase = { seqs: [[rows, rows + prefix]], H: 8, Hkv: 2, D: 128, blockSize: 16, cache: 'BF16' };
        worst = Math.max(worst, run(c, seed + rows + prefix));
      }
    report.push(`prefill attention, one sequence (D 128, GQA 4, BF16 cache): worst NMSE ${worst.toExponential(2)}`);
  });

  it('several sequences of mixed lengths in one call: GQA 1/2/4/8, D 64 and 128, blocks of 16 and 32, F32 and BF16 caches', () => {
    const seed = freshSeed();
    // Decodes, an empty run, chunks on prefixes, runs at and around the 64-row tiles, odd lengths.
    const seqs: [number, number][] = [[1, 1], [1, 70], [5, 37], [0, 12], [19, 19], [1, 130], [64, 64], [65, 200], [130, 131], [17, 300], [3, 3]];
    let worst = 0;
    for (const [H, Hkv] of [[4, 4], [4, 2], [8, 2], [16, 2]] as const)
      for (const D of [64, 128])
        for (const blockSize of [16, 32])
          for (const cache of ['F32', 'BF16'] as const) worst = Math.max(worst, run({ seqs, H, Hkv, D, blockSize, cache }, seed + H + D + blockSize));
    report.push(`prefill attention, mixed batches: worst NMSE ${worst.toExponential(2)}`);
  });

  it('a block table inside a wider buffer (tableStride), and llama-3.1-8b heads', () => {
    const seed = freshSeed();
    const seqs: [number, number][] = [[1, 40], [77, 77], [33, 500]];
    run({ seqs, H: 32, Hkv: 8, D: 128, blockSize: 16, cache: 'BF16', wideTable: true }, seed);
    run({ seqs, H: 32, Hkv: 8, D: 128, blockSize: 16, cache: 'F32' }, seed + 1);
  });

  it('runs shorter than 16 rows keep the f32 kernel, and f32 precision keeps it for long runs', () => {
    const seed = freshSeed();
    run({ seqs: [[15, 15], [1, 90], [7, 100]], H: 8, Hkv: 2, D: 128, blockSize: 16, cache: 'F32' }, seed);
    gpu.setOptions({ precision: 'f32' });
    try {
      run({ seqs: [[100, 120], [1, 5]], H: 8, Hkv: 2, D: 64, blockSize: 16, cache: 'BF16' }, seed + 1, 'f32');
    } finally {
      gpu.setOptions({ precision: 'bf16' });
    }
  });
});
