/**
 * The handlers of the demo's workers (`crowdcompute demo`). A handlers module like this one is
 * what `crowdcompute worker --handlers <module>` loads; examples/handlers.ts has more.
 */
import type { TaskInfo } from '../worker/index.ts';

type Pair = TaskInfo<{ a: number; b: number }>;

/** Handlers by pattern. */
export default {
  'math.add': async (task: Pair) => ({ result: task.input.a + task.input.b }),
  'math.multiply': async (task: Pair) => ({ result: task.input.a * task.input.b }),
};
