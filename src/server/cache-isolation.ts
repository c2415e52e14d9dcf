// Prefix-cache isolation between tenants: the salt a request's KV blocks are cached under, from the identity of
// the API key it came with and its own `cache_salt` (vLLM's field). Cached prefixes are shared only within one
// salt, so cached_tokens and time to first token tell a client nothing about what another tenant sent.
import { createHash } from 'node:crypto';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Identity of the API key the request was authenticated with (apiKeyIdOf: a digest, never the key itself);
     * undefined on a server without keys. Set by the auth hook; generation isolates the prefix cache by it.
     */
    apiKeyId: string | undefined;
  }
}

/** Longest `cache_salt` accepted: a random secret needs far less, and the bound keeps hashing it cheap. */
export const MAX_CACHE_SALT_LENGTH = 1024;

/** A key's identity for isolation (and logs): a SHA-256 digest prefix, so the key itself travels nowhere. */
export function apiKeyIdOf(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 32);
}

/**
 * The engine's cache salt for a request: undefined (the shared cache) only when it has neither a key identity
 * nor a cache_salt. Requests with the same pair share cached prefixes; any other pair gets a chain of its own.
 */
export function cacheSaltFor(apiKeyId: string | undefined, cacheSalt: string | undefined): string | undefined {
  if (apiKeyId === undefined && cacheSalt === undefined) return undefined;
  // A JSON pair, so no (key, salt) can spell another: a client's cache_salt can't reach another key's domain.
  return JSON.stringify([apiKeyId ?? null, cacheSalt ?? null]);
}
