// Content index of full KV blocks for prefix reuse: chained-hash key → block id, with each cached block's
// token ids and parent link kept so a hit is verified exactly. Which blocks are free or in use is the
// BlockManager's business; this only knows what content a block holds.
import { chainHash, saltKey } from './block-hash.js';

const NO_KEY = -1;

export class PrefixCache {
  /** Parent key of a sequence's first block. */
  readonly rootKey: number;
  private readonly byKey = new Map<number, number>();
  private readonly keys: Float64Array;
  private readonly parents: Int32Array;
  private readonly parentGenerations: Int32Array;
  /** Bumped whenever a block's content is forgotten, so links to its old content go stale. */
  private readonly generations: Int32Array;
  private readonly contents: Int32Array;
  /** Prompt tokens looked up at admission, and how many of them were served from the cache. */
  queryTokens = 0;
  hitTokens = 0;

  constructor(
    numBlocks: number,
    readonly blockSize: number,
    salt = '',
  ) {
    this.rootKey = saltKey(salt);
    this.keys = new Float64Array(numBlocks).fill(NO_KEY);
    this.parents = new Int32Array(numBlocks);
    this.parentGenerations = new Int32Array(numBlocks);
    this.generations = new Int32Array(numBlocks);
    this.contents = new Int32Array(numBlocks * blockSize);
  }

  /** Key of the full block tokens[start, start+blockSize) after a block with key parentKey. */
  keyOf(parentKey: number, tokens: ArrayLike<number>, start: number): number {
    return chainHash(parentKey, tokens, start, this.blockSize);
  }

  /**
   * The cached block with this key whose parent is (parent, parentGeneration) (-1 for a first block)
   * and whose token ids equal tokens[start…]; -1 when none. By induction over the chain, a hit holds
   * exactly the K/V of this prefix.
   */
  find(key: number, parent: number, parentGeneration: number, tokens: ArrayLike<number>, start: number): number {
    const id = this.byKey.get(key);
    if (id === undefined) return -1;
    if (this.parents[id] !== parent || this.parentGenerations[id] !== parentGeneration) return -1;
    const base = id * this.blockSize;
    for (let i = 0; i < this.blockSize; i++) if (this.contents[base + i] !== tokens[start + i]) return -1;
    return id;
  }

  /**
   * Records that block `id` holds tokens[start…] after `parent`. A different block already under this key
   * (one that failed `find`: a stale parent link or a hash collision) is forgotten and returned, else -1.
   */
  register(id: number, key: number, parent: number, parentGeneration: number, tokens: ArrayLike<number>, start: number): number {
    const old = this.byKey.get(key);
    const displaced = old !== undefined && old !== id ? old : -1;
    if (displaced >= 0) this.forget(displaced);
    if (this.keys[id] !== NO_KEY) this.forget(id);
    this.byKey.set(key, id);
    this.keys[id] = key;
    this.parents[id] = parent;
    this.parentGenerations[id] = parentGeneration;
    const base = id * this.blockSize;
    for (let i = 0; i < this.blockSize; i++) this.contents[base + i] = tokens[start + i]!;
    return displaced;
  }

  /** Drops a block's content (it is about to be overwritten); blocks that linked to it stop matching. */
  forget(id: number): void {
    const key = this.keys[id]!;
    if (key === NO_KEY) return;
    if (this.byKey.get(key) === id) this.byKey.delete(key);
    this.keys[id] = NO_KEY;
    this.generations[id]!++;
  }

  hasContent(id: number): boolean {
    return this.keys[id] !== NO_KEY;
  }

  generation(id: number): number {
    return this.generations[id]!;
  }

  /** Blocks with content (free or in use). */
  get size(): number {
    return this.byKey.size;
  }

  get hitRate(): number {
    return this.queryTokens === 0 ? 0 : this.hitTokens / this.queryTokens;
  }
}
