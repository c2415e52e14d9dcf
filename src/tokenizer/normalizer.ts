// Text normalizers of tokenizer.json (`normalizer`): applied to each stretch of text between added tokens.

import { isObject, objectList, patternOf, str, UnsupportedTokenizerError, type JsonObject } from './config.js';
import { compileOnigurumaRegex, literalRegex } from './regex.js';

export type Normalizer = (text: string) => string;

const identity: Normalizer = (t) => t;

/** Builds the normalizer a tokenizer.json describes; undefined when it is absent or does nothing. */
export function buildNormalizer(cfg: unknown): Normalizer | undefined {
  if (!isObject(cfg)) return undefined;
  const n = build(cfg);
  return n === identity ? undefined : n;
}

function build(cfg: JsonObject): Normalizer {
  switch (cfg.type) {
    case 'Sequence': {
      const parts = objectList(cfg.normalizers).map(build).filter((n) => n !== identity);
      if (parts.length === 0) return identity;
      if (parts.length === 1) return parts[0]!;
      return (t) => parts.reduce((acc, n) => n(acc), t);
    }
    case 'NFC': return (t) => (isAscii(t) ? t : t.normalize('NFC'));
    case 'NFD': return (t) => (isAscii(t) ? t : t.normalize('NFD'));
    case 'NFKC': return (t) => (isAscii(t) ? t : t.normalize('NFKC'));
    case 'NFKD': return (t) => (isAscii(t) ? t : t.normalize('NFKD'));
    case 'Lowercase': return (t) => t.toLowerCase();
    case 'Prepend': {
      const prefix = str(cfg, 'prepend') ?? '';
      return (t) => (t.length > 0 ? prefix + t : t);
    }
    case 'Replace': {
      const p = patternOf(cfg);
      const re = 'regex' in p ? compileOnigurumaRegex(p.regex) : literalRegex(p.literal);
      const content = str(cfg, 'content') ?? '';
      // A function replacement keeps `$` in the content literal.
      return (t) => t.replace(re, () => content);
    }
    case 'Strip': {
      const left = cfg.strip_left !== false;
      const right = cfg.strip_right !== false;
      return (t) => (left && right ? t.trim() : left ? t.trimStart() : right ? t.trimEnd() : t);
    }
    case 'StripAccents': return (t) => t.replace(/\p{Mn}/gu, '');
    default:
      throw new UnsupportedTokenizerError(`normalizer ${JSON.stringify(cfg.type)}`);
  }
}

export function isAscii(t: string): boolean {
  // A regex test is much faster than a char loop for the long ASCII prompts that dominate.
  return !/[^\x00-\x7f]/.test(t);
}
