// What one engine step asks of a model: a flat batch of tokens from several sequences,
// each with its place in the paged KV cache. The runner builds it; models only read it.
import type { AttentionInputs, Backend, Tensor } from '../backend/backend.js';

export interface SequenceChunk {
  /** Tokens of this sequence already in the KV cache before this step. */
  cachedLen: number;
  /** This step's tokens of the sequence (a prefill chunk, or one decode token). */
  tokens: ArrayLike<number>;
  /** Physical KV block ids covering cachedLen + tokens.length positions. */
  blockTable: ArrayLike<number>;
  /** Whether the logits of this chunk's last token are wanted. */
  wantLogits: boolean;
}

export interface ForwardBatch {
  sequences: SequenceChunk[];
}

/** Flat integer arrays of a batch, as the attention kernels take them. */
export interface FlatBatch {
  tokenIds: Int32Array;
  positions: Int32Array;
  slots: Int32Array;
  cuQ: Int32Array;
  kvLens: Int32Array;
  blockTables: Int32Array;
  maxBlocks: number;
  /** Row (in the flat token list) of each requested logit, in sequence order. */
  logitRows: Int32Array;
}

/** Blocks of KV cache a sequence covers after this step's tokens. */
function blocksOf(s: SequenceChunk, blockSize: number): number {
  return Math.ceil((s.cachedLen + s.tokens.length) / blockSize);
}

/**
 * Writes the sequences' rows into `out` from row 0 and sequence 0 (block tables `width` entries
 * apart), as every layout of a step shares them; returns the rows and logit rows written.
 */
function writeSequences(seqs: readonly SequenceChunk[], blockSize: number, width: number, out: Omit<FlatBatch, 'maxBlocks'>): { rows: number; logits: number } {
  let row = 0;
  let logits = 0;
  seqs.forEach((s, i) => {
    const kvLen = s.cachedLen + s.tokens.length;
    if (s.blockTable.length * blockSize < kvLen) {
      throw new Error(`sequence ${i}: block table of ${s.blockTable.length} blocks cannot hold ${kvLen} tokens`);
    }
    for (let b = 0; b < blocksOf(s, blockSize); b++) out.blockTables[i * width + b] = s.blockTable[b] ?? 0;
    for (let j = 0; j < s.tokens.length; j++, row++) {
      const pos = s.cachedLen + j;
      out.tokenIds[row] = s.tokens[j] ?? 0;
      out.positions[row] = pos;
      out.slots[row] = (s.blockTable[Math.floor(pos / blockSize)] ?? 0) * blockSize + (pos % blockSize);
    }
    out.cuQ[i + 1] = row;
    out.kvLens[i] = kvLen;
    if (s.wantLogits) out.logitRows[logits++] = row - 1;
  });
  return { rows: row, logits };
}

export function flattenBatch(batch: ForwardBatch, blockSize: number): FlatBatch {
  const seqs = batch.sequences;
  const total = seqs.reduce((n, s) => n + s.tokens.length, 0);
  const maxBlocks = Math.max(1, ...seqs.map((s) => blocksOf(s, blockSize)));
  const flat: FlatBatch = {
    tokenIds: new Int32Array(total),
    positions: new Int32Array(total),
    slots: new Int32Array(total),
    cuQ: new Int32Array(seqs.length + 1),
    kvLens: new Int32Array(seqs.length),
    blockTables: new Int32Array(seqs.length * maxBlocks),
    maxBlocks,
    logitRows: new Int32Array(seqs.filter((s) => s.wantLogits).length),
  };
  writeSequences(seqs, blockSize, maxBlocks, flat);
  return flat;
}

/** A step's inputs on the device, as a model's forwardTensors takes them. */
export interface StepTensors {
  ids: Tensor;
  attention: AttentionInputs;
  /** Rows whose logits are wanted; undefined: every row; null: none (no logits computed). */
  logitRows: Tensor | undefined | null;
}

/** Uploads a flattened batch as per-step tensors (freed at the backend's endStep). */
export function uploadStepInputs(b: Backend, flat: FlatBatch, wantLogits: boolean): StepTensors {
  const T = flat.tokenIds.length;
  return {
    ids: b.inputI32(flat.tokenIds, [T]),
    attention: {
      cuQ: b.inputI32(flat.cuQ, [flat.cuQ.length]),
      kvLens: b.inputI32(flat.kvLens, [flat.kvLens.length]),
      blockTables: b.inputI32(flat.blockTables, [flat.kvLens.length, flat.maxBlocks]),
      slots: b.inputI32(flat.slots, [T]),
      positions: b.inputI32(flat.positions, [T]),
    },
    logitRows: wantLogits ? b.inputI32(flat.logitRows, [flat.logitRows.length]) : null,
  };
}

/** A decode batch padded to a CUDA graph's size: what its persistent step buffers receive. */
export interface PaddedDecodeInputs extends Omit<FlatBatch, 'maxBlocks' | 'logitRows'> {
  /** blockTables is [size, width], a compact table (row stride `width`). */
  width: number;
}

/**
 * Lays out a decode batch (every sequence one token) for a graph of `size` rows: the sequences' rows
 * as flattenBatch would, then padding rows of one token at position 0 whose K/V go to `spareBlock`,
 * a block no sequence owns. The table is as wide as the longest sequence needs, at least 1.
 */
export function padDecodeBatch(batch: ForwardBatch, size: number, blockSize: number, spareBlock: number): PaddedDecodeInputs {
  const seqs = batch.sequences;
  if (seqs.length > size) throw new Error(`decode batch of ${seqs.length} sequences for a graph of ${size}`);
  seqs.forEach((s, i) => {
    if (s.tokens.length !== 1) throw new Error(`sequence ${i}: a decode row takes one token, got ${s.tokens.length}`);
  });
  const width = Math.max(1, ...seqs.map((s) => blocksOf(s, blockSize)));
  const out: PaddedDecodeInputs = {
    tokenIds: new Int32Array(size),
    positions: new Int32Array(size),
    slots: new Int32Array(size).fill(spareBlock * blockSize),
    cuQ: Int32Array.from({ length: size + 1 }, (_, i) => i),
    kvLens: new Int32Array(size).fill(1),
    blockTables: new Int32Array(size * width).fill(spareBlock),
    width,
  };
  writeSequences(seqs, blockSize, width, { ...out, logitRows: new Int32Array(size) });
  return out;
}

/** A step of any shape padded to a mixed graph's token and sequence counts. */
export interface PaddedMixedInputs extends PaddedDecodeInputs {
  /** [seqs] row of each sampling sequence's last token, in order; the remaining entries are 0. */
  logitRows: Int32Array;
  /** How many of logitRows are real. */
  numLogits: number;
}

/**
 * Lays out any batch for a graph of `tokens` rows and `seqs` sequences: the batch's sequences as
 * flattenBatch would, then (when tokens are left) one padding sequence holding them, at positions
 * 0.. with its K/V in `spareBlock`, then empty sequences (no rows, one cached token in the spare
 * block) up to `seqs`. Needs tokens ≥ the batch's tokens and seqs ≥ its sequences + 1.
 */
export function padMixedBatch(batch: ForwardBatch, tokens: number, seqs: number, blockSize: number, spareBlock: number): PaddedMixedInputs {
  const real = batch.sequences;
  const T = real.reduce((n, s) => n + s.tokens.length, 0);
  if (T > tokens || real.length + 1 > seqs) throw new Error(`batch of ${T} tokens in ${real.length} sequences for a graph of ${tokens} tokens and ${seqs} sequences`);
  const pad = tokens - T;
  const width = Math.max(1, Math.ceil(pad / blockSize), ...real.map((s) => blocksOf(s, blockSize)));
  const out: PaddedMixedInputs = {
    tokenIds: new Int32Array(tokens),
    positions: new Int32Array(tokens),
    slots: new Int32Array(tokens),
    cuQ: new Int32Array(seqs + 1),
    kvLens: new Int32Array(seqs).fill(1),
    blockTables: new Int32Array(seqs * width).fill(spareBlock),
    width,
    logitRows: new Int32Array(seqs),
    numLogits: 0,
  };
  const written = writeSequences(real, blockSize, width, out);
  out.numLogits = written.logits;
  let row = written.rows;
  // The padding sequence: every spare row attends over its own keys in the spare block.
  for (let j = 0; j < pad; j++, row++) {
    out.positions[row] = j;
    out.slots[row] = spareBlock * blockSize + (j % blockSize);
  }
  for (let i = real.length; i < seqs; i++) out.cuQ[i + 1] = row;
  if (pad > 0) out.kvLens[real.length] = pad;
  return out;
}
