// API-key check (--api_key): `Authorization: Bearer <key>` on the API routes; a missing or wrong key is a 401,
// never a 500. Health, metrics and version stay open for load balancers and scrapers.
//
// The check hangs on the routes themselves (added as each route is registered), never on a pattern over the raw
// request URL: the router decodes percent-escapes and accepts absolute-form targets, so a URL test and the route
// the router picks can disagree (`/%761/chat/completions`, `POST http://x/v1/...` both got in that way).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, RouteOptions, onRequestHookHandler } from 'fastify';
import { apiKeyIdOf } from './cache-isolation.js';
import { ApiError } from './errors.js';
import { isApiRoute } from './route-methods.js';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function unauthorized(message: string): ApiError {
  // RFC 6750: a 401 names the scheme the client should use.
  return new ApiError(401, message, { code: 'invalid_api_key', headers: { 'www-authenticate': 'Bearer' } });
}

/** Checks a request's bearer token against the keys; returns the matching key's id (sets req.apiKeyId) or throws a 401. */
export function apiKeyCheck(keys: readonly string[]): (req: FastifyRequest) => string {
  if (keys.length === 0 || keys.some((k) => k === '')) throw new RangeError('API keys must be non-empty');
  const expected = keys.map((k) => ({ digest: digest(k), id: apiKeyIdOf(k) }));
  return (req) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S.*)$/i.exec(header.trim()) : null;
    if (!match) throw unauthorized('Missing API key: send it as "Authorization: Bearer <key>".');
    // Digests of equal length keep each comparison's time independent of where the keys differ; every key is
    // compared, so the time does not say which one came close either.
    const got = digest(match[1]!);
    let id: string | undefined;
    for (const k of expected) if (timingSafeEqual(got, k.digest)) id = k.id;
    if (id === undefined) throw unauthorized('Incorrect API key.');
    return id;
  };
}

/** Adds the key check to every protected route registered from now on; call before registering routes. */
export function protectRoutes(app: FastifyInstance, keys: readonly string[]): void {
  const check = apiKeyCheck(keys);
  const hook: onRequestHookHandler = async (req) => {
    if (req.method === 'OPTIONS') return;
    req.apiKeyId = check(req);
  };
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!isApiRoute(route.url)) return; // the routes that need the key
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    // First, so no other route hook runs for a request without the key.
    route.onRequest = [hook, ...own];
  });
}
