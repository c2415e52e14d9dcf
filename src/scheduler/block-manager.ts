// Paged KV block bookkeeping (no tensors): a free list, reference counts, blocks handed out as a
// sequence's tokens arrive, and — with a PrefixCache — reuse of full blocks by content, where freed
// blocks that still hold cached content stay reusable until a fresh block is needed (then LRU goes first).
import { PrefixCache } from './prefix-cache.js';
import type { Sequence } from './sequence.js';

const NONE = -1;

export class BlockManager {
  private readonly refs: Int32Array;
  /** Free blocks holding no cached content; popped first. */
  private readonly freeStack: Int32Array;
  private freeTop: number;
  // Free blocks that hold cached content, least recently freed at the head (an intrusive list: O(1) moves).
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private lruHead = NONE;
  private lruTail = NONE;
  private numEvictable = 0;

  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
    /** undefined: prefix caching off. */
    readonly cache?: PrefixCache,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new RangeError(`numBlocks must be an integer ≥ 1, got ${numBlocks}`);
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`blockSize must be an integer ≥ 1, got ${blockSize}`);
    this.refs = new Int32Array(numBlocks);
    this.prev = new Int32Array(numBlocks).fill(NONE);
    this.next = new Int32Array(numBlocks).fill(NONE);
    // Reversed so that allocation hands out 0, 1, 2… (readable block tables in logs and tests).
    this.freeStack = Int32Array.from({ length: numBlocks }, (_, i) => numBlocks - 1 - i);
    this.freeTop = numBlocks;
  }

  /** Blocks no sequence holds (including those kept for their cached content). */
  get numFree(): number {
    return this.freeTop + this.numEvictable;
  }

  get numUsed(): number {
    return this.numBlocks - this.numFree;
  }

  /** Free blocks that still hold reusable prefix content. */
  get numCachedFree(): number {
    return this.numEvictable;
  }

  refCount(id: number): number {
    return this.refs[id]!;
  }

  /** New blocks the sequence needs so its table covers numCached + numTokens positions. */
  blocksNeeded(seq: Sequence, numTokens: number): number {
    return Math.max(0, Math.ceil((seq.numCached + numTokens) / this.blockSize) - seq.blockTable.length);
  }

  canAppend(seq: Sequence, numTokens = 1): boolean {
    return this.blocksNeeded(seq, numTokens) <= this.numFree;
  }

  /** Most tokens the sequence could append now: room in its own blocks plus every free block. */
  appendableTokens(seq: Sequence): number {
    return seq.blockTable.length * this.blockSize - seq.numCached + this.numFree * this.blockSize;
  }

  /** Grows the block table to cover numCached + numTokens positions. */
  append(seq: Sequence, numTokens: number): void {
    const need = this.blocksNeeded(seq, numTokens);
    if (need > this.numFree) {
      throw new Error(`sequence ${seq.id}: needs ${need} KV blocks, ${this.numFree} free`);
    }
    for (let i = 0; i < need; i++) seq.blockTable.push(this.allocate());
  }

  /** Releases every block of the sequence; it starts over from an empty cache. */
  free(seq: Sequence): void {
    // Last block first, so a prefix outlives its tails in the LRU order (tails are the least shareable).
    for (let i = seq.blockTable.length - 1; i >= 0; i--) this.release(seq.blockTable[i]!);
    seq.blockTable = [];
    seq.numCached = 0;
    seq.numRegisteredBlocks = 0;
    seq.chainBlock = NONE;
    seq.chainGeneration = 0;
  }

  /**
   * Attaches the longest cached prefix of full blocks to a sequence that holds none, leaving at least
   * its last token to compute (its logits are needed). Returns the number of tokens reused.
   */
  attachCachedPrefix(seq: Sequence): number {
    const cache = this.cache;
    if (cache === undefined || seq.blockTable.length > 0) return 0;
    const maxBlocks = Math.floor((seq.length - 1) / this.blockSize);
    let parent = NONE;
    let parentGeneration = 0;
    let n = 0;
    for (; n < maxBlocks; n++) {
      const id = cache.find(this.blockKey(seq, n), parent, parentGeneration, seq.tokens, n * this.blockSize, seq.cacheSalt);
      if (id < 0) break;
      this.retain(id);
      seq.blockTable.push(id);
      parent = id;
      parentGeneration = cache.generation(id);
    }
    seq.numCached = n * this.blockSize;
    seq.numRegisteredBlocks = n;
    seq.chainBlock = parent;
    seq.chainGeneration = parentGeneration;
    return seq.numCached;
  }

  /**
   * Offers the sequence's newly completed full blocks (all positions computed) to the prefix cache;
   * `upTo`: only positions below it count as computed (a later launched step's are still running).
   */
  registerFullBlocks(seq: Sequence, upTo = seq.numCached): void {
    const cache = this.cache;
    if (cache === undefined) return;
    const full = Math.floor(Math.min(seq.numCached, upTo) / this.blockSize);
    for (let b = seq.numRegisteredBlocks; b < full; b++) {
      const key = this.blockKey(seq, b);
      const start = b * this.blockSize;
      let canonical = cache.find(key, seq.chainBlock, seq.chainGeneration, seq.tokens, start, seq.cacheSalt);
      if (canonical < 0) {
        // Ours becomes the cached copy. A same-content copy made concurrently by another sequence stays
        // canonical otherwise, and later blocks chain to it, so lookups can walk the whole prefix.
        canonical = seq.blockTable[b]!;
        const displaced = cache.register(canonical, key, seq.chainBlock, seq.chainGeneration, seq.tokens, start, seq.cacheSalt);
        if (displaced >= 0 && this.refs[displaced] === 0) {
          this.lruRemove(displaced);
          this.freeStack[this.freeTop++] = displaced;
        }
      }
      seq.chainBlock = canonical;
      seq.chainGeneration = cache.generation(canonical);
    }
    seq.numRegisteredBlocks = Math.max(seq.numRegisteredBlocks, full);
  }

  private blockKey(seq: Sequence, b: number): number {
    const cache = this.cache!;
    for (let i = seq.blockKeys.length; i <= b; i++) {
      const parent = i === 0 ? cache.rootKeyFor(seq.cacheSalt) : seq.blockKeys[i - 1]!;
      seq.blockKeys.push(cache.keyOf(parent, seq.tokens, i * this.blockSize));
    }
    return seq.blockKeys[b]!;
  }

  private allocate(): number {
    let id: number;
    if (this.freeTop > 0) {
      id = this.freeStack[--this.freeTop]!;
    } else {
      id = this.lruHead;
      if (id === NONE) throw new Error('no free KV block');
      this.lruRemove(id);
      this.cache!.forget(id);
    }
    this.refs[id] = 1;
    return id;
  }

  private retain(id: number): void {
    if (this.refs[id] === 0) this.lruRemove(id);
    this.refs[id]!++;
  }

  private release(id: number): void {
    const left = --this.refs[id]!;
    if (left > 0) return;
    if (left < 0) throw new Error(`KV block ${id} released more often than it was taken`);
    if (this.cache?.hasContent(id)) this.lruPush(id);
    else this.freeStack[this.freeTop++] = id;
  }

  private lruPush(id: number): void {
    this.prev[id] = this.lruTail;
    this.next[id] = NONE;
    if (this.lruTail === NONE) this.lruHead = id;
    else this.next[this.lruTail] = id;
    this.lruTail = id;
    this.numEvictable++;
  }

  private lruRemove(id: number): void {
    const p = this.prev[id]!;
    const n = this.next[id]!;
    if (p === NONE) this.lruHead = n;
    else this.next[p] = n;
    if (n === NONE) this.lruTail = p;
    else this.prev[n] = p;
    this.prev[id] = NONE;
    this.next[id] = NONE;
    this.numEvictable--;
  }
}
