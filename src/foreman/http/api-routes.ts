import type { FastifyInstance } from 'fastify';
import {
  CrowdComputeError, IdParamsSchema, JobListQuerySchema, JobResultsViewSchema, JobSubmitViewSchema, JobViewSchema, PageQuerySchema,
  RestJobSpecSchema, StatsViewSchema, TaskViewSchema, WorkerViewSchema,
  type JobResultsView, type JobSubmitView, type JobView, type StatsView, type TaskView, type WorkerView,
} from '../../protocol/index.ts';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { listingOwner } from '../../core/access.ts';
import type { JobService } from '../jobs/job-service.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import { routeSchema } from './openapi.ts';
import { jobView, taskView, workerView } from './rest-views.ts';
import { jobSpecFromRest, parseRequest } from './rest-inputs.ts';

/** What the REST API reads and acts on. */
export interface ApiDeps {
  store: Store;
  registry: WorkerRegistry;
  jobs: JobService;
  startedAt: number;
  /** The foremen's default retention of finished jobs. */
  retentionMs: number;
}

const idOf = (params: unknown): string => parseRequest(IdParamsSchema, params, 'path').id;

/** The foreman's REST API under /api: jobs (list, submit, read, tasks, results, cancel), workers, statistics. */
export function registerApiRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { store, registry, jobs } = deps;

  app.get('/api/stats', { config: { access: 'read' }, schema: routeSchema({ tags: ['system'], summary: 'Statistics: connected workers, capacity, jobs and tasks by state, uptime, what retention keeps and has pruned', response: { 200: StatsViewSchema }, errors: [401, 403] }) },
    async (): Promise<StatsView> => {
      const s = await store.stats();
      const live = registry.snapshot();
      const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
      return {
        connected_workers: live.connected,
        total_capacity: live.capacity,
        running_tasks: live.running,
        total_jobs: total(s.jobs),
        active_jobs: s.jobs.queued + s.jobs.running,
        completed_jobs: s.jobs.completed,
        failed_jobs: s.jobs.failed,
        cancelled_jobs: s.jobs.cancelled,
        total_tasks: total(s.tasks),
        queued_tasks: s.tasks.queued,
        completed_tasks: s.tasks.completed,
        failed_tasks: s.tasks.failed,
        jobs: s.jobs,
        tasks: s.tasks,
        workers: s.workers,
        uptime_seconds: Math.round((Date.now() - deps.startedAt) / 1000),
        retention: {
          default_seconds: deps.retentionMs / 1000,
          retained_jobs: s.jobs.completed + s.jobs.failed + s.jobs.cancelled,
          retained_tasks: s.tasks.completed + s.tasks.failed + s.tasks.cancelled,
          pruned_jobs: s.pruned.jobs,
          pruned_tasks: s.pruned.tasks,
          storage_bytes: s.storageBytes,
        },
      };
    });

  app.get('/api/jobs', { schema: routeSchema({ tags: ['jobs'], summary: "List jobs, newest first: the key's own, or every owner's for admin", querystring: JobListQuerySchema, response: { 200: z.array(JobViewSchema) }, errors: [400, 401] }) },
    async (req): Promise<JobView[]> => {
      const q = parseRequest(JobListQuerySchema, req.query, 'query');
      const owner = listingOwner(req.principal);
      return (await store.jobList({ limit: q.limit, offset: q.offset, ...(q.status ? { state: q.status } : {}), ...(owner !== undefined ? { owner: owner ?? '' } : {}) })).map(jobView);
    });

  app.post('/api/jobs', {
    schema: routeSchema({
      tags: ['jobs'], summary: 'Submit a job: a map job (code and args) or a list of named tasks',
      description: '201 with the new job; 200 with the existing job when the idempotency key matched one.',
      body: RestJobSpecSchema, response: { 201: JobSubmitViewSchema, 200: JobSubmitViewSchema }, errors: [400, 401, 403, 409, 413],
    }),
  }, async (req, reply): Promise<JobSubmitView> => {
    const accepted = await jobs.submit(jobSpecFromRest(req.body), req.principal);
    reply.status(accepted.deduplicated ? 200 : 201);
    return { ...jobView(accepted.job), position: accepted.position, deduplicated: accepted.deduplicated };
  });

  app.get('/api/jobs/:id', { schema: routeSchema({ tags: ['jobs'], summary: 'One job', params: IdParamsSchema, response: { 200: JobViewSchema }, errors: [401, 404] }) },
    async (req): Promise<JobView> => jobView(await jobs.visibleJob(idOf(req.params), req.principal)));

  app.get('/api/jobs/:id/tasks', {
    schema: routeSchema({ tags: ['jobs'], summary: "A job's tasks in order", params: IdParamsSchema, querystring: PageQuerySchema, response: { 200: z.array(TaskViewSchema) }, errors: [400, 401, 404] }),
  }, async (req): Promise<TaskView[]> => {
    const id = idOf(req.params);
    await jobs.visibleJob(id, req.principal);
    const q = parseRequest(PageQuerySchema, req.query, 'query');
    return (await store.taskList({ jobId: id, limit: q.limit, offset: q.offset })).map(taskView);
  });

  app.get('/api/jobs/:id/results', {
    schema: routeSchema({ tags: ['jobs'], summary: "A job's results in order, and its failures", params: IdParamsSchema, response: { 200: JobResultsViewSchema }, errors: [401, 404] }),
  }, async (req): Promise<JobResultsView> => {
    const id = idOf(req.params);
    const job = await jobs.visibleJob(id, req.principal);
    const res = (await store.jobResults(id))!;
    return {
      job_id: id,
      status: job.state,
      results: res.results,
      failures: res.failures.map((f) => ({ task_id: f.taskId, index: f.index, status: f.state, error: f.error })),
    };
  });

  app.post('/api/jobs/:id/cancel', {
    schema: routeSchema({ tags: ['jobs'], summary: 'Cancel a job: queued tasks never start, running ones are stopped, finished results stay', params: IdParamsSchema, response: { 200: JobViewSchema }, errors: [401, 404] }),
  }, async (req): Promise<JobView> => jobView(await jobs.cancel(idOf(req.params), req.principal)));

  app.get('/api/workers', { config: { access: 'read' }, schema: routeSchema({ tags: ['workers'], summary: 'Workers this store knows, connected first', response: { 200: z.array(WorkerViewSchema) }, errors: [401, 403] }) },
    async (): Promise<WorkerView[]> => {
      const running = registry.snapshot().runningByWorker;
      return (await store.workerList()).map((w) => workerView(w, running.get(w.id) ?? 0));
    });
}
