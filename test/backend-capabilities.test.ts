// What a backend says it can do, and that its tensors stay its own: the runner and the engine factory
// decide from capabilities (graphs, device sampling, memory, KV dtypes), and a tensor of another device
// is refused by name instead of being read as one of ours.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Tensor } from '../src/backend/backend.js';
import { CpuBackend } from '../src/backend/cpu-backend.js';
import { DType } from '../src/backend/dtype.js';
import { PagedKvCache, kvBytesPerToken, latentKvLayout, perHeadKvLayout } from '../src/models/kv-cache.js';

describe('backend capabilities', () => {
  const b = new CpuBackend();

  it('the CPU backend offers no graphs, no device sampler, no device memory, and an f32 KV cache', () => {
    assert.equal(b.device, 'cpu');
    assert.equal(b.capabilities.graphs, undefined);
    assert.equal(b.capabilities.sampler, undefined);
    assert.equal(b.capabilities.memory, undefined);
    assert.deepEqual(b.capabilities.kvDtypes, ['f32']);
  });

  it('tensors carry their device; one of another device is refused, naming both', () => {
    const t = b.constantF32(Float32Array.of(1, 2, 3, 4), [4]);
    assert.equal(t.device, 'cpu');
    const foreign: Tensor = { dtype: DType.F32, shape: [4], device: 'cuda:0' };
    assert.throws(() => b.rmsNorm(foreign, t, 1e-6), /cpu backend \(cpu\): given a tensor of cuda:0/);
    // A look-alike object claiming "cpu" is not a tensor of this backend either.
    assert.throws(() => b.rmsNorm({ dtype: DType.F32, shape: [4], device: 'cpu' }, t, 1e-6), /given a tensor/);
    b.free(t);
  });

  it('a KV cache dtype the backend does not keep is refused', () => {
    assert.throws(
      () => new PagedKvCache(b, { numLayers: 1, numBlocks: 1, blockSize: 4, layout: perHeadKvLayout(1, 4) }, { dtype: 'bf16' }),
      /KV cache dtype bf16 is not available on the cpu backend/,
    );
  });
});

describe('KV layouts', () => {
  const b = new CpuBackend();

  it('per-head K+V: two tensors per layer, and bytes per token count both', () => {
    const layout = perHeadKvLayout(8, 128);
    // Llama-3.1-8B: 32 layers × (1024 K + 1024 V) × 2 bytes (bf16) = 131072 bytes a token.
    assert.equal(kvBytesPerToken(layout, 32, 'bf16'), 131072);
    const cache = new PagedKvCache(b, { numLayers: 2, numBlocks: 3, blockSize: 4, layout: perHeadKvLayout(2, 8) });
    assert.deepEqual(cache.layer(1).map((t) => t.shape), [[3, 4, 16], [3, 4, 16]]);
    assert.equal(cache.bytes, 2 * 3 * 4 * 32 * 4);
    cache.dispose();
  });

  it('a latent layout (MLA) holds one tensor per layer of its width', () => {
    // DeepSeek-V3: kv_lora_rank 512 + rope 64 = 576 values a token a layer, 61 layers, bf16.
    assert.equal(kvBytesPerToken(latentKvLayout(576), 61, 'bf16'), 61 * 576 * 2);
    const cache = new PagedKvCache(b, { numLayers: 1, numBlocks: 2, blockSize: 4, layout: latentKvLayout(24) }, { spareBlock: true });
    assert.deepEqual(cache.layer(0).map((t) => t.shape), [[3, 4, 24]]);
    assert.equal(cache.bytes, 3 * 4 * 24 * 4);
    assert.throws(() => cache.layer(1), /no layer 1/);
    cache.dispose();
  });
});
