// POST /v1/chat/completions: messages through the chat template, n choices, streaming (SSE chunks) or one JSON
// body, thinking text as `reasoning_content` / `reasoning` beside `content`.
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../errors.js';
import { collect, launch, totalUsage, type GenerationDeps } from '../generation.js';
import { chatPrompt } from '../chat-prompt.js';
import { maxTokensFor } from '../prompt.js';
import type { ServerContext } from '../request-options.js';
import { chatLogprobs } from './logprobs.js';
import { checkChoiceCount, choicePlans, openAiSampling, requestId, usageBody } from './params.js';
import { chatBodySchema, type ChatBody } from './schemas.js';
import { streamOpenAi, type ChunkShape } from './stream.js';

export function registerChatRoute(app: FastifyInstance, ctx: ServerContext, deps: GenerationDeps): void {
  app.post<{ Body: ChatBody }>('/v1/chat/completions', { schema: { body: chatBodySchema } }, async (req, reply) => {
    const body = req.body;
    if (body.top_logprobs != null && body.top_logprobs > 0 && body.logprobs !== true) {
      throw badRequest('top_logprobs needs logprobs: true', 'top_logprobs');
    }
    checkChoiceCount(ctx, 1, body.n ?? 1);
    const top = body.logprobs === true ? body.top_logprobs ?? 0 : undefined;
    // The engine returns the chosen token's logprob with at least one alternative; we drop what wasn't asked for.
    const sampling = openAiSampling(ctx, body, top === undefined ? 0 : Math.max(1, top), 'top_logprobs');
    const prompt = await chatPrompt(ctx, body.messages, {
      templateArgs: body.chat_template_kwargs ?? undefined,
      parseSpecial: body.parse_special ?? false,
    });
    const maxField = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
    const maxTokens = maxTokensFor(ctx, prompt.ids.length, body.max_completion_tokens ?? body.max_tokens ?? undefined, {
      prompt: 'messages',
      maxTokens: maxField,
    });
    const id = requestId('chatcmpl');
    const created = Math.floor(Date.now() / 1000);
    const plans = choicePlans(ctx, body, {
      idPrefix: id, promptIds: prompt.ids, firstIndex: 0, maxTokens, sampling, reasoning: prompt.reasoning,
    });
    const gen = await launch(deps, reply, plans);
    const logprobs = (tokens: Parameters<typeof chatLogprobs>[1]): { content: unknown[] } | null =>
      top === undefined ? null : { content: chatLogprobs(ctx.tokenizer, tokens, top) };

    if (body.stream) {
      const chunk: ChunkShape['chunk'] = (choices, extra = {}) => ({
        id, object: 'chat.completion.chunk', created, model: ctx.modelName, choices, ...extra,
      });
      const shape: ChunkShape = {
        chunk,
        delta: (out) => {
          const delta: Record<string, string> = {};
          if (out.reasoning !== '') {
            delta.reasoning_content = out.reasoning;
            delta.reasoning = out.reasoning;
          }
          if (out.content !== '') delta.content = out.content;
          const lp = logprobs(out.tokens);
          // Tokens still held back (part of a character, or maybe a stop string) make no chunk of their own.
          if (Object.keys(delta).length === 0 && (lp === null || lp.content.length === 0)) return undefined;
          return { index: out.index, delta, logprobs: lp, finish_reason: null };
        },
        end: (out) => ({ index: out.index, delta: {}, logprobs: null, finish_reason: out.finishReason }),
        preamble: plans.map((p) =>
          chunk([{ index: p.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
        ),
      };
      return streamOpenAi(reply, gen, shape, { include: body.stream_options?.include_usage === true, promptOf: () => 0 });
    }

    const choices = await collect(gen, plans.map((p) => p.index));
    if (gen.isCancelled) return reply.hijack(); // the client is gone: nobody to answer
    return {
      id,
      object: 'chat.completion',
      created,
      model: ctx.modelName,
      choices: choices.map((c) => ({
        index: c.index,
        message: {
          role: 'assistant',
          content: c.content,
          ...(c.hasReasoning ? { reasoning_content: c.reasoning, reasoning: c.reasoning } : {}),
        },
        logprobs: logprobs(c.tokens),
        finish_reason: c.finishReason,
      })),
      usage: usageBody(totalUsage(choices, () => 0)),
    };
  });
}
