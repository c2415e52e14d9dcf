// JSON schemas of Ollama's request bodies (/api/generate, /api/chat, /api/show) and the shapes they guarantee.

const options = {
  type: ['object', 'null'],
  properties: {
    temperature: { type: 'number', minimum: 0 },
    top_p: { type: 'number' },
    top_k: { type: 'integer' },
    min_p: { type: 'number' },
    num_predict: { type: 'integer' },
    seed: { type: 'integer' },
    stop: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    repeat_penalty: { type: 'number' },
    presence_penalty: { type: 'number' },
    frequency_penalty: { type: 'number' },
  },
} as const;

const common = {
  model: { type: 'string' },
  stream: { type: ['boolean', 'null'] },
  options,
  format: {},
  keep_alive: {},
  think: {},
} as const;

export const generateBodySchema = {
  type: 'object',
  properties: {
    ...common,
    prompt: { type: ['string', 'null'] },
    system: { type: ['string', 'null'] },
    suffix: { type: ['string', 'null'] },
    raw: { type: ['boolean', 'null'] },
    context: { type: ['array', 'null'], items: { type: 'integer', minimum: 0 } },
    images: { type: ['array', 'null'] },
    template: { type: ['string', 'null'] },
  },
} as const;

export const chatBodySchema = {
  type: 'object',
  properties: {
    ...common,
    messages: {
      type: ['array', 'null'],
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { type: 'string' },
          content: { type: ['string', 'null'] },
          thinking: { type: ['string', 'null'] },
          images: { type: ['array', 'null'] },
        },
      },
    },
    tools: {},
  },
} as const;

export const showBodySchema = {
  type: 'object',
  properties: { model: { type: 'string' }, name: { type: 'string' } },
} as const;

export interface OllamaOptions {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  num_predict?: number;
  seed?: number;
  stop?: string | string[];
  repeat_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
}

export interface OllamaCommon {
  model?: string;
  stream?: boolean | null;
  options?: OllamaOptions | null;
  format?: unknown;
}

export interface GenerateBody extends OllamaCommon {
  prompt?: string | null;
  system?: string | null;
  suffix?: string | null;
  raw?: boolean | null;
  context?: number[] | null;
  images?: unknown[] | null;
  template?: string | null;
}

export interface OllamaChatBody extends OllamaCommon {
  messages?: Array<{ role: string; content?: string | null; thinking?: string | null; images?: unknown[] | null }> | null;
}
