// Corrupt, truncated and incomplete model files (assembled here byte by byte from the GGUF and safetensors
// specs) must fail fast with the named error class, and every message must name the offending file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getNumber, getString, getStringArray, readGguf } from '../src/formats/gguf.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import { readJsonFile, readOptionalJsonFile } from '../src/formats/json-file.js';
import {
  ConfigFileError, GgufFormatError, GgufMetadataTypeError, InvalidGgufMagicError, InvalidSafetensorsHeaderError,
  MissingShardError, MissingSplitError, ModelDirectoryError, ModelFileError, TruncatedFileError, UnknownGgmlTypeError,
  UnsupportedGgufVersionError,
} from '../src/formats/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'format-errors-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;

function put(bytes: Uint8Array | string, name = `f${fileNo++}.bin`): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** Asserts fn throws `cls` (within 1 s: no allocation or scan proportional to a bogus count) naming `file`. */
function expectError(fn: () => unknown, cls: new (...args: never[]) => ModelFileError, file: string, pattern?: RegExp): void {
  const t0 = performance.now();
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error).name}: ${(e as Error).message}`);
    assert.ok(e.message.includes(file), `message names ${file}: ${e.message}`);
    assert.equal(e.file, file);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
  assert.ok(performance.now() - t0 < 1000, 'failed fast');
}

// ---- GGUF, assembled from the spec: magic, u32 version, u64 tensor count, u64 kv count, kvs, tensor infos, padding, data ----

const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const u64 = (n: number | bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
const str = (s: string): Buffer => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
const kv = (key: string, type: number, payload: Buffer): Buffer => Buffer.concat([str(key), u32(type), payload]);
const info = (name: string, dims: Array<number | bigint>, type: number, offset: number | bigint, nDims = dims.length): Buffer =>
  Buffer.concat([str(name), u32(nDims), ...dims.map(u64), u32(type), u64(offset)]);
const F32 = 0;

interface GgufParts { magic?: string; version?: number; tensorCount?: number | bigint; kvCount?: number | bigint; kvs?: Buffer[]; infos?: Buffer[]; data?: Buffer; alignment?: number }
function gguf(p: GgufParts): Buffer {
  const kvs = p.kvs ?? [];
  const infos = p.infos ?? [];
  const head = Buffer.concat([Buffer.from(p.magic ?? 'GGUF', 'latin1'), u32(p.version ?? 3),
    u64(p.tensorCount ?? infos.length), u64(p.kvCount ?? kvs.length), ...kvs, ...infos]);
  const align = p.alignment ?? 32;
  return Buffer.concat([head, Buffer.alloc((align - (head.length % align)) % align), p.data ?? Buffer.alloc(0)]);
}

/** A valid file: string, string-array and u32 metadata, two F32 [8] tensors whose data ends the file exactly. */
const validParts: GgufParts = {
  kvs: [
    kv('general.architecture', 8, str('llama')),
    kv('tokenizer.ggml.tokens', 9, Buffer.concat([u32(8), u64(3), str('a'), str('bc'), str('def')])),
    kv('llama.block_count', 4, u32(2)),
  ],
  infos: [info('t0', [8], F32, 0), info('t1', [8], F32, 32)],
  data: Buffer.alloc(64, 1),
};

test('the hand-assembled base file is valid', () => {
  const g = readGguf(put(gguf(validParts)));
  assert.equal(getString(g.metadata, 'general.architecture'), 'llama');
  assert.deepEqual(getStringArray(g.metadata, 'tokenizer.ggml.tokens'), ['a', 'bc', 'def']);
  assert.deepEqual([...g.tensors.values()].map((t) => t.byteLength), [32, 32]);
});

test('GGUF: bad magic, unsupported versions', () => {
  let f = put(gguf({ ...validParts, magic: 'GGML' }));
  expectError(() => readGguf(f), InvalidGgufMagicError, f, /"GGML"/);
  f = put(Buffer.from('{"not": "gguf"}'));
  expectError(() => readGguf(f), InvalidGgufMagicError, f);
  for (const version of [1, 4, 0x03000000]) {
    f = put(gguf({ ...validParts, version }));
    expectError(() => readGguf(f), UnsupportedGgufVersionError, f, new RegExp(`version ${version}`));
  }
  expectError(() => readGguf(f), UnsupportedGgufVersionError, f, /big-endian/);
});

test('GGUF: truncated at every byte, header and data alike', () => {
  const whole = gguf(validParts);
  const header = gguf({ ...validParts, data: Buffer.alloc(0) }).length;
  for (let cut = 0; cut < whole.length; cut++) {
    const f = put(whole.subarray(0, cut), 'cut.gguf');
    expectError(() => readGguf(f), TruncatedFileError, f);
  }
  // Named points: mid tensor info (inside the name of t1), mid data (inside t1).
  const midInfo = header - 20;
  const f = put(whole.subarray(0, midInfo), 'mid-info.gguf');
  expectError(() => readGguf(f), TruncatedFileError, f, /file ends at byte/);
  const g = put(whole.subarray(0, header + 40), 'mid-data.gguf');
  expectError(() => readGguf(g), TruncatedFileError, g, /tensor "t1" data .* past the end/);
});

test('GGUF: absurd counts and lengths fail fast without allocating', () => {
  const cases: Array<[string, GgufParts, RegExp]> = [
    ['2^60 tensors', { ...validParts, tensorCount: 2n ** 60n }, /tensor count/],
    ['2^60 metadata entries', { ...validParts, kvCount: 2n ** 60n }, /metadata key\/value count/],
    ['2^40 tensors', { ...validParts, tensorCount: 2 ** 40 }, /impossible/],
    ['4 GB string', { kvs: [kv('general.name', 8, Buffer.concat([u64(2n ** 32n), Buffer.from('x')]))] }, /length of/],
    ['4 GB key', { kvs: [Buffer.concat([u64(2n ** 32n), Buffer.from('k')])] }, /length of key/],
    ['2^60-element array', { kvs: [kv('a', 9, Buffer.concat([u32(4), u64(2n ** 60n)]))] }, /element count/],
    ['2^50-element nested array', { kvs: [kv('a', 9, Buffer.concat([u32(9), u64(1), u32(9), u64(2n ** 50n)]))] }, /element count/],
    ['2^60-element dimension', { infos: [info('t', [2n ** 60n], F32, 0)] }, /dimension 0 .* absurdly large/],
    ['2^52 x 2^52 elements', { infos: [info('t', [2 ** 52, 2 ** 52], F32, 0)] }, /impossibly large/],
    ['5 dimensions', { infos: [info('t', [1, 1, 1, 1, 1], F32, 0)] }, /5 dimensions/],
    ['offset 2^62', { infos: [info('t', [8], F32, 2n ** 62n)] }, /data offset/],
  ];
  for (const [what, parts, pattern] of cases) {
    const f = put(gguf(parts), `${what.replace(/\W+/g, '_')}.gguf`);
    expectError(() => readGguf(f), GgufFormatError, f, pattern);
  }
});

test('GGUF: structural errors get GgufFormatError or UnknownGgmlTypeError', () => {
  const data = Buffer.alloc(64);
  const cases: Array<[string, GgufParts, RegExp]> = [
    ['unknown value type', { kvs: [kv('x', 13, u32(0))] }, /unknown value type id 13/],
    ['array of unknown type', { kvs: [kv('x', 9, Buffer.concat([u32(77), u64(0)]))] }, /unknown value type id 77/],
    ['bool 2', { kvs: [kv('x', 7, Buffer.from([2]))] }, /neither 0 nor 1/],
    ['duplicate key', { kvs: [kv('x', 4, u32(1)), kv('x', 4, u32(2))] }, /duplicate metadata key "x"/],
    ['alignment 3', { kvs: [kv('general.alignment', 4, u32(3))] }, /general.alignment is 3/],
    ['alignment a string', { kvs: [kv('general.alignment', 8, str('32'))] }, /general.alignment/],
    ['misaligned offset', { infos: [info('t', [8], F32, 4)], data }, /not a multiple of the alignment 32/],
    ['overlap', { infos: [info('a', [16], F32, 0), info('b', [8], F32, 32)], data }, /"a" and "b" overlap/],
    ['duplicate tensor', { infos: [info('a', [8], F32, 0), info('a', [8], F32, 32)], data }, /tensor "a" also appears/],
    ['row not whole blocks', { infos: [info('q', [33], 2, 0)], data }, /rows of 33 elements/],
  ];
  for (const [what, parts, pattern] of cases) {
    const f = put(gguf(parts), `${what.replace(/\W+/g, '_')}.gguf`);
    expectError(() => readGguf(f), GgufFormatError, f, pattern);
  }
  for (const type of [4, 31, 99, 0xffffffff]) {
    const f = put(gguf({ infos: [info('w', [8], type, 0)], data }));
    expectError(() => readGguf(f), UnknownGgmlTypeError, f, new RegExp(`tensor "w" has unknown GGML type id ${type}`));
  }
  const f = put(gguf({ infos: [info('t', [8], F32, 32)], data: Buffer.alloc(40) }));
  expectError(() => readGguf(f), TruncatedFileError, f, /tensor "t" data .* past the end/);
});

test('GGUF: typed metadata getters name the file and the key', () => {
  const f = put(gguf(validParts));
  const g = readGguf(f);
  expectError(() => getString(g.metadata, 'llama.block_count'), GgufMetadataTypeError, f, /"llama.block_count" is a number .*expected a string/);
  expectError(() => getNumber(g.metadata, 'tokenizer.ggml.tokens'), GgufMetadataTypeError, f, /an array of 3/);
  assert.equal(getNumber(g.metadata, 'absent'), undefined);
});

test('GGUF: missing split files, directories without a model, missing files', () => {
  const splitDir = join(dir, 'splits');
  mkdirSync(splitDir);
  const splitKvs = (no: number): Buffer[] => [kv('split.no', 2, Buffer.from([no, 0])), kv('split.count', 2, Buffer.from([3, 0]))];
  const names = [1, 2, 3].map((i) => join(splitDir, `m-0000${i}-of-00003.gguf`));
  names.forEach((p, i) => writeFileSync(p, gguf({ kvs: splitKvs(i), infos: [info(`t${i}`, [8], F32, 0)], data: Buffer.alloc(32) })));
  assert.equal(readGguf(names[2]!).tensors.size, 3);
  unlinkSync(names[1]!);
  for (const entry of [names[0]!, names[2]!, splitDir]) expectError(() => readGguf(entry), MissingSplitError, names[1]!, /split 2 of 3/);

  const renamed = put(gguf({ kvs: splitKvs(0) }), 'renamed.gguf');
  expectError(() => readGguf(renamed), MissingSplitError, renamed, /split.count is 3/);
  const wrongNo = join(splitDir, 'w-00001-of-00002.gguf');
  writeFileSync(wrongNo, gguf({ kvs: [kv('split.no', 2, Buffer.from([1, 0])), kv('split.count', 2, Buffer.from([2, 0]))] }));
  writeFileSync(join(splitDir, 'w-00002-of-00002.gguf'), gguf({}));
  expectError(() => readGguf(wrongNo), GgufFormatError, wrongNo, /split.no is 1, expected 0/);

  const empty = join(dir, 'empty-dir');
  mkdirSync(empty);
  expectError(() => readGguf(empty), ModelDirectoryError, empty, /no .gguf file/);
  const missing = join(dir, 'nope.gguf');
  expectError(() => readGguf(missing), ModelFileError, missing, /ENOENT/);
});

test('GGUF: random byte corruption never escapes as anything but a ModelFileError', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const base = gguf(validParts);
  const headerEnd = base.length - 64;
  let failures = 0;
  for (let i = 0; i < 3000; i++) {
    const bytes = Buffer.from(base);
    for (let k = 1 + rand(3); k > 0; k--) bytes[rand(headerEnd)] = rand(256);
    const f = put(bytes, 'fuzz.gguf');
    try {
      readGguf(f);
    } catch (e) {
      assert.ok(e instanceof ModelFileError && e.message.includes(f), `mutation ${i}: ${(e as Error).stack}`);
      failures++;
    }
  }
  assert.ok(failures > 1000, `most mutations are caught (${failures})`);
});

// ---- safetensors: u64 LE header length, JSON header, data ----

function st(header: unknown, data: Buffer, lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  return Buffer.concat([u64(lengthOverride ?? BigInt(json.length)), json, data]);
}
const entry = (dtype: string, shape: number[], begin: number, end: number): unknown => ({ dtype, shape, data_offsets: [begin, end] });

test('safetensors: bad header length, bad JSON, bad entries, overlapping and out-of-range offsets', () => {
  const data = Buffer.alloc(16);
  let f = put(Buffer.alloc(5), 'short.safetensors');
  expectError(() => readSafetensors(f), TruncatedFileError, f);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['length 2^60', st({}, data, 2n ** 60n), /header length 1152921504606846976 is impossible/],
    ['length past end', st({}, data, 1000n), /header length 1000/],
    ['bad JSON', st('{"a": ', data), /not valid JSON/],
    ['JSON array', st('[]', data), /not a JSON object/],
    ['unknown dtype', st({ a: entry('F12', [4], 0, 16) }, data), /unsupported dtype "F12"/],
    ['bad shape', st({ a: entry('F32', [-4], 0, 16) }, data), /invalid shape/],
    ['size mismatch', st({ a: entry('F32', [3], 0, 16) }, data), /needs 12 bytes/],
    ['reversed offsets', st({ a: entry('F32', [0], 8, 4) }, data), /end before they begin/],
    ['negative offset', st({ a: entry('F32', [1], -4, 0) }, data), /invalid data_offsets/],
    ['overlap', st({ a: entry('F32', [3], 0, 12), b: entry('F32', [2], 8, 16) }, data), /"a" and "b" overlap/],
    ['metadata not strings', st({ __metadata__: { n: 1 } }, data), /__metadata__.n/],
  ];
  for (const [what, bytes, pattern] of cases) {
    f = put(bytes, `${what.replace(/\W+/g, '_')}.safetensors`);
    expectError(() => readSafetensors(f), InvalidSafetensorsHeaderError, f, pattern);
  }
  f = put(st({ a: entry('F32', [8], 0, 32) }, data), 'past-eof.safetensors');
  expectError(() => readSafetensors(f), TruncatedFileError, f, /run past the end/);
});

test('safetensors: missing shard, shard lacking a tensor, bad index, ambiguous directory', () => {
  const shardDir = join(dir, 'shards');
  mkdirSync(shardDir);
  const shard1 = join(shardDir, 'model-00001-of-00002.safetensors');
  const shard2 = join(shardDir, 'model-00002-of-00002.safetensors');
  writeFileSync(shard1, st({ a: entry('F32', [1], 0, 4) }, Buffer.alloc(4)));
  const index = join(shardDir, 'model.safetensors.index.json');
  writeFileSync(index, JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
  expectError(() => readSafetensors(shardDir), MissingShardError, shard2, /missing/);
  writeFileSync(shard2, st({ c: entry('F32', [1], 0, 4) }, Buffer.alloc(4)));
  expectError(() => readSafetensors(shardDir), MissingShardError, shard2, /lacks tensor "b"/);
  writeFileSync(index, JSON.stringify({ metadata: {} }));
  expectError(() => readSafetensors(shardDir), InvalidSafetensorsHeaderError, index, /weight_map/);
  writeFileSync(index, '{ "weight_map": ');
  expectError(() => readSafetensors(shardDir), ConfigFileError, index, /not valid JSON/);
  unlinkSync(index);
  expectError(() => readSafetensors(shardDir), ModelDirectoryError, shardDir, /2 .safetensors files/);
});

test('JSON config files: missing, invalid, not an object; optional ones may be absent', () => {
  const missing = join(dir, 'config.json');
  expectError(() => readJsonFile(missing, 'model config'), ConfigFileError, missing, /model config not found/);
  assert.equal(readOptionalJsonFile(missing, 'generation config'), undefined);
  const bad = put('{\n  "a": 1\n  "b": 2\n}', 'bad.json');
  expectError(() => readJsonFile(bad, 'model config'), ConfigFileError, bad, /model config is not valid JSON.*line 3/);
  expectError(() => readOptionalJsonFile(bad, 'generation config'), ConfigFileError, bad, /generation config is not valid JSON/);
  const arr = put('[1, 2]', 'arr.json');
  expectError(() => readJsonFile(arr, 'tokenizer config'), ConfigFileError, arr, /must be a JSON object, found an array/);
  expectError(() => readJsonFile(dir, 'model config'), ConfigFileError, dir, /is a directory/);
  const bom = put('\ufeff{"x": 2}', 'bom.json');
  assert.deepEqual(readJsonFile(bom, 'model config'), { x: 2 });
});
