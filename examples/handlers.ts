/**
 * Example task handlers, loaded by `crowdcompute worker --handlers examples/handlers.ts`.
 * A handler gets the task (its input, type, attempt) and a context (AbortSignal, progress).
 */
import type { TaskContext, TaskInfo } from 'crowdcompute/worker';

export default {
  'math.add': async (task: TaskInfo<{ a: number; b: number }>) => ({ result: task.input.a + task.input.b }),
  'math.multiply': async (task: TaskInfo<{ a: number; b: number }>) => ({ result: task.input.a * task.input.b }),
  'text.upper': async (task: TaskInfo<{ text: string }>) => ({ text: task.input.text.toUpperCase() }),
  /** Sleeps in steps, reporting progress and stopping early when cancelled or timed out. */
  'demo.sleep': async (task: TaskInfo<{ ms: number; steps?: number }>, ctx: TaskContext) => {
    const steps = task.input.steps ?? 4;
    for (let i = 1; i <= steps; i++) {
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, task.input.ms / steps);
        ctx.signal.addEventListener('abort', () => { clearTimeout(t); reject(ctx.signal.reason); }, { once: true });
      });
      ctx.progress((100 * i) / steps, `step ${i} of ${steps}`);
    }
    return { slept: task.input.ms };
  },
};
