// POST /v1/completions: raw prompts (text or token ids, one or several), n choices per prompt (choice index =
// prompt index · n + k), streaming or not, legacy logprobs.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, badRequest } from '../errors.js';
import { collect, GenerationError, launch, totalUsage, type ChoicePlan, type ChoiceUsage, type Generation, type GenerationDeps } from '../generation.js';
import { completionPrompts, maxTokensFor } from '../prompt.js';
import type { ServerContext } from '../request-options.js';
import { EventStream } from '../sse.js';
import { legacyLogprobs } from './logprobs.js';
import { choicePlans, openAiSampling, requestId, usageBody } from './params.js';
import { completionBodySchema, type CompletionBody } from './schemas.js';

interface ResponseMeta {
  id: string;
  created: number;
  model: string;
  /** The client's `logprobs` (top alternatives per token); undefined: none. */
  top: number | undefined;
  /** Choice index → prompt index, so usage counts each prompt once. */
  promptOf: (index: number) => number;
}

export function registerCompletionsRoute(app: FastifyInstance, ctx: ServerContext, deps: GenerationDeps): void {
  app.post<{ Body: CompletionBody }>('/v1/completions', { schema: { body: completionBodySchema } }, async (req, reply) => {
    const body = req.body;
    if (body.echo === true) throw badRequest('echo is not supported', 'echo');
    if (body.suffix != null && body.suffix !== '') throw badRequest('suffix is not supported', 'suffix');
    const n = body.n ?? 1;
    if (body.best_of != null && body.best_of !== n) throw badRequest('best_of other than n is not supported', 'best_of');
    const top = body.logprobs ?? undefined;
    const sampling = openAiSampling(ctx, body, top === undefined ? 0 : Math.max(1, top), 'logprobs');
    const prompts = completionPrompts(ctx, body.prompt);
    const meta: ResponseMeta = {
      id: requestId('cmpl'),
      created: Math.floor(Date.now() / 1000),
      model: ctx.modelName,
      top,
      promptOf: (index) => Math.floor(index / n),
    };
    const plans: ChoicePlan[] = [];
    prompts.forEach((ids, i) => {
      const maxTokens = maxTokensFor(ctx, ids.length, body.max_tokens ?? undefined, {
        prompt: prompts.length > 1 ? `prompt[${i}]` : 'prompt',
        maxTokens: 'max_tokens',
      });
      plans.push(...choicePlans(ctx, body, {
        idPrefix: meta.id, promptIds: ids, firstIndex: i * n, maxTokens, sampling, reasoning: 'off',
      }));
    });
    const gen = await launch(deps, reply, plans);
    if (body.stream) return streamCompletions(reply, ctx, gen, meta, body.stream_options?.include_usage === true);

    let choices;
    try {
      choices = await collect(gen, plans.map((p) => p.index));
    } catch (e) {
      if (e instanceof GenerationError) throw new ApiError(500, e.message, { code: 'engine_error' });
      throw e;
    }
    if (gen.isCancelled) return reply.hijack(); // the client is gone: nobody to answer
    return {
      id: meta.id,
      object: 'text_completion',
      created: meta.created,
      model: meta.model,
      choices: choices.map((c) => ({
        index: c.index,
        text: c.content,
        logprobs: top === undefined ? null : legacyLogprobs(ctx.tokenizer, c.tokens, top),
        finish_reason: c.finishReason,
      })),
      usage: usageBody(totalUsage(choices, meta.promptOf)),
    };
  });
}

async function streamCompletions(
  reply: FastifyReply,
  ctx: ServerContext,
  gen: Generation,
  meta: ResponseMeta,
  includeUsage: boolean,
): Promise<void> {
  const stream = new EventStream(reply, 'sse');
  stream.open();
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    id: meta.id, object: 'text_completion', created: meta.created, model: meta.model, choices, ...extra,
  });
  const ended: { index: number; usage: ChoiceUsage }[] = [];
  let failed = false;
  gen.attach((out) => {
    if (out.kind === 'delta') {
      const logprobs = meta.top === undefined ? null : legacyLogprobs(ctx.tokenizer, out.tokens, meta.top);
      if (out.content === '' && (logprobs === null || logprobs.tokens.length === 0)) return;
      stream.send(chunk([{ index: out.index, text: out.content, logprobs, finish_reason: null }]));
    } else if (out.kind === 'end') {
      ended.push(out);
      stream.send(chunk([{ index: out.index, text: '', logprobs: null, finish_reason: out.finishReason }]));
    } else if (!failed) {
      failed = true;
      stream.send(new ApiError(500, out.message, { code: 'engine_error' }).openAiBody());
      gen.cancel();
    }
  });
  await gen.done;
  if (includeUsage && !failed) stream.send(chunk([], { usage: usageBody(totalUsage(ended, meta.promptOf)) }));
  stream.end();
}
