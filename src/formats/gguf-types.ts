// GGUF value types and the GGML tensor type table (ids, names, block geometry), per ggml's docs/gguf.md.
// Type ids are part of the file format: they never change, and retired ids (4, 5, 31-33, 36-38) stay unused.

/** Metadata value type ids as stored in a GGUF file. */
export const GGUF_VALUE_TYPE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

export type GgufScalarTypeName = Exclude<keyof typeof GGUF_VALUE_TYPE, 'array'>;
/** A metadata value's full type: a scalar, or an array of some type (arrays nest). */
export type GgufType = GgufScalarTypeName | { array: GgufType };

const VALUE_TYPE_NAMES = new Map<number, keyof typeof GGUF_VALUE_TYPE>(
  Object.entries(GGUF_VALUE_TYPE).map(([name, id]) => [id, name as keyof typeof GGUF_VALUE_TYPE]),
);

/** The name of a value type id ('u32', 'array'...), or undefined for an id the spec does not define. */
export function ggufValueTypeName(id: number): keyof typeof GGUF_VALUE_TYPE | undefined {
  return VALUE_TYPE_NAMES.get(id);
}

/** Bytes a value of this type takes at least (arrays and strings: their length prefixes). Bounds counts. */
export function ggufMinValueBytes(type: keyof typeof GGUF_VALUE_TYPE): number {
  switch (type) {
    case 'u8': case 'i8': case 'bool': return 1;
    case 'u16': case 'i16': return 2;
    case 'u32': case 'i32': case 'f32': return 4;
    case 'u64': case 'i64': case 'f64': case 'string': return 8;
    case 'array': return 12; // element type u32 + count u64
  }
}

/** Writes a GgufType readably: 'u32', 'array<string>'. */
export function formatGgufType(t: GgufType): string {
  return typeof t === 'string' ? t : `array<${formatGgufType(t.array)}>`;
}

export interface GgmlTypeInfo {
  /** Upper-case name as in gguf-py's GGMLQuantizationType ('F32', 'Q4_K', 'IQ2_XXS'). */
  name: string;
  /** Elements per block (1 for plain types); a row's length must be a multiple of it. */
  blockElems: number;
  /** Bytes per block. */
  blockBytes: number;
}

const QK_K = 256;

/** Every GGML tensor type a GGUF file may hold, by id. */
export const GGML_TYPES: Record<number, GgmlTypeInfo> = {
  0: { name: 'F32', blockElems: 1, blockBytes: 4 },
  1: { name: 'F16', blockElems: 1, blockBytes: 2 },
  2: { name: 'Q4_0', blockElems: 32, blockBytes: 2 + 16 },
  3: { name: 'Q4_1', blockElems: 32, blockBytes: 2 + 2 + 16 },
  6: { name: 'Q5_0', blockElems: 32, blockBytes: 2 + 4 + 16 },
  7: { name: 'Q5_1', blockElems: 32, blockBytes: 2 + 2 + 4 + 16 },
  8: { name: 'Q8_0', blockElems: 32, blockBytes: 2 + 32 },
  9: { name: 'Q8_1', blockElems: 32, blockBytes: 2 + 2 + 32 },
  10: { name: 'Q2_K', blockElems: QK_K, blockBytes: 2 + 2 + QK_K / 16 + QK_K / 4 },
  11: { name: 'Q3_K', blockElems: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 8 + 12 },
  12: { name: 'Q4_K', blockElems: QK_K, blockBytes: 2 + 2 + QK_K / 2 + 12 },
  13: { name: 'Q5_K', blockElems: QK_K, blockBytes: 2 + 2 + QK_K / 2 + QK_K / 8 + 12 },
  14: { name: 'Q6_K', blockElems: QK_K, blockBytes: 2 + QK_K / 2 + QK_K / 4 + QK_K / 16 },
  15: { name: 'Q8_K', blockElems: QK_K, blockBytes: 4 + QK_K + QK_K / 8 },
  16: { name: 'IQ2_XXS', blockElems: QK_K, blockBytes: 2 + QK_K / 4 },
  17: { name: 'IQ2_XS', blockElems: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 32 },
  18: { name: 'IQ3_XXS', blockElems: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 8 },
  19: { name: 'IQ1_S', blockElems: QK_K, blockBytes: 2 + QK_K / 8 + QK_K / 16 },
  20: { name: 'IQ4_NL', blockElems: 32, blockBytes: 2 + 16 },
  21: { name: 'IQ3_S', blockElems: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4 },
  22: { name: 'IQ2_S', blockElems: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 16 },
  23: { name: 'IQ4_XS', blockElems: QK_K, blockBytes: 2 + 2 + QK_K / 2 + QK_K / 64 },
  24: { name: 'I8', blockElems: 1, blockBytes: 1 },
  25: { name: 'I16', blockElems: 1, blockBytes: 2 },
  26: { name: 'I32', blockElems: 1, blockBytes: 4 },
  27: { name: 'I64', blockElems: 1, blockBytes: 8 },
  28: { name: 'F64', blockElems: 1, blockBytes: 8 },
  29: { name: 'IQ1_M', blockElems: QK_K, blockBytes: QK_K / 8 + QK_K / 16 + QK_K / 32 },
  30: { name: 'BF16', blockElems: 1, blockBytes: 2 },
  34: { name: 'TQ1_0', blockElems: QK_K, blockBytes: 2 + 4 * 13 },
  35: { name: 'TQ2_0', blockElems: QK_K, blockBytes: 2 + 64 },
  39: { name: 'MXFP4', blockElems: 32, blockBytes: 1 + 16 },
  40: { name: 'NVFP4', blockElems: 64, blockBytes: 4 + 32 },
  41: { name: 'Q1_0', blockElems: 128, blockBytes: 2 + 16 },
};

/** Type ids by name, for the names used in code and in llama.cpp output ('q4_K', 'Q4_K', 'bf16' all work). */
export const GGML_TYPE = Object.freeze(Object.fromEntries(
  Object.entries(GGML_TYPES).map(([id, info]) => [info.name, Number(id)]),
)) as Readonly<Record<string, number>>;

const BY_UPPER_NAME = new Map(Object.entries(GGML_TYPE).map(([name, id]) => [name.toUpperCase(), id]));

/** The id of a GGML type by name (case-insensitive), or undefined if there is none. */
export function ggmlTypeByName(name: string): number | undefined {
  return BY_UPPER_NAME.get(name.toUpperCase());
}

/** The info for a type id, or undefined for an unknown id. */
export function ggmlTypeInfo(type: number): GgmlTypeInfo | undefined {
  return Object.hasOwn(GGML_TYPES, type) ? GGML_TYPES[type] : undefined;
}

/** 'Q4_K', or 'type 77' for an unknown id (for messages). */
export function ggmlTypeName(type: number): string {
  return ggmlTypeInfo(type)?.name ?? `type ${type}`;
}

/**
 * Bytes of a contiguous tensor of this type and shape (ggml order: shape[0] is the row length).
 * Throws RangeError for an unknown type, a row length that is not a whole number of blocks,
 * or a size past Number.MAX_SAFE_INTEGER; file readers check these first to name the file.
 */
export function tensorByteLength(type: number, shape: readonly number[]): number {
  const info = ggmlTypeInfo(type);
  if (!info) throw new RangeError(`unknown GGML type id ${type}`);
  const row = shape.length > 0 ? shape[0]! : 1;
  if (row % info.blockElems !== 0) {
    throw new RangeError(`row length ${row} is not a multiple of ${info.name}'s block of ${info.blockElems} elements`);
  }
  let bytes = (row / info.blockElems) * info.blockBytes;
  for (let i = 1; i < shape.length; i++) bytes *= shape[i]!;
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`tensor of shape [${shape.join(', ')}] is too large`);
  return bytes;
}

/**
 * llama.cpp's `llama_ftype` (GGUF `general.file_type`) by value: the mix a file was quantized to, which no one
 * tensor type tells (Q4_K_M and Q4_K_S both hold mostly Q4_K). Values 5, 6 and 33–35 were removed upstream.
 */
const LLAMA_FILE_TYPES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 4: 'Q4_1_SOME_F16', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1',
  10: 'Q2_K', 11: 'Q3_K_S', 12: 'Q3_K_M', 13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K',
  19: 'IQ2_XXS', 20: 'IQ2_XS', 21: 'Q2_K_S', 22: 'IQ3_XS', 23: 'IQ3_XXS', 24: 'IQ1_S', 25: 'IQ4_NL', 26: 'IQ3_S', 27: 'IQ3_M',
  28: 'IQ2_S', 29: 'IQ2_M', 30: 'IQ4_XS', 31: 'IQ1_M', 32: 'BF16', 36: 'TQ1_0', 37: 'TQ2_0', 38: 'MXFP4_MOE',
};

/** llama.cpp's flag on a file type it guessed rather than read (llama_model_ftype_name then adds "(guessed)"). */
const LLAMA_FILE_TYPE_GUESSED = 1024;

const LLAMA_FILE_TYPE_IDS = new Map(Object.entries(LLAMA_FILE_TYPES).map(([id, name]) => [name, Number(id)]));

/** 'Q4_K_M' for general.file_type 15; undefined for a value this table does not know. */
export function llamaFileTypeName(fileType: number): string | undefined {
  const t = fileType & ~LLAMA_FILE_TYPE_GUESSED;
  return Object.hasOwn(LLAMA_FILE_TYPES, t) ? LLAMA_FILE_TYPES[t] : undefined;
}

/** The general.file_type value of a mix by name ('Q4_K_M', case-insensitive), or undefined. */
export function llamaFileTypeId(name: string): number | undefined {
  return LLAMA_FILE_TYPE_IDS.get(name.toUpperCase());
}
