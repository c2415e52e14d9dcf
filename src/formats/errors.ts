// Named errors for reading and writing model files (GGUF, safetensors, HF JSON configs).
// Every message starts with the file it is about, so a user can act on it without a stack trace.

/** Base class: something is wrong with a model file (missing, unreadable, corrupt, unsupported). */
export class ModelFileError extends Error {
  /** The file (or directory) the error is about. */
  readonly file: string;
  /** What is wrong, without the file name. */
  readonly detail: string;

  constructor(file: string, detail: string, options?: { cause?: unknown }) {
    super(`${file}: ${detail}`, options);
    this.name = new.target.name;
    this.file = file;
    this.detail = detail;
  }
}

export class InvalidGgufMagicError extends ModelFileError {
  constructor(file: string, readonly magic: Uint8Array) {
    super(file, `not a GGUF file: magic bytes are ${describeMagic(magic)}, expected "GGUF"`);
  }
}

export class UnsupportedGgufVersionError extends ModelFileError {
  constructor(file: string, readonly version: number) {
    super(file, `unsupported GGUF version ${version}${versionHint(version)}; only versions 2 and 3 are supported`);
  }
}

/** A read went past the end of the file, or a length field points past it. */
export class TruncatedFileError extends ModelFileError {}

/** The structure is invalid: absurd counts, bad alignment, duplicate names, bad value types... */
export class GgufFormatError extends ModelFileError {}

export class UnknownGgmlTypeError extends ModelFileError {
  constructor(file: string, readonly typeId: number, where: string) {
    super(file, `${where} has unknown GGML type id ${typeId}`);
  }
}

/** A metadata value exists but has another type than the caller expects. */
export class GgufMetadataTypeError extends ModelFileError {
  constructor(file: string, readonly key: string, expected: string, actual: string) {
    super(file, `metadata key "${key}" is ${actual}, expected ${expected}`);
  }
}

export class InvalidSafetensorsHeaderError extends ModelFileError {}

/** One file of a split GGUF model (name-0000i-of-0000n.gguf) is missing. */
export class MissingSplitError extends ModelFileError {}

/** A shard named by model.safetensors.index.json is missing, or lacks a tensor the index puts in it. */
export class MissingShardError extends ModelFileError {}

/** A directory holds no model file, or more than one, so the model to load is ambiguous. */
export class ModelDirectoryError extends ModelFileError {}

/** A JSON config file (config.json, generation_config.json, tokenizer_config.json...) is missing or invalid. */
export class ConfigFileError extends ModelFileError {}

/** A GGUF writer was used out of order or given data that does not match its declarations. */
export class GgufWriteError extends ModelFileError {}

function describeMagic(magic: Uint8Array): string {
  const hex = Array.from(magic, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const printable = Array.from(magic).every((b) => b >= 0x20 && b < 0x7f);
  return printable ? `"${String.fromCharCode(...magic)}" (${hex})` : hex || '(none)';
}

function versionHint(version: number): string {
  if (version === 1) return ' (GGUF v1 is obsolete; re-convert the model with a current llama.cpp)';
  // A big-endian file read as little-endian shows its version byte-swapped.
  const swapped = ((version & 0xff) << 24 | (version & 0xff00) << 8 | (version >>> 8) & 0xff00 | version >>> 24) >>> 0;
  if (swapped === 2 || swapped === 3) return ` (looks like a big-endian GGUF v${swapped}; only little-endian files are supported)`;
  return '';
}
