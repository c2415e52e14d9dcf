// Benchmark prompts: random prompts of a chosen token length (from a tokenizer's vocabulary, or from a built-in word
// list), or prompts and conversations read from a JSONL file.
import { readFileSync } from 'node:fs';
import { Rng } from '../engine/rng.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { WORDS } from './word-list.js';

export interface ChatMessage {
  role: string;
  content: string;
}

/** One request's input: the same prompt as text (for /v1/completions) and as messages (for /v1/chat/completions). */
export interface BenchPrompt {
  prompt: string;
  messages: ChatMessage[];
  /** The client's count of prompt tokens (the server's usage.prompt_tokens replaces it in the metrics when sent). */
  promptTokens: number;
  /** max_tokens for this request. */
  maxTokens: number;
}

/** How the prompts were made, for the report. */
export interface DatasetInfo {
  kind: 'random' | 'jsonl';
  path?: string;
  /** Where the prompt text comes from. */
  prompt_text: 'random token ids of the tokenizer, decoded' | 'built-in word list' | 'file';
  /** Whether promptTokens is a count or an estimate. */
  prompt_token_count: string;
}

export interface RandomOptions {
  inputLen: number;
  outputLen: number;
  /** Lengths are drawn uniformly from [floor(len·(1−r)), ceil(len·(1+r))], as vLLM's random dataset does. */
  rangeRatio: number;
  num: number;
  rng: Rng;
  /** Given: prompts of exactly the drawn token length, made of random non-special token ids. */
  tokenizer?: Tokenizer;
  /** /v1/completions adds the tokenizer's BOS on the server; leave room for it so the server sees inputLen tokens. */
  countBos: boolean;
}

function uniformInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng.nextFloat() * (hi - lo + 1));
}

export function lengthRange(len: number, ratio: number, least: number): [number, number] {
  return [Math.max(least, Math.floor(len * (1 - ratio))), Math.max(least, Math.ceil(len * (1 + ratio)))];
}

/**
 * The ids a random prompt may use: not special, and decoding to whole characters on their own. A byte-level token
 * holding part of a UTF-8 character would decode to U+FFFD, which re-encodes to several tokens and keeps the
 * prompt from reaching its length.
 */
function allowedIds(tok: Tokenizer): number[] {
  const ids: number[] = [];
  for (let id = 0; id < tok.vocabSize; id++) {
    if (tok.isSpecial(id) || tok.idToToken(id) === undefined) continue;
    const text = tok.decode([id]);
    if (text.length > 0 && !text.includes('\uFFFD')) ids.push(id);
  }
  return ids;
}

/**
 * Text that encodes to exactly `n` tokens (when reachable): random ids are decoded, and since decoded text can
 * re-encode to a different count (merges across token boundaries), the re-encoding is cut or topped up and the
 * loop repeats until it is stable. Returns the text and its true token count.
 */
function tokenText(tok: Tokenizer, allowed: readonly number[], rng: Rng, n: number): [string, number] {
  const pick = () => allowed[Math.floor(rng.nextFloat() * allowed.length)]!;
  let ids = Array.from({ length: n }, pick);
  let best: [string, number] = ['', 0];
  for (let attempt = 0; attempt < 16; attempt++) {
    const text = tok.decode(ids);
    const again = tok.encode(text, { addSpecialTokens: false });
    if (Math.abs(again.length - n) < Math.abs(best[1] - n) || attempt === 0) best = [text, again.length];
    if (again.length === n) break;
    ids = again.length > n ? again.slice(0, n) : [...again, ...Array.from({ length: n - again.length }, pick)];
  }
  return best;
}

function wordText(rng: Rng, n: number): string {
  return Array.from({ length: n }, () => WORDS[Math.floor(rng.nextFloat() * WORDS.length)]!).join(' ');
}

/** `num` random prompts; lengths and text are fixed by the generator's seed. */
export function randomPrompts(o: RandomOptions): { prompts: BenchPrompt[]; info: DatasetInfo } {
  if (!(o.rangeRatio >= 0 && o.rangeRatio < 1)) throw new RangeError(`range_ratio must be in [0, 1), got ${o.rangeRatio}`);
  const bos = o.countBos && o.tokenizer?.addsBos ? 1 : 0;
  const [inLo, inHi] = lengthRange(o.inputLen - bos, o.rangeRatio, 1);
  const [outLo, outHi] = lengthRange(o.outputLen, o.rangeRatio, 1);
  const allowed = o.tokenizer ? allowedIds(o.tokenizer) : [];
  const prompts: BenchPrompt[] = [];
  for (let i = 0; i < o.num; i++) {
    const inLen = uniformInt(o.rng, inLo, inHi);
    const maxTokens = uniformInt(o.rng, outLo, outHi);
    const [text, count] = o.tokenizer ? tokenText(o.tokenizer, allowed, o.rng, inLen) : [wordText(o.rng, inLen), inLen];
    prompts.push({ prompt: text, messages: [{ role: 'user', content: text }], promptTokens: count + bos, maxTokens });
  }
  const info: DatasetInfo = o.tokenizer
    ? {
        kind: 'random',
        prompt_text: 'random token ids of the tokenizer, decoded',
        prompt_token_count: 'exact (re-encoded with the tokenizer; chat adds the template tokens)',
      }
    : {
        kind: 'random',
        prompt_text: 'built-in word list',
        prompt_token_count: 'approximate (one token per word, as in Llama-3/Qwen3/DeepSeek-V3 vocabularies; give --tokenizer for exact lengths)',
      };
  return { prompts, info };
}

function contentText(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) => (typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : ''))
      .join('');
  }
  throw new Error(`${where}: message content must be a string or a list of text parts`);
}

const SHAREGPT_ROLES: Record<string, string> = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system' };

/** One JSONL line as messages: {"prompt"}, {"messages": OpenAI-style}, {"conversations": ShareGPT-style}, or a string. */
function lineMessages(v: unknown, where: string): ChatMessage[] {
  if (typeof v === 'string') return [{ role: 'user', content: v }];
  if (typeof v !== 'object' || v === null) throw new Error(`${where}: expected a JSON object or string`);
  const o = v as { prompt?: unknown; messages?: unknown; conversations?: unknown };
  if (typeof o.prompt === 'string') return [{ role: 'user', content: o.prompt }];
  if (Array.isArray(o.messages)) {
    return o.messages.map((m: { role?: unknown; content?: unknown }) => {
      if (typeof m?.role !== 'string') throw new Error(`${where}: every message needs a role`);
      return { role: m.role, content: contentText(m.content, where) };
    });
  }
  if (Array.isArray(o.conversations)) {
    return o.conversations.map((t: { from?: unknown; value?: unknown }) => {
      const role = typeof t?.from === 'string' ? SHAREGPT_ROLES[t.from] : undefined;
      if (!role || typeof t.value !== 'string') throw new Error(`${where}: ShareGPT turns need from (human|gpt|system) and value`);
      return { role, content: t.value };
    });
  }
  throw new Error(`${where}: expected "prompt", "messages" or "conversations"`);
}

export interface JsonlOptions {
  path: string;
  outputLen: number;
  num: number;
  rng: Rng;
  tokenizer?: Tokenizer;
}

/**
 * Prompts from a JSONL file, in a seeded shuffled order, cycled when `num` exceeds the lines. Trailing assistant turns
 * are dropped (the model answers the last user turn). A line may set its own "output_len" or "max_tokens".
 */
export function jsonlPrompts(o: JsonlOptions): { prompts: BenchPrompt[]; info: DatasetInfo } {
  const rows: { messages: ChatMessage[]; maxTokens: number }[] = [];
  readFileSync(o.path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      const where = `${o.path}:${i + 1}`;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        throw new Error(`${where}: not JSON (${(e as Error).message})`);
      }
      const messages = lineMessages(v, where);
      while (messages.length > 0 && messages[messages.length - 1]!.role === 'assistant') messages.pop();
      if (messages.length === 0) throw new Error(`${where}: no user turn`);
      const own: { output_len?: unknown; max_tokens?: unknown } = typeof v === 'object' && v !== null ? v : {};
      const max = typeof own.output_len === 'number' ? own.output_len : typeof own.max_tokens === 'number' ? own.max_tokens : o.outputLen;
      rows.push({ messages, maxTokens: Math.max(1, Math.floor(max)) });
    });
  if (rows.length === 0) throw new Error(`${o.path}: no prompts`);
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(o.rng.nextFloat() * (i + 1));
    [rows[i], rows[j]] = [rows[j]!, rows[i]!];
  }
  const prompts = Array.from({ length: o.num }, (_, i) => {
    const row = rows[i % rows.length]!;
    // For /v1/completions a conversation is sent as its turns' text, one blank line apart.
    const prompt = row.messages.map((m) => m.content).join('\n\n');
    const promptTokens = o.tokenizer ? o.tokenizer.encode(prompt).length : Math.ceil(prompt.length / 4);
    return { prompt, messages: row.messages, promptTokens, maxTokens: row.maxTokens };
  });
  const info: DatasetInfo = {
    kind: 'jsonl',
    path: o.path,
    prompt_text: 'file',
    prompt_token_count: o.tokenizer ? 'counted with the tokenizer (no chat template)' : 'estimated as characters / 4',
  };
  return { prompts, info };
}
