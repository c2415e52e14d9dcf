// Micro-benchmark of the scheduler's own cost per engine step (no model): schedule() + onStepDone()
// with N running decodes, plus the block-hash cost against node:crypto sha1.
// Run: npx tsc -p tsconfig.json && node dist/bench/scheduler.js [running=256] [blockSize=16]
import { createHash } from 'node:crypto';
import { chainHash } from '../src/scheduler/block-hash.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { Sequence } from '../src/scheduler/sequence.js';

const running = Number(process.argv[2] ?? 256);
const blockSize = Number(process.argv[3] ?? 16);
const promptLen = 512;
const steps = 3000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function benchSteps(prefixCaching: boolean, longPrefill: boolean): { median: number; p99: number } {
  const maxTokens = steps + 100;
  const numBlocks = Math.ceil(((running + 1) * (promptLen + maxTokens) + 20_000) / blockSize);
  const s = new Scheduler({
    numBlocks, blockSize, chunkSize: 1024, maxBatchSize: running + 1, maxQueue: 1000, prefixCaching, maxModelLen: 1 << 20,
  });
  for (let id = 0; id < running; id++) {
    const prompt = Array.from({ length: promptLen }, (_, i) => (id * 7919 + i * 31) % 50_000);
    s.add(new Sequence({ id, promptIds: prompt, maxTokens }));
  }
  // Prefill everyone first, so the measured steps are decodes.
  let token = 1;
  const sample = (n: number) => Int32Array.from({ length: n }, () => (token = (token * 48271) % 50_000));
  while (s.runningSequences().some((q) => q.numGenerated === 0) || s.stats.waiting > 0) {
    const plan = s.schedule()!;
    s.onStepDone(plan, sample(plan.numSamples));
  }
  // Optionally 8k-token prompts keep arriving, chunked beside the decodes (a new one when one ends).
  let nextId = running;
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    if (longPrefill && s.size === running) {
      const prompt = Array.from({ length: 8_000 }, (_, j) => (nextId * 13 + j) % 50_000);
      s.add(new Sequence({ id: nextId++, promptIds: prompt, maxTokens: 1 }));
    }
    const sampled = sample(running + 1);
    const t0 = process.hrtime.bigint();
    const plan = s.schedule()!;
    s.onStepDone(plan, sampled.subarray(0, plan.numSamples));
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const warm = times.slice(steps / 10);
  return { median: median(warm), p99: [...warm].sort((a, b) => a - b)[Math.floor(warm.length * 0.99)]! };
}

console.log(`scheduler step (schedule + onStepDone), ${running} running decodes, block size ${blockSize}, node ${process.version}`);
for (const [prefix, long] of [[true, false], [false, false], [true, true]] as const) {
  const r = benchSteps(prefix, long);
  const what = `prefix cache ${prefix ? 'on' : 'off'}${long ? ', + 8k-token prompts chunked alongside' : ''}`;
  console.log(`  ${what.padEnd(50)} median ${r.median.toFixed(1)} µs   p99 ${r.p99.toFixed(1)} µs`);
}

// Block hashing: the chained 53-bit hash vs sha1 over the same bytes, per full block.
const nBlocks = 100_000;
const tokens = Int32Array.from({ length: nBlocks * blockSize }, (_, i) => (i * 2654435761) % 150_000);
let key = 0;
let t0 = process.hrtime.bigint();
for (let b = 0; b < nBlocks; b++) key = chainHash(key, tokens, b * blockSize, blockSize);
const ours = Number(process.hrtime.bigint() - t0) / nBlocks;
const bytes = Buffer.from(tokens.buffer);
let digest = Buffer.alloc(20);
t0 = process.hrtime.bigint();
for (let b = 0; b < nBlocks; b++) {
  digest = createHash('sha1').update(digest).update(bytes.subarray(b * blockSize * 4, (b + 1) * blockSize * 4)).digest();
}
const sha1 = Number(process.hrtime.bigint() - t0) / nBlocks;
console.log(`block hash (${blockSize} tokens, chained): chainHash ${ours.toFixed(0)} ns/block, sha1 ${sha1.toFixed(0)} ns/block (${(sha1 / ours).toFixed(1)}× slower)`);
