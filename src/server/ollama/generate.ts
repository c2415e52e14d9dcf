// Ollama's generation routes: POST /api/generate (a prompt, templated unless `raw`) and POST /api/chat (messages),
// NDJSON-streamed by default, ending with `done: true`, the done_reason and token counts / durations (ns).
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { SamplingParams } from '../../engine/sampling-params.js';
import { badRequest } from '../errors.js';
import { collect, launch, type ChoicePlan, type GenerationDeps } from '../generation.js';
import { chatPrompt } from '../chat-prompt.js';
import { encodeText, maxTokensFor, stopIdsFor } from '../prompt.js';
import type { ServerContext } from '../request-options.js';
import { buildSampling, stopStrings, type FieldNames } from '../sampling-fields.js';
import { EventStream } from '../sse.js';
import type { ReasoningMode } from '../text-stream.js';
import { chatBodySchema, generateBodySchema, type GenerateBody, type OllamaChatBody, type OllamaCommon } from './schemas.js';

const NAMES: FieldNames = {
  temperature: 'options.temperature',
  topK: 'options.top_k',
  topP: 'options.top_p',
  minP: 'options.min_p',
  repetitionPenalty: 'options.repeat_penalty',
  presencePenalty: 'options.presence_penalty',
  frequencyPenalty: 'options.frequency_penalty',
  logitBias: 'options.logit_bias',
  seed: 'options.seed',
  logprobs: 'options.logprobs',
};

/**
 * Ollama's documented defaults where the request gives none (temperature 0.8, top_k 40, top_p 0.9), unless the
 * server sets its own (--temperature, --top_p: as a Modelfile's PARAMETER does in Ollama). Its repeat_penalty
 * default (1.1 over the last 64 tokens) is left out: ours would apply to the whole prompt.
 */
function ollamaSampling(ctx: ServerContext, body: OllamaCommon): SamplingParams {
  const o = body.options ?? {};
  const server = ctx.samplingDefaults;
  return buildSampling(
    {
      temperature: o.temperature ?? server?.temperature ?? 0.8,
      topK: o.top_k ?? 40,
      topP: o.top_p ?? server?.topP ?? 0.9,
      minP: o.min_p,
      repetitionPenalty: o.repeat_penalty,
      presencePenalty: o.presence_penalty,
      frequencyPenalty: o.frequency_penalty,
      seed: o.seed,
    },
    NAMES,
    ctx.tokenizer.vocabSize,
  );
}

interface Job {
  kind: 'generate' | 'chat';
  promptIds: number[];
  reasoning: ReasoningMode;
  body: OllamaCommon;
}

function unsupported(body: OllamaCommon & { suffix?: string | null; images?: unknown[] | null }): void {
  if (body.format !== undefined && body.format !== null && body.format !== '') throw badRequest('format is not supported', 'format');
  if (body.suffix) throw badRequest('suffix is not supported', 'suffix');
  if (body.images && body.images.length > 0) throw badRequest('images are not supported', 'images');
}

export function registerOllamaGeneration(app: FastifyInstance, ctx: ServerContext, deps: GenerationDeps): void {
  app.post<{ Body: GenerateBody }>('/api/generate', { schema: { body: generateBodySchema } }, async (req, reply) => {
    const body = req.body ?? {};
    unsupported(body);
    const prompt = body.prompt ?? '';
    // An empty prompt only asks Ollama to load the model; ours is loaded.
    if (prompt === '' && !body.context?.length) return loaded(ctx, 'generate');
    // `context` (the ids a previous /api/generate returned) continues that conversation.
    const context = body.context ?? [];
    context.forEach((id, i) => {
      if (id >= ctx.tokenizer.vocabSize) throw badRequest(`token id ${id} is not in the vocabulary`, `context[${i}]`);
    });
    let job: Job;
    if (body.raw) {
      // A raw prompt is the client's whole prompt, markup included: its special-token texts are control tokens
      // (as in Ollama and llama.cpp). Templated prompts and /api/chat keep the client's text as text.
      const ids = await encodeText(ctx, prompt, { addSpecialTokens: context.length === 0 }, 'prompt');
      job = { kind: 'generate', promptIds: [...context, ...ids], reasoning: 'off', body };
    } else {
      const messages = [...(body.system ? [{ role: 'system', content: body.system }] : []), { role: 'user', content: prompt }];
      const p = await chatPrompt(ctx, messages);
      job = { kind: 'generate', promptIds: [...context, ...p.ids], reasoning: p.reasoning, body };
    }
    return respond(ctx, deps, reply, job);
  });

  app.post<{ Body: OllamaChatBody }>('/api/chat', { schema: { body: chatBodySchema } }, async (req, reply) => {
    const body = req.body ?? {};
    unsupported(body);
    const messages = body.messages ?? [];
    if (messages.length === 0) return loaded(ctx, 'chat');
    messages.forEach((m, i) => {
      if (m.images && m.images.length > 0) throw badRequest('images are not supported', `messages[${i}].images`);
    });
    const p = await chatPrompt(ctx, messages.map((m) => ({ role: m.role, content: m.content ?? '', reasoning_content: m.thinking ?? null })));
    return respond(ctx, deps, reply, { kind: 'chat', promptIds: p.ids, reasoning: p.reasoning, body });
  });
}

function loaded(ctx: ServerContext, kind: 'generate' | 'chat'): Record<string, unknown> {
  const base = { model: ctx.modelName, created_at: new Date().toISOString() };
  const payload = kind === 'chat' ? { message: { role: 'assistant', content: '' } } : { response: '' };
  return { ...base, ...payload, done: true, done_reason: 'load' };
}

async function respond(ctx: ServerContext, deps: GenerationDeps, reply: FastifyReply, job: Job): Promise<unknown> {
  const startedAt = performance.now();
  const o = job.body.options ?? {};
  // num_predict -1 (endless) and -2 (fill the context) both mean: as much as the context allows.
  const requested = o.num_predict !== undefined && o.num_predict > 0 ? o.num_predict : undefined;
  // Ollama never refuses a num_predict beyond the context: it stops there, and so do we.
  const room = Math.max(ctx.maxModelLen - job.promptIds.length, 1);
  const maxTokens = maxTokensFor(ctx, job.promptIds.length, requested === undefined ? undefined : Math.min(requested, room), {
    prompt: job.kind === 'chat' ? 'messages' : 'prompt',
    maxTokens: 'options.num_predict',
  });
  const plan: ChoicePlan = {
    index: 0,
    engineId: `ollama-${randomUUID()}`,
    promptIds: job.promptIds,
    sampling: ollamaSampling(ctx, job.body),
    maxTokens,
    stopIds: stopIdsFor(ctx, false),
    stopStrings: stopStrings(o.stop),
    reasoning: job.reasoning,
  };
  const gen = await launch(deps, reply, [plan]);
  const line = (content: string, thinking: string, extra: Record<string, unknown>): Record<string, unknown> => {
    const t = thinking !== '' ? { thinking } : {};
    const payload = job.kind === 'chat' ? { message: { role: 'assistant', content, ...t } } : { response: content, ...t };
    return { model: ctx.modelName, created_at: new Date().toISOString(), ...payload, ...extra };
  };
  const ns = (ms: number): number => Math.round(ms * 1e6);
  const final = (end: FinalFacts, generated: number[]): Record<string, unknown> => {
    const now = performance.now();
    const first = end.firstTokenAt ?? now;
    return {
      done: true,
      done_reason: end.finishReason,
      ...(job.kind === 'generate' ? { context: [...job.promptIds, ...generated] } : {}),
      total_duration: ns(now - startedAt),
      load_duration: 0,
      prompt_eval_count: end.usage.promptTokens,
      prompt_eval_duration: ns(first - startedAt),
      eval_count: end.usage.completionTokens,
      eval_duration: ns(now - first),
    };
  };

  if (job.body.stream === false) {
    const choices = await collect(gen, [0]);
    if (gen.isCancelled) return reply.hijack();
    const c = choices[0]!;
    return line(c.content, c.reasoning, final(c, c.tokens.map((t) => t.id)));
  }

  const stream = new EventStream(reply, 'ndjson');
  stream.open();
  const generated: number[] = [];
  gen.attach((out) => {
    if (out.kind === 'delta') {
      generated.push(...out.tokens.map((t) => t.id));
      if (out.content !== '' || out.reasoning !== '') stream.send(line(out.content, out.reasoning, { done: false }));
    } else if (out.kind === 'end') {
      stream.send(line('', '', final(out, generated)));
    } else {
      stream.send({ error: out.message });
      gen.cancel();
    }
  });
  await gen.done;
  stream.end();
  return undefined;
}

interface FinalFacts {
  finishReason: 'stop' | 'length';
  usage: { promptTokens: number; completionTokens: number };
  firstTokenAt: number | undefined;
}
