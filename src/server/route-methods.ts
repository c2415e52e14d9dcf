// Which methods each registered path answers, so a known path asked with the wrong method gets a 405 with an
// `Allow` header (RFC 9110) instead of the router's 404.
import type { FastifyInstance, RouteOptions } from 'fastify';

interface PathMethods {
  pattern: RegExp;
  methods: Set<string>;
}

function patternOf(url: string): RegExp {
  const parts = url.split('/').map((seg) => {
    if (seg === '*') return '.*';
    if (seg.startsWith(':')) return '[^/]+';
    return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('/')}/?$`);
}

/**
 * The API's routes: everything under /v1 and /api but Ollama's version probe. They need the key (auth.ts) and the
 * loaded model; /health, /metrics, /version and /api/version answer load balancers and scrapers throughout.
 */
export function isApiRoute(url: string): boolean {
  return (url === '/v1' || url.startsWith('/v1/') || url === '/api' || url.startsWith('/api/')) && url !== '/api/version';
}

/** The request target's path as the router sees it: absolute-form reduced, percent-escapes decoded. */
export function routedPath(rawUrl: string): string {
  let path = rawUrl;
  if (!path.startsWith('/')) {
    try {
      path = new URL(path).pathname;
    } catch {
      return path;
    }
  }
  path = path.split('?')[0]!.split('#')[0]!;
  // An escaped slash stays one: the router keeps `/api%2Fversion` a single segment, so must this.
  try {
    return path.split(/%2F/i).map(decodeURIComponent).join('%2F');
  } catch {
    return path;
  }
}

export class RouteMethods {
  private readonly paths = new Map<string, PathMethods>();

  /** Records every route registered from now on; call before registering routes. */
  track(app: FastifyInstance): void {
    app.addHook('onRoute', (route: RouteOptions) => {
      if (route.url.includes('*')) return; // catch-alls (the CORS preflight) say nothing about other methods
      const entry = this.paths.get(route.url) ?? { pattern: patternOf(route.url), methods: new Set<string>() };
      for (const m of Array.isArray(route.method) ? route.method : [route.method]) entry.methods.add(m);
      this.paths.set(route.url, entry);
    });
  }

  /** Methods the path answers (empty: no route has it). */
  allowed(path: string): string[] {
    const out = new Set<string>();
    for (const p of this.paths.values()) if (p.pattern.test(path)) for (const m of p.methods) out.add(m);
    return [...out].sort();
  }
}
