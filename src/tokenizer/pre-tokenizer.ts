// Pre-tokenizers of tokenizer.json (`pre_tokenizer`): cut normalized text into pieces that BPE then encodes
// one at a time. The ByteLevel step's byte→alphabet mapping is left to the BPE model (it works on bytes).

import { bool, isObject, objectList, patternOf, str, UnsupportedTokenizerError, type JsonObject } from './config.js';
import { compileOnigurumaRegex, literalRegex, type RegexDialect } from './regex.js';

/** Cuts each piece further. `atTextStart`: the first piece begins the whole input (Metaspace's "first" scheme). */
export type PreTokenizer = (pieces: string[], atTextStart: boolean) => string[];

export type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/** GPT-2's pattern, used by ByteLevel with use_regex. */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

export interface BuiltPreTokenizer {
  run: PreTokenizer;
  /** A ByteLevel step is present: the model encodes UTF-8 bytes through the byte alphabet. */
  byteLevel: boolean;
  /** Some step removes text (a split with behavior Removed: Whitespace, WhitespaceSplit...); the others keep all. */
  dropsText: boolean;
}

export function buildPreTokenizer(cfg: unknown): BuiltPreTokenizer | undefined {
  if (!isObject(cfg)) return undefined;
  const state = { byteLevel: false, dropsText: false };
  const run = build(cfg, state);
  return { run, ...state };
}

function build(cfg: JsonObject, state: { byteLevel: boolean; dropsText: boolean }): PreTokenizer {
  if (state.byteLevel) {
    // Later steps would see alphabet characters in Hugging Face; we keep raw text until the model, so refuse.
    throw new UnsupportedTokenizerError('a pre-tokenizer after ByteLevel');
  }
  switch (cfg.type) {
    case 'Sequence': {
      const steps = objectList(cfg.pretokenizers).map((c) => build(c, state));
      return (pieces, atStart) => steps.reduce((acc, step) => step(acc, atStart), pieces);
    }
    case 'Split': {
      const p = patternOf(cfg);
      const re = 'regex' in p ? compileOnigurumaRegex(p.regex) : literalRegex(p.literal);
      const behavior = behaviorOf(cfg);
      state.dropsText ||= behavior === 'Removed';
      return splitter(re, behavior, cfg.invert === true);
    }
    case 'ByteLevel': {
      state.byteLevel = true;
      const addPrefixSpace = bool(cfg, 'add_prefix_space', true);
      const split = bool(cfg, 'use_regex', true) ? splitter(compileOnigurumaRegex(GPT2_PATTERN), 'Isolated', false) : undefined;
      return (pieces, atStart) => {
        const spaced = addPrefixSpace ? pieces.map((p) => (p.startsWith(' ') ? p : ' ' + p)) : pieces;
        return split ? split(spaced, atStart) : spaced;
      };
    }
    case 'Digits':
      return splitter(cfg.individual_digits === true ? /\p{N}/gu : /\p{N}+/gu, 'Isolated', false);
    case 'Punctuation': {
      const behavior = behaviorOf(cfg);
      state.dropsText ||= behavior === 'Removed';
      return splitter(/[\p{P}\p{S}]/gu, behavior, false);
    }
    case 'Whitespace':
      state.dropsText = true;
      return splitter(/[\p{L}\p{M}\p{Nd}\p{Pc}]+|[^\p{L}\p{M}\p{Nd}\p{Pc}\s]+/gu, 'Removed', true);
    case 'WhitespaceSplit':
      state.dropsText = true;
      return splitter(/\s+/gu, 'Removed', false);
    case 'Metaspace':
      return metaspace(cfg);
    default:
      throw new UnsupportedTokenizerError(`pre-tokenizer ${JSON.stringify(cfg.type)}`);
  }
}

function behaviorOf(cfg: JsonObject): SplitBehavior {
  const b = str(cfg, 'behavior') ?? 'Isolated';
  const known: SplitBehavior[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];
  if (!(known as string[]).includes(b)) throw new UnsupportedTokenizerError(`split behavior ${b}`);
  return b as SplitBehavior;
}

function metaspace(cfg: JsonObject): PreTokenizer {
  const replacement = str(cfg, 'replacement') ?? '▁';
  // Older files say add_prefix_space; newer ones prepend_scheme ("always" | "first" | "never").
  const scheme = str(cfg, 'prepend_scheme') ?? (cfg.add_prefix_space === false ? 'never' : 'always');
  const split = cfg.split !== false ? splitter(literalRegex(replacement), 'MergedWithNext', false) : undefined;
  return (pieces, atStart) => {
    const out = pieces.map((p, i) => {
      const r = p.replaceAll(' ', replacement);
      const prepend = scheme === 'always' || (scheme === 'first' && atStart && i === 0);
      return prepend && !r.startsWith(replacement) ? replacement + r : r;
    });
    return split ? split(out, atStart) : out;
  };
}

/** A split step: every match and every stretch between matches is cut out, then kept per `behavior`. */
export function splitter(re: RegExp, behavior: SplitBehavior, invert: boolean): PreTokenizer {
  return (pieces) => {
    const out: string[] = [];
    for (const piece of pieces) splitOne(piece, re, behavior, invert, out);
    return out;
  };
}

/** Calls `visit` for every stretch of `text` in order: each match (isMatch true) and each gap between matches. */
function scan(text: string, re: RegExp, visit: (start: number, end: number, isMatch: boolean) => void): void {
  let prev = 0;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (end === start) {
      re.lastIndex = end + 1;
      continue;
    }
    if (start > prev) visit(prev, start, false);
    visit(start, end, true);
    prev = end;
  }
  if (prev < text.length) visit(prev, text.length, false);
}

function splitOne(text: string, re: RegExp, behavior: SplitBehavior, invert: boolean, out: string[]): void {
  if (text.length === 0) return;
  if (behavior === 'Isolated') {
    // The common case: every stretch is a piece (inverting changes nothing).
    scan(text, re, (start, end) => out.push(text.slice(start, end)));
    return;
  }
  // As Hugging Face's split does: (start, end, isMatch) spans covering the text, then merged per behavior.
  const spans: Array<[number, number, boolean]> = [];
  scan(text, re, (start, end, isMatch) => spans.push([start, end, isMatch !== invert]));
  const merged: Array<[number, number]> = [];
  switch (behavior) {
    case 'Removed':
      for (const [s, e, isMatch] of spans) if (!isMatch) merged.push([s, e]);
      break;
    case 'MergedWithPrevious': {
      let prevMatch = false;
      for (const [s, e, isMatch] of spans) {
        const last = merged[merged.length - 1];
        if (isMatch && !prevMatch && last) last[1] = e;
        else merged.push([s, e]);
        prevMatch = isMatch;
      }
      break;
    }
    case 'MergedWithNext': {
      let pendingStart = -1;
      for (const [s, e, isMatch] of spans) {
        if (isMatch) {
          if (pendingStart < 0) pendingStart = s;
          else {
            merged.push([pendingStart, s]);
            pendingStart = s;
          }
        } else {
          merged.push([pendingStart < 0 ? s : pendingStart, e]);
          pendingStart = -1;
        }
      }
      if (pendingStart >= 0) merged.push([pendingStart, text.length]);
      break;
    }
    case 'Contiguous': {
      let prevMatch = false;
      for (const [s, e, isMatch] of spans) {
        const last = merged[merged.length - 1];
        if (isMatch && prevMatch && last) last[1] = e;
        else merged.push([s, e]);
        prevMatch = isMatch;
      }
      break;
    }
  }
  for (const [s, e] of merged) if (e > s) out.push(text.slice(s, e));
}
