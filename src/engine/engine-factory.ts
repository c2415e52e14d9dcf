// Builds a ready engine (weights, KV cache, model runner, scheduler) from options: used by the
// worker thread, and directly by tests and benchmarks that want no thread.
import { CpuBackend } from '../backend/cpu-backend.js';
import { CudaBackend } from '../backend/cuda-backend.js';
import type { HandleBackend } from '../backend/handle-backend.js';
import type { SequenceChunk } from '../models/forward-batch.js';
import { kvBytesPerToken, PagedKvCache } from '../models/kv-cache.js';
import { openModelFiles } from '../models/model-files.js';
import { createModel, type CausalLM } from '../models/registry.js';
import { EngineCore } from './engine-core.js';
import { DeviceMemoryLedger, describeDeviceMemory } from './device-memory.js';
import { GraphCaptureError, mixedTokenBuckets, ModelRunner, type ModelRunnerOptions } from './model-runner.js';
import type { EngineOptions, EngineReadyInfo } from './worker-protocol.js';

/** --cache_lens where none is given and no device memory sizes it. */
export const DEFAULT_CPU_CACHE_TOKENS = 32768;
export const DEFAULT_GPU_MEMORY_UTILIZATION = 0.9;

export function createEngine(opts: EngineOptions): { core: EngineCore; info: EngineReadyInfo; model: CausalLM } {
  const files = openModelFiles(opts.model);
  const backend: HandleBackend = opts.backend === 'cuda'
      ? new CudaBackend({ ...(opts.cudaPrecision ? { precision: opts.cudaPrecision } : {}), fusedOps: opts.cudaFusedOps ?? true })
      : new CpuBackend();
  const caps = backend.capabilities;
  const ledger = caps.memory ? new DeviceMemoryLedger(caps.memory, opts.gpuMemoryLimitBytes) : undefined;
  const model = createModel(files.config, backend, files.weights);
  ledger?.mark('weights');
  const kvDtype = opts.kvCacheDtype ?? 'f32';
  const graphs = caps.graphs !== undefined && opts.cudaGraphs !== false;
  const runnerOptions = {
    cudaGraphs: graphs,
    maxBatchSize: opts.maxBatchSize,
    mixedTokenBuckets: opts.cudaMixedGraphs ? mixedTokenBuckets(opts.chunkSize) : [],
  };
  const cacheTokens = opts.cacheTokens ?? (ledger ? kvTokensForMemory(model, opts, ledger, runnerOptions) : DEFAULT_CPU_CACHE_TOKENS);
  const numBlocks = Math.ceil(cacheTokens / opts.blockSize);
  const shape = { numLayers: files.config.numLayers, numBlocks, blockSize: opts.blockSize, layout: model.kvLayout };
  // The spare block takes graph padding rows' K/V; a backend without graphs never pads.
  const cache = new PagedKvCache(backend, shape, { spareBlock: caps.graphs !== undefined, dtype: kvDtype });
  ledger?.mark('kv');
  const runner = new ModelRunner(model, cache, runnerOptions);
  try {
    runner.captureGraphs();
  } catch (err) {
    if (!(err instanceof GraphCaptureError)) throw err;
    process.stderr.write(`ktserve: CUDA graphs disabled, every step runs eagerly: ${err.message}\n`);
  }
  ledger?.mark('graphs');
  const core = new EngineCore(
    model,
    cache,
    {
      chunkSize: opts.chunkSize,
      maxBatchSize: opts.maxBatchSize,
      maxQueue: opts.maxQueue,
      prefixCaching: opts.prefixCaching,
      cacheSalt: files.name,
      prefillFirst: opts.prefillFirst ?? false,
      ...(opts.overlap !== undefined ? { overlap: opts.overlap } : {}),
    },
    runner,
  );
  return {
    core,
    model,
    info: {
      kvBlocks: numBlocks,
      kvTokens: cache.tokens,
      kvBytes: cache.bytes,
      kvCacheDtype: cache.dtype,
      maxModelLen: files.config.maxPositions,
      vocabSize: files.config.vocabSize,
      backend: backend.name,
      device: backend.describeDevice(),
      cudaGraphs: runner.graphSizes,
      cudaMixedGraphTokens: runner.mixedGraphTokens,
      ...(ledger ? { memory: ledger.report() } : {}),
    },
  };
}

/**
 * KV tokens that fit in `gpuMemoryUtilization` of the device (or of --gpu_memory_limit) once the eager steps'
 * activations (a warm-up at a full prefill chunk, then max_batch_size decodes) and the CUDA graphs (a trial
 * capture over the warm-up's small cache) hold their memory. The pool keeps both for the real steps and the real
 * capture, so the free memory measured after them is what the cache may take.
 */
function kvTokensForMemory(
  model: CausalLM,
  opts: EngineOptions,
  ledger: DeviceMemoryLedger,
  runnerOptions: ModelRunnerOptions,
): number {
  const util = opts.gpuMemoryUtilization ?? DEFAULT_GPU_MEMORY_UTILIZATION;
  const bs = opts.blockSize;
  const chunk = Math.max(1, Math.min(opts.chunkSize, model.config.maxPositions));
  const chunkBlocks = Math.ceil(chunk / bs);
  const warm = new PagedKvCache(
    model.backend,
    { numLayers: model.config.numLayers, numBlocks: chunkBlocks + opts.maxBatchSize, blockSize: bs, layout: model.kvLayout },
    { spareBlock: true, dtype: opts.kvCacheDtype ?? 'f32' },
  );
  try {
    const blocks = (first: number, n: number) => Array.from({ length: n }, (_, i) => first + i);
    model.forward({ sequences: [{ cachedLen: 0, tokens: new Array<number>(chunk).fill(0), blockTable: blocks(0, chunkBlocks), wantLogits: true }] }, warm);
    const decodes: SequenceChunk[] = Array.from({ length: opts.maxBatchSize }, (_, i) => ({ cachedLen: 0, tokens: [0], blockTable: [chunkBlocks + i], wantLogits: true }));
    model.forward({ sequences: decodes }, warm);
    ledger.mark('activations');
    if (runnerOptions.cudaGraphs) {
      const trial = new ModelRunner(model, warm, runnerOptions);
      try {
        trial.captureGraphs();
      } catch (err) {
        // The real capture will fail the same way and say so; the cache is sized without graphs then.
        if (!(err instanceof GraphCaptureError)) throw err;
      } finally {
        trial.dispose();
      }
      ledger.mark('graphs');
    }
  } finally {
    warm.dispose();
  }
  const budget = ledger.kvBudget(util);
  const perToken = kvBytesPerToken(model.kvLayout, model.config.numLayers, opts.kvCacheDtype ?? 'f32');
  const tokens = Math.floor(budget / perToken / bs) * bs;
  if (tokens < bs) {
    const gib = (n: number) => (n / 2 ** 30).toFixed(1);
    throw new Error(
      `no device memory left for the KV cache: ${gib(ledger.free)} GiB free of ${gib(ledger.limit)} GiB with --gpu_memory_utilization ${util} ` +
        `(${describeDeviceMemory(ledger.report())}); raise it, lower --max_batch_size or --chunk_size, or pass --cache_lens`,
    );
  }
  return tokens;
}
