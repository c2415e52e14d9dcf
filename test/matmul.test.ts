// Native matmul over every weight type against a float64 reference, once per SIMD level and
// thread count: the file re-runs itself in child processes (KT_SIMD=scalar, avx2, unset; and
// unset with KT_NUM_THREADS=1), since both are fixed per process. Plain weights (F32/F16/BF16)
// take f32 activations; quantized weights take activations quantized per row as llama.cpp's x86
// build does (q8_0 / q8_1 / q8_K, re-derived below from their definitions), so the reference is
// the fixture-verified dequantized weights times the dequantized activations. Also checked: a
// row's outputs are bit-identical whatever M and the row's place in the batch, and quantized
// types give the same bits at every SIMD level and thread count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadNative, type NativeAddon } from '../src/backend/native.js';
import { DType } from '../src/backend/dtype.js';
import { haveFixtures, readFixtureJson } from './fixtures.js';
import { uniformSampler } from '../src/make-model/random-model.js';

const CHILD_ENV = 'KT_MATMUL_TEST_LEVEL';
const DIGEST = 'KT_MATMUL_DIGEST ';
const ROWS = 131; // weight rows made per type and K; smaller shapes use the first N
const level = process.env[CHILD_ENV];
const CHILDREN: [string, NodeJS.ProcessEnv][] = [
  ['scalar', { KT_SIMD: 'scalar' }],
  ['avx2', { KT_SIMD: 'avx2' }],
  ['default', {}],
  ['default, 1 thread', { KT_NUM_THREADS: '1' }],
];

if (level === undefined) {
  test('matmul kernels at every SIMD level and thread count', { concurrency: true }, async (t) => {
    const digests = new Map<string, Record<string, string>>();
    await Promise.all(CHILDREN.map(([name, env]) => t.test(name, async () => void digests.set(name, await runChild(name, env)))));
    await t.test('quantized types give the same bits everywhere; plain types whatever the thread count', () => {
      const [first, ...rest] = [...digests.entries()];
      assert.ok(first && rest.length === CHILDREN.length - 1, 'every child reported');
      for (const [type, hash] of Object.entries(first[1])) {
        const plain = ['F32', 'F16', 'BF16'].includes(type);
        for (const [name, d] of rest) if (!plain) assert.equal(d[type], hash, `${type}: ${first[0]} vs ${name}`);
      }
      for (const [type, hash] of Object.entries(digests.get('default')!))
        assert.equal(digests.get('default, 1 thread')![type], hash, `${type}: 1 thread vs the default count`);
    });
  });
} else {
  childTests(level, loadNative());
}

async function runChild(name: string, extra: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, [CHILD_ENV]: name };
  delete env.NODE_TEST_CONTEXT; // else the child reports in the runner's binary protocol, unreadable in a failure message
  if (!extra.KT_SIMD) delete env.KT_SIMD;
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { env });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(status, 0, `child (${name}) failed:\n${output}`);
  const line = output.split('\n').find((l) => l.includes(DIGEST));
  assert.ok(line, `child (${name}) printed no digest:\n${output}`);
  return JSON.parse(line.slice(line.indexOf(DIGEST) + DIGEST.length)) as Record<string, string>;
}

// Deterministic bell-shaped noise in (-2, 2) * scale: the sum of four uniforms.
function randn(count: number, seed: number, scale = 1): Float32Array {
  const uniform = uniformSampler(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = scale * (uniform() + uniform() + uniform() + uniform() - 2);
  return out;
}

// ---- the activation quantizers, from their definitions (float32 arithmetic via Math.fround) ----

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const r = v - f;
  return r > 0.5 || (r === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/** The binary16 value nearest to v (ties to even), from the format's spacing. */
function f16round(v: number): number {
  const a = Math.abs(v);
  if (a === 0 || !Number.isFinite(a)) return v;
  if (a >= 65520) return Math.sign(v) * Infinity;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  return Math.sign(v) * roundHalfEven(a / ulp) * ulp;
}

const f32 = Math.fround;
type Act = 'q8_0' | 'q8_1' | 'q8_K';

interface QuantizedRow {
  q: Int32Array; // codes
  d: number[]; // per block: the scale the dot product uses
  s: number[]; // q8_1: fp16(d * sum of the block's codes)
}

// q8_0 / q8_1 as ggml's AVX/AVX2/AVX-512 from_float: d = amax/127 stored as fp16, codes
// round(x * (127/amax)) ties to even. q8_K as quantize_row_q8_K_ref: scale -127/max of the first
// element of largest magnitude, codes capped at 127, d = 1/scale in f32.
function quantizeRow(x: Float32Array, act: Act): QuantizedRow {
  const B = act === 'q8_K' ? 256 : 32;
  const q = new Int32Array(x.length);
  const d: number[] = [];
  const s: number[] = [];
  for (let b = 0; b < x.length; b += B) {
    if (act === 'q8_K') {
      let max = 0;
      let amax = 0;
      for (let j = b; j < b + B; j++) if (Math.abs(x[j]!) > amax) [amax, max] = [Math.abs(x[j]!), x[j]!];
      const iscale = amax === 0 ? 0 : f32(-127 / max);
      for (let j = b; j < b + B; j++) q[j] = Math.min(127, roundHalfEven(f32(iscale * x[j]!)));
      d.push(amax === 0 ? 0 : f32(1 / iscale));
    } else {
      let amax = 0;
      for (let j = b; j < b + B; j++) amax = Math.max(amax, Math.abs(x[j]!));
      const dd = f32(amax / 127);
      const id = amax === 0 ? 0 : f32(127 / amax);
      let sum = 0;
      for (let j = b; j < b + B; j++) sum += q[j] = roundHalfEven(f32(x[j]! * id));
      d.push(f16round(dd));
      s.push(f16round(f32(dd * sum)));
    }
  }
  return { q, d, s };
}

// One row where rounding rules matter: blocks whose scale is exactly 1 (largest magnitude 127,
// negative first so q8_K's scale is 1 too) with values on k + 1/2, and a q8_0 block whose
// 127/amax and 1/(amax/127) round one value to different codes (found by search).
function tieActivations(K: number): Float32Array {
  const x = randn(K, 3, 0.3);
  for (let b = 0; b < K; b += 32) {
    x[b] = -127;
    for (let j = 1; j < 32; j++) x[b + j] = ((j % 2 ? 1 : -1) * (2 * j + 1)) / 2;
  }
  for (let seed = 1; ; seed++) {
    const amax = f32(1 + (seed * 0.6180339887) % 100);
    const id = f32(127 / amax);
    const idRef = f32(1 / f32(amax / 127));
    if (id === idRef) continue;
    for (let k = 1; k < 126; k++) {
      // the float nearest to (k + 1/2) / id on each side, and whichever rounds apart
      for (const v of [f32((k + 0.5) / id), f32((k + 0.5) / idRef)]) {
        if (roundHalfEven(f32(v * id)) !== roundHalfEven(f32(v * idRef))) {
          x.fill(0.01, 32, 64);
          x[32] = amax;
          x[33] = v;
          return x;
        }
      }
    }
  }
}

const ACT: Record<string, Act> = {
  Q4_0: 'q8_0', Q5_0: 'q8_0', Q8_0: 'q8_0', IQ4_NL: 'q8_0', Q4_1: 'q8_1', Q5_1: 'q8_1',
  Q2_K: 'q8_K', Q3_K: 'q8_K', Q4_K: 'q8_K', Q5_K: 'q8_K', Q6_K: 'q8_K', IQ4_XS: 'q8_K',
};

function halfAt(bytes: Uint8Array, at: number): number {
  const h = bytes[at]! | (bytes[at + 1]! << 8);
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

// ---- the cases ----

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
    assert.equal(K % 512, 0);
    const per = K / 512;
    const out = new Uint8Array(N * per * t.row_bytes);
    for (let i = 0; i < N * per; i++) out.set(rows.subarray((i % 4) * t.row_bytes, (i % 4 + 1) * t.row_bytes), i * t.row_bytes);
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
    const plain = name === 'F16' || name === 'BF16';
    const legacy = !plain && !name.endsWith('_K');
    const ks = plain ? [...standard, 56, 37] : legacy ? [...standard, 96] : standard; // 96: an odd number of blocks
    list.push({ name, type, weights: quantized(native, type, type * 1000), ks });
  }
  if (haveFixtures) {
    list.push({ name: 'IQ4_NL', type: 20, weights: fixtureRows('iq4_nl'), ks: [512] });
    list.push({ name: 'IQ4_XS', type: 23, weights: fixtureRows('iq4_xs'), ks: [512] });
  }
  return list;
}

// Checks x (M x K) times the first N rows of w against the float64 reference.
function check(native: NativeAddon, c: Case, M: number, K: number, N: number, wAll: Uint8Array, wfAll: Float32Array,
               x = randn(M * K, 99 + M * 7 + K)): void {
  const rowBytes = wAll.length / ROWS;
  const w = wAll.subarray(0, rowBytes * N);
  const got = native.matmulRaw(x, M, K, w, c.type, N);
  assert.equal(got.length, M * N);
  const act = ACT[c.name];
  for (let m = 0; m < M; m++) {
    const row = x.subarray(m * K, (m + 1) * K);
    const qr = act ? quantizeRow(row, act) : undefined;
    const B = act === 'q8_K' ? 256 : 32;
    const xv = qr ? Float64Array.from(qr.q, (v, k) => v * qr.d[Math.floor(k / B)]!) : row;
    for (let n = 0; n < N; n++) {
      let ref = 0;
      let abs = 0;
      for (let k = 0; k < K; k++) {
        const p = xv[k]! * wfAll[n * K + k]!;
        ref += p;
        abs += Math.abs(p);
      }
      if (act === 'q8_1') {
        // ggml's min term uses the block's s (fp16 of the unrounded d times the code sum), not d * sum.
        for (let b = 0; b < K / 32; b++) {
          let sum = 0;
          for (let k = 32 * b; k < 32 * b + 32; k++) sum += qr!.q[k]!;
          const mw = halfAt(w, n * rowBytes + (b * rowBytes) / (K / 32) + 2);
          ref += mw * (qr!.s[b]! - qr!.d[b]! * sum);
        }
      }
      const err = Math.abs(got[m * N + n]! - ref);
      assert.ok(err <= 1e-5 * abs + 1e-30, `${c.name} M=${M} K=${K} N=${N} at [${m},${n}]: ${got[m * N + n]} vs ${ref} (abs-sum ${abs})`);
    }
  }
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

// Rows of x alone, and in batches of several sizes at several offsets, give the bits of one M=17 call.
function checkBatchInvariance(native: NativeAddon, c: Case, K: number, w: Uint8Array, N: number): Float32Array {
  const M = 17;
  const x = randn(M * K, 5 + K);
  const all = native.matmulRaw(x, M, K, w, c.type, N);
  for (const [m0, count] of [[0, 1], [16, 1], [7, 1], [3, 2], [9, 3], [1, 4], [11, 5], [2, 13]] as const) {
    const part = native.matmulRaw(x.subarray(m0 * K, (m0 + count) * K), count, K, w, c.type, N);
    const want = bits(all.subarray(m0 * N, (m0 + count) * N));
    const diff = bits(part).findIndex((v, i) => v !== want[i]);
    assert.equal(diff, -1, `${c.name} K=${K}: rows ${m0}..${m0 + count - 1} alone differ from the M=17 batch at ${diff}`);
  }
  return all;
}

function fnv(a: Float32Array, h = 0x811c9dc5): number {
  for (const v of bits(a)) h = Math.imul(h ^ v, 0x01000193) >>> 0;
  return h;
}

function childTests(name: string, native: NativeAddon): void {
  test(`the process runs at the requested SIMD level (${name})`, () => {
    const got = native.info().simd;
    if (name === 'scalar') assert.equal(got, 'scalar');
    if (name === 'avx2') assert.ok(got === 'avx2' || got === 'scalar', got);
  });

  const digest: Record<string, string> = {};
  for (const c of cases(native)) {
    test(`matmul ${c.name}: float64 reference, and batch invariance (${name})`, () => {
      // N odd and not a multiple of the thread count or of 8 and 16 rows per kernel group; the
      // larger shapes span several thread chunks (M = 1) and several panels or tiles (M = 17).
      const shapes = [[1, 37], [1, ROWS], [3, 38], [17, 67]] as const;
      let h = 0x811c9dc5;
      for (const K of c.ks) {
        const w = c.weights(ROWS, K);
        const wf = native.dequantize(c.type, w, ROWS * K);
        for (const [M, N] of shapes) check(native, c, M, K, N, w, wf);
        h = fnv(checkBatchInvariance(native, c, K, w.subarray(0, (w.length / ROWS) * 37), 37), h);
      }
      digest[c.name] = h.toString(16);
    });
  }

  test(`activations: ties round to even; q8_0/q8_1 scale by 127/amax, not 1/(amax/127) (${name})`, () => {
    const K = 256;
    const x = tieActivations(K);
    for (const c of cases(native).filter((k) => ['Q8_0', 'Q4_1', 'Q4_K'].includes(k.name))) {
      const w = c.weights(ROWS, K);
      check(native, c, 1, K, 37, w, native.dequantize(c.type, w, ROWS * K), x);
    }
  });

  test(`weights at an odd byte offset (unaligned fp16 fields) give the same result (${name})`, () => {
    const c = cases(native).find((k) => k.name === 'Q4_K')!;
    const K = 512;
    const w = c.weights(ROWS, K);
    const shifted = new Uint8Array(w.length + 1).subarray(1);
    shifted.set(w);
    check(native, c, 3, K, 37, shifted, native.dequantize(c.type, w, ROWS * K));
  });

  test('matmul with an empty side returns an empty result', () => {
    const w = native.quantize(DType.Q4_K, new Float32Array(512));
    assert.equal(native.matmulRaw(new Float32Array(0), 0, 256, w, DType.Q4_K, 2).length, 0);
    assert.equal(native.matmulRaw(new Float32Array(256), 1, 256, new Uint8Array(0), DType.Q4_K, 0).length, 0);
  });

  test('digest', () => {
    process.stdout.write(`\n${DIGEST}${JSON.stringify(digest)}\n`);
  });
}
