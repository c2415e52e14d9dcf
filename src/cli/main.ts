#!/usr/bin/env node
// The ktserve command line: `ktserve <command> [flags]`.
import { runGenerate } from './generate-command.js';
import { runServe } from './serve-command.js';
import { cudaAvailable } from '../backend/cuda-backend.js';
import { runBenchServe } from './bench-command.js';
import { runBenchEngine } from './bench-engine-command.js';
import { runMakeModel } from './make-model-command.js';
import { HelpRequested, kvDtypeFor, parseFlags, UsageError, type FlagSpec } from './args.js';

/** --backend auto: the GPU where this build can use one. */
function pickBackend(flag: string): 'cpu' | 'cuda' {
  if (flag === 'auto') return cudaAvailable() ? 'cuda' : 'cpu';
  return flag === 'cuda' ? 'cuda' : 'cpu';
}

const modelFlags = [
  { name: 'model', type: 'string', help: 'a GGUF file (config and tokenizer from its metadata)', short: 'm' },
  { name: 'model_path', type: 'string', help: 'Hugging Face model directory (config.json, tokenizer files, maybe safetensors)' },
  { name: 'gguf_path', type: 'string', help: 'GGUF weights: a file, the first of split files, or a directory' },
  { name: 'demo', type: 'bool', help: 'use the built-in demo model' },
] as const satisfies readonly FlagSpec[];

const generateFlags = [
  ...modelFlags,
  { name: 'prompt', type: 'string', help: 'the prompt text', required: true, short: 'p' },
  { name: 'chat', type: 'bool', help: "wrap the prompt in the model's chat template as a user turn" },
  { name: 'system', type: 'string', help: 'system message, with --chat' },
  { name: 'max_new_tokens', type: 'int', help: 'tokens to generate at most', default: 64, min: 1 },
  { name: 'temperature', type: 'float', help: '0 = greedy (default 0.8)', min: 0 },
  { name: 'top_p', type: 'float', help: 'nucleus sampling mass (default 0.95)', min: 0, max: 1 },
  { name: 'top_k', type: 'int', help: 'keep the k most likely tokens; 0 = off (default 40)', min: -1 },
  { name: 'min_p', type: 'float', help: 'drop tokens below min_p × the top probability (default 0.05)', min: 0, max: 1 },
  { name: 'repetition_penalty', type: 'float', help: 'HF-style repetition penalty (default 1 = off)', min: 0 },
  { name: 'seed', type: 'int', help: 'random seed; the same seed gives the same output' },
  { name: 'ignore_eos', type: 'bool', help: 'generate all max_new_tokens, ignoring end-of-sequence tokens' },
  { name: 'output', type: 'string', help: 'text (streamed) or json ({prompt_ids, ids, text})', default: 'text', choices: ['text', 'json'] },
  { name: 'chunk_size', type: 'int', help: 'prompt tokens per forward pass (chunked prefill)', default: 512, min: 1 },
] as const satisfies readonly FlagSpec[];

const serveFlags = [
  ...modelFlags,
  { name: 'host', type: 'string', help: 'address to listen on', default: '127.0.0.1' },
  { name: 'port', type: 'int', help: 'port to listen on (0: any free port)', default: 10002, min: 0, max: 65535 },
  { name: 'optimize_config_path', type: 'string', help: 'KTransformers placement rules (YAML) for hybrid MoE models' },
  { name: 'max_new_tokens', type: 'int', help: 'upper bound of max_tokens per request', default: 2048, min: 1 },
  { name: 'cache_lens', type: 'int', help: 'KV cache size in tokens, shared by all requests (default: CPU 32768; CUDA fills --gpu_memory_utilization)', min: 1 },
  { name: 'gpu_memory_utilization', type: 'float', help: 'fraction of GPU memory to hold when --cache_lens is not given', default: 0.9, min: 0.05, max: 1 },
  { name: 'gpu_memory_limit', type: 'float', help: 'GiB the server may hold on the GPU in all (weights, activations, graphs, KV); --gpu_memory_utilization applies to it (default: the whole card)', min: 0.1 },
  { name: 'no_cuda_graph', type: 'bool', help: 'run every step eagerly (no CUDA graphs for decode steps)' },
  { name: 'no_overlap', type: 'bool', help: 'CUDA: plan each step only after the previous one is read (default: planned while it runs)' },
  { name: 'kv_cache_dtype', type: 'string', help: 'KV cache element type: auto (bf16 on CUDA: half the memory and attention reads; f32 on the CPU), f32 or bf16', default: 'auto', choices: ['auto', 'f32', 'bf16'] },
  { name: 'chunk_size', type: 'int', help: 'tokens per engine step (chunked prefill budget)', default: 512, min: 1 },
  { name: 'max_batch_size', type: 'int', help: 'sequences per engine step', default: 32, min: 1 },
  { name: 'backend_type', type: 'string', help: 'balance_serve (continuous batching) or ktransformers (one request at a time)', default: 'balance_serve', choices: ['balance_serve', 'ktransformers'] },
  { name: 'force_think', type: 'bool', help: 'open the assistant turn with <think> and return thinking as reasoning_content' },
  { name: 'api_key', type: 'string', help: 'require "Authorization: Bearer <key>" on /v1 and /api routes' },
  { name: 'api_key_file', type: 'string', help: "more accepted keys, one per line (# comments); each key's requests get prefix-cache entries of their own" },
  { name: 'block_size', type: 'int', help: 'tokens per KV block', default: 16, min: 1, max: 1024, aliases: ['page_size'] },
  { name: 'max_queue', type: 'int', help: 'waiting requests before new ones get 503 (each choice of a request counts as one)', default: 1024, min: 1 },
  { name: 'max_choices_per_request', type: 'int', help: 'most choices (prompts × n) one request may ask for; more get a 400 (default: --max_batch_size, at most --max_queue)', min: 1 },
  { name: 'served_model_name', type: 'string', help: 'model name reported by /v1/models' },
  { name: 'allowed_origins', type: 'string', help: 'comma-separated origins whose web pages may call the API; * = any, *.example.com-style wildcards (default: localhost pages only, as Ollama)' },
  { name: 'shutdown_timeout', type: 'float', help: 'seconds requests in flight get to finish on SIGTERM/SIGINT before they are ended with an error', default: 10, min: 0 },
  { name: 'backend', type: 'string', help: 'where the model runs: auto (cuda where a GPU build sees a device, else cpu), cpu, cuda', default: 'auto', choices: ['auto', 'cpu', 'cuda'] },
  { name: 'prefix_cache', type: 'bool', help: 'reuse KV blocks of shared prompt prefixes (--no-prefix_cache to disable)', default: true },
] as const satisfies readonly FlagSpec[];

const commands: Record<string, { help: string; run: (argv: string[]) => Promise<void> }> = {
  generate: {
    help: 'generate text from one prompt',
    run: async (argv) => {
      const f = parseFlags(argv, generateFlags, { command: 'ktserve generate', description: commands['generate']!.help });
      if (!f.demo && f.model === undefined && f.model_path === undefined && f.gguf_path === undefined) {
        throw new UsageError('no model given: pass --model <file.gguf>, --model_path <dir> [--gguf_path <file>], or --demo');
      }
      await runGenerate({
        model: f.model,
        modelPath: f.model_path,
        ggufPath: f.gguf_path,
        demo: f.demo,
        prompt: f.prompt,
        chat: f.chat,
        system: f.system,
        maxNewTokens: f.max_new_tokens,
        temperature: f.temperature,
        topP: f.top_p,
        topK: f.top_k,
        minP: f.min_p,
        repetitionPenalty: f.repetition_penalty,
        seed: f.seed,
        ignoreEos: f.ignore_eos,
        output: f.output === 'json' ? 'json' : 'text',
        chunkSize: f.chunk_size,
      });
    },
  },
  serve: {
    help: 'serve the OpenAI- and Ollama-compatible HTTP API',
    run: async (argv) => {
      const f = parseFlags(argv, serveFlags, { command: 'ktserve serve', description: commands['serve']!.help });
      const backend = pickBackend(f.backend);
      await runServe({
        host: f.host,
        port: f.port,
        model: f.model,
        modelPath: f.model_path,
        ggufPath: f.gguf_path,
        demo: f.demo,
        optimizeConfigPath: f.optimize_config_path,
        maxNewTokens: f.max_new_tokens,
        cacheLens: f.cache_lens,
        gpuMemoryUtilization: f.gpu_memory_utilization,
        gpuMemoryLimit: f.gpu_memory_limit,
        cudaGraphs: !f.no_cuda_graph,
        overlap: f.no_overlap ? false : undefined,
        kvCacheDtype: kvDtypeFor(f.kv_cache_dtype, backend),
        chunkSize: f.chunk_size,
        maxBatchSize: f.max_batch_size,
        backendType: f.backend_type === 'ktransformers' ? 'ktransformers' : 'balance_serve',
        forceThink: f.force_think,
        apiKey: f.api_key,
        apiKeyFile: f.api_key_file,
        blockSize: f.block_size,
        maxQueue: f.max_queue,
        maxChoicesPerRequest: f.max_choices_per_request,
        allowedOrigins: f.allowed_origins?.split(',').map((o) => o.trim()).filter((o) => o !== ''),
        shutdownTimeout: f.shutdown_timeout,
        servedModelName: f.served_model_name,
        prefixCache: f.prefix_cache,
        backend,
      });
    },
  },
  bench: {
    help: 'benchmarks: `bench serve` drives any OpenAI-compatible server, `bench engine` the engine alone',
    run: async (argv) => {
      const [sub, ...rest] = argv;
      if (sub === 'serve') return runBenchServe(rest);
      if (sub === 'engine') return runBenchEngine(rest);
      throw new UsageError(`bench: unknown benchmark "${sub ?? ''}" (available: serve, engine)`);
    },
  },
  'make-model': {
    help: 'write a random-weight model in a real architecture and shape (GGUF or safetensors)',
    run: (argv) => runMakeModel(argv),
  },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)}${c.help}`);
  return `usage: ktserve <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\n'ktserve <command> --help' lists a command's flags.\n`;
}

/** Resolves to an exit code, or undefined to let the process run on (a server). */
async function main(argv: string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`ktserve: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    await command.run(rest);
    return undefined;
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(err.text);
      return 0;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`ktserve ${name}: ${err.message}\n`);
      return 2;
    }
    const e = err as Error;
    process.stderr.write(`ktserve ${name}: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}\n`);
    if (process.env.KT_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
