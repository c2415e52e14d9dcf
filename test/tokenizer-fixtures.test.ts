// The tiny fixture models' tokenizers, from tokenizer.json and from GGUF metadata, against the prompt ids of
// refs.json (Hugging Face's, which llama.cpp's own tokenization also gave: the llama_tokenize fields).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readGguf } from '../src/formats/gguf.js';
import { loadTokenizerFromDir, loadTokenizerFromGguf, type Tokenizer } from '../src/tokenizer/index.js';
import { fixturePath, needFixtures, readFixtureJson } from './fixtures.js';

interface Refs {
  prompts: Array<{ id: string; text: string; add_special_tokens: boolean; ids: number[] }>;
  llama_cpp: Record<string, { per_prompt: Array<{ id: string; llama_tokenize: number[] }> }>;
}

interface GenerationConfig {
  bos_token_id?: number;
  eos_token_id?: number | number[];
}

const MODELS = [
  { dir: 'llama', gguf: 'llama-f16.gguf' },
  { dir: 'qwen3', gguf: 'qwen3-f16.gguf' },
  { dir: 'deepseek', gguf: 'deepseek-f16.gguf' },
];

describe('fixture tokenizers vs refs.json', needFixtures, () => {
  for (const { dir, gguf } of MODELS) {
    const refs = readFixtureJson<Refs>(dir, 'refs.json');
    const generation = readFixtureJson<GenerationConfig>(dir, 'generation_config.json');
    const sources: Array<[string, () => Tokenizer]> = [
      ['tokenizer.json', () => loadTokenizerFromDir(fixturePath(dir))],
      [gguf, () => loadTokenizerFromGguf(readGguf(fixturePath(dir, gguf)).metadata)],
    ];

    for (const [source, load] of sources) {
      it(`${dir} ${source}: every prompt encodes to the refs ids, and llama.cpp's ids agree`, () => {
        const tok = load();
        for (const p of refs.prompts) {
          assert.deepEqual(tok.encode(p.text, { addSpecialTokens: p.add_special_tokens }), p.ids, p.id);
          for (const [file, entry] of Object.entries(refs.llama_cpp)) {
            const lc = entry.per_prompt.find((x) => x.id === p.id);
            if (lc) assert.deepEqual(lc.llama_tokenize, p.ids, `${file} ${p.id}`);
          }
        }
      });

      it(`${dir} ${source}: decode of the prompt ids gives the text back`, () => {
        const tok = load();
        for (const p of refs.prompts) {
          const ids = p.add_special_tokens && tok.addsBos ? p.ids.slice(1) : p.ids;
          assert.equal(tok.decode(ids), p.text, p.id);
        }
      });

      it(`${dir} ${source}: BOS and EOS agree with generation_config.json`, () => {
        const tok = load();
        assert.equal(tok.bosId, generation.bos_token_id);
        // Whether the plain prompt got a BOS tells whether the model adds one.
        const plain = refs.prompts.find((p) => p.id === 'plain' && p.add_special_tokens)!;
        assert.equal(tok.addsBos, plain.ids[0] === generation.bos_token_id);
        const eos = generation.eos_token_id;
        // generation_config's EOS ids end generation. From GGUF, like llama.cpp, the ids come from the eos/eot/eom
        // keys and end-of-turn texts, which leave out Llama's <|end_of_text|>: not required there.
        const required = Array.isArray(eos) ? (source === gguf ? eos.filter((id) => tok.idToToken(id) !== '<|end_of_text|>') : eos) : [eos!];
        for (const id of required) assert.ok(tok.eosIds.includes(id), `eos ${id} in ${JSON.stringify(tok.eosIds)}`);
      });
    }

    it(`${dir}: tokenizer.json and GGUF agree on vocabulary, special tokens and decoding`, () => {
      const a = loadTokenizerFromDir(fixturePath(dir));
      const b = loadTokenizerFromGguf(readGguf(fixturePath(dir, gguf)).metadata);
      assert.equal(a.vocabSize, b.vocabSize);
      for (let id = 0; id < a.vocabSize; id++) {
        assert.equal(a.idToToken(id), b.idToToken(id));
        assert.equal(b.decode([id]), a.decode([id]), `token ${id}`);
      }
    });
  }
});
