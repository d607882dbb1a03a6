import type { FastifyInstance } from 'fastify';
import { CrowdComputeError, IdParamsSchema, SeriesViewSchema, WorkerDetailViewSchema, type WorkerDetailView } from '../../protocol/index.ts';
import { pageShell } from '../../host/ui-assets.ts';
import { mayAccessJob, seesEveryOwner, type Principal } from '../../core/access.ts';
import type { Store } from '../../store/store.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import { routeSchema } from '../http/openapi.ts';
import { parseRequest } from '../http/rest-inputs.ts';
import { workerView } from '../http/rest-views.ts';
import type { LiveFeed } from './live-feed.ts';
import type { ThroughputSeries } from '../shared/throughput-series.ts';

const PAGE = pageShell('CrowdCompute', '/ui/dashboard.js', '\n<link rel="stylesheet" href="/ui/vendor/uplot.css">');

/**
 * The dashboard: one page (ui/dashboard.js, rendered in the browser) at every path it shows,
 * the live feed it listens to, and the two reads only it needs (a worker in detail, the
 * throughput series). It uses the REST API for everything else, with the same access rules.
 */
export function registerDashboard(app: FastifyInstance, deps: { store: Store; registry: WorkerRegistry; feed: LiveFeed; series: ThroughputSeries }): void {
  for (const path of ['/', '/jobs', '/jobs/:id', '/workers', '/workers/:id', '/schedules', '/schedules/:id', '/failed']) {
    app.get(path, { schema: { hide: true }, config: { access: 'page' } }, async (_req, reply) => {
      reply.type('text/html; charset=utf-8');
      reply.header('cache-control', 'no-store');
      return PAGE;
    });
  }

  app.get('/api/events', {
    config: { access: 'read' },
    schema: routeSchema({
      operationId: 'followDashboard', tags: ['system'], summary: 'The dashboard\'s live feed (server-sent events): stats, workers, throughput, and jobs as they change',
      description: 'Each event is `data: {"type": …, "data": …}` with type `stats` (as GET /api/stats), `workers` (as GET /api/workers), `series` (the last hour), `point` (the latest bucket) or `jobs` (changed jobs, as GET /api/jobs/{id}). Each stream gets what its key may see, as those routes would answer it: a key that is not admin gets its own jobs, and in `stats` the other owners summed.',
      response: { 200: SeriesViewSchema.describe('a text/event-stream') }, errors: [401, 403],
    }),
  }, async (req, reply) => {
    await deps.feed.add(reply, req.principal);
  });

  app.get('/api/series', {
    config: { access: 'read' },
    schema: routeSchema({ operationId: 'getThroughput', tags: ['system'], summary: 'Tasks this foreman recorded per 10 seconds over the last hour, completed and failed', response: { 200: SeriesViewSchema }, errors: [401, 403] }),
  }, async () => deps.series.points());

  app.get('/api/workers/:id', {
    config: { access: 'read' },
    schema: routeSchema({
      operationId: 'getWorker', tags: ['workers'], summary: 'One worker: what it runs now and its last connections',
      description: "An admin key sees every task the worker runs; any other key sees the tasks of its own jobs, and the others only counted in `running_others`.",
      params: IdParamsSchema, response: { 200: WorkerDetailViewSchema }, errors: [401, 403, 404],
    }),
  }, async (req): Promise<WorkerDetailView> => {
    const id = parseRequest(IdParamsSchema, req.params, 'path').id;
    const w = (await deps.store.workerList()).find((x) => x.id === id);
    if (!w) throw new CrowdComputeError('CC_ERR_WORKER_NOT_FOUND', `no worker ${id} is known to this store`, { workerId: id });
    const running = deps.registry.runningOf(id);
    const listed = await visibleRunning(deps.store, running, req.principal);
    return {
      ...workerView(w, running.length, deps.registry.lastSeen(id)),
      running: listed.map((r) => ({ task_id: r.taskId, job_id: r.jobId, type: r.type, attempt: r.attempt, assigned_at: new Date(r.assignedAt).toISOString() })),
      running_others: running.length - listed.length,
      connections: deps.registry.connectionLog(id).map((c) => ({ event: c.event, at: new Date(c.at).toISOString(), remote: c.remote, detail: c.detail })),
    };
  });
}

type Running = ReturnType<WorkerRegistry['runningOf']>[number];

/**
 * The running tasks `principal` may see listed: all of them for an admin (or --insecure), else
 * those of its own jobs. A task adopted from a reconnecting worker has no job here yet: the
 * store says which. One read per distinct job, and a worker runs at most its capacity.
 */
async function visibleRunning(store: Store, running: Running[], principal: Principal): Promise<Running[]> {
  if (seesEveryOwner(principal)) return running;
  const owners = new Map<string, Promise<string | null | undefined>>();
  const ownerOf = (jobId: string) => {
    let o = owners.get(jobId);
    if (!o) owners.set(jobId, o = store.jobGet(jobId).then((j) => (j ? j.owner : undefined)));
    return o;
  };
  const out: Running[] = [];
  for (const r of running) {
    const jobId = r.jobId || (await store.taskGet(r.taskId))?.jobId;
    if (!jobId) continue;
    const owner = await ownerOf(jobId);
    if (owner !== undefined && mayAccessJob(principal, owner)) out.push({ ...r, jobId });
  }
  return out;
}
