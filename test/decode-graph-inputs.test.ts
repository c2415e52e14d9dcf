// The host side of CUDA-graph steps, checked without a GPU: the bucket sizes graphs are captured
// for; a decode batch padded to a graph's size, whose real rows must be exactly what the eager
// path's flattenBatch produces and whose padding rows touch only the spare block; and a mixed step
// padded with a padding sequence and empty ones, run through the CPU model, which must give the
// real rows' logits and cache bit for bit as the unpadded step does.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuBackend } from '../src/backend/cpu-backend.js';
import { graphBuckets } from '../src/engine/model-runner.js';
import { flattenBatch, padDecodeBatch, padMixedBatch, type ForwardBatch } from '../src/models/forward-batch.js';
import { PagedKvCache } from '../src/models/kv-cache.js';
import { openModelFiles } from '../src/models/model-files.js';
import { createModel } from '../src/models/registry.js';
import { fixturePath, needFixtures } from './fixtures.js';

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

describe('mixed graph inputs through the CPU model', needFixtures, () => {
  it('padding tokens and empty sequences leave the real rows\' logits and cache exactly as unpadded', () => {
    const files = openModelFiles({ modelPath: fixturePath('llama') });
    const b = new CpuBackend();
    const model = createModel(files.config, b, files.weights);
    const bs = 16;
    const shape = { numLayers: files.config.numLayers, numBlocks: 32, blockSize: bs, layout: model.kvLayout };
    const run = (padded: boolean): Float32Array => {
      const cache = new PagedKvCache(b, shape, { spareBlock: true });
      // A prompt of 20 tokens read in one step, then a step with a decode, a prefill chunk and a chunk whose logits are not wanted.
      const first: ForwardBatch = { sequences: [{ cachedLen: 0, tokens: Array.from({ length: 20 }, (_, i) => (i * 7 + 1) % 300), blockTable: [3, 9], wantLogits: true }] };
      const step: ForwardBatch = {
        sequences: [
          { cachedLen: 20, tokens: [42], blockTable: [3, 9], wantLogits: true },
          { cachedLen: 0, tokens: Array.from({ length: 13 }, (_, i) => (i * 5 + 2) % 300), blockTable: [5], wantLogits: true },
          { cachedLen: 0, tokens: Array.from({ length: 18 }, (_, i) => (i * 3 + 4) % 300), blockTable: [12, 1], wantLogits: false },
        ],
      };
      model.forward(first, cache);
      let logits: Float32Array;
      if (!padded) logits = model.forward(step, cache);
      else {
        const p = padMixedBatch(step, 64, 6, bs, cache.spareBlock!);
        const T = p.tokenIds.length;
        const S = p.kvLens.length;
        const out = model.forwardTensors(
          {
            ids: b.inputI32(p.tokenIds, [T]),
            attention: {
              cuQ: b.inputI32(p.cuQ, [S + 1]),
              kvLens: b.inputI32(p.kvLens, [S]),
              blockTables: b.inputI32(p.blockTables, [S, p.width]),
              slots: b.inputI32(p.slots, [T]),
              positions: b.inputI32(p.positions, [T]),
            },
            logitRows: b.inputI32(p.logitRows, [S]),
          },
          cache,
        )!;
        const V = files.config.vocabSize;
        logits = b.read(out).slice(0, p.numLogits * V);
        b.endStep();
      }
      // The third sequence's cached keys must be the same too: a decode over them proves it.
      const next = model.forward({ sequences: [{ cachedLen: 18, tokens: [7], blockTable: [12, 1], wantLogits: true }] }, cache);
      cache.dispose();
      return Float32Array.from([...logits, ...next]);
    };
    const want = run(false);
    const got = run(true);
    assert.equal(got.length, want.length);
    assert.deepEqual(got, want);
  });
});
