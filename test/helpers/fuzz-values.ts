// What the server fuzz starts from and throws at it: one valid body per POST route (every schema field set, so
// mutating "every field" means walking these), and the replacement values, junk strings and malformed JSON texts.
import { RawJson, type Value } from './fuzz-requests.js';

/** The demo model's served name; any name is accepted, but this one is also a valid /v1/models/:id. */
export const MODEL = 'ktserve-demo';

const ollamaOptions = {
  temperature: 0, top_p: 0.9, top_k: 40, min_p: 0, num_predict: 4, seed: 1, stop: ['\n\n'],
  repeat_penalty: 1, presence_penalty: 0, frequency_penalty: 0,
};

/**
 * Valid bodies, keyed by route. Short answers (max_tokens 4; the server runs with --max_new_tokens 8), so a
 * mutation that leaves a body valid costs a few milliseconds of decoding.
 */
export const BASE_BODIES: Readonly<Record<string, Record<string, unknown>>> = {
  '/v1/chat/completions': {
    model: MODEL,
    messages: [
      { role: 'system', content: 'You are terse.', name: 'sys' },
      { role: 'user', content: [{ type: 'text', text: 'What is 2+3?' }] },
    ],
    max_tokens: 4, max_completion_tokens: 4, temperature: 0, top_p: 1, top_k: 10, min_p: 0,
    presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, logit_bias: { '5': 0.5 }, seed: 7,
    stop: ['\n\n'], stop_token_ids: [3], n: 1, stream: false, stream_options: { include_usage: true },
    ignore_eos: false, user: 'fuzz', logprobs: true, top_logprobs: 2, chat_template_kwargs: { enable_thinking: false },
  },
  '/v1/completions': {
    model: MODEL, prompt: 'What is 2+3?', max_tokens: 4, temperature: 0, top_p: 1, top_k: 10, min_p: 0,
    presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, logit_bias: { '5': 0.5 }, seed: 7,
    stop: '\n\n', stop_token_ids: [3], n: 1, best_of: 1, stream: false, stream_options: { include_usage: true },
    ignore_eos: false, user: 'fuzz', logprobs: 1, echo: false, suffix: null,
  },
  '/api/generate': {
    model: MODEL, prompt: 'What is 2+3?', system: 'Be terse.', stream: false, raw: false, context: [1, 2],
    images: null, template: null, format: '', keep_alive: '5m', think: false, options: ollamaOptions,
  },
  '/api/chat': {
    model: MODEL, messages: [{ role: 'user', content: 'What is 2+3?', images: null, thinking: null }], stream: false,
    format: '', keep_alive: '5m', think: false, tools: [], options: ollamaOptions,
  },
  '/api/show': { model: MODEL, name: MODEL },
};

/** Replacements for any field: every JSON type, boundaries, and numbers JSON.stringify cannot write. */
export const RETYPES: readonly Value[] = [
  null, true, false, 0, -1, 1.5, -0.5, 1e308, -1e308, '', 'x', '1', [], [1], ['x'], [null], {}, { a: 1 },
  new RawJson('1e400'), new RawJson('-1e400'), new RawJson('9007199254740993'), new RawJson('-0'),
  new RawJson('123456789012345678901234567890123456789'), new RawJson('1e-400'),
];

/** Strings a tokenizer, a template or a logger might trip on. */
export const JUNK_STRINGS: readonly Value[] = [
  '\u0000', 'a\u0000b', new RawJson('"\\ud800"'), new RawJson('"x\\udc00y"'), '\uffff\ufffe', '\ufeffhi', '\u202egnp.exe',
  '😀'.repeat(200), 'e\u0301'.repeat(500), '\r\n\r\nHTTP/1.1 200 OK\r\n', '{{ raise_exception("boom") }}', '{% for x in range(99999999) %}x{% endfor %}',
  '<|begin_of_text|><|start_header_id|>', '</think><think>', '%s%n%x', '\\', ' '.repeat(10_000), 'ÿ'.repeat(3000),
];

/** Bodies that are not valid JSON, or valid JSON of the wrong shape, sent as application/json. */
export function malformedJsonTexts(valid: string): readonly string[] {
  return [
    '', ' ', '{', '}', '[', '{"', '{"messages":', '{"a":1,}', "{'a':1}", '{"a":NaN}', '{"a":Infinity}', '{"a":-}',
    '{"a":01}', '{"a":.5}', '{"a":1.}', '{"a":"\u0000"}', '{"a":"\\x41"}', '{"a":"\\u12"}', '/* c */{}', '{}//c',
    'null', 'true', '0', '"str"', '[]', '[{}]', `[${valid}]`, `${valid}${valid}`, `${valid} xyz`, `\ufeff${valid}`,
    valid.slice(0, Math.floor(valid.length / 2)), `{"\u0000":1}`, '{"a":1 "b":2}', '{a:1}', '{"a":"b"\n', '\u0000',
  ];
}
