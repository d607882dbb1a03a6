import type { FastifyInstance } from 'fastify';
import {
  CrowdComputeError, GraphViewSchema, IdParamsSchema, JobCodeViewSchema, JobListQuerySchema, JobResultsViewSchema, JobRetryViewSchema, JobSubmitViewSchema, JobViewSchema,
  RestJobSpecSchema, RetryQuerySchema, RestAppendPartSchema, ResultsQuerySchema, JobAppendViewSchema, type JobAppendView, StatsViewSchema, TaskListQuerySchema, TaskViewSchema, WorkerViewSchema,
  WebhookDeliveryViewSchema, type WebhookDeliveryView,
  type GraphView, type JobCodeView, type JobResultsView, type JobRetryView, type JobSubmitView, type JobView, type StatsView, type TaskView, type WorkerView,
} from '../../protocol/index.ts';
import { z } from 'zod';
import type { JobRecord, Store } from '../../store/store.ts';
import { listingOwner } from '../../core/access.ts';
import { BLOCKED_UNTIL } from '../../core/graph.ts';
import type { JobService } from '../jobs/job-service.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import { routeSchema } from './openapi.ts';
import { jobView, taskView, webhookDeliveryView, workerView } from './rest-views.ts';
import { statsView } from './stats-view.ts';
import type { ShareView } from '../shared/share-view.ts';
import type { JobEvents } from '../shared/job-events.ts';
import { jobSpecFromRest, parseRequest, withTraceHeaders } from './rest-inputs.ts';

/** What the REST API reads and acts on. */
export interface ApiDeps {
  store: Store;
  registry: WorkerRegistry;
  jobs: JobService;
  startedAt: number;
  /** The foremen's default retention of finished jobs. */
  retentionMs: number;
  /** For handler progress of running tasks. */
  events: JobEvents;
  /** Running tasks against fair shares, from the dispatcher. */
  sharing: () => ShareView;
}

const idOf = (params: unknown): string => parseRequest(IdParamsSchema, params, 'path').id;

/** The foreman's REST API under /api: jobs (list, submit, read, tasks, results, cancel, retry), tasks (retry), workers, statistics. */
export function registerApiRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { store, registry, jobs, events } = deps;
  const view = (j: JobRecord): JobView => jobView(j, events.runningProgress(j.id, j.counts.total));

  app.get('/api/stats', {
    config: { access: 'read' },
    schema: routeSchema({
      operationId: 'getStats', tags: ['system'], summary: 'Statistics: connected workers, capacity, jobs and tasks by state, uptime, what retention keeps and has pruned, running tasks against fair shares',
      description: "Counts are of every owner's jobs and tasks. In `sharing`, an admin key sees every owner and job; any other key sees its own owner row and jobs, and the other owners summed in `sharing.others`, without their ids.",
      response: { 200: StatsViewSchema }, errors: [401, 403],
    }),
  }, async (req): Promise<StatsView> => statsView(deps, req.principal));

  app.get('/api/jobs', {
    schema: routeSchema({ operationId: 'listJobs', tags: ['jobs'], summary: "List jobs, newest first, by state, text and time: the key's own, or every owner's for admin", querystring: JobListQuerySchema, response: { 200: z.array(JobViewSchema) }, errors: [400, 401] }),
  }, async (req): Promise<JobView[]> => {
    const q = parseRequest(JobListQuerySchema, req.query, 'query');
    const owner = listingOwner(req.principal);
    return (await store.jobList({
      limit: q.limit, offset: q.offset, ...(q.status ? { state: q.status } : {}), ...(owner !== undefined ? { owner: owner ?? '' } : {}),
      ...(q.search ? { search: q.search } : {}), ...(q.since !== undefined ? { createdAfter: q.since } : {}), ...(q.until !== undefined ? { createdBefore: q.until } : {}),
    })).map(view);
  });

  app.post('/api/jobs', {
    schema: routeSchema({
      operationId: 'submitJob', tags: ['jobs'], summary: 'Submit a job: a map job (code and args) or a list of named tasks',
      description: '201 with the new job; 200 with the existing job when the idempotency key matched one. `warnings` says, for example, that no connected worker handles one of its task types.',
      body: RestJobSpecSchema, response: { 201: JobSubmitViewSchema, 200: JobSubmitViewSchema }, errors: [400, 401, 403, 409, 413, 507],
    }),
  }, async (req, reply): Promise<JobSubmitView> => {
    const accepted = await jobs.submit(withTraceHeaders(jobSpecFromRest(req.body), req.headers), req.principal);
    reply.status(accepted.deduplicated ? 200 : 201);
    return { ...view(accepted.job), position: accepted.position, deduplicated: accepted.deduplicated, warnings: accepted.warnings };
  });

  app.post('/api/jobs/:id/tasks', {
    schema: routeSchema({
      operationId: 'appendToJob', tags: ['jobs'], summary: 'Append a part to an open job: named tasks (`tasks`) or, for a map job, arguments (`args`); `seal` on the last part',
      description: 'A job submitted with `open: true` takes parts until one seals it; it does not finish before. With `at` (the task count, or argument count for a map job, where this part starts), a part sent twice is appended once and a part out of place is refused (409 CC_ERR_APPEND_CONFLICT). Every part of a map job but the last holds a multiple of its chunk_size arguments.',
      params: IdParamsSchema, body: RestAppendPartSchema, response: { 200: JobAppendViewSchema }, errors: [400, 401, 403, 404, 409, 413, 507],
    }),
  }, async (req): Promise<JobAppendView> => {
    const res = await jobs.append(idOf(req.params), parseRequest(RestAppendPartSchema, req.body, 'part', 'CC_ERR_INVALID_JOB'), req.principal);
    return { ...view(res.job), deduplicated: res.deduplicated, first_index: res.firstIndex };
  });

  app.post('/api/jobs/:id/seal', {
    schema: routeSchema({
      operationId: 'sealJob', tags: ['jobs'], summary: 'Seal an open job: it takes no more tasks and finishes when its tasks do',
      params: IdParamsSchema, response: { 200: JobAppendViewSchema }, errors: [401, 403, 404, 409],
    }),
  }, async (req): Promise<JobAppendView> => {
    const res = await jobs.append(idOf(req.params), { seal: true }, req.principal);
    return { ...view(res.job), deduplicated: res.deduplicated, first_index: res.firstIndex };
  });

  app.get('/api/jobs/:id', { schema: routeSchema({ operationId: 'getJob', tags: ['jobs'], summary: 'One job, with the latest announcement of its end to its webhook and what keeps its queued tasks waiting', params: IdParamsSchema, response: { 200: JobViewSchema }, errors: [401, 404] }) },
    async (req): Promise<JobView> => {
      const job = await jobs.visibleJob(idOf(req.params), req.principal);
      const [deliveries, warnings] = await Promise.all([store.webhookDeliveryList(job.id), jobs.waitingWarnings(job)]);
      return { ...view(job), webhook: deliveries.length ? webhookDeliveryView(deliveries[deliveries.length - 1]) : null, warnings };
    });

  app.get('/api/jobs/:id/webhook-deliveries', {
    schema: routeSchema({
      operationId: 'listJobWebhookDeliveries', tags: ['jobs'], summary: "Every announcement of the job's end to a webhook, oldest first, with its attempts",
      description: 'One delivery per time the job ended (a retried job that ends again is announced again). See docs/operations.md, "Webhooks".',
      params: IdParamsSchema, response: { 200: z.array(WebhookDeliveryViewSchema) }, errors: [401, 404],
    }),
  }, async (req): Promise<WebhookDeliveryView[]> => {
    const job = await jobs.visibleJob(idOf(req.params), req.principal);
    return (await store.webhookDeliveryList(job.id)).map(webhookDeliveryView);
  });

  app.get('/api/jobs/:id/tasks', {
    schema: routeSchema({
      operationId: 'listJobTasks', tags: ['jobs'], summary: "A job's tasks in index order, from the index `offset` on, optionally of one state",
      params: IdParamsSchema, querystring: TaskListQuerySchema, response: { 200: z.array(TaskViewSchema) }, errors: [400, 401, 404],
    }),
  }, async (req): Promise<TaskView[]> => {
    const id = idOf(req.params);
    await jobs.visibleJob(id, req.principal);
    const q = parseRequest(TaskListQuerySchema, req.query, 'query');
    return (await store.taskList({ jobId: id, limit: q.limit, offset: q.offset, ...(q.status ? { state: q.status } : {}) })).map(taskView);
  });

  app.get('/api/jobs/:id/code', {
    schema: routeSchema({
      operationId: 'getJobCode', tags: ['jobs'], summary: "A map job's shipped function: its language, name and source",
      params: IdParamsSchema, response: { 200: JobCodeViewSchema }, errors: [401, 404],
    }),
  }, async (req): Promise<JobCodeView> => {
    const id = idOf(req.params);
    const job = await jobs.visibleJob(id, req.principal);
    const code = job.kind === 'map' ? await store.jobCode(id) : null;
    if (!code) throw new CrowdComputeError('CC_ERR_JOB_NOT_FOUND', `job ${id} is not a map job: it ships no function`, { jobId: id });
    return { job_id: id, language: code.language, function_name: job.label, source: code.code };
  });

  app.get('/api/jobs/:id/graph', {
    schema: routeSchema({
      operationId: 'getJobGraph', tags: ['jobs'], summary: "A task graph's nodes: each one's task, state, worker and artifacts written",
      params: IdParamsSchema, response: { 200: GraphViewSchema }, errors: [401, 404],
    }),
  }, async (req): Promise<GraphView> => {
    const id = idOf(req.params);
    const job = await jobs.visibleJob(id, req.principal);
    const plan = await store.jobGraph(id);
    if (!plan) throw new CrowdComputeError('CC_ERR_JOB_NOT_FOUND', `job ${id} is not a task graph`, { jobId: id });
    const tasks = await store.taskList({ jobId: id, limit: plan.nodes.length, offset: 0 });
    const written = await store.artifactCounts(id);
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      job_id: id, status: job.state, output: plan.output,
      nodes: plan.nodes.map((n) => {
        const t = tasks.find((x) => x.id === n.taskId)!;
        return {
          node_id: n.nodeId, task_id: n.taskId, type: n.type, depends_on: n.dependsOn, input_adapter: n.inputAdapter,
          status: t.state, waiting: t.state === 'queued' && t.availableAt >= BLOCKED_UNTIL, attempt: t.attempt, worker_id: t.workerId,
          artifacts: written.get(n.taskId) ?? 0, started_at: iso(t.startedAt), completed_at: iso(t.completedAt), error: t.error,
        };
      }),
    };
  });

  app.get('/api/jobs/:id/results', {
    schema: routeSchema({
      operationId: 'getJobResults', tags: ['jobs'], summary: "A job's results in order, and its failures: all of them, or a page (offset, limit)",
      description: 'Results are counted per argument for a map job and per task otherwise. A large job is read in pages: follow `next_offset` until it is null.',
      params: IdParamsSchema, querystring: ResultsQuerySchema, response: { 200: JobResultsViewSchema }, errors: [400, 401, 404],
    }),
  }, async (req): Promise<JobResultsView> => {
    const id = idOf(req.params);
    const q = parseRequest(ResultsQuerySchema, req.query, 'query');
    const job = await jobs.visibleJob(id, req.principal);
    const res = await store.jobResults(id, q.limit !== undefined || q.offset > 0 ? { offset: q.offset, limit: q.limit ?? Number.MAX_SAFE_INTEGER } : undefined);
    if (!res) throw new CrowdComputeError('CC_ERR_JOB_NOT_FOUND', `job ${id} does not exist`, { jobId: id });
    const end = res.offset + res.results.length;
    return {
      job_id: id,
      status: job.state,
      results: res.results,
      offset: res.offset,
      total: res.total,
      next_offset: end < res.total ? end : null,
      failures: res.failures.map((f) => ({ task_id: f.taskId, index: f.index, status: f.state, error: f.error })),
    };
  });

  app.post('/api/jobs/:id/cancel', {
    schema: routeSchema({ operationId: 'cancelJob', tags: ['jobs'], summary: 'Cancel a job: queued tasks never start, running ones are stopped, finished results stay', params: IdParamsSchema, response: { 200: JobViewSchema }, errors: [401, 403, 404] }),
  }, async (req): Promise<JobView> => view(await jobs.cancel(idOf(req.params), req.principal)));

  app.post('/api/jobs/:id/retry', {
    schema: routeSchema({
      operationId: 'retryJob', tags: ['jobs'], summary: "Run a job's failed and cancelled tasks again (or one of them, task_id), with fresh attempts; recorded results stay",
      params: IdParamsSchema, querystring: RetryQuerySchema, response: { 200: JobRetryViewSchema }, errors: [400, 401, 403, 404, 409],
    }),
  }, async (req): Promise<JobRetryView> => {
    const q = parseRequest(RetryQuerySchema, req.query, 'query');
    const r = await jobs.retry(idOf(req.params), req.principal, q.task_id);
    return { ...view(r.job), retried: r.retried };
  });

  app.post('/api/tasks/:id/retry', {
    schema: routeSchema({
      operationId: 'retryTask', tags: ['tasks'], summary: 'Run one failed or cancelled task again, with fresh attempts; answers with its job',
      params: IdParamsSchema, response: { 200: JobRetryViewSchema }, errors: [401, 403, 404, 409],
    }),
  }, async (req): Promise<JobRetryView> => {
    const r = await jobs.retryTask(idOf(req.params), req.principal);
    return { ...view(r.job), retried: r.retried };
  });

  app.get('/api/workers', { config: { access: 'read' }, schema: routeSchema({ operationId: 'listWorkers', tags: ['workers'], summary: 'Workers this store knows, connected first', response: { 200: z.array(WorkerViewSchema) }, errors: [401, 403] }) },
    async (): Promise<WorkerView[]> => {
      const running = registry.snapshot().runningByWorker;
      return (await store.workerList()).map((w) => workerView(w, running.get(w.id) ?? 0, registry.lastSeen(w.id)));
    });
}
