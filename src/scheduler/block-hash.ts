// Chained hash of a KV block's token ids: key(block) = H(key(previous block), token ids of the block).
// Two 32-bit multiply-rotate lanes folded into a 53-bit integer, so a key is a plain number (cheap Map key).
// Hits are verified token by token and parent by parent (prefix-cache.ts), so a collision costs a miss, never a wrong answer.

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const TWO_POW_32 = 4294967296;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** Final avalanche so every input bit reaches every output bit. */
function avalanche(h: number): number {
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  return h ^ (h >>> 16);
}

/** Key of a block whose parent has key `parent`; tokens[start, start+len) are its ids. */
export function chainHash(parent: number, tokens: ArrayLike<number>, start: number, len: number): number {
  // ToUint32 of a safe integer is its value mod 2^32, so lo/hi split the 53-bit parent exactly.
  let a = (parent >>> 0) ^ P4;
  let b = ((parent / TWO_POW_32) >>> 0) ^ P1;
  for (let i = start, end = start + len; i < end; i++) {
    const t = tokens[i]! | 0;
    a = Math.imul(rotl((a + Math.imul(t, P2)) | 0, 13), P1);
    b = Math.imul(rotl((b + Math.imul(t, P4)) | 0, 17), P3);
  }
  a = avalanche(a ^ len);
  b = avalanche((b ^ a) + len);
  a = avalanche(a ^ b);
  return (b & 0x1fffff) * TWO_POW_32 + (a >>> 0);
}

/**
 * Root key of a chain: from the model identity (parent 0), so caches of two models (or two weight files) never
 * share a key; or from a request salt under the model's root, so requests of two salts never do either.
 */
export function saltKey(salt: string, parent = 0): number {
  const codes = Array.from(salt, (c) => c.codePointAt(0) ?? 0);
  return chainHash(parent, codes, 0, codes.length);
}
