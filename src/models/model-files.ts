// Finds a model's pieces on disk from the CLI's flags: config, weights, tokenizer, chat
// template. Accepts KTransformers' pair (--model_path HF dir + --gguf_path), a lone GGUF
// file (--model), or a safetensors directory (--model_path alone).
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readGguf } from '../formats/gguf.js';
import { readJsonFile } from '../formats/json-file.js';
import { readSafetensors } from '../formats/safetensors.js';
import { ChatTemplate, loadTokenizerFromDir, loadTokenizerFromGguf, type Tokenizer } from '../tokenizer/index.js';
import type { ModelConfig } from './config.js';
import { configFromGguf, configFromHf, hfWeightNames } from './registry.js';
import { summarizeGguf, summarizeSafetensors, type WeightSummary } from './weight-summary.js';
import { GgufWeights, SafetensorsWeights, type WeightSource } from './weights.js';

export interface ModelLocation {
  /** Hugging Face directory: config.json, tokenizer files, maybe safetensors. */
  modelPath?: string | undefined;
  /** GGUF file, first split, or a directory holding one model's GGUF file(s). */
  ggufPath?: string | undefined;
}

export interface ModelFiles {
  name: string;
  config: ModelConfig;
  weights: WeightSource;
  /** Size, parameter count and quantization of the weights (Ollama's /api/tags reports them). */
  summary: WeightSummary;
  readonly tokenizer: Tokenizer;
  readonly chatTemplate: ChatTemplate | undefined;
}

export class ModelFilesError extends Error {
  override name = 'ModelFilesError';
}

function hfConfig(dir: string): ModelConfig {
  const config = readJsonFile<Record<string, unknown>>(join(dir, 'config.json'), 'model config');
  const genPath = join(dir, 'generation_config.json');
  const gen = existsSync(genPath) ? readJsonFile<Record<string, unknown>>(genPath, 'generation config') : undefined;
  return configFromHf(config, gen, join(dir, 'config.json'));
}

/**
 * The tokenizer and chat template are built on first use: the engine worker and the engine
 * benchmark need only config and weights, and a 128k-entry vocabulary takes about a second.
 */
function withLazyText(
  base: Omit<ModelFiles, 'tokenizer' | 'chatTemplate'>,
  loadTokenizer: () => Tokenizer,
  loadTemplate: () => ChatTemplate | undefined,
): ModelFiles {
  let tokenizer: Tokenizer | undefined;
  let template: { value: ChatTemplate | undefined } | undefined;
  return {
    ...base,
    get tokenizer(): Tokenizer {
      return (tokenizer ??= loadTokenizer());
    },
    get chatTemplate(): ChatTemplate | undefined {
      return (template ??= { value: loadTemplate() }).value;
    },
  };
}

export function openModelFiles(loc: ModelLocation): ModelFiles {
  const { modelPath, ggufPath } = loc;
  if (modelPath !== undefined && !(existsSync(modelPath) && statSync(modelPath).isDirectory())) {
    throw new ModelFilesError(`--model_path ${modelPath}: not a directory`);
  }
  if (ggufPath !== undefined) {
    if (!existsSync(ggufPath)) throw new ModelFilesError(`--gguf_path ${ggufPath}: no such file or directory`);
    const gguf = readGguf(ggufPath);
    const weights = new GgufWeights(gguf);
    const config = modelPath !== undefined && existsSync(join(modelPath, 'config.json')) ? hfConfig(modelPath) : configFromGguf(gguf.metadata, ggufPath);
    config.tieWordEmbeddings = !weights.has('output.weight');
    const fromDir = modelPath !== undefined && existsSync(join(modelPath, 'tokenizer.json'));
    const name = String(gguf.metadata.get('general.name') ?? ggufPath);
    return withLazyText(
      { name, config, weights, summary: summarizeGguf(gguf) },
      () => (fromDir ? loadTokenizerFromDir(modelPath) : loadTokenizerFromGguf(gguf.metadata)),
      () => (fromDir ? ChatTemplate.fromTokenizerConfig(modelPath) : undefined) ?? ChatTemplate.fromGguf(gguf.metadata),
    );
  }
  if (modelPath === undefined) throw new ModelFilesError('no model given: pass --model <file.gguf>, or --model_path <dir> [--gguf_path <file>]');
  const hasSafetensors = existsSync(join(modelPath, 'model.safetensors')) || existsSync(join(modelPath, 'model.safetensors.index.json'));
  if (!hasSafetensors) {
    throw new ModelFilesError(`--model_path ${modelPath}: no model.safetensors or model.safetensors.index.json; pass --gguf_path for GGUF weights`);
  }
  const config = hfConfig(modelPath);
  const safetensors = readSafetensors(modelPath);
  const weights = new SafetensorsWeights(safetensors, hfWeightNames(config));
  return withLazyText(
    { name: modelPath, config, weights, summary: summarizeSafetensors(safetensors) },
    () => loadTokenizerFromDir(modelPath),
    () => ChatTemplate.fromTokenizerConfig(modelPath),
  );
}
