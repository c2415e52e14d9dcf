// Ollama's model-information routes: GET /api/tags, POST /api/show, GET /api/ps, GET /api/version, for clients
// (Open WebUI, ollama-js…) that list models before they chat.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../errors.js';
import type { ServerContext } from '../request-options.js';
import { showBodySchema } from './schemas.js';

/**
 * A parameter count as Ollama writes `parameter_size`: "8.0B", "494.03M", "984K" (one decimal for billions and
 * trillions, two for millions, none for thousands; a whole number without decimals).
 */
export function formatParameterSize(n: number): string {
  const scaled = (unit: number, suffix: string, decimals: number): string => {
    const v = n / unit;
    return `${v === Math.floor(v) ? v.toFixed(0) : v.toFixed(decimals)}${suffix}`;
  };
  if (n >= 1e12) return scaled(1e12, 'T', 1);
  if (n >= 1e9) return scaled(1e9, 'B', 1);
  if (n >= 1e6) return scaled(1e6, 'M', 2);
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}K`;
  return String(n);
}

function parameterSize(ctx: ServerContext): string {
  const m = ctx.model;
  return m.parameterSize ?? (m.parameterCount !== undefined ? formatParameterSize(m.parameterCount) : '');
}

function details(ctx: ServerContext): Record<string, unknown> {
  const m = ctx.model;
  return {
    parent_model: '',
    format: m.format ?? '',
    family: m.family ?? '',
    families: m.family ? [m.family] : null,
    parameter_size: parameterSize(ctx),
    quantization_level: m.quantization ?? '',
  };
}

function summary(ctx: ServerContext): Record<string, unknown> {
  return {
    name: ctx.modelName,
    model: ctx.modelName,
    modified_at: (ctx.model.modifiedAt ?? new Date(ctx.startedAt * 1000)).toISOString(),
    size: ctx.model.sizeBytes ?? 0,
    // Ollama names a model's blobs by digest; ours has one name, so its hash stands in.
    digest: createHash('sha256').update(ctx.modelName).digest('hex'),
    details: details(ctx),
  };
}

export function registerOllamaInfo(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/version', async () => ({ version: ctx.version }));
  app.get('/api/tags', async () => ({ models: [summary(ctx)] }));
  app.get('/api/ps', async () => ({
    models: [{ ...summary(ctx), expires_at: '9999-12-31T23:59:59Z', size_vram: ctx.model.sizeBytes ?? 0 }],
  }));
  app.post<{ Body: { model?: string; name?: string } }>('/api/show', { schema: { body: showBodySchema } }, async (req) => {
    const name = req.body?.model ?? req.body?.name;
    if (!name) throw badRequest('model is required', 'model');
    const arch = ctx.model.family ?? 'unknown';
    return {
      license: '',
      modelfile: `# served by ktserve\nFROM ${ctx.modelName}\n`,
      parameters: '',
      template: ctx.chatTemplate?.source ?? '',
      details: details(ctx),
      model_info: {
        'general.architecture': arch,
        ...(ctx.model.parameterCount !== undefined ? { 'general.parameter_count': ctx.model.parameterCount } : {}),
        [`${arch}.context_length`]: ctx.maxModelLen,
      },
      capabilities: ctx.forceThink ? ['completion', 'thinking'] : ['completion'],
      modified_at: summary(ctx).modified_at,
    };
  });
}
