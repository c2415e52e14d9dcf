// Streaming responses written straight to the socket: Server-Sent Events for OpenAI (`data: {…}\n\n` … `data: [DONE]`)
// and newline-delimited JSON for Ollama. Fastify steps aside (hijack) once the status line is decided.
import type { FastifyReply } from 'fastify';

export type StreamFormat = 'sse' | 'ndjson';

export class EventStream {
  private opened = false;

  constructor(private readonly reply: FastifyReply, private readonly format: StreamFormat) {}

  /** Sends the 200 header. Headers set earlier on the reply (CORS…) go out with it. */
  open(): void {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.reply.getHeaders())) if (v !== undefined) headers[k] = String(v);
    this.reply.hijack();
    const raw = this.reply.raw;
    if (raw.destroyed) return; // the client left while the request was being admitted: every send is a no-op
    raw.writeHead(200, {
      ...headers,
      'content-type': this.format === 'sse' ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // Tells nginx-style proxies not to buffer the stream.
      'x-accel-buffering': 'no',
    });
    // Send the header now: clients wait for it before they show anything.
    raw.flushHeaders();
    this.opened = true;
  }

  /** Whether the client is gone (or the stream was ended): writes are dropped then. */
  get closed(): boolean {
    const raw = this.reply.raw;
    return raw.destroyed || raw.writableEnded;
  }

  send(obj: unknown): void {
    if (!this.opened || this.closed) return;
    const json = JSON.stringify(obj);
    this.reply.raw.write(this.format === 'sse' ? `data: ${json}\n\n` : `${json}\n`);
  }

  /** Ends the stream (SSE: with the `[DONE]` sentinel OpenAI clients wait for). */
  end(): void {
    if (!this.opened || this.closed) return;
    this.reply.raw.end(this.format === 'sse' ? 'data: [DONE]\n\n' : undefined);
  }
}
