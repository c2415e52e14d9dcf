// Micro-benchmark of the CPU MoE expert op (opMoeExperts) on one Qwen3-30B-A3B layer: 128 experts,
// 8 per token, hidden 2048, expert FFN 768, Q4_K gate/up and Q6_K down (as its Q4_K_M GGUF ships).
// Tokens/s at several batch sizes, for the router's choice over random logits with uniform or
// skewed (a few popular experts) loads; beside it, the same work as one dense matmul per expert
// and projection (matmulRaw on each expert's tokens), which is what the op replaces.
// Run: npx tsc -p tsconfig.json && KT_NUM_THREADS=2 node dist/bench/moe-cpu.js [--tokens 1,4,16,64,512] [--seconds 2] [--no-dense]
import { loadNative, type NativeAddon } from '../src/backend/native.js';
import { DType } from '../src/backend/dtype.js';
import { bestSecondsPerCall } from './best-time.js';
import { RandomTensorSource, normalSampler } from '../src/make-model/random-model.js';

interface TensorFns {
  tAlloc(dtype: number, shape: number[], scratch: boolean): number;
  tUpload(h: number, data: Float32Array | Int32Array | Uint8Array): void;
  tDownload(h: number): Float32Array | Int32Array;
  tRelease(h: number): void;
}
const native = loadNative() as unknown as NativeAddon & TensorFns;

const E = 128, K = 8, H = 2048, I = 768;
const TYPES = [DType.Q4_K, DType.Q4_K, DType.Q6_K] as const;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const tokens = (arg('--tokens') ?? '1,4,16,64,512').split(',').map(Number);
const seconds = Number(arg('--seconds') ?? '2');
const withDense = !process.argv.includes('--no-dense');

function upload(dtype: number, shape: number[], data: Float32Array | Int32Array | Uint8Array): number {
  const h = native.tAlloc(dtype, shape, false);
  native.tUpload(h, data);
  return h;
}

function randn(n: number, seed: number, std = 1): Float32Array {
  const normal = normalSampler(seed);
  return Float32Array.from({ length: n }, () => std * normal());
}

// The router's ids and weights (Qwen3: softmax, normalized) for random logits; `skew` adds a
// per-expert popularity, so a few experts take many tokens and some none.
function route(T: number, skew: number, seed: number): { ids: Int32Array; weights: Float32Array; hIds: number; hW: number } {
  const popularity = randn(E, 99, skew);
  const logits = randn(T * E, seed).map((v, i) => v + popularity[i % E]!);
  const hl = upload(DType.F32, [T, E], logits);
  const [hIds, hW] = native.opMoeRoute(hl, -1, 0, K, 1, 1, 0, true, 1);
  native.tRelease(hl);
  return { ids: native.tDownload(hIds) as Int32Array, weights: native.tDownload(hW) as Float32Array, hIds, hW };
}

// The op's work done as a dense matmul per used expert and projection, SiLU·up and the combine in JS.
function denseLoop(bytes: Uint8Array[], x: Float32Array, T: number, ids: Int32Array, weights: Float32Array): Float32Array {
  const out = new Float32Array(T * H);
  const slice = (p: number, e: number): Uint8Array => bytes[p]!.subarray((e * bytes[p]!.length) / E, ((e + 1) * bytes[p]!.length) / E);
  for (let e = 0; e < E; e++) {
    const slots: number[] = [];
    ids.forEach((id, a) => id === e && slots.push(a));
    if (slots.length === 0) continue;
    const M = slots.length;
    const xe = new Float32Array(M * H);
    slots.forEach((a, m) => xe.set(x.subarray(Math.floor(a / K) * H, (Math.floor(a / K) + 1) * H), m * H));
    const g = native.matmulRaw(xe, M, H, slice(0, e), TYPES[0], I);
    const u = native.matmulRaw(xe, M, H, slice(1, e), TYPES[1], I);
    for (let i = 0; i < g.length; i++) g[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
    const y = native.matmulRaw(g, M, I, slice(2, e), TYPES[2], H);
    slots.forEach((a, m) => {
      const w = weights[a]!;
      const o = Math.floor(a / K) * H;
      for (let c = 0; c < H; c++) out[o + c] = out[o + c]! + w * y[m * H + c]!;
    });
  }
  return out;
}

const info = native.info();
const src = new RandomTensorSource(1);
const shapes = [[E, I, H], [E, I, H], [E, H, I]] as const;
const bytes = shapes.map((s, p) => src.bytes(TYPES[p]!, 0, 0.02, s[0] * s[1] * s[2]));
const handles = bytes.map((b, p) => upload(TYPES[p]!, [...shapes[p]!], b));
const perExpert = bytes.reduce((a, b) => a + b.length / E, 0);
console.log(`moe_experts bench: ${info.threads} threads, SIMD ${info.simd}; E ${E}, k ${K}, H ${H}, I ${I}, Q4_K gate/up, Q6_K down ` +
  `(${(perExpert / 2 ** 20).toFixed(2)} MiB per expert)`);
console.log('   T | routing  experts  max/expert |   ms/call   tokens/s  GB/s(weights)  GFLOP/s' + (withDense ? ' | dense loop ms  speed-up' : ''));
for (const T of tokens) {
  const x = randn(T * H, 7 + T);
  const hx = upload(DType.F32, [T, H], x);
  for (const [name, skew] of [['uniform', 0], ['skewed', 1.5]] as const) {
    const r = route(T, skew, 11 + T);
    const counts = new Map<number, number>();
    for (const id of r.ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    const s = bestSecondsPerCall(() => native.tRelease(native.opMoeExperts(hx, r.hIds, r.hW, handles[0]!, handles[1]!, handles[2]!)), seconds);
    const gbps = (counts.size * perExpert) / s / 1e9;
    const gflops = (2 * 3 * H * I * T * K) / s / 1e9;
    let line = `${String(T).padStart(4)} | ${name.padEnd(8)} ${String(counts.size).padStart(7)} ${String(Math.max(...counts.values())).padStart(11)} |` +
      ` ${(s * 1e3).toFixed(2).padStart(9)} ${(T / s).toFixed(1).padStart(10)} ${gbps.toFixed(2).padStart(14)} ${gflops.toFixed(1).padStart(8)}`;
    if (withDense) {
      const d = bestSecondsPerCall(() => denseLoop(bytes, x, T, r.ids, r.weights), seconds);
      line += ` | ${(d * 1e3).toFixed(2).padStart(13)} ${(d / s).toFixed(2).padStart(9)}`;
    }
    console.log(line);
    native.tRelease(r.hIds);
    native.tRelease(r.hW);
  }
  native.tRelease(hx);
}
