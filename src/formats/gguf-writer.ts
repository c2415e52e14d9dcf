// Streaming GGUF v3 writer: metadata and tensor infos are declared first, the header is written, then each
// tensor's bytes are streamed in declaration order (in any number of chunks), so memory stays bounded.
import { open, type FileHandle } from 'node:fs/promises';
import { GgufWriteError } from './errors.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, type GgufValue } from './gguf.js';
import {
  GGUF_VALUE_TYPE, type GgufScalarTypeName, type GgufType, formatGgufType, ggmlTypeByName, ggmlTypeInfo, tensorByteLength,
} from './gguf-types.js';

export interface GgufWriterOptions {
  /** Tensor data alignment (a power of two); written as general.alignment when not 32. */
  alignment?: number;
}

type TypedArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | Float32Array | Float64Array | BigInt64Array | BigUint64Array;
/** What addMetadata accepts: a GGUF value, or a typed array (whose element type is used unless one is given). */
export type GgufWritableValue = GgufValue | TypedArray | GgufWritableValue[];

interface PendingTensor {
  name: string;
  type: number;
  shape: number[];
  byteLength: number;
  relOffset: number;
  written: number;
}

const TYPED_ARRAY_TYPES: Array<[new (...args: never[]) => TypedArray, GgufScalarTypeName]> = [
  [Int8Array, 'i8'], [Uint8Array, 'u8'], [Int16Array, 'i16'], [Uint16Array, 'u16'], [Int32Array, 'i32'],
  [Uint32Array, 'u32'], [Float32Array, 'f32'], [Float64Array, 'f64'], [BigInt64Array, 'i64'], [BigUint64Array, 'u64'],
];

const INT_RANGES: Partial<Record<GgufScalarTypeName, [bigint, bigint]>> = {
  u8: [0n, 0xffn], i8: [-0x80n, 0x7fn], u16: [0n, 0xffffn], i16: [-0x8000n, 0x7fffn],
  u32: [0n, 0xffffffffn], i32: [-0x80000000n, 0x7fffffffn],
  u64: [0n, 0xffffffffffffffffn], i64: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

export class GgufWriter {
  readonly path: string;
  readonly alignment: number;
  private readonly kvs: Array<{ key: string; value: GgufWritableValue; type: GgufType }> = [];
  private readonly tensors: PendingTensor[] = [];
  private readonly tensorNames = new Set<string>();
  private file: FileHandle | undefined;
  private state: 'declaring' | 'data' | 'closed' = 'declaring';
  private busy = false;
  private next = 0;

  constructor(path: string, options: GgufWriterOptions = {}) {
    this.path = path;
    const a = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    if (!Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0) this.fail(`alignment ${a} is not a power of two`);
    this.alignment = a;
  }

  /**
   * Declares a metadata key. `type` fixes the stored type: a scalar type ('u32', 'f32', 'u64'...), or for
   * an array its element type ('string', 'f32') or full type ({ array: 'i32' }). Without it the type is
   * inferred: string, bool, integers as i32 (i64 beyond), other numbers as f32, bigints as i64 (u64 beyond).
   */
  addMetadata(key: string, value: GgufWritableValue, type?: GgufType): void {
    this.expectState('declaring', 'addMetadata');
    if (this.kvs.some((kv) => kv.key === key)) this.fail(`metadata key "${key}" added twice`);
    const full = resolveType(value, type, (d) => this.fail(`metadata "${key}": ${d}`));
    checkValue(value, full, (d) => this.fail(`metadata "${key}": ${d}`));
    if (key === 'general.alignment' && value !== this.alignment) {
      this.fail(`general.alignment ${String(value)} disagrees with the writer's alignment ${this.alignment}; pass it as an option`);
    }
    this.kvs.push({ key, value, type: full });
  }

  /** Declares a tensor; `shape` in ggml order (shape[0] = row length). Data must later come in this order. */
  addTensorInfo(name: string, type: number | string, shape: readonly number[]): void {
    this.expectState('declaring', 'addTensorInfo');
    if (this.tensorNames.has(name)) this.fail(`tensor "${name}" added twice`);
    const id = typeof type === 'number' ? type : ggmlTypeByName(type);
    if (id === undefined || !ggmlTypeInfo(id)) this.fail(`tensor "${name}" has unknown GGML type ${String(type)}`);
    if (shape.length > 4 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      this.fail(`tensor "${name}" has invalid shape [${shape.join(', ')}] (at most 4 non-negative dimensions)`);
    }
    let byteLength = 0;
    try {
      byteLength = tensorByteLength(id!, shape);
    } catch (err) {
      this.fail(`tensor "${name}": ${(err as Error).message}`);
    }
    this.tensorNames.add(name);
    this.tensors.push({ name, type: id!, shape: [...shape], byteLength, relOffset: 0, written: 0 });
  }

  /** Writes magic, version, metadata and tensor infos, padded to the alignment; after this only data follows. */
  async writeHeader(): Promise<void> {
    this.expectState('declaring', 'writeHeader');
    const { header } = this.encodeHeader();
    await this.io(async () => {
      this.file = await open(this.path, 'w');
      await this.writeAll(header);
      this.state = 'data';
      this.skipEmptyTensors();
    });
  }

  /**
   * The header as writeHeader() writes it, and the bytes of the data section that would follow (each tensor
   * padded to the alignment): together the file's size. Writes nothing.
   */
  encodeHeader(): { header: Uint8Array; dataBytes: number } {
    const kvs = [...this.kvs];
    if (this.alignment !== GGUF_DEFAULT_ALIGNMENT && !kvs.some((kv) => kv.key === 'general.alignment')) {
      kvs.push({ key: 'general.alignment', value: this.alignment, type: 'u32' });
    }
    const out = new ByteBuilder();
    out.raw(Buffer.from(GGUF_MAGIC, 'latin1'));
    out.u32(3);
    out.u64(BigInt(this.tensors.length));
    out.u64(BigInt(kvs.length));
    for (const kv of kvs) {
      out.string(kv.key);
      out.u32(typeId(kv.type));
      writeTyped(out, kv.value, kv.type);
    }
    let rel = 0;
    for (const t of this.tensors) {
      t.relOffset = rel;
      rel = alignUp(rel + t.byteLength, this.alignment);
      out.string(t.name);
      out.u32(t.shape.length);
      for (const d of t.shape) out.u64(BigInt(d));
      out.u32(t.type);
      out.u64(BigInt(t.relOffset));
    }
    out.raw(Buffer.alloc(alignUp(out.length, this.alignment) - out.length));
    return { header: out.bytes(), dataBytes: rel };
  }

  /** Appends bytes of tensor `name`; call once with all its bytes or several times with consecutive chunks. */
  async writeTensorData(name: string, bytes: Uint8Array): Promise<void> {
    this.expectState('data', 'writeTensorData');
    const t = this.tensors[this.next];
    if (!t || t.name !== name) {
      const known = this.tensorNames.has(name);
      this.fail(`got data for ${known ? '' : 'undeclared '}tensor "${name}" but expected ${t ? `"${t.name}"` : 'no more tensors'} (data must follow declaration order)`);
    }
    if (t!.written + bytes.byteLength > t!.byteLength) {
      this.fail(`tensor "${name}" takes ${t!.byteLength} bytes; got ${t!.written + bytes.byteLength}`);
    }
    await this.io(async () => {
      await this.writeAll(bytes);
      t!.written += bytes.byteLength;
      if (t!.written === t!.byteLength) {
        const pad = alignUp(t!.byteLength, this.alignment) - t!.byteLength;
        if (pad > 0) await this.writeAll(new Uint8Array(pad));
        this.next++;
        this.skipEmptyTensors();
      }
    });
  }

  /** Finishes the file (writing the header if no tensor needed data); throws if some tensor's data is missing. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'declaring') await this.writeHeader();
    const missing = this.tensors.slice(this.next).filter((t) => t.written < t.byteLength);
    await this.io(async () => {
      await this.file?.close();
      this.file = undefined;
      this.state = 'closed';
    });
    if (missing.length > 0) {
      this.fail(`closed before all tensor data was written: ${missing.map((t) => `"${t.name}" (${t.written}/${t.byteLength} bytes)`).join(', ')}`);
    }
  }

  private skipEmptyTensors(): void {
    while (this.tensors[this.next]?.byteLength === 0) this.next++;
  }

  private async writeAll(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await this.file!.write(bytes, done, bytes.byteLength - done);
      done += bytesWritten;
    }
  }

  private async io(fn: () => Promise<void>): Promise<void> {
    if (this.busy) this.fail('a previous write is still in progress; await each call before the next');
    this.busy = true;
    try {
      await fn();
    } finally {
      this.busy = false;
    }
  }

  private expectState(state: 'declaring' | 'data', call: string): void {
    if (this.state === state) return;
    const why = this.state === 'closed' ? 'the writer is closed' : state === 'declaring' ? 'the header is already written' : 'writeHeader() has not been called';
    this.fail(`${call}() not allowed: ${why}`);
  }

  private fail(detail: string): never {
    throw new GgufWriteError(this.path, detail);
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** The full type of a value, from the caller's hint (an element type applies to the innermost elements) or inferred. */
function resolveType(value: GgufWritableValue, hint: GgufType | undefined, fail: (d: string) => never): GgufType {
  if (isTyped(value)) {
    const own = TYPED_ARRAY_TYPES.find(([ctor]) => value instanceof ctor)![1];
    if (hint === undefined) return { array: own };
    return typeof hint === 'string' ? { array: hint } : hint;
  }
  if (Array.isArray(value)) {
    if (hint !== undefined && typeof hint !== 'string') return hint;
    if (value.length === 0) {
      if (hint === undefined) fail('an empty array needs an explicit element type');
      return { array: hint! };
    }
    if (value.every((v) => Array.isArray(v) || isTyped(v))) {
      // GGUF lets each inner array have its own type; we write them all with the first one's.
      return { array: resolveType(value[0]!, hint, fail) };
    }
    return { array: hint ?? inferScalarType(value as GgufValue[], fail) };
  }
  if (hint !== undefined) {
    if (typeof hint !== 'string') fail(`a scalar cannot have type ${formatGgufType(hint)}`);
    return hint;
  }
  return inferScalarType([value], fail);
}

function inferScalarType(values: GgufValue[], fail: (d: string) => never): GgufScalarTypeName {
  if (values.every((v) => typeof v === 'string')) return 'string';
  if (values.every((v) => typeof v === 'boolean')) return 'bool';
  if (values.every((v) => typeof v === 'number' || typeof v === 'bigint')) {
    if (values.every((v) => typeof v === 'bigint' || Number.isInteger(v))) {
      const big = values.map((v) => BigInt(v as number | bigint));
      if (big.every((v) => v >= -0x80000000n && v <= 0x7fffffffn)) return 'i32';
      return big.every((v) => v <= 0x7fffffffffffffffn) ? 'i64' : 'u64';
    }
    return 'f32';
  }
  return fail('cannot infer one GGUF type for a mix of strings, booleans, numbers and arrays; pass a type');
}

function isTyped(v: unknown): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/** Checks that value fits type (ranges of integer types included) before anything is written. */
function checkValue(value: GgufWritableValue, type: GgufType, fail: (d: string) => never): void {
  if (typeof type !== 'string') {
    if (!Array.isArray(value) && !isTyped(value)) fail(`expected an array for type ${formatGgufType(type)}, got ${describe(value)}`);
    const elems = value as ArrayLike<GgufWritableValue>;
    for (let i = 0; i < elems.length; i++) checkValue(elems[i]!, type.array, fail);
    return;
  }
  const range = INT_RANGES[type];
  if (range) {
    if (typeof value !== 'number' && typeof value !== 'bigint') fail(`expected a number for type ${type}, got ${describe(value)}`);
    if (typeof value === 'number' && !Number.isInteger(value)) fail(`${value} is not an integer, as type ${type} needs`);
    const b = BigInt(value as number | bigint);
    if (b < range[0] || b > range[1]) fail(`${value} is out of range for type ${type}`);
    return;
  }
  const ok = type === 'string' ? typeof value === 'string'
    : type === 'bool' ? typeof value === 'boolean'
    : typeof value === 'number'; // f32, f64
  if (!ok) fail(`expected a value of type ${type}, got ${describe(value)}`);
}

function describe(v: unknown): string {
  if (Array.isArray(v) || isTyped(v)) return 'an array';
  return `${typeof v} ${typeof v === 'bigint' ? String(v) : JSON.stringify(v)}`;
}

function writeTyped(out: ByteBuilder, value: GgufWritableValue, type: GgufType): void {
  if (typeof type === 'string') {
    writeScalar(out, value as GgufValue, type);
    return;
  }
  const elems = value as ArrayLike<GgufWritableValue>;
  out.u32(typeId(type.array));
  out.u64(BigInt(elems.length));
  for (let i = 0; i < elems.length; i++) writeTyped(out, elems[i]!, type.array);
}

function typeId(type: GgufType): number {
  return typeof type === 'string' ? GGUF_VALUE_TYPE[type] : GGUF_VALUE_TYPE.array;
}

function writeScalar(out: ByteBuilder, v: GgufValue, type: GgufScalarTypeName): void {
  switch (type) {
    case 'u8': out.ensure(1); out.buf.writeUInt8(Number(v), out.length); out.length += 1; return;
    case 'i8': out.ensure(1); out.buf.writeInt8(Number(v), out.length); out.length += 1; return;
    case 'u16': out.ensure(2); out.buf.writeUInt16LE(Number(v), out.length); out.length += 2; return;
    case 'i16': out.ensure(2); out.buf.writeInt16LE(Number(v), out.length); out.length += 2; return;
    case 'u32': out.u32(Number(v)); return;
    case 'i32': out.ensure(4); out.buf.writeInt32LE(Number(v), out.length); out.length += 4; return;
    case 'f32': out.ensure(4); out.buf.writeFloatLE(v as number, out.length); out.length += 4; return;
    case 'f64': out.ensure(8); out.buf.writeDoubleLE(v as number, out.length); out.length += 8; return;
    case 'u64': out.u64(BigInt(v as number | bigint)); return;
    case 'i64': out.ensure(8); out.buf.writeBigInt64LE(BigInt(v as number | bigint), out.length); out.length += 8; return;
    case 'bool': out.ensure(1); out.buf[out.length++] = v ? 1 : 0; return;
    case 'string': out.string(v as string); return;
  }
}

/** A growable little-endian byte buffer for the header (metadata can be tens of MB: tokenizer arrays). */
class ByteBuilder {
  buf = Buffer.allocUnsafe(1 << 16);
  length = 0;

  ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  u64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(v, this.length);
    this.length += 8;
  }
  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(BigInt(n));
    this.ensure(n);
    this.buf.write(s, this.length, 'utf8');
    this.length += n;
  }
  raw(b: Uint8Array): void {
    this.ensure(b.byteLength);
    this.buf.set(b, this.length);
    this.length += b.byteLength;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}
