// The encode/decode pipeline shared by every vocabulary source: added tokens are cut out first, the text between
// them is normalized, pre-tokenized into pieces and each piece encoded by the model; special tokens go around.

import { AddedTokenMatcher, type AddedToken, type MatchFilter, type Segment } from './added-tokens.js';
import { codePoints, isAscii, type Normalizer, type NormalizerShrink } from './normalizer.js';
import type { PreTokenizer } from './pre-tokenizer.js';
import type { DecodeOptions, EncodeOptions, Tokenizer, TokenizerSource } from './types.js';

export interface PieceModel {
  /** Appends the ids of one pre-tokenized piece. */
  encodePiece(piece: string, out: number[]): void;
  /**
   * The most code points of a piece one token can stand for (its longest vocabulary entry), so a piece of n code
   * points takes at least n / this many tokens; undefined when some input may get no token at all.
   */
  readonly codePointsPerToken: number | undefined;
}

export interface PipelineParts {
  /** Token text → id, added tokens included. */
  vocab: ReadonlyMap<string, number>;
  /** Id → token text (may have holes). */
  tokens: ReadonlyArray<string | undefined>;
  model: PieceModel;
  normalizer?: Normalizer;
  /** How much the normalizer can shorten text; without it, a normalizer is taken to drop text. */
  normalizerShrink?: NormalizerShrink;
  preTokenizer?: PreTokenizer;
  /** The pre-tokenizer removes text (a Removed split). */
  preTokenizerDropsText?: boolean;
  addedTokens: readonly AddedToken[];
  /** Ids put before / after the text when addSpecialTokens is on. */
  prefixIds: readonly number[];
  suffixIds: readonly number[];
  bosId: number | undefined;
  eosIds: readonly number[];
  /** Text of the ids (special ones already filtered out when asked). */
  decode: (ids: readonly number[]) => string;
  tokenBytes: (id: number) => Uint8Array | undefined;
  source?: TokenizerSource | undefined;
}

export class PipelineTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosIds: number[];
  readonly addsBos: boolean;
  readonly source: TokenizerSource | undefined;
  private readonly rawMatcher: AddedTokenMatcher;
  private readonly normalizedMatcher: AddedTokenMatcher;
  private readonly specialIds = new Set<number>();
  /** Code points one token can stand for at most, for ASCII text and any text (see fewestTokens). */
  private readonly perToken: { ascii: number | undefined; other: number | undefined };

  constructor(private readonly parts: PipelineParts) {
    let maxId = parts.tokens.length - 1;
    for (const id of parts.vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.bosId = parts.bosId;
    this.eosIds = [...new Set(parts.eosIds)];
    this.addsBos = parts.bosId !== undefined && parts.prefixIds[0] === parts.bosId;
    this.source = parts.source;
    const normalize = parts.normalizer ?? ((t: string) => t);
    this.rawMatcher = new AddedTokenMatcher(parts.addedTokens.filter((t) => !t.normalized));
    this.normalizedMatcher = new AddedTokenMatcher(parts.addedTokens.filter((t) => t.normalized), (t) => normalize(t.content));
    for (const t of parts.addedTokens) if (t.special) this.specialIds.add(t.id);
    this.perToken = codePointsPerToken(parts, normalize);
  }

  fewestTokens(text: string): number {
    const ascii = isAscii(text);
    const perToken = ascii ? this.perToken.ascii : this.perToken.other;
    return perToken === undefined ? 0 : Math.ceil((ascii ? text.length : codePoints(text)) / perToken);
  }

  encode(text: string, opts?: EncodeOptions): number[] {
    const addSpecial = opts?.addSpecialTokens ?? true;
    const out: number[] = addSpecial ? [...this.parts.prefixIds] : [];
    const segments: Segment[] = [];
    const ranges = opts?.textRanges ?? [];
    const parseSpecial = opts?.parseSpecial ?? true;
    this.rawMatcher.split(text, segments, !parseSpecial ? notSpecial : ranges.length > 0 ? outside(ranges) : undefined);
    // Offsets in normalized text are not offsets in `text`: with text ranges, no special is matched there at all.
    const normalizedFilter = !parseSpecial || ranges.length > 0 ? notSpecial : undefined;
    let atStart = true;
    for (const seg of segments) {
      if (typeof seg === 'number') {
        out.push(seg);
      } else {
        const normalized = this.parts.normalizer ? this.parts.normalizer(seg) : seg;
        if (this.normalizedMatcher.size === 0) {
          this.encodeText(normalized, atStart, out);
        } else {
          const inner: Segment[] = [];
          this.normalizedMatcher.split(normalized, inner, normalizedFilter);
          inner.forEach((s, i) => (typeof s === 'number' ? out.push(s) : this.encodeText(s, atStart && i === 0, out)));
        }
      }
      atStart = false;
    }
    if (addSpecial) out.push(...this.parts.suffixIds);
    return out;
  }

  private encodeText(text: string, atStart: boolean, out: number[]): void {
    if (text.length === 0) return;
    const { model, preTokenizer } = this.parts;
    if (!preTokenizer) {
      model.encodePiece(text, out);
      return;
    }
    for (const piece of preTokenizer([text], atStart)) model.encodePiece(piece, out);
  }

  decode(ids: readonly number[], opts?: DecodeOptions): string {
    const kept = ids.filter((id) => this.parts.tokens[id] !== undefined && !(opts?.skipSpecialTokens && this.specialIds.has(id)));
    return this.parts.decode(kept);
  }

  idToToken(id: number): string | undefined {
    return this.parts.tokens[id];
  }

  tokenToId(token: string): number | undefined {
    return this.parts.vocab.get(token);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  tokenBytes(id: number): Uint8Array | undefined {
    return this.parts.tokenBytes(id);
  }
}

/**
 * Every code point of a text ends up in some token (no step drops text), and a token stands for at most the
 * longest vocabulary entry or added token, counted in normalized text, which the normalizer makes at most
 * `shrink` times shorter than the input.
 */
function codePointsPerToken(parts: PipelineParts, normalize: Normalizer): { ascii: number | undefined; other: number | undefined } {
  const unknown = { ascii: undefined, other: undefined };
  const shrink = parts.normalizer ? parts.normalizerShrink : { ascii: 1, other: 1 };
  let longest = parts.model.codePointsPerToken;
  if (shrink === undefined || longest === undefined || parts.preTokenizerDropsText) return unknown;
  for (const t of parts.addedTokens) {
    // A stripping token also takes any run of whitespace beside it.
    if (t.lstrip || t.rstrip) return unknown;
    longest = Math.max(longest, codePoints(t.content), t.normalized ? codePoints(normalize(t.content)) : 0);
  }
  const times = (f: number | undefined): number | undefined => (f === undefined ? undefined : f * longest);
  return { ascii: times(shrink.ascii), other: times(shrink.other) };
}

const notSpecial: MatchFilter = (token) => !token.special;

/** Refuses special tokens over any part of the (sorted, disjoint) ranges. */
function outside(ranges: ReadonlyArray<readonly [number, number]>): MatchFilter {
  return (token, start, end) => {
    if (!token.special) return true;
    // The first range ending after `start`; the match overlaps it when that range starts before `end`.
    let lo = 0;
    let hi = ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ranges[mid]![1] <= start) lo = mid + 1;
      else hi = mid;
    }
    return lo === ranges.length || ranges[lo]![0] >= end;
  };
}

/** Token texts llama.cpp treats as ending generation whatever the metadata says; we do the same for both sources. */
export const END_OF_TURN_TEXTS = new Set([
  '<|eot_id|>', '<|eom_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<EOT>', '<｜end▁of▁sentence｜>',
]);
