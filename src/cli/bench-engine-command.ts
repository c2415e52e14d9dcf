// `ktserve bench engine`: flags → batched prefill/decode throughput of the engine (no HTTP), printed as
// llama-batched-bench's table row by row, and written as JSON with --out.
import { writeFileSync } from 'node:fs';
import { benchEngine, engineTableHeader, engineTableNotes, engineTableRow } from '../bench/engine-bench.js';
import { kvDtypeFor, parseFlags, UsageError, type FlagSpec } from './args.js';

export const benchEngineFlags = [
  { name: 'model', type: 'string', help: 'a GGUF file (config and tokenizer from its metadata)', short: 'm' },
  { name: 'model_path', type: 'string', help: 'Hugging Face model directory (config.json, maybe safetensors)' },
  { name: 'gguf_path', type: 'string', help: 'GGUF weights: a file, the first of split files, or a directory' },
  { name: 'npp', type: 'int-list', help: 'prompt lengths in tokens (random ids)', default: [128, 512], min: 1 },
  { name: 'ntg', type: 'int', help: 'tokens generated per request (EOS ignored, greedy)', default: 128, min: 1 },
  { name: 'npl', type: 'int-list', help: 'batch sizes: requests run together', default: [1, 4, 16, 64, 256], min: 1 },
  { name: 'chunk_size', type: 'int', help: 'tokens per engine step at most (chunked prefill), as serve', default: 512, min: 1 },
  { name: 'block_size', type: 'int', help: 'KV cache block size in tokens', default: 16, min: 1 },
  { name: 'prefix_caching', type: 'bool', help: 'reuse cached prompt blocks (random prompts share none)', default: false },
  { name: 'seed', type: 'int', help: 'seed of the random prompts', default: 0 },
  { name: 'warmup', type: 'bool', help: 'one untimed small request first (--no-warmup to skip)', default: true },
  { name: 'out', type: 'string', help: 'write the results as JSON to this file' },
  { name: 'backend', type: 'string', help: 'cpu or cuda', default: 'cpu', choices: ['cpu', 'cuda'] },
  { name: 'no_cuda_graph', type: 'bool', help: 'run every step eagerly (no CUDA graphs for decode steps)' },
  { name: 'no_overlap', type: 'bool', help: 'CUDA: plan each step only after the previous one is read (default: planned while it runs)' },
  { name: 'fused_ops', type: 'bool', help: 'CUDA: fused add+rmsnorm, rope+cache-write, and at decode q/k/v and gate/up+SwiGLU GEMV kernels (--no_fused_ops: one kernel per op)', default: true },
  { name: 'mixed_graphs', type: 'bool', help: 'CUDA: graphs for mixed prefill+decode steps too (being measured; off by default)' },
  { name: 'prefill_first', type: 'bool', help: 'read every prompt before any decode, as llama-batched-bench does (default: interleaved, as serve)' },
  { name: 'kv_cache_dtype', type: 'string', help: 'KV cache element type: auto (bf16 on CUDA, f32 on the CPU), f32 or bf16 (CUDA only)', default: 'auto', choices: ['auto', 'f32', 'bf16'] },
] as const satisfies readonly FlagSpec[];

/** Where the table goes; tests pass their own. */
export interface BenchEngineOutput {
  write(text: string): unknown;
}

export async function runBenchEngine(argv: string[], stdout: BenchEngineOutput = process.stdout): Promise<void> {
  const f = parseFlags(argv, benchEngineFlags, {
    command: 'ktserve bench engine',
    description:
      "Measure the engine without HTTP, like llama.cpp's llama-batched-bench: for each prompt length (--npp) and batch size (--npl), prefill and decode throughput summed over the batch, and the time per decode step.",
  });
  if (f.model === undefined && f.model_path === undefined && f.gguf_path === undefined) {
    throw new UsageError('no model given: pass --model <file.gguf>, or --model_path <dir> [--gguf_path <file>]');
  }
  // The header waits for the first row: loading the model comes first and may take a while.
  let header = false;
  const report = benchEngine({
    model: { modelPath: f.model_path, ggufPath: f.gguf_path ?? f.model },
    npp: f.npp,
    ntg: f.ntg,
    npl: f.npl,
    chunkSize: f.chunk_size,
    blockSize: f.block_size,
    seed: f.seed,
    prefixCaching: f.prefix_caching,
    warmup: f.warmup,
    backend: f.backend === 'cuda' ? 'cuda' : 'cpu',
    cudaGraphs: !f.no_cuda_graph,
    overlap: f.no_overlap ? false : undefined,
    kvCacheDtype: kvDtypeFor(f.kv_cache_dtype, f.backend === 'cuda' ? 'cuda' : 'cpu'),
    prefillFirst: f.prefill_first,
    cudaFusedOps: f.fused_ops,
    cudaMixedGraphs: f.mixed_graphs,
    onResult: (r) => {
      if (!header) stdout.write(engineTableHeader());
      header = true;
      stdout.write(engineTableRow(r));
    },
  });
  if (!header) stdout.write(engineTableHeader());
  stdout.write(engineTableNotes(report));
  if (f.out !== undefined) writeFileSync(f.out, `${JSON.stringify(report, null, 2)}\n`);
}
