// The three kinds of request the soak benchmark mixes — OpenAI chat streamed (SSE), OpenAI chat in one body, Ollama
// chat streamed (NDJSON) — each sent once and reduced to one record: ok or why not, TTFT, end-to-end, tokens.
import { endpointUrl, fetchErrorText, httpErrorText, sendRequest, type Dispatcher } from '../src/bench/http-client.js';

export const SOAK_KINDS = ['chat-stream', 'chat', 'ollama-chat'] as const;
export type SoakKind = (typeof SOAK_KINDS)[number];

export interface SoakRecord {
  kind: SoakKind;
  ok: boolean;
  /** Why it failed, as a short kind that groups (`HTTP 503`, `ECONNRESET`, `stream: error event`…). */
  errorKind?: string;
  error?: string;
  /** First content − start (streamed kinds only). */
  ttftMs?: number;
  e2eMs: number;
  completionTokens: number;
}

export interface SoakTarget {
  /** Base URL of the server, without /v1. */
  url: string;
  model: string;
  timeoutMs: number;
  dispatcher?: Dispatcher;
}

/** The groupable part of an error message: the status of an HTTP error, the code of a network error. */
export function errorKind(message: string): string {
  const http = /^HTTP (\d{3})/.exec(message);
  if (http) return `HTTP ${http[1]}`;
  const code = /\b(E[A-Z]{3,}|UND_ERR_[A-Z_]+)\b/.exec(message);
  if (code) return code[1]!;
  if (message === 'request timed out') return 'timeout';
  return message.split(':')[0]!.slice(0, 60);
}

function failed(kind: SoakKind, t0: number, error: string): SoakRecord {
  return { kind, ok: false, error, errorKind: errorKind(error), e2eMs: performance.now() - t0, completionTokens: 0 };
}

function init(t: SoakTarget, body: unknown): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(t.timeoutMs),
    ...(t.dispatcher ? { dispatcher: t.dispatcher } : {}),
  };
}

async function chatStream(t: SoakTarget, question: string, maxTokens: number): Promise<SoakRecord> {
  const r = await sendRequest(
    { url: endpointUrl(t.url, 'chat'), endpoint: 'chat', model: t.model, ignoreEos: true, timeoutMs: t.timeoutMs, ...(t.dispatcher ? { dispatcher: t.dispatcher } : {}) },
    { prompt: question, messages: [{ role: 'user', content: question }], promptTokens: 0, maxTokens },
  );
  if (!r.ok) return { kind: 'chat-stream', ok: false, error: r.error!, errorKind: errorKind(r.error!), e2eMs: r.e2eMs, completionTokens: 0 };
  return { kind: 'chat-stream', ok: true, ttftMs: r.ttftMs, e2eMs: r.e2eMs, completionTokens: r.completionTokens ?? r.contentChunks };
}

async function chat(t: SoakTarget, question: string, maxTokens: number): Promise<SoakRecord> {
  const t0 = performance.now();
  try {
    const res = await fetch(endpointUrl(t.url, 'chat'), init(t, {
      model: t.model, messages: [{ role: 'user', content: question }], max_tokens: maxTokens, ignore_eos: true,
    }));
    const text = await res.text();
    if (!res.ok) return failed('chat', t0, httpErrorText(res.status, res.statusText, text));
    const v = JSON.parse(text) as { choices?: { message?: { content?: unknown }; finish_reason?: unknown }[]; usage?: { completion_tokens?: number } };
    const c = v.choices?.[0];
    if (typeof c?.message?.content !== 'string' || typeof c.finish_reason !== 'string') return failed('chat', t0, `malformed body: ${text.slice(0, 120)}`);
    return { kind: 'chat', ok: true, e2eMs: performance.now() - t0, completionTokens: v.usage?.completion_tokens ?? 0 };
  } catch (err) {
    return failed('chat', t0, fetchErrorText(err));
  }
}

async function ollamaChat(t: SoakTarget, question: string, maxTokens: number): Promise<SoakRecord> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${t.url}/api/chat`, init(t, {
      model: t.model, messages: [{ role: 'user', content: question }], stream: true, options: { num_predict: maxTokens },
    }));
    if (!res.ok || !res.body) return failed('ollama-chat', t0, httpErrorText(res.status, res.statusText, await res.text()));
    let buffer = '';
    let ttftMs: number | undefined;
    let tokens: number | undefined;
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line === '') continue;
        const v = JSON.parse(line) as { error?: unknown; message?: { content?: string }; done?: boolean; eval_count?: number };
        if (v.error !== undefined) return failed('ollama-chat', t0, `stream: error event: ${JSON.stringify(v.error).slice(0, 100)}`);
        if (ttftMs === undefined && (v.message?.content ?? '') !== '') ttftMs = performance.now() - t0;
        if (v.done) tokens = v.eval_count ?? 0;
      }
    }
    if (tokens === undefined) return failed('ollama-chat', t0, 'stream: ended without done: true');
    return { kind: 'ollama-chat', ok: true, ...(ttftMs !== undefined ? { ttftMs } : {}), e2eMs: performance.now() - t0, completionTokens: tokens };
  } catch (err) {
    return failed('ollama-chat', t0, fetchErrorText(err));
  }
}

/** Sends one request of `kind`; never throws. */
export function soakRequest(kind: SoakKind, t: SoakTarget, question: string, maxTokens: number): Promise<SoakRecord> {
  switch (kind) {
    case 'chat-stream': return chatStream(t, question, maxTokens);
    case 'chat': return chat(t, question, maxTokens);
    case 'ollama-chat': return ollamaChat(t, question, maxTokens);
  }
}
