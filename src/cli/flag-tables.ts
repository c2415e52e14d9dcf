// The flags of `generate` and `serve`, in their --help order, under KTransformers' names where it has one
// (ktransformers/server/args.py) and with the same meaning. A module of its own so tests can parse against them.
import type { FlagSpec } from './args.js';
import { ktUnsupportedFlags } from './ktransformers-flags.js';
import { LOG_LEVELS } from './serve-command.js';

const modelFlags = [
  { name: 'model', type: 'string', help: 'a GGUF file (config and tokenizer from its metadata)', short: 'm' },
  {
    name: 'model_path',
    type: 'string',
    help: 'Hugging Face model directory (config.json, tokenizer files, maybe safetensors)',
    aliases: ['model_dir'],
  },
  { name: 'gguf_path', type: 'string', help: 'GGUF weights: a file, the first of split files, or a directory' },
  { name: 'demo', type: 'bool', help: 'use the built-in demo model (a 6.6M-parameter toy, models/ktserve-demo.gguf)' },
] as const satisfies readonly FlagSpec[];

const cpuInfer = {
  name: 'cpu_infer',
  type: 'int',
  help: 'CPU threads for the native kernels (default: every core, or $KT_NUM_THREADS)',
  min: 1,
  max: 4096,
} as const satisfies FlagSpec;

export const generateFlags = [
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
  cpuInfer,
] as const satisfies readonly FlagSpec[];

export const serveFlags = [
  ...modelFlags,
  { name: 'host', type: 'string', help: 'address to listen on', default: '127.0.0.1' },
  { name: 'port', type: 'int', help: 'port to listen on (0: any free port)', default: 10002, min: 0, max: 65535 },
  { name: 'optimize_config_path', type: 'string', help: 'KTransformers placement rules (YAML) for hybrid MoE models' },
  { name: 'max_new_tokens', type: 'int', help: 'upper bound of max_tokens per request', default: 2048, min: 1 },
  { name: 'cache_lens', type: 'int', help: 'KV cache size in tokens, shared by all requests (default: CPU 32768; CUDA fills --gpu_memory_utilization)', min: 1 },
  { name: 'gpu_memory_utilization', type: 'float', help: 'fraction of GPU memory to hold when --cache_lens is not given', default: 0.9, min: 0.05, max: 1 },
  { name: 'gpu_memory_limit', type: 'float', help: 'GiB the server may hold on the GPU in all (weights, activations, graphs, KV); --gpu_memory_utilization applies to it (default: the whole card)', min: 0.1 },
  {
    name: 'use_cuda_graph',
    type: 'bool',
    help: 'replay CUDA graphs for decode steps (--no-use_cuda_graph or --no_cuda_graph: run every step eagerly)',
    default: true,
    aliases: ['cuda_graph'],
  },
  { name: 'no_overlap', type: 'bool', help: 'CUDA: plan each step only after the previous one is read (default: planned while it runs)' },
  { name: 'kv_cache_dtype', type: 'string', help: 'KV cache element type: auto (bf16 on CUDA: half the memory and attention reads; f32 on the CPU), f32 or bf16', default: 'auto', choices: ['auto', 'f32', 'bf16'] },
  { name: 'chunk_size', type: 'int', help: 'tokens per engine step (chunked prefill budget)', default: 512, min: 1 },
  { name: 'max_batch_size', type: 'int', help: 'sequences per engine step', default: 32, min: 1 },
  { name: 'backend_type', type: 'string', help: 'balance_serve (continuous batching) or ktransformers (one request at a time)', default: 'balance_serve', choices: ['balance_serve', 'ktransformers'] },
  { name: 'force_think', type: 'bool', help: 'open the assistant turn with <think> and return thinking as reasoning_content' },
  cpuInfer,
  { name: 'temperature', type: 'float', help: 'sampling temperature of requests that set none (default: 1 on /v1, 0.8 on /api)', min: 0, max: 2 },
  { name: 'top_p', type: 'float', help: 'top_p of requests that set none, in (0, 1] (default: 1 on /v1, 0.9 on /api)', min: 0, max: 1 },
  { name: 'api_key', type: 'string', help: 'require "Authorization: Bearer <key>" on /v1 and /api routes' },
  { name: 'api_key_file', type: 'string', help: "more accepted keys, one per line (# comments); each key's requests get prefix-cache entries of their own" },
  { name: 'block_size', type: 'int', help: 'tokens per KV block', default: 16, min: 1, max: 1024, aliases: ['page_size'] },
  { name: 'max_queue', type: 'int', help: 'waiting requests before new ones get 503 (each choice of a request counts as one)', default: 1024, min: 1 },
  { name: 'max_choices_per_request', type: 'int', help: 'most choices (prompts × n) one request may ask for; more get a 400 (default: --max_batch_size, at most --max_queue)', min: 1 },
  { name: 'served_model_name', type: 'string', help: 'model name reported by /v1/models (default: the model\'s own)', aliases: ['model_name'] },
  { name: 'allowed_origins', type: 'string', help: 'comma-separated origins whose web pages may call the API; * = any, *.example.com-style wildcards (default: localhost pages only, as Ollama)' },
  { name: 'shutdown_timeout', type: 'float', help: 'seconds requests in flight get to finish on SIGTERM/SIGINT before they are ended with an error', default: 10, min: 0 },
  { name: 'backend', type: 'string', help: 'where the model runs: auto (cuda where a GPU build sees a device, else cpu), cpu, cuda', default: 'auto', choices: ['auto', 'cpu', 'cuda'] },
  { name: 'prefix_cache', type: 'bool', help: 'reuse KV blocks of shared prompt prefixes (--no-prefix_cache to disable)', default: true },
  { name: 'web', type: 'bool', help: 'serve the web chat UI at / (on by default, as llama-server; --no-web turns it off)', default: true },
  { name: 'log_level', type: 'string', help: 'least severe log events written (crit = fatal, as KTransformers names it)', default: 'info', choices: [...LOG_LEVELS, 'crit'] },
  { name: 'log_format', type: 'string', help: 'text lines or one JSON object per line', default: 'text', choices: ['text', 'json'] },
  ...ktUnsupportedFlags,
] as const satisfies readonly FlagSpec[];
