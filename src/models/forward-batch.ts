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

export function flattenBatch(batch: ForwardBatch, blockSize: number): FlatBatch {
  const seqs = batch.sequences;
  const total = seqs.reduce((n, s) => n + s.tokens.length, 0);
  const maxBlocks = Math.max(1, ...seqs.map((s) => Math.ceil((s.cachedLen + s.tokens.length) / blockSize)));
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
  let row = 0;
  let logit = 0;
  seqs.forEach((s, i) => {
    const kvLen = s.cachedLen + s.tokens.length;
    if (s.blockTable.length * blockSize < kvLen) {
      throw new Error(`sequence ${i}: block table of ${s.blockTable.length} blocks cannot hold ${kvLen} tokens`);
    }
    for (let b = 0; b < Math.ceil(kvLen / blockSize); b++) flat.blockTables[i * maxBlocks + b] = s.blockTable[b] ?? 0;
    for (let j = 0; j < s.tokens.length; j++, row++) {
      const pos = s.cachedLen + j;
      flat.tokenIds[row] = s.tokens[j] ?? 0;
      flat.positions[row] = pos;
      flat.slots[row] = (s.blockTable[Math.floor(pos / blockSize)] ?? 0) * blockSize + (pos % blockSize);
    }
    flat.cuQ[i + 1] = row;
    flat.kvLens[i] = kvLen;
    if (s.wantLogits) flat.logitRows[logit++] = row - 1;
  });
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
  const width = Math.max(1, ...seqs.map((s) => Math.ceil((s.cachedLen + 1) / blockSize)));
  const out: PaddedDecodeInputs = {
    tokenIds: new Int32Array(size),
    positions: new Int32Array(size),
    slots: new Int32Array(size).fill(spareBlock * blockSize),
    cuQ: Int32Array.from({ length: size + 1 }, (_, i) => i),
    kvLens: new Int32Array(size).fill(1),
    blockTables: new Int32Array(size * width).fill(spareBlock),
    width,
  };
  seqs.forEach((s, i) => {
    if (s.tokens.length !== 1) throw new Error(`sequence ${i}: a decode row takes one token, got ${s.tokens.length}`);
    const pos = s.cachedLen;
    const blocks = Math.ceil((pos + 1) / blockSize);
    if (s.blockTable.length < blocks) throw new Error(`sequence ${i}: block table of ${s.blockTable.length} blocks cannot hold ${pos + 1} tokens`);
    out.tokenIds[i] = s.tokens[0]!;
    out.positions[i] = pos;
    out.kvLens[i] = pos + 1;
    for (let j = 0; j < blocks; j++) out.blockTables[i * width + j] = s.blockTable[j]!;
    out.slots[i] = s.blockTable[Math.floor(pos / blockSize)]! * blockSize + (pos % blockSize);
  });
  return out;
}
