// Answers for requests that never reach a route because the HTTP layer refused them (malformed request line or
// headers, headers too large, a body that never completes, an Expect the server cannot meet), in the same error
// shape as everything else, with a fixed message: nothing from the parser's internals goes back to the client.
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ApiError } from './errors.js';
import { routedPath } from './route-methods.js';

/** Ollama's clients read `error` as a string; everyone else gets OpenAI's object. */
export function isOllamaPath(path: string): boolean {
  return path.startsWith('/api/');
}

function errorBody(e: ApiError, path: string): string {
  return JSON.stringify(isOllamaPath(path) ? e.ollamaBody() : e.openAiBody());
}

function fromParser(code: string | undefined): ApiError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError(431, 'request headers are larger than the server accepts', { code: 'headers_too_large' });
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError(408, 'the request was not received in time', { code: 'request_timeout' });
    default:
      return new ApiError(400, 'malformed HTTP request', { code: 'bad_http_request' });
  }
}

interface ParserError extends Error {
  code?: string;
}

/** Fastify's clientErrorHandler: one JSON response, then the connection closes. */
export function answerClientError(err: ParserError, socket: Socket): void {
  // A reset or closed socket has nobody to answer; a response already under way must not be interleaved.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy(err);
    return;
  }
  const e = fromParser(err.code);
  // A body that broke off (or timed out) belongs to a request whose head was read: answer in its API's shape.
  const body = errorBody(e, inFlight?.req?.url ? routedPath(inFlight.req.url) : '/');
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Errors of Fastify's router (frameworkErrors): a path that is not valid percent-encoding, or a huge parameter. */
export function routerError(err: Error & { code?: string }, rawUrl: string): ApiError {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return new ApiError(414, 'the request path is longer than the server accepts', { code: 'uri_too_long' });
  if (err.code === 'FST_ERR_BAD_URL') return new ApiError(400, 'the request path is not valid percent-encoded UTF-8', { code: 'bad_url' });
  return new ApiError(400, `the request to ${routedPath(rawUrl)} cannot be routed`, { code: 'bad_url' });
}

/** `Expect:` other than 100-continue: Node answers a bare 417; this answers it in the error shape. */
export function answerExpectations(server: Server): void {
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const e = new ApiError(417, 'only "Expect: 100-continue" is supported', { code: 'expectation_failed' });
    const body = errorBody(e, routedPath(req.url ?? '/'));
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
}
