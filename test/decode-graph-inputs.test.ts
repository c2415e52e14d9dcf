// The host side of CUDA-graph decode steps, checked without a GPU: the bucket sizes graphs are
// captured for, and a decode batch padded to a graph's size, whose real rows must be exactly what
// the eager path's flattenBatch produces and whose padding rows must touch only the spare block.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { graphBuckets } from '../src/engine/model-runner.js';
import { flattenBatch, padDecodeBatch, type ForwardBatch } from '../src/models/forward-batch.js';

describe('decode graph inputs', () => {
  it('bucket sizes: every batch up to max_batch_size has one, with little padding', () => {
    for (const max of [1, 3, 8, 40, 64, 100, 256]) {
      const b = graphBuckets(max);
      assert.equal(b[b.length - 1], max, `largest bucket is max_batch_size ${max}`);
      assert.deepEqual([...b].sort((x, y) => x - y), b);
      for (let n = 1; n <= max; n++) {
        const size = b.find((s) => s >= n)!;
        // Steps of 8 up to 64, 16 up to 128, 32 above: at most 7 padding rows, or a quarter of the batch.
        assert.ok(size - n <= Math.max(7, Math.ceil(n / 4)), `batch ${n} pads to ${size}`);
      }
    }
  });

  it('a padded decode batch equals flattenBatch on its rows; padding stays in the spare block', () => {
    const bs = 16;
    const spare = 99;
    const batch: ForwardBatch = {
      sequences: [
        { cachedLen: 0, tokens: [5], blockTable: [7], wantLogits: true },
        { cachedLen: 15, tokens: [6], blockTable: [3], wantLogits: true },
        { cachedLen: 16, tokens: [7], blockTable: [4, 9], wantLogits: true },
        { cachedLen: 70, tokens: [8], blockTable: [1, 2, 11, 12, 13, 40], wantLogits: true },
      ],
    };
    const flat = flattenBatch(batch, bs);
    const p = padDecodeBatch(batch, 8, bs, spare);
    const n = batch.sequences.length;
    assert.equal(p.width, 5); // 71 tokens need 5 blocks of 16
    assert.deepEqual([...p.tokenIds.subarray(0, n)], [...flat.tokenIds]);
    assert.deepEqual([...p.positions.subarray(0, n)], [...flat.positions]);
    assert.deepEqual([...p.slots.subarray(0, n)], [...flat.slots]);
    assert.deepEqual([...p.kvLens.subarray(0, n)], [...flat.kvLens]);
    assert.deepEqual([...p.cuQ.subarray(0, n + 1)], [...flat.cuQ]);
    batch.sequences.forEach((s, i) => {
      const used = Math.ceil((s.cachedLen + 1) / bs);
      assert.deepEqual([...p.blockTables.subarray(i * p.width, i * p.width + used)], [...flat.blockTables.subarray(i * flat.maxBlocks, i * flat.maxBlocks + used)]);
    });
    for (let i = n; i < 8; i++) {
      assert.equal(p.kvLens[i], 1);
      assert.equal(p.cuQ[i + 1]! - p.cuQ[i]!, 1);
      assert.equal(Math.floor(p.slots[i]! / bs), spare);
      assert.equal(p.blockTables[i * p.width], spare);
    }
  });

  it('refuses batches a decode graph cannot take', () => {
    const chunk: ForwardBatch = { sequences: [{ cachedLen: 0, tokens: [1, 2], blockTable: [0], wantLogits: true }] };
    assert.throws(() => padDecodeBatch(chunk, 4, 16, 9), /one token, got 2/);
    const big: ForwardBatch = { sequences: Array.from({ length: 5 }, () => ({ cachedLen: 0, tokens: [1], blockTable: [0], wantLogits: true })) };
    assert.throws(() => padDecodeBatch(big, 4, 16, 9), /5 sequences for a graph of 4/);
    const short: ForwardBatch = { sequences: [{ cachedLen: 16, tokens: [1], blockTable: [0], wantLogits: true }] };
    assert.throws(() => padDecodeBatch(short, 1, 16, 9), /cannot hold 17 tokens/);
  });
});
