// Converts the trained demo model (a Hugging Face directory) to GGUF with our writer, then checks that the GGUF
// and the directory agree: chat-template text, token ids of every held-out prompt, and greedy answers.
// Usage: node dist/scripts/demo-model/convert.js <hf-dir> <out.gguf> [--outtype F16|Q8_0|F32] [--greedy N]
import { statSync } from 'node:fs';
import { CpuBackend } from '../../src/backend/cpu-backend.js';
import { promptIds } from '../../src/cli/generate-command.js';
import { generate } from '../../src/engine/generate.js';
import { validateSamplingParams } from '../../src/engine/sampling-params.js';
import { convertHfLlamaToGguf, type GgufOutType } from '../../src/make-model/hf-to-gguf.js';
import { PagedKvCache } from '../../src/models/kv-cache.js';
import { openModelFiles, type ModelFiles } from '../../src/models/model-files.js';
import { createModel } from '../../src/models/registry.js';
import { readHeldout } from './heldout.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** Greedy answers (token ids, EOS excluded) of one model to each question as a single user turn. */
function greedyIds(files: ModelFiles, questions: string[]): number[][] {
  const backend = new CpuBackend();
  const model = createModel(files.config, backend, files.weights);
  const cache = new PagedKvCache(backend, { numLayers: files.config.numLayers, numBlocks: 16, blockSize: 16, layout: model.kvLayout });
  const stopIds = new Set([...files.tokenizer.eosIds, ...files.config.eosTokenIds]);
  const sampling = validateSamplingParams({ temperature: 0 });
  try {
    return questions.map((q) => generate(model, cache, promptIds(files, q, true), { maxNewTokens: 64, sampling, stopIds, chunkSize: 256 }).ids.filter((t) => !stopIds.has(t)));
  } finally {
    cache.dispose();
  }
}

async function main(): Promise<void> {
  const [dir, out] = process.argv.slice(2);
  if (!dir || !out) throw new Error('usage: convert.js <hf-dir> <out.gguf> [--outtype F16|Q8_0|F32] [--greedy N]');
  const outtype = flag('--outtype', 'F16') as GgufOutType;
  const t0 = performance.now();
  const { tensors } = await convertHfLlamaToGguf(dir, out, { outtype, name: flag('--name', 'ktserve-demo-chat') });
  console.log(`wrote ${out}: ${tensors} tensors, ${(statSync(out).size / 2 ** 20).toFixed(2)} MiB, ${outtype}, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const hf = openModelFiles({ modelPath: dir });
  const gguf = openModelFiles({ ggufPath: out });
  const items = readHeldout();
  const systems = [undefined, 'You are a helpful assistant.'];
  let checked = 0;
  for (const it of items) {
    for (const system of systems) {
      const a = promptIds(hf, it.question, true, system);
      const b = promptIds(gguf, it.question, true, system);
      if (a.join() !== b.join()) throw new Error(`token ids differ for ${JSON.stringify(it.question)}: ${a.join()} vs ${b.join()}`);
      checked++;
    }
    if (hf.tokenizer.encode(it.answer).join() !== gguf.tokenizer.encode(it.answer).join()) throw new Error(`answer ids differ: ${it.answer}`);
  }
  console.log(`tokenizers: ${checked} chat prompts and ${items.length} answers give the same ids from tokenizer.json and from the GGUF`);

  const n = Number(flag('--greedy', '60'));
  const step = Math.max(1, Math.floor(items.length / n));
  const sample = items.filter((_, i) => i % step === 0).slice(0, n).map((it) => it.question);
  const fromHf = greedyIds(hf, sample);
  const fromGguf = greedyIds(gguf, sample);
  const same = fromHf.filter((ids, i) => ids.join() === fromGguf[i]!.join()).length;
  console.log(`greedy answers: ${same}/${sample.length} identical between the safetensors directory and the GGUF`);
  if (same !== sample.length) process.exitCode = 1;
}

await main();
