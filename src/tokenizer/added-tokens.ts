// Added (special) tokens are found in the text before anything else: leftmost-longest, non-overlapping matches,
// with Hugging Face's single_word / lstrip / rstrip rules. A trie keeps the scan cheap with 800+ tokens.

export interface AddedToken {
  id: number;
  content: string;
  /** Dropped by decode(skipSpecialTokens) and reported by isSpecial. */
  special: boolean;
  /** Only matched when not inside a word. */
  singleWord: boolean;
  /** The match swallows whitespace on its left / right. */
  lstrip: boolean;
  rstrip: boolean;
  /** Matched in normalized text (true) or in the raw text (false). */
  normalized: boolean;
}

/** A stretch of text, or an added token's id. */
export type Segment = string | number;

/** Whether a match of `token` over text[start, end) may stand as the token; when not, that text stays text. */
export type MatchFilter = (token: AddedToken, start: number, end: number) => boolean;

interface TrieNode {
  next: Map<number, TrieNode>;
  token?: AddedToken;
}

export class AddedTokenMatcher {
  private readonly root: TrieNode = { next: new Map() };
  readonly size: number;

  /** `contentOf` gives the text to match (Hugging Face normalizes the content of normalized tokens). */
  constructor(tokens: readonly AddedToken[], contentOf: (t: AddedToken) => string = (t) => t.content) {
    let size = 0;
    for (const t of tokens) {
      const content = contentOf(t);
      if (content.length === 0) continue;
      let node = this.root;
      for (let i = 0; i < content.length; i++) {
        const c = content.charCodeAt(i);
        let child = node.next.get(c);
        if (!child) {
          child = { next: new Map() };
          node.next.set(c, child);
        }
        node = child;
      }
      // The first token of a content wins, as the first pattern does in Hugging Face's automaton.
      if (!node.token) {
        node.token = t;
        size++;
      }
    }
    this.size = size;
  }

  /** Cuts `text` into text stretches and token ids, appending to `out`; `accept` can refuse matches. */
  split(text: string, out: Segment[], accept?: MatchFilter): void {
    if (this.size === 0) {
      if (text.length > 0) out.push(text);
      return;
    }
    let emitted = 0; // text before this offset is already in `out`
    let i = 0;
    while (i < text.length) {
      const match = this.longestAt(text, i, accept);
      if (!match) {
        i++;
        continue;
      }
      let start = i;
      let end = match.end;
      const t = match.token;
      i = end;
      if (t.singleWord && (isWordCharBefore(text, start) || isWordCharAt(text, end))) continue;
      if (t.lstrip) start = Math.max(emitted, whitespaceStartBefore(text, start));
      if (t.rstrip) end = whitespaceEndAfter(text, end);
      if (start > emitted) out.push(text.slice(emitted, start));
      out.push(t.id);
      emitted = end;
      i = Math.max(i, end);
    }
    if (emitted < text.length) out.push(text.slice(emitted));
  }

  /** The longest (accepted) token whose content starts at `at`. */
  longestAt(text: string, at: number, accept?: MatchFilter): { token: AddedToken; end: number } | undefined {
    let node = this.root.next.get(text.charCodeAt(at));
    let best: { token: AddedToken; end: number } | undefined;
    let j = at + 1;
    while (node) {
      if (node.token && (!accept || accept(node.token, at, j))) best = { token: node.token, end: j };
      if (j >= text.length) break;
      node = node.next.get(text.charCodeAt(j));
      j++;
    }
    return best;
  }
}

const WORD_CHAR = /[\p{L}\p{N}_]/u;
const WHITESPACE = /\s/u;

function isWordCharBefore(text: string, at: number): boolean {
  if (at === 0) return false;
  const cp = text.codePointAt(at - 1 > 0 && isLowSurrogate(text.charCodeAt(at - 1)) ? at - 2 : at - 1)!;
  return WORD_CHAR.test(String.fromCodePoint(cp));
}

function isWordCharAt(text: string, at: number): boolean {
  return at < text.length && WORD_CHAR.test(String.fromCodePoint(text.codePointAt(at)!));
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

function whitespaceStartBefore(text: string, at: number): number {
  while (at > 0 && WHITESPACE.test(text[at - 1]!)) at--;
  return at;
}

function whitespaceEndAfter(text: string, at: number): number {
  while (at < text.length && WHITESPACE.test(text[at]!)) at++;
  return at;
}
