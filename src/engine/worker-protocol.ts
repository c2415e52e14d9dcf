// Messages between the HTTP thread and the engine worker thread.
import type { DeviceMemoryReport } from './device-memory.js';
import type { EngineEvent, EngineStats, GenerationRequest, RequestRejectedError, StepRecord } from './engine-api.js';
import type { ModelLocation } from '../models/model-files.js';

export interface EngineOptions {
  model: ModelLocation;
  /** Where the model runs (default cpu). */
  backend?: 'cpu' | 'cuda';
  /** KV cache size in tokens (--cache_lens); absent: CUDA fills gpuMemoryUtilization of the device, CPU takes 32768. */
  cacheTokens?: number | undefined;
  /** Fraction of device memory the process may hold when sizing the KV cache (default 0.9). */
  gpuMemoryUtilization?: number | undefined;
  /** All the server may hold on the GPU, in bytes (--gpu_memory_limit): the utilization applies to this. */
  gpuMemoryLimitBytes?: number | undefined;
  /** Replay CUDA graphs for decode steps (default true; CUDA only). */
  cudaGraphs?: boolean | undefined;
  /** KV cache element type (default f32; bf16 on the CUDA backend only). */
  kvCacheDtype?: 'f32' | 'bf16' | undefined;
  /** Graphs for mixed prefill+decode steps too, by token count up to chunkSize (default off until measured). */
  cudaMixedGraphs?: boolean | undefined;
  /** Fused CUDA kernels (CudaBackendOptions.fusedOps; default on: bit-identical, measured ~1 % faster decode). */
  cudaFusedOps?: boolean | undefined;
  /** CUDA matmul precision above the GEMV rows (default bf16; tests ask for f32 to compare with HF). */
  cudaPrecision?: 'f32' | 'bf16' | undefined;
  blockSize: number;
  chunkSize: number;
  maxBatchSize: number;
  maxQueue: number;
  prefixCaching: boolean;
  /** Hold decodes until no prompt is being read (benchmarks comparing with llama-batched-bench). */
  prefillFirst?: boolean | undefined;
  /** Plan each step while the device runs the previous one (EngineCoreConfig.overlap; default on CUDA). */
  overlap?: boolean | undefined;
}

export interface EngineReadyInfo {
  kvBlocks: number;
  kvTokens: number;
  kvBytes: number;
  kvCacheDtype: 'f32' | 'bf16';
  maxModelLen: number;
  vocabSize: number;
  backend: string;
  /** The compute device in words, e.g. "2 threads, avx512" or "NVIDIA H200". */
  device: string;
  /** Batch sizes with a captured CUDA graph (empty: every step runs eagerly). */
  cudaGraphs: number[];
  /** Token counts with a mixed prefill+decode graph. */
  cudaMixedGraphTokens: number[];
  /** CUDA: what each part took at start-up. */
  memory?: DeviceMemoryReport;
}

export type ToWorker =
  | { type: 'submit'; req: GenerationRequest }
  | { type: 'abort'; id: string }
  | { type: 'shutdown' };

export type FromWorker =
  | { type: 'ready'; info: EngineReadyInfo }
  | { type: 'loadError'; message: string }
  | { type: 'admitted'; id: string; stats: EngineStats }
  | { type: 'rejected'; id: string; kind: RequestRejectedError['kind']; message: string }
  /** `steps`: the steps launched since the last step message (with overlap, the next one; none when only an abort ended). */
  | { type: 'step'; events: EngineEvent[]; stats: EngineStats; stepMs: number; steps: StepRecord[] }
  | { type: 'stopped' };
