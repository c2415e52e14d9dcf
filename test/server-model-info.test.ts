// Ollama's /api/tags and /api/show with what the weight files really hold: bytes on disk, the parameter count
// (from the tensor infos), its "984K"/"8.0B" form, and the quantization (GGUF file type, or the safetensors
// dtype). Oracles: parameter counts worked out from each fixture's config.json, file sizes from the file system,
// quantizations from the file names and fixtures/README.md; and `ktserve serve` reporting them.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readGguf } from '../src/formats/gguf.js';
import { openModelFiles, type ModelLocation } from '../src/models/model-files.js';
import { summarizeGguf } from '../src/models/weight-summary.js';
import { formatParameterSize } from '../src/server/ollama/info.js';
import { startFakeServer } from './helpers/fake-engine.js';
import { scrape } from '../bench/prom-text.js';
import { startKtserve } from '../bench/ktserve-process.js';
import { fixturePath, needFixtures, readFixtureJson } from './fixtures.js';

interface HfConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  tie_word_embeddings: boolean;
  model_type: string;
}

/** Parameters of a dense Llama/Qwen3 model from its config: embeddings, per-layer attention + MLP + norms, head. */
function parametersFromConfig(c: HfConfig): number {
  const h = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const attention = h * q + 2 * h * kv + q * h;
  const mlp = 3 * h * c.intermediate_size;
  const norms = 2 * h + (c.model_type === 'qwen3' ? 2 * c.head_dim : 0); // Qwen3 adds q/k RMSNorm over a head
  const embeddings = c.vocab_size * h * (c.tie_word_embeddings ? 1 : 2);
  return embeddings + c.num_hidden_layers * (attention + mlp + norms) + h;
}

const llama = (): HfConfig => readFixtureJson<HfConfig>('llama', 'config.json');
const qwen3 = (): HfConfig => readFixtureJson<HfConfig>('qwen3', 'config.json');

describe('parameter_size as Ollama writes it', () => {
  it('one decimal for billions, two for millions, none for thousands or whole numbers', () => {
    assert.equal(formatParameterSize(8_030_261_248), '8.0B');
    assert.equal(formatParameterSize(70_553_706_496), '70.6B');
    assert.equal(formatParameterSize(7_000_000_000), '7B');
    assert.equal(formatParameterSize(671_026_419_200), '671.0B');
    assert.equal(formatParameterSize(1_026_408_232_448), '1.0T');
    assert.equal(formatParameterSize(494_032_768), '494.03M');
    assert.equal(formatParameterSize(984_352), '984K');
    assert.equal(formatParameterSize(999), '999');
  });
});

describe('/api/tags and /api/show describe the weight files', needFixtures, () => {
  const cases: { what: string; loc: ModelLocation; file: string; params: () => number; quantization: string }[] = [
    // convert_hf_to_gguf adds llama3 rope scaling as one tensor of head_dim / 2 frequency factors (rope_freqs).
    { what: 'Llama Q4_K_M GGUF', loc: { ggufPath: fixturePath('llama', 'llama-Q4_K_M.gguf') }, file: fixturePath('llama', 'llama-Q4_K_M.gguf'),
      params: () => parametersFromConfig(llama()) + llama().head_dim / 2, quantization: 'Q4_K_M' },
    { what: 'Llama Q5_K_M GGUF', loc: { ggufPath: fixturePath('llama', 'llama-Q5_K_M.gguf') }, file: fixturePath('llama', 'llama-Q5_K_M.gguf'),
      params: () => parametersFromConfig(llama()) + llama().head_dim / 2, quantization: 'Q5_K_M' },
    { what: 'Llama F32 safetensors', loc: { modelPath: fixturePath('llama') }, file: fixturePath('llama', 'model.safetensors'),
      params: () => parametersFromConfig(llama()), quantization: 'F32' },
    { what: 'Qwen3 BF16 safetensors', loc: { modelPath: fixturePath('qwen3') }, file: fixturePath('qwen3', 'model.safetensors'),
      params: () => parametersFromConfig(qwen3()), quantization: 'BF16' },
    { what: 'Qwen3 F16 GGUF', loc: { ggufPath: fixturePath('qwen3', 'qwen3-f16.gguf') }, file: fixturePath('qwen3', 'qwen3-f16.gguf'),
      params: () => parametersFromConfig(qwen3()), quantization: 'F16' },
  ];

  for (const c of cases) {
    it(c.what, async () => {
      const files = openModelFiles(c.loc);
      assert.deepEqual(files.summary, { parameterCount: c.params(), sizeBytes: statSync(c.file).size, quantization: c.quantization });
      const s = await startFakeServer({ script: () => [] }, { model: { format: 'gguf', family: files.config.architecture, ...files.summary } });
      try {
        const tags = (await (await fetch(`${s.url}/api/tags`)).json()) as { models: { size: number; details: Record<string, unknown> }[] };
        const m = tags.models[0]!;
        assert.equal(m.size, statSync(c.file).size);
        assert.equal(m.details.parameter_size, formatParameterSize(c.params()));
        assert.equal(m.details.quantization_level, c.quantization);
        const show = (await (await fetch(`${s.url}/api/show`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny-llama' }),
        })).json()) as { details: Record<string, unknown>; model_info: Record<string, unknown> };
        assert.deepEqual(show.details, m.details);
        assert.equal(show.model_info['general.parameter_count'], c.params());
      } finally {
        await s.close();
      }
    });
  }

  it('names a GGUF\'s mix from general.file_type, whatever its tensors fell back to; else its commonest matrix type', () => {
    // DeepSeek's Q4_K_M holds q5_0, q5_1 and q8_0 fallbacks beside Q4_K/Q6_K (fixtures/README.md).
    const ds = readGguf(fixturePath('deepseek', 'deepseek-Q4_K_M.gguf'));
    assert.equal(summarizeGguf(ds).quantization, 'Q4_K_M');
    assert.equal(summarizeGguf(readGguf(fixturePath('deepseek', 'deepseek-f16.gguf'))).quantization, 'F16');
    const noType = readGguf(fixturePath('llama', 'llama-Q4_K_M.gguf'));
    noType.metadata.delete('general.file_type');
    assert.equal(summarizeGguf(noType).quantization, 'Q4_K');
  });

  it('`ktserve serve` reports them, and labels /metrics with the served model name', async () => {
    const gguf = fixturePath('llama', 'llama-Q4_K_M.gguf');
    const s = await startKtserve(['--model', gguf, '--cache_lens', '1024', '--max_new_tokens', '64', '--served_model_name', 'tiny-q4']);
    const url = s.url;
    try {
      const tags = (await (await fetch(`${url}/api/tags`)).json()) as { models: { name: string; size: number; details: Record<string, unknown> }[] };
      assert.equal(tags.models[0]!.name, 'tiny-q4');
      assert.equal(tags.models[0]!.size, statSync(gguf).size);
      assert.equal(tags.models[0]!.details.parameter_size, formatParameterSize(parametersFromConfig(llama()) + llama().head_dim / 2));
      assert.equal(tags.models[0]!.details.quantization_level, 'Q4_K_M');
      const f = await scrape(url);
      assert.equal(f.get('vllm:num_requests_running')?.samples[0]?.labels.model_name, 'tiny-q4');
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
  });
});
