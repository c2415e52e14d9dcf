// Client strings inside a rendered chat template stay text. Before rendering, every special-token text in them,
// and any fragment at their edges that could join the text beside it into one, is swapped for a placeholder that
// the template carries through like any other characters (trim, split, concatenation, repetition); after
// rendering the originals are put back and their places reported, so the tokenizer matches no special token over
// them (EncodeOptions.textRanges) while the template's own markup still becomes control tokens.
//
// Only those stretches change, so a template's tests on client strings (role == "user", content.startswith(...))
// see what the client sent unless it carried special-token text; swapping whole strings would break those tests.

import { AddedTokenMatcher } from './added-tokens.js';
import type { Tokenizer } from './types.js';

/** Unicode noncharacters, reserved for a program's internal use; client text holding them is placeholdered too. */
const OPEN = '\uFDD0';
const CLOSE = '\uFDD1';
const PLACEHOLDER = /\uFDD0(\d+)\uFDD1/g;
const STRAY_MARK = /[\uFDD0\uFDD1]/g;

/** The special-token texts of a vocabulary, indexed to find them, and fragments of them, in client strings. */
export class SpecialTexts {
  private readonly matcher: AddedTokenMatcher;
  /** Proper prefixes and proper suffixes of the texts: what a string may end / start with to join a neighbour. */
  private readonly prefixes = new Set<string>();
  private readonly suffixes = new Set<string>();
  private readonly longest: number;
  /** First characters of the texts and the placeholder marks: the only places a stretch to swap can start. */
  private readonly starts: RegExp;

  constructor(texts: Iterable<string>) {
    const list = [...new Set(texts)].filter((t) => t.length > 0);
    this.matcher = new AddedTokenMatcher(list.map((content, id) => ({
      id, content, special: true, singleWord: false, lstrip: false, rstrip: false, normalized: false,
    })));
    let longest = 0;
    const firsts = new Set<string>([OPEN, CLOSE]);
    for (const t of list) {
      longest = Math.max(longest, t.length);
      firsts.add(t[0]!);
      for (let k = 1; k < t.length; k++) {
        this.prefixes.add(t.slice(0, k));
        this.suffixes.add(t.slice(k));
      }
    }
    this.longest = longest;
    const escaped = [...firsts].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
    this.starts = new RegExp(`[${escaped}]`, 'g');
  }

  /** The vocabulary's special tokens (those encode(parseSpecial) turns into control ids). */
  static of(tokenizer: Tokenizer): SpecialTexts {
    const texts: string[] = [];
    for (let id = 0; id < tokenizer.vocabSize; id++) {
      const t = tokenizer.isSpecial(id) ? tokenizer.idToToken(id) : undefined;
      if (t !== undefined) texts.push(t);
    }
    return new SpecialTexts(texts);
  }

  /** Stretches [start, end) of `s` to swap, in order and apart. */
  stretchesIn(s: string): Array<[number, number]> {
    const found: Array<[number, number]> = [];
    const edge = Math.min(this.longest - 1, s.length);
    // A fragment at the start that ends some special text, or one at the end that begins one.
    for (let k = edge; k >= 1; k--) {
      if (this.suffixes.has(s.slice(0, k))) {
        found.push([0, k]);
        break;
      }
    }
    const re = this.starts;
    re.lastIndex = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      const at = m.index;
      const end = s[at] === OPEN || s[at] === CLOSE ? at + 1 : this.matcher.longestAt(s, at)?.end;
      if (end === undefined) continue;
      found.push([at, end]);
      re.lastIndex = end;
    }
    for (let k = edge; k >= 1; k--) {
      if (this.prefixes.has(s.slice(s.length - k))) {
        found.push([s.length - k, s.length]);
        break;
      }
    }
    return mergeStretches(found);
  }
}

/** Sorted by start, overlapping or touching stretches joined. */
function mergeStretches(stretches: Array<[number, number]>): Array<[number, number]> {
  stretches.sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [start, end] of stretches) {
    const last = out[out.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/** One rendering's placeholders: client values in, placeholdered copies out; rendered text in, originals back. */
export class ClientTextPlaceholders {
  private readonly originals: string[] = [];

  constructor(private readonly specials: SpecialTexts) {}

  /**
   * A copy of `value` with every string in it (object keys too) placeholdered. Recursive: callers bound the
   * nesting of client values first (json-bounds.ts).
   */
  protect<T>(value: T): T {
    return this.protectValue(value) as T;
  }

  private protectValue(value: unknown): unknown {
    if (typeof value === 'string') return this.protectString(value);
    if (Array.isArray(value)) return value.map((v) => this.protectValue(v));
    if (typeof value !== 'object' || value === null) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[this.protectString(k)] = this.protectValue(v);
    return out;
  }

  private protectString(s: string): string {
    const stretches = this.specials.stretchesIn(s);
    if (stretches.length === 0) return s;
    let out = '';
    let at = 0;
    for (const [start, end] of stretches) {
      out += s.slice(at, start) + OPEN + this.originals.length + CLOSE;
      this.originals.push(s.slice(start, end));
      at = end;
    }
    return out + s.slice(at);
  }

  /**
   * The rendered text with the originals back, and where they now are. A mark left from a placeholder the template
   * cut apart is dropped (it was never the client's: the client's own marks were placeholdered).
   */
  restore(rendered: string): { text: string; textRanges: Array<[number, number]> } {
    if (this.originals.length === 0) return { text: rendered, textRanges: [] };
    const textRanges: Array<[number, number]> = [];
    let text = '';
    let at = 0;
    PLACEHOLDER.lastIndex = 0;
    for (let m = PLACEHOLDER.exec(rendered); m !== null; m = PLACEHOLDER.exec(rendered)) {
      const original = this.originals[Number(m[1])];
      if (original === undefined) continue;
      text += rendered.slice(at, m.index).replace(STRAY_MARK, '');
      textRanges.push([text.length, text.length + original.length]);
      text += original;
      at = m.index + m[0].length;
    }
    text += rendered.slice(at).replace(STRAY_MARK, '');
    return { text, textRanges: mergeStretches(textRanges) };
  }
}
