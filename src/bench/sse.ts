// An incremental Server-Sent Events parser for streamed completions: bytes in as the network delivers them,
// the `data` of each complete event out, so the caller can timestamp events per network read.

/** Splits a byte stream into SSE events (WHATWG rules: \n, \r\n or \r line ends; ':' comments; data lines joined). */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';
  private data: string[] = [];
  private sawData = false;

  /** Feeds one network chunk; returns the data payloads of the events it completed, in order. */
  push(chunk: Uint8Array | string): string[] {
    // stream: true keeps a UTF-8 character split across two reads intact.
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    return this.drain(false);
  }

  /**
   * Ends the stream. The spec drops an event that was never terminated by a blank line; we return it instead,
   * because some servers close the connection right after the last `data:` line, and losing the final usage
   * chunk would change the token counts.
   */
  end(): string[] {
    this.buffer += this.decoder.decode();
    const out = this.drain(true);
    if (this.buffer.length > 0) this.line(this.buffer);
    this.buffer = '';
    const last = this.flush();
    if (last !== undefined) out.push(last);
    return out;
  }

  private drain(atEnd: boolean): string[] {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A lone \r at the end of a read may be the first half of \r\n: wait for the next read.
      if (c === 13 && i + 1 === this.buffer.length && !atEnd) break;
      const text = this.buffer.slice(start, i);
      if (c === 13 && this.buffer.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
      if (text.length === 0) {
        const ev = this.flush();
        if (ev !== undefined) out.push(ev);
      } else this.line(text);
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(text: string): void {
    if (text.startsWith(':')) return; // comment, often a keep-alive ping
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    if (field !== 'data') return; // event/id/retry carry nothing a completion stream needs
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.data.push(value);
    this.sawData = true;
  }

  private flush(): string | undefined {
    if (!this.sawData) return undefined;
    const ev = this.data.join('\n');
    this.data = [];
    this.sawData = false;
    return ev;
  }
}
