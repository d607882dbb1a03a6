import type { FastifyInstance } from 'fastify';
import { CrowdComputeError, JOB_STATES, type JobState } from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { JobService } from '../job-service.ts';
import { jobView, taskView, workerView } from './rest-views.ts';
import { jobSpecFromRest } from './rest-inputs.ts';

export interface ApiDeps {
  store: Store;
  dispatcher: Dispatcher;
  jobs: JobService;
  startedAt: number;
}

const idParam = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;
const paging = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 10000, default: 100 },
    offset: { type: 'integer', minimum: 0, default: 0 },
    status: { type: 'string', enum: [...JOB_STATES] },
  },
} as const;

function page(q: unknown): { limit: number; offset: number; status?: JobState } {
  const { limit, offset, status } = (q ?? {}) as Record<string, string | undefined>;
  const l = Math.min(10_000, Math.max(1, Number(limit ?? 100) || 100));
  const o = Math.max(0, Number(offset ?? 0) || 0);
  if (status !== undefined && !(JOB_STATES as readonly string[]).includes(status)) {
    throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `status must be one of ${JOB_STATES.join(', ')}`);
  }
  return { limit: l, offset: o, ...(status ? { status: status as JobState } : {}) };
}

async function mustJob(store: Store, id: string) {
  const job = await store.jobGet(id);
  if (!job) throw new CrowdComputeError('CC_ERR_JOB_NOT_FOUND', `job ${id} does not exist`, { jobId: id });
  return job;
}

/** The foreman's REST API under /api (seed 002's endpoints, plus submit, results and cancel). */
export function registerApiRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { store, dispatcher, jobs } = deps;

  app.get('/api/stats', { schema: { tags: ['system'], summary: 'System statistics (seed 002), including connected_workers' } }, async () => {
    const s = await store.stats();
    let running = 0;
    let capacity = 0;
    for (const w of dispatcher.sessions.values()) { running += w.inFlight.size; capacity += w.capacity; }
    const totalJobs = Object.values(s.jobs).reduce((a, b) => a + b, 0);
    const totalTasks = Object.values(s.tasks).reduce((a, b) => a + b, 0);
    return {
      connected_workers: dispatcher.sessions.size,
      total_capacity: capacity,
      running_tasks: running,
      total_jobs: totalJobs,
      active_jobs: s.jobs.queued + s.jobs.running,
      completed_jobs: s.jobs.completed,
      failed_jobs: s.jobs.failed,
      cancelled_jobs: s.jobs.cancelled,
      total_tasks: totalTasks,
      queued_tasks: s.tasks.queued,
      completed_tasks: s.tasks.completed,
      failed_tasks: s.tasks.failed,
      jobs: s.jobs,
      tasks: s.tasks,
      workers: s.workers,
      uptime_seconds: Math.round((Date.now() - deps.startedAt) / 1000),
    };
  });

  app.get('/api/jobs', { schema: { tags: ['jobs'], summary: 'List jobs, newest first', querystring: paging } }, async (req) => {
    const p = page(req.query);
    return (await store.jobList({ limit: p.limit, offset: p.offset, ...(p.status ? { state: p.status } : {}) })).map(jobView);
  });

  app.post('/api/jobs', {
    schema: {
      tags: ['jobs'],
      summary: 'Submit a job: a map job (code + args) or a list of named tasks',
      body: {
        type: 'object',
        required: ['kind'],
        properties: {
          kind: { type: 'string', enum: ['map', 'tasks'] },
          code: { type: 'string', description: 'map: source of a self-contained function' },
          args: { type: 'array', description: 'map: one argument per call' },
          chunk_size: { type: 'integer', description: 'map: arguments per task' },
          tasks: { type: 'array', items: { type: 'object', properties: { type: { type: 'string' }, input: {}, task_id: { type: 'string' }, priority: { type: 'string' } } } },
          priority: { type: 'string', enum: ['low', 'normal', 'high', 'critical'] },
          timeout_ms: { type: 'integer' },
          max_attempts: { type: 'integer' },
          idempotency_key: { type: 'string' },
          name: { type: 'string' },
          metadata: { type: 'object' },
        },
      },
    },
  }, async (req, reply) => {
    const accepted = await jobs.submit(jobSpecFromRest(req.body));
    reply.status(accepted.deduplicated ? 200 : 201);
    return { ...jobView(accepted.job), position: accepted.position, deduplicated: accepted.deduplicated };
  });

  app.get('/api/jobs/:id', { schema: { tags: ['jobs'], summary: 'One job', params: idParam } }, async (req) => {
    return jobView(await mustJob(store, (req.params as { id: string }).id));
  });

  app.get('/api/jobs/:id/tasks', { schema: { tags: ['jobs'], summary: "A job's tasks in order", params: idParam, querystring: paging } }, async (req) => {
    const id = (req.params as { id: string }).id;
    await mustJob(store, id);
    const p = page(req.query);
    return (await store.taskList({ jobId: id, limit: p.limit, offset: p.offset })).map((t) => taskView(t));
  });

  app.get('/api/jobs/:id/results', { schema: { tags: ['jobs'], summary: "A job's ordered results and its failures", params: idParam } }, async (req) => {
    const id = (req.params as { id: string }).id;
    const job = await mustJob(store, id);
    const res = (await store.jobResults(id))!;
    return {
      job_id: id,
      status: job.state,
      results: res.results,
      failures: res.failures.map((f) => ({ task_id: f.taskId, index: f.index, status: f.state, error: f.error })),
    };
  });

  app.post('/api/jobs/:id/cancel', { schema: { tags: ['jobs'], summary: 'Cancel a job: queued tasks never start, running ones are stopped', params: idParam } }, async (req) => {
    return jobView(await jobs.cancel((req.params as { id: string }).id));
  });

  app.get('/api/workers', { schema: { tags: ['workers'], summary: 'Workers known to this foreman, connected first' } }, async () => {
    return (await store.workerList()).map((w) => {
      const live = dispatcher.sessions.get(w.id);
      return workerView(w, live ? { runningTasks: live.inFlight.size } : undefined);
    });
  });
}
