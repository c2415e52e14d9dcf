// Server-wide options of buildServer, their defaults, and the per-model facts every route reads.
import type { FastifyServerOptions } from 'fastify';
import type { EngineClient } from '../engine/engine-api.js';
import { EncodeWorkerPool, SpecialTexts, type ChatTemplate, type Tokenizer } from '../tokenizer/index.js';
import { DEFAULT_ALLOWED_ORIGINS } from './cors.js';

/** What Ollama's /api/tags and /api/show report about the model (all optional; unknown fields are left empty). */
export interface ModelDescription {
  /** e.g. 'gguf', 'safetensors'. */
  format?: string;
  /** e.g. 'llama', 'qwen3', 'deepseek2'. */
  family?: string;
  /** Parameters in the weights (every tensor's elements); Ollama's `parameter_size` is written from it. */
  parameterCount?: number;
  /** e.g. '7B': overrides the size written from parameterCount. */
  parameterSize?: string;
  /** e.g. 'Q4_K_M', 'F16'. */
  quantization?: string;
  /** Bytes of the weight files. */
  sizeBytes?: number;
  /** When the model files were written (mtime), for `modified_at` / `created`. */
  modifiedAt?: Date;
}

export interface ServerOptions {
  engine: EngineClient;
  /** May be a getter (as may chatTemplate): the server reads it on first use, not when it is built. */
  tokenizer: Tokenizer;
  /** The model's chat template; without one, chat routes fall back to a plain "role: content" transcript. */
  chatTemplate: ChatTemplate | undefined;
  /** The name /v1/models and responses report (--served_model_name). Requests may name any model. */
  modelName: string;
  /**
   * The context length: prompt + completion tokens of one request. The server holds requests to the smaller of
   * this and the engine's maxSequenceTokens (known once its model is loaded).
   */
  maxModelLen: number;
  /** Upper bound of max_tokens (--max_new_tokens); requests asking for more are clamped to it. */
  maxNewTokens: number;
  /** When set, /v1/* and /api/* need `Authorization: Bearer <apiKey>`; /health, /metrics, /version stay open. */
  apiKey?: string | undefined;
  /**
   * More accepted keys (--api_key_file), beside apiKey. Each key's requests have prefix-cache entries of their
   * own: a tenant never hits (nor times) another's cached prompt, at the cost of no prefix sharing across keys.
   */
  apiKeys?: readonly string[] | undefined;
  /** R1-style models: the assistant turn starts with `<think>\n`, and text up to `</think>` is reasoning. */
  forceThink: boolean;
  /**
   * Sampling defaults for requests that set none (--temperature, --top_p, as KTransformers' server flags); they
   * replace the built-in defaults of both APIs (OpenAI's temperature 1 and top_p 1, Ollama's 0.8 and 0.9).
   */
  samplingDefaults?: SamplingDefaults | undefined;
  /** When set, a request gets a 503 while its choices don't fit beside the engine's waiting requests. */
  maxQueue?: number | undefined;
  /** Most choices (prompts × n) one request may ask for (default 128, OpenAI's bound on n); more → 400. */
  maxChoicesPerRequest?: number | undefined;
  /** Largest request body in bytes (default 16 MiB); larger bodies get a 413. */
  bodyLimit?: number | undefined;
  /** Origins whose pages may call the server from a browser (--allowed_origins; default: localhost pages). */
  allowedOrigins?: readonly string[] | undefined;
  /** Milliseconds to receive a whole request, headers and body (default 60 s); slower requests get a 408. */
  requestTimeoutMs?: number | undefined;
  /**
   * Log the engine's status line (throughput, queue, KV usage, prefix hits) this often while it is busy, at info
   * level through the server's logger (default: never).
   */
  statusLogIntervalMs?: number | undefined;
  /** Serve the web chat UI at / (--web; default true). */
  webUi?: boolean | undefined;
  /** Fastify's logger option (default off). */
  logger?: FastifyServerOptions['logger'];
  /** For Ollama's /api/tags and /api/show. */
  model?: ModelDescription | undefined;
  /** Reported by GET /api/version and /version. */
  version?: string | undefined;
  /**
   * Worker threads that tokenize long prompts off the event loop (default 2, started on first use); 0 tokenizes
   * everything inline. Only for a tokenizer that can be built again from its files (Tokenizer.source).
   */
  tokenizerWorkers?: number | undefined;
}

/** Server-wide sampling defaults; each applies where a request leaves its field out. */
export interface SamplingDefaults {
  temperature?: number | undefined;
  topP?: number | undefined;
}

export const DEFAULT_TOKENIZER_WORKERS = 2;

export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_CHOICES_PER_REQUEST = 128;

/** The options routes read, with defaults filled and the values checked once. */
export interface ServerContext extends ServerOptions {
  /** Every accepted key (apiKey and apiKeys), without repeats; empty: no key needed. */
  apiKeys: readonly string[];
  maxChoicesPerRequest: number;
  bodyLimit: number;
  allowedOrigins: readonly string[];
  requestTimeoutMs: number;
  version: string;
  model: ModelDescription;
  /** Seconds since the epoch when the server was built, for `created` fields. */
  startedAt: number;
  /** The tokenizer's special-token texts, to keep them out of client text in chat prompts. */
  readonly specialTexts: SpecialTexts;
  /** Where long prompts are tokenized; undefined: inline. Made on first use, closed with the server. */
  readonly encodeWorkers: EncodeWorkerPool | undefined;
  /** Closes the encode workers, if any were made. */
  closeEncodeWorkers(): Promise<void>;
}

function encodePool(source: Tokenizer['source'], workers: number): EncodeWorkerPool | undefined {
  return source !== undefined && workers > 0 ? new EncodeWorkerPool(source, workers) : undefined;
}

export function resolveOptions(opts: ServerOptions): ServerContext {
  if (!Number.isInteger(opts.maxModelLen) || opts.maxModelLen < 2) {
    throw new RangeError(`maxModelLen must be an integer ≥ 2, got ${opts.maxModelLen}`);
  }
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) {
    throw new RangeError(`maxNewTokens must be a positive integer, got ${opts.maxNewTokens}`);
  }
  if (opts.apiKey !== undefined && opts.apiKey === '') throw new RangeError('apiKey must not be empty');
  const apiKeys = [...new Set([...(opts.apiKey === undefined ? [] : [opts.apiKey]), ...(opts.apiKeys ?? [])])];
  if (apiKeys.includes('')) throw new RangeError('apiKeys must not hold an empty key');
  const maxChoices = opts.maxChoicesPerRequest ?? DEFAULT_MAX_CHOICES_PER_REQUEST;
  if (!Number.isInteger(maxChoices) || maxChoices < 1) {
    throw new RangeError(`maxChoicesPerRequest must be a positive integer, got ${opts.maxChoicesPerRequest}`);
  }
  const workers = opts.tokenizerWorkers ?? DEFAULT_TOKENIZER_WORKERS;
  if (!Number.isInteger(workers) || workers < 0) throw new RangeError(`tokenizerWorkers must be an integer ≥ 0, got ${workers}`);
  const engine = opts.engine;
  let special: SpecialTexts | undefined;
  let pool: { value: EncodeWorkerPool | undefined } | undefined;
  // The options are copied with their accessors, where a spread would read them: a tokenizer or chat template
  // handed in as a getter stays unbuilt until first use (the CLI binds its port before a 150k vocabulary is built).
  const ctx = Object.defineProperties({}, Object.getOwnPropertyDescriptors(opts)) as ServerContext;
  Object.assign(ctx, {
    apiKeys,
    maxChoicesPerRequest: maxChoices,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    allowedOrigins: opts.allowedOrigins ?? DEFAULT_ALLOWED_ORIGINS,
    requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    version: opts.version ?? '0.1.0',
    model: opts.model ?? {},
    startedAt: Math.floor(Date.now() / 1000),
  });
  return Object.defineProperties(ctx, {
    // An engine that is still loading learns its KV cache's size only once loaded.
    maxModelLen: { enumerable: true, get: () => Math.min(opts.maxModelLen, engine.maxSequenceTokens ?? Infinity) },
    specialTexts: { enumerable: true, get: () => (special ??= SpecialTexts.of(ctx.tokenizer)) },
    encodeWorkers: {
      enumerable: true,
      get: () => (pool ??= { value: encodePool(ctx.tokenizer.source, workers) }).value,
    },
    closeEncodeWorkers: { value: async () => pool?.value?.close() },
  });
}
