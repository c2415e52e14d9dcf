// API-key check (--api_key): `Authorization: Bearer <key>` on the API routes; a missing or wrong key is a 401,
// never a 500. Health, metrics and version stay open for load balancers and scrapers.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

const PROTECTED = /^\/(v1|api)(\/|$|\?)/;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Returns an onRequest check that throws a 401 ApiError for a protected path without the right key. */
export function apiKeyCheck(apiKey: string): (req: FastifyRequest) => void {
  const expected = digest(apiKey);
  return (req) => {
    if (req.method === 'OPTIONS' || !PROTECTED.test(req.url) || req.url.startsWith('/api/version')) return;
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!match) {
      throw new ApiError(401, 'Missing API key: send it as "Authorization: Bearer <key>".', { code: 'invalid_api_key' });
    }
    // Comparing digests of equal length keeps the comparison's time independent of where the keys differ.
    if (!timingSafeEqual(digest(match[1]!), expected)) {
      throw new ApiError(401, 'Incorrect API key.', { code: 'invalid_api_key' });
    }
  };
}
