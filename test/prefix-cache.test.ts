// Prefix-cache keys and lookups: chained hashes separate prefixes, parents and models; a hit is
// verified against the stored token ids and parent link, so a colliding or stale key never hits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainHash, saltKey } from '../src/scheduler/block-hash.js';
import { PrefixCache } from '../src/scheduler/prefix-cache.js';
import { Rng } from '../src/engine/rng.js';

test('chainHash: deterministic safe integers that depend on parent, every token, and salt', () => {
  const t = [5, 6, 7, 8];
  const k = chainHash(123, t, 0, 4);
  assert.ok(Number.isSafeInteger(k) && k >= 0);
  assert.equal(chainHash(123, t, 0, 4), k);
  assert.notEqual(chainHash(124, t, 0, 4), k);
  for (let i = 0; i < 4; i++) {
    const u = [...t];
    u[i]! += 1;
    assert.notEqual(chainHash(123, u, 0, 4), k, `token ${i}`);
  }
  assert.notEqual(chainHash(123, [6, 5, 7, 8], 0, 4), k, 'order matters');
  assert.equal(chainHash(123, [0, 5, 6, 7, 8], 1, 4), k, 'start offset');
  assert.notEqual(saltKey('llama-3.2-1b'), saltKey('llama-3.2-3b'));
  // Parents above 2^32 are split exactly.
  assert.notEqual(chainHash(2 ** 40, t, 0, 4), chainHash(2 ** 40 + 2 ** 33, t, 0, 4));
});

test('chainHash: no collisions among 200k random blocks and chains', () => {
  const rng = Rng.fromSeed(11);
  const seen = new Set<number>();
  const block = new Int32Array(16);
  let parent = saltKey('m');
  for (let i = 0; i < 200_000; i++) {
    // Mostly near-identical blocks (one token differs): the hard case for a weak mix.
    block[i % 16] = rng.nextUint32() % 1000;
    const k = chainHash(i % 3 === 0 ? parent : i, block, 0, 16);
    seen.add(k);
    if (i % 3 === 0) parent = k;
  }
  assert.equal(seen.size, 200_000);
});

test('find verifies token ids and the parent link; register displaces; forget makes children stale', () => {
  const bs = 4;
  const cache = new PrefixCache(8, bs, 'model');
  const a = [1, 2, 3, 4];
  const b = [5, 6, 7, 8];
  const ka = cache.keyOf(cache.rootKey, a, 0);
  const kb = cache.keyOf(ka, b, 0);
  assert.equal(cache.register(3, ka, -1, 0, a, 0), -1);
  assert.equal(cache.register(5, kb, 3, cache.generation(3), b, 0), -1);
  assert.equal(cache.find(ka, -1, 0, a, 0), 3);
  assert.equal(cache.find(kb, 3, cache.generation(3), b, 0), 5);
  // A key that collides with different content, or a wrong parent, does not hit.
  assert.equal(cache.find(ka, -1, 0, [1, 2, 3, 9], 0), -1);
  assert.equal(cache.find(kb, 4, cache.generation(4), b, 0), -1);
  // The parent's content is forgotten (block 3 reused): the child's link is stale.
  const g = cache.generation(3);
  cache.forget(3);
  assert.equal(cache.hasContent(3), false);
  assert.equal(cache.find(kb, 3, cache.generation(3), b, 0), -1);
  assert.equal(cache.find(kb, 3, g, b, 0), 5, 'the link itself is unchanged; only the generation moved');
  // Re-registering the key with a fresh parent displaces the stale child.
  assert.equal(cache.register(6, kb, 3, cache.generation(3), b, 0), 5);
  assert.equal(cache.hasContent(5), false);
  assert.equal(cache.size, 1);
});

test('a different salt (model identity) gives different keys for the same tokens', () => {
  const t = [1, 2, 3, 4];
  const x = new PrefixCache(2, 4, 'model-a');
  const y = new PrefixCache(2, 4, 'model-b');
  assert.notEqual(x.keyOf(x.rootKey, t, 0), y.keyOf(y.rootKey, t, 0));
});

test('a request salt (cache_salt, API key) separates keys of the same tokens; no salt keeps the model root', () => {
  const cache = new PrefixCache(4, 4, 'model');
  const t = [1, 2, 3, 4];
  assert.equal(cache.rootKeyFor(''), cache.rootKey, 'unsalted requests keep the keys they had');
  const roots = ['', 'tenant-a', 'tenant-b', 'tenant-a\u0000'].map((s) => cache.rootKeyFor(s));
  assert.equal(new Set(roots).size, 4);
  assert.equal(cache.rootKeyFor('tenant-a'), roots[1], 'deterministic');
  // The request salt is mixed into the model's root, so two models still differ under the same salt.
  const other = new PrefixCache(4, 4, 'other-model');
  assert.notEqual(other.rootKeyFor('tenant-a'), cache.rootKeyFor('tenant-a'));
  assert.notEqual(cache.keyOf(roots[1]!, t, 0), cache.keyOf(roots[2]!, t, 0));
});

test('a first block registered under one salt never hits for another, even when the keys collide', () => {
  const cache = new PrefixCache(4, 4, 'model');
  const t = [1, 2, 3, 4];
  const key = cache.keyOf(cache.rootKeyFor('a'), t, 0);
  cache.register(0, key, -1, 0, t, 0, 'a');
  assert.equal(cache.find(key, -1, 0, t, 0, 'a'), 0);
  // Same key, same tokens, other salt (what a 53-bit collision would look like): verified, so a miss.
  assert.equal(cache.find(key, -1, 0, t, 0, 'b'), -1);
  assert.equal(cache.find(key, -1, 0, t, 0), -1, 'nor for unsalted requests');
});
