// OpenAI request fields shared by chat and completions → the parts of a ChoicePlan: sampling parameters, stop
// strings and ids, and one plan per choice (n > 1: its own engine request and seed).
import { randomUUID } from 'node:crypto';
import type { SamplingParams } from '../../engine/sampling-params.js';
import { badRequest } from '../errors.js';
import type { ChoicePlan } from '../generation.js';
import { stopIdsFor } from '../prompt.js';
import type { ServerContext } from '../request-options.js';
import { buildSampling, parseLogitBias, stopStrings, type FieldNames } from '../sampling-fields.js';
import type { ReasoningMode } from '../text-stream.js';
import type { CommonBody } from './schemas.js';

function openAiNames(logprobsField: string): FieldNames {
  return {
    temperature: 'temperature',
    topK: 'top_k',
    topP: 'top_p',
    minP: 'min_p',
    repetitionPenalty: 'repetition_penalty',
    presencePenalty: 'presence_penalty',
    frequencyPenalty: 'frequency_penalty',
    logitBias: 'logit_bias',
    seed: 'seed',
    logprobs: logprobsField,
  };
}

/** The sampling of one request; `logprobs` is what the engine is asked for (0: none). */
export function openAiSampling(ctx: ServerContext, body: CommonBody, logprobs: number, logprobsField: string): SamplingParams {
  const fields: Partial<SamplingParams> = {
    temperature: body.temperature ?? ctx.samplingDefaults?.temperature,
    topK: body.top_k ?? undefined,
    topP: body.top_p ?? ctx.samplingDefaults?.topP,
    minP: body.min_p ?? undefined,
    repetitionPenalty: body.repetition_penalty ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    logitBias: parseLogitBias(body.logit_bias, 'logit_bias'),
    seed: body.seed ?? undefined,
    logprobs,
  };
  return buildSampling(fields, openAiNames(logprobsField), ctx.tokenizer.vocabSize);
}

export interface PlanInput {
  idPrefix: string;
  promptIds: number[];
  /** Index of the first choice of this prompt (completions with several prompts: prompt i starts at i·n). */
  firstIndex: number;
  maxTokens: number;
  sampling: SamplingParams;
  reasoning: ReasoningMode;
}

/** The n choices of one prompt. With a seed, choice k uses seed + k: reproducible, yet the choices differ. */
export function choicePlans(ctx: ServerContext, body: CommonBody, input: PlanInput): ChoicePlan[] {
  const n = body.n ?? 1;
  const stopIds = stopIdsFor(ctx, body.ignore_eos ?? false, body.stop_token_ids ?? []);
  for (const id of stopIds) {
    if (id >= ctx.tokenizer.vocabSize) throw badRequest(`token id ${id} is not in the vocabulary`, 'stop_token_ids');
  }
  const stops = stopStrings(body.stop);
  return Array.from({ length: n }, (_, k) => {
    const index = input.firstIndex + k;
    const seed = input.sampling.seed === undefined ? undefined : (input.sampling.seed + k) % Number.MAX_SAFE_INTEGER;
    return {
      index,
      engineId: `${input.idPrefix}-${index}`,
      promptIds: input.promptIds,
      sampling: { ...input.sampling, seed },
      maxTokens: input.maxTokens,
      stopIds,
      stopStrings: stops,
      reasoning: input.reasoning,
      cacheSalt: body.cache_salt ?? undefined,
    };
  });
}

/**
 * Refuses, before any prompt is tokenized, a request whose choices (prompts × n, one engine request each) exceed
 * --max_choices_per_request, or --max_queue (such a request could never be queued: a 400, not a 503 forever).
 */
export function checkChoiceCount(ctx: ServerContext, prompts: number, n: number): void {
  const choices = prompts * n;
  const what = prompts === 1 ? `n is ${n}` : `${prompts} prompts × n ${n} = ${choices} choices`;
  const fewer = prompts === 1 ? 'lower n' : 'send fewer prompts or a lower n';
  // The field at fault: n where it alone is too many, else the prompt list that multiplies it.
  const refuse = (limit: number, why: string): never => {
    throw badRequest(`${what}, but ${why}; ${fewer}`, n > limit || prompts === 1 ? 'n' : 'prompt', 'too_many_choices');
  };
  const cap = ctx.maxChoicesPerRequest;
  if (choices > cap) refuse(cap, `this server takes at most ${cap} choices per request (--max_choices_per_request)`);
  const queue = ctx.maxQueue;
  if (queue !== undefined && choices > queue) refuse(queue, `this server queues at most ${queue} (--max_queue), so the request could never be queued`);
}

/** Prompts in a /v1/completions `prompt` (its shapes are checked later, in completionPrompts): a list of ids is one. */
export function promptCount(prompt: unknown): number {
  return Array.isArray(prompt) && prompt.length > 0 && typeof prompt[0] !== 'number' ? prompt.length : 1;
}

export function requestId(prefix: string): string {
  return `${prefix}-${randomUUID().replace(/-/g, '')}`;
}

/** OpenAI's usage object. */
export function usageBody(u: { promptTokens: number; cachedTokens: number; completionTokens: number }): Record<string, unknown> {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
  };
}
