// The CUDA backend: tensors live in device memory (weights uploaded once from the mapped
// model file) and every op is one launch on its device's stream (native/cuda/device.h). Nothing
// waits for the GPU except read(), the one sync point of a step.
import type { BackendCapabilities, DeviceSampler, GraphCapture, Tensor } from './backend.js';
import { DType } from './dtype.js';
import { HandleBackend, type NativeTensorOps } from './handle-backend.js';
import { loadNative } from './native.js';

export interface CudaDeviceInfo {
  count: number;
  error?: string;
  device?: number;
  name?: string;
  computeCapability?: string;
  multiprocessors?: number;
  l2Bytes?: number;
  totalBytes?: number;
  freeBytes?: number;
  runtimeVersion?: number;
  driverVersion?: number;
}

export interface CudaOptions {
  /**
   * How matmuls with more than `gemvMaxRows` rows run: 'f32' computes what the CPU computes
   * (dequantized weights, f32 products and sums); 'bf16' rounds activations to bf16 (f16 for
   * F16 weights) and uses the tensor cores with f32 accumulation. Default 'bf16'.
   */
  precision?: 'f32' | 'bf16';
  /**
   * Rows up to this run the GEMV kernels (weights dequantized in registers; activations rounded to q8
   * for quantized weights, as on the CPU); more go through cuBLAS. -1 (default): 4 for quantized
   * types with an int8 kernel (Q4_0/1, Q5_0/1, Q8_0, Q4_K, Q6_K), else 2 (measured crossovers, H200).
   */
  gemvMaxRows?: number;
  /**
   * bf16 precision, Q4_K/Q6_K weights, rows above the GEMV limit and up to this: the tensor-core kernel
   * that dequantizes in registers (native/cuda/matmul_mma.cu); more rows: dequantize + cuBLAS.
   * -1 (default): 64; 0: never.
   */
  mmaMaxRows?: number;
  /** Layout of the tensor-core kernel: 2 (default) staged bf16 activations + split-K; 0 the first layout; 1 activation tiles fastest. */
  mmaVariant?: number;
  /** Warps per row pair in the GEMV kernels: 1, 2 or 4; 0 (default) picks by the number of rows. */
  gemvWarps?: number;
  /** Query rows outside the prefill kernel: 0 (default) paged_attention_decode.cu's kernel; 1 the first kernel (benchmarks). */
  attentionKernel?: number;
  /** Fill every new per-step tensor with NaN bytes, so a test sees any element an op fails to write. */
  poison?: boolean;
  /**
   * Programmatic dependent launch (sm_90) for the GEMV kernels and the activation quantizer: each may start,
   * and prefetch its weights into L2, while the kernel before it finishes. Default true; false to measure.
   */
  pdl?: boolean;
  /** Units of each weight row an int8 GEMV thread has in flight per step: 1 (default: fewer registers, more warps) or 2. */
  gemvUnroll?: number;
  /** Row pairs from which an int8 GEMV gives each pair one warp (fewer pairs: 2 or 4 warps a pair). Default 2560. */
  gemvW1Pairs?: number;
  /** Decode attention splits each row's keys until rows × KV heads × splits reach this many blocks per SM. Default 2. */
  attentionBlocksPerSm?: number;
  /**
   * MoE expert FFN: up to this many slots (tokens × top-k) the GEMV over the chosen experts (q8 activations for
   * quantized weights), above it the grouped tensor-core kernel (bf16 operands). -1 (default): 1024.
   */
  moeGemvMaxSlots?: number;
}

/** Options of the TypeScript side of the CUDA backend (beside the addon's CudaOptions). */
export interface CudaBackendOptions extends CudaOptions {
  /**
   * Fused kernels where the model offers them: addRmsNorm (the residual add and the next norm) and
   * ropeStoreKv (rope of q and k and the cache write), each bit-identical to the ops it replaces; at decode
   * (the GEMV rows) matmulGroup (q, k, v) and matmulSiluMul (gate, up and SwiGLU) in one launch each, the
   * same arithmetic with sums possibly split differently across warps. Default off here; the engine turns it on.
   */
  fusedOps?: boolean;
}

export interface CudaStats {
  liveTensors: number;
  liveBytes: number;
  mappings: number;
  poolReservedBytes: number;
  poolInUseBytes: number;
}

/**
 * Native functions of native/cuda/cuda_napi.cpp and cuda_ops_napi.cpp. Tensor handles share one
 * table with the CPU's (a CPU handle given here is an error); an op runs on its tensors' device.
 * `device` (a CUDA ordinal) is optional: 0 where a call makes or runs something, every CUDA device
 * where it releases, counts, trims or waits.
 */
export interface CudaNative {
  cudaDeviceInfo(device?: number): CudaDeviceInfo;
  cudaAlloc(dtype: number, shape: number[], scratch: boolean, device?: number): number;
  /** The same mappings as the CPU's mapFile: either backend may make tensors from either's. */
  cudaMapFile(path: string): number;
  cudaUnmapFile(mapping: number): void;
  cudaFromMapping(mapping: number, offset: number, dtype: number, shape: number[], device?: number): number;
  cudaUpload(h: number, data: Float32Array | Int32Array | Uint8Array): void;
  cudaUploadRepeat(h: number, pattern: Uint8Array): void;
  cudaDownload(h: number): Float32Array | Int32Array;
  cudaRelease(h: number): void;
  /** Frees the per-step tensors of `device`, or of every CUDA device; never the CPU's. */
  cudaReleaseScratch(device?: number): void;
  cudaStats(device?: number): CudaStats;
  cudaTrimPool(device?: number): void;
  cudaSynchronize(device?: number): void;
  /** One set for the process, every device. */
  cudaSetOptions(o: CudaOptions): Required<CudaOptions>;
  cudaTimerStart(device?: number): void;
  cudaTimerStop(device?: number): number;
  cudaCopyBandwidth(bytes: number, reps: number, device?: number): number;
  /** Ops issued between begin and end are recorded, not run; replay runs them (same pointers). Graph ids are unique across devices. */
  cudaCaptureBegin(device?: number): void;
  cudaCaptureEnd(device?: number): number;
  cudaGraphReplay(graph: number): void;
  cudaGraphRelease(graph: number): void;
  /** A per-step tensor becomes persistent (a graph's output buffer). */
  cudaPersist(h: number): void;
  /** Samples one token per row of logits [B, V] (params [B, 4], seeds [B, 2]; native/cuda/sample.cu). */
  cudaOpSample(logits: number, params: number, seeds: number): number;
  /** logit_bias and penalties on logits [B, V] in place: index [cap, 2], values [cap, 3], count [1] (native/cuda/penalties.cu). */
  cudaOpApplyPenalties(logits: number, index: number, values: number, count: number): void;
  cudaOpEmbedding(table: number, ids: number): number;
  cudaOpRmsNorm(x: number, w: number, eps: number): number;
  cudaOpAddRmsNorm(x: number, delta: number, w: number, eps: number): number;
  cudaOpRopeStoreKv(q: number, kc: number, vc: number, k: number, v: number, pos: number, slots: number, invFreq: number, headDim: number, rotDim: number, interleaved: boolean): void;
  cudaOpMatmul(x: number, w: number): number;
  /** x times each weight (up to 3), one launch where the GEMV path takes them all. */
  cudaOpMatmulGroup(x: number, ...ws: number[]): number[];
  cudaOpMatmulSiluMul(x: number, gate: number, up: number): number;
  cudaOpRope(x: number, pos: number, invFreq: number, headDim: number, rotDim: number, interleaved: boolean): void;
  cudaOpStoreKv(kc: number, vc: number, k: number, v: number, slots: number): void;
  cudaOpPagedAttention(q: number, kc: number, vc: number, cuQ: number, kvLens: number, tables: number, nkv: number, scale: number, stride?: number): number;
  cudaOpSiluMul(g: number, u: number): number;
  cudaOpAddInPlace(a: number, b: number): void;
  cudaOpGatherRows(x: number, idx: number): number;
  /** Router: ids I32 [T, k] and weights F32 [T, k] from logits [T, E] (bias -1: none; native/cuda/moe_route.cu, the MoE contract). */
  cudaOpMoeRoute(logits: number, bias: number, scoring: number, topK: number, numGroups: number, topKGroups: number, groupScore: number, normalize: boolean, scale: number): [number, number];
  /** Expert FFN over the chosen experts of gate/up [E, I, H] and down [E, H, I]: F32 [T, H] (native/cuda/moe_experts.cu). */
  cudaOpMoeExperts(x: number, ids: number, weights: number, gate: number, up: number, down: number): number;
  /** A persistent [E, N, K] tensor uploaded slice by slice: expert e's bytes from mappings[e] at offsets[e]. */
  cudaStackMappings(mappings: number[], offsets: number[], dtype: number, shape: number[]): number;
}

/** The addon's CUDA functions, or undefined where it was built without CUDA. */
export function cudaNative(): CudaNative | undefined {
  let addon: ReturnType<typeof loadNative>;
  try {
    addon = loadNative();
  } catch {
    return undefined;
  }
  return addon.cuda && typeof addon.cudaDeviceInfo === 'function' ? (addon as unknown as CudaNative) : undefined;
}

/** Why the CUDA backend cannot run here, or undefined where it can. */
export function cudaUnavailableReason(): string | undefined {
  const n = cudaNative();
  if (!n) return 'native addon built without CUDA (needs nvcc and cuBLAS, or KT_CUDA=1)';
  const info = n.cudaDeviceInfo();
  return info.count > 0 ? undefined : `no CUDA device visible (${info.error ?? 'none found'})`;
}

/** True where the addon was built with CUDA and a device is visible. */
export function cudaAvailable(): boolean {
  return cudaUnavailableReason() === undefined;
}

/** The Backend functions of the CUDA natives, under the names HandleBackend calls. */
function cudaOps(n: CudaNative): NativeTensorOps {
  return {
    alloc: n.cudaAlloc,
    mapFile: n.cudaMapFile,
    unmapFile: n.cudaUnmapFile,
    fromMapping: n.cudaFromMapping,
    upload: n.cudaUpload,
    download: n.cudaDownload,
    release: n.cudaRelease,
    releaseScratch: n.cudaReleaseScratch,
    opEmbedding: n.cudaOpEmbedding,
    opRmsNorm: n.cudaOpRmsNorm,
    opMatmul: n.cudaOpMatmul,
    opRope: n.cudaOpRope,
    opStoreKv: n.cudaOpStoreKv,
    opPagedAttention: n.cudaOpPagedAttention,
    opSiluMul: n.cudaOpSiluMul,
    opAddInPlace: n.cudaOpAddInPlace,
    opGatherRows: n.cudaOpGatherRows,
    stackMappings: n.cudaStackMappings,
    opMoeRoute: n.cudaOpMoeRoute,
    opMoeExperts: n.cudaOpMoeExperts,
  };
}

export class CudaBackend extends HandleBackend implements GraphCapture, DeviceSampler {
  readonly name = 'cuda';
  readonly device: string;
  readonly capabilities: BackendCapabilities;
  private readonly n: CudaNative;
  private readonly fused: boolean;

  constructor(options: CudaBackendOptions = {}) {
    const n = cudaNative();
    const why = cudaUnavailableReason();
    if (!n || why) throw new Error(`cuda backend: ${why}`);
    super(cudaOps(n));
    this.n = n;
    this.device = `cuda:${n.cudaDeviceInfo().device ?? 0}`;
    this.capabilities = {
      graphs: this,
      sampler: this,
      memory: { totalBytes: () => this.deviceInfo().totalBytes ?? 0, freeBytes: () => this.deviceInfo().freeBytes ?? 0 },
      kvDtypes: ['bf16', 'f32'],
    };
    const { fusedOps, ...native } = options;
    this.fused = fusedOps ?? false;
    this.n.cudaSetOptions({ ...native, ...optionsFromEnv() });
  }

  override ropeStoreKv(q: Tensor, k: Tensor, v: Tensor, kCache: Tensor, vCache: Tensor, positions: Tensor, slots: Tensor, invFreq: Tensor, headDim: number, rotDim: number, interleaved: boolean): void {
    if (!this.fused) return super.ropeStoreKv(q, k, v, kCache, vCache, positions, slots, invFreq, headDim, rotDim, interleaved);
    this.n.cudaOpRopeStoreKv(this.h(q), this.h(kCache), this.h(vCache), this.h(k), this.h(v), this.h(positions), this.h(slots), this.h(invFreq), headDim, rotDim, interleaved);
  }

  override matmulGroup(x: Tensor, ws: readonly Tensor[]): Tensor[] {
    if (!this.fused || ws.length < 2 || ws.length > 3) return super.matmulGroup(x, ws);
    const m = x.shape.reduce((a, b) => a * b, 1) / (ws[0]!.shape[1] ?? 1);
    const handles = this.n.cudaOpMatmulGroup(this.h(x), ...ws.map((w) => this.h(w)));
    return handles.map((h, i) => this.wrapStep(h, DType.F32, [m, ws[i]!.shape[0] ?? 0]));
  }

  override matmulSiluMul(x: Tensor, gate: Tensor, up: Tensor): Tensor {
    if (!this.fused) return super.matmulSiluMul(x, gate, up);
    const m = x.shape.reduce((a, b) => a * b, 1) / (gate.shape[1] ?? 1);
    return this.wrapStep(this.n.cudaOpMatmulSiluMul(this.h(x), this.h(gate), this.h(up)), DType.F32, [m, gate.shape[0] ?? 0]);
  }

  override addRmsNorm(x: Tensor, delta: Tensor, weight: Tensor, eps: number): Tensor {
    if (!this.fused) return super.addRmsNorm(x, delta, weight, eps);
    return this.wrapStep(this.n.cudaOpAddRmsNorm(this.h(x), this.h(delta), this.h(weight), eps), DType.F32, x.shape);
  }

  /** Changes options for later ops (the addon holds one set per process). */
  setOptions(options: CudaOptions): Required<CudaOptions> {
    return this.n.cudaSetOptions(options);
  }

  describeDevice(): string {
    const d = this.deviceInfo();
    return `${d.name ?? 'CUDA device'} (sm ${d.computeCapability ?? '?'}, ${((d.totalBytes ?? 0) / 2 ** 30).toFixed(0)} GiB)`;
  }

  deviceInfo(): CudaDeviceInfo {
    return this.n.cudaDeviceInfo();
  }

  /** The native functions, for benchmarks (timers, copy bandwidth). */
  get native(): CudaNative {
    return this.n;
  }

  // --- CUDA graphs: ops issued between captureBegin and captureEnd are recorded, not run ---
  captureBegin(): void {
    this.n.cudaCaptureBegin();
  }

  captureEnd(): number {
    return this.n.cudaCaptureEnd();
  }

  replay(graph: number): void {
    this.n.cudaGraphReplay(graph);
  }

  releaseGraph(graph: number): void {
    this.n.cudaGraphRelease(graph);
  }

  /** Keeps a per-step tensor past endStep (a graph's outputs); free() releases it. */
  persist(t: Tensor): void {
    this.n.cudaPersist(this.keep(t));
  }

  /**
   * One token per row of logits [B, V], drawn on the device: params [B, 4] F32 (temperature,
   * top-k, top-p, min-p), seeds [B, 2] I32 (seed, counter). Returns I32 [B], per step.
   */
  sample(logits: Tensor, params: Tensor, seeds: Tensor): Tensor {
    const rows = logits.shape[0] ?? 0;
    return this.wrapStep(this.n.cudaOpSample(this.h(logits), this.h(params), this.h(seeds)), DType.I32, [rows]);
  }

  /**
   * logit_bias and the penalties on logits [B, V], in place, before sample(): for the first count[0]
   * entries, index I32 [cap, 2] (row, token) and values F32 [cap, 3] (bias, repetition factor or 1, amount
   * subtracted). The count is read on the device, so a captured graph replays for any count up to cap.
   */
  applyPenalties(logits: Tensor, index: Tensor, values: Tensor, count: Tensor): void {
    this.n.cudaOpApplyPenalties(this.h(logits), this.h(index), this.h(values), this.h(count));
  }

  /** Live device tensors and pool bytes, for leak checks in tests. */
  stats(): CudaStats {
    return this.n.cudaStats();
  }
}

/**
 * KT_CUDA_OPTIONS: a JSON object of CudaOptions laid over every backend's own, for measuring kernel
 * variants through whole commands (`KT_CUDA_OPTIONS='{"mmaVariant":2}' ktserve bench engine …`).
 */
function optionsFromEnv(): CudaOptions {
  const text = process.env['KT_CUDA_OPTIONS'];
  if (!text) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`KT_CUDA_OPTIONS is not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('KT_CUDA_OPTIONS must be a JSON object of CUDA options');
  return parsed as CudaOptions;
}
