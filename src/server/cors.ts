// Which web pages may call the server from a browser (--allowed_origins). A local inference server is reachable
// by every page the user opens, so by default only pages served from this machine may (as Ollama does); a request
// from any other origin is refused with a 403 before it reaches a route, preflight or not.
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.js';

/** Ollama's default: localhost pages on any port, over http or https. */
export const DEFAULT_ALLOWED_ORIGINS = [
  'http://localhost',
  'https://localhost',
  'http://localhost:*',
  'https://localhost:*',
  'http://127.0.0.1',
  'https://127.0.0.1',
  'http://127.0.0.1:*',
  'https://127.0.0.1:*',
  'http://[::1]',
  'https://[::1]',
  'http://[::1]:*',
  'https://[::1]:*',
];

/** `*` alone allows every origin; otherwise each entry is an origin where `*` stands for any run of characters. */
export function originMatcher(patterns: readonly string[]): (origin: string) => boolean {
  if (patterns.includes('*')) return () => true;
  const res = patterns.map((p) => new RegExp(`^${p.split('*').map(escapeRegex).join('[^/]*')}$`, 'i'));
  return (origin) => res.some((re) => re.test(origin));
}

/**
 * A page the server itself serves, reached by an IP address or localhost (its Origin names the Host it asked for).
 * Not by a DNS name: a page of evil.example re-pointed at 127.0.0.1 (DNS rebinding) would pass that test.
 */
export function sameOriginByAddress(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.host !== host.toLowerCase() || (url.protocol !== 'http:' && url.protocol !== 'https:')) return false;
  const name = url.hostname;
  return name === 'localhost' || name.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(name);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Origin checks on every request, the CORS response headers, and the preflight route. */
export function registerCors(app: FastifyInstance, patterns: readonly string[]): void {
  const allowed = originMatcher(patterns);
  const anyOrigin = patterns.includes('*');
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (origin === undefined) return; // not a browser's cross-origin request: curl, SDKs, server-side code
    if (!allowed(origin) && !sameOriginByAddress(origin, req.headers.host)) {
      throw new ApiError(403, `Origin ${JSON.stringify(origin)} is not allowed (--allowed_origins).`, { code: 'origin_not_allowed' });
    }
    reply.header('access-control-allow-origin', anyOrigin ? '*' : origin);
    if (!anyOrigin) reply.header('vary', 'Origin');
  });
  app.options('*', async (req, reply) => {
    // Echo what the page asks to send (the openai SDK adds x-stainless-* headers); the origin check above already
    // decided whether this page may send anything at all.
    const asked = req.headers['access-control-request-headers'];
    reply
      .code(204)
      .header('access-control-allow-methods', 'GET, POST, OPTIONS')
      .header('access-control-allow-headers', typeof asked === 'string' && asked !== '' ? asked : 'authorization, content-type')
      .header('access-control-max-age', '86400');
    return reply.send();
  });
}
