import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  ArtifactListQuerySchema, IdParamsSchema, TaskArtifactsViewSchema, TaskBatchesViewSchema, TaskSubmitBodySchema, TaskSubmitViewSchema, TaskViewSchema,
  TERMINAL_TASK_STATES, type TaskArtifactsView, type TaskBatchesView, type TaskSubmitView, type TaskView,
} from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import type { JobService } from '../jobs/job-service.ts';
import { routeSchema } from './openapi.ts';
import { artifactView, taskView } from './rest-views.ts';
import { jobSpecFromTaskSubmit, parseRequest, withTraceHeaders } from './rest-inputs.ts';

/**
 * One task at a time, the way FastAPI-style task services expose it: submit a named task,
 * read its status and result, cancel it.
 */
export function registerTaskRoutes(app: FastifyInstance, deps: { store: Store; jobs: JobService }): void {
  app.post('/task/submit', {
    config: { access: 'submit' },
    schema: routeSchema({
      operationId: 'submitTask', tags: ['tasks'], summary: 'Submit one named task: payload.function is the task type, args and kwargs its input',
      body: TaskSubmitBodySchema, response: { 200: TaskSubmitViewSchema }, errors: [400, 401, 403, 409, 413, 507],
    }),
  }, async (req): Promise<TaskSubmitView> => {
    const accepted = await deps.jobs.submit(withTraceHeaders(jobSpecFromTaskSubmit(req.body), req.headers), req.principal);
    if (accepted.firstTaskId) return { status: 'queued', task_id: accepted.firstTaskId, position: accepted.position, job_id: accepted.job.id };
    // The job an idempotency key found: its task as it is now.
    const [task] = await deps.store.taskList({ jobId: accepted.job.id, limit: 1, offset: 0 });
    return { status: task.state, task_id: task.id, position: accepted.position, job_id: accepted.job.id };
  });

  const getTask = async (req: FastifyRequest): Promise<TaskView> =>
    taskView(await deps.jobs.visibleTask(parseRequest(IdParamsSchema, req.params, 'path').id, req.principal));
  for (const [path, operationId] of [['/task/:id', 'getTaskCompat'], ['/api/tasks/:id', 'getTask']] as const) {
    app.get(path, { schema: routeSchema({ operationId, tags: ['tasks'], summary: "One task: status, result or error, and every attempt's error", params: IdParamsSchema, response: { 200: TaskViewSchema }, errors: [401, 404] }) },
      async (req) => getTask(req));
  }

  app.get('/api/tasks/:id/artifacts', {
    schema: routeSchema({
      operationId: 'getTaskArtifacts', tags: ['tasks'], summary: 'The artifacts a task wrote, in the order they were recorded (page with after and limit)',
      params: IdParamsSchema, querystring: ArtifactListQuerySchema, response: { 200: TaskArtifactsViewSchema }, errors: [400, 401, 404],
    }),
  }, async (req): Promise<TaskArtifactsView> => {
    const task = await deps.jobs.visibleTask(parseRequest(IdParamsSchema, req.params, 'path').id, req.principal);
    const q = parseRequest(ArtifactListQuerySchema, req.query, 'query');
    const artifacts = await deps.store.artifactList({ taskId: task.id, limit: q.limit, ...(q.after !== undefined ? { afterSeq: q.after } : {}) });
    return { task_id: task.id, complete: task.artifactsComplete || TERMINAL_TASK_STATES.has(task.state), artifacts: artifacts.map(artifactView) };
  });

  app.get('/api/tasks/:id/batches', {
    schema: routeSchema({
      operationId: 'getTaskBatches', tags: ['tasks'], summary: "A batch handler's batches done, their metrics summed, and its last checkpoint",
      params: IdParamsSchema, response: { 200: TaskBatchesViewSchema }, errors: [401, 404],
    }),
  }, async (req): Promise<TaskBatchesView> => {
    const task = await deps.jobs.visibleTask(parseRequest(IdParamsSchema, req.params, 'path').id, req.principal);
    const batches = await deps.store.taskBatches(task.id);
    const resume = (await deps.store.taskResume([task.id])).get(task.id);
    const metrics: Record<string, number> = {};
    for (const b of batches) for (const [k, v] of Object.entries(b.metrics ?? {})) metrics[k] = (metrics[k] ?? 0) + v;
    return {
      task_id: task.id, checkpoint: resume?.checkpoint ?? null, metrics,
      batches: batches.map((b) => ({ batch_uid: b.batchUid, attempt: b.attempt, metrics: b.metrics, created_at: new Date(b.createdAt).toISOString() })),
    };
  });

  for (const [path, operationId] of [['/task/:id/cancel', 'cancelTaskCompat'], ['/api/tasks/:id/cancel', 'cancelTask']] as const) {
    app.post(path, { schema: routeSchema({ operationId, tags: ['tasks'], summary: 'Cancel one task: queued, it never starts; running, its worker is told to stop', params: IdParamsSchema, response: { 200: TaskViewSchema }, errors: [401, 403, 404] }) },
      async (req): Promise<TaskView> => taskView(await deps.jobs.cancelTask(parseRequest(IdParamsSchema, req.params, 'path').id, req.principal)));
  }
}
