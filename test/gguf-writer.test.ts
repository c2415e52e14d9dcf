// GGUF writer: rewriting the fixture files (written by llama.cpp's gguf-py and llama-quantize) must give the
// same bytes; every value type, nesting, alignment and chunked data must read back; misuse gives named errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, needFixtures } from './fixtures.js';
import { readGguf, readGgufFile } from '../src/formats/gguf.js';
import { GgufWriter } from '../src/formats/gguf-writer.js';
import { GGML_TYPE } from '../src/formats/gguf-types.js';
import { GgufWriteError } from '../src/formats/errors.js';

function withTempDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gguf-writer-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('rewriting each fixture GGUF from what the reader reports reproduces the file byte for byte', needFixtures, withTempDir(async (dir) => {
  const files = ['llama', 'qwen3', 'deepseek'].flatMap((m) =>
    readdirSync(fixturePath(m)).filter((n) => n.endsWith('.gguf')).map((n) => fixturePath(m, n)));
  assert.equal(files.length, 7);
  for (const src of files) {
    const h = readGgufFile(src);
    const out = join(dir, 'copy.gguf');
    const w = new GgufWriter(out, { alignment: h.alignment });
    for (const [k, v] of h.metadata) w.addMetadata(k, v, h.metadataTypes.get(k));
    for (const t of h.tensors) w.addTensorInfo(t.name, t.type, t.shape);
    await w.writeHeader();
    const fd = openSync(src, 'r');
    try {
      for (const t of h.tensors) {
        // Stream each tensor in pieces of at most 64 KiB, as a large file would be.
        for (let at = 0; at < t.byteLength; at += 65536) {
          const b = Buffer.alloc(Math.min(65536, t.byteLength - at));
          readSync(fd, b, 0, b.length, t.offset + at);
          await w.writeTensorData(t.name, b);
        }
      }
    } finally {
      closeSync(fd);
    }
    await w.close();
    assert.ok(readFileSync(out).equals(readFileSync(src)), `${src} rewritten identically`);
  }
}));

test('every metadata value type, nested arrays, 64-bit extremes and typed arrays read back', withTempDir(async (dir) => {
  const path = join(dir, 'values.gguf');
  const w = new GgufWriter(path);
  const cases: Array<[string, Parameters<GgufWriter['addMetadata']>[1], Parameters<GgufWriter['addMetadata']>[2], unknown]> = [
    ['t.u8', 255, 'u8', 255],
    ['t.i8', -128, 'i8', -128],
    ['t.u16', 65535, 'u16', 65535],
    ['t.i16', -32768, 'i16', -32768],
    ['t.u32', 4294967295, 'u32', 4294967295],
    ['t.i32', -2147483648, 'i32', -2147483648],
    ['t.f32', 0.1, 'f32', Math.fround(0.1)],
    ['t.bool.true', true, 'bool', true],
    ['t.bool.false', false, undefined, false],
    ['t.string', 'héllo ✓ 😀', undefined, 'héllo ✓ 😀'],
    ['t.string.empty', '', 'string', ''],
    ['t.u64.small', 42, 'u64', 42],
    ['t.u64.max', 0xffffffffffffffffn, 'u64', 0xffffffffffffffffn],
    ['t.u64.2^53', 2n ** 53n, 'u64', 2n ** 53n],
    ['t.i64.min', -(2n ** 63n), 'i64', -(2n ** 63n)],
    ['t.i64.safe', -(2 ** 53 - 1), 'i64', -(2 ** 53 - 1)],
    ['t.f64', 0.1, 'f64', 0.1],
    ['t.infer.int', 7, undefined, 7],
    ['t.infer.float', 0.5, undefined, 0.5],
    ['t.arr.str', ['a', '', 'ü'], undefined, ['a', '', 'ü']],
    ['t.arr.f32', [1.5, 0.1], 'f32', [1.5, Math.fround(0.1)]],
    ['t.arr.u64', [1, 2n ** 64n - 1n], 'u64', [1, 2n ** 64n - 1n]],
    ['t.arr.empty', [], 'i32', []],
    ['t.arr.bool', [true, false], undefined, [true, false]],
    ['t.arr.nested', [[1, 2], [], [3]], { array: { array: 'u16' } }, [[1, 2], [], [3]]],
    ['t.arr.nested.str', [['x'], ['y', 'z']], 'string', [['x'], ['y', 'z']]],
    ['t.arr.deep', [[[1]], [[2, 3]]], 'i8', [[[1]], [[2, 3]]]],
    ['t.typed.f32', new Float32Array([0.25, -1]), undefined, [0.25, -1]],
    ['t.typed.i32', new Int32Array([-5, 6]), undefined, [-5, 6]],
    ['t.typed.u8', new Uint8Array([0, 255]), undefined, [0, 255]],
    ['t.typed.i64', new BigInt64Array([-1n, 2n ** 62n]), undefined, [-1, 2n ** 62n]],
  ];
  for (const [key, value, type] of cases) w.addMetadata(key, value, type);
  await w.close();

  const h = readGgufFile(path);
  assert.equal(h.version, 3);
  assert.equal(h.tensors.length, 0);
  assert.deepEqual([...h.metadata.keys()], cases.map((c) => c[0]));
  for (const [key, , , expected] of cases) assert.deepEqual(h.metadata.get(key), expected, key);
  const types = Object.fromEntries(h.metadataTypes);
  assert.deepEqual([types['t.bool.false'], types['t.infer.int'], types['t.infer.float'], types['t.u64.max']], ['bool', 'i32', 'f32', 'u64']);
  assert.deepEqual(types['t.arr.nested'], { array: { array: 'u16' } });
  assert.deepEqual(types['t.typed.f32'], { array: 'f32' });
  assert.deepEqual(types['t.arr.deep'], { array: { array: { array: 'i8' } } });
}));

test('alignment: data offsets are multiples of it, it is recorded, and chunked writes equal one write', withTempDir(async (dir) => {
  const shapes: Array<[string, number, number[]]> = [
    ['a', GGML_TYPE.F32!, [3]], ['empty', GGML_TYPE.F16!, [0, 4]], ['b', GGML_TYPE.Q8_0!, [64, 2]], ['c', GGML_TYPE.F16!, [5, 3]],
  ];
  const data = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 255);
  for (const alignment of [1, 32, 64, 4096]) {
    for (const chunked of [false, true]) {
      const path = join(dir, `a${alignment}-${chunked}.gguf`);
      const w = new GgufWriter(path, { alignment });
      w.addMetadata('general.architecture', 'test');
      for (const [name, type, shape] of shapes) w.addTensorInfo(name, type, shape);
      await w.writeHeader();
      const sizes = { a: 12, b: 2 * 68, c: 30 } as Record<string, number>;
      for (const [name, seed] of [['a', 1], ['b', 2], ['c', 3]] as const) {
        const bytes = data(sizes[name]!, seed);
        if (!chunked) await w.writeTensorData(name, bytes);
        else for (let i = 0; i < bytes.length; i += 7) await w.writeTensorData(name, bytes.subarray(i, i + 7));
      }
      await w.close();
      const h = readGgufFile(path);
      assert.equal(h.alignment, alignment);
      assert.equal(h.metadata.get('general.alignment'), alignment === 32 ? undefined : alignment);
      assert.equal(h.dataOffset % alignment, 0);
      const file = readFileSync(path);
      for (const t of h.tensors) {
        assert.equal((t.offset - h.dataOffset) % alignment, 0, `${t.name} aligned to ${alignment}`);
        const seed = { a: 1, b: 2, c: 3, empty: 0 }[t.name]!;
        assert.deepEqual(new Uint8Array(file.subarray(t.offset, t.offset + t.byteLength)), t.byteLength ? data(t.byteLength, seed) : new Uint8Array(0));
      }
      assert.deepEqual(h.tensors.map((t) => [t.name, t.shape, t.byteLength]),
        [['a', [3], 12], ['empty', [0, 4], 0], ['b', [64, 2], 136], ['c', [5, 3], 30]]);
      if (chunked) assert.ok(file.equals(readFileSync(join(dir, `a${alignment}-false.gguf`))));
    }
  }
}));

test('a large tensor streams through in chunks with bounded memory', withTempDir(async (dir) => {
  const path = join(dir, 'big.gguf');
  const w = new GgufWriter(path);
  const rows = 4096;
  w.addTensorInfo('big', 'f32', [4096, rows]); // 64 MiB
  await w.writeHeader();
  const chunk = new Uint8Array(4096 * 4);
  const heapBefore = process.memoryUsage().heapUsed;
  for (let r = 0; r < rows; r++) {
    new DataView(chunk.buffer).setUint32(0, r, true);
    await w.writeTensorData('big', chunk);
  }
  await w.close();
  assert.ok(process.memoryUsage().heapUsed - heapBefore < 32 << 20, 'heap did not grow by the tensor size');
  const g = readGguf(path);
  const t = g.tensors.get('big')!;
  assert.equal(t.byteLength, 64 << 20);
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(4);
  readSync(fd, b, 0, 4, t.offset + 1234 * chunk.length);
  closeSync(fd);
  assert.equal(b.readUInt32LE(0), 1234);
}));

test('misuse is refused with GgufWriteError naming the file', withTempDir(async (dir) => {
  const path = join(dir, 'bad.gguf');
  const expectWriteError = async (fn: () => unknown, pattern: RegExp): Promise<void> => {
    await assert.rejects(async () => fn(), (e: unknown) => e instanceof GgufWriteError && e.message.includes(path) && pattern.test(e.message));
  };
  const w = new GgufWriter(path);
  await expectWriteError(() => w.addMetadata('x', 256, 'u8'), /out of range for type u8/);
  await expectWriteError(() => w.addMetadata('x', 1.5, 'i32'), /not an integer/);
  await expectWriteError(() => w.addMetadata('x', 'str', 'u32'), /expected a number/);
  await expectWriteError(() => w.addMetadata('x', []), /explicit element type/);
  await expectWriteError(() => w.addMetadata('x', [1, 'a']), /cannot infer/);
  await expectWriteError(() => w.addMetadata('general.alignment', 64, 'u32'), /disagrees/);
  w.addMetadata('x', 1);
  await expectWriteError(() => w.addMetadata('x', 2), /added twice/);
  await expectWriteError(() => w.addTensorInfo('t', 77, [4]), /unknown GGML type/);
  await expectWriteError(() => w.addTensorInfo('t', 'Q4_0', [33]), /multiple of Q4_0's block/);
  await expectWriteError(() => w.addTensorInfo('t', 'F32', [1, 1, 1, 1, 1]), /invalid shape/);
  w.addTensorInfo('t1', 'F32', [4]);
  w.addTensorInfo('t2', 'F32', [2]);
  await expectWriteError(() => w.writeTensorData('t1', new Uint8Array(16)), /writeHeader\(\) has not been called/);
  await w.writeHeader();
  await expectWriteError(() => w.addMetadata('late', 1), /header is already written/);
  await expectWriteError(() => w.writeTensorData('t2', new Uint8Array(8)), /expected "t1"/);
  await expectWriteError(() => w.writeTensorData('t1', new Uint8Array(17)), /takes 16 bytes; got 17/);
  await w.writeTensorData('t1', new Uint8Array(16));
  await w.writeTensorData('t2', new Uint8Array(4));
  await expectWriteError(() => w.close(), /"t2" \(4\/8 bytes\)/);
  await expectWriteError(() => new GgufWriter(path, { alignment: 48 }), /not a power of two/);
}));
