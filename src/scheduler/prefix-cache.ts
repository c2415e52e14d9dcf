// Content index of full KV blocks for prefix reuse: chained-hash key → block id, with each cached block's
// token ids, parent link and request salt kept so a hit is verified exactly. Which blocks are free or in use
// is the BlockManager's business; this only knows what content a block holds.
//
// A request salt (vLLM's cache_salt, or one derived from the API key) starts a chain of its own: only requests
// with the same salt share blocks, so one tenant can't learn from cache hits (cached_tokens, time to first token)
// what another one sent. The salt is checked verbatim, not only through the hash, so a collision can't leak.
import { chainHash, saltKey } from './block-hash.js';

const NO_KEY = -1;

export class PrefixCache {
  /** Parent key of the first block of an unsalted sequence. */
  readonly rootKey: number;
  private readonly byKey = new Map<number, number>();
  private readonly keys: Float64Array;
  private readonly parents: Int32Array;
  private readonly parentGenerations: Int32Array;
  /** Bumped whenever a block's content is forgotten, so links to its old content go stale. */
  private readonly generations: Int32Array;
  private readonly contents: Int32Array;
  /** Request salt of each block's chain ('' for none). */
  private readonly salts: string[];
  /** Prompt tokens looked up at admission, and how many of them were served from the cache. */
  queryTokens = 0;
  hitTokens = 0;

  constructor(
    numBlocks: number,
    readonly blockSize: number,
    /** The model's identity: caches of two models never share a key. */
    modelSalt = '',
  ) {
    this.rootKey = saltKey(modelSalt);
    this.keys = new Float64Array(numBlocks).fill(NO_KEY);
    this.parents = new Int32Array(numBlocks);
    this.parentGenerations = new Int32Array(numBlocks);
    this.generations = new Int32Array(numBlocks);
    this.contents = new Int32Array(numBlocks * blockSize);
    this.salts = new Array<string>(numBlocks).fill('');
  }

  /** Parent key of the first block of a sequence with this request salt ('' : none, the shared chain). */
  rootKeyFor(salt: string): number {
    return salt === '' ? this.rootKey : saltKey(salt, this.rootKey);
  }

  /** Key of the full block tokens[start, start+blockSize) after a block with key parentKey. */
  keyOf(parentKey: number, tokens: ArrayLike<number>, start: number): number {
    return chainHash(parentKey, tokens, start, this.blockSize);
  }

  /**
   * The cached block with this key whose parent is (parent, parentGeneration) (-1 for a first block),
   * whose chain has this request salt and whose token ids equal tokens[start…]; -1 when none. By
   * induction over the chain, a hit holds exactly the K/V of this prefix, computed for this salt.
   */
  find(key: number, parent: number, parentGeneration: number, tokens: ArrayLike<number>, start: number, salt = ''): number {
    const id = this.byKey.get(key);
    if (id === undefined) return -1;
    if (this.parents[id] !== parent || this.parentGenerations[id] !== parentGeneration) return -1;
    if (this.salts[id] !== salt) return -1;
    const base = id * this.blockSize;
    for (let i = 0; i < this.blockSize; i++) if (this.contents[base + i] !== tokens[start + i]) return -1;
    return id;
  }

  /**
   * Records that block `id` holds tokens[start…] after `parent`, in the chain of this request salt. A different
   * block already under this key (one that failed `find`: a stale parent link or a hash collision) is forgotten
   * and returned, else -1.
   */
  register(id: number, key: number, parent: number, parentGeneration: number, tokens: ArrayLike<number>, start: number, salt = ''): number {
    const old = this.byKey.get(key);
    const displaced = old !== undefined && old !== id ? old : -1;
    if (displaced >= 0) this.forget(displaced);
    if (this.keys[id] !== NO_KEY) this.forget(id);
    this.byKey.set(key, id);
    this.keys[id] = key;
    this.parents[id] = parent;
    this.parentGenerations[id] = parentGeneration;
    this.salts[id] = salt;
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
