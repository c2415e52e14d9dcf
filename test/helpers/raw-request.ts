// Raw exchanges (raw-http.ts) in the form most tests want: a URL, the request as text, a response with
// single-valued headers and a text body — or a thrown error when no complete response came.
import { exchange } from './raw-http.js';

export interface RawResponse {
  status: number;
  /** Lower-case names; a header sent twice keeps its last value. */
  headers: Record<string, string>;
  body: string;
}

/** Sends `request` as is (it should say `Connection: close`) and returns the response. */
export async function rawRequest(url: string, request: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  const out = await exchange(hostname, Number(port), Buffer.from(request), { timeoutMs });
  if (out.kind !== 'response') throw new Error(`no complete response: ${out.kind}${'detail' in out ? ` (${out.detail})` : ''}`);
  const headers: Record<string, string> = {};
  for (const [name, values] of out.response.headers) headers[name] = values.at(-1)!;
  return { status: out.response.status, headers, body: out.response.body.toString('utf8') };
}

/** A request with a JSON body (or none), Connection: close, and any extra header lines. */
export function httpRequest(method: string, target: string, body?: unknown, extraHeaders: string[] = []): string {
  const payload = body === undefined ? '' : JSON.stringify(body);
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...extraHeaders];
  if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(payload)}`);
  return `${lines.join('\r\n')}\r\n\r\n${payload}`;
}
