// One HTTP/1.1 exchange over a bare TCP socket, for tests that must send what fetch refuses to (malformed request
// lines, duplicate or oversized headers, broken chunked bodies) and read exactly what the server wrote back.
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  /** Header names in lower case; a header sent twice has two values. */
  headers: Map<string, string[]>;
  /** The body, de-chunked. */
  body: Buffer;
}

/** How an exchange ended. */
export type RawOutcome =
  | { kind: 'response'; response: RawResponse }
  /** The server closed (or reset) the connection without a complete response; `bytes` it did send. */
  | { kind: 'closed'; bytes: number; detail: string }
  | { kind: 'timeout'; bytes: number }
  /** No connection at all (the server is gone). */
  | { kind: 'refused'; detail: string };

export interface ExchangeOptions {
  timeoutMs: number;
  /** The request was HEAD: the response has no body whatever its headers say. */
  head?: boolean;
  /** Half-close after writing, so a server waiting for more body sees the end of the stream. */
  halfClose?: boolean;
}

type Parsed = { done: true; response: RawResponse } | { done: false };

function headEnd(buf: Buffer): number {
  return buf.indexOf('\r\n\r\n');
}

/** De-chunks `buf`; undefined until the last chunk and its trailers are all there. */
function dechunk(buf: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = parseInt(buf.subarray(at, eol).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size)) return Buffer.concat(parts); // a server bug; take what there is
    if (size === 0) return buf.indexOf('\r\n\r\n', eol) >= 0 ? Buffer.concat(parts) : undefined; // trailers end
    if (buf.length < eol + 2 + size + 2) return undefined;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Parses the first final response in `buf` (interim 1xx responses skipped); `closed` says no more bytes come. */
export function parseResponse(buf: Buffer, opts: { head?: boolean; closed: boolean }): Parsed {
  let start = 0;
  for (;;) {
    const rest = buf.subarray(start);
    const end = headEnd(rest);
    if (end < 0) return { done: false };
    const lines = rest.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/\d\.\d (\d{3})/.exec(lines[0]!);
    if (!m) return { done: false };
    const status = Number(m[1]);
    const headers = new Map<string, string[]>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
    }
    const bodyStart = end + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      start += bodyStart;
      continue;
    }
    const bodyBytes = rest.subarray(bodyStart);
    const done = (body: Buffer): Parsed => ({ done: true, response: { status, headers, body } });
    if (opts.head || status === 204 || status === 304) return done(Buffer.alloc(0));
    if ((headers.get('transfer-encoding') ?? []).some((v) => /chunked/i.test(v))) {
      const body = dechunk(bodyBytes);
      if (body !== undefined) return done(body);
      return opts.closed ? done(bodyBytes) : { done: false };
    }
    const length = headers.get('content-length')?.[0];
    if (length !== undefined) {
      const n = Number(length);
      if (bodyBytes.length >= n) return done(bodyBytes.subarray(0, n));
      return opts.closed ? done(bodyBytes) : { done: false };
    }
    // Neither length nor chunks: the body runs to the end of the connection.
    return opts.closed ? done(bodyBytes) : { done: false };
  }
}

/** Sends `request` as is and reads one response. Never throws. */
export function exchange(host: string, port: number, request: Buffer, opts: ExchangeOptions): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    let connected = false;
    const socket = connect({ host, port });
    const finish = (o: RawOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const tryParse = (closed: boolean, detail: string): void => {
      const p = parseResponse(Buffer.concat(chunks), { head: opts.head, closed });
      if (p.done) finish({ kind: 'response', response: p.response });
      else if (closed) finish({ kind: 'closed', bytes: received, detail });
    };
    const timer = setTimeout(() => finish({ kind: 'timeout', bytes: received }), opts.timeoutMs);
    socket.on('connect', () => {
      connected = true;
      // A server that answers early (413, 431) may close before it has read everything: EPIPE is then no news.
      socket.write(request, () => {
        if (opts.halfClose) socket.end();
      });
    });
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      received += d.length;
      tryParse(false, '');
    });
    socket.on('end', () => tryParse(true, 'server closed the connection'));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) finish({ kind: 'refused', detail: err.code ?? err.message });
      else tryParse(true, `socket error ${err.code ?? err.message}`);
    });
    socket.on('close', () => tryParse(true, 'connection closed'));
  });
}
