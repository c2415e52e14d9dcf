// buildServer: the HTTP tier as one Fastify instance over any EngineClient — OpenAI and Ollama routes, /health,
// /metrics, API-key check, and every error answered in the client's shape with the right status.
//
// Fastify because it validates bodies with JSON schemas (ajv) before a handler runs, enforces a body limit, has
// one error handler for everything, and is fast and well kept; none of its plugins are needed here.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { apiKeyCheck } from './auth.js';
import { ApiError, toApiError } from './errors.js';
import type { GenerationDeps } from './generation.js';
import { ServerMetrics } from './metrics.js';
import { registerOllamaGeneration } from './ollama/generate.js';
import { registerOllamaInfo } from './ollama/info.js';
import { registerChatRoute } from './openai/chat.js';
import { registerCompletionsRoute } from './openai/completions.js';
import { registerModelsRoutes } from './openai/models.js';
import { resolveOptions, type ServerContext, type ServerOptions } from './request-options.js';

export type { ServerOptions, ModelDescription } from './request-options.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The server's own metrics (for tests and the CLI's start-up line). */
    ktserve: { metrics: ServerMetrics; context: ServerContext };
  }
}

/** Ollama's clients read `error` as a string; everyone else gets OpenAI's object. */
function sendError(req: FastifyRequest, reply: FastifyReply, e: ApiError): FastifyReply {
  reply.code(e.status).headers(e.headers);
  return reply.send(req.url.startsWith('/api/') ? e.ollamaBody() : e.openAiBody());
}

export function buildServer(opts: ServerOptions): FastifyInstance {
  const ctx = resolveOptions(opts);
  const metrics = new ServerMetrics();
  const deps: GenerationDeps = { engine: ctx.engine, tokenizer: ctx.tokenizer, metrics, maxQueue: ctx.maxQueue };
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: ctx.bodyLimit,
    // A wrong type is the client's error to hear about, not something to coerce ("0.5" stays a string → 400).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allowUnionTypes: true } },
  });
  app.decorate('ktserve', { metrics, context: ctx });
  app.addHook('onClose', async () => ctx.encodeWorkers?.close());

  // Bodies are JSON whatever the Content-Type says: `curl -d` sends application/x-www-form-urlencoded.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, json);

  app.addHook('onRequest', async (req, reply) => {
    // Counted when the socket is done with the response, so streamed (hijacked) responses count too.
    reply.raw.once('close', () => metrics.httpResponse(req.routeOptions.url ?? 'unmatched', reply.raw.statusCode));
    reply.header('access-control-allow-origin', '*');
  });
  if (ctx.apiKey !== undefined) {
    const check = apiKeyCheck(ctx.apiKey);
    app.addHook('onRequest', async (req) => check(req));
  }

  app.setErrorHandler((err, req, reply) => {
    const e = toApiError(err, req.body);
    if (e.status >= 500) req.log.error({ err }, 'request failed');
    if (reply.sent || reply.raw.headersSent) return;
    return sendError(req, reply, e);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(req, reply, new ApiError(404, `No route for ${req.method} ${req.url.split('?')[0]}`, { code: 'not_found' })),
  );

  // CORS preflight, so browser-based chat UIs can call the API directly.
  app.options('*', async (_req, reply) => {
    reply
      .code(204)
      .header('access-control-allow-methods', 'GET, POST, OPTIONS')
      .header('access-control-allow-headers', 'authorization, content-type')
      .header('access-control-max-age', '86400');
    return reply.send();
  });

  app.get('/health', async (_req, reply) => {
    try {
      ctx.engine.stats(); // a snapshot read; throws only if the engine is gone
    } catch (e) {
      return reply.code(503).send({ status: 'error', message: (e as Error).message });
    }
    return { status: 'ok' };
  });
  app.get('/metrics', async (_req, reply) => {
    metrics.observeEngine(ctx.engine.stats());
    reply.header('content-type', metrics.contentType);
    return metrics.text();
  });
  app.get('/version', async () => ({ version: ctx.version }));

  registerModelsRoutes(app, ctx);
  registerChatRoute(app, ctx, deps);
  registerCompletionsRoute(app, ctx, deps);
  registerOllamaInfo(app, ctx);
  registerOllamaGeneration(app, ctx, deps);
  return app;
}
