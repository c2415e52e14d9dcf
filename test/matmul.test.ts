// Native matmul over every weight type against a float64 reference (the type's reference
// dequantization, then a float64 dot), once per SIMD level: the file re-runs itself in child
// processes with KT_SIMD=scalar, avx2 and unset, since the level is fixed per process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadNative, type NativeAddon } from '../src/backend/native.js';
import { DType } from '../src/backend/dtype.js';
import { haveFixtures, readFixtureJson } from './fixtures.js';

const CHILD_ENV = 'KT_MATMUL_TEST_LEVEL';
const ROWS = 131; // weight rows made per type and K; smaller shapes use the first N
const level = process.env[CHILD_ENV];

if (level === undefined) {
  // The three levels run side by side: each child is single-threaded JS plus the pool.
  test('matmul kernels at every SIMD level', { concurrency: true }, async (t) => {
    await Promise.all(['scalar', 'avx2', 'default'].map((simd) => t.test(`KT_SIMD=${simd}`, () => runChild(simd))));
  });
} else {
  childTests(level, loadNative());
}

async function runChild(simd: string): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: simd };
  delete env.NODE_TEST_CONTEXT; // else the child reports in the runner's binary protocol, unreadable in a failure message
  if (simd === 'default') delete env.KT_SIMD;
  else env.KT_SIMD = simd;
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { env });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(status, 0, `child with KT_SIMD=${simd} failed:\n${output}`);
}

// Deterministic bell-shaped noise in (-2, 2) * scale: mulberry32, sum of four uniforms.
function randn(count: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = scale * (uniform() + uniform() + uniform() + uniform() - 2);
  return out;
}

interface Case {
  name: string;
  type: number;
  weights: (N: number, K: number) => Uint8Array;
  ks: number[];
}

function quantized(native: NativeAddon, type: number, seed: number) {
  return (N: number, K: number): Uint8Array => native.quantize(type, randn(N * K, seed + K, 0.05));
}

// IQ4 types have no quantizer here: their rows come from ggml's fixture bytes (4 rows of 512).
function fixtureRows(type: string) {
  return (N: number, K: number): Uint8Array => {
    const t = readFixtureJson<{ types: Record<string, { quantized_b64: string; row_bytes: number }> }>('quant_blocks.json')
      .types[type]!;
    const rows = Buffer.from(t.quantized_b64, 'base64');
    assert.equal(K, 512);
    const out = new Uint8Array(N * t.row_bytes);
    for (let n = 0; n < N; n++) out.set(rows.subarray((n % 4) * t.row_bytes, (n % 4 + 1) * t.row_bytes), n * t.row_bytes);
    return out;
  };
}

function cases(native: NativeAddon): Case[] {
  const standard = [256, 512, 1024];
  const list: Case[] = [
    { name: 'F32', type: DType.F32, weights: (N, K) => new Uint8Array(randn(N * K, 7 + K).buffer), ks: [...standard, 56, 37] },
  ];
  for (const [name, type] of Object.entries(DType)) {
    if (name === 'F32' || name === 'I32') continue;
    const ks = name === 'F16' || name === 'BF16' ? [...standard, 56, 37] : standard;
    list.push({ name, type, weights: quantized(native, type, type * 1000), ks });
  }
  if (haveFixtures) {
    list.push({ name: 'IQ4_NL', type: 20, weights: fixtureRows('iq4_nl'), ks: [512] });
    list.push({ name: 'IQ4_XS', type: 23, weights: fixtureRows('iq4_xs'), ks: [512] });
  }
  return list;
}

// Checks x (M x K) times the first N rows of w against the float64 reference.
function check(native: NativeAddon, c: Case, M: number, K: number, N: number, wAll: Uint8Array, wfAll: Float32Array): void {
  const w = wAll.subarray(0, (wAll.length / ROWS) * N);
  const wf = wfAll.subarray(0, N * K);
  const x = randn(M * K, 99 + M * 7 + K);
  const got = native.matmulRaw(x, M, K, w, c.type, N);
  assert.equal(got.length, M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let ref = 0;
      let abs = 0;
      for (let k = 0; k < K; k++) {
        const p = x[m * K + k]! * wf[n * K + k]!;
        ref += p;
        abs += Math.abs(p);
      }
      const err = Math.abs(got[m * N + n]! - ref);
      assert.ok(err <= 1e-5 * abs + 1e-30, `${c.name} M=${M} K=${K} N=${N} at [${m},${n}]: ${got[m * N + n]} vs ${ref} (abs-sum ${abs})`);
    }
  }
}

function childTests(simd: string, native: NativeAddon): void {
  test(`the process runs at the requested SIMD level (${simd})`, () => {
    const got = native.info().simd;
    if (simd === 'scalar') assert.equal(got, 'scalar');
    if (simd === 'avx2') assert.ok(got === 'avx2' || got === 'scalar', got);
  });

  for (const c of cases(native)) {
    test(`matmul ${c.name} matches the float64 reference (KT_SIMD=${simd})`, () => {
      // N odd and not a multiple of the thread count; the larger shapes span several
      // thread chunks (M = 1) and several dequantized panels (M = 17).
      const shapes = [[1, 37], [1, ROWS], [3, 38], [17, 67]] as const;
      for (const K of c.ks) {
        const w = c.weights(ROWS, K);
        const wf = native.dequantize(c.type, w, ROWS * K);
        for (const [M, N] of shapes) check(native, c, M, K, N, w, wf);
      }
    });
  }

  test('matmul with an empty side returns an empty result', () => {
    const w = native.quantize(DType.Q4_K, new Float32Array(512));
    assert.equal(native.matmulRaw(new Float32Array(0), 0, 256, w, DType.Q4_K, 2).length, 0);
    assert.equal(native.matmulRaw(new Float32Array(256), 1, 256, new Uint8Array(0), DType.Q4_K, 0).length, 0);
  });
}
