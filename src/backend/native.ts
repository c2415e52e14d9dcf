// Loads the native addon (build/Release/ktserve_native.node) and types its exports.
// One interface mirrors every function the C++ side registers (native/napi/*_napi.cpp).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

export interface NativeInfo {
  threads: number;
  simd: 'scalar' | 'avx2' | 'avx512';
}

export interface PoolStressResult {
  loops: number;
  threads: number;
  failures: number;
  firstFailure: string;
}

/** opMoeRoute's scoring: 0 softmax, 1 sigmoid; its group score: 0 max, 1 sum of the top 2. */
export type MoeScoring = 0 | 1;
export type MoeGroupScore = 0 | 1;

/** Live tensors and their bytes, of one device or of several together. */
export interface TensorUsage {
  liveTensors: number;
  liveBytes: number;
}

/** The one tensor table both backends share (native/core/tensor_table.h): all of it, and each device holding tensors. */
export interface TableStats extends TensorUsage {
  /** Mapped weight files (mapFile and cudaMapFile share them). */
  mappings: number;
  /** By device name: 'cpu', 'cuda:0', … */
  devices: Record<string, TensorUsage>;
}

export interface NativeAddon {
  readonly cuda: boolean;
  info(): NativeInfo;
  /** Self-checking ThreadPool stress (native/cpu/thread_pool_stress.h); threads 0 uses the process-wide pool. */
  threadPoolStress(loops: number, threads: number, seed: number, nested?: boolean): PoolStressResult;

  // --- quantized weight types (native/napi/quant_napi.cpp) ---
  /** Dequantizes `n` elements of GGML type `type` from raw block bytes. */
  dequantize(type: number, src: Uint8Array, n: number): Float32Array;
  /** Quantizes `src` (a multiple of the block size) to GGML type `type` as ggml's reference quantizer does. */
  quantize(type: number, src: Float32Array): Uint8Array;
  /** out[M][N] = x[M][K] · W[N][K]ᵀ with W stored as GGML type `type` (test and micro-benchmark entry). */
  matmulRaw(x: Float32Array, M: number, K: number, w: Uint8Array, type: number, N: number): Float32Array;

  // --- Mixture of Experts on the CPU (native/napi/moe_napi.cpp; the op contract: notes/moe-contract.md) ---
  /** Router: logits F32 [T, E] (bias F32 [E], or -1) → scratch handles [ids I32 [T, k], weights F32 [T, k]]. */
  opMoeRoute(logits: number, bias: number, scoring: MoeScoring, topK: number, numGroups: number, topKGroups: number,
             groupScore: MoeGroupScore, normalize: boolean, scale: number): [number, number];
  /** x F32 [T, H], ids, weights [T, k], gate and up [E, I, H], down [E, H, I] → scratch F32 [T, H]. */
  opMoeExperts(x: number, ids: number, weights: number, gate: number, up: number, down: number): number;
  /** A persistent [E, N, K] tensor: expert e's bytes copied from mappings[e] (mapFile) at offsets[e]. */
  tStackMappings(mappings: number[], offsets: number[], dtype: number, shape: number[]): number;

  /** Every device's tensors, CPU and CUDA: one handle space (native/napi/tensor_napi.cpp). */
  tableStats(): TableStats;

  // --- tensors and ops of the CPU backend (native/napi/tensor_napi.cpp, ops_napi.cpp) ---
  [op: string]: unknown;
}

function findAddon(): string {
  const fromEnv = process.env.KT_NATIVE_PATH;
  if (fromEnv) return resolve(fromEnv);
  // dist/src/backend/native.js and src/backend/native.ts both sit three levels below the root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'build', 'Release', 'ktserve_native.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('ktserve native addon not found (build/Release/ktserve_native.node): run `npm install` or `npm run build:native`');
}

let cached: NativeAddon | undefined;

export function loadNative(): NativeAddon {
  if (!cached) {
    const require = createRequire(import.meta.url);
    cached = require(findAddon()) as NativeAddon;
  }
  return cached;
}
