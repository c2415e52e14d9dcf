// Micro-benchmark of the CUDA MoE expert FFN (cudaOpMoeExperts) at one model's layer shape (default
// Qwen3-30B-A3B: 128 experts, top-8, hidden 2048, moe_intermediate 768, Q4_K gate/up, Q6_K down, as
// Q4_K_M ships them): GPU µs per call (a CUDA graph of many calls, median of trials), and achieved GB/s
// of the expert bytes a call touches (distinct experts chosen × the bytes of one expert's gate, up and
// down), against a measured device-to-device copy. Uniform random routing, rotated over several id
// sets so that a call does not find its experts in L2. Each T runs the default path and both paths
// forced, to place the GEMV / tensor-core threshold (moeGemvMaxSlots), and the dense matmul of one
// expert at the same tokens per expert, times the experts touched, for comparison.
// Usage: node dist/bench/moe-cuda.js [--shape qwen3-30b-a3b|deepseek-v3] [--t 1,4,16,64,256,512] [--json out.json] [--quick]
import { writeFileSync } from 'node:fs';
import { cudaNative, cudaUnavailableReason, type CudaNative } from '../src/backend/cuda-backend.js';
import { DType } from '../src/backend/dtype.js';
import { ggmlTypeInfo } from '../src/formats/gguf-types.js';
import { RandomTensorSource, uniformSampler } from '../src/make-model/random-model.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const SHAPES = {
  'qwen3-30b-a3b': { E: 128, k: 8, H: 2048, I: 768 },
  'deepseek-v3': { E: 256, k: 8, H: 7168, I: 2048 },
} as const;

const why = cudaUnavailableReason();
if (why) {
  console.log(`moe-cuda bench skipped: ${why}`);
  process.exit(0);
}
const n = cudaNative() as CudaNative;
const quick = process.argv.includes('--quick');
const shapeName = (arg('--shape') ?? 'qwen3-30b-a3b') as keyof typeof SHAPES;
const shape = SHAPES[shapeName];
if (!shape) throw new Error(`unknown --shape ${shapeName} (${Object.keys(SHAPES).join(', ')})`);
const { E, k, H, I } = shape;
const Ts = (arg('--t') ?? '1,4,16,64,256,512').split(',').map(Number);
const ROTATE = 16; // id sets cycled through, so that consecutive calls choose other experts
const DISTINCT = 8; // experts with distinct bytes; the tensor repeats them (every expert still its own memory)

/** The bytes of one [rows, cols] matrix of a type. */
function matrixBytes(type: number, rows: number, cols: number): number {
  const info = ggmlTypeInfo(type)!;
  return (rows * cols * info.blockBytes) / info.blockElems;
}

/** A device tensor [E, N, K] of N(0, 1/K) weights: DISTINCT experts' random bytes, repeated. */
function expertTensor(type: number, N: number, K: number, seed: number): number {
  const pattern = new RandomTensorSource(seed).bytes(type, 0, 1 / Math.sqrt(K), DISTINCT * N * K);
  const h = n.cudaAlloc(type, [E, N, K], false);
  n.cudaUploadRepeat(h, pattern);
  return h;
}

/** A device weight [N, K] of N(0, 1/K) values. */
function matrix(type: number, N: number, K: number, seed: number): number {
  const h = n.cudaAlloc(type, [N, K], false);
  n.cudaUpload(h, new RandomTensorSource(seed).bytes(type, 0, 1 / Math.sqrt(K), N * K));
  return h;
}

function upload(dtype: number, shape: number[], data: Float32Array | Int32Array): number {
  const h = n.cudaAlloc(dtype, shape, false);
  n.cudaUpload(h, data);
  return h;
}

/** T tokens' k distinct experts, uniform; and how many distinct experts the call touches. */
function routing(T: number, seed: number): { ids: Int32Array; distinct: number } {
  const rand = uniformSampler(seed);
  const ids = new Int32Array(T * k);
  for (let t = 0; t < T; t++) {
    const chosen = new Set<number>();
    while (chosen.size < k) chosen.add(Math.floor(rand() * E));
    ids.set([...chosen], t * k);
  }
  return { ids, distinct: new Set(ids).size };
}

/** GPU ms per call of fn(i): `reps` calls in one CUDA graph, replayed `trials` times between events, median. */
function time(fn: (i: number) => void, reps: number, trials = quick ? 3 : 7): number {
  for (let i = 0; i < 3; i++) fn(i);
  n.cudaSynchronize();
  n.cudaCaptureBegin();
  let graph = 0;
  try {
    for (let i = 0; i < reps; i++) fn(i);
  } finally {
    graph = n.cudaCaptureEnd();
  }
  try {
    n.cudaGraphReplay(graph);
    const ms: number[] = [];
    for (let t = 0; t < trials; t++) {
      n.cudaTimerStart();
      n.cudaGraphReplay(graph);
      ms.push(n.cudaTimerStop() / reps);
    }
    ms.sort((a, b) => a - b);
    return ms[Math.floor(ms.length / 2)]!;
  } finally {
    n.cudaGraphRelease(graph);
  }
}

const info = n.cudaDeviceInfo();
console.log(`device: ${info.name} (sm ${info.computeCapability}, ${info.multiprocessors} SMs, L2 ${((info.l2Bytes ?? 0) / 2 ** 20).toFixed(0)} MiB)`);
const copyGBs = n.cudaCopyBandwidth(1 << 30, quick ? 5 : 20);
console.log(`copy: ${copyGBs.toFixed(0)} GB/s (device to device, bytes read + written)`);
const gateType = DType.Q4_K;
const downType = DType.Q6_K;
const expertBytes = 2 * matrixBytes(gateType, I, H) + matrixBytes(downType, H, I);
console.log(`shape ${shapeName}: E=${E} top-${k} H=${H} I=${I}, gate/up Q4_K, down Q6_K: ${(expertBytes / 2 ** 20).toFixed(2)} MiB an expert, ${((E * expertBytes) / 2 ** 30).toFixed(2)} GiB a layer`);
const gate = expertTensor(gateType, I, H, 1);
const up = expertTensor(gateType, I, H, 2);
const down = expertTensor(downType, H, I, 3);

// One expert's matrices as 2-D weights for the dense comparison, in copies rotated like the routing.
const DENSE_COPIES = 8;
const dense = {
  gate: Array.from({ length: DENSE_COPIES }, (_, c) => matrix(gateType, I, H, 10 + c)),
  up: Array.from({ length: DENSE_COPIES }, (_, c) => matrix(gateType, I, H, 20 + c)),
  down: Array.from({ length: DENSE_COPIES }, (_, c) => matrix(downType, H, I, 30 + c)),
};

const results: Record<string, unknown>[] = [];
const summary: string[] = [];
console.log('\n    T  slots path    µs/call  experts  MiB touched     GB/s  %copy  TFLOP/s   (µs: GPU time in a CUDA graph, median)');
for (const T of Ts) {
  const x = upload(DType.F32, [T, H], Float32Array.from({ length: T * H }, (_, i) => Math.sin(i * 0.37) * 2));
  const sets = Array.from({ length: ROTATE }, (_, r) => routing(T, 1000 * T + r));
  const ids = sets.map((s) => upload(DType.I32, [T, k], s.ids));
  const w = sets.map(() => upload(DType.F32, [T, k], new Float32Array(T * k).fill(1 / k)));
  const distinct = sets.reduce((a, s) => a + s.distinct, 0) / ROTATE;
  const bytes = distinct * expertBytes;
  const flop = 2 * T * k * 3 * H * I;
  const cells: string[] = [];
  for (const path of ['auto', 'gemv', 'mma'] as const) {
    n.cudaSetOptions({ moeGemvMaxSlots: path === 'auto' ? -1 : path === 'gemv' ? 1 << 30 : 0 });
    const out = n.cudaOpMoeExperts(x, ids[0]!, w[0]!, gate, up, down);
    const sample = n.cudaDownload(out) as Float32Array;
    n.cudaRelease(out);
    if (!sample.every(Number.isFinite)) console.log(`  (T=${T} ${path}: the output has non-finite values)`);
    const estUs = bytes / 2e3 + flop / 2e8 + 20;
    const reps = Math.max(5, Math.min(200, Math.round((quick ? 10000 : 40000) / estUs)));
    const ms = time((i) => n.cudaRelease(n.cudaOpMoeExperts(x, ids[i % ROTATE]!, w[i % ROTATE]!, gate, up, down)), reps);
    const gbs = bytes / (ms * 1e-3) / 1e9;
    const tflops = flop / (ms * 1e-3) / 1e12;
    console.log(`${String(T).padStart(5)} ${String(T * k).padStart(6)} ${path.padEnd(5)} ${(ms * 1e3).toFixed(1).padStart(10)} ${distinct.toFixed(1).padStart(8)} ${(bytes / 2 ** 20).toFixed(1).padStart(12)} ${gbs.toFixed(0).padStart(8)} ${((100 * gbs) / copyGBs).toFixed(0).padStart(6)} ${tflops.toFixed(2).padStart(8)}`);
    results.push({ shape: shapeName, T, slots: T * k, path, us: ms * 1e3, distinctExperts: distinct, bytes, gbs, pctCopy: (100 * gbs) / copyGBs, tflops });
    cells.push(`${path} ${(ms * 1e3).toFixed(1).padStart(7)} µs ${((100 * gbs) / copyGBs).toFixed(0).padStart(3)}%`);
    n.cudaReleaseScratch();
  }
  // The dense kernels for comparison: one expert's gate, up and down as three cudaOpMatmul calls at M = the slots an
  // expert gets on average (GEMV, tensor-core or cuBLAS path as matmul picks it), times the experts touched.
  const M = Math.max(1, Math.round((T * k) / distinct));
  const xm = upload(DType.F32, [M, H], Float32Array.from({ length: M * H }, (_, i) => Math.cos(i * 0.11)));
  const hm = upload(DType.F32, [M, I], Float32Array.from({ length: M * I }, (_, i) => Math.cos(i * 0.13)));
  const perExpert = time((i) => {
    const c = i % DENSE_COPIES;
    for (const h of [n.cudaOpMatmul(xm, dense.gate[c]!), n.cudaOpMatmul(xm, dense.up[c]!), n.cudaOpMatmul(hm, dense.down[c]!)]) n.cudaRelease(h);
  }, 50);
  const denseUs = perExpert * 1e3 * distinct;
  console.log(`${String(T).padStart(5)} ${String(T * k).padStart(6)} dense ${denseUs.toFixed(1).padStart(10)}   (cudaOpMatmul of one expert at M = ${M}, × ${distinct.toFixed(1)} experts)`);
  results.push({ shape: shapeName, T, slots: T * k, path: 'dense', us: denseUs, M });
  cells.push(`dense M=${M} ${denseUs.toFixed(1).padStart(7)} µs`);
  for (const h of [xm, hm]) n.cudaRelease(h);
  n.cudaReleaseScratch();
  summary.push(`T=${String(T).padEnd(4)} (${distinct.toFixed(0).padStart(3)} experts, ${(bytes / 2 ** 20).toFixed(0).padStart(4)} MiB): ${cells.join(' | ')}`);
  for (const h of [x, ...ids, ...w]) n.cudaRelease(h);
}
n.cudaSetOptions({ moeGemvMaxSlots: -1 });
console.log(`\n== summary (${info.name}; % of the ${copyGBs.toFixed(0)} GB/s copy) ==`);
for (const line of summary) console.log(line);
const json = arg('--json');
if (json) writeFileSync(json, JSON.stringify({ device: info, copyGBs, shape: shapeName, results }, null, 2));
