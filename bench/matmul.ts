// Micro-benchmark of the native matmul per weight type: GB/s of weight bytes at M = 1
// (decode, memory-bound) and GFLOP/s at M = 64 (prefill), at the process's SIMD level and
// with KT_SIMD=scalar (a child process, since the level is fixed per process).
// Usage: node dist/bench/matmul.js [--types Q4_K,Q8_0] [--sizes 2048,4096] [--seconds 0.4] [--no-scalar]
// (KT_NUM_THREADS=1 gives per-core numbers; on a shared machine raise --seconds: the best batch is kept.)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadNative } from '../src/backend/native.js';
import { DType } from '../src/backend/dtype.js';
import { bestSecondsPerCall } from './best-time.js';

interface Result {
  type: string;
  size: number;
  gbps: number; // M = 1: weight bytes per second
  gflops: number; // M = 64
}

const CHILD_ENV = 'KT_MATMUL_BENCH_CHILD';
const native = loadNative();

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const types = (arg('--types') ?? 'F32,F16,BF16,Q4_0,Q4_1,Q5_0,Q5_1,Q8_0,Q2_K,Q3_K,Q4_K,Q5_K,Q6_K').split(',');
const sizes = (arg('--sizes') ?? '2048,4096').split(',').map(Number);
const seconds = Number(arg('--seconds') ?? '0.4'); // per measurement, SIMD level; half that for scalar

function random(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 0.1;
  }
  return out;
}

// Speed does not depend on the values: quantize 64 random rows once and repeat them.
function weights(type: number, N: number, K: number): Uint8Array {
  const tile = native.quantize(type, random(64 * K, 1));
  const out = new Uint8Array((tile.length / 64) * N);
  for (let off = 0; off < out.length; off += tile.length) out.set(tile.subarray(0, Math.min(tile.length, out.length - off)), off);
  return out;
}

function measure(name: string, size: number): Result {
  const type = (DType as Record<string, number>)[name];
  if (type === undefined) throw new Error(`unknown type ${name}`);
  const budget = native.info().simd === 'scalar' ? seconds / 2 : seconds;
  const N = size;
  const K = size;
  const w = weights(type, N, K);
  const x1 = random(K, 2);
  const x64 = random(64 * K, 3);
  const t1 = bestSecondsPerCall(() => native.matmulRaw(x1, 1, K, w, type, N), budget);
  const t64 = bestSecondsPerCall(() => native.matmulRaw(x64, 64, K, w, type, N), budget);
  return { type: name, size, gbps: w.length / t1 / 1e9, gflops: (2 * 64 * N * K) / t64 / 1e9 };
}

// The same measurement in a child with KT_SIMD=scalar, right after ours, so that both
// see the same load on a shared machine.
function measureScalar(name: string, size: number): Result {
  const env = { ...process.env, KT_SIMD: 'scalar', [CHILD_ENV]: '1' };
  const args = [fileURLToPath(import.meta.url), '--types', name, '--sizes', String(size), '--seconds', String(seconds)];
  const child = spawnSync(process.execPath, args, { env, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`scalar run failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as Result;
}

const pad = (s: string | number, n: number): string => String(s).padStart(n);

if (process.env[CHILD_ENV]) {
  process.stdout.write(JSON.stringify(measure(types[0]!, sizes[0]!)));
} else {
  const info = native.info();
  const withScalar = !process.argv.includes('--no-scalar');
  console.log(`matmul bench: ${info.threads} threads, SIMD ${info.simd}; M=1 in GB/s of weights, M=64 in GFLOP/s`);
  console.log(
    `${'type'.padEnd(6)} ${pad('K=N', 5)} | ${pad('M=1 GB/s', 9)} ${pad('M=64 GF/s', 10)}` +
      (withScalar ? ` | ${pad('scalar GB/s', 11)} ${pad('scalar GF/s', 11)} | ${pad('x M=1', 6)} ${pad('x M=64', 7)}` : ''),
  );
  for (const name of types) {
    for (const size of sizes) {
      const r = measure(name, size);
      let line = `${r.type.padEnd(6)} ${pad(r.size, 5)} | ${pad(r.gbps.toFixed(2), 9)} ${pad(r.gflops.toFixed(1), 10)}`;
      if (withScalar) {
        const s = measureScalar(name, size);
        line += ` | ${pad(s.gbps.toFixed(2), 11)} ${pad(s.gflops.toFixed(1), 11)} |`;
        line += ` ${pad((r.gbps / s.gbps).toFixed(1), 6)} ${pad((r.gflops / s.gflops).toFixed(1), 7)}`;
      }
      console.log(line);
    }
  }
}
