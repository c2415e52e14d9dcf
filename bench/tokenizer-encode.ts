// Encoding speed of the three real tokenizers (Llama 3, Qwen 3, DeepSeek-V3 tokenizer.json from the @lenml packages)
// on a ~32k-token text: the tokenizer_cases corpus, our own TypeScript sources, and generated English prose.
// Prints load time, cold-cache (first encode on a fresh tokenizer) and warm throughput in tokens/s.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadTokenizerFromDir, type Tokenizer } from '../src/tokenizer/index.js';
import { fixturePath, repoRoot } from '../test/fixtures.js';

const TARGET_TOKENS = 32_768;
const PACKAGES = [
  ['llama3', 'tokenizer-llama3'],
  ['qwen3', 'tokenizer-qwen3'],
  ['deepseek_v3', 'tokenizer-deepseek_v3'],
] as const;

interface CasesFile {
  tokenizers: Record<string, { cases: Array<{ text: string }> }>;
}

/** Seeded xorshift, so every run measures the same text. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const WORDS = ('the a of to and in is it that for on with as was at by this be from are or an have not which one had '
  + 'but were all their there been has when who more will would no if out so what up about into than them can only '
  + 'other new some could time these two may then do first any my now such like our over man me even most made after '
  + 'also did many before must through back years where much your way well down should because each just those people '
  + 'tokenizer server request batch kernel memory cache prefix decode stream latency throughput scheduler sequence '
  + 'Paris London Tokyo September Wednesday 1999 2024 3.14 42 1,000 naïve café résumé').split(' ');

function prose(words: number, next: () => number): string {
  const out: string[] = [];
  let sentence = 0;
  for (let i = 0; i < words; i++) {
    let w = WORDS[Math.floor(next() * WORDS.length)]!;
    if (sentence === 0) w = w[0]!.toUpperCase() + w.slice(1);
    out.push(w);
    sentence++;
    if (sentence > 6 && next() < 0.15) {
      out[out.length - 1] += next() < 0.8 ? '.' : next() < 0.5 ? '?' : '!';
      if (next() < 0.2) out[out.length - 1] += '\n\n';
      sentence = 0;
    } else if (next() < 0.06) {
      out[out.length - 1] += ',';
    }
  }
  return out.join(' ');
}

function buildText(reference: Tokenizer): string {
  const cases = JSON.parse(readFileSync(fixturePath('tokenizer_cases.json'), 'utf8')) as CasesFile;
  const parts = cases.tokenizers.llama3!.cases.map((c) => c.text);
  const srcDir = join(repoRoot, 'src', 'tokenizer');
  for (const f of readdirSync(srcDir).filter((n) => n.endsWith('.ts')).sort()) parts.push(readFileSync(join(srcDir, f), 'utf8'));
  const next = rng(1234);
  let text = parts.join('\n');
  while (reference.encode(text, { addSpecialTokens: false }).length < TARGET_TOKENS) text += '\n\n' + prose(400, next);
  return text;
}

function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, performance.now() - t0];
}

function main(): void {
  const dir = (pkg: string): string => join(repoRoot, 'node_modules', '@lenml', pkg, 'models');
  const text = buildText(loadTokenizerFromDir(dir('tokenizer-llama3')));
  console.log(`text: ${text.length} chars (${Buffer.byteLength(text)} bytes)`);
  for (const [name, pkg] of PACKAGES) {
    const [tok, loadMs] = time(() => loadTokenizerFromDir(dir(pkg)));
    const [ids, coldMs] = time(() => tok.encode(text, { addSpecialTokens: false }));
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) warm.push(time(() => tok.encode(text, { addSpecialTokens: false }))[1]);
    warm.sort((a, b) => a - b);
    const warmMs = warm[2]!;
    const rate = (ms: number): string => `${Math.round(ids.length / (ms / 1000)).toLocaleString('en-US')} tok/s`;
    console.log(`${name.padEnd(12)} ${ids.length} tokens | load ${loadMs.toFixed(0)} ms | cold ${coldMs.toFixed(1)} ms (${rate(coldMs)}) `
      + `| warm median ${warmMs.toFixed(1)} ms (${rate(warmMs)})`);
  }
}

main();
