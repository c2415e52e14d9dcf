// JSON schemas of the OpenAI request bodies (checked by Fastify before a handler runs; a violation is a 400 naming
// the field) and the TypeScript shapes they guarantee. Optional fields also accept null, as many clients send it.
import { MAX_LOGPROBS } from '../../engine/sampling-params.js';
import { MAX_CACHE_SALT_LENGTH } from '../cache-isolation.js';

const nullable = (type: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: [type, 'null'], ...extra });

const stop = {
  anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }, { type: 'null' }],
};

/** Fields shared by chat and completions. */
const common = {
  model: nullable('string'),
  max_tokens: nullable('integer', { minimum: 1 }),
  temperature: nullable('number', { minimum: 0, maximum: 2 }),
  top_p: nullable('number'),
  top_k: nullable('integer'),
  min_p: nullable('number'),
  presence_penalty: nullable('number'),
  frequency_penalty: nullable('number'),
  repetition_penalty: nullable('number'),
  logit_bias: nullable('object', { additionalProperties: { type: 'number' } }),
  seed: nullable('integer'),
  stop,
  stop_token_ids: nullable('array', { items: { type: 'integer', minimum: 0 } }),
  n: nullable('integer', { minimum: 1, maximum: 128 }),
  stream: nullable('boolean'),
  stream_options: nullable('object', { properties: { include_usage: nullable('boolean') } }),
  ignore_eos: nullable('boolean'),
  user: nullable('string'),
  // vLLM's field: only requests with the same salt share prefix-cache entries. Empty is refused, as vLLM does.
  cache_salt: nullable('string', { minLength: 1, maxLength: MAX_CACHE_SALT_LENGTH }),
} as const;

const contentPart = {
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string' }, text: { type: 'string' } },
};

export const chatBodySchema = {
  type: 'object',
  required: ['messages'],
  properties: {
    ...common,
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { type: 'string' },
          content: { anyOf: [{ type: 'string' }, { type: 'null' }, { type: 'array', items: contentPart }] },
          name: { type: 'string' },
          reasoning_content: nullable('string'),
          tool_call_id: { type: 'string' },
          tool_calls: { type: 'array' },
        },
      },
    },
    max_completion_tokens: nullable('integer', { minimum: 1 }),
    logprobs: nullable('boolean'),
    top_logprobs: nullable('integer', { minimum: 0, maximum: MAX_LOGPROBS }),
    chat_template_kwargs: nullable('object'),
    parse_special: nullable('boolean', {
      description:
        'Special-token texts in messages and chat_template_kwargs (e.g. "<|im_end|>") become control tokens. ' +
        'Default false: what the client writes stays text; only the chat template makes control tokens.',
    }),
  },
} as const;

export const completionBodySchema = {
  type: 'object',
  required: ['prompt'],
  properties: {
    ...common,
    // Its four shapes (string, strings, ids, lists of ids) are checked in prompt.ts, with a precise message.
    prompt: { type: ['string', 'array'] },
    logprobs: nullable('integer', { minimum: 0, maximum: MAX_LOGPROBS }),
    echo: nullable('boolean'),
    suffix: nullable('string'),
    best_of: nullable('integer', { minimum: 1 }),
    parse_special: nullable('boolean', {
      description:
        'Special-token texts in a text prompt (e.g. "<|im_start|>") become control tokens, as llama.cpp and vLLM do ' +
        'for raw prompts. Default true; false encodes them as the characters they are.',
    }),
  },
} as const;

export interface CommonBody {
  model?: string | null;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repetition_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stop_token_ids?: number[] | null;
  n?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  ignore_eos?: boolean | null;
  user?: string | null;
  cache_salt?: string | null;
}

export interface ChatBody extends CommonBody {
  messages: Array<{
    role: string;
    content?: string | null | Array<{ type: string; text?: string }>;
    name?: string;
    reasoning_content?: string | null;
    tool_call_id?: string;
    tool_calls?: unknown[];
  }>;
  max_completion_tokens?: number | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  chat_template_kwargs?: Record<string, unknown> | null;
  parse_special?: boolean | null;
}

export interface CompletionBody extends CommonBody {
  prompt: string | unknown[];
  logprobs?: number | null;
  echo?: boolean | null;
  suffix?: string | null;
  best_of?: number | null;
  parse_special?: boolean | null;
}
