// Scheduler scenarios against a fake runner; the oracle is the fake model run alone (no cache, no
// scheduler): admission limits, chunked prefill beside decodes, KV exhaustion, prefix reuse, aborts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, type SchedulerConfig } from '../src/scheduler/scheduler.js';
import { Sequence } from '../src/scheduler/sequence.js';
import { QueueFullError, RequestTooLargeError } from '../src/scheduler/errors.js';
import { FakeModel, FakeRunner, checkBlockInvariants, driveToCompletion, type Arrival } from '../src/scheduler/fake-runner.js';

const model = new FakeModel(50);
const STOP = new Set([0]);
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

function setup(cfg: Partial<SchedulerConfig> & { numBlocks: number; blockSize: number }) {
  const s = new Scheduler({ chunkSize: 32, maxBatchSize: 8, maxQueue: 100, maxModelLen: 100_000, ...cfg });
  return { s, runner: new FakeRunner(model, cfg.numBlocks, cfg.blockSize) };
}

function expectAlone(seq: Sequence, got: number[] | undefined, reason: string | undefined): void {
  const want = model.generateAlone(seq.promptIds, seq.maxTokens, seq.stopIds);
  assert.deepEqual(got, want.tokens, `sequence ${seq.id} tokens`);
  assert.equal(reason, want.finishReason, `sequence ${seq.id} finish reason`);
}

test('one request alone yields the model\'s own continuation and returns every block', () => {
  const { s, runner } = setup({ numBlocks: 20, blockSize: 4, chunkSize: 7 });
  const seq = new Sequence({ id: 1, promptIds: range(3, 30), maxTokens: 25, stopIds: STOP });
  const r = driveToCompletion(s, runner, [{ step: 0, seq }], { onPlan: () => checkBlockInvariants(s) });
  expectAlone(seq, r.tokens.get(1), r.finishReasons.get(1));
  assert.equal(seq.status, 'finished');
  assert.equal(s.stats.blocksFree, 20);
  assert.deepEqual([s.stats.running, s.stats.waiting], [0, 0]);
});

test('admission: too large for the context or the whole cache → RequestTooLargeError with the numbers', () => {
  const { s } = setup({ numBlocks: 10, blockSize: 16, maxModelLen: 200 });
  assert.throws(
    () => s.add(new Sequence({ id: 1, promptIds: range(1, 150), maxTokens: 100 })),
    (e: unknown) => e instanceof RequestTooLargeError && /prompt \(150 tokens\) \+ max_tokens \(100\) = 250 tokens exceeds the model's context of 200/.test(e.message),
  );
  const { s: s2 } = setup({ numBlocks: 10, blockSize: 16 });
  assert.throws(
    () => s2.add(new Sequence({ id: 2, promptIds: range(1, 100), maxTokens: 61 })),
    (e: unknown) => e instanceof RequestTooLargeError && e.limit === 160 && /= 161 tokens exceeds the whole KV cache of 160 tokens \(10 blocks of 16\)/.test(e.message),
  );
  assert.equal(s2.stats.waiting, 0, 'a refused request is not queued');
  s2.add(new Sequence({ id: 3, promptIds: range(1, 100), maxTokens: 60 })); // exactly fits
  assert.equal(s2.stats.waiting, 1);
});

test('admission: a full queue → QueueFullError; duplicate ids are refused', () => {
  const { s } = setup({ numBlocks: 10, blockSize: 4, maxQueue: 2 });
  s.add(new Sequence({ id: 1, promptIds: [1], maxTokens: 1 }));
  s.add(new Sequence({ id: 2, promptIds: [1], maxTokens: 1 }));
  assert.throws(() => s.add(new Sequence({ id: 3, promptIds: [1], maxTokens: 1 })), QueueFullError);
  assert.throws(() => s.add(new Sequence({ id: 1, promptIds: [1], maxTokens: 1 })), /already/);
});

test('a request that exactly fills the cache completes beside others (no deadlock)', () => {
  const { s, runner } = setup({ numBlocks: 8, blockSize: 4, chunkSize: 5, maxBatchSize: 4 });
  const big = new Sequence({ id: 0, promptIds: range(1, 20), maxTokens: 12 }); // 32 tokens = the whole cache
  const others = range(1, 6).map((id) => new Sequence({ id, promptIds: range(id * 7, 9), maxTokens: 10 }));
  const arrivals: Arrival[] = [...others.slice(0, 3), big, ...others.slice(3)].map((seq, i) => ({ step: i, seq }));
  const r = driveToCompletion(s, runner, arrivals, { onPlan: () => checkBlockInvariants(s), maxSteps: 5000 });
  for (const { seq } of arrivals) expectAlone(seq, r.tokens.get(seq.id), r.finishReasons.get(seq.id));
  assert.equal(s.stats.blocksFree, 8);
});

test('chunked prefill: a long prompt spreads over steps while a running request keeps decoding', () => {
  const { s, runner } = setup({ numBlocks: 64, blockSize: 8, chunkSize: 16, maxBatchSize: 4 });
  const a = new Sequence({ id: 1, promptIds: range(1, 5), maxTokens: 40 });
  const b = new Sequence({ id: 2, promptIds: range(100, 100), maxTokens: 3 });
  const chunksOfB: number[] = [];
  const r = driveToCompletion(s, runner, [{ step: 0, seq: a }, { step: 2, seq: b }], {
    onPlan: (plan) => {
      assert.ok(plan.numTokens <= 16);
      const eb = plan.entries.find((e) => e.seq === b);
      const ea = plan.entries.find((e) => e.seq === a);
      if (eb && eb.chunk.tokens.length > 1) {
        // While b is prefilling, a decodes in the same step and b takes the rest of the budget.
        assert.ok(ea && ea.chunk.tokens.length === 1 && ea.sample, `step ${plan.step}: a decodes`);
        chunksOfB.push(eb.chunk.tokens.length);
      }
    },
  });
  // 100 prompt tokens at 15 a step (a's decode takes 1 of the 16): 6 chunks of 15, then 10.
  assert.deepEqual(chunksOfB, [15, 15, 15, 15, 15, 15, 10]);
  assert.ok(r.finishReasons.get(1) !== undefined);
  expectAlone(a, r.tokens.get(1), r.finishReasons.get(1));
  expectAlone(b, r.tokens.get(2), r.finishReasons.get(2));
});

test('KV blocks are taken as tokens arrive, not reserved for max_tokens', () => {
  const { s } = setup({ numBlocks: 100, blockSize: 4 });
  s.add(new Sequence({ id: 1, promptIds: range(1, 10), maxTokens: 300 }));
  s.add(new Sequence({ id: 2, promptIds: range(1, 6), maxTokens: 300 }));
  const plan = s.schedule()!;
  assert.equal(s.stats.blocksUsed, 3 + 2);
  s.onStepDone(plan, [1, 1]);
  const p2 = s.schedule()!;
  assert.equal(p2.numTokens, 2, 'two decodes');
  assert.equal(s.stats.blocksUsed, 3 + 2, 'token 11 and 7 still fit their last blocks');
});

test('KV exhaustion: many long requests on a small cache all complete through preemption', () => {
  const { s, runner } = setup({ numBlocks: 24, blockSize: 4, chunkSize: 24, maxBatchSize: 8 });
  const seqs = range(0, 16).map((id) => new Sequence({ id, promptIds: range(id * 3 + 1, 20 + (id % 5) * 8), maxTokens: 40 }));
  let maxUsed = 0;
  const r = driveToCompletion(s, runner, seqs.map((seq) => ({ step: 0, seq })), {
    onPlan: () => {
      checkBlockInvariants(s);
      maxUsed = Math.max(maxUsed, s.stats.blocksUsed);
    },
    maxSteps: 20_000,
  });
  for (const seq of seqs) expectAlone(seq, r.tokens.get(seq.id), r.finishReasons.get(seq.id));
  assert.ok(s.stats.preemptions > 0, 'the cache was too small for all at once');
  assert.ok(seqs.some((q) => q.numPreemptions > 0));
  assert.equal(maxUsed, 24);
  assert.equal(s.stats.blocksFree, 24);
});

test('a shared system prompt is prefilled once; prefix reuse does not change outputs', () => {
  const bs = 8;
  const system = range(1000, 203); // 25 full blocks + 3 tokens
  const users = range(0, 6).map((i) => [...system, ...range(i * 10, 5 + i)]);
  const run = (prefixCaching: boolean) => {
    const { s, runner } = setup({ numBlocks: 400, blockSize: bs, chunkSize: 64, prefixCaching });
    // Each arrives after the previous one's prefill is done, so its blocks are in the cache.
    const seqs = users.map((p, id) => new Sequence({ id, promptIds: p, maxTokens: 6 }));
    const r = driveToCompletion(s, runner, seqs.map((seq, i) => ({ step: i * 10, seq })));
    for (const seq of seqs) expectAlone(seq, r.tokens.get(seq.id), r.finishReasons.get(seq.id));
    return { s, runner, seqs };
  };
  const on = run(true);
  const reused = Math.floor(system.length / bs) * bs;
  const promptTokens = users.reduce((n, u) => n + u.length, 0);
  const decodeTokens = on.seqs.reduce((n, q) => n + q.numGenerated - 1, 0);
  assert.equal(on.s.stats.prefixCacheHitTokens, 5 * reused);
  assert.equal(on.s.stats.prefixCacheQueryTokens, promptTokens);
  assert.equal(on.runner.tokensComputed, promptTokens - 5 * reused + decodeTokens);
  assert.deepEqual(on.seqs.map((q) => q.numCachedPromptTokens), [0, reused, reused, reused, reused, reused]);
  const off = run(false);
  assert.equal(off.s.stats.prefixCacheHitRate, 0);
  assert.equal(off.runner.tokensComputed, promptTokens + decodeTokens);
});

test('abort mid-prefill, mid-decode, while queued and while its step is in flight frees its blocks', () => {
  const { s, runner } = setup({ numBlocks: 40, blockSize: 4, chunkSize: 8, maxBatchSize: 2 });
  const long = new Sequence({ id: 1, promptIds: range(1, 60), maxTokens: 5 });
  const dec = new Sequence({ id: 2, promptIds: range(5, 3), maxTokens: 50 });
  const queued = new Sequence({ id: 3, promptIds: range(9, 3), maxTokens: 5 });
  const inflight = new Sequence({ id: 4, promptIds: range(9, 10), maxTokens: 50 });
  s.add(dec);
  s.add(long);
  s.add(queued);
  const step = () => {
    const plan = s.schedule()!;
    s.onStepDone(plan, runner.step(plan.batch));
  };
  step();
  step();
  assert.equal(long.status, 'running');
  assert.ok(long.numCached > 0 && long.numCached < 60, 'mid-prefill');
  assert.deepEqual(s.abort(1), { seqId: 1, token: undefined, finishReason: 'abort' });
  assert.equal(s.abort(1), undefined, 'a second abort is a no-op');
  assert.deepEqual([long.blockTable.length, long.finishReason], [0, 'abort']);
  assert.equal(s.abort(3)?.finishReason, 'abort');
  assert.equal(s.stats.waiting, 0);
  step();
  assert.ok(dec.numGenerated > 1, 'mid-decode');
  s.abort(2);
  assert.equal(s.stats.blocksUsed, 0);
  s.add(inflight);
  const plan = s.schedule()!;
  const used = s.stats.blocksUsed;
  s.abort(4);
  assert.equal(s.stats.blocksUsed, used, 'its blocks are still being written by the step in flight');
  assert.deepEqual(s.onStepDone(plan, runner.step(plan.batch)), []);
  assert.equal(s.stats.blocksUsed, 0);
  assert.equal(s.schedule(), undefined);
  checkBlockInvariants(s);
});

test('a failed step ends its sequences with error; sampled tokens may come as a Map', () => {
  const { s, runner } = setup({ numBlocks: 40, blockSize: 4 });
  const a = new Sequence({ id: 7, promptIds: range(1, 6), maxTokens: 3 });
  const b = new Sequence({ id: 8, promptIds: range(2, 6), maxTokens: 3 });
  s.add(a);
  s.add(b);
  let plan = s.schedule()!;
  const toks = runner.step(plan.batch);
  const ev = s.onStepDone(plan, new Map([[7, toks[0]!], [8, toks[1]!]]));
  assert.deepEqual(ev.map((e) => [e.seqId, e.token]), [[7, toks[0]], [8, toks[1]]]);
  plan = s.schedule()!;
  assert.throws(() => s.schedule(), /planned but neither launched nor done/);
  assert.deepEqual(s.onStepFailed(plan).map((e) => [e.seqId, e.finishReason]), [[7, 'error'], [8, 'error']]);
  assert.deepEqual([s.stats.blocksUsed, s.size], [0, 0]);
  assert.throws(() => s.onStepDone(plan, []), /not the planned step/);
});

test('cache salts: a prompt is served from the cache only to requests of the same salt', () => {
  const { s, runner } = setup({ numBlocks: 100, blockSize: 4, chunkSize: 64 });
  const prompt = range(500, 21); // 5 full blocks reusable
  const salts = ['a', 'a', 'b', undefined, undefined, 'b'];
  const seqs = salts.map((cacheSalt, id) => new Sequence({ id, promptIds: prompt, maxTokens: 3, cacheSalt }));
  // Each arrives after the previous one finished, so the cache holds everything it can.
  const r = driveToCompletion(s, runner, seqs.map((seq, i) => ({ step: i * 10, seq })));
  for (const seq of seqs) expectAlone(seq, r.tokens.get(seq.id), r.finishReasons.get(seq.id));
  assert.deepEqual(seqs.map((q) => q.numCachedPromptTokens), [0, 20, 0, 0, 20, 20]);
});
