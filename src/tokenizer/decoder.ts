// Decoders of tokenizer.json (`decoder`): turn token strings back into text, step by step as Hugging Face's
// decode_chain does (each step maps a list of strings to a list of strings; the result is their concatenation).

import { alphabetToBytes, concatBytes, utf8, utf8Lossy } from './byte-level.js';
import { isObject, objectList, patternOf, str, UnsupportedTokenizerError, type JsonObject } from './config.js';
import { compileOnigurumaRegex, literalRegex } from './regex.js';

export type DecodeStep = (tokens: string[]) => string[];

export interface BuiltDecoder {
  run: DecodeStep;
  /** The bytes one token contributes, to tell whether a decoded stream ends inside a UTF-8 character. */
  tokenBytes: (token: string) => Uint8Array;
}

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

/** Builds the decoder a tokenizer.json describes; with none, tokens are joined with spaces as Hugging Face does. */
export function buildDecoder(cfg: unknown): BuiltDecoder {
  if (!isObject(cfg)) return { run: (t) => [t.join(' ')], tokenBytes: (t) => utf8.encode(t) };
  const kinds = new Set<string>();
  const run = build(cfg, kinds);
  const tokenBytes = kinds.has('ByteLevel')
    ? alphabetToBytes
    : kinds.has('ByteFallback')
      ? (t: string): Uint8Array => {
          const m = BYTE_TOKEN.exec(t);
          return m ? Uint8Array.of(parseInt(m[1]!, 16)) : utf8.encode(t);
        }
      : (t: string): Uint8Array => utf8.encode(t);
  return { run, tokenBytes };
}

function build(cfg: JsonObject, kinds: Set<string>): DecodeStep {
  const type = String(cfg.type);
  kinds.add(type);
  switch (type) {
    case 'Sequence': {
      const steps = objectList(cfg.decoders).map((c) => build(c, kinds));
      return (tokens) => steps.reduce((acc, step) => step(acc), tokens);
    }
    case 'ByteLevel':
      return (tokens) => [utf8Lossy.decode(concatBytes(tokens.map(alphabetToBytes)))];
    case 'Replace': {
      const p = patternOf(cfg);
      const re = 'regex' in p ? compileOnigurumaRegex(p.regex) : literalRegex(p.literal);
      const content = str(cfg, 'content') ?? '';
      return (tokens) => tokens.map((t) => t.replace(re, () => content));
    }
    case 'ByteFallback':
      return byteFallback;
    case 'Fuse':
      return (tokens) => [tokens.join('')];
    case 'Strip': {
      const content = str(cfg, 'content') ?? ' ';
      const start = typeof cfg.start === 'number' ? cfg.start : 0;
      const stop = typeof cfg.stop === 'number' ? cfg.stop : 0;
      return (tokens) => tokens.map((t) => strip(t, content, start, stop));
    }
    case 'Metaspace': {
      const replacement = str(cfg, 'replacement') ?? '▁';
      const scheme = str(cfg, 'prepend_scheme') ?? (cfg.add_prefix_space === false ? 'never' : 'always');
      return (tokens) =>
        tokens.map((t, i) => {
          const s = t.replaceAll(replacement, ' ');
          return scheme !== 'never' && i === 0 && s.startsWith(' ') ? s.slice(1) : s;
        });
    }
    case 'WordPiece': {
      const prefix = str(cfg, 'prefix') ?? '##';
      return (tokens) => tokens.map((t, i) => (i === 0 ? t : t.startsWith(prefix) ? t.slice(prefix.length) : ' ' + t));
    }
    case 'BPEDecoder': {
      const suffix = str(cfg, 'suffix') ?? '</w>';
      return (tokens) => tokens.map((t, i) => t.replaceAll(suffix, i + 1 === tokens.length ? '' : ' '));
    }
    default:
      throw new UnsupportedTokenizerError(`decoder ${JSON.stringify(cfg.type)}`);
  }
}

/** Runs of <0xXX> tokens become their UTF-8 text; a run that is not valid UTF-8 becomes one U+FFFD per byte. */
function byteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let pending: number[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    try {
      out.push(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(pending)));
    } catch {
      for (let i = 0; i < pending.length; i++) out.push('\uFFFD');
    }
    pending = [];
  };
  for (const t of tokens) {
    const m = BYTE_TOKEN.exec(t);
    if (m) {
      pending.push(parseInt(m[1]!, 16));
      continue;
    }
    flush();
    out.push(t);
  }
  flush();
  return out;
}

function strip(token: string, content: string, start: number, stop: number): string {
  const chars = [...token];
  let from = 0;
  while (from < start && from < chars.length && chars[from] === content) from++;
  let to = chars.length;
  while (chars.length - to < stop && to > from && chars[to - 1] === content) to--;
  return chars.slice(from, to).join('');
}
