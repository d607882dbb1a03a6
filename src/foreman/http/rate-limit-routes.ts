import type { FastifyInstance } from 'fastify';
import { CrowdComputeError, RateLimitBodySchema, RateLimitDeleteQuerySchema, RateLimitListViewSchema, RateLimitViewSchema, type RateLimitView } from '../../protocol/index.ts';
import type { RateLimit, Store } from '../../store/store.ts';
import { formatRate, parseRate } from '../shared/rate-limit-spec.ts';
import { routeSchema } from './openapi.ts';
import { parseRequest } from './rest-inputs.ts';

/** A rate limit as the REST API shows it. */
export function rateLimitView(l: RateLimit): RateLimitView {
  return { pattern: l.pattern, limit: formatRate(l), max: l.max, per_ms: l.perMs };
}

/**
 * Per task type rate limits: read by anyone who may read, set and removed by admins. They are
 * kept in the store, so every foreman of a database applies them (each within about a second).
 */
export function registerRateLimitRoutes(app: FastifyInstance, deps: { store: Store; changed: () => void }): void {
  app.get('/api/rate-limits', {
    config: { access: 'read' },
    schema: routeSchema({ operationId: 'listRateLimits', tags: ['system'], summary: 'Rate limits per task type', response: { 200: RateLimitListViewSchema }, errors: [401, 403] }),
  }, async () => ({ rate_limits: (await deps.store.rateLimitList()).map(rateLimitView) }));

  app.put('/api/rate-limits', {
    config: { access: 'admin' },
    schema: routeSchema({
      operationId: 'setRateLimit', tags: ['system'], body: RateLimitBodySchema, response: { 200: RateLimitViewSchema }, errors: [400, 401, 403],
      summary: 'Set the rate limit of the task types a pattern matches (a task whose type matches several limits counts against the first, by pattern order)',
    }),
  }, async (req) => {
    const body = parseRequest(RateLimitBodySchema, req.body, 'rate limit');
    let rate: { max: number; perMs: number };
    try {
      rate = parseRate(body.limit);
    } catch (err) {
      throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', (err as Error).message);
    }
    const limit = { pattern: body.pattern, ...rate };
    await deps.store.rateLimitSet(limit, Date.now());
    deps.changed();
    return rateLimitView(limit);
  });

  app.delete('/api/rate-limits', {
    config: { access: 'admin' },
    schema: routeSchema({ operationId: 'deleteRateLimit', tags: ['system'], summary: "Remove a pattern's rate limit", querystring: RateLimitDeleteQuerySchema, response: { 200: RateLimitListViewSchema }, errors: [400, 401, 403, 404] }),
  }, async (req) => {
    const { pattern } = parseRequest(RateLimitDeleteQuerySchema, req.query, 'query');
    if (!(await deps.store.rateLimitDelete(pattern))) throw new CrowdComputeError('CC_ERR_RATE_LIMIT_NOT_FOUND', `no rate limit for pattern ${pattern}`);
    deps.changed();
    return { rate_limits: (await deps.store.rateLimitList()).map(rateLimitView) };
  });
}
