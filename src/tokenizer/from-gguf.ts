// Builds a tokenizer from GGUF metadata (tokenizer.ggml.*), following llama.cpp: "gpt2" vocabularies are byte-level
// BPE with merges and a pre-tokenizer regex set chosen by tokenizer.ggml.pre; "llama" vocabularies are
// SentencePiece-style, merged by score, with <0xXX> byte tokens.

import { getArray, getBool, getNumber, getString, type GgufValue } from '../formats/gguf.js';
import type { AddedToken } from './added-tokens.js';
import { alphabetToBytes, concatBytes, utf8, utf8Lossy } from './byte-level.js';
import { BpeModel } from './bpe.js';
import { UnsupportedTokenizerError } from './config.js';
import { END_OF_TURN_TEXTS, PipelineTokenizer, type PieceModel } from './pipeline.js';
import { splitter, type PreTokenizer } from './pre-tokenizer.js';
import { compileOnigurumaRegex } from './regex.js';
import { SpmModel } from './spm.js';
import type { Tokenizer } from './types.js';

/** tokenizer.ggml.token_type values. */
const enum TokenType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

const K = 'tokenizer.ggml.';

export function loadTokenizerFromGguf(metadata: Map<string, GgufValue>): Tokenizer {
  const kind = getString(metadata, K + 'model');
  const tokens = getArray(metadata, K + 'tokens')?.map(String);
  if (!tokens) throw new UnsupportedTokenizerError('GGUF metadata without tokenizer.ggml.tokens');
  const types = getArray(metadata, K + 'token_type')?.map(Number) ?? [];
  const typeOf = (id: number): number => types[id] ?? TokenType.Normal;
  const vocab = new Map<string, number>();
  tokens.forEach((t, id) => {
    if (!vocab.has(t)) vocab.set(t, id);
  });
  // llama.cpp treats these end-of-turn texts as control tokens whatever their stored type.
  const isControl = (id: number): boolean => typeOf(id) === TokenType.Control || END_OF_TURN_TEXTS.has(tokens[id]!);
  const idKey = (name: string): number | undefined => {
    const v = getNumber(metadata, K + name);
    return v !== undefined && v >= 0 && v < tokens.length ? v : undefined;
  };

  const addedTokens: AddedToken[] = [];
  tokens.forEach((content, id) => {
    const type = typeOf(id);
    const control = isControl(id);
    if (control || type === TokenType.UserDefined || type === TokenType.Unknown) {
      addedTokens.push({ id, content, special: control || type === TokenType.Unknown, singleWord: false, lstrip: false, rstrip: false, normalized: false });
    }
  });

  let model: PieceModel;
  let preTokenizer: PreTokenizer | undefined;
  let normalizer: ((t: string) => string) | undefined;
  let pieceBytes: (id: number) => Uint8Array;
  let addBos: boolean;
  let stripLeadingSpace = false;
  if (kind === 'gpt2') {
    const pre = getString(metadata, K + 'pre') ?? 'default';
    const preset = bpePreset(pre);
    const merges = getArray(metadata, K + 'merges') ?? [];
    model = new BpeModel({ vocab, merges, byteLevel: true, ignoreMerges: preset.ignoreMerges, byteFallback: false, fuseUnk: false });
    const steps = preset.regexes.map((r) => splitter(compileOnigurumaRegex(r, { lineAnchors: false }), 'Isolated', false));
    preTokenizer = (pieces, atStart) => steps.reduce((acc, step) => step(acc, atStart), pieces);
    pieceBytes = (id) => bpePieceBytes(tokens[id]!, typeOf(id));
    addBos = preset.addBos;
  } else if (kind === 'llama') {
    const scores = getArray(metadata, K + 'scores')?.map(Number) ?? [];
    const unkId = idKey('unknown_token_id');
    model = new SpmModel({ vocab, scores, ...(unkId !== undefined ? { unkId } : {}) });
    // llama.cpp puts a space before every text stretch (they all follow the start or a special token), then
    // writes spaces as ▁; there is no pre-tokenizer.
    const addSpacePrefix = getBool(metadata, K + 'add_space_prefix') ?? true;
    normalizer = (t) => (addSpacePrefix ? ' ' + t : t).replaceAll(' ', '▁');
    pieceBytes = (id) => spmPieceBytes(tokens[id]!, typeOf(id));
    addBos = true;
    stripLeadingSpace = addSpacePrefix;
  } else {
    throw new UnsupportedTokenizerError(`GGUF tokenizer.ggml.model ${JSON.stringify(kind)} (supported: gpt2, llama)`);
  }
  addBos = getBool(metadata, K + 'add_bos_token') ?? addBos;
  const addEos = getBool(metadata, K + 'add_eos_token') ?? false;
  const bosId = idKey('bos_token_id');
  const eosId = idKey('eos_token_id');

  const eosIds = [eosId, idKey('eot_token_id'), idKey('eom_token_id')].filter((x): x is number => x !== undefined);
  tokens.forEach((t, id) => {
    if (END_OF_TURN_TEXTS.has(t)) eosIds.push(id);
  });

  return new PipelineTokenizer({
    vocab,
    tokens,
    model,
    // llama.cpp's SentencePiece normalizer only adds a space and swaps spaces for ▁: it never shortens text.
    ...(normalizer ? { normalizer, normalizerShrink: { ascii: 1, other: 1 } } : {}),
    ...(preTokenizer ? { preTokenizer } : {}),
    addedTokens,
    prefixIds: addBos && bosId !== undefined ? [bosId] : [],
    suffixIds: addEos && eosId !== undefined ? [eosId] : [],
    bosId,
    eosIds,
    // The tokenizer.* keys only: the same arrays, not the rest of a model's metadata.
    source: { kind: 'gguf-metadata', metadata: new Map([...metadata].filter(([key]) => key.startsWith('tokenizer.'))) },
    decode: (ids) => {
      const text = utf8Lossy.decode(concatBytes(ids.map(pieceBytes)));
      // llama.cpp drops the space the tokenizer put before the first word.
      return stripLeadingSpace && ids.length > 0 && typeOf(ids[0]!) === TokenType.Normal && text.startsWith(' ') ? text.slice(1) : text;
    },
    tokenBytes: (id) => (id >= 0 && id < tokens.length ? pieceBytes(id) : undefined),
  });
}

/** What llama.cpp's token_to_piece gives: normal tokens through the byte alphabet, added ones as written. */
function bpePieceBytes(text: string, type: number): Uint8Array {
  switch (type) {
    case TokenType.Normal: return alphabetToBytes(text);
    case TokenType.Control: case TokenType.UserDefined: case TokenType.Unknown: return utf8.encode(text);
    default: return new Uint8Array(0);
  }
}

function spmPieceBytes(text: string, type: number): Uint8Array {
  switch (type) {
    case TokenType.Byte: {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
      return m ? Uint8Array.of(parseInt(m[1]!, 16)) : utf8.encode(text);
    }
    case TokenType.Normal:
      return utf8.encode(text.replaceAll('▁', ' '));
    case TokenType.Unused:
      return new Uint8Array(0);
    default:
      return utf8.encode(text);
  }
}

interface BpePreset {
  regexes: string[];
  ignoreMerges: boolean;
  addBos: boolean;
}

// llama.cpp's pre-tokenizer regex sets (llama-vocab.cpp), by tokenizer.ggml.pre. Split in sequence, isolating.
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const DEEPSEEK_LLM_LETTERS = '[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+';

function bpePreset(pre: string): BpePreset {
  const preset = (regexes: string[], extra: Partial<BpePreset> = {}): BpePreset => ({ regexes, ignoreMerges: false, addBos: false, ...extra });
  switch (pre) {
    case 'llama3': case 'llama-v3': case 'llama-bpe': case 'falcon3':
      return preset([LLAMA3], { ignoreMerges: true, addBos: true });
    case 'dbrx': case 'smaug-bpe': case 'chatglm-bpe':
      return preset([LLAMA3]);
    case 'qwen2': case 'stablelm2': case 'megrez':
      return preset([QWEN2]);
    case 'deepseek-llm':
      return preset(['[\r\n]', `\\s?${DEEPSEEK_LLM_LETTERS}`, '\\s?[!-/:-~！-／：-～‘-‟　-。]+', '\\s+$', '[一-龥ࠀ-一가-퟿]+', '\\p{N}+']);
    case 'deepseek-v3':
      return preset(['\\p{N}{1,3}', '[一-龥぀-ゟ゠-ヿ]+',
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"]);
    case 'deepseek-coder':
      return preset(['[\r\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', '[一-龥ࠀ-一가-퟿]+', '\\p{N}']);
    case 'falcon':
      return preset(['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]']);
    case 'starcoder': case 'refact': case 'command-r': case 'smollm': case 'codeshell': case 'exaone': case 'minerva-7b':
      return preset(['\\p{N}', GPT2]);
    case 'gpt-2': case 'phi-2': case 'jina-es': case 'jina-de': case 'gigachat': case 'jina-v1-en': case 'jina-v2-es':
    case 'jina-v2-de': case 'jina-v2-code': case 'roberta-bpe': case 'mpt': case 'olmo': case 'jais':
      return preset([GPT2]);
    case 'poro-chat': case 'bloom': case 'gpt3-finnish':
      return preset([' ?[^(\\s|.,!?…。，、।۔،)]+']);
    case 'viking':
      return preset([' ?[^(\\s|.,!?…。，、।۔،)]+', '\\p{N}']);
    case 'tekken':
      return preset(['[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+'],
        { ignoreMerges: true, addBos: true });
    case 'default':
      return preset(['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]']);
    default:
      throw new UnsupportedTokenizerError(`GGUF pre-tokenizer ${JSON.stringify(pre)}`);
  }
}
