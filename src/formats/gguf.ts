// GGUF reader (ggml docs/gguf.md, versions 2 and 3, little-endian): parses metadata and tensor infos with
// positional reads and reports where each tensor's bytes lie; weights are never read (the native side mmaps them).
import { readdirSync, statSync, existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  GgufFormatError, GgufMetadataTypeError, InvalidGgufMagicError, MissingSplitError, ModelDirectoryError,
  TruncatedFileError, UnknownGgmlTypeError, UnsupportedGgufVersionError,
} from './errors.js';
import { FileReader } from './file-reader.js';
import {
  type GgufScalarTypeName, type GgufType, ggmlTypeInfo, ggufMinValueBytes, ggufValueTypeName, tensorByteLength,
} from './gguf-types.js';

export type GgufScalar = number | bigint | boolean | string;
/** 64-bit integers are numbers when Number.isSafeInteger, else bigints. */
export type GgufValue = GgufScalar | GgufValue[];

export interface GgufTensorInfo {
  name: string;
  /** GGML type id (see GGML_TYPES). */
  type: number;
  /** ggml order: shape[0] is the row length (innermost). */
  shape: number[];
  /** The file holding this tensor's bytes (split models: its own split). */
  file: string;
  /** Absolute byte offset in `file`. */
  offset: number;
  byteLength: number;
}

export interface GgufModelFile {
  /** Every file of the model, first split first. */
  paths: string[];
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensorInfo>;
}

/** One GGUF file as stored, with the value types of its metadata (which readGguf drops). */
export interface GgufFileHeader {
  path: string;
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  metadataTypes: Map<string, GgufType>;
  /** Tensors in file order. */
  tensors: GgufTensorInfo[];
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
  fileSize: number;
}

export const GGUF_MAGIC = 'GGUF';
export const GGUF_DEFAULT_ALIGNMENT = 32;
const GGML_MAX_DIMS = 4;
const MAX_ARRAY_NESTING = 16;
/** Bytes a tensor info takes at least: name length, n_dims, one dim, type, offset. */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8;
/** Bytes a key/value pair takes at least: key length, value type, a one-byte value. */
const MIN_KV_BYTES = 8 + 4 + 1;
const ABSURD_HEADER_BYTES = 2 ** 31;
const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/** Which file each metadata map came from, so the typed getters can name it in their errors. */
const metadataFiles = new WeakMap<Map<string, GgufValue>, string>();

/**
 * Reads a GGUF model: a file, any split of a split model (all splits are read and merged),
 * or a directory holding exactly one model (one file or one split set).
 */
export function readGguf(path: string): GgufModelFile {
  const file = statSync(path, { throwIfNoEntry: false })?.isDirectory() ? pickModelInDirectory(path) : path;
  const head = readGgufFile(file);
  const splitPaths = findSplits(head);
  if (splitPaths.length === 1) return toModel([head]);
  const heads = splitPaths.map((p) => (p === file ? head : readGgufFile(p)));
  checkSplits(heads);
  return toModel(heads);
}

/** Parses one GGUF file's header (no split handling). */
export function readGgufFile(path: string): GgufFileHeader {
  const r = FileReader.open(path);
  try {
    return parseHeader(r);
  } finally {
    r.close();
  }
}

function parseHeader(r: FileReader): GgufFileHeader {
  if (r.size < 4) throw new TruncatedFileError(r.path, `file is only ${r.size} bytes, too short for a GGUF header`);
  const magic = r.bytes(4, 'magic');
  if (String.fromCharCode(...magic) !== GGUF_MAGIC) throw new InvalidGgufMagicError(r.path, magic);
  const version = r.u32('version');
  if (version !== 2 && version !== 3) throw new UnsupportedGgufVersionError(r.path, version);
  const tensorCount = r.u64('tensor count');
  const kvCount = r.u64('metadata key/value count');
  checkCount(r, kvCount, MIN_KV_BYTES, 'metadata key/value count');
  checkCount(r, tensorCount, MIN_TENSOR_INFO_BYTES, 'tensor count', 8);

  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufType>();
  for (let i = 0; i < kvCount; i++) {
    const key = readString(r, `key of metadata entry ${i}`);
    if (metadata.has(key)) throw new GgufFormatError(r.path, `duplicate metadata key "${key}"`);
    const typeId = r.u32(`value type of "${key}"`);
    const { value, type } = readValue(r, typeId, key, 0);
    metadata.set(key, value);
    metadataTypes.set(key, type);
  }
  metadataFiles.set(metadata, r.path);
  const alignment = readAlignment(r.path, metadata);

  const infos: Array<{ name: string; shape: number[]; type: number; relOffset: number }> = [];
  for (let i = 0; i < tensorCount; i++) infos.push(readTensorInfo(r, i));
  const dataOffset = alignUp(r.pos, alignment);
  const tensors = infos.map((t) => placeTensor(r, t, dataOffset, alignment));
  checkNoOverlap(r.path, tensors);
  return { path: r.path, version, alignment, metadata, metadataTypes, tensors, dataOffset, fileSize: r.size };
}

/**
 * Rejects counts the rest of the file cannot hold before anything is allocated for them. A claim beyond both
 * the whole file and 2 GiB (no real header comes near) is corruption; a smaller one is taken as truncation.
 */
function checkCount(r: FileReader, count: number | bigint, minBytes: number, what: string, at = r.pos - 8): asserts count is number {
  if (typeof count === 'bigint' || count * minBytes > Math.max(r.size, ABSURD_HEADER_BYTES)) {
    throw new GgufFormatError(r.path,
      `${what} is ${count} at offset ${at}, impossible in a file of ${r.size} bytes (corrupt header)`);
  }
  if (count * minBytes > r.remaining) {
    throw new TruncatedFileError(r.path,
      `${what} is ${count} but only ${r.remaining} bytes follow offset ${r.pos}`);
  }
}

function readString(r: FileReader, what: string): string {
  const len = r.u64(`length of ${what}`);
  checkCount(r, len, 1, `length of ${what}`);
  return r.utf8(len, what);
}

function readValue(r: FileReader, typeId: number, key: string, depth: number): { value: GgufValue; type: GgufType } {
  const name = ggufValueTypeName(typeId);
  if (name === undefined) {
    throw new GgufFormatError(r.path, `metadata "${key}" has unknown value type id ${typeId} at offset ${r.pos - 4}`);
  }
  if (name !== 'array') return { value: readScalar(r, name, key), type: name };
  if (depth >= MAX_ARRAY_NESTING) throw new GgufFormatError(r.path, `metadata "${key}" nests arrays too deeply`);
  const elemId = r.u32(`element type of "${key}"`);
  const elemName = ggufValueTypeName(elemId);
  if (elemName === undefined) {
    throw new GgufFormatError(r.path, `metadata "${key}" is an array of unknown value type id ${elemId}`);
  }
  const count = r.u64(`element count of "${key}"`);
  checkCount(r, count, ggufMinValueBytes(elemName), `element count of metadata "${key}"`);
  const values: GgufValue[] = new Array<GgufValue>(count);
  if (elemName !== 'array') {
    const what = `an element of metadata "${key}"`;
    for (let i = 0; i < count; i++) values[i] = readScalar(r, elemName, what);
    return { value: values, type: { array: elemName } };
  }
  let inner: GgufType = { array: 'u8' }; // stands for an empty array of arrays, whose inner type is never stored
  for (let i = 0; i < count; i++) {
    const v = readValue(r, elemId, key, depth + 1);
    values[i] = v.value;
    if (i === 0) inner = v.type;
  }
  return { value: values, type: { array: inner } };
}

function readScalar(r: FileReader, type: GgufScalarTypeName, what: string): GgufScalar {
  switch (type) {
    case 'u8': return r.u8(what);
    case 'i8': return r.i8(what);
    case 'u16': return r.u16(what);
    case 'i16': return r.i16(what);
    case 'u32': return r.u32(what);
    case 'i32': return r.i32(what);
    case 'f32': return r.f32(what);
    case 'u64': return r.u64(what);
    case 'i64': return r.i64(what);
    case 'f64': return r.f64(what);
    case 'string': return readString(r, what);
    case 'bool': {
      const b = r.u8(what);
      if (b > 1) throw new GgufFormatError(r.path, `${what}: bool byte ${b} at offset ${r.pos - 1} is neither 0 nor 1`);
      return b === 1;
    }
  }
}

function readAlignment(path: string, metadata: Map<string, GgufValue>): number {
  const value = metadata.get('general.alignment');
  if (value === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || (value & (value - 1)) !== 0 || value > 2 ** 30) {
    throw new GgufFormatError(path, `general.alignment is ${String(value)}, expected a power of two`);
  }
  return value;
}

function readTensorInfo(r: FileReader, i: number): { name: string; shape: number[]; type: number; relOffset: number } {
  const name = readString(r, `name of tensor ${i}`);
  const nDims = r.u32(`dimension count of tensor "${name}"`);
  if (nDims > GGML_MAX_DIMS) throw new GgufFormatError(r.path, `tensor "${name}" has ${nDims} dimensions, at most ${GGML_MAX_DIMS} allowed`);
  const shape: number[] = [];
  for (let d = 0; d < nDims; d++) {
    const n = r.u64(`dimension ${d} of tensor "${name}"`);
    if (typeof n === 'bigint') throw new GgufFormatError(r.path, `tensor "${name}" dimension ${d} is ${n}, absurdly large`);
    shape.push(n);
  }
  const type = r.u32(`type of tensor "${name}"`);
  if (!ggmlTypeInfo(type)) throw new UnknownGgmlTypeError(r.path, type, `tensor "${name}"`);
  const relOffset = r.u64(`data offset of tensor "${name}"`);
  // An offset past the end of a (possibly truncated) file is reported once the data's extent is known.
  if (typeof relOffset === 'bigint') throw new GgufFormatError(r.path, `tensor "${name}" data offset ${relOffset} is absurdly large`);
  return { name, shape, type, relOffset };
}

function placeTensor(r: FileReader, t: { name: string; shape: number[]; type: number; relOffset: number },
  dataOffset: number, alignment: number): GgufTensorInfo {
  const info = ggmlTypeInfo(t.type)!;
  const row = t.shape[0] ?? 1;
  if (row % info.blockElems !== 0) {
    throw new GgufFormatError(r.path,
      `tensor "${t.name}" of type ${info.name} has rows of ${row} elements, not a multiple of its block (${info.blockElems})`);
  }
  let byteLength: number;
  try {
    byteLength = tensorByteLength(t.type, t.shape);
  } catch (err) {
    throw new GgufFormatError(r.path, `tensor "${t.name}" of shape [${t.shape.join(', ')}] is impossibly large`, { cause: err });
  }
  if (t.relOffset % alignment !== 0) {
    throw new GgufFormatError(r.path, `tensor "${t.name}" data offset ${t.relOffset} is not a multiple of the alignment ${alignment}`);
  }
  const offset = dataOffset + t.relOffset;
  if (offset + byteLength > r.size) {
    throw new TruncatedFileError(r.path,
      `tensor "${t.name}" data [${offset}, ${offset + byteLength}) lies past the end of the file (${r.size} bytes)`);
  }
  return { name: t.name, type: t.type, shape: t.shape, file: r.path, offset, byteLength };
}

function checkNoOverlap(path: string, tensors: GgufTensorInfo[]): void {
  const sorted = tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.byteLength) {
      throw new GgufFormatError(path, `tensors "${prev.name}" and "${cur.name}" overlap in the data section`);
    }
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** The split files of the model `head` belongs to, first split first (just head's own path if unsplit). */
function findSplits(head: GgufFileHeader): string[] {
  const declared = head.metadata.get('split.count');
  const count = declared === undefined ? undefined : getNumber(head.metadata, 'split.count');
  const m = SPLIT_NAME.exec(basename(head.path));
  const nameCount = m ? Number(m[3]) : undefined;
  if (count !== undefined && nameCount !== undefined && count !== nameCount) {
    throw new GgufFormatError(head.path, `split.count is ${count} but the file name says ${nameCount} splits`);
  }
  const total = count ?? nameCount ?? 1;
  if (total <= 1) return [head.path];
  if (!m) {
    throw new MissingSplitError(head.path,
      `split.count is ${total} but the name does not follow <name>-00001-of-${String(total).padStart(5, '0')}.gguf, so the other splits cannot be found`);
  }
  const dir = dirname(head.path);
  const paths: string[] = [];
  for (let i = 1; i <= total; i++) {
    const p = join(dir, `${m[1]}-${String(i).padStart(5, '0')}-of-${m[3]}.gguf`);
    if (!existsSync(p)) throw new MissingSplitError(p, `split ${i} of ${total} of ${head.path} is missing`);
    paths.push(p);
  }
  return paths;
}

function checkSplits(heads: GgufFileHeader[]): void {
  heads.forEach((h, i) => {
    const no = h.metadata.has('split.no') ? getNumber(h.metadata, 'split.no') : undefined;
    if (no !== undefined && no !== i) throw new GgufFormatError(h.path, `split.no is ${no}, expected ${i} from its name`);
  });
  const first = heads[0]!;
  if (first.metadata.has('split.tensors.count')) {
    const want = getNumber(first.metadata, 'split.tensors.count');
    const got = heads.reduce((n, h) => n + h.tensors.length, 0);
    if (want !== got) throw new GgufFormatError(first.path, `split.tensors.count is ${want} but the ${heads.length} splits hold ${got} tensors`);
  }
}

function toModel(heads: GgufFileHeader[]): GgufModelFile {
  const first = heads[0]!;
  // The first split carries the model's metadata; later ones usually only their split.* keys.
  const metadata = new Map(first.metadata);
  for (const h of heads.slice(1)) for (const [k, v] of h.metadata) if (!metadata.has(k)) metadata.set(k, v);
  metadataFiles.set(metadata, first.path);
  const tensors = new Map<string, GgufTensorInfo>();
  for (const h of heads) {
    for (const t of h.tensors) {
      const dup = tensors.get(t.name);
      if (dup) throw new GgufFormatError(t.file, `tensor "${t.name}" also appears in ${dup.file}`);
      tensors.set(t.name, t);
    }
  }
  return { paths: heads.map((h) => h.path), version: first.version, alignment: first.alignment, metadata, tensors };
}

/** The one model file in a directory: a lone .gguf, or the first of the lone split set. */
function pickModelInDirectory(dir: string): string {
  const names = readdirSync(dir).filter((n) => n.toLowerCase().endsWith('.gguf') && statSync(join(dir, n)).isFile()).sort();
  const models = new Map<string, string[]>();
  for (const n of names) {
    const m = SPLIT_NAME.exec(n);
    const key = m ? `${m[1]}-of-${m[3]}` : n;
    models.set(key, [...(models.get(key) ?? []), n]);
  }
  if (models.size === 1) return join(dir, [...models.values()][0]![0]!);
  if (models.size === 0) throw new ModelDirectoryError(dir, 'holds no .gguf file');
  throw new ModelDirectoryError(dir,
    `holds ${models.size} GGUF models (${[...models.values()].map((v) => v[0]).join(', ')}); name the file to load`);
}

// ---- typed metadata getters: undefined when the key is absent, a named error when its type is wrong ----

function typeError(m: Map<string, GgufValue>, key: string, expected: string, value: GgufValue): GgufMetadataTypeError {
  return new GgufMetadataTypeError(metadataFiles.get(m) ?? '(GGUF metadata)', key, expected, describeValue(value));
}

function describeValue(v: GgufValue): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'bigint') return `the 64-bit integer ${v} (beyond 2^53)`;
  return `a ${typeof v} (${JSON.stringify(typeof v === 'string' && v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
}

export function getString(m: Map<string, GgufValue>, key: string): string | undefined {
  const v = m.get(key);
  if (v === undefined || typeof v === 'string') return v;
  throw typeError(m, key, 'a string', v);
}

/** A numeric value (any integer or float type); 64-bit integers beyond 2^53 are an error here. */
export function getNumber(m: Map<string, GgufValue>, key: string): number | undefined {
  const v = m.get(key);
  if (v === undefined || typeof v === 'number') return v;
  throw typeError(m, key, 'a number', v);
}

/** An integer value as a number or, for 64-bit values beyond 2^53, a bigint. */
export function getInteger(m: Map<string, GgufValue>, key: string): number | bigint | undefined {
  const v = m.get(key);
  if (v === undefined || typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return v;
  throw typeError(m, key, 'an integer', v);
}

export function getBool(m: Map<string, GgufValue>, key: string): boolean | undefined {
  const v = m.get(key);
  if (v === undefined || typeof v === 'boolean') return v;
  throw typeError(m, key, 'a bool', v);
}

export function getArray(m: Map<string, GgufValue>, key: string): GgufValue[] | undefined {
  const v = m.get(key);
  if (v === undefined || Array.isArray(v)) return v;
  throw typeError(m, key, 'an array', v);
}

export function getStringArray(m: Map<string, GgufValue>, key: string): string[] | undefined {
  const v = getArray(m, key);
  if (v === undefined || v.every((x) => typeof x === 'string')) return v as string[] | undefined;
  throw typeError(m, key, 'an array of strings', v);
}

export function getNumberArray(m: Map<string, GgufValue>, key: string): number[] | undefined {
  const v = getArray(m, key);
  if (v === undefined || v.every((x) => typeof x === 'number')) return v as number[] | undefined;
  throw typeError(m, key, 'an array of numbers', v);
}
