// Chat templates (Jinja, as in tokenizer_config.json or GGUF tokenizer.chat_template) rendered with @huggingface/jinja,
// with the globals Hugging Face's apply_chat_template provides (raise_exception, strftime_now).
//
// BOS: templates that need a BOS write it themselves ({{ bos_token }}), as Hugging Face expects; so encode the
// rendered text with `addSpecialTokens: false`, or the prompt starts with two BOS tokens.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { getArray, getNumber, getString, type GgufValue } from '../formats/gguf.js';
import { isObject, objectList, tokenContent } from './config.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | string;
  content: string | null;
  reasoning_content?: string;
  tool_calls?: unknown[];
  name?: string;
  tool_call_id?: string;
}

export interface ChatRenderOptions {
  /** End with the header of an assistant turn, for the model to write. */
  addGenerationPrompt?: boolean;
  tools?: unknown[];
  /** More template variables (enable_thinking, documents...). */
  extra?: Record<string, unknown>;
}

/** Special-token strings the template may use: bos_token, eos_token, and any others. */
export type ChatTemplateSpecials = { bos_token?: string; eos_token?: string } & Record<string, string | undefined>;

/**
 * Why a template gave no text: it does not parse ('parse'), it called raise_exception to refuse its input
 * ('raised': the message is the template's own, written for the caller), or the interpreter stopped on something the
 * input did not have or had the wrong type of ('runtime': the message is the interpreter's, not for clients).
 */
export type ChatTemplateFailure = 'parse' | 'raised' | 'runtime';

export class ChatTemplateError extends Error {
  readonly failure: ChatTemplateFailure;

  constructor(message: string, options?: { cause?: unknown; failure?: ChatTemplateFailure }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChatTemplateError';
    this.failure = options?.failure ?? 'raised';
  }
}

export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string, private readonly specials: ChatTemplateSpecials) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`chat template does not parse: ${(e as Error).message}`, { cause: e, failure: 'parse' });
    }
  }

  /** From tokenizer_config.json's chat_template (a string or named list), or chat_template.jinja beside it. */
  static fromTokenizerConfig(dir: string): ChatTemplate | undefined {
    const configPath = join(dir, 'tokenizer_config.json');
    const config: unknown = existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : {};
    const cfg = isObject(config) ? config : {};
    let source: string | undefined;
    if (typeof cfg.chat_template === 'string') source = cfg.chat_template;
    else if (Array.isArray(cfg.chat_template)) {
      const named = objectList(cfg.chat_template);
      const pick = named.find((t) => t.name === 'default') ?? named[0];
      source = typeof pick?.template === 'string' ? pick.template : undefined;
    }
    const jinjaPath = join(dir, 'chat_template.jinja');
    if (source === undefined && existsSync(jinjaPath)) source = readFileSync(jinjaPath, 'utf8');
    if (source === undefined) return undefined;
    const specials: ChatTemplateSpecials = {};
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const content = tokenContent(cfg[key]);
      if (content !== undefined) specials[key] = content;
    }
    return new ChatTemplate(source, specials);
  }

  /** From GGUF metadata: tokenizer.chat_template, with BOS/EOS texts from the vocabulary. */
  static fromGguf(metadata: Map<string, GgufValue>): ChatTemplate | undefined {
    const source = getString(metadata, 'tokenizer.chat_template');
    if (source === undefined) return undefined;
    const tokens = getArray(metadata, 'tokenizer.ggml.tokens');
    const text = (key: string): string | undefined => {
      const id = getNumber(metadata, key);
      const t = id === undefined ? undefined : tokens?.[id];
      return typeof t === 'string' ? t : undefined;
    };
    const specials: ChatTemplateSpecials = {};
    const bos = text('tokenizer.ggml.bos_token_id');
    const eos = text('tokenizer.ggml.eos_token_id');
    if (bos !== undefined) specials.bos_token = bos;
    if (eos !== undefined) specials.eos_token = eos;
    return new ChatTemplate(source, specials);
  }

  /** The prompt text; encode it with `addSpecialTokens: false` (the template wrote any BOS itself). */
  render(messages: readonly ChatMessage[], opts: ChatRenderOptions = {}): string {
    const globals = new Environment();
    for (const [name, value] of Object.entries(GLOBALS)) globals.set(name, value);
    const env = new Environment(globals);
    const context: Record<string, unknown> = {
      ...this.specials,
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      ...(opts.tools !== undefined ? { tools: opts.tools } : {}),
      ...opts.extra,
    };
    try {
      // Setting a variable converts the value to the interpreter's types, recursively: inside the try, as rendering.
      for (const [name, value] of Object.entries(context)) if (value !== undefined) env.set(name, value);
      const result = new Interpreter(env).run(this.template.parsed);
      return String(result.value);
    } catch (e) {
      if (e instanceof ChatTemplateError) throw e;
      // The interpreter reports what it cannot do with plain Errors; a TypeError, RangeError... is a bug of ours or
      // of the interpreter, and goes up as it is.
      if (e instanceof Error && e.constructor === Error) {
        throw new ChatTemplateError(`chat template failed: ${e.message}`, { cause: e, failure: 'runtime' });
      }
      throw e;
    }
  }
}

const GLOBALS: Record<string, unknown> = {
  true: true, false: false, none: null, True: true, False: false, None: null,
  range: (start: number, stop?: number, step = 1): number[] => {
    if (stop === undefined) [start, stop] = [0, start];
    if (step === 0) throw new ChatTemplateError('range() step must not be zero');
    const out: number[] = [];
    for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
    return out;
  },
  raise_exception: (message: unknown): never => {
    throw new ChatTemplateError(String(message));
  },
  strftime_now: (format: unknown): string => strftime(new Date(), String(format)),
};

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Python's strftime in the C locale (English names), local time: the directives chat templates use. */
export function strftime(d: Date, format: string): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const startOfYear = new Date(d.getFullYear(), 0, 1);
  const dayOfYear = Math.floor((d.getTime() - startOfYear.getTime()) / 86_400_000) + 1;
  return format.replace(/%([a-zA-Z%])/g, (all, c: string) => {
    switch (c) {
      case 'a': return DAYS[d.getDay()]!.slice(0, 3);
      case 'A': return DAYS[d.getDay()]!;
      case 'b': case 'h': return MONTHS[d.getMonth()]!.slice(0, 3);
      case 'B': return MONTHS[d.getMonth()]!;
      case 'd': return pad(d.getDate());
      case 'e': return String(d.getDate()).padStart(2, ' ');
      case 'H': return pad(d.getHours());
      case 'I': return pad(d.getHours() % 12 || 12);
      case 'j': return pad(dayOfYear, 3);
      case 'm': return pad(d.getMonth() + 1);
      case 'M': return pad(d.getMinutes());
      case 'p': return d.getHours() < 12 ? 'AM' : 'PM';
      case 'S': return pad(d.getSeconds());
      case 'y': return pad(d.getFullYear() % 100);
      case 'Y': return String(d.getFullYear());
      case 'w': return String(d.getDay());
      case '%': return '%';
      default: return all;
    }
  });
}
