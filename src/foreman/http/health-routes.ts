import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HealthViewSchema, type HealthView } from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import { HostUsage } from '../../host/host-usage.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import type { StoreHealth } from '../shared/store-health.ts';
import type { LoopHealth } from '../shared/loop-health.ts';
import { routeSchema } from './openapi.ts';

/**
 * GET /health (the fields task-service health checks read, and the store's state),
 * GET /health/live and GET /metrics (Prometheus text). /health answers 503 while stopping, while
 * the store is out, or while a loop of the foreman makes no progress, with the reason, from what
 * the foreman already knows: a health check does not itself wait on a database that does not
 * answer.
 */
export function registerHealthRoutes(app: FastifyInstance, deps: { store: Store; health: StoreHealth; loops: LoopHealth; registry: WorkerRegistry; metrics: ForemanMetrics; isStopping: () => boolean; metricsPublic: boolean }): void {
  const usage = new HostUsage();
  app.get('/health', {
    config: { access: 'open' },
    schema: routeSchema({ operationId: 'getHealth', tags: ['system'], summary: 'Health: status, the store\'s state, active tasks, queue size, CPU and memory use; 503 while degraded or stopping', response: { 200: HealthViewSchema, 503: HealthViewSchema } }),
  }, async (_req, reply): Promise<HealthView> => {
    const h = deps.health;
    // Counts only while the store answers; during an outage asking would only wait.
    const s = h.state === 'ok' ? await deps.store.stats().catch(() => null) : null;
    const stalls = deps.loops.stalls();
    const stopping = deps.isStopping();
    const status = stopping ? 'stopping' : h.state === 'ok' && s && stalls.length === 0 ? 'healthy' : 'degraded';
    reply.status(status === 'healthy' ? 200 : 503);
    const now = Date.now();
    const storeReason = h.state === 'ok' ? (s ? null : 'the store did not answer') : h.state === 'full' ? `the store cannot grow: ${h.lastError}` : `the store cannot be reached: ${h.lastError ?? 'no answer'}`;
    return {
      status,
      ...(status === 'degraded' ? { reason: [storeReason, ...stalls.map((x) => x.reason)].filter((r) => r !== null).join('; ') } : {}),
      ...(stalls.length > 0 ? { stalled_loops: stalls.map((x) => x.loop) } : {}),
      store: {
        state: h.state,
        since: new Date(h.since).toISOString(),
        last_ok_at: new Date(h.lastOkAt).toISOString(),
        unreachable_for_seconds: h.state === 'ok' ? 0 : Math.round((now - h.since) / 100) / 10,
      },
      active_tasks: s?.tasks.running ?? 0,
      queue_size: s?.tasks.queued ?? 0,
      cpu_percent: usage.cpuPercent(),
      memory_percent: usage.memoryPercent(),
      connected_workers: deps.registry.size,
      database: deps.store.driver,
      timestamp: new Date().toISOString(),
    };
  });
  // Liveness, apart from readiness (/health): answered by the event loop alone, so that an
  // orchestrator restarts a foreman that no longer answers, but never foremen whose database is
  // away (a restart would cut every worker's connection and bring the database back no sooner).
  app.get('/health/live', {
    config: { access: 'open' },
    schema: routeSchema({ operationId: 'getLiveness', tags: ['system'], summary: 'Liveness: 200 while the foreman answers requests, whatever its store\'s state (GET /health says whether it is ready to serve)', response: { 200: z.object({ status: z.literal('alive') }) } }),
  }, async () => ({ status: 'alive' as const }));
  // Both paths: /metrics as Prometheus scrapes it, /metrics/prometheus as task services name it.
  for (const [path, operationId] of [['/metrics', 'getMetrics'], ['/metrics/prometheus', 'getMetricsPrometheus']] as const) {
    app.get(path, {
      config: { access: deps.metricsPublic ? 'open' : 'read' },
      schema: routeSchema({ operationId, tags: ['system'], summary: 'Prometheus metrics (text exposition format); needs the read scope unless the foreman runs with --metrics-public', response: { 200: z.string() }, errors: deps.metricsPublic ? [] : [401, 403] }),
    }, async (_req, reply) => {
      await deps.metrics.refresh(deps.store);
      reply.header('content-type', deps.metrics.registry.contentType);
      return deps.metrics.registry.metrics();
    });
  }
}
