// HTTP errors of the server tier: one error type that carries status, OpenAI error fields and extra headers,
// and the mapping of every failure (Fastify's own, schema validation, engine rejections) onto it.
import type { FastifyError } from 'fastify';
import { RequestRejectedError } from '../engine/engine-api.js';
import { EngineLoadingError, LOADING_MESSAGE } from '../engine/loading-engine.js';

/** The `type` field of an OpenAI error body. */
export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'server_error'
  | 'overloaded_error';

export interface ApiErrorInit {
  type?: ApiErrorType;
  /** The request field at fault, as the client spelled it (e.g. `temperature`, `messages[0].role`). */
  param?: string | null;
  code?: string | null;
  headers?: Record<string, string>;
  cause?: unknown;
}

/** Everything the server answers with a non-2xx status goes through this type. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly type: ApiErrorType;
  readonly param: string | null;
  readonly code: string | null;
  readonly headers: Record<string, string>;

  constructor(readonly status: number, message: string, init: ApiErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.type = init.type ?? defaultType(status);
    this.param = init.param ?? null;
    this.code = init.code ?? null;
    this.headers = init.headers ?? {};
  }

  /** OpenAI's body: `{"error": {"message", "type", "param", "code"}}`. */
  openAiBody(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  /** Ollama's body: `{"error": "message"}` (its clients read `error` as a string). */
  ollamaBody(): { error: string } {
    return { error: this.message };
  }
}

function defaultType(status: number): ApiErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 404) return 'not_found_error';
  if (status === 503) return 'overloaded_error';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

export function badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, { param, code });
}

/** Seconds a client should wait after a 503 (queue full) before retrying. */
export const RETRY_AFTER_SECONDS = 1;

/** An engine's refusal of a request, as the client should see it. */
export function fromRejection(e: RequestRejectedError): ApiError {
  switch (e.kind) {
    case 'queue_full':
      return new ApiError(503, e.message, {
        code: 'queue_full',
        headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
      });
    case 'too_large':
      return new ApiError(400, e.message, { code: 'context_length_exceeded', param: 'max_tokens' });
    case 'invalid':
      return new ApiError(400, e.message, { code: 'invalid_request' });
  }
}

/** Seconds a client should wait while the model loads: loading takes seconds to minutes, so poll gently. */
export const LOADING_RETRY_AFTER_SECONDS = 5;

/** A request that arrived before the model was loaded (llama-server answers the same way, with 503). */
export function modelLoading(message = LOADING_MESSAGE): ApiError {
  return new ApiError(503, message, { code: 'model_loading', headers: { 'retry-after': String(LOADING_RETRY_AFTER_SECONDS) } });
}

/**
 * `/messages/0/role` → `messages[0].role`. With the request body at hand, numbers name array items only where
 * the value is an array (`logit_bias/5` → `logit_bias.5`).
 */
export function paramFromPointer(pointer: string, body?: unknown): string {
  let out = '';
  let at: unknown = body;
  for (const part of pointer.split('/').filter((p) => p !== '')) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    const index = /^\d+$/.test(key) && (body === undefined || Array.isArray(at));
    out += index ? `[${key}]` : out === '' ? key : `.${key}`;
    at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined;
  }
  return out;
}

interface AjvIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** The first schema violation, named by the field at fault. */
function fromValidation(issues: readonly AjvIssue[], body: unknown): ApiError {
  const issue = issues[0] ?? {};
  let param = paramFromPointer(issue.instancePath ?? '', body);
  const missing = issue.params?.missingProperty;
  if (typeof missing === 'string') param = param === '' ? missing : `${param}.${missing}`;
  const extra = issue.params?.additionalProperty;
  if (typeof extra === 'string') param = param === '' ? extra : `${param}.${extra}`;
  let message = issue.message ?? 'is invalid';
  if (issue.keyword === 'enum' && Array.isArray(issue.params?.allowedValues)) {
    message = `must be one of ${(issue.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (issue.keyword === 'required') message = 'is required';
  if (issue.keyword === 'additionalProperties') message = 'is not a known field';
  if (param === '') return badRequest(issue.keyword === 'type' ? 'the request body must be a JSON object' : `request body ${message}`);
  return badRequest(`${param}: ${message}`, param);
}

/** Any error thrown while handling a request → the ApiError to answer with; `body` helps name fields. */
export function toApiError(err: unknown, body?: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof RequestRejectedError) return fromRejection(err);
  if (err instanceof EngineLoadingError) return modelLoading(err.message);
  const fe = err as Partial<FastifyError> & { validation?: AjvIssue[] };
  if (Array.isArray(fe.validation)) return fromValidation(fe.validation, body);
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'request body is larger than the server accepts', { code: 'request_too_large' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return badRequest(`request body is not valid JSON: ${fe.message ?? ''}`, null, 'invalid_json');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'the request body must be JSON, sent with "Content-Type: application/json"', { code: 'unsupported_media_type' });
  }
  // Errors of the JSON parser itself (secure-json-parse throws SyntaxError) arrive with statusCode 400.
  if (err instanceof SyntaxError) return badRequest(`request body is not valid JSON: ${err.message}`, null, 'invalid_json');
  const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 600 ? fe.statusCode : 500;
  // An error nobody turned into an ApiError is a failure inside the server: its message (a stack overflow, a
  // RangeError of the tokenizer...) is for the log, not the client. Fastify's own 4xx errors describe the request.
  if (status >= 500) return new ApiError(status, 'internal server error', { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError(status, message, { cause: err });
}
