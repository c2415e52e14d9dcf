// POST /v1/completions: raw prompts (text or token ids, one or several), n choices per prompt (choice index =
// prompt index · n + k), streaming or not, legacy logprobs.
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../errors.js';
import { collect, launch, totalUsage, type ChoicePlan, type GenerationDeps, type TokenOut } from '../generation.js';
import { completionPrompts, maxTokensFor } from '../prompt.js';
import type { ServerContext } from '../request-options.js';
import { legacyLogprobs, type LegacyLogprobs } from './logprobs.js';
import { checkChoiceCount, choicePlans, openAiSampling, promptCount, requestId, usageBody } from './params.js';
import { completionBodySchema, type CompletionBody } from './schemas.js';
import { streamOpenAi } from './stream.js';

export function registerCompletionsRoute(app: FastifyInstance, ctx: ServerContext, deps: GenerationDeps): void {
  app.post<{ Body: CompletionBody }>('/v1/completions', { schema: { body: completionBodySchema } }, async (req, reply) => {
    const body = req.body;
    if (body.echo === true) throw badRequest('echo is not supported', 'echo');
    if (body.suffix != null && body.suffix !== '') throw badRequest('suffix is not supported', 'suffix');
    const n = body.n ?? 1;
    if (body.best_of != null && body.best_of !== n) throw badRequest('best_of other than n is not supported', 'best_of');
    checkChoiceCount(ctx, promptCount(body.prompt), n);
    const top = body.logprobs ?? undefined;
    const sampling = openAiSampling(ctx, body, top === undefined ? 0 : Math.max(1, top), 'logprobs');
    const prompts = await completionPrompts(ctx, body.prompt, { parseSpecial: body.parse_special ?? true });
    const id = requestId('cmpl');
    const created = Math.floor(Date.now() / 1000);
    // Usage counts each prompt once, whatever its number of choices.
    const promptOf = (index: number): number => Math.floor(index / n);
    const plans: ChoicePlan[] = [];
    prompts.forEach((ids, i) => {
      const maxTokens = maxTokensFor(ctx, ids.length, body.max_tokens ?? undefined, {
        prompt: prompts.length > 1 ? `prompt[${i}]` : 'prompt',
        maxTokens: 'max_tokens',
      });
      plans.push(...choicePlans(ctx, body, { idPrefix: id, promptIds: ids, firstIndex: i * n, maxTokens, sampling, reasoning: 'off' }));
    });
    const gen = await launch(deps, reply, plans);
    const logprobs = (tokens: readonly TokenOut[]): LegacyLogprobs | null =>
      top === undefined ? null : legacyLogprobs(ctx.tokenizer, tokens, top);

    if (body.stream) {
      return streamOpenAi(
        reply,
        gen,
        {
          chunk: (choices, extra = {}) => ({ id, object: 'text_completion', created, model: ctx.modelName, choices, ...extra }),
          delta: (out) => {
            const lp = logprobs(out.tokens);
            if (out.content === '' && (lp === null || lp.tokens.length === 0)) return undefined;
            return { index: out.index, text: out.content, logprobs: lp, finish_reason: null };
          },
          end: (out) => ({ index: out.index, text: '', logprobs: null, finish_reason: out.finishReason }),
        },
        { include: body.stream_options?.include_usage === true, promptOf },
      );
    }

    const choices = await collect(gen, plans.map((p) => p.index));
    if (gen.isCancelled) return reply.hijack(); // the client is gone: nobody to answer
    return {
      id,
      object: 'text_completion',
      created,
      model: ctx.modelName,
      choices: choices.map((c) => ({ index: c.index, text: c.content, logprobs: logprobs(c.tokens), finish_reason: c.finishReason })),
      usage: usageBody(totalUsage(choices, promptOf)),
    };
  });
}
