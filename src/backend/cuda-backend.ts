// The CUDA backend: tensors live in device memory (weights uploaded once from the mapped
// model file) and every op is one launch on the addon's single stream (native/cuda). Nothing
// waits for the GPU except read(), the one sync point of a step.
import type { AttentionInputs, Backend, Tensor, WeightLocation } from './backend.js';
import { DType, type DTypeId } from './dtype.js';
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
   * Rows up to this run the GEMV kernels (weights dequantized in registers, f32 activations);
   * more go through cuBLAS. -1 (default): 2, where the two paths crossed on an H200.
   */
  gemvMaxRows?: number;
  /** Warps per row pair in the GEMV kernels: 1, 2 or 4; 0 (default) picks by the number of rows. */
  gemvWarps?: number;
  /** Fill every new per-step tensor with NaN bytes, so a test sees any element an op fails to write. */
  poison?: boolean;
}

export interface CudaStats {
  liveTensors: number;
  liveBytes: number;
  mappings: number;
  poolReservedBytes: number;
  poolInUseBytes: number;
}

/** Native functions of native/cuda/cuda_napi.cpp and cuda_ops_napi.cpp. */
export interface CudaNative {
  cudaDeviceInfo(): CudaDeviceInfo;
  cudaAlloc(dtype: number, shape: number[], scratch: boolean): number;
  cudaMapFile(path: string): number;
  cudaUnmapFile(mapping: number): void;
  cudaFromMapping(mapping: number, offset: number, dtype: number, shape: number[]): number;
  cudaUpload(h: number, data: Float32Array | Int32Array | Uint8Array): void;
  cudaUploadRepeat(h: number, pattern: Uint8Array): void;
  cudaDownload(h: number): Float32Array | Int32Array;
  cudaRelease(h: number): void;
  cudaReleaseScratch(): void;
  cudaStats(): CudaStats;
  cudaTrimPool(): void;
  cudaSynchronize(): void;
  cudaSetOptions(o: CudaOptions): Required<CudaOptions>;
  cudaTimerStart(): void;
  cudaTimerStop(): number;
  cudaCopyBandwidth(bytes: number, reps: number): number;
  /** Ops issued between begin and end are recorded, not run; replay runs them (same pointers). */
  cudaCaptureBegin(): void;
  cudaCaptureEnd(): number;
  cudaGraphReplay(graph: number): void;
  cudaGraphRelease(graph: number): void;
  cudaOpEmbedding(table: number, ids: number): number;
  cudaOpRmsNorm(x: number, w: number, eps: number): number;
  cudaOpMatmul(x: number, w: number): number;
  cudaOpRope(x: number, pos: number, invFreq: number, headDim: number, rotDim: number, interleaved: boolean): void;
  cudaOpStoreKv(kc: number, vc: number, k: number, v: number, slots: number): void;
  cudaOpPagedAttention(q: number, kc: number, vc: number, cuQ: number, kvLens: number, tables: number, nkv: number, scale: number): number;
  cudaOpSiluMul(g: number, u: number): number;
  cudaOpAddInPlace(a: number, b: number): void;
  cudaOpGatherRows(x: number, idx: number): number;
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

class CudaTensor implements Tensor {
  released = false;
  constructor(
    readonly handle: number,
    readonly dtype: DTypeId,
    readonly shape: readonly number[],
    readonly perStep: boolean,
  ) {}
}

export class CudaBackend implements Backend {
  readonly name = 'cuda';
  private readonly n: CudaNative;
  private readonly mappings = new Map<string, number>();
  private perStep: CudaTensor[] = [];

  constructor(options: CudaOptions = {}) {
    const n = cudaNative();
    const why = cudaUnavailableReason();
    if (!n || why) throw new Error(`cuda backend: ${why}`);
    this.n = n;
    this.n.cudaSetOptions(options);
  }

  /** Changes options for later ops (the addon holds one set per process). */
  setOptions(options: CudaOptions): Required<CudaOptions> {
    return this.n.cudaSetOptions(options);
  }

  deviceInfo(): CudaDeviceInfo {
    return this.n.cudaDeviceInfo();
  }

  /** The native functions, for benchmarks (timers, copy bandwidth). */
  get native(): CudaNative {
    return this.n;
  }

  private h(t: Tensor): number {
    const c = t as CudaTensor;
    if (c.released) throw new Error('cuda backend: tensor used after it was freed');
    return c.handle;
  }

  private wrap(handle: number, dtype: DTypeId, shape: readonly number[], perStep = true): CudaTensor {
    const t = new CudaTensor(handle, dtype, shape, perStep);
    if (perStep) this.perStep.push(t);
    return t;
  }

  loadWeight(loc: WeightLocation): Tensor {
    let m = this.mappings.get(loc.file);
    if (m === undefined) {
      m = this.n.cudaMapFile(loc.file);
      this.mappings.set(loc.file, m);
    }
    return this.wrap(this.n.cudaFromMapping(m, loc.offset, loc.dtype, loc.shape), loc.dtype, loc.shape, false);
  }

  /** Unmaps the model files once every weight is on the device (weights keep their copies). */
  releaseMappings(): void {
    for (const m of this.mappings.values()) this.n.cudaUnmapFile(m);
    this.mappings.clear();
  }

  constantF32(data: Float32Array, shape: number[]): Tensor {
    const h = this.n.cudaAlloc(DType.F32, shape, false);
    this.n.cudaUpload(h, data);
    return this.wrap(h, DType.F32, shape, false);
  }

  inputI32(data: Int32Array, shape: number[]): Tensor {
    const h = this.n.cudaAlloc(DType.I32, shape, true);
    this.n.cudaUpload(h, data);
    return this.wrap(h, DType.I32, shape);
  }

  zeros(dtype: DTypeId, shape: number[]): Tensor {
    return this.wrap(this.n.cudaAlloc(dtype, shape, false), dtype, shape, false);
  }

  /**
   * Overwrites an existing tensor's contents (same byte size), in stream order: how persistent
   * step buffers get new values before a captured graph replays over them.
   */
  write(t: Tensor, data: Float32Array | Int32Array): void {
    this.n.cudaUpload(this.h(t), data);
  }

  read(t: Tensor): Float32Array {
    const out = this.n.cudaDownload(this.h(t));
    if (!(out instanceof Float32Array)) throw new Error('cuda backend: read() takes F32 tensors');
    return out;
  }

  free(...ts: Tensor[]): void {
    for (const t of ts) {
      const c = t as CudaTensor;
      if (c.released) continue;
      this.n.cudaRelease(c.handle);
      c.released = true;
    }
  }

  endStep(): void {
    // One native call frees every per-step tensor; the wrappers only learn they are gone.
    for (const t of this.perStep) t.released = true;
    this.perStep = [];
    this.n.cudaReleaseScratch();
  }

  /** Live device tensors and pool bytes, for leak checks in tests. */
  stats(): CudaStats {
    return this.n.cudaStats();
  }

  embedding(table: Tensor, ids: Tensor): Tensor {
    return this.wrap(this.n.cudaOpEmbedding(this.h(table), this.h(ids)), DType.F32, [ids.shape[0] ?? 0, table.shape[1] ?? 0]);
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
    return this.wrap(this.n.cudaOpRmsNorm(this.h(x), this.h(weight), eps), DType.F32, x.shape);
  }

  matmul(x: Tensor, w: Tensor): Tensor {
    const k = w.shape[1] ?? 1;
    const m = x.shape.reduce((a, b) => a * b, 1) / k;
    return this.wrap(this.n.cudaOpMatmul(this.h(x), this.h(w)), DType.F32, [m, w.shape[0] ?? 0]);
  }

  rope(x: Tensor, positions: Tensor, invFreq: Tensor, headDim: number, rotDim: number, interleaved: boolean): void {
    this.n.cudaOpRope(this.h(x), this.h(positions), this.h(invFreq), headDim, rotDim, interleaved);
  }

  storeKv(kCache: Tensor, vCache: Tensor, k: Tensor, v: Tensor, slots: Tensor): void {
    this.n.cudaOpStoreKv(this.h(kCache), this.h(vCache), this.h(k), this.h(v), this.h(slots));
  }

  pagedAttention(q: Tensor, kCache: Tensor, vCache: Tensor, inp: AttentionInputs, numKvHeads: number, scale: number): Tensor {
    const h = this.n.cudaOpPagedAttention(this.h(q), this.h(kCache), this.h(vCache), this.h(inp.cuQ), this.h(inp.kvLens), this.h(inp.blockTables), numKvHeads, scale);
    return this.wrap(h, DType.F32, q.shape);
  }

  siluMul(gate: Tensor, up: Tensor): Tensor {
    return this.wrap(this.n.cudaOpSiluMul(this.h(gate), this.h(up)), DType.F32, gate.shape);
  }

  addInPlace(a: Tensor, b: Tensor): void {
    this.n.cudaOpAddInPlace(this.h(a), this.h(b));
  }

  gatherRows(x: Tensor, rows: Tensor): Tensor {
    const width = x.shape.slice(1).reduce((a, b) => a * b, 1);
    return this.wrap(this.n.cudaOpGatherRows(this.h(x), this.h(rows)), DType.F32, [rows.shape[0] ?? 0, width]);
  }
}
