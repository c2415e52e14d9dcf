// Builds a ready engine (weights, KV cache, scheduler) from options: used by the worker
// thread, and directly by tests and benchmarks that want no thread.
import { CpuBackend } from '../backend/cpu-backend.js';
import { CudaBackend } from '../backend/cuda-backend.js';
import type { HandleBackend } from '../backend/handle-backend.js';
import { PagedKvCache } from '../models/kv-cache.js';
import { openModelFiles } from '../models/model-files.js';
import { createModel } from '../models/registry.js';
import { EngineCore } from './engine-core.js';
import type { EngineOptions, EngineReadyInfo } from './worker-protocol.js';

export function createEngine(opts: EngineOptions): { core: EngineCore; info: EngineReadyInfo } {
  const files = openModelFiles(opts.model);
  const backend: HandleBackend = opts.backend === 'cuda' ? new CudaBackend() : new CpuBackend();
  const model = createModel(files.config, backend, files.weights);
  const numBlocks = Math.ceil(opts.cacheTokens / opts.blockSize);
  const cache = new PagedKvCache(backend, { numLayers: files.config.numLayers, numBlocks, blockSize: opts.blockSize, width: model.kvWidth });
  const core = new EngineCore(model, cache, {
    chunkSize: opts.chunkSize,
    maxBatchSize: opts.maxBatchSize,
    maxQueue: opts.maxQueue,
    prefixCaching: opts.prefixCaching,
    cacheSalt: files.name,
  });
  return {
    core,
    info: {
      kvBlocks: numBlocks,
      kvTokens: cache.tokens,
      kvBytes: cache.bytes,
      maxModelLen: files.config.maxPositions,
      vocabSize: files.config.vocabSize,
      backend: backend.name,
      device: backend.describeDevice(),
    },
  };
}
