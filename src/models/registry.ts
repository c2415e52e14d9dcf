// Which architecture file runs which model: config readers, HF weight names and the model builder,
// looked up by the HF `architectures` name or the GGUF `general.architecture`. DeepSeek registers here next.
import type { Backend } from '../backend/backend.js';
import type { GgufValue } from '../formats/gguf.js';
import type { Architecture } from './architecture.js';
import { ggufArchitectureName, hfArchitectureName, ModelConfigError, type ModelConfig } from './config.js';
import type { CausalLM } from './layers/decoder.js';
import type { LoadProgress } from './layers/weight-loader.js';
import { LLAMA, QWEN3 } from './llama.js';
import { QWEN3_MOE } from './qwen3-moe.js';
import type { HfNameTable, WeightSource } from './weights.js';

export type { CausalLM } from './layers/decoder.js';

const ARCHITECTURES: readonly Architecture[] = [LLAMA, QWEN3, QWEN3_MOE];

function byKey(key: ModelConfig['architecture']): Architecture {
  const a = ARCHITECTURES.find((x) => x.key === key);
  if (!a) throw new ModelConfigError(`no architecture "${key}"`);
  return a;
}

/** From a parsed config.json (plus generation_config.json for EOS ids, when present). */
export function configFromHf(config: Record<string, unknown>, generation: Record<string, unknown> | undefined, where: string): ModelConfig {
  const name = hfArchitectureName(config);
  const a = ARCHITECTURES.find((x) => x.hfNames.includes(name));
  if (!a) throw new ModelConfigError(`${where}: architecture "${name}" is not supported (supported: ${ARCHITECTURES.flatMap((x) => x.hfNames).join(', ')})`);
  return a.hfConfig(config, generation, where);
}

/** From GGUF metadata. */
export function configFromGguf(meta: Map<string, GgufValue>, where: string): ModelConfig {
  const arch = ggufArchitectureName(meta, where);
  const a = ARCHITECTURES.find((x) => x.ggufNames.includes(arch));
  if (!a) throw new ModelConfigError(`${where}: GGUF architecture "${arch}" is not supported (supported: ${ARCHITECTURES.flatMap((x) => x.ggufNames).join(', ')})`);
  return a.ggufConfig(meta, arch, where);
}

/** How the architecture's HF tensor names map to canonical ones. */
export function hfWeightNames(config: ModelConfig): HfNameTable {
  return byKey(config.architecture).hfWeightNames;
}

export function createModel(config: ModelConfig, backend: Backend, weights: WeightSource, onProgress?: LoadProgress): CausalLM {
  return byKey(config.architecture).create(config, backend, weights, onProgress);
}
