// `ktserve generate` end to end, as a user runs it: greedy continuations equal the oracles'.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fixturePath, needFixtures, readFixtureJson, repoRoot } from './fixtures.js';

interface Refs {
  prompts: { id: string; text: string; ids: number[]; add_special_tokens: boolean }[];
  hf: { per_prompt: { id: string; greedy16: number[] }[] };
  llama_cpp: Record<string, { per_prompt: { id: string; greedy16: number[] }[] }>;
}

const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

function ktserve(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('ktserve generate', needFixtures, () => {
  it('safetensors: --output json greedy ids equal Hugging Face greedy16 for a plain prompt', () => {
    const refs = readFixtureJson<Refs>('llama', 'refs.json');
    const p = refs.prompts.find((x) => x.id === 'plain')!;
    const r = ktserve('generate', '--model_path', fixturePath('llama'), '--prompt', p.text, '--temperature', '0', '--max_new_tokens', '16', '--ignore_eos', '--output', 'json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { prompt_ids: number[]; ids: number[]; text: string };
    assert.deepEqual(out.prompt_ids, p.ids);
    assert.deepEqual(out.ids, refs.hf.per_prompt.find((h) => h.id === 'plain')!.greedy16);
    assert.equal(typeof out.text, 'string');
  });

  it('a lone GGUF file (--model, dashes): greedy ids equal llama.cpp greedy16', () => {
    const refs = readFixtureJson<Refs>('qwen3', 'refs.json');
    const p = refs.prompts.find((x) => x.id === 'code')!;
    const r = ktserve('generate', '--model', fixturePath('qwen3', 'qwen3-f16.gguf'), '--prompt', p.text, '--temperature=0', '--max-new-tokens', '16', '--ignore-eos', '--output', 'json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { prompt_ids: number[]; ids: number[] };
    assert.deepEqual(out.prompt_ids, p.ids);
    assert.deepEqual(out.ids, refs.llama_cpp['qwen3-f16.gguf']!.per_prompt.find((h) => h.id === 'code')!.greedy16);
  });

  it('streams text to stdout', () => {
    const r = ktserve('generate', '--model_path', fixturePath('llama'), '--prompt', 'def main():', '--max_new_tokens', '8', '--seed', '3');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.length > 0);
  });

  it('the same seed gives the same tokens; errors name the flag or file', () => {
    const args = ['generate', '--model_path', fixturePath('llama'), '--prompt', 'import os', '--max_new_tokens', '12', '--ignore_eos', '--output', 'json', '--temperature', '1.0'];
    const a = JSON.parse(ktserve(...args, '--seed', '7').stdout) as { ids: number[] };
    const b = JSON.parse(ktserve(...args, '--seed', '7').stdout) as { ids: number[] };
    assert.deepEqual(a.ids, b.ids);
    const bad = ktserve('generate', '--model_path', fixturePath('llama'), '--prompt', 'x', '--max_new_tokens', 'many');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /max_new_tokens/);
    const missing = ktserve('generate', '--model', '/nonexistent/model.gguf', '--prompt', 'x');
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /nonexistent\/model\.gguf/);
    const unknown = ktserve('generate', '--model_path', fixturePath('llama'), '--prompt', 'x', '--max_new_tokns', '3');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /max_new_tokns/);
  });
});
