// GET /v1/models and /v1/models/:id: the one model this server serves.
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';
import type { ServerContext } from '../request-options.js';

function modelCard(ctx: ServerContext): Record<string, unknown> {
  return {
    id: ctx.modelName,
    object: 'model',
    created: ctx.model.modifiedAt ? Math.floor(ctx.model.modifiedAt.getTime() / 1000) : ctx.startedAt,
    owned_by: 'ktserve',
    // vLLM's extension: clients size their prompts by it.
    max_model_len: ctx.maxModelLen,
  };
}

export function registerModelsRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard(ctx)] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    if (req.params.id !== ctx.modelName) {
      throw new ApiError(404, `The model '${req.params.id}' does not exist`, { param: 'model', code: 'model_not_found' });
    }
    return modelCard(ctx);
  });
}
