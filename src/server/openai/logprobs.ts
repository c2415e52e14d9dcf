// Token logprobs in OpenAI's two formats: chat (`{content: [{token, logprob, bytes, top_logprobs}]}`) and the
// legacy completions one (`{tokens, token_logprobs, top_logprobs, text_offset}`).
import type { Tokenizer } from '../../tokenizer/index.js';
import type { TokenOut } from '../generation.js';

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

/** A token's own text (special tokens included) and its bytes, which may be part of a UTF-8 character. */
function tokenText(tok: Tokenizer, id: number): { token: string; bytes: number[] } {
  const token = tok.decode([id]);
  const raw = tok.tokenBytes?.(id);
  return { token, bytes: Array.from(raw ?? Buffer.from(token, 'utf8')) };
}

/** Chat format; `top` is the client's top_logprobs (0 → empty lists). */
export function chatLogprobs(tok: Tokenizer, tokens: readonly TokenOut[], top: number): ChatTokenLogprob[] {
  const out: ChatTokenLogprob[] = [];
  for (const t of tokens) {
    if (!t.logprob) continue;
    out.push({
      ...tokenText(tok, t.id),
      logprob: t.logprob.logprob,
      top_logprobs: (t.logprob.top ?? []).slice(0, top).map((c) => ({ ...tokenText(tok, c.token), logprob: c.logprob })),
    });
  }
  return out;
}

/** Legacy completions format; each top_logprobs entry holds the `top` best tokens and always the chosen one. */
export function legacyLogprobs(tok: Tokenizer, tokens: readonly TokenOut[], top: number): LegacyLogprobs {
  const out: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const t of tokens) {
    if (!t.logprob) continue;
    const text = tok.decode([t.id]);
    out.tokens.push(text);
    out.token_logprobs.push(t.logprob.logprob);
    out.text_offset.push(t.offset);
    const dict: Record<string, number> = {};
    for (const c of (t.logprob.top ?? []).slice(0, top)) dict[tok.decode([c.token])] = c.logprob;
    dict[text] = t.logprob.logprob;
    out.top_logprobs.push(dict);
  }
  return out;
}
