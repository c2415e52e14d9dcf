// Micro-benchmark of SequenceSampler.sample over one 152k-vocab row (Qwen-sized) per call.
// Run: npx tsc -p tsconfig.json && node dist/bench/sampler.js [vocab]
import { SequenceSampler } from '../src/engine/sampler.js';
import { validateSamplingParams, type SamplingParams } from '../src/engine/sampling-params.js';
import { Rng } from '../src/engine/rng.js';

const vocab = Number(process.argv[2] ?? 151936);

/** LLM-like logits: a Gaussian bulk (std 2.5) plus a handful of strong candidates near the top. */
function makeLogits(rng: Rng, spread: number): Float32Array {
  const x = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) {
    // Box-Muller from two uniforms.
    const u = 1 - rng.nextFloat();
    const v = rng.nextFloat();
    x[i] = spread * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  for (let k = 0; k < 8; k++) x[Math.floor(rng.nextFloat() * vocab)] = 12 + 2 * rng.nextFloat();
  return x;
}

const cases: [string, Partial<SamplingParams>][] = [
  ['greedy', { temperature: 0 }],
  ['temperature 1 (no truncation)', { temperature: 1 }],
  ['top_k 50', { temperature: 0.8, topK: 50 }],
  ['top_p 0.9', { temperature: 1, topP: 0.9 }],
  ['top_p 0.95, T 0.7', { temperature: 0.7, topP: 0.95 }],
  ['min_p 0.05', { temperature: 1, minP: 0.05 }],
  ['top_k 40 + top_p 0.9 + min_p 0.02', { temperature: 0.8, topK: 40, topP: 0.9, minP: 0.02 }],
  ['top_p 0.9 + penalties + logprobs 5', {
    temperature: 1, topP: 0.9, repetitionPenalty: 1.1, presencePenalty: 0.5, frequencyPenalty: 0.3, logprobs: 5,
  }],
  ['top_p 0.9, T 2 (flat: worst case)', { temperature: 2, topP: 0.9 }],
];

const rng = Rng.fromSeed(7);
const rows = [makeLogits(rng, 2.5), makeLogits(rng, 2.5), makeLogits(rng, 4), makeLogits(rng, 1.5)];
const prompt = Array.from({ length: 2000 }, (_, i) => (i * 7919) % vocab);

console.log(`vocab ${vocab}; ms per sample over 15 rounds of 20 (min / median), node ${process.version}`);
for (const [name, partial] of cases) {
  const sampler = new SequenceSampler(validateSamplingParams({ seed: 1, ...partial }), prompt);
  for (let i = 0; i < 50; i++) sampler.sample(rows[i % rows.length]!); // warm-up (JIT)
  const times: number[] = [];
  for (let round = 0; round < 15; round++) {
    const reps = 20;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) sampler.sample(rows[i % rows.length]!);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6 / reps);
  }
  times.sort((a, b) => a - b);
  // The minimum is the figure to compare: on a shared machine other work only ever adds time.
  console.log(`${name.padEnd(40)} ${times[0]!.toFixed(3)} / ${times[times.length >> 1]!.toFixed(3)} ms`);
}

// For scale: one pass over the row (argmax) and what a naive top-p pays first, a full sort of the row.
const row = rows[0]!;
const keys = new Float64Array(vocab);
let sink = 0; // results are summed so that the JIT cannot drop the work
for (const [name, body] of [
  ['reference: one argmax pass', () => {
    let best = 0;
    for (let i = 1; i < vocab; i++) if (row[i]! > row[best]!) best = i;
    return best;
  }],
  ['reference: full sort of the row', () => {
    for (let i = 0; i < vocab; i++) keys[i] = row[i]!;
    keys.sort();
    return keys[0]!;
  }],
] as const) {
  for (let i = 0; i < 5; i++) sink += body();
  const times: number[] = [];
  for (let round = 0; round < 7; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 5; i++) sink += body();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6 / 5);
  }
  times.sort((a, b) => a - b);
  console.log(`${name.padEnd(40)} ${times[0]!.toFixed(3)} / ${times[times.length >> 1]!.toFixed(3)} ms`);
}
console.log(`(checksum ${sink})`);
