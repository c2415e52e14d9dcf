// Streams generated tokens out as text: each push returns only text that is final, never half a UTF-8 character
// (an emoji or CJK character often spans several byte-level tokens), and the pieces concatenate to decode(all).
//
// Text is decoded over a short window (the previous chunk plus the new tokens) and the new part is the
// difference, as vLLM does: decoders that treat the start of a text specially (a stripped leading space) then
// see the same context as a full decode would.

import type { Tokenizer } from './types.js';

/** Prompt tokens kept as context for the first window. */
const PROMPT_CONTEXT = 6;

export interface IncrementalDetokenizerOptions {
  skipSpecialTokens?: boolean;
  /** The prompt the generated ids follow, so the first generated word is decoded in context. */
  promptIds?: readonly number[];
}

export class IncrementalDetokenizer {
  private readonly ids: number[];
  /** ids[prefix, read) were emitted last; ids[read, …) are not emitted yet. */
  private prefix = 0;
  private read: number;
  private readonly skipSpecialTokens: boolean;

  constructor(private readonly tok: Tokenizer, opts: IncrementalDetokenizerOptions = {}) {
    this.skipSpecialTokens = opts.skipSpecialTokens ?? false;
    this.ids = (opts.promptIds ?? []).slice(-PROMPT_CONTEXT);
    this.read = this.ids.length;
  }

  /** Adds one generated id; returns the text it completes ('' while a character is still incomplete). */
  push(id: number): string {
    this.ids.push(id);
    if (this.endsInsideCharacter()) return '';
    return this.emit(false);
  }

  /** Returns whatever is still held back (at the end of generation), even an incomplete character as U+FFFD. */
  flush(): string {
    return this.read < this.ids.length ? this.emit(true) : '';
  }

  private emit(force: boolean): string {
    const opts = { skipSpecialTokens: this.skipSpecialTokens };
    const before = this.tok.decode(this.ids.slice(this.prefix, this.read), opts);
    const now = this.tok.decode(this.ids.slice(this.prefix), opts);
    // Without byte information, a trailing U+FFFD may be half a character: wait for more tokens.
    if (!force && !this.tok.tokenBytes && now.endsWith('\uFFFD')) return '';
    if (now.length <= before.length) {
      // Nothing new (e.g. a skipped special token): keep the window where it is.
      if (force) this.read = this.ids.length;
      return '';
    }
    this.prefix = this.read;
    this.read = this.ids.length;
    return now.slice(before.length);
  }

  /** Whether the bytes decoded so far end with an incomplete UTF-8 sequence. */
  private endsInsideCharacter(): boolean {
    if (!this.tok.tokenBytes) return false;
    // The last 4 bytes of the stream are enough: a UTF-8 sequence is at most 4 bytes long.
    const tail: number[] = [];
    for (let i = this.ids.length - 1; i >= this.read && tail.length < 4; i--) {
      const id = this.ids[i]!;
      if (this.skipSpecialTokens && this.tok.isSpecial(id)) continue;
      const bytes = this.tok.tokenBytes(id);
      if (!bytes) return false;
      for (let j = bytes.length - 1; j >= 0 && tail.length < 4; j--) tail.push(bytes[j]!);
    }
    // tail is reversed: tail[0] is the last byte. Find the last lead byte and compare its length with what follows.
    for (let k = 0; k < tail.length; k++) {
      const b = tail[k]!;
      if ((b & 0xc0) === 0x80) continue; // continuation byte
      const need = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 1;
      return need > k + 1;
    }
    return false;
  }
}
