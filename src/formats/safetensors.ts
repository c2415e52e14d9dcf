// Safetensors reader: parses the JSON header of one file or of every shard named by model.safetensors.index.json,
// and reports where each tensor's bytes lie. Tensor data is never read here (the native side mmaps it).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InvalidSafetensorsHeaderError, MissingShardError, ModelDirectoryError, TruncatedFileError } from './errors.js';
import { FileReader } from './file-reader.js';
import { readJsonFile } from './json-file.js';

/** Bytes per element of every whole-byte safetensors dtype. */
export const SAFETENSORS_DTYPE_BYTES = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, F8_E8M0: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8, C64: 8,
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  /** Row-major as stored, outermost first. */
  shape: number[];
  file: string;
  /** Absolute byte offset in `file`. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsModel {
  files: string[];
  tensors: Map<string, SafetensorsTensorInfo>;
  /** `__metadata__` of every file merged, plus the index's `metadata` (stringified). */
  metadata: Record<string, string>;
}

export const SAFETENSORS_INDEX_NAME = 'model.safetensors.index.json';
export const SAFETENSORS_SINGLE_NAME = 'model.safetensors';
/** The reference implementation refuses headers above 100 MB; so do we, before allocating. */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * Reads a safetensors model: a `.safetensors` file, a `*.safetensors.index.json`, or a directory holding
 * `model.safetensors.index.json`, `model.safetensors`, or exactly one `.safetensors` file.
 */
export function readSafetensors(pathOrDir: string): SafetensorsModel {
  const stat = statSync(pathOrDir, { throwIfNoEntry: false });
  if (stat?.isDirectory()) return readDirectory(pathOrDir);
  if (pathOrDir.endsWith('.index.json')) return readSharded(pathOrDir);
  const file = readSafetensorsFile(pathOrDir);
  return { files: [pathOrDir], tensors: new Map(file.tensors.map((t) => [t.name, t])), metadata: file.metadata };
}

function readDirectory(dir: string): SafetensorsModel {
  const index = join(dir, SAFETENSORS_INDEX_NAME);
  if (existsSync(index)) return readSafetensors(index);
  const single = join(dir, SAFETENSORS_SINGLE_NAME);
  if (existsSync(single)) return readSafetensors(single);
  const found = readdirSync(dir).filter((n) => n.endsWith('.safetensors')).sort();
  if (found.length === 1) return readSafetensors(join(dir, found[0]!));
  if (found.length === 0) throw new ModelDirectoryError(dir, `holds no ${SAFETENSORS_SINGLE_NAME}, ${SAFETENSORS_INDEX_NAME} or other .safetensors file`);
  throw new ModelDirectoryError(dir, `holds ${found.length} .safetensors files (${found.join(', ')}) but no ${SAFETENSORS_INDEX_NAME} saying how they fit together`);
}

interface SafetensorsIndex {
  metadata?: Record<string, unknown>;
  weight_map: Record<string, string>;
}

function readSharded(indexPath: string): SafetensorsModel {
  const index = readJsonFile<SafetensorsIndex>(indexPath, 'safetensors index');
  const weightMap = index?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new InvalidSafetensorsHeaderError(indexPath, 'has no "weight_map" object');
  }
  const dir = dirname(indexPath);
  const shards = [...new Set(Object.values(weightMap))];
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensorInfo>();
  const files: string[] = [];
  for (const shard of shards) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard === '..') {
      throw new InvalidSafetensorsHeaderError(indexPath, `weight_map names the shard ${JSON.stringify(shard)}, which is not a plain file name`);
    }
    const path = join(dir, shard);
    if (!existsSync(path)) throw new MissingShardError(path, `shard named by ${basename(indexPath)} is missing`);
    const file = readSafetensorsFile(path);
    files.push(path);
    Object.assign(metadata, file.metadata);
    for (const t of file.tensors) {
      const dup = tensors.get(t.name);
      if (dup) throw new InvalidSafetensorsHeaderError(path, `tensor "${t.name}" also appears in ${dup.file}`);
      tensors.set(t.name, t);
    }
  }
  for (const [name, shard] of Object.entries(weightMap)) {
    const t = tensors.get(name);
    if (!t || basename(t.file) !== shard) {
      throw new MissingShardError(join(dir, shard), `lacks tensor "${name}", which ${basename(indexPath)} puts there`);
    }
  }
  for (const [k, v] of Object.entries(index.metadata ?? {})) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return { files, tensors, metadata };
}

/** One safetensors file's tensors (in data order) and `__metadata__`. */
export function readSafetensorsFile(path: string): { tensors: SafetensorsTensorInfo[]; metadata: Record<string, string> } {
  const r = FileReader.open(path);
  let headerText: string;
  let headerBytes: number;
  try {
    if (r.size < 8) throw new TruncatedFileError(path, `file is only ${r.size} bytes, too short for a safetensors header`);
    const n = r.u64('header length');
    if (typeof n === 'bigint' || n > MAX_HEADER_BYTES || n > r.size - 8) {
      throw new InvalidSafetensorsHeaderError(path, `header length ${n} is impossible for a file of ${r.size} bytes`);
    }
    headerText = r.utf8(n, 'JSON header');
    headerBytes = n;
  } finally {
    r.close();
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    throw new InvalidSafetensorsHeaderError(path, `header is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new InvalidSafetensorsHeaderError(path, 'header is not a JSON object');
  }
  return parseHeader(path, header as Record<string, unknown>, 8 + headerBytes, r.size);
}

function parseHeader(path: string, header: Record<string, unknown>, dataStart: number, fileSize: number):
  { tensors: SafetensorsTensorInfo[]; metadata: Record<string, string> } {
  const bad = (detail: string): InvalidSafetensorsHeaderError => new InvalidSafetensorsHeaderError(path, detail);
  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  const dataSize = fileSize - dataStart;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad('"__metadata__" is not an object');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw bad(`"__metadata__.${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof entry !== 'object' || entry === null) throw bad(`entry "${name}" is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) {
      throw bad(`tensor "${name}" has unsupported dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw bad(`tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw bad(`tensor "${name}" has data_offsets [${begin}, ${end}] that end before they begin`);
    if (end > dataSize) {
      throw new TruncatedFileError(path,
        `tensor "${name}" data_offsets [${begin}, ${end}] run past the end of the data section (${dataSize} bytes)`);
    }
    const elems = (shape as number[]).reduce((a, b) => a * b, 1);
    const want = elems * SAFETENSORS_DTYPE_BYTES[dtype as SafetensorsDtype];
    if (want !== end - begin) {
      throw bad(`tensor "${name}" (${dtype} [${shape.join(', ')}]) needs ${want} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    tensors.push({ name, dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], file: path, offset: dataStart + begin, byteLength: end - begin });
  }
  tensors.sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < tensors.length; i++) {
    const prev = tensors[i - 1]!;
    const cur = tensors[i]!;
    if (cur.byteLength > 0 && prev.byteLength > 0 && cur.offset < prev.offset + prev.byteLength) {
      throw bad(`tensors "${prev.name}" and "${cur.name}" overlap`);
    }
  }
  return { tensors, metadata };
}
