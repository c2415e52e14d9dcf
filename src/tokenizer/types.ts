// The tokenizer API the server and engine code against, whatever file the vocabulary came from.

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
  /** The model's BOS token, if it declares one; encode() prepends it only when `addsBos`. */
  readonly bosId: number | undefined;
  /** Whether encode(text) with addSpecialTokens (the default) starts with bosId. */
  readonly addsBos: boolean;
  /** Every id that ends generation: EOS plus end-of-turn/end-of-message tokens (<|eot_id|>, <|im_end|>...). */
  readonly eosIds: number[];
  encode(text: string, opts?: EncodeOptions): number[];
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
