// Request → prompt token ids: text encoded inline or on a worker thread (refused unread when it cannot fit the
// context), completion prompts in their four shapes, and the context-length checks that decide max_tokens. Chat
// messages go through the chat template in chat-prompt.ts.
import type { EncodeOptions } from '../tokenizer/index.js';
import { badRequest, ApiError } from './errors.js';
import type { ServerContext } from './request-options.js';

/**
 * Texts from this many UTF-16 units are tokenized on a worker thread: a few milliseconds of encoding inline, below
 * which the round trip (copying the text there and the ids back) costs about as much as it saves.
 */
export const WORKER_MIN_CHARS = 32 * 1024;

/**
 * The ids of `text`, refusing it before any tokenization when even at the longest token per code point it would not
 * fit the context. `batchChars` is the text of the whole request (several prompts): a long one goes to a worker.
 */
export async function encodeText(
  ctx: ServerContext,
  text: string,
  opts: EncodeOptions,
  param: string,
  batchChars = text.length,
): Promise<number[]> {
  const fewest = ctx.tokenizer.fewestTokens?.(text) ?? 0;
  if (fewest >= ctx.maxModelLen) throw contextExceeded(ctx, fewest, param, 'at least ');
  if (ctx.encodeWorkers === undefined || batchChars < WORKER_MIN_CHARS) return ctx.tokenizer.encode(text, opts);
  return ctx.encodeWorkers.encode(text, opts);
}

function contextExceeded(ctx: ServerContext, promptLen: number, param: string, qualifier = ''): ApiError {
  return new ApiError(
    400,
    `This model's maximum context length is ${ctx.maxModelLen} tokens, but the prompt has ${qualifier}${promptLen} tokens ` +
      '(no room left for a completion). Shorten the prompt.',
    { param, code: 'context_length_exceeded' },
  );
}

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
export async function completionPrompts(ctx: ServerContext, prompt: unknown, opts: { parseSpecial: boolean }): Promise<number[][]> {
  const encodeOpts = { parseSpecial: opts.parseSpecial };
  if (typeof prompt === 'string') return [await encodeText(ctx, prompt, encodeOpts, 'prompt')];
  if (!Array.isArray(prompt) || prompt.length === 0) {
    throw badRequest('prompt must be a string, a list of strings, or token ids (a list, or a list of lists)', 'prompt');
  }
  if (prompt.every((p) => typeof p === 'string')) {
    const texts = prompt as string[];
    const chars = texts.reduce((n, t) => n + t.length, 0);
    return Promise.all(texts.map((t, i) => encodeText(ctx, t, encodeOpts, `prompt[${i}]`, chars)));
  }
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
  if (promptLen >= ctx.maxModelLen) throw contextExceeded(ctx, promptLen, names.prompt);
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
