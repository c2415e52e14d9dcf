// KTransformers' flags (ktransformers/server/args.py) that its real command lines use and this build cannot honour
// yet: known by name, so that giving one is refused with the reason rather than called unknown or taken silently.
import type { FlagSpec } from './args.js';

const kvc2 = "KTransformers' kvc2 (a KV cache tiered over GPU, CPU memory and disk) is not implemented; the KV cache lives on the engine's device (--cache_lens, --gpu_memory_utilization)";
const oneDevice = 'ktserve runs a model on one device; splitting it over several GPUs is not implemented';

/** KTransformers' flags seen in real command lines that this build cannot honour yet, each with the reason. */
export const ktUnsupportedFlags = [
  { name: 'cache_q4', type: 'bool', help: '', unsupported: 'a 4-bit KV cache is not implemented; the KV cache holds bf16 or f32 (--kv_cache_dtype)' },
  { name: 'cache_8bit', type: 'bool', help: '', unsupported: 'an 8-bit KV cache is not implemented; the KV cache holds bf16 or f32 (--kv_cache_dtype)' },
  { name: 'tp', type: 'string', help: '', unsupported: oneDevice },
  { name: 'gpu_split', type: 'string', help: '', unsupported: oneDevice },
  { name: 'q4_gguf_path', type: 'string', help: '', unsupported: 'a second, Q4 GGUF is not read; pass the weights with --gguf_path' },
  { name: 'draft_model_path', type: 'string', help: '', unsupported: 'speculative decoding with a draft model is not implemented' },
  { name: 'draft_gguf_path', type: 'string', help: '', unsupported: 'speculative decoding with a draft model is not implemented' },
  { name: 'ssl_keyfile', type: 'string', help: '', unsupported: 'TLS is not served; put a reverse proxy (nginx, Caddy) in front for HTTPS' },
  { name: 'ssl_certfile', type: 'string', help: '', unsupported: 'TLS is not served; put a reverse proxy (nginx, Caddy) in front for HTTPS' },
  { name: 'kvc2_config_dir', type: 'string', help: '', unsupported: kvc2 },
  { name: 'memory_gpu_only', type: 'string', help: '', unsupported: kvc2 },
  { name: 'utilization_percentage', type: 'string', help: '', unsupported: kvc2 },
  { name: 'cpu_memory_size_GB', type: 'string', help: '', unsupported: kvc2 },
  { name: 'architectures', type: 'string', help: '', unsupported: "the architecture comes from the model's config.json or GGUF metadata and cannot be overridden" },
  { name: 'device', type: 'string', help: '', unsupported: 'KTransformers abandoned it too; ktserve picks the device with --backend auto|cpu|cuda' },
  { name: 'log_dir', type: 'string', help: '', unsupported: 'ktserve logs to stderr; redirect it (2>>file) or let the service manager keep it' },
  { name: 'log_file', type: 'string', help: '', unsupported: 'ktserve logs to stderr; redirect it (2>>file) or let the service manager keep it' },
  { name: 'sched_strategy', type: 'string', help: '', unsupported: 'the scheduler is first come, first served only' },
] as const satisfies readonly FlagSpec[];
