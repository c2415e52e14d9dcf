// The server's log: pino through Fastify (--log_level, --log_format), one access line per request, and the
// text rendering of pino's JSON lines for people reading a terminal. JSON is for log collectors.
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestSummary } from './generation.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type LogFormat = 'text' | 'json';

export interface LogOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where lines go (default stderr, where the start-up lines go too). */
  destination?: { write(line: string): unknown };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** What generation did for this request, for its access line (set by launch). */
    generationSummary?: (() => RequestSummary) | undefined;
    /** The error message the client was answered with, for its access line. */
    errorMessage?: string | undefined;
  }
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** pino's own fields, which the text line shows in its own way. */
const OWN_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'reqId', 'err']);

/** One pino JSON line as `time LEVEL message key=value…` (an error's stack on the lines after). */
export function textLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof o['time'] === 'number' ? new Date(o['time']).toISOString() : '';
  const level = (LEVEL_NAMES[o['level'] as number] ?? String(o['level'])).padEnd(5);
  const fields = Object.entries(o)
    .filter(([k, v]) => !OWN_FIELDS.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s|"/.test(v) ? v : JSON.stringify(v)}`);
  let line = `${time} ${level} ${String(o['msg'] ?? '')}${fields.length > 0 ? ' ' + fields.join(' ') : ''}`;
  const err = o['err'] as { message?: string; stack?: string } | undefined;
  if (err) line += `\n${err.stack ?? err.message ?? JSON.stringify(err)}`;
  return line + '\n';
}

/** Fastify's logger option for these settings. */
export function loggerOptions(o: LogOptions): { level: LogLevel; stream: { write(line: string): void } } {
  const out = o.destination ?? process.stderr;
  return {
    level: o.level,
    stream: { write: o.format === 'json' ? (line: string) => void out.write(line) : (line: string) => void out.write(textLine(line)) },
  };
}

/** Probes and scrapes come every few seconds: their lines are debug, so the info log shows traffic. */
const QUIET_ROUTES = new Set(['/health', '/metrics', '/version', '/api/version']);

/** Logs one line per request when its response is done (or its client went away). */
export function logAccess(req: FastifyRequest, reply: FastifyReply, log: FastifyBaseLogger, startedAt: number): void {
  const route = req.routeOptions.url ?? 'unmatched';
  const status = reply.raw.statusCode;
  const ms = Math.round(performance.now() - startedAt);
  const summary = req.generationSummary?.();
  const fields: Record<string, unknown> = { method: req.method, route, status, ms };
  if (summary) {
    fields['prompt_tokens'] = summary.promptTokens;
    fields['completion_tokens'] = summary.completionTokens;
    if (summary.cachedTokens > 0) fields['cached_tokens'] = summary.cachedTokens;
    if (summary.ttftMs !== undefined) fields['ttft_ms'] = Math.round(summary.ttftMs);
    if (summary.finishReasons.length > 0) fields['finish'] = summary.finishReasons.join(',');
  }
  if (!reply.raw.writableFinished) fields['client_gone'] = true;
  if (req.errorMessage !== undefined && status >= 400) fields['error'] = req.errorMessage;
  const message = `${req.method} ${req.url.length > 200 ? req.url.slice(0, 200) + '…' : req.url} ${status} ${ms} ms`;
  if (QUIET_ROUTES.has(route) && status < 400) log.debug(fields, message);
  else log.info(fields, message);
}
