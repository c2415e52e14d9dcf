// `ktserve serve`: the OpenAI/Ollama HTTP server over the engine worker, with KTransformers' flags.
import { readFileSync, statSync } from 'node:fs';
import { describeDeviceMemory } from '../engine/device-memory.js';
import { WorkerEngineClient } from '../engine/worker-client.js';
import type { EngineOptions } from '../engine/worker-protocol.js';
import { ensureDemoModel } from '../models/demo-model.js';
import { openModelFiles, type ModelLocation } from '../models/model-files.js';
import { buildServer } from '../server/app.js';
import { loggerOptions } from '../server/logging.js';
import { UsageError } from './args.js';

export interface ServeFlags {
  host: string;
  port: number;
  model?: string | undefined;
  modelPath?: string | undefined;
  ggufPath?: string | undefined;
  demo: boolean;
  optimizeConfigPath?: string | undefined;
  maxNewTokens: number;
  cacheLens?: number | undefined;
  gpuMemoryUtilization: number;
  /** GiB the server may hold on the GPU in all (--gpu_memory_limit); undefined: the whole card. */
  gpuMemoryLimit?: number | undefined;
  cudaGraphs: boolean;
  /** false: no planning of a step while the previous one runs (undefined: the engine's default). */
  overlap?: boolean | undefined;
  kvCacheDtype: 'f32' | 'bf16';
  chunkSize: number;
  maxBatchSize: number;
  backendType: 'balance_serve' | 'ktransformers';
  forceThink: boolean;
  apiKey?: string | undefined;
  /** A file of more accepted keys, one per line. */
  apiKeyFile?: string | undefined;
  /** Origins whose web pages may call the API (--allowed_origins; undefined: localhost pages). */
  allowedOrigins?: string[] | undefined;
  /** Seconds requests in flight get to finish after SIGTERM/SIGINT (--shutdown_timeout). */
  shutdownTimeout: number;
  blockSize: number;
  maxQueue: number;
  /** undefined: --max_batch_size (a request's choices fit one step's batch), at most maxQueue. */
  maxChoicesPerRequest?: number | undefined;
  servedModelName?: string | undefined;
  prefixCache: boolean;
  backend: 'cpu' | 'cuda';
}

/** Refuses flag combinations that cannot work, naming the flag and why. */
export function checkServeFlags(f: ServeFlags): void {
  if (f.maxChoicesPerRequest !== undefined && f.maxChoicesPerRequest > f.maxQueue) {
    throw new UsageError(`--max_choices_per_request ${f.maxChoicesPerRequest} exceeds --max_queue ${f.maxQueue}: such requests could never be queued`);
  }
  if (f.cacheLens === undefined) return checkOptimizeConfig(f);
  if (f.cacheLens < f.blockSize) throw new UsageError(`--cache_lens ${f.cacheLens} is smaller than one KV block (--block_size ${f.blockSize})`);
  if (f.cacheLens < f.maxNewTokens + 1) {
    throw new UsageError(
      `--cache_lens ${f.cacheLens} is smaller than one request can need: a 1-token prompt plus --max_new_tokens ${f.maxNewTokens}; raise --cache_lens or lower --max_new_tokens`,
    );
  }
  checkOptimizeConfig(f);
}

function checkOptimizeConfig(f: ServeFlags): void {
  if (f.optimizeConfigPath !== undefined) {
    throw new UsageError(`--optimize_config_path ${f.optimizeConfigPath}: placement rules apply to hybrid CPU/GPU MoE models, which this build does not run yet`);
  }
}

/**
 * Choices one request may ask for. By default one step's batch: vLLM bounds n only loosely and OpenAI at 128, but
 * beyond the batch a request's choices queue behind each other, and it holds the engine for several rounds.
 */
function maxChoicesPerRequest(f: ServeFlags): number {
  return f.maxChoicesPerRequest ?? Math.min(f.maxBatchSize, f.maxQueue);
}

/** --api_key_file: one key per line; blank lines and lines starting with # are skipped. */
export function readApiKeyFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--api_key_file ${path}: ${(e as Error).message}`);
  }
  const keys = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  if (keys.length === 0) throw new UsageError(`--api_key_file ${path} holds no key (one per line; # starts a comment)`);
  return keys;
}

async function modelLocation(f: ServeFlags): Promise<ModelLocation> {
  if (f.demo || (f.model === undefined && f.modelPath === undefined && f.ggufPath === undefined)) {
    const path = await ensureDemoModel();
    process.stderr.write(`ktserve: ${f.demo ? '' : 'no model given, '}serving the built-in demo model ${path}\n`);
    return { ggufPath: path };
  }
  return { modelPath: f.modelPath, ggufPath: f.ggufPath ?? f.model };
}

export async function runServe(f: ServeFlags): Promise<void> {
  checkServeFlags(f);
  const apiKeys = f.apiKeyFile === undefined ? undefined : readApiKeyFile(f.apiKeyFile);
  const location = await modelLocation(f);
  const files = openModelFiles(location);
  // KTransformers' single-request mode: one sequence at a time.
  const maxBatchSize = f.backendType === 'ktransformers' ? 1 : f.maxBatchSize;
  const engineOpts: EngineOptions = {
    model: location,
    cacheTokens: f.cacheLens === undefined ? undefined : Math.ceil(f.cacheLens / f.blockSize) * f.blockSize,
    gpuMemoryUtilization: f.gpuMemoryUtilization,
    gpuMemoryLimitBytes: f.gpuMemoryLimit === undefined ? undefined : Math.floor(f.gpuMemoryLimit * 2 ** 30),
    cudaGraphs: f.cudaGraphs,
    overlap: f.overlap,
    kvCacheDtype: f.kvCacheDtype,
    blockSize: f.blockSize,
    chunkSize: f.chunkSize,
    maxBatchSize,
    maxQueue: f.maxQueue,
    prefixCaching: f.prefixCache,
    backend: f.backend,
  };
  const t0 = performance.now();
  const engine = await WorkerEngineClient.start(engineOpts);
  const info = engine.info;
  const mb = (info.kvBytes / 2 ** 20).toFixed(1);
  process.stderr.write(
    `ktserve: loaded ${files.name} (${files.config.architecture}, ${files.config.numLayers} layers) in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${info.device}\n` +
      `ktserve: KV cache ${info.kvTokens} tokens (${info.kvBlocks} blocks of ${f.blockSize}, ${f.kvCacheDtype}), ${mb} MiB; chunk_size ${f.chunkSize}, max_batch_size ${maxBatchSize}\n` +
      (info.cudaGraphs.length > 0 ? `ktserve: CUDA graphs for decode batches of ${info.cudaGraphs.join(', ')}\n` : '') +
      (info.memory ? `ktserve: GPU memory: ${describeDeviceMemory(info.memory)}\n` : ''),
  );
  const weightFile = location.ggufPath ?? location.modelPath;
  const app = buildServer({
    engine,
    tokenizer: files.tokenizer,
    chatTemplate: files.chatTemplate,
    modelName: f.servedModelName ?? files.name,
    maxModelLen: Math.min(files.config.maxPositions, info.kvTokens),
    maxNewTokens: f.maxNewTokens,
    apiKey: f.apiKey,
    apiKeys,
    forceThink: f.forceThink,
    maxQueue: f.maxQueue,
    maxChoicesPerRequest: maxChoicesPerRequest(f),
    allowedOrigins: f.allowedOrigins,
    logger: loggerOptions({ level: 'info', format: 'text' }),
    statusLogIntervalMs: 10_000,
    model: {
      format: location.ggufPath ? 'gguf' : 'safetensors',
      family: files.config.architecture,
      ...files.summary,
      modifiedAt: weightFile ? statSync(weightFile).mtime : undefined,
    },
  });
  await app.listen({ host: f.host, port: f.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : f.port;
  process.stderr.write(`ktserve: listening on http://${f.host}:${port} (OpenAI /v1, Ollama /api, /health, /metrics)\n`);

  let closing = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (closing) return;
    closing = true;
    const graceMs = f.shutdownTimeout * 1000;
    process.stderr.write(`ktserve: ${signal}: stopping; requests in flight get ${f.shutdownTimeout} s to finish\n`);
    // Listening stops now; requests on open connections get a 503 while the ones in flight finish.
    const closed = app.close();
    const { cut } = await app.ktserve.drain(graceMs);
    if (cut > 0) process.stderr.write(`ktserve: ${cut} request(s) still running after ${f.shutdownTimeout} s were ended with an error event / 503\n`);
    // Connections that went idle after their last answer would otherwise hold close() until keep-alive expires.
    app.server.closeIdleConnections();
    const late = setTimeout(() => app.server.closeAllConnections(), 2000);
    await closed;
    clearTimeout(late);
    await engine.shutdown();
    process.stderr.write('ktserve: stopped\n');
    // An orchestrated stop is not a failure, cut requests or not: they were told, and the count is logged above.
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}
