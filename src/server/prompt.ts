// Request → prompt token ids: completion prompts in their four shapes, and the context-length checks that decide
// max_tokens. Chat messages go through the chat template in chat-prompt.ts.
import { badRequest, ApiError } from './errors.js';
import type { ServerContext } from './request-options.js';

function tokenIds(ctx: ServerContext, v: unknown[], param: string): number[] {
  return v.map((id, i) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= ctx.tokenizer.vocabSize) {
      throw badRequest(`token id ${JSON.stringify(id)} is not in the vocabulary (0…${ctx.tokenizer.vocabSize - 1})`, `${param}[${i}]`);
    }
    return id;
  });
}

/**
 * `prompt` of /v1/completions: a string, a list of strings, a list of token ids, or a list of such lists. A text
 * prompt is the client's whole prompt, so its special-token texts are control tokens unless parseSpecial is false.
 */
export function completionPrompts(ctx: ServerContext, prompt: unknown, opts: { parseSpecial: boolean }): number[][] {
  const encode = (s: string): number[] => ctx.tokenizer.encode(s, { parseSpecial: opts.parseSpecial });
  if (typeof prompt === 'string') return [encode(prompt)];
  if (!Array.isArray(prompt) || prompt.length === 0) {
    throw badRequest('prompt must be a string, a list of strings, or token ids (a list, or a list of lists)', 'prompt');
  }
  if (prompt.every((p) => typeof p === 'string')) return (prompt as string[]).map(encode);
  if (prompt.every((p) => typeof p === 'number')) return [tokenIds(ctx, prompt, 'prompt')];
  if (prompt.every((p) => Array.isArray(p) && p.length > 0)) {
    return (prompt as unknown[][]).map((p, i) => tokenIds(ctx, p, `prompt[${i}]`));
  }
  throw badRequest('prompt must be a string, a list of strings, or token ids (a list, or a list of lists)', 'prompt');
}

/**
 * Tokens the engine may generate for this prompt: the request's max_tokens (clamped to --max_new_tokens), or all the
 * context left. A prompt that leaves no room, or prompt + max_tokens beyond the context, is a 400.
 */
export function maxTokensFor(
  ctx: ServerContext,
  promptLen: number,
  requested: number | undefined,
  names: { prompt: string; maxTokens: string },
): number {
  if (promptLen === 0) throw badRequest('the prompt is empty', names.prompt);
  if (promptLen >= ctx.maxModelLen) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${ctx.maxModelLen} tokens, but the prompt has ${promptLen} tokens ` +
        '(no room left for a completion). Shorten the prompt.',
      { param: names.prompt, code: 'context_length_exceeded' },
    );
  }
  if (requested === undefined) return Math.min(ctx.maxNewTokens, ctx.maxModelLen - promptLen);
  if (promptLen + requested > ctx.maxModelLen) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${ctx.maxModelLen} tokens, but ${promptLen + requested} were requested ` +
        `(${promptLen} in the prompt, ${requested} for the completion). Shorten the prompt or lower ${names.maxTokens}.`,
      { param: names.maxTokens, code: 'context_length_exceeded' },
    );
  }
  return Math.min(requested, ctx.maxNewTokens);
}

/** Token ids that end generation: the model's EOS / end-of-turn ids, or none with ignore_eos. */
export function stopIdsFor(ctx: ServerContext, ignoreEos: boolean, extra: readonly number[] = []): number[] {
  return [...new Set([...(ignoreEos ? [] : ctx.tokenizer.eosIds), ...extra])];
}
