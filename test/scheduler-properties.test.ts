// Randomized (seeded) property test of the scheduler over many configurations: chunk sizes 1..64,
// max_batch_size 1..16, caches from just-enough to plenty, prefix cache on/off, random arrivals and
// shared prefixes. Oracle: every request yields exactly what the fake model yields for it alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/engine/rng.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { Sequence } from '../src/scheduler/sequence.js';
import { FakeModel, FakeRunner, checkBlockInvariants, driveToCompletion, type Arrival } from '../src/scheduler/fake-runner.js';

const model = new FakeModel(40);

function trial(seed: number): { preemptions: number; hits: number } {
  const rng = Rng.fromSeed(seed);
  const int = (lo: number, hi: number) => lo + (rng.nextUint32() % (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const tokens = (n: number) => Array.from({ length: n }, () => int(1, 39));

  const blockSize = pick([1, 2, 4, 8, 16]);
  const chunkSize = int(1, 64);
  const maxBatchSize = int(1, 16);
  const prefixCaching = rng.nextFloat() < 0.6;
  const systems = [tokens(int(1, 40)), tokens(int(20, 70)), tokens(int(5, 15))];
  const arrivals: Arrival[] = [];
  for (let id = 0, n = int(1, 20); id < n; id++) {
    const shared = rng.nextFloat() < 0.5 ? pick(systems) : [];
    const prompt = [...shared, ...tokens(int(shared.length ? 0 : 1, 40))];
    // Some requests stop on token 0, others only at max_tokens.
    const seq = new Sequence({ id, promptIds: prompt, maxTokens: int(1, 40), stopIds: rng.nextFloat() < 0.5 ? [0] : [] });
    arrivals.push({ step: int(0, 60), seq });
  }
  const need = (a: Arrival) => Math.ceil((a.seq.numPromptTokens + a.seq.maxTokens) / blockSize);
  const justEnough = Math.max(...arrivals.map(need));
  const plenty = arrivals.reduce((n, a) => n + need(a), 0);
  const numBlocks = pick([justEnough, justEnough + int(0, justEnough), int(justEnough, Math.max(justEnough, plenty)), plenty]);

  const s = new Scheduler({ numBlocks, blockSize, chunkSize, maxBatchSize, maxQueue: 1000, prefixCaching, maxModelLen: 10_000 });
  const runner = new FakeRunner(model, numBlocks, blockSize);
  const where = `seed ${seed} (bs ${blockSize}, chunk ${chunkSize}, batch ${maxBatchSize}, blocks ${numBlocks}, prefix ${prefixCaching})`;
  const r = driveToCompletion(s, runner, arrivals, {
    maxSteps: 50_000,
    onPlan: (plan) => {
      assert.ok(plan.numTokens <= chunkSize, `${where}: ${plan.numTokens} tokens in a step`);
      assert.ok(plan.entries.length <= maxBatchSize, `${where}: ${plan.entries.length} sequences in a step`);
      assert.ok(plan.entries.every((e) => e.chunk.tokens.length > 0));
      assert.equal(new Set(plan.entries.map((e) => e.seq)).size, plan.entries.length);
      checkBlockInvariants(s);
    },
  });

  for (const { seq } of arrivals) {
    const want = model.generateAlone(seq.promptIds, seq.maxTokens, seq.stopIds);
    assert.deepEqual(r.tokens.get(seq.id), want.tokens, `${where}: sequence ${seq.id}`);
    assert.equal(r.finishReasons.get(seq.id), want.finishReason, `${where}: sequence ${seq.id}`);
  }
  // FCFS: requests start in their order of arrival (driveToCompletion submits in arrival order).
  const order = [...arrivals].sort((a, b) => a.step - b.step).map((a) => r.firstScheduled.get(a.seq.id)!);
  for (let i = 1; i < order.length; i++) assert.ok(order[i - 1]! <= order[i]!, `${where}: request ${i} overtook an earlier one`);
  // Nothing leaked: every block free, no reference left.
  assert.equal(s.stats.blocksFree, numBlocks, where);
  for (let id = 0; id < numBlocks; id++) assert.equal(s.blocks.refCount(id), 0, where);
  assert.equal(s.stats.blocksCachedFree, prefixCaching ? s.blocks.cache!.size : 0);
  return { preemptions: s.stats.preemptions, hits: s.stats.prefixCacheHitTokens };
}

test('random workloads: outputs equal each request alone; budget, FCFS and block accounting hold', () => {
  let preemptions = 0;
  let hits = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const t = trial(seed);
    preemptions += t.preemptions;
    hits += t.hits;
  }
  // The workloads did exercise both preemption and prefix reuse.
  assert.ok(preemptions > 100, `preemptions ${preemptions}`);
  assert.ok(hits > 1000, `prefix hit tokens ${hits}`);
});
