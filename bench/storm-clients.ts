// The disconnecting clients of the storm bench, one function per way of leaving: a socket reset before any answer,
// a body cut off mid-upload, an abort as soon as the stream's headers arrive (the prompt is still in prefill), an
// abort after k streamed chunks (OpenAI SSE or Ollama NDJSON), and a non-streamed request abandoned after a delay.
import { connect } from 'node:net';
import { endpointUrl, fetchErrorText, type Dispatcher } from '../src/bench/http-client.js';
import { SseParser } from '../src/bench/sse.js';

export const ABORT_MODES = ['reset-before-headers', 'cut-upload', 'abort-at-headers', 'mid-stream', 'ollama-mid-stream', 'non-stream'] as const;
export type AbortMode = (typeof ABORT_MODES)[number];

/** What happened, from the client's side. */
export type StormOutcome =
  /** The client left as planned. */
  | { kind: 'aborted'; chunks: number }
  /** The server finished first (a short answer, or it was faster than the planned abort). */
  | { kind: 'completed'; chunks: number }
  | { kind: 'http-error'; status: number; body: string }
  | { kind: 'network-error'; message: string };

export interface StormTarget {
  url: string;
  model: string;
  dispatcher?: Dispatcher;
}

export interface StormPlan {
  mode: AbortMode;
  question: string;
  maxTokens: number;
  /** Chunks to read before aborting (mid-stream modes). */
  afterChunks: number;
  /** Milliseconds before leaving (reset, cut upload, non-stream). */
  delayMs: number;
}

function chatBody(t: StormTarget, p: StormPlan, stream: boolean): string {
  return JSON.stringify({ model: t.model, messages: [{ role: 'user', content: p.question }], max_tokens: p.maxTokens, ignore_eos: true, stream });
}

/** Raw socket: the whole request, or only its first half (`cut`), then a reset after `delayMs`, reading nothing. */
async function rawLeave(t: StormTarget, p: StormPlan, cut: boolean): Promise<StormOutcome> {
  const { hostname, port } = new URL(t.url);
  const body = Buffer.from(chatBody(t, p, true));
  const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const bytes = Buffer.concat([Buffer.from(head), cut ? body.subarray(0, body.length >> 1) : body]);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.on('error', (e) => resolve({ kind: 'network-error', message: e.message }));
    socket.on('connect', () => {
      socket.write(bytes);
      setTimeout(() => {
        socket.resetAndDestroy();
        resolve({ kind: 'aborted', chunks: 0 });
      }, p.delayMs);
    });
  });
}

/** A streamed request read until `stopAt(chunks)` says leave (checked at headers with 0, then per event). */
async function streamLeave(url: string, body: string, t: StormTarget, format: 'sse' | 'ndjson', stopAt: (chunks: number) => boolean): Promise<StormOutcome> {
  const ac = new AbortController();
  let chunks = 0;
  try {
    const res = await fetch(url, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: ac.signal,
      ...(t.dispatcher ? { dispatcher: t.dispatcher } : {}),
    });
    if (!res.ok || !res.body) return { kind: 'http-error', status: res.status, body: (await res.text()).slice(0, 200) };
    if (stopAt(0)) {
      ac.abort();
      return { kind: 'aborted', chunks };
    }
    const sse = new SseParser();
    const decoder = new TextDecoder();
    for await (const piece of res.body) {
      const events = format === 'sse' ? sse.push(piece) : decoder.decode(piece, { stream: true }).split('\n').filter((l) => l.trim() !== '');
      chunks += events.length;
      if (stopAt(chunks)) {
        ac.abort();
        return { kind: 'aborted', chunks };
      }
    }
    return { kind: 'completed', chunks };
  } catch (err) {
    if (ac.signal.aborted) return { kind: 'aborted', chunks };
    return { kind: 'network-error', message: fetchErrorText(err) };
  }
}

async function nonStreamLeave(t: StormTarget, p: StormPlan): Promise<StormOutcome> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), p.delayMs);
  try {
    const res = await fetch(endpointUrl(t.url, 'chat'), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody(t, p, false), signal: ac.signal,
      ...(t.dispatcher ? { dispatcher: t.dispatcher } : {}),
    });
    const text = await res.text();
    if (!res.ok) return { kind: 'http-error', status: res.status, body: text.slice(0, 200) };
    return { kind: 'completed', chunks: 1 };
  } catch (err) {
    if (ac.signal.aborted) return { kind: 'aborted', chunks: 0 };
    return { kind: 'network-error', message: fetchErrorText(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs one planned disconnect; never throws. */
export async function stormClient(t: StormTarget, p: StormPlan): Promise<StormOutcome> {
  switch (p.mode) {
    case 'reset-before-headers':
      return rawLeave(t, p, false);
    case 'cut-upload':
      return rawLeave(t, p, true);
    case 'abort-at-headers':
      return streamLeave(endpointUrl(t.url, 'chat'), chatBody(t, p, true), t, 'sse', () => true);
    case 'mid-stream':
      // The first events are the role chunk and the first text; leave somewhere inside the answer.
      return streamLeave(endpointUrl(t.url, 'chat'), chatBody(t, p, true), t, 'sse', (n) => n >= p.afterChunks);
    case 'ollama-mid-stream': {
      const body = JSON.stringify({ model: t.model, messages: [{ role: 'user', content: p.question }], stream: true, options: { num_predict: p.maxTokens } });
      return streamLeave(`${t.url}/api/chat`, body, t, 'ndjson', (n) => n >= p.afterChunks);
    }
    case 'non-stream':
      return nonStreamLeave(t, p);
  }
}
