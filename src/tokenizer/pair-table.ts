// An open-addressing hash table from a pair of token ids to (merge rank, merged id), in typed arrays: with
// 100k+ merges it builds and answers several times faster than a Map keyed by a packed double.

export class PairTable {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly ranks: Int32Array;
  private readonly merged: Int32Array;
  private readonly mask: number;

  constructor(expected: number) {
    let capacity = 16;
    while (capacity < expected * 2) capacity <<= 1;
    this.mask = capacity - 1;
    this.left = new Int32Array(capacity).fill(-1);
    this.right = new Int32Array(capacity);
    this.ranks = new Int32Array(capacity);
    this.merged = new Int32Array(capacity);
  }

  private slotOf(a: number, b: number): number {
    let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77)) & this.mask;
    for (;;) {
      const l = this.left[h]!;
      if (l === -1 || (l === a && this.right[h] === b)) return h;
      h = (h + 1) & this.mask;
    }
  }

  /**
   * Adds the pair unless it is already there (the first, lowest-ranked listing of a pair wins). The merged id
   * may be -1, to be filled in by setMerged when first needed.
   */
  add(a: number, b: number, rank: number, mergedId: number): void {
    const h = this.slotOf(a, b);
    if (this.left[h] !== -1) return;
    this.left[h] = a;
    this.right[h] = b;
    this.ranks[h] = rank;
    this.merged[h] = mergedId;
  }

  /** The slot of the pair, or -1 when the pair has no merge. */
  find(a: number, b: number): number {
    const h = this.slotOf(a, b);
    return this.left[h] === -1 || this.ranks[h]! < 0 ? -1 : h;
  }

  rankAt(slot: number): number {
    return this.ranks[slot]!;
  }

  mergedAt(slot: number): number {
    return this.merged[slot]!;
  }

  setMerged(slot: number, mergedId: number): void {
    this.merged[slot] = mergedId;
  }

  /** Makes the pair's merge unknown from now on (its merged token turned out not to exist). */
  remove(slot: number): void {
    this.ranks[slot] = -1;
  }
}
