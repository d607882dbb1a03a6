import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HealthViewSchema, type HealthView } from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import { HostUsage } from '../../host/host-usage.ts';
import type { ForemanMetrics } from '../foreman-metrics.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import { routeSchema } from './openapi.ts';

/** GET /health (the fields task-service health checks read) and GET /metrics (Prometheus text). */
export function registerHealthRoutes(app: FastifyInstance, deps: { store: Store; registry: WorkerRegistry; metrics: ForemanMetrics; isStopping: () => boolean; metricsPublic: boolean }): void {
  const usage = new HostUsage();
  app.get('/health', {
    config: { access: 'open' },
    schema: routeSchema({ tags: ['system'], summary: 'Health: status, active tasks, queue size, CPU and memory use; 503 while stopping', response: { 200: HealthViewSchema, 503: HealthViewSchema } }),
  }, async (_req, reply): Promise<HealthView> => {
    const s = await deps.store.stats();
    const stopping = deps.isStopping();
    reply.status(stopping ? 503 : 200);
    return {
      status: stopping ? 'stopping' : 'healthy',
      active_tasks: s.tasks.running,
      queue_size: s.tasks.queued,
      cpu_percent: usage.cpuPercent(),
      memory_percent: usage.memoryPercent(),
      connected_workers: deps.registry.size,
      database: deps.store.driver,
      timestamp: new Date().toISOString(),
    };
  });
  app.get('/metrics', {
    config: { access: deps.metricsPublic ? 'open' : 'read' },
    schema: routeSchema({ tags: ['system'], summary: 'Prometheus metrics (text format); needs the read scope unless the foreman runs with --metrics-public', response: { 200: z.string() }, errors: deps.metricsPublic ? [] : [401, 403] }),
  }, async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}
