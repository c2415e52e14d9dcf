// The HTTP side of the serving benchmark: one streamed completion request over Node's fetch (undici), timed per
// network read, and the connection pool it runs on.
import type { BenchPrompt } from './dataset.js';
import { SseParser } from './sse.js';
import { StreamRecorder, type RequestRecord } from './stream-record.js';

export type Endpoint = 'chat' | 'completions';
export type Dispatcher = NonNullable<RequestInit['dispatcher']>;

export interface RequestTarget {
  /** The endpoint URL, e.g. http://127.0.0.1:8000/v1/completions. */
  url: string;
  endpoint: Endpoint;
  model: string;
  apiKey?: string;
  ignoreEos: boolean;
  /** Whole-request limit; a request past it fails with a timeout error. */
  timeoutMs: number;
  dispatcher?: Dispatcher;
}

/** The endpoint URL from a base URL given with or without its /v1 suffix. */
export function endpointUrl(baseUrl: string, endpoint: Endpoint): string {
  const base = baseUrl.replace(/\/+$/, '');
  const v1 = /\/v1$/.test(base) ? base : `${base}/v1`;
  return `${v1}/${endpoint === 'chat' ? 'chat/completions' : 'completions'}`;
}

/**
 * A connection pool for the benchmark: keep-alive, no cap on connections per origin, and none of undici's
 * 300-second header/body timeouts (a request queued behind many others on a slow server may wait longer before
 * its first byte; our own per-request timeout applies instead). Node bundles undici without exporting its Agent,
 * so the class is taken from the global dispatcher, which undici registers under this well-known symbol (the same
 * one its setGlobalDispatcher writes). Without it, requests use the default pool, which is also uncapped.
 */
export async function createDispatcher(): Promise<Dispatcher | undefined> {
  const key = Symbol.for('undici.globalDispatcher.1');
  const g = globalThis as unknown as Record<symbol, { constructor: new (opts: object) => Dispatcher } | undefined>;
  // A data: URL makes undici load (and register its global dispatcher) without touching the network.
  if (g[key] === undefined) await fetch('data:,').then((r) => r.arrayBuffer()).catch(() => undefined);
  const Agent = g[key]?.constructor;
  if (typeof Agent !== 'function' || Agent.name !== 'Agent') return undefined;
  return new Agent({ connections: null, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 60_000 });
}

/** Closes a pool made by createDispatcher. */
export async function closeDispatcher(d: Dispatcher | undefined): Promise<void> {
  await (d as { close?: () => Promise<void> } | undefined)?.close?.();
}

/** The JSON body of one request: streamed, with usage in the last chunk. */
export function requestBody(t: RequestTarget, p: BenchPrompt): Record<string, unknown> {
  return {
    model: t.model,
    ...(t.endpoint === 'chat' ? { messages: p.messages } : { prompt: p.prompt }),
    max_tokens: p.maxTokens,
    stream: true,
    stream_options: { include_usage: true },
    // A vLLM extension (ktserve, vLLM, SGLang and llama.cpp's server accept it); sent only when asked for.
    ...(t.ignoreEos ? { ignore_eos: true } : {}),
  };
}

/** A readable message for a failed fetch: undici hides the real reason (ECONNREFUSED, "other side closed") in `cause`. */
export function fetchErrorText(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { message?: string; code?: string } };
  if (e?.name === 'TimeoutError') return 'request timed out';
  const cause = e?.cause ? `: ${e.cause.code ?? ''}${e.cause.code && e.cause.message ? ' ' : ''}${e.cause.message ?? ''}` : '';
  return `${e?.message ?? String(err)}${cause}`;
}

/** The message of an HTTP error response: the OpenAI-style error.message when the body has one, else the body. */
export function httpErrorText(status: number, statusText: string, body: string): string {
  let message = body.trim();
  try {
    const v = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
    const m = typeof v.error === 'object' ? v.error?.message : (v.error ?? v.message ?? v.detail);
    if (typeof m === 'string') message = m;
  } catch {
    // not JSON: keep the text
  }
  if (message.length > 200) message = `${message.slice(0, 200)}…`;
  return `HTTP ${status}${statusText ? ` ${statusText}` : ''}${message ? `: ${message}` : ''}`;
}

/** Sends one streamed request and records its timing; never throws (failures come back as records). */
export async function sendRequest(t: RequestTarget, p: BenchPrompt): Promise<RequestRecord> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (t.apiKey) headers.authorization = `Bearer ${t.apiKey}`;
  const body = JSON.stringify(requestBody(t, p));
  const rec = new StreamRecorder(performance.now(), p.promptTokens);
  try {
    const res = await fetch(t.url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(t.timeoutMs),
      ...(t.dispatcher ? { dispatcher: t.dispatcher } : {}),
    });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      return rec.fail(performance.now(), httpErrorText(res.status, res.statusText, text));
    }
    const parser = new SseParser();
    // Read to the end even after [DONE], so the connection goes back to the pool instead of being torn down.
    for await (const chunk of res.body) {
      // One timestamp per network read: events that arrive together arrived at the same time.
      const now = performance.now();
      for (const data of parser.push(chunk)) rec.onData(now, data);
    }
    const now = performance.now();
    for (const data of parser.end()) rec.onData(now, data);
    return rec.finish(now);
  } catch (err) {
    return rec.fail(performance.now(), fetchErrorText(err));
  }
}
