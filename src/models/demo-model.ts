// The built-in demo model, so `npm start` runs with no download: a tiny Llama-architecture
// GGUF with a byte-level vocabulary, written deterministically (seeded) on first use.
// Its weights are random, so it talks nonsense; a later, trained demo model replaces this
// file's recipe while keeping `demoModelPath()` as the one way in.
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GgufWriter } from '../formats/gguf-writer.js';
import { byteChar } from '../tokenizer/byte-level.js';
import { normalSampler } from './random-model.js';

const shape = { hidden: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 192, context: 2048 };
const specials = ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];
const chatTemplate =
  "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}" +
  '{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}';
const recipeVersion = 1;

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

export function demoModelPath(): string {
  return join(repoRoot(), 'models', `ktserve-demo-v${recipeVersion}.gguf`);
}

export async function ensureDemoModel(): Promise<string> {
  const path = demoModelPath();
  if (existsSync(path)) return path;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const { hidden, layers, heads, kvHeads, ffn, context } = shape;
  const headDim = hidden / heads;
  const vocab = 256 + specials.length;
  const w = new GgufWriter(tmp);
  w.addMetadata('general.architecture', 'llama');
  w.addMetadata('general.name', 'ktserve-demo (random weights)');
  w.addMetadata('llama.context_length', context, 'u32');
  w.addMetadata('llama.embedding_length', hidden, 'u32');
  w.addMetadata('llama.block_count', layers, 'u32');
  w.addMetadata('llama.feed_forward_length', ffn, 'u32');
  w.addMetadata('llama.attention.head_count', heads, 'u32');
  w.addMetadata('llama.attention.head_count_kv', kvHeads, 'u32');
  w.addMetadata('llama.attention.layer_norm_rms_epsilon', 1e-5, 'f32');
  w.addMetadata('llama.rope.freq_base', 10000, 'f32');
  w.addMetadata('llama.vocab_size', vocab, 'u32');
  w.addMetadata('tokenizer.ggml.model', 'gpt2');
  w.addMetadata('tokenizer.ggml.pre', 'llama-bpe');
  w.addMetadata('tokenizer.ggml.tokens', [...Array.from({ length: 256 }, (_, b) => byteChar(b)), ...specials], 'string');
  w.addMetadata('tokenizer.ggml.token_type', Int32Array.from({ length: vocab }, (_, i) => (i < 256 ? 1 : 3)), 'i32');
  w.addMetadata('tokenizer.ggml.merges', [], 'string');
  w.addMetadata('tokenizer.ggml.bos_token_id', 256, 'u32');
  w.addMetadata('tokenizer.ggml.eos_token_id', 257, 'u32');
  w.addMetadata('tokenizer.ggml.eot_token_id', 260, 'u32');
  w.addMetadata('tokenizer.ggml.add_bos_token', true);
  w.addMetadata('tokenizer.chat_template', chatTemplate);
  const tensors: [string, number[], number][] = [['token_embd.weight', [hidden, vocab], 1]];
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      [`${p}attn_norm.weight`, [hidden], 0],
      [`${p}attn_q.weight`, [hidden, hidden], 1 / Math.sqrt(hidden)],
      [`${p}attn_k.weight`, [hidden, kvHeads * headDim], 1 / Math.sqrt(hidden)],
      [`${p}attn_v.weight`, [hidden, kvHeads * headDim], 1 / Math.sqrt(hidden)],
      [`${p}attn_output.weight`, [hidden, hidden], 1 / Math.sqrt(hidden)],
      [`${p}ffn_norm.weight`, [hidden], 0],
      [`${p}ffn_gate.weight`, [hidden, ffn], 1 / Math.sqrt(hidden)],
      [`${p}ffn_up.weight`, [hidden, ffn], 1 / Math.sqrt(hidden)],
      [`${p}ffn_down.weight`, [ffn, hidden], 1 / Math.sqrt(ffn)],
    );
  }
  tensors.push(['output_norm.weight', [hidden], 0], ['output.weight', [hidden, vocab], 0.15]);
  for (const [name, dims] of tensors) w.addTensorInfo(name, 'F32', dims);
  await w.writeHeader();
  const rand = normalSampler(20261126);
  for (const [name, dims, std] of tensors) {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    // std 0 marks a norm weight: ones, as a freshly initialised model has.
    for (let i = 0; i < data.length; i++) data[i] = std === 0 ? 1 : rand() * std;
    await w.writeTensorData(name, new Uint8Array(data.buffer));
  }
  await w.close();
  renameSync(tmp, path);
  return path;
}
