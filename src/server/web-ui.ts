// The web chat UI (web/ at the repo root): GET / serves its page and /web/<file> its scripts and styles, read
// once when the server is built. Plain files, no build step; the page talks to the same server's API.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';
import { routedPath } from './route-methods.js';

/** web/ beside src/ and dist/: this file runs as dist/src/server/web-ui.js. */
export const WEB_UI_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

/** Only these kinds of file are served; anything else in the folder (notes, editor droppings) stays private. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Same-origin everything: scripts, styles and fetches from this server only, no inline code (the UI has none, so
 * injected markup could not run), no framing (clickjacking), no plugins, no form posts elsewhere.
 */
export const WEB_UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

function readAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir).sort()) {
    const contentType = CONTENT_TYPES[extname(name)];
    if (contentType === undefined) continue;
    const body = readFileSync(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name, { body, contentType, etag });
  }
  if (!assets.has('index.html')) throw new Error(`web UI: no index.html in ${dir}`);
  return assets;
}

/** Whether the client's cached copy (If-None-Match) is this one. */
function fresh(req: FastifyRequest, etag: string): boolean {
  const tags = req.headers['if-none-match'];
  if (typeof tags !== 'string') return false;
  return tags.trim() === '*' || tags.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset): FastifyReply {
  reply.headers({
    // File names carry no content hash (no build step), so a browser must ask each time; the ETag makes that a 304.
    'cache-control': 'no-cache',
    etag: a.etag,
    'content-security-policy': WEB_UI_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
  });
  if (fresh(req, a.etag)) return reply.code(304).send();
  return reply.type(a.contentType).send(a.body);
}

/** GET / (the page) and GET /web/<file> for each servable file of `dir`. */
export function registerWebUi(app: FastifyInstance, dir: string = WEB_UI_DIR): void {
  const assets = readAssets(dir);
  const index = assets.get('index.html')!;
  app.get('/', async (req, reply) => {
    // The router takes an asterisk target (`GET * HTTP/1.1`, meant for OPTIONS only) for `/`: not a page request.
    const path = routedPath(req.url);
    if (path !== '/') throw new ApiError(404, `No route for ${req.method} ${path}`, { code: 'not_found' });
    return send(req, reply, index);
  });
  for (const [name, asset] of assets) {
    if (name === 'index.html') continue;
    app.get(`/web/${name}`, async (req, reply) => send(req, reply, asset));
  }
}
