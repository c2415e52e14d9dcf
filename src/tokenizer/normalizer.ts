// Text normalizers of tokenizer.json (`normalizer`): applied to each stretch of text between added tokens.

import { isObject, objectList, patternOf, str, UnsupportedTokenizerError, type JsonObject } from './config.js';
import { compileOnigurumaRegex, literalRegex } from './regex.js';

export type Normalizer = (text: string) => string;

/**
 * How much a normalizer can shorten text, in code points: cp(out) ≥ cp(in) / factor, for ASCII input and for any
 * input; undefined where it can drop text outright (Strip, StripAccents, a regex Replace). Lets the tokenizer
 * bound a text's token count without encoding it.
 */
export interface NormalizerShrink {
  ascii: number | undefined;
  other: number | undefined;
}

export interface BuiltNormalizer {
  run: Normalizer;
  shrink: NormalizerShrink;
}

interface Step extends BuiltNormalizer {
  /** ASCII in, ASCII out. */
  keepsAscii: boolean;
}

/**
 * The most code points one code point becomes under full canonical (NFD) / compatibility (NFKD) decomposition
 * (U+1F82, U+FDFA; tokenizer-bounds.test.ts checks them against the runtime's Unicode data). Decomposing never
 * shortens text, and NFD(NFC(t)) = NFD(t), so cp(NFC(t)) ≥ cp(t) / 4; likewise NFKC with 18.
 */
export const MAX_CANONICAL_DECOMPOSITION = 4;
export const MAX_COMPATIBILITY_DECOMPOSITION = 18;

const identity: Step = { run: (t) => t, shrink: { ascii: 1, other: 1 }, keepsAscii: true };

/** Builds the normalizer a tokenizer.json describes; undefined when it is absent or does nothing. */
export function buildNormalizer(cfg: unknown): BuiltNormalizer | undefined {
  if (!isObject(cfg)) return undefined;
  const n = build(cfg);
  return n === identity ? undefined : { run: n.run, shrink: n.shrink };
}

function step(run: Normalizer, ascii: number | undefined, other: number | undefined, keepsAscii: boolean): Step {
  return { run, shrink: { ascii, other }, keepsAscii };
}

const times = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a * b);

function sequence(parts: Step[]): Step {
  let ascii: number | undefined = 1;
  let other: number | undefined = 1;
  let stillAscii = true;
  for (const p of parts) {
    ascii = times(ascii, stillAscii ? p.shrink.ascii : p.shrink.other);
    other = times(other, p.shrink.other);
    stillAscii &&= p.keepsAscii;
  }
  return step((t) => parts.reduce((acc, n) => n.run(acc), t), ascii, other, stillAscii);
}

function build(cfg: JsonObject): Step {
  switch (cfg.type) {
    case 'Sequence': {
      const parts = objectList(cfg.normalizers).map(build).filter((n) => n !== identity);
      if (parts.length === 0) return identity;
      return parts.length === 1 ? parts[0]! : sequence(parts);
    }
    // The unicode forms leave ASCII as it is.
    case 'NFC': return step((t) => (isAscii(t) ? t : t.normalize('NFC')), 1, MAX_CANONICAL_DECOMPOSITION, true);
    case 'NFD': return step((t) => (isAscii(t) ? t : t.normalize('NFD')), 1, 1, true);
    case 'NFKC': return step((t) => (isAscii(t) ? t : t.normalize('NFKC')), 1, MAX_COMPATIBILITY_DECOMPOSITION, true);
    case 'NFKD': return step((t) => (isAscii(t) ? t : t.normalize('NFKD')), 1, 1, true);
    // Lowercasing maps every code point to one or more.
    case 'Lowercase': return step((t) => t.toLowerCase(), 1, 1, false);
    case 'Prepend': {
      const prefix = str(cfg, 'prepend') ?? '';
      return step((t) => (t.length > 0 ? prefix + t : t), 1, 1, isAscii(prefix));
    }
    case 'Replace': {
      const p = patternOf(cfg);
      const re = 'regex' in p ? compileOnigurumaRegex(p.regex) : literalRegex(p.literal);
      const content = str(cfg, 'content') ?? '';
      // A literal of n code points becoming m ≥ 1 shortens text by n / m at most; a regex match may be any length.
      const ratio = 'literal' in p && content.length > 0 ? Math.max(1, codePoints(p.literal) / codePoints(content)) : undefined;
      // A function replacement keeps `$` in the content literal.
      return step((t) => t.replace(re, () => content), ratio, ratio, isAscii(content));
    }
    case 'Strip': {
      const left = cfg.strip_left !== false;
      const right = cfg.strip_right !== false;
      return step((t) => (left && right ? t.trim() : left ? t.trimStart() : right ? t.trimEnd() : t), undefined, undefined, true);
    }
    case 'StripAccents': return step((t) => t.replace(/\p{Mn}/gu, ''), 1, undefined, true);
    default:
      throw new UnsupportedTokenizerError(`normalizer ${JSON.stringify(cfg.type)}`);
  }
}

/** Code points of `t` (a lone surrogate counts as one). */
export function codePoints(t: string): number {
  if (!/[\ud800-\udbff]/.test(t)) return t.length;
  let n = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < t.length) {
      const d = t.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

export function isAscii(t: string): boolean {
  // A regex test is much faster than a char loop for the long ASCII prompts that dominate.
  return !/[^\x00-\x7f]/.test(t);
}
