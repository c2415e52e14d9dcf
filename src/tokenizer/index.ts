// The tokenizer package: loaders for Hugging Face directories and GGUF metadata, incremental detokenization,
// chat templates.

import { loadTokenizerFromDir } from './from-hf.js';
import { loadTokenizerFromGguf } from './from-gguf.js';

import type { Tokenizer as TokenizerApi } from './types.js';

export type { DecodeOptions, EncodeOptions, TokenizerSource } from './types.js';
export { loadTokenizerFromDir, tokenizerFromJson } from './from-hf.js';
export { loadTokenizerFromGguf } from './from-gguf.js';
export { IncrementalDetokenizer, type IncrementalDetokenizerOptions } from './detokenizer.js';
export {
  ChatTemplate, ChatTemplateError, type ChatMessage, type ChatRenderOptions, type ChatTemplateSpecials,
} from './chat-template.js';
export { ClientTextPlaceholders, SpecialTexts } from './client-text.js';
export { EncodeWorkerPool, EncodeWorkerError } from './encode-workers.js';
export { UnsupportedTokenizerError } from './config.js';
export { UnsupportedRegexError } from './regex.js';

export type Tokenizer = TokenizerApi;
/** Factory spellings: `Tokenizer.fromGgufMetadata(metadata)`, `Tokenizer.fromDir(dir)`. */
export const Tokenizer = {
  fromGgufMetadata: loadTokenizerFromGguf,
  fromDir: loadTokenizerFromDir,
} as const;
