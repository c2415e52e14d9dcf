// BlockManager: blocks handed out as tokens arrive, reference counts, free-but-cached blocks kept for
// reuse and evicted least-recently-freed first only when no plain free block is left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockManager } from '../src/scheduler/block-manager.js';
import { PrefixCache } from '../src/scheduler/prefix-cache.js';
import { Sequence } from '../src/scheduler/sequence.js';

let nextId = 0;
const seqOf = (prompt: number[]) => new Sequence({ id: nextId++, promptIds: prompt, maxTokens: 8 });
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/** Stands in for a step that computed n more tokens of the sequence. */
function compute(bm: BlockManager, seq: Sequence, n: number): void {
  bm.append(seq, n);
  seq.numCached += n;
  bm.registerFullBlocks(seq);
}

test('blocks are allocated as tokens arrive, not up front', () => {
  const bm = new BlockManager(8, 4);
  const seq = seqOf(range(1, 10));
  assert.equal(bm.blocksNeeded(seq, 3), 1);
  bm.append(seq, 3);
  assert.deepEqual([bm.numUsed, bm.numFree], [1, 7]);
  seq.numCached = 3;
  assert.equal(bm.blocksNeeded(seq, 1), 0, 'the 4th token still fits the first block');
  bm.append(seq, 1);
  seq.numCached = 4;
  assert.equal(bm.numUsed, 1);
  bm.append(seq, 6);
  assert.equal(seq.blockTable.length, 3, '10 tokens in blocks of 4');
  assert.equal(new Set(seq.blockTable).size, 3);
  for (const id of seq.blockTable) assert.equal(bm.refCount(id), 1);
});

test('canAppend / appendableTokens follow the free count; append beyond it throws', () => {
  const bm = new BlockManager(3, 4);
  const a = seqOf([1]);
  bm.append(a, 9); // 3 blocks
  const b = seqOf([2]);
  assert.equal(bm.numFree, 0);
  assert.equal(bm.canAppend(b, 1), false);
  assert.equal(bm.appendableTokens(b), 0);
  a.numCached = 9;
  assert.equal(bm.appendableTokens(a), 3, 'room left in its own last block');
  assert.equal(bm.canAppend(a, 3), true);
  assert.equal(bm.canAppend(a, 4), false);
  assert.throws(() => bm.append(b, 1), /needs 1 KV blocks, 0 free/);
  bm.free(a);
  assert.deepEqual([bm.numFree, bm.numUsed, a.blockTable.length, a.numCached], [3, 0, 0, 0]);
  for (let id = 0; id < 3; id++) assert.equal(bm.refCount(id), 0);
});

test('a cached prefix is shared by reference count and leaves the last token to compute', () => {
  const bm = new BlockManager(16, 4, new PrefixCache(16, 4));
  const a = seqOf(range(100, 11));
  compute(bm, a, 11); // blocks 0,1 full and registered; block 2 partial
  const b = seqOf([...range(100, 8), 7, 7]);
  assert.equal(bm.attachCachedPrefix(b), 8);
  assert.deepEqual(b.blockTable, a.blockTable.slice(0, 2));
  for (const id of b.blockTable) assert.equal(bm.refCount(id), 2);
  // A prompt equal to two full cached blocks reuses only one: its last token must run for logits.
  const c = seqOf(range(100, 8));
  assert.equal(bm.attachCachedPrefix(c), 4);
  assert.equal(bm.refCount(a.blockTable[0]!), 3);
  // Differs in the first block → nothing reused.
  const d = seqOf([0, ...range(101, 10)]);
  assert.equal(bm.attachCachedPrefix(d), 0);
  for (const s of [a, b, c, d]) bm.free(s);
  assert.equal(bm.numFree, 16);
  assert.equal(bm.numCachedFree, 2, 'the two full blocks stay cached while free');
});

test('free-but-cached blocks are reused, and evicted LRU only when no plain block is left', () => {
  const bm = new BlockManager(4, 2, new PrefixCache(4, 2));
  const a = seqOf([1, 2, 3, 4, 5]);
  compute(bm, a, 5); // 3 blocks: [1,2] [3,4] cached, [5] partial
  const [a0, a1] = a.blockTable;
  bm.free(a);
  assert.deepEqual([bm.numFree, bm.numCachedFree], [4, 2]);
  const b = seqOf([9, 9, 9, 9]);
  bm.append(b, 2); // takes the 2 plain blocks first
  assert.equal(bm.numCachedFree, 2);
  assert.ok(!b.blockTable.includes(a0!) && !b.blockTable.includes(a1!));
  // One more block must evict: the tail block [3,4] was freed before the head [1,2], so it goes first.
  b.numCached = 4;
  bm.append(b, 1);
  assert.deepEqual(b.blockTable.slice(2), [a1]);
  assert.equal(bm.numCachedFree, 1);
  const again = seqOf([1, 2, 3, 4, 5]);
  assert.equal(bm.attachCachedPrefix(again), 2, 'only the head block is still cached');
  assert.deepEqual(again.blockTable, [a0]);
  assert.deepEqual([bm.refCount(a0!), bm.numFree, bm.numCachedFree], [1, 0, 0]);
});

test('blocks whose content was evicted and overwritten are never hit', () => {
  const bm = new BlockManager(3, 2, new PrefixCache(3, 2));
  const a = seqOf([1, 2, 3, 4, 5]);
  compute(bm, a, 5);
  bm.free(a);
  assert.equal(bm.numCachedFree, 2);
  // Another prompt needs all three blocks: both cached blocks are evicted and rewritten.
  const c = seqOf([8, 8, 8, 8, 8]);
  compute(bm, c, 5);
  assert.deepEqual([...c.blockTable].sort(), [0, 1, 2]);
  bm.free(c);
  const d = seqOf([1, 2, 3, 4, 5]);
  assert.equal(bm.attachCachedPrefix(d), 0);
  const e = seqOf([8, 8, 8, 8, 1]);
  assert.equal(bm.attachCachedPrefix(e), 4, 'the new content is what is cached now');
});

test('salted sequences share cached blocks only with sequences of the same salt', () => {
  const bm = new BlockManager(32, 4, new PrefixCache(32, 4, 'model'));
  const prompt = range(100, 13); // 3 full blocks reusable, the last token computed
  const salted = (cacheSalt: string | undefined) => new Sequence({ id: nextId++, promptIds: prompt, maxTokens: 8, cacheSalt });
  const a = salted('tenant-a');
  compute(bm, a, prompt.length);
  assert.equal(bm.attachCachedPrefix(salted('tenant-a')), 12, 'same salt: hit');
  assert.equal(bm.attachCachedPrefix(salted('tenant-b')), 0, 'other salt: miss');
  assert.equal(bm.attachCachedPrefix(salted(undefined)), 0, 'no salt: miss');
  const plain = salted(undefined);
  compute(bm, plain, prompt.length);
  assert.equal(bm.attachCachedPrefix(salted(undefined)), 12, 'unsalted requests share among themselves');
  assert.equal(bm.attachCachedPrefix(salted('tenant-b')), 0);
});
