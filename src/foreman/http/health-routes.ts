import type { FastifyInstance } from 'fastify';
import type { Store } from '../../store/store.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { ForemanMetrics } from '../foreman-metrics.ts';
import { HostUsage } from '../../host/host-usage.ts';

/** GET /health with seed 001's fields, and GET /metrics in Prometheus text format. */
export function registerHealthRoutes(app: FastifyInstance, deps: { store: Store; dispatcher: Dispatcher; metrics: ForemanMetrics; isStopping: () => boolean }): void {
  const usage = new HostUsage();
  app.get('/health', { schema: { tags: ['system'], summary: 'Health (seed 001 fields): status, active_tasks, queue_size, cpu_percent, memory_percent' } }, async (_req, reply) => {
    const s = await deps.store.stats();
    const stopping = deps.isStopping();
    reply.status(stopping ? 503 : 200);
    return {
      status: stopping ? 'stopping' : 'healthy',
      active_tasks: s.tasks.running,
      queue_size: s.tasks.queued,
      cpu_percent: usage.cpuPercent(),
      memory_percent: usage.memoryPercent(),
      connected_workers: deps.dispatcher.sessions.size,
      database: deps.store.driver,
      timestamp: new Date().toISOString(),
    };
  });
  app.get('/metrics', { schema: { tags: ['system'], summary: 'Prometheus metrics' } }, async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}
