// SentencePiece-style BPE as llama.cpp runs it for GGUF vocabularies of type "llama": the text (spaces already
// written as ▁) starts as one symbol per character; repeatedly the adjacent pair whose concatenation is a
// vocabulary entry with the highest score is merged (leftmost first on equal scores). Symbols left that are
// not vocabulary entries are written as <0xXX> byte tokens.

import { utf8 } from './byte-level.js';
import { Heap } from './heap.js';
import { codePoints } from './normalizer.js';
import { PieceCache } from './piece-cache.js';

export interface SpmModelOptions {
  vocab: ReadonlyMap<string, number>;
  scores: ArrayLike<number>;
  unkId?: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  /** Combined length when queued; a different length at pop time means a side was merged since. */
  size: number;
}

export class SpmModel {
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly cache = new PieceCache();
  /**
   * See PieceModel: merged symbols are vocabulary entries; a symbol left that is not one is a single character,
   * written as byte tokens (or <unk>s), unless some byte has neither.
   */
  readonly codePointsPerToken: number | undefined;

  constructor(private readonly opts: SpmModelOptions) {
    for (let b = 0; b < 256; b++) {
      const hex = b.toString(16).toUpperCase().padStart(2, '0');
      this.byteIds[b] = opts.vocab.get(`<0x${hex}>`) ?? opts.vocab.get(String.fromCharCode(b)) ?? -1;
    }
    let longest = 1;
    for (const piece of opts.vocab.keys()) longest = Math.max(longest, codePoints(piece));
    this.codePointsPerToken = opts.unkId !== undefined || this.byteIds.every((id) => id >= 0) ? longest : undefined;
  }

  encodePiece(text: string, out: number[]): void {
    let ids = this.cache.get(text);
    if (ids === undefined) {
      ids = this.encodeUncached(text);
      this.cache.set(text, ids);
    }
    for (const id of ids) out.push(id);
  }

  private encodeUncached(text: string): number[] {
    const { vocab, scores } = this.opts;
    // Symbols as [start, length) in UTF-16 units, one per code point, in a doubly linked list.
    const start: number[] = [];
    const len: number[] = [];
    for (let i = 0; i < text.length; ) {
      const n = text.codePointAt(i)! > 0xffff ? 2 : 1;
      start.push(i);
      len.push(n);
      i += n;
    }
    const count = start.length;
    const prev = start.map((_, i) => i - 1);
    const next = start.map((_, i) => (i + 1 < count ? i + 1 : -1));
    // Highest score first; on equal scores the leftmost pair.
    const queue = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const size = len[left]! + len[right]!;
      const id = vocab.get(text.substr(start[left]!, size));
      if (id === undefined) return;
      queue.push({ left, right, score: scores[id] ?? 0, size });
    };
    for (let i = 1; i < count; i++) tryAdd(i - 1, i);
    while (queue.size > 0) {
      const b = queue.pop();
      if (len[b.left] === 0 || len[b.right] === 0 || len[b.left]! + len[b.right]! !== b.size) continue;
      len[b.left] = b.size;
      len[b.right] = 0;
      next[b.left] = next[b.right]!;
      if (next[b.left]! >= 0) prev[next[b.left]!] = b.left;
      tryAdd(prev[b.left]!, b.left);
      tryAdd(b.left, next[b.left]!);
    }
    const out: number[] = [];
    for (let i = count > 0 ? 0 : -1; i >= 0; i = next[i]!) {
      const piece = text.substr(start[i]!, len[i]!);
      const id = vocab.get(piece);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const byte of utf8.encode(piece)) {
        const byteId = this.byteIds[byte]!;
        if (byteId >= 0) out.push(byteId);
        else if (this.opts.unkId !== undefined) out.push(this.opts.unkId);
      }
    }
    return out;
  }
}
