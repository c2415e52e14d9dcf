// Request → prompt token ids: chat messages through the model's chat template (with --force_think's `<think>`),
// completion prompts in their four shapes, and the context-length checks that decide max_tokens.
import { ChatTemplateError, type ChatMessage } from '../tokenizer/index.js';
import { badRequest, ApiError } from './errors.js';
import { checkJsonBounds } from './json-bounds.js';
import type { ServerContext } from './request-options.js';
import type { ReasoningMode } from './text-stream.js';

/** A chat message as clients send it: content is a string, null, or a list of parts. */
export interface WireMessage {
  role: string;
  content?: string | null | Array<{ type: string; text?: string }>;
  name?: string;
  reasoning_content?: string | null;
  tool_calls?: unknown[];
  tool_call_id?: string;
}

function messageText(m: WireMessage, i: number): string | null {
  const c = m.content;
  if (c === undefined || c === null || typeof c === 'string') return c ?? null;
  return c
    .map((part, j) => {
      if (part.type !== 'text' || typeof part.text !== 'string') {
        throw badRequest(`content part of type ${JSON.stringify(part.type)} is not supported (text only)`, `messages[${i}].content[${j}].type`);
      }
      return part.text;
    })
    .join('');
}

export interface ChatPrompt {
  ids: number[];
  reasoning: ReasoningMode;
}

/** Renders the conversation for the model to answer; the assistant turn is left open. */
export function chatPrompt(ctx: ServerContext, wire: readonly WireMessage[], templateArgs?: Record<string, unknown>): ChatPrompt {
  if (wire.length === 0) throw badRequest('messages must not be empty', 'messages');
  if (templateArgs !== undefined) checkJsonBounds(templateArgs, 'chat_template_kwargs');
  wire.forEach((m, i) => m.tool_calls !== undefined && checkJsonBounds(m.tool_calls, `messages[${i}].tool_calls`));
  const messages: ChatMessage[] = wire.map((m, i) => {
    const msg: ChatMessage = { role: m.role, content: messageText(m, i) };
    if (m.name !== undefined) msg.name = m.name;
    if (typeof m.reasoning_content === 'string') msg.reasoning_content = m.reasoning_content;
    if (m.tool_calls !== undefined) msg.tool_calls = m.tool_calls;
    if (m.tool_call_id !== undefined) msg.tool_call_id = m.tool_call_id;
    return msg;
  });
  let text: string;
  if (ctx.chatTemplate) {
    try {
      text = ctx.chatTemplate.render(messages, { addGenerationPrompt: true, ...(templateArgs ? { extra: templateArgs } : {}) });
    } catch (e) {
      throw templateFailure(e);
    }
  } else {
    // No template in the model files: a plain transcript is better than refusing chat altogether.
    text = messages.map((m) => `${m.role}: ${m.content ?? ''}\n`).join('') + 'assistant:';
  }
  const opened = /<think>\n?$/.test(text);
  if (ctx.forceThink && !opened) text += '<think>\n';
  // The template writes BOS itself where the model wants one; the transcript fallback has no template to do it.
  const ids = ctx.tokenizer.encode(text, { addSpecialTokens: !ctx.chatTemplate });
  // A prompt that ends inside an open think block (--force_think, or a template that opens it, as newer R1
  // templates do) is answered with reasoning first; otherwise the model may still open one itself.
  return { ids, reasoning: ctx.forceThink || opened ? 'forced' : 'detect' };
}

/**
 * A template's refusal (raise_exception) is the client's to read, in the template's words. When the interpreter
 * stops on the input, the request is still what it could not render, but its message is about our internals: the
 * client gets ours. Anything else is our fault: a 500 (whose message toApiError keeps to itself).
 */
function templateFailure(e: unknown): unknown {
  if (!(e instanceof ChatTemplateError)) return e;
  if (e.failure === 'raised') return badRequest(`the chat template refused these messages: ${e.message}`, 'messages');
  return new ApiError(400, "the model's chat template could not render these messages (check their roles, order and content)", {
    param: 'messages',
    cause: e,
  });
}

function tokenIds(ctx: ServerContext, v: unknown[], param: string): number[] {
  return v.map((id, i) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= ctx.tokenizer.vocabSize) {
      throw badRequest(`token id ${JSON.stringify(id)} is not in the vocabulary (0…${ctx.tokenizer.vocabSize - 1})`, `${param}[${i}]`);
    }
    return id;
  });
}

/** `prompt` of /v1/completions: a string, a list of strings, a list of token ids, or a list of such lists. */
export function completionPrompts(ctx: ServerContext, prompt: unknown): number[][] {
  const encode = (s: string): number[] => ctx.tokenizer.encode(s);
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
