// The interface between models and compute. Models are written once against it; the CPU
// backend (native C++) and the CUDA backend (device-resident tensors) implement it.
// Tensors are opaque handles: nothing here reads tensor memory except `read`, which the
// runner calls once per step for the logits, so a device backend needs no per-op host sync.
import type { DTypeId } from './dtype.js';

export interface Tensor {
  readonly dtype: DTypeId;
  readonly shape: readonly number[];
}

/** Where a weight's bytes sit in a model file (mapped, never copied into JS). */
export interface WeightLocation {
  file: string;
  offset: number;
  byteLength: number;
  dtype: DTypeId;
  /** Row-major, outermost first: a matmul weight is [N (outputs), K (inputs)]. */
  shape: number[];
}

/** Per-step attention inputs, uploaded once per step and shared by every layer. */
export interface AttentionInputs {
  /** [S + 1] prefix sums of query rows per sequence. */
  cuQ: Tensor;
  /** [S] tokens in the KV cache per sequence after this step's tokens are stored. */
  kvLens: Tensor;
  /** [S, maxBlocks] physical KV block ids per sequence (padding ignored). */
  blockTables: Tensor;
  /** [T] flat cache slot (block * blockSize + offset) each new token's K/V goes to. */
  slots: Tensor;
  /** [T] position of each token. */
  positions: Tensor;
  /**
   * I32 [1]: blockTables' row stride in entries, read on the device (CUDA only): a captured graph's
   * wide table buffer then takes a compact table of any width. Absent: blockTables.shape[1].
   */
  tableStride?: Tensor;
}

export interface Backend {
  readonly name: string;

  // --- memory ---
  loadWeight(loc: WeightLocation): Tensor;
  /** A persistent F32 tensor holding `data` (norm weights, rope tables). */
  constantF32(data: Float32Array, shape: number[]): Tensor;
  /** A per-step I32 input (token ids, positions, block tables); freed at endStep. */
  inputI32(data: Int32Array, shape: number[]): Tensor;
  /** A persistent zero-filled tensor (KV cache). */
  zeros(dtype: DTypeId, shape: number[]): Tensor;
  /** Copies a tensor back to the host; the one sync point of a step. */
  read(t: Tensor): Float32Array;
  free(...ts: Tensor[]): void;
  /** Frees every per-step tensor not yet freed. */
  endStep(): void;

  // --- ops (new tensors are per-step unless said otherwise) ---
  embedding(table: Tensor, ids: Tensor): Tensor;
  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor;
  /** x += delta (in place), then rmsNorm(x): a layer's residual add and the next norm. */
  addRmsNorm(x: Tensor, delta: Tensor, weight: Tensor, eps: number): Tensor;
  /** x [M, K] · w [N, K]ᵀ → [M, N], for every weight type. */
  matmul(x: Tensor, w: Tensor): Tensor;
  /** matmul(x, w) for each of ws (up to 3, one K: a layer's q, k, v), possibly in one launch. */
  matmulGroup(x: Tensor, ws: readonly Tensor[]): Tensor[];
  /** siluMul(matmul(x, gate), matmul(x, up)): SwiGLU's first half, possibly in one launch. */
  matmulSiluMul(x: Tensor, gate: Tensor, up: Tensor): Tensor;
  /** In place on x [T, H·headDim]; the first rotDim dims of each head rotate. */
  rope(x: Tensor, positions: Tensor, invFreq: Tensor, headDim: number, rotDim: number, interleaved: boolean): void;
  storeKv(kCache: Tensor, vCache: Tensor, k: Tensor, v: Tensor, slots: Tensor): void;
  /**
   * rope(q) and rope(k), then storeKv of the rotated k and v: a layer's position encoding and cache
   * write. Afterwards q is rotated; k's contents are unspecified (a fused kernel leaves it unrotated).
   */
  ropeStoreKv(q: Tensor, k: Tensor, v: Tensor, kCache: Tensor, vCache: Tensor, positions: Tensor, slots: Tensor, invFreq: Tensor, headDim: number, rotDim: number, interleaved: boolean): void;
  pagedAttention(q: Tensor, kCache: Tensor, vCache: Tensor, inputs: AttentionInputs, numKvHeads: number, scale: number): Tensor;
  siluMul(gate: Tensor, up: Tensor): Tensor;
  addInPlace(a: Tensor, b: Tensor): void;
  gatherRows(x: Tensor, rows: Tensor): Tensor;
}
