// POST /v1/chat/completions: messages through the chat template, n choices, streaming (SSE chunks) or one JSON
// body, thinking text as `reasoning_content` / `reasoning` beside `content`.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, badRequest } from '../errors.js';
import { collect, GenerationError, launch, totalUsage, type ChoiceOutput, type ChoiceUsage, type Generation, type GenerationDeps } from '../generation.js';
import { chatPrompt, maxTokensFor } from '../prompt.js';
import type { ServerContext } from '../request-options.js';
import { EventStream } from '../sse.js';
import { chatLogprobs } from './logprobs.js';
import { choicePlans, openAiSampling, requestId, usageBody } from './params.js';
import { chatBodySchema, type ChatBody } from './schemas.js';

interface ResponseMeta {
  id: string;
  created: number;
  model: string;
  /** top_logprobs the client asked for; undefined: no logprobs. */
  top: number | undefined;
}

export function registerChatRoute(app: FastifyInstance, ctx: ServerContext, deps: GenerationDeps): void {
  app.post<{ Body: ChatBody }>('/v1/chat/completions', { schema: { body: chatBodySchema } }, async (req, reply) => {
    const body = req.body;
    if (body.top_logprobs != null && body.logprobs !== true) {
      throw badRequest('top_logprobs needs logprobs: true', 'top_logprobs');
    }
    const top = body.logprobs === true ? body.top_logprobs ?? 0 : undefined;
    // The engine returns the chosen token's logprob with at least one alternative; we drop what wasn't asked for.
    const sampling = openAiSampling(ctx, body, top === undefined ? 0 : Math.max(1, top), 'top_logprobs');
    const prompt = chatPrompt(ctx, body.messages, body.chat_template_kwargs ?? undefined);
    const maxField = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
    const maxTokens = maxTokensFor(ctx, prompt.ids.length, body.max_completion_tokens ?? body.max_tokens ?? undefined, {
      prompt: 'messages',
      maxTokens: maxField,
    });
    const meta: ResponseMeta = { id: requestId('chatcmpl'), created: Math.floor(Date.now() / 1000), model: ctx.modelName, top };
    const plans = choicePlans(ctx, body, {
      idPrefix: meta.id, promptIds: prompt.ids, firstIndex: 0, maxTokens, sampling, reasoning: prompt.reasoning,
    });
    const gen = await launch(deps, reply, plans);
    if (body.stream) return streamChat(reply, ctx, gen, meta, plans.length, body.stream_options?.include_usage === true);

    const indexes = plans.map((p) => p.index);
    let choices;
    try {
      choices = await collect(gen, indexes);
    } catch (e) {
      if (e instanceof GenerationError) throw new ApiError(500, e.message, { code: 'engine_error' });
      throw e;
    }
    if (gen.isCancelled) return reply.hijack(); // the client is gone: nobody to answer
    return {
      id: meta.id,
      object: 'chat.completion',
      created: meta.created,
      model: meta.model,
      choices: choices.map((c) => ({
        index: c.index,
        message: {
          role: 'assistant',
          content: c.content,
          ...(c.hasReasoning ? { reasoning_content: c.reasoning, reasoning: c.reasoning } : {}),
        },
        logprobs: top === undefined ? null : { content: chatLogprobs(ctx.tokenizer, c.tokens, top) },
        finish_reason: c.finishReason,
      })),
      usage: usageBody(totalUsage(choices, () => 0)),
    };
  });
}

async function streamChat(
  reply: FastifyReply,
  ctx: ServerContext,
  gen: Generation,
  meta: ResponseMeta,
  n: number,
  includeUsage: boolean,
): Promise<void> {
  const stream = new EventStream(reply, 'sse');
  stream.open();
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, choices, ...extra,
  });
  for (let index = 0; index < n; index++) {
    stream.send(chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
  }
  const ended: { index: number; usage: ChoiceUsage }[] = [];
  let failed = false;
  gen.attach((out: ChoiceOutput) => {
    if (out.kind === 'delta') {
      const delta: Record<string, string> = {};
      if (out.reasoning !== '') {
        delta.reasoning_content = out.reasoning;
        delta.reasoning = out.reasoning;
      }
      if (out.content !== '') delta.content = out.content;
      const logprobs = meta.top === undefined ? [] : chatLogprobs(ctx.tokenizer, out.tokens, meta.top);
      // Tokens still held back (part of a character, or maybe a stop string) make no chunk of their own.
      if (Object.keys(delta).length === 0 && logprobs.length === 0) return;
      const lp = meta.top === undefined ? null : { content: logprobs };
      stream.send(chunk([{ index: out.index, delta, logprobs: lp, finish_reason: null }]));
    } else if (out.kind === 'end') {
      ended.push(out);
      stream.send(chunk([{ index: out.index, delta: {}, logprobs: null, finish_reason: out.finishReason }]));
    } else if (!failed) {
      // Headers are out: the error travels in the stream, as vLLM does, then the stream ends.
      failed = true;
      stream.send(new ApiError(500, out.message, { code: 'engine_error' }).openAiBody());
      gen.cancel();
    }
  });
  await gen.done;
  if (includeUsage && !failed) stream.send(chunk([], { usage: usageBody(totalUsage(ended, () => 0)) }));
  stream.end();
}
