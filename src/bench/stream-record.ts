// What one streamed request looked like from the client: when each content chunk arrived, what usage the server
// reported, and whether the stream ended properly. Metrics are computed from these records afterwards.

/** The outcome of one request; times are milliseconds on the performance.now() clock. */
export interface RequestRecord {
  ok: boolean;
  /** Why the request failed (HTTP status and message, broken stream, error event); absent when ok. */
  error?: string;
  /** When the request was sent (after any client-side queueing for a concurrency slot). */
  startMs: number;
  /** The last content chunk (ok), or when the failure was seen. */
  endMs: number;
  /** First content chunk − start. */
  ttftMs: number;
  /** Gaps between consecutive content chunks. */
  itlMs: number[];
  /** Last content chunk − start. */
  e2eMs: number;
  /** The generated text, for re-tokenizing when the server sends no usage. */
  text: string;
  contentChunks: number;
  /** usage.completion_tokens, when the server sent it. */
  completionTokens?: number;
  /** usage.prompt_tokens, when the server sent it. */
  promptTokens?: number;
  /** The prompt length the dataset computed (exact with a tokenizer, else an estimate). */
  clientPromptTokens: number;
}

/** The text a chunk adds: completions' `text`, or chat's `delta.content` (and reasoning fields, which are output too). */
function chunkText(choice: unknown): string {
  if (typeof choice !== 'object' || choice === null) return '';
  const c = choice as { text?: unknown; delta?: Record<string, unknown> };
  let s = typeof c.text === 'string' ? c.text : '';
  const d = c.delta;
  if (d && typeof d === 'object') {
    for (const key of ['reasoning_content', 'reasoning', 'content']) {
      const v = d[key];
      if (typeof v === 'string') s += v;
    }
  }
  return s;
}

function errorText(err: unknown): string {
  if (typeof err === 'string') return err;
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  return JSON.stringify(err);
}

/**
 * Builds a RequestRecord from the events of one stream. TTFT, ITL and E2E count only chunks that carry text:
 * a role-only first chunk (which some servers send on admission, before any token exists) or the trailing usage
 * chunk would otherwise fake a fast first token or stretch the end.
 */
export class StreamRecorder {
  private firstMs: number | undefined;
  private lastMs: number | undefined;
  private readonly itl: number[] = [];
  private text = '';
  private chunks = 0;
  private done = false;
  private finishReason = false;
  private usage: { completion?: number; prompt?: number } = {};
  private failure: string | undefined;

  constructor(
    readonly startMs: number,
    readonly clientPromptTokens: number,
  ) {}

  /** One event's data payload, received at `nowMs`. Events after [DONE] or an error are ignored. */
  onData(nowMs: number, data: string): void {
    if (this.done || this.failure !== undefined) return;
    if (data.trim() === '[DONE]') {
      this.done = true;
      return;
    }
    let ev: unknown;
    try {
      ev = JSON.parse(data);
    } catch {
      this.failure = `malformed stream chunk: ${data.slice(0, 120)}`;
      return;
    }
    if (typeof ev !== 'object' || ev === null) return;
    const o = ev as { error?: unknown; choices?: unknown; usage?: unknown };
    if (o.error !== undefined && o.error !== null) {
      this.failure = `error event in stream: ${errorText(o.error)}`;
      return;
    }
    if (Array.isArray(o.choices)) {
      let s = '';
      for (const choice of o.choices) {
        s += chunkText(choice);
        const fr = (choice as { finish_reason?: unknown } | null)?.finish_reason;
        if (fr !== undefined && fr !== null) this.finishReason = true;
      }
      if (s.length > 0) this.content(nowMs, s);
    }
    if (typeof o.usage === 'object' && o.usage !== null) {
      const u = o.usage as { completion_tokens?: unknown; prompt_tokens?: unknown };
      if (typeof u.completion_tokens === 'number') this.usage.completion = u.completion_tokens;
      if (typeof u.prompt_tokens === 'number') this.usage.prompt = u.prompt_tokens;
    }
  }

  private content(nowMs: number, s: string): void {
    if (this.firstMs === undefined) this.firstMs = nowMs;
    else this.itl.push(nowMs - this.lastMs!);
    this.lastMs = nowMs;
    this.text += s;
    this.chunks++;
  }

  /** The stream closed at `nowMs`: ok only with content and a proper end ([DONE] or a finish_reason). */
  finish(nowMs: number): RequestRecord {
    if (this.failure !== undefined) return this.fail(nowMs, this.failure);
    if (this.firstMs === undefined) return this.fail(nowMs, 'stream ended without any content chunk');
    if (!this.done && !this.finishReason) {
      return this.fail(nowMs, `stream ended before [DONE] or a finish_reason (after ${this.chunks} content chunks)`);
    }
    return {
      ok: true,
      startMs: this.startMs,
      endMs: this.lastMs!,
      ttftMs: this.firstMs - this.startMs,
      itlMs: this.itl,
      e2eMs: this.lastMs! - this.startMs,
      text: this.text,
      contentChunks: this.chunks,
      ...(this.usage.completion !== undefined ? { completionTokens: this.usage.completion } : {}),
      ...(this.usage.prompt !== undefined ? { promptTokens: this.usage.prompt } : {}),
      clientPromptTokens: this.clientPromptTokens,
    };
  }

  /** The request failed at `nowMs` (HTTP error, network error, broken stream). */
  fail(nowMs: number, error: string): RequestRecord {
    return {
      ok: false,
      error,
      startMs: this.startMs,
      endMs: nowMs,
      ttftMs: this.firstMs === undefined ? 0 : this.firstMs - this.startMs,
      itlMs: this.itl,
      e2eMs: nowMs - this.startMs,
      text: this.text,
      contentChunks: this.chunks,
      clientPromptTokens: this.clientPromptTokens,
    };
  }
}
