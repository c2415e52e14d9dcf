// Several accepted API keys (--api_key, --api_key_file): a request passes with any one of them and carries that
// key's identity (req.apiKeyId), which keeps its prefix-cache entries apart from other keys'. Built on auth.ts's
// one-key check; the auth rework can replace it with its own as long as it sets req.apiKeyId the same way.
import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { apiKeyCheck } from './auth.js';
import { apiKeyIdOf } from './cache-isolation.js';

type Check = (req: FastifyRequest) => void;

function passes(check: Check, req: FastifyRequest): boolean {
  try {
    check(req);
    return true;
  } catch {
    return false;
  }
}

/** An onRequest check: a 401 ApiError on a protected path without one of `keys`; else sets req.apiKeyId. */
export function apiKeysCheck(keys: readonly string[]): Check {
  if (keys.length === 0) throw new RangeError('apiKeysCheck needs at least one key');
  // A key nobody holds: what it lets through is an open route (health, metrics), which has no tenant.
  const open = apiKeyCheck(randomBytes(32).toString('hex'));
  const ring = keys.map((key) => ({ check: apiKeyCheck(key), id: apiKeyIdOf(key) }));
  return (req) => {
    if (passes(open, req)) return;
    for (const { check, id } of ring) {
      if (passes(check, req)) {
        req.apiKeyId = id;
        return;
      }
    }
    ring[0]!.check(req); // throws the 401 (missing or wrong key), worded as for one key
  };
}
