// The interface between models and compute. Models are written once against it; the CPU
// backend (native C++) and the CUDA backend (device-resident tensors) implement it.
// Tensors are opaque handles: nothing here reads tensor memory except `read`, which the
// runner calls once per step for the logits, so a device backend needs no per-op host sync.
import type { DTypeId } from './dtype.js';

export interface Tensor {
  readonly dtype: DTypeId;
  readonly shape: readonly number[];
  /** The device holding it ("cpu", "cuda:0"): an op of another device's backend refuses it. */
  readonly device: string;
}

/** Where a weight's bytes sit in a model file (mapped, never copied into JS). */
export interface WeightLocation {
  file: string;
  offset: number;
  byteLength: number;
  dtype: DTypeId;
  /** Row-major, outermost first: a matmul weight is [N (outputs), K (inputs)]; experts [E, N, K]. */
  shape: number[];
  /**
   * Where the weight is stored in pieces (Hugging Face keeps each expert apart): the pieces, outermost
   * index first, each [N, K] of one dtype; the backend stacks them into one tensor of `shape`. Absent:
   * the weight is the one range file/offset/byteLength.
   */
  parts?: WeightLocation[];
}

/** How a mixture-of-experts router turns router logits into each token's experts and weights. */
export interface RouterSpec {
  /** softmax over all experts (Qwen3-MoE, DeepSeek-V2) or each expert's sigmoid (DeepSeek-V3). */
  scoring: 'softmax' | 'sigmoid';
  /** Experts per token. */
  topK: number;
  /** Consecutive expert groups (1: none); only experts of the topKGroups best groups compete. */
  numGroups: number;
  topKGroups: number;
  /** A group's score: its best expert (DeepSeek-V2's group_limited_greedy) or its best two summed (V3's noaux_tc). */
  groupScore: 'max' | 'top2sum';
  /** Divide the chosen weights by their sum (norm_topk_prob). */
  normalize: boolean;
  /** Multiply the weights (routed_scaling_factor). */
  scale: number;
}

/** One layer's routed experts: 3-D weights [E, I, H] (gate, up) and [E, H, I] (down), one tensor each. */
export interface ExpertWeights {
  gate: Tensor;
  up: Tensor;
  down: Tensor;
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

/** CUDA-graph capture and replay over persistent step buffers (the CUDA backend). */
export interface GraphCapture {
  captureBegin(): void;
  captureEnd(): number;
  replay(graph: number): void;
  releaseGraph(graph: number): void;
  /** Keeps a per-step tensor past endStep (a graph's output). */
  persist(t: Tensor): void;
}

/** Sampling on the device, so a step reads back token ids instead of logits (the CUDA backend). */
export interface DeviceSampler {
  /** One token per row of logits [B, V]: params F32 [B, 4] (temperature, top-k, top-p, min-p), seeds I32 [B, 2]. */
  sample(logits: Tensor, params: Tensor, seeds: Tensor): Tensor;
  /** logit_bias and penalties in place (see gpu-sampling.ts for the packing). */
  applyPenalties(logits: Tensor, index: Tensor, values: Tensor, count: Tensor): void;
}

/** Free and total bytes of the device's memory, which the KV cache planner divides. */
export interface DeviceMemoryInfo {
  totalBytes(): number;
  freeBytes(): number;
}

/**
 * What a backend can do beyond the ops every backend has. The runner and the engine factory ask
 * these instead of testing for a backend class, so a new backend (another GPU, a hybrid of two)
 * states what it offers.
 */
export interface BackendCapabilities {
  graphs?: GraphCapture;
  sampler?: DeviceSampler;
  memory?: DeviceMemoryInfo;
  /** Element types the paged KV cache may be stored in (the first is the default). */
  kvDtypes: readonly ('f32' | 'bf16')[];
}

export interface Backend {
  readonly name: string;
  /** The device its tensors live on ("cpu", "cuda:0"). */
  readonly device: string;
  readonly capabilities: BackendCapabilities;

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
  /** Copies an I32 tensor back to the host (sampled token ids). */
  readI32(t: Tensor): Int32Array;
  /** A per-step F32 input (sampling parameters); freed at endStep. */
  inputF32(data: Float32Array, shape: number[]): Tensor;
  /** Overwrites a tensor's contents (or its start), in stream order: persistent step buffers before a replay. */
  write(t: Tensor, data: Float32Array | Int32Array): void;
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
  /** Router logits F32 [T, E] → each token's experts I32 [T, k] (best first) and their weights F32 [T, k]. */
  moeRoute(logits: Tensor, spec: RouterSpec, selectionBias?: Tensor): { ids: Tensor; weights: Tensor };
  /**
   * The routed experts' SwiGLU FFN over x [T, H]: Σ_j weights[t, j] · down_e(silu(gate_e x) ⊙ up_e x),
   * e = ids[t, j], summed in slot order; [T, H].
   */
  moeExperts(x: Tensor, ids: Tensor, weights: Tensor, experts: ExpertWeights): Tensor;
}
