#!/usr/bin/env node
// The ktserve command line: `ktserve <command> [flags]`.
import { runGenerate } from './generate-command.js';
import { runServe } from './serve-command.js';
import { cudaAvailable } from '../backend/cuda-backend.js';
import { runBenchServe } from './bench-command.js';
import { runBenchEngine } from './bench-engine-command.js';
import { runMakeModel } from './make-model-command.js';
import { HelpRequested, kvDtypeFor, parseFlags, UsageError } from './args.js';
import { generateFlags, serveFlags } from './flag-tables.js';
import { LOG_LEVELS, type LogLevel } from './serve-command.js';
import { packageVersion } from './version.js';

/** --backend auto: the GPU where this build can use one. */
function pickBackend(flag: string): 'cpu' | 'cuda' {
  if (flag === 'auto') return cudaAvailable() ? 'cuda' : 'cpu';
  return flag === 'cuda' ? 'cuda' : 'cpu';
}

const commands: Record<string, { help: string; run: (argv: string[]) => Promise<void> }> = {
  generate: {
    help: 'generate text from one prompt',
    run: async (argv) => {
      const f = parseFlags(argv, generateFlags, { command: 'ktserve generate', description: commands['generate']!.help });
      checkModelFlags(f);
      useCpuThreads(f.cpu_infer);
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
      checkModelFlags(f);
      useCpuThreads(f.cpu_infer); // before pickBackend: that may load the addon
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
        cudaGraphs: f.use_cuda_graph,
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
        temperature: f.temperature,
        topP: f.top_p,
        webUi: f.web,
        logLevel: logLevel(f.log_level),
        logFormat: f.log_format === 'json' ? 'json' : 'text',
      });
    },
  },
  bench: {
    help: 'benchmarks: `bench serve` drives any OpenAI-compatible server, `bench engine` the engine alone',
    run: async (argv) => {
      const [sub, ...rest] = argv;
      if (sub === 'serve') return runBenchServe(rest);
      if (sub === 'engine') return runBenchEngine(rest);
      if (sub === '--help' || sub === '-h' || sub === 'help') throw new HelpRequested(benchUsage());
      if (sub === undefined) throw new UsageError(`no benchmark given\n\n${benchUsage()}`);
      throw new UsageError(`unknown benchmark "${sub}" (available: serve, engine); see ktserve bench --help`);
    },
  },
  'make-model': {
    help: 'write a random-weight model in a real architecture and shape (GGUF or safetensors)',
    run: (argv) => runMakeModel(argv),
  },
};

function benchUsage(): string {
  return [
    'usage: ktserve bench <benchmark> [flags]',
    '',
    'benchmarks:',
    '  serve       drive any OpenAI-compatible server at several concurrencies: TTFT, TPOT, ITL, throughput',
    '  engine      batched prefill/decode throughput of the engine alone, without HTTP (like llama-batched-bench)',
    '',
    "'ktserve bench <benchmark> --help' lists its flags.",
    '',
  ].join('\n');
}

/** One model source, or --demo; the demo is never served by default (llama-server and KTransformers need a model). */
function checkModelFlags(f: { demo: boolean; model?: string | undefined; model_path?: string | undefined; gguf_path?: string | undefined }): void {
  const given = f.model !== undefined || f.model_path !== undefined || f.gguf_path !== undefined;
  if (f.demo && given) throw new UsageError('--demo serves the built-in demo model: leave out --model, --model_path and --gguf_path, or --demo');
  if (!f.demo && !given) {
    throw new UsageError('no model given: pass --model <file.gguf>, --model_path <dir> [--gguf_path <file>], or --demo for the built-in demo model (what npm start does)');
  }
}

/**
 * --cpu_infer (KTransformers' name): the native pool reads KT_NUM_THREADS once, when first used, and the engine
 * worker shares this process's environment, so setting it before any kernel runs sizes the pool.
 */
function useCpuThreads(n: number | undefined): void {
  if (n !== undefined) process.env.KT_NUM_THREADS = String(n);
}

/** --log_level: pino's names, and KTransformers' `crit` for fatal. */
function logLevel(flag: string): LogLevel {
  if (flag === 'crit') return 'fatal';
  return (LOG_LEVELS as readonly string[]).includes(flag) ? (flag as LogLevel) : 'info';
}

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)}${c.help}`);
  return `usage: ktserve <command> [flags]\n       ktserve --version\n\ncommands:\n${lines.join('\n')}\n\n'ktserve <command> --help' lists a command's flags.\n`;
}

/** Resolves to an exit code, or undefined to let the process run on (a server). */
async function main(argv: string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`ktserve ${packageVersion()}\n`);
    return 0;
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

// `ktserve generate … | head`: once the reader has gone, end quietly, as `yes | head` does, not with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const code = await main(process.argv.slice(2));
// A failed command has nothing left to finish, and a started engine worker would otherwise keep the process alive.
if (code !== undefined && code !== 0) process.exit(code);
if (code !== undefined) process.exitCode = code;
