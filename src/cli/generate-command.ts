// `ktserve generate`: one prompt, streamed to stdout (or one JSON object with --output json).
import { CpuBackend } from '../backend/cpu-backend.js';
import { generate } from '../engine/generate.js';
import { validateSamplingParams } from '../engine/sampling-params.js';
import { ensureDemoModel } from '../make-model/demo-model.js';
import { PagedKvCache } from '../models/kv-cache.js';
import { openModelFiles, type ModelFiles } from '../models/model-files.js';
import { createModel } from '../models/registry.js';
import { IncrementalDetokenizer } from '../tokenizer/index.js';
import { ProgressBar } from './progress.js';

export interface GenerateFlags {
  model?: string | undefined;
  modelPath?: string | undefined;
  ggufPath?: string | undefined;
  demo: boolean;
  prompt: string;
  chat: boolean;
  system?: string | undefined;
  maxNewTokens: number;
  temperature?: number | undefined;
  topP?: number | undefined;
  topK?: number | undefined;
  minP?: number | undefined;
  repetitionPenalty?: number | undefined;
  seed?: number | undefined;
  ignoreEos: boolean;
  output: 'text' | 'json';
  chunkSize: number;
}

export async function openFromFlags(f: Pick<GenerateFlags, 'model' | 'modelPath' | 'ggufPath' | 'demo'>): Promise<ModelFiles> {
  if (f.demo) return openModelFiles({ ggufPath: await ensureDemoModel() });
  return openModelFiles({ modelPath: f.modelPath, ggufPath: f.ggufPath ?? f.model });
}

/** Prompt token ids: the raw text, or the chat template applied to one user turn. */
export function promptIds(files: ModelFiles, prompt: string, chat: boolean, system?: string): number[] {
  if (!chat) return files.tokenizer.encode(prompt);
  if (!files.chatTemplate) throw new Error(`--chat: model ${files.name} has no chat template`);
  const messages = [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: prompt }];
  // The template writes BOS itself where the model wants one.
  return files.tokenizer.encode(files.chatTemplate.render(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
}

export async function runGenerate(f: GenerateFlags): Promise<void> {
  const files = await openFromFlags(f);
  const backend = new CpuBackend();
  const totalBytes = files.weights.names().reduce((n, name) => n + files.weights.get(name).byteLength, 0);
  const bar = new ProgressBar('loading weights', totalBytes);
  const model = createModel(files.config, backend, files.weights, (done) => bar.update(done));
  bar.finish();
  const ids = promptIds(files, f.prompt, f.chat, f.system);
  const blockSize = 16;
  const numBlocks = Math.ceil((ids.length + f.maxNewTokens) / blockSize);
  const cache = new PagedKvCache(backend, { numLayers: files.config.numLayers, numBlocks, blockSize, layout: model.kvLayout });
  const sampling = validateSamplingParams({
    temperature: f.temperature ?? 0.8,
    topP: f.topP ?? 0.95,
    topK: f.topK ?? 40,
    minP: f.minP ?? 0.05,
    repetitionPenalty: f.repetitionPenalty ?? 1,
    seed: f.seed,
  });
  const stopIds = new Set(f.ignoreEos ? [] : [...files.tokenizer.eosIds, ...files.config.eosTokenIds]);
  const detok = new IncrementalDetokenizer(files.tokenizer, { skipSpecialTokens: true });
  const stream = f.output === 'text';
  const start = performance.now();
  let firstToken = 0;
  const result = generate(model, cache, ids, {
    maxNewTokens: f.maxNewTokens,
    sampling,
    stopIds,
    chunkSize: f.chunkSize,
    onToken: (id) => {
      if (!firstToken) firstToken = performance.now();
      if (stream && !stopIds.has(id)) process.stdout.write(detok.push(id));
      // The reader went away (`| head`): the write failed at once, and its error event waits for this loop to end.
      return !process.stdout.errored;
    },
  });
  const end = performance.now();
  if (process.stdout.errored) {
    cache.dispose();
    return; // the 'error' listener in main.ts ends the process quietly
  }
  if (stream) {
    process.stdout.write(detok.flush() + '\n');
    const decodeTokens = result.ids.length - 1;
    const decodeRate = decodeTokens > 0 ? (decodeTokens / ((end - firstToken) / 1000)).toFixed(1) : 'n/a';
    process.stderr.write(
      `[${ids.length} prompt tokens, ${result.ids.length} generated (${result.finishReason}); ` +
        `prefill ${(firstToken - start).toFixed(0)} ms, decode ${decodeRate} tok/s, ${backend.info().threads} threads ${backend.info().simd}]\n`,
    );
  } else {
    const text = files.tokenizer.decode(result.ids.filter((id) => !stopIds.has(id)), { skipSpecialTokens: true });
    process.stdout.write(JSON.stringify({ prompt_ids: ids, ids: result.ids, text, finish_reason: result.finishReason }) + '\n');
  }
  cache.dispose();
}
