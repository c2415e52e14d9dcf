// buildServer: the HTTP tier as one Fastify instance over any EngineClient — OpenAI and Ollama routes, /health,
// /metrics, API-key check, and every error answered in the client's shape with the right status.
//
// Fastify because it validates bodies with JSON schemas (ajv) before a handler runs, enforces a body limit, has
// one error handler for everything, and is fast and well kept; none of its plugins are needed here.
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { protectRoutes } from './auth.js';
import { registerCors } from './cors.js';
import { startEngineStatusLog } from './engine-status-log.js';
import { ApiError, modelLoading, toApiError } from './errors.js';
import type { GenerationDeps } from './generation.js';
import { InFlightRequests, SHUTDOWN_MESSAGE } from './in-flight.js';
import { logAccess } from './logging.js';
import { ServerMetrics } from './metrics.js';
import { registerOllamaGeneration } from './ollama/generate.js';
import { registerOllamaInfo } from './ollama/info.js';
import { registerChatRoute } from './openai/chat.js';
import { registerCompletionsRoute } from './openai/completions.js';
import { registerModelsRoutes } from './openai/models.js';
import { resolveOptions, type ServerContext, type ServerOptions } from './request-options.js';
import { isApiRoute, RouteMethods, routedPath } from './route-methods.js';
import { answerClientError, answerExpectations, isOllamaPath, routerError } from './transport-errors.js';
import { registerWebUi } from './web-ui.js';

export type { ServerOptions, ModelDescription } from './request-options.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The server's own metrics (for tests and the CLI's start-up line), and its graceful stop. */
    ktserve: { metrics: ServerMetrics; context: ServerContext; drain: (graceMs: number) => Promise<DrainResult> };
  }
}

/** Ollama's routes answer errors in Ollama's shape: the route the router chose decides, else the decoded path. */
function sendError(req: FastifyRequest, reply: FastifyReply, e: ApiError): FastifyReply {
  const route = req.routeOptions.url;
  return sendShaped(reply, route !== undefined && !route.includes('*') ? route : routedPath(req.url), e);
}

function sendShaped(reply: FastifyReply, path: string, e: ApiError): FastifyReply {
  reply.request.errorMessage = e.message;
  reply.code(e.status).headers(e.headers);
  return reply.send(isOllamaPath(path) ? e.ollamaBody() : e.openAiBody());
}

/** JSON bodies only: a browser sends text/plain or form bodies cross-origin without asking first (no preflight). */
function registerJsonBodies(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, json);
  app.addContentTypeParser(/^application\/[\w.+-]+\+json$/, { parseAs: 'string' }, json);
}

/** Headers that must come once: Node keeps the first of several and drops the rest, hiding the ambiguity. */
const SINGLETON_HEADERS = ['host', 'content-type', 'authorization', 'origin'];

/**
 * What the request's head says that Node would let pass: no Host or several on HTTP/1.1 (RFC 9112 §3.2: 400),
 * a repeated singleton header (400), a content coding the server does not decode (RFC 9110 §15.5.16: 415).
 */
function headerProblem(req: FastifyRequest): ApiError | undefined {
  const counts = new Map<string, number>();
  const raw = req.raw.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  const hosts = counts.get('host') ?? 0;
  if (hosts > 1 || (hosts === 0 && req.raw.httpVersion === '1.1')) {
    return new ApiError(400, 'an HTTP/1.1 request needs exactly one Host header', { code: 'bad_http_request' });
  }
  for (const name of SINGLETON_HEADERS) {
    if ((counts.get(name) ?? 0) > 1) return new ApiError(400, `more than one ${name} header`, { code: 'bad_http_request' });
  }
  const coding = req.headers['content-encoding'];
  if (coding !== undefined && coding.trim().toLowerCase() !== 'identity') {
    return new ApiError(415, `Content-Encoding ${JSON.stringify(coding)} is not supported: send the body uncompressed`, {
      code: 'unsupported_media_type',
    });
  }
  return undefined;
}

export interface DrainResult {
  /** Requests still in flight when the grace period ended, ended with an error event or a 503. */
  cut: number;
}

export function buildServer(opts: ServerOptions): FastifyInstance {
  const ctx = resolveOptions(opts);
  const metrics = new ServerMetrics({ modelName: ctx.modelName, maxModelLen: ctx.maxModelLen });
  const inFlight = new InFlightRequests(ctx.engine);
  const deps: GenerationDeps = {
    engine: inFlight,
    get tokenizer() {
      return ctx.tokenizer; // read on first use, as ctx has it
    },
    metrics,
    maxQueue: ctx.maxQueue,
  };
  let draining = false;
  const app = Fastify({
    logger: opts.logger ?? false,
    // One access line of our own per request (logAccess: with tokens and TTFT) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.bodyLimit,
    // A client that sends headers and then trickles (or withholds) the body must not hold a connection forever.
    requestTimeout: ctx.requestTimeoutMs,
    // Node takes the timeout only at construction (setting it later, as Fastify does, has no effect), and checks
    // for it only this often (30 s by default, too coarse for the limit to mean much).
    http: {
      // Checked by headerProblem instead, so the 400 comes in the API's error shape rather than with no body.
      requireHostHeader: false,
      requestTimeout: ctx.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(ctx.requestTimeoutMs / 2))),
    },
    clientErrorHandler: answerClientError,
    // Requests that arrive while closing get our 503 (the draining hook below), in the API's error shape.
    return503OnClosing: false,
    // The router's own refusals (bad percent-encoding, huge parameters) come before any route is known.
    frameworkErrors: (err, req, reply) => sendShaped(reply, routedPath(req.url), routerError(err, req.url)),
    // A wrong type is the client's error to hear about, not something to coerce ("0.5" stays a string → 400).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allowUnionTypes: true } },
  });
  // Stops taking generation requests, waits up to graceMs for those in flight, then ends the rest.
  const drain = async (graceMs: number): Promise<DrainResult> => {
    draining = true;
    if (await inFlight.settled(graceMs)) return { cut: 0 };
    return { cut: inFlight.cut(SHUTDOWN_MESSAGE) };
  };
  app.decorate('ktserve', { metrics, context: ctx, drain });
  app.addHook('onClose', () => ctx.closeEncodeWorkers());
  const stopStepRecords = ctx.engine.onStep((step) => metrics.engineStep(step));
  const stopStatusLog = ctx.statusLogIntervalMs === undefined
    ? undefined
    : startEngineStatusLog(app.log, { engine: ctx.engine, totals: metrics.totals }, ctx.statusLogIntervalMs);
  app.addHook('onClose', async () => {
    stopStepRecords();
    stopStatusLog?.();
  });
  answerExpectations(app.server);
  registerJsonBodies(app);

  app.addHook('onRequest', async (req, reply) => {
    // Counted when the socket is done with the response, so streamed (hijacked) responses count too.
    const startedAt = performance.now();
    reply.raw.once('close', () => {
      metrics.httpResponse(req.routeOptions.url ?? 'unmatched', reply.raw.statusCode);
      logAccess(req, reply, req.log, startedAt);
    });
    const problem = headerProblem(req);
    if (problem) throw problem;
    if (draining && req.method === 'POST') {
      reply.header('connection', 'close');
      throw new ApiError(503, SHUTDOWN_MESSAGE, { code: 'server_shutting_down' });
    }
  });
  registerCors(app, ctx.allowedOrigins);
  // After the CORS hook, so a web page can read the 503 (and preflights, route '*', still get their answer).
  app.addHook('onRequest', async (req) => {
    // While loading, API routes get a 503, as llama-server answers; the probes answer throughout.
    const route = req.routeOptions.url;
    if (ctx.engine.loading?.() && route !== undefined && isApiRoute(route)) throw modelLoading();
  });
  const methods = new RouteMethods();
  methods.track(app);
  app.decorateRequest('apiKeyId', undefined);
  if (ctx.apiKeys.length > 0) protectRoutes(app, ctx.apiKeys);

  app.setErrorHandler((err, req, reply) => {
    const e = toApiError(err, req.body);
    // A 503 is a refusal by design (loading, queue full, stopping), not a failure whose cause the log needs.
    if (e.status >= 500 && e.status !== 503) req.log.error({ err: e.cause ?? err }, 'request failed');
    if (reply.sent || reply.raw.headersSent) return;
    return sendError(req, reply, e);
  });
  app.setNotFoundHandler((req, reply) => {
    const path = routedPath(req.url);
    const allow = methods.allowed(path);
    if (allow.length > 0) {
      const e = new ApiError(405, `${req.method} is not allowed on ${path}; use ${allow.join(' or ')}`, {
        code: 'method_not_allowed',
        headers: { allow: allow.join(', ') },
      });
      return sendError(req, reply, e);
    }
    return sendError(req, reply, new ApiError(404, `No route for ${req.method} ${path}`, { code: 'not_found' }));
  });

  app.get('/health', async (_req, reply) => {
    // Load balancers stop sending work once a stopping instance says so.
    if (draining) return reply.code(503).send({ status: 'shutting_down' });
    // Orchestrators wait on this before sending traffic (llama-server's answer while its weights load).
    if (ctx.engine.loading?.()) return reply.code(503).send({ status: 'loading' });
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
  if (ctx.webUi ?? true) registerWebUi(app);
  return app;
}
