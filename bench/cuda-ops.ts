// Per-op timings of the CUDA backend at llama-3.1-8b shapes (hidden 4096, ffn 14336, 32 heads
// × 128, 8 KV heads): matmuls per weight type at decode (M = 1..64) and prefill (M = 512) sizes
// with achieved GB/s (weight bytes) and TFLOP/s, paged attention, the small ops, and a measured
// device-to-device copy bandwidth to compare against. Timed with CUDA events on the stream,
// median of several trials, weights rotated over copies so repeated runs do not hit L2.
// Usage: node dist/bench/cuda-ops.js [--types BF16,Q4_K] [--m 1,4,16,64,512] [--json out.json] [--quick]
//   [--sections matmul,gemv-warps,attention,small] (default: all)
import { writeFileSync } from 'node:fs';
import { cudaNative, cudaUnavailableReason, type CudaNative } from '../src/backend/cuda-backend.js';
import { DType } from '../src/backend/dtype.js';
import { loadNative } from '../src/backend/native.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const why = cudaUnavailableReason();
if (why) {
  console.log(`cuda-ops bench skipped: ${why}`);
  process.exit(0);
}
const n = cudaNative() as CudaNative;
const quick = process.argv.includes('--quick');
const types = (arg('--types') ?? 'BF16,Q4_K,Q6_K,Q8_0').split(',');
const ms = (arg('--m') ?? '1,2,4,8,16,64,512').split(',').map(Number);
const sections = new Set((arg('--sections') ?? 'matmul,gemv-warps,attention,small').split(','));
const results: Record<string, unknown>[] = [];
const summary: string[] = [];

const HIDDEN = 4096;
const FFN = 14336;
const HEADS = 32;
const KV_HEADS = 8;
const HEAD_DIM = 128;
const SHAPES: [string, number, number][] = [
  ['q', HEADS * HEAD_DIM, HIDDEN],
  ['k', KV_HEADS * HEAD_DIM, HIDDEN],
  ['v', KV_HEADS * HEAD_DIM, HIDDEN],
  ['o', HIDDEN, HEADS * HEAD_DIM],
  ['gate', FFN, HIDDEN],
  ['up', FFN, HIDDEN],
  ['down', HIDDEN, FFN],
];
const LM_HEAD: [string, number, number] = ['lm_head', 128256, HIDDEN];

function random(count: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * scale;
  }
  return out;
}

/**
 * ms per call of fn on the GPU, without launch gaps: `reps` calls captured into a CUDA graph,
 * replayed `trials` times between events, median taken. Also the host's ms per call when
 * issuing eagerly (what a step costs without graphs). Falls back to eager event timing if the
 * capture fails.
 */
function time(fn: (i: number) => void, reps: number, trials = quick ? 3 : 5): { gpu: number; host: number } {
  for (let i = 0; i < 3; i++) fn(i);
  n.cudaSynchronize();
  const h0 = performance.now();
  for (let i = 0; i < reps; i++) fn(i);
  const host = (performance.now() - h0) / reps;
  n.cudaSynchronize();
  const gpu: number[] = [];
  let graph = 0;
  try {
    n.cudaCaptureBegin();
    try {
      for (let i = 0; i < reps; i++) fn(i);
    } finally {
      graph = n.cudaCaptureEnd();
    }
    n.cudaGraphReplay(graph);
    for (let t = 0; t < trials; t++) {
      n.cudaTimerStart();
      n.cudaGraphReplay(graph);
      gpu.push(n.cudaTimerStop() / reps);
    }
  } catch (e) {
    if (!warnedCapture) console.log(`(graph capture failed, timing eagerly: ${(e as Error).message})`);
    warnedCapture = true;
    for (let t = 0; t < trials; t++) {
      n.cudaTimerStart();
      for (let i = 0; i < reps; i++) fn(i);
      gpu.push(n.cudaTimerStop() / reps);
    }
  } finally {
    if (graph) n.cudaGraphRelease(graph);
  }
  gpu.sort((a, b) => a - b);
  return { gpu: gpu[Math.floor(gpu.length / 2)]!, host };
}
let warnedCapture = false;

/** `copies` device tensors of W [N, K] of a type, filled with repeated quantized random rows. */
function weights(type: number, N: number, K: number, copies: number): number[] {
  const tileRows = 64;
  const pattern = loadNative().quantize(type, random(tileRows * K, N + K, 0.1));
  return Array.from({ length: copies }, () => {
    const h = n.cudaAlloc(type, [N, K], false);
    n.cudaUploadRepeat(h, pattern);
    return h;
  });
}

function input(values: Float32Array, shape: number[]): number {
  const h = n.cudaAlloc(DType.F32, shape, false);
  n.cudaUpload(h, values);
  return h;
}

const fmt = (x: number, d = 1): string => x.toFixed(d).padStart(8);

function benchMatmul(copyGBs: number): void {
  console.log('\n== matmul (x [M, K] f32 · W [N, K]ᵀ; path gemv: our kernels (quantized: q8 activations, int8 dots); cublas: bf16 tensor cores) ==');
  console.log('type   shape      N      K     M path    µs/call  host µs     GB/s  %copy  TFLOP/s   (µs: GPU time in a CUDA graph; host µs: eager issue cost)');
  n.cudaSetOptions({ precision: 'bf16' });
  for (const tname of types) {
    const type = (DType as Record<string, number>)[tname];
    if (type === undefined) throw new Error(`unknown type ${tname}`);
    const layerUs = new Map<string, number>();
    const withHead = tname === 'BF16' || tname === 'Q6_K'; // Q4_K_M keeps the output matrix in Q6_K
    const shapes = quick ? SHAPES.filter(([s]) => s === 'q' || s === 'gate') : withHead ? [...SHAPES, LM_HEAD] : SHAPES;
    for (const [sname, N, K] of shapes) {
      const bytes = (loadNative().quantize(type, random(K, 1)).length * N) as number;
      const copies = Math.max(2, Math.min(200, Math.ceil(400e6 / bytes)));
      const ws = weights(type, N, K, copies);
      for (const M of ms) {
        const x = input(random(M * K, M, 2), [M, K]);
        const mma = tname === 'Q4_K' || tname === 'Q6_K';
        for (const path of [...(M <= 16 ? ['gemv'] : []), ...(mma && M <= 512 ? ['mma', 'mma1', 'mma2'] : []), 'cublas']) {
          const onMma = path.startsWith('mma');
          n.cudaSetOptions({ gemvMaxRows: path === 'gemv' ? 16 : 0, mmaMaxRows: onMma ? 4096 : 0, mmaVariant: path === 'mma1' ? 1 : path === 'mma2' ? 2 : 0 });
          const estUs = bytes / 2.5e3 + (2 * M * N * K) / 4e8 + 5; // at ~2.5 TB/s and ~400 TFLOP/s
          const reps = Math.max(5, Math.min(200, Math.round(30000 / estUs)));
          const t = time((i) => n.cudaRelease(n.cudaOpMatmul(x, ws[i % copies]!)), reps);
          const gbs = bytes / (t.gpu * 1e-3) / 1e9;
          const tflops = (2 * M * N * K) / (t.gpu * 1e-3) / 1e12;
          const flag = t.host > t.gpu ? '  (host-bound eagerly)' : '';
          console.log(`${tname.padEnd(6)} ${sname.padEnd(7)} ${String(N).padStart(6)} ${String(K).padStart(6)} ${String(M).padStart(5)} ${path.padEnd(6)} ${fmt(t.gpu * 1e3)} ${fmt(t.host * 1e3)} ${fmt(gbs, 0)} ${fmt((100 * gbs) / copyGBs, 0)} ${fmt(tflops, 2)}${flag}`);
          results.push({ op: 'matmul', type: tname, shape: sname, N, K, M, path, us: t.gpu * 1e3, hostUs: t.host * 1e3, gbs, tflops });
          const key = `${M} ${path}`;
          if (sname !== 'lm_head') layerUs.set(key, (layerUs.get(key) ?? 0) + t.gpu * 1e3);
        }
        n.cudaRelease(x);
        n.cudaReleaseScratch();
      }
      ws.forEach((h) => n.cudaRelease(h));
    }
    n.cudaSetOptions({ gemvMaxRows: -1, mmaMaxRows: -1, mmaVariant: 2 });
    const layer = shapes.filter(([s]) => s !== 'lm_head');
    const layerBytes = layer.reduce((a, [, N, K]) => a + loadNative().quantize(type, random(K, 1)).length * N, 0);
    for (const [key, us] of layerUs) {
      const [M, path] = key.split(' ') as [string, string];
      const flop = layer.reduce((a, [, N, K]) => a + 2 * Number(M) * N * K, 0);
      const line = `${tname.padEnd(5)} M=${M.padEnd(4)} ${path.padEnd(6)}: layer ${us.toFixed(1).padStart(7)} µs (×32 = ${((us * 32) / 1e3).toFixed(2).padStart(6)} ms), ${(layerBytes / (us * 1e3)).toFixed(0).padStart(5)} GB/s of weights (${((100 * layerBytes) / (us * 1e3) / copyGBs).toFixed(0).padStart(3)}% of copy), ${(flop / (us * 1e6)).toFixed(1).padStart(6)} TFLOP/s`;
      console.log(line);
      summary.push(line);
    }
  }
}

/** The GEMV kernels' warps per row pair (1, 2, 4) against the pick by N, at M = 1 and 2. */
function benchGemvWarps(copyGBs: number): void {
  console.log('\n== GEMV warps per row pair (gemvWarps), GPU µs and % of copy bandwidth ==');
  n.cudaSetOptions({ gemvMaxRows: 8 });
  const shapes = SHAPES.filter(([s]) => s === 'q' || s === 'k' || s === 'gate' || s === 'down');
  for (const tname of types) {
    const type = (DType as Record<string, number>)[tname]!;
    for (const [sname, N, K] of shapes) {
      const bytes = loadNative().quantize(type, random(K, 1)).length * N;
      const copies = Math.max(2, Math.min(200, Math.ceil(400e6 / bytes)));
      const ws = weights(type, N, K, copies);
      for (const M of [1, 2]) {
        const x = input(random(M * K, M, 2), [M, K]);
        const cells: string[] = [];
        for (const W of [0, 1, 2, 4]) {
          n.cudaSetOptions({ gemvWarps: W });
          const t = time((i) => n.cudaRelease(n.cudaOpMatmul(x, ws[i % copies]!)), 100, 3);
          const pct = (100 * bytes) / (t.gpu * 1e-3) / 1e9 / copyGBs;
          cells.push(`W=${W === 0 ? 'auto' : W} ${(t.gpu * 1e3).toFixed(1).padStart(6)} µs ${pct.toFixed(0).padStart(3)}%`);
          results.push({ op: 'gemv_warps', type: tname, shape: sname, M, W, us: t.gpu * 1e3 });
        }
        const line = `${tname.padEnd(5)} ${sname.padEnd(5)} M=${M}: ${cells.join(' | ')}`;
        console.log(line);
        summary.push(line);
        n.cudaRelease(x);
      }
      ws.forEach((h) => n.cudaRelease(h));
    }
  }
  n.cudaSetOptions({ gemvWarps: 0, gemvMaxRows: -1 });
}

function benchAttention(): void {
  console.log('\n== paged attention (32 heads × 128, 8 KV heads, block 16; F32 and BF16 caches) ==');
  const width = KV_HEADS * HEAD_DIM;
  const bs = 16;
  const cases: [string, number, number, number][] = quick
    ? [['decode', 1, 1, 1024], ['decode', 64, 1, 1024]]
    : [['decode', 1, 1, 1024], ['decode', 1, 1, 8192], ['decode', 16, 1, 1024], ['decode', 64, 1, 640], ['decode', 64, 1, 1024], ['prefill', 1, 512, 512]];
  // Kernels compared: 'first' the first per-row kernel, 'rows' paged_attention_decode.cu's, 'fa2' the
  // tensor-core prefill kernel (bf16 precision only; in f32 precision prefill rows take the per-row kernels).
  const paths: Record<string, { precision: 'f32' | 'bf16'; attentionKernel: number }> = {
    first: { precision: 'f32', attentionKernel: 1 },
    rows: { precision: 'f32', attentionKernel: 0 },
    fa2: { precision: 'bf16', attentionKernel: 0 },
  };
  for (const [kind, S, qlen, ctx] of cases) {
    for (const dtype of [DType.F32, DType.BF16]) {
      const blocksPer = Math.ceil(ctx / bs);
      const blocks = S * blocksPer;
      const elt = dtype === DType.F32 ? 4 : 2;
      const kc = n.cudaAlloc(dtype, [blocks, bs, width], false);
      const vc = n.cudaAlloc(dtype, [blocks, bs, width], false);
      // BF16 caches get the top halves of the f32 values: real numbers, not reinterpreted bytes.
      const pattern = (seed: number): Uint8Array => {
        const f = random(bs * width, seed);
        return new Uint8Array((dtype === DType.F32 ? f : Uint16Array.from(new Uint32Array(f.buffer), (u) => u >>> 16)).buffer);
      };
      n.cudaUploadRepeat(kc, pattern(3));
      n.cudaUploadRepeat(vc, pattern(4));
      const T = S * qlen;
      const q = input(random(T * HEADS * HEAD_DIM, 5), [T, HEADS * HEAD_DIM]);
      const i32 = (d: number[], shape: number[]): number => {
        const h = n.cudaAlloc(DType.I32, shape, false);
        n.cudaUpload(h, Int32Array.from(d));
        return h;
      };
      const cuQ = i32(Array.from({ length: S + 1 }, (_, s) => s * qlen), [S + 1]);
      const lens = i32(Array.from({ length: S }, () => ctx), [S]);
      const tables = i32(Array.from({ length: S * blocksPer }, (_, i) => i), [S, blocksPer]);
      for (const path of kind === 'prefill' ? ['first', 'rows', 'fa2'] : ['first', 'rows']) {
        n.cudaSetOptions(paths[path]!);
        const t = time(() => n.cudaRelease(n.cudaOpPagedAttention(q, kc, vc, cuQ, lens, tables, KV_HEADS, 1 / Math.sqrt(HEAD_DIM))), quick ? 10 : 30);
        const kvBytes = 2 * S * ctx * width * elt;
        const flops = 4 * HEADS * HEAD_DIM * (kind === 'decode' ? S * ctx : (qlen * (qlen + 1)) / 2);
        const name = `${kind} ${dtype === DType.F32 ? 'f32' : 'bf16'} ${path}`;
        const line = `attention ${name.padEnd(18)} seqs ${String(S).padStart(3)} q ${String(qlen).padStart(4)} ctx ${String(ctx).padStart(5)}: ${fmt(t.gpu * 1e3)} µs  KV ${fmt(kvBytes / (t.gpu * 1e-3) / 1e9, 0)} GB/s  ${fmt(flops / (t.gpu * 1e-3) / 1e12, 2)} TFLOP/s`;
        console.log(line);
        summary.push(line);
        results.push({ op: 'paged_attention', kind, cache: dtype === DType.F32 ? 'f32' : 'bf16', path, seqs: S, qlen, ctx, us: t.gpu * 1e3 });
      }
      n.cudaSetOptions({ precision: 'bf16', attentionKernel: 0 });
      [kc, vc, q, cuQ, lens, tables].forEach((h) => n.cudaRelease(h));
    }
  }
}

function benchSmallOps(): void {
  console.log('\n== element-wise ops ==');
  for (const M of quick ? [1, 512] : [1, 64, 512]) {
    const x = input(random(M * HIDDEN, 1), [M, HIDDEN]);
    const w = input(random(HIDDEN, 2), [HIDDEN]);
    const g = input(random(M * FFN, 3), [M, FFN]);
    const u = input(random(M * FFN, 4), [M, FFN]);
    const q = input(random(M * HEADS * HEAD_DIM, 5), [M, HEADS * HEAD_DIM]);
    const pos = n.cudaAlloc(DType.I32, [M], false);
    n.cudaUpload(pos, Int32Array.from({ length: M }, (_, i) => i + 100));
    const inv = input(Float32Array.from({ length: 64 }, (_, i) => Math.pow(500000, -i / 64)), [64]);
    const row = (name: string, fn: () => void, bytes: number): void => {
      const t = time(fn, 50);
      console.log(`M=${String(M).padStart(4)} ${name.padEnd(10)} ${fmt(t.gpu * 1e3, 2)} µs  ${fmt(bytes / (t.gpu * 1e-3) / 1e9, 0)} GB/s  host ${fmt(t.host * 1e3, 2)} µs`);
      results.push({ op: name, M, us: t.gpu * 1e3, hostUs: t.host * 1e3 });
    };
    row('rmsnorm', () => n.cudaRelease(n.cudaOpRmsNorm(x, w, 1e-5)), 8 * M * HIDDEN);
    row('silu_mul', () => n.cudaRelease(n.cudaOpSiluMul(g, u)), 12 * M * FFN);
    row('add', () => n.cudaOpAddInPlace(g, u), 12 * M * FFN);
    row('rope', () => n.cudaOpRope(q, pos, inv, HEAD_DIM, HEAD_DIM, false), 8 * M * HEADS * HEAD_DIM);
    [x, w, g, u, q, pos, inv].forEach((h) => n.cudaRelease(h));
  }
}

const info = n.cudaDeviceInfo();
console.log(`device: ${info.name} (cc ${info.computeCapability}, ${info.multiprocessors} SMs, ${((info.totalBytes ?? 0) / 2 ** 30).toFixed(0)} GiB, L2 ${((info.l2Bytes ?? 0) / 2 ** 20).toFixed(0)} MiB)`);
const copyGBs = n.cudaCopyBandwidth(1 << 30, quick ? 5 : 20);
console.log(`device-to-device copy: ${copyGBs.toFixed(0)} GB/s (bytes read + written, 1 GiB buffers)`);
results.push({ op: 'copy', gbs: copyGBs, device: info.name });
for (const [name, fn] of [['matmul', () => benchMatmul(copyGBs)], ['gemv-warps', () => benchGemvWarps(copyGBs)], ['attention', benchAttention], ['small', benchSmallOps]] as const) {
  if (!sections.has(name)) continue;
  try {
    fn();
  } catch (e) {
    console.log(`${name} bench failed: ${(e as Error).message}`);
  }
}
console.log(`\n== summary (${info.name}; copy ${copyGBs.toFixed(0)} GB/s) ==\n${summary.join('\n')}`);
const json = arg('--json');
if (json) writeFileSync(json, JSON.stringify({ device: info, copyGBs, results }, null, 1));
