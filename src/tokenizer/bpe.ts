// Rank-ordered BPE over token ids: a piece starts as one symbol per byte (byte-level) or per character, then
// the adjacent pair with the lowest merge rank is merged (leftmost first on ties) until no pair has a merge.
// Pieces repeat a lot in real text, so results are cached per piece.

import { alphabetByteLength, byteChar, bytesToAlphabet, utf8 } from './byte-level.js';
import { UnsupportedTokenizerError } from './config.js';
import { Heap } from './heap.js';
import { PairTable } from './pair-table.js';
import { codePoints } from './normalizer.js';
import { PieceCache } from './piece-cache.js';

/**
 * Heap entries pack (rank, position) into one double-exact number: rank · positions + position, where positions is
 * the piece's length rounded up to a power of two. A JS string has < 2^30 UTF-16 units (< 2^32 UTF-8 bytes), so
 * up to 2^21 merge ranks every piece fits within 2^53; no real vocabulary has a tenth of that many merges.
 */
const MAX_MERGES = 2 ** 21;
/** Up to this many symbols a quadratic scan beats the heap's bookkeeping. */
const SMALL_WORD = 48;

export interface BpeModelOptions {
  vocab: ReadonlyMap<string, number>;
  /** In rank order: "left right" strings (older files, GGUF) or [left, right] pairs (newer files). */
  merges: ReadonlyArray<unknown>;
  /** Work on UTF-8 bytes written in GPT-2's byte alphabet. */
  byteLevel: boolean;
  /** A piece that is itself a vocabulary entry is taken whole, without merging (Llama 3). */
  ignoreMerges: boolean;
  /** Characters missing from the vocabulary become <0xXX> byte tokens (SentencePiece-style BPE). */
  byteFallback: boolean;
  unkId?: number;
  fuseUnk: boolean;
}

export class BpeModel {
  private readonly merges: PairTable;
  /** Model vocabulary by id, to find a merged token's id the first time its pair merges. */
  private readonly pieces: string[] = [];
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly byteFallbackIds = new Int32Array(256).fill(-1);
  private readonly cache = new PieceCache();
  /** See PieceModel. */
  readonly codePointsPerToken: number | undefined;

  constructor(private readonly opts: BpeModelOptions) {
    const { vocab } = opts;
    if (opts.merges.length > MAX_MERGES) throw new UnsupportedTokenizerError(`${opts.merges.length} BPE merges (at most ${MAX_MERGES})`);
    this.merges = new PairTable(opts.merges.length);
    for (const [piece, id] of vocab) this.pieces[id] = piece;
    // Merged ids are looked up lazily: a third of the load time of a 100k-merge vocabulary saved.
    opts.merges.forEach((m, rank) => {
      const pair = mergePair(m);
      if (!pair) return;
      const left = vocab.get(pair[0]);
      const right = vocab.get(pair[1]);
      if (left !== undefined && right !== undefined) this.merges.add(left, right, rank, -1);
    });
    for (let b = 0; b < 256; b++) {
      if (opts.byteLevel) this.byteIds[b] = vocab.get(byteChar(b)) ?? -1;
      const hex = b.toString(16).toUpperCase().padStart(2, '0');
      this.byteFallbackIds[b] = vocab.get(`<0x${hex}>`) ?? -1;
    }
    this.codePointsPerToken = this.longestToken();
  }

  /**
   * Byte-level: every token stands for at most its byte length of code points, and every byte has a token. Per
   * character: a token stands for its own characters; a character missing from the vocabulary takes byte
   * fallback tokens or one <unk> (fused <unk> runs, or no way out at all, leave the count open).
   */
  private longestToken(): number | undefined {
    let longest = 1;
    if (this.opts.byteLevel) {
      if (this.byteIds.some((id) => id < 0)) return undefined;
      for (const piece of this.pieces) if (piece !== undefined) longest = Math.max(longest, alphabetByteLength(piece));
      return longest;
    }
    const fallback = this.opts.byteFallback && this.byteFallbackIds.every((id) => id >= 0);
    if (!fallback && (this.opts.unkId === undefined || this.opts.fuseUnk)) return undefined;
    for (const piece of this.pieces) if (piece !== undefined) longest = Math.max(longest, codePoints(piece));
    return longest;
  }

  /** Appends the ids of one pre-tokenized piece. */
  encodePiece(piece: string, out: number[]): void {
    const cached = this.cache.get(piece);
    if (cached !== undefined) {
      for (let i = 0; i < cached.length; i++) out.push(cached[i]!);
      return;
    }
    const ids = this.encodeUncached(piece);
    this.cache.set(piece, ids);
    for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
  }

  private encodeUncached(piece: string): number[] {
    const { vocab } = this.opts;
    if (this.opts.byteLevel) {
      const bytes = utf8.encode(piece);
      if (this.opts.ignoreMerges) {
        const whole = vocab.get(bytesToAlphabet(bytes));
        if (whole !== undefined) return [whole];
      }
      const ids: number[] = [];
      for (let i = 0; i < bytes.length; i++) {
        const id = this.byteIds[bytes[i]!]!;
        if (id >= 0) ids.push(id); // a byte missing from the alphabet is dropped, as Hugging Face does
      }
      return this.merge(ids);
    }
    if (this.opts.ignoreMerges) {
      const whole = vocab.get(piece);
      if (whole !== undefined) return [whole];
    }
    return this.merge(this.charSymbols(piece));
  }

  private charSymbols(piece: string): number[] {
    const { vocab, unkId, fuseUnk } = this.opts;
    const ids: number[] = [];
    let lastWasUnk = false;
    for (const ch of piece) {
      const id = vocab.get(ch);
      if (id !== undefined) {
        ids.push(id);
        lastWasUnk = false;
        continue;
      }
      if (this.opts.byteFallback) {
        const bytes = utf8.encode(ch);
        const fallback = Array.from(bytes, (b) => this.byteFallbackIds[b]!);
        if (fallback.every((f) => f >= 0)) {
          ids.push(...fallback);
          lastWasUnk = false;
          continue;
        }
      }
      if (unkId === undefined) continue;
      if (!(fuseUnk && lastWasUnk)) ids.push(unkId);
      lastWasUnk = true;
    }
    return ids;
  }

  private merge(ids: number[]): number[] {
    if (ids.length < 2) return ids;
    return ids.length <= SMALL_WORD ? this.mergeSmall(ids) : this.mergeLarge(ids);
  }

  /** The id a merge slot's pair becomes, or -1 when the merged token is not in the vocabulary. */
  private mergedId(slot: number, a: number, b: number): number {
    let id = this.merges.mergedAt(slot);
    if (id < 0) {
      id = this.opts.vocab.get(this.pieces[a]! + this.pieces[b]!) ?? -1;
      if (id < 0) this.merges.remove(slot);
      else this.merges.setMerged(slot, id);
    }
    return id;
  }

  /** Quadratic scan: find the lowest-ranked pair, merge it, repeat. */
  private mergeSmall(ids: number[]): number[] {
    const merges = this.merges;
    for (;;) {
      let best = Infinity;
      let bestPos = -1;
      let bestSlot = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const slot = merges.find(ids[i]!, ids[i + 1]!);
        if (slot >= 0 && merges.rankAt(slot) < best) {
          best = merges.rankAt(slot);
          bestPos = i;
          bestSlot = slot;
        }
      }
      if (bestPos < 0) return ids;
      const merged = this.mergedId(bestSlot, ids[bestPos]!, ids[bestPos + 1]!);
      if (merged < 0) continue; // that merge is gone now; scan again
      ids[bestPos] = merged;
      ids.splice(bestPos + 1, 1);
    }
  }

  /** Linked list of symbols and a min-heap of candidate merges keyed by (rank, position). */
  private mergeLarge(initial: number[]): number[] {
    const n = initial.length;
    // Like Hugging Face's and llama.cpp's BPE, no limit on a piece's length: a run of millions of symbols
    // (one word, or whitespace) merges as any other piece does.
    const positions = 2 ** Math.ceil(Math.log2(n));
    const ids = Int32Array.from(initial);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = new Heap<number>((a, b) => a < b);
    const push = (pos: number): void => {
      const right = next[pos]!;
      if (pos < 0 || right < 0) return;
      const slot = this.merges.find(ids[pos]!, ids[right]!);
      if (slot >= 0) heap.push(this.merges.rankAt(slot) * positions + pos);
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (heap.size > 0) {
      const top = heap.pop();
      const rank = Math.floor(top / positions);
      const pos = top - rank * positions;
      const right = next[pos]!;
      if (!alive[pos] || right < 0) continue;
      // Stale entry: the pair at pos has changed since it was queued.
      const slot = this.merges.find(ids[pos]!, ids[right]!);
      if (slot < 0 || this.merges.rankAt(slot) !== rank) continue;
      const merged = this.mergedId(slot, ids[pos]!, ids[right]!);
      if (merged < 0) continue;
      ids[pos] = merged;
      alive[right] = 0;
      next[pos] = next[right]!;
      if (next[pos]! >= 0) prev[next[pos]!] = pos;
      push(prev[pos]!);
      push(pos);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]!) out.push(ids[i]!);
    return out;
  }
}

function mergePair(m: unknown): readonly [string, string] | undefined {
  if (typeof m === 'string') {
    const space = m.indexOf(' ');
    return space > 0 && m.indexOf(' ', space + 1) < 0 ? [m.slice(0, space), m.slice(space + 1)] : undefined;
  }
  if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
  return undefined;
}
