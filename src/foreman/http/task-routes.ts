import type { FastifyInstance } from 'fastify';
import { CrowdComputeError } from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import type { JobService } from '../job-service.ts';
import { taskView } from './rest-views.ts';
import { jobSpecFromTaskSubmit } from './rest-inputs.ts';

/** Seed 001's task endpoints: submit one named task, read its status. */
export function registerTaskRoutes(app: FastifyInstance, deps: { store: Store; jobs: JobService }): void {
  app.post('/task/submit', {
    schema: {
      tags: ['tasks'],
      summary: 'Submit one named task (seed 001): payload.function is the task type, args/kwargs its input',
      body: {
        type: 'object',
        required: ['payload'],
        properties: {
          task_id: { type: 'string' },
          payload: { type: 'object', properties: { function: { type: 'string' }, args: { type: 'array' }, kwargs: { type: 'object' }, input: {} } },
          priority: { type: 'string', enum: ['low', 'normal', 'high', 'critical'] },
          timeout_ms: { type: 'integer' },
          max_attempts: { type: 'integer' },
        },
      },
    },
  }, async (req) => {
    const accepted = await deps.jobs.submit(jobSpecFromTaskSubmit(req.body));
    const [task] = await deps.store.taskList({ jobId: accepted.job.id, limit: 1, offset: 0 });
    return { status: task.state, task_id: task.id, position: accepted.position, job_id: accepted.job.id };
  });

  for (const path of ['/task/:id/cancel', '/api/tasks/:id/cancel']) {
    app.post(path, { schema: { tags: ['tasks'], summary: 'Cancel one task: queued, it never starts; running, its worker is told to stop', params: { type: 'object', properties: { id: { type: 'string' } } } } }, async (req) => {
      return taskView(await deps.jobs.cancelTask((req.params as { id: string }).id));
    });
  }

  app.get('/api/tasks/:id', { schema: { tags: ['tasks'], summary: 'One task, with every attempt\'s error', params: { type: 'object', properties: { id: { type: 'string' } } } } }, async (req) => {
    const id = (req.params as { id: string }).id;
    const task = await deps.store.taskGet(id);
    if (!task) throw new CrowdComputeError('CC_ERR_TASK_NOT_FOUND', `task ${id} does not exist`, { taskId: id });
    return taskView(task);
  });

  app.get('/task/:id', { schema: { tags: ['tasks'], summary: 'Task status and result (seed 001)', params: { type: 'object', properties: { id: { type: 'string' } } } } }, async (req) => {
    const id = (req.params as { id: string }).id;
    const task = await deps.store.taskGet(id);
    if (!task) throw new CrowdComputeError('CC_ERR_TASK_NOT_FOUND', `task ${id} does not exist`, { taskId: id });
    return taskView(task);
  });
}
