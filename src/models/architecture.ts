// What an architecture file provides: which HF and GGUF names it answers to, how it reads its config
// beyond the fields every decoder shares, how its HF tensor names map to canonical ones, and how it
// builds the model from layer modules. registry.ts lists them.
import type { Backend } from '../backend/backend.js';
import type { GgufValue } from '../formats/gguf.js';
import type { ModelConfig } from './config.js';
import type { CausalLM } from './layers/decoder.js';
import type { LoadProgress } from './layers/weight-loader.js';
import type { HfNameTable, WeightSource } from './weights.js';

export interface Architecture {
  key: ModelConfig['architecture'];
  /** config.json `architectures[0]` values. */
  hfNames: readonly string[];
  /** GGUF `general.architecture` values. */
  ggufNames: readonly string[];
  hfConfig(config: Record<string, unknown>, generation: Record<string, unknown> | undefined, where: string): ModelConfig;
  ggufConfig(meta: Map<string, GgufValue>, arch: string, where: string): ModelConfig;
  hfWeightNames: HfNameTable;
  create(config: ModelConfig, backend: Backend, weights: WeightSource, onProgress?: LoadProgress): CausalLM;
}
