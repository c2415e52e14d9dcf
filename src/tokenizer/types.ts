// The tokenizer API the server and engine code against, whatever file the vocabulary came from.

import type { GgufValue } from '../formats/gguf.js';

/** Where a tokenizer was built from, to build the same one again on another thread (structured-clonable). */
export type TokenizerSource =
  | { kind: 'hf-dir'; dir: string }
  /** The tokenizer.* keys of a GGUF file's metadata. */
  | { kind: 'gguf-metadata'; metadata: Map<string, GgufValue> };

export interface EncodeOptions {
  /** Add what the model adds around a text (BOS per the post-processor / add_bos_token). Default true. */
  addSpecialTokens?: boolean;
  /**
   * Special (control) token texts in the text become those tokens (default true). False encodes them as the
   * characters they are, as llama.cpp's parse_special = false does; other added tokens still match.
   */
  parseSpecial?: boolean;
  /**
   * Stretches [start, end) of the text, in order and apart, that are text whatever they contain: no special token
   * is matched over any part of them (client text inside a rendered chat template).
   */
  textRanges?: ReadonlyArray<readonly [number, number]>;
}

export interface DecodeOptions {
  /** Leave out special tokens (control tokens, BOS/EOS, chat markers). Default false. */
  skipSpecialTokens?: boolean;
}

export interface Tokenizer {
  /** One past the highest token id (model vocabulary and added tokens). */
  readonly vocabSize: number;
  /** Set when the tokenizer came from files (not from objects in memory) and can be built again from them. */
  readonly source?: TokenizerSource | undefined;
  /** The model's BOS token, if it declares one; encode() prepends it only when `addsBos`. */
  readonly bosId: number | undefined;
  /** Whether encode(text) with addSpecialTokens (the default) starts with bosId. */
  readonly addsBos: boolean;
  /** Every id that ends generation: EOS plus end-of-turn/end-of-message tokens (<|eot_id|>, <|im_end|>...). */
  readonly eosIds: number[];
  encode(text: string, opts?: EncodeOptions): number[];
  /**
   * A count encode(text) is certain to reach, found without encoding: the text's code points over the most one
   * token can stand for (its longest vocabulary entry). 0 when the tokenizer cannot promise one (a normalizer or
   * pre-tokenizer that may drop text). Cheap: a scan of the text, no tokenization.
   */
  fewestTokens?(text: string): number;
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** A special (control) token: dropped by decode with skipSpecialTokens. */
  isSpecial(id: number): boolean;
  /**
   * The bytes the token adds to decoded text (before any whole-text cleanup), or undefined when unknown.
   * Lets IncrementalDetokenizer hold back text that ends inside a UTF-8 character.
   */
  tokenBytes?(id: number): Uint8Array | undefined;
}
