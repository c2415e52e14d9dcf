// Native dequantize/quantize against ggml's own bytes and gguf-py's dequantization
// (fixtures/quant_blocks.json), and the f16/bf16 conversions against the IEEE definitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative } from '../src/backend/native.js';
import { DType } from '../src/backend/dtype.js';
import { decodeF32, needFixtures, readFixtureJson } from './fixtures.js';

interface QuantFixtureType {
  ggml_type_id: number;
  block_elems: number;
  block_bytes: number;
  row_bytes: number;
  quantized_b64: string;
  dequant_gguf_py_b64: string;
}
interface QuantFixture {
  shape: [number, number];
  input_f32_b64: string;
  types: Record<string, QuantFixtureType>;
}

const native = loadNative();
const QUANTIZABLE = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K'];

function fixture(): QuantFixture {
  return readFixtureJson<QuantFixture>('quant_blocks.json');
}

test('dequantize matches gguf-py exactly for every fixture type', needFixtures, () => {
  const fx = fixture();
  const n = fx.shape[0] * fx.shape[1];
  const names = Object.keys(fx.types);
  assert.ok(names.length >= 12, 'fixture lists the quant types');
  for (const name of names) {
    const t = fx.types[name]!;
    const bytes = new Uint8Array(Buffer.from(t.quantized_b64, 'base64'));
    assert.equal(bytes.length, fx.shape[0] * t.row_bytes, `${name}: fixture size`);
    const want = decodeF32(t.dequant_gguf_py_b64);
    const got = native.dequantize(t.ggml_type_id, bytes, n);
    assert.equal(got.length, n);
    let mismatches = 0;
    let first = -1;
    for (let i = 0; i < n; i++) {
      if (got[i] !== want[i]) {
        mismatches++;
        if (first < 0) first = i;
      }
    }
    assert.equal(mismatches, 0, `${name}: ${mismatches} values differ, first at ${first}: ${got[first]} vs ${want[first]}`);
  }
});

test('quantize reproduces ggml_quantize_chunk byte for byte', needFixtures, () => {
  const fx = fixture();
  const input = decodeF32(fx.input_f32_b64);
  for (const name of QUANTIZABLE) {
    const t = fx.types[name];
    assert.ok(t, `fixture has ${name}`);
    const want = new Uint8Array(Buffer.from(t.quantized_b64, 'base64'));
    const got = native.quantize(t.ggml_type_id, input);
    assert.equal(got.length, want.length, `${name}: size`);
    const diff = got.findIndex((b, i) => b !== want[i]);
    const block = Math.floor(diff / t.block_bytes);
    assert.equal(diff, -1, `${name}: first differing byte ${diff} (block ${block}, byte ${diff % t.block_bytes})`);
  }
});

// The value of an IEEE binary16 code, straight from the definition.
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

function u16Bytes(codes: number[]): Uint8Array {
  const out = new Uint8Array(codes.length * 2);
  const view = new DataView(out.buffer);
  codes.forEach((c, i) => view.setUint16(2 * i, c, true));
  return out;
}

function u16Codes(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 2 }, (_, i) => view.getUint16(2 * i, true));
}

const allCodes = Array.from({ length: 65536 }, (_, i) => i);

test('f16: every code decodes to its IEEE value and encodes back', () => {
  const values = native.dequantize(DType.F16, u16Bytes(allCodes), 65536);
  for (const h of allCodes) {
    const want = halfValue(h);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(values[h]), `code ${h} is NaN`);
    else assert.ok(Object.is(values[h], want), `code ${h}: ${values[h]} vs ${want}`);
  }
  const back = u16Codes(native.quantize(DType.F16, values));
  for (const h of allCodes) {
    if (Number.isNaN(halfValue(h))) assert.ok((back[h]! & 0x7c00) === 0x7c00 && (back[h]! & 0x3ff) !== 0, `NaN ${h}`);
    else assert.equal(back[h], h, `round trip of code ${h}`);
  }
});

test('f16: halfway cases round to even, neighbours to nearest, overflow to infinity', () => {
  const inputs: number[] = [];
  const expected: number[] = [];
  for (let h = 0; h < 0x7bff; h++) {
    const lo = halfValue(h);
    const hi = halfValue(h + 1);
    const mid = (lo + hi) / 2; // exact in float32: 12 significant bits
    const even = h % 2 === 0 ? h : h + 1;
    const f = new Float32Array([mid]);
    const bits = new Uint32Array(f.buffer);
    assert.equal(f[0], mid);
    inputs.push(mid, -mid);
    expected.push(even, even | 0x8000);
    bits[0] = bits[0]! + 1; // just above the midpoint
    inputs.push(f[0]!);
    expected.push(h + 1);
    bits[0] = bits[0]! - 2; // just below
    inputs.push(f[0]!);
    expected.push(h);
  }
  inputs.push(65519.99609375, 65520, 1e6, -Infinity, 2 ** -25, 2 ** -25 * 1.0000001);
  expected.push(0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x0000, 0x0001);
  const got = u16Codes(native.quantize(DType.F16, new Float32Array(inputs)));
  for (let i = 0; i < inputs.length; i++) assert.equal(got[i], expected[i], `f16(${inputs[i]})`);
});

test('bf16: codes decode to the top half of a float32; rounding is to nearest even', () => {
  const values = native.dequantize(DType.BF16, u16Bytes(allCodes), 65536);
  const asF32 = new Float32Array(new Uint32Array(allCodes.map((c) => c << 16 >>> 0)).buffer);
  for (const h of allCodes) {
    if (Number.isNaN(asF32[h])) assert.ok(Number.isNaN(values[h]));
    else assert.ok(Object.is(values[h], asF32[h]), `bf16 code ${h}`);
  }
  // Midpoints between neighbouring codes are the float32 with low half 0x8000.
  const codes = [0x0000, 0x0001, 0x3f80, 0x3f81, 0x7f7e, 0x7f7f, 0xbf80, 0x4049];
  const bits = new Uint32Array(codes.length * 3 + 1);
  codes.forEach((c, i) => {
    bits[3 * i] = ((c << 16) | 0x8000) >>> 0; // halfway
    bits[3 * i + 1] = ((c << 16) | 0x8001) >>> 0; // above
    bits[3 * i + 2] = ((c << 16) | 0x7fff) >>> 0; // below
  });
  bits[bits.length - 1] = 0x7fc00001; // a NaN
  const got = u16Codes(native.quantize(DType.BF16, new Float32Array(bits.buffer)));
  codes.forEach((c, i) => {
    assert.equal(got[3 * i], c % 2 === 0 ? c : c + 1, `halfway above code ${c}`);
    assert.equal(got[3 * i + 1], c + 1, `above halfway of code ${c}`);
    assert.equal(got[3 * i + 2], c, `below halfway of code ${c}`);
  });
  const nan = got[got.length - 1]!;
  assert.ok((nan & 0x7f80) === 0x7f80 && (nan & 0x7f) !== 0, 'NaN stays NaN');
});

// (matmul over unaligned weights is checked in matmul.test.ts, against its q8 reference)
test('blocks at an odd byte offset (unaligned fp16 fields) still match gguf-py', needFixtures, () => {
  const fx = fixture();
  const [rows, cols] = fx.shape;
  for (const name of ['q4_K', 'q5_1', 'q8_0']) {
    const t = fx.types[name]!;
    const bytes = Buffer.from(t.quantized_b64, 'base64');
    const shifted = new Uint8Array(bytes.length + 1).subarray(1);
    shifted.set(bytes);
    assert.deepEqual(native.dequantize(t.ggml_type_id, shifted, rows * cols), decodeF32(t.dequant_gguf_py_b64), name);
  }
});

test('bad arguments throw Errors that name the op and the problem', () => {
  assert.throws(() => native.dequantize(99, new Uint8Array(18), 32), /dequantize: unsupported type/);
  assert.throws(() => native.dequantize(DType.I32, new Uint8Array(4), 1), /dequantize: unsupported type I32/);
  assert.throws(() => native.dequantize(DType.Q4_0, new Uint8Array(17), 32), /dequantize: .*18 bytes, src has 17/);
  assert.throws(() => native.dequantize(DType.Q4_0, new Uint8Array(18), 31), /dequantize: n=31 is not a multiple/);
  assert.throws(() => native.dequantize(DType.Q4_0, new Uint8Array(18), -32), /dequantize: n must be a non-negative/);
  assert.throws(() => native.quantize(DType.Q4_K, new Float32Array(100)), /quantize: .*multiple of the Q4_K block size 256/);
  assert.throws(() => native.quantize(20, new Float32Array(32)), /quantize: unsupported type IQ4_NL/);
  // @ts-expect-error: wrong argument type on purpose
  assert.throws(() => native.quantize(DType.Q8_0, [1, 2, 3]), /quantize: src must be a Float32Array/);
  const w = native.quantize(DType.Q8_0, new Float32Array(64));
  assert.throws(() => native.matmulRaw(new Float32Array(64), 1, 64, w, DType.Q8_0, 2), /matmul: w has 68 bytes/);
  assert.throws(() => native.matmulRaw(new Float32Array(63), 1, 64, w, DType.Q8_0, 1), /matmul: x has 63 floats/);
  assert.throws(() => native.matmulRaw(new Float32Array(48), 1, 48, w, DType.Q8_0, 1), /matmul: K=48 is not a multiple/);
  assert.throws(() => native.matmulRaw(new Float32Array(64), 1, 64, w, DType.I32, 1), /matmul: unsupported type I32/);
  assert.equal(native.dequantize(DType.Q4_K, new Uint8Array(0), 0).length, 0);
});
