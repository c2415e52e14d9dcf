// CPU decode speed of one request on a random model in a real shape.
// Usage: node dist/bench/decode.js [preset=llama-3.2-1b] [weight type=Q4_K] [decode tokens=32]
// The model is written once to $KT_BENCH_DIR (default /tmp/ktserve-bench) with its family's real tokenizer.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CpuBackend } from '../src/backend/cpu-backend.js';
import { PagedKvCache } from '../src/models/kv-cache.js';
import { openModelFiles } from '../src/models/model-files.js';
import { writeRandomGguf } from '../src/make-model/random-gguf.js';
import { randomModelPresets } from '../src/make-model/random-model.js';
import { createModel } from '../src/models/registry.js';

const [preset = 'llama-3.2-1b', wtype = 'Q4_K', nDecode = '32'] = process.argv.slice(2);
const shape = randomModelPresets[preset];
if (!shape) throw new Error(`unknown preset ${preset}: ${Object.keys(randomModelPresets).join(', ')}`);
const dir = process.env.KT_BENCH_DIR ?? '/tmp/ktserve-bench';
mkdirSync(dir, { recursive: true });
const path = join(dir, `${preset}-${wtype}.gguf`);
if (!existsSync(path)) {
  const t0 = performance.now();
  await writeRandomGguf(path, shape, { outtype: wtype, seed: 1, name: `random ${preset} ${wtype}` });
  console.log(`wrote ${path} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
const files = openModelFiles({ ggufPath: path });
const backend = new CpuBackend();
const model = createModel(files.config, backend, files.weights);
const prompt = files.tokenizer.encode('The history of the printing press begins in the fifteenth century, when'.repeat(4));
const n = Number(nDecode);
const cache = new PagedKvCache(backend, { numLayers: files.config.numLayers, numBlocks: Math.ceil((prompt.length + n) / 16), blockSize: 16, layout: model.kvLayout });
const table = Array.from({ length: cache.shape.numBlocks }, (_, i) => i);
let t = performance.now();
model.forward({ sequences: [{ cachedLen: 0, tokens: prompt, blockTable: table, wantLogits: true }] }, cache);
const prefillMs = performance.now() - t;
t = performance.now();
for (let i = 0; i < n; i++) {
  model.forward({ sequences: [{ cachedLen: prompt.length + i, tokens: [1000 + i], blockTable: table, wantLogits: true }] }, cache);
}
const decodeS = (performance.now() - t) / 1000;
const info = backend.info();
console.log(
  `${preset} ${wtype}: prefill ${prompt.length} tokens ${((prompt.length / prefillMs) * 1000).toFixed(1)} tok/s; ` +
    `decode ${(n / decodeS).toFixed(2)} tok/s (batch 1, ${info.threads} threads, ${info.simd})`,
);
