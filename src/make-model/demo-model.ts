// The built-in demo model, so `npm start` answers with no download: a 6.6M-parameter Llama-architecture chat model
// we trained ourselves on generated arithmetic, counting, list and unit questions (scripts/demo-model/, model card
// in models/README.md), shipped in the repository as a GGUF that carries its tokenizer and chat template.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export class DemoModelMissingError extends Error {
  override name = 'DemoModelMissingError';
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** The repository's models/ folder: the demo model and the preset tokenizers ship there. */
export function shippedModelsDir(): string {
  return join(repoRoot(), 'models');
}

/** The shipped GGUF. */
export function demoModelPath(): string {
  return join(shippedModelsDir(), 'ktserve-demo.gguf');
}

/** The same model's Hugging Face side: config.json, tokenizer.json, tokenizer_config.json, generation_config.json. */
export function demoModelDir(): string {
  return join(shippedModelsDir(), 'ktserve-demo');
}

/** The demo model's path, after checking it is there (it is part of the checkout, not made on first use). */
export async function ensureDemoModel(): Promise<string> {
  const path = demoModelPath();
  if (!existsSync(path)) {
    throw new DemoModelMissingError(`the demo model ${path} is missing; it ships with the repository (restore models/), or rebuild it as scripts/demo-model/README.md says`);
  }
  return path;
}
