/**
 * Handlers for the benchmark worker: a no-op, an echo for latency, a batch handler that saves
 * a checkpoint at every batch beside a plain loop doing the same work (their difference is what
 * recording a batch costs), and the pipeline example's three nodes.
 */
import type { BatchHandler } from '../src/worker/index.ts';
import pipeline from '../examples/pipeline/handlers.ts';

/** input { batches }: each batch sums 1..1000; the running total is the checkpoint. */
const checkpointed: BatchHandler<{ batches: number }, number> = {
  *iterBatches(input) {
    for (let i = 0; i < input.batches; i++) yield { batchUid: `b${i}`, payload: i };
  },
  async processBatch(_batch, ctx) {
    let s = 0;
    for (let k = 1; k <= 1000; k++) s += k;
    await ctx.saveCheckpoint({ total: ((ctx.checkpoint as { total: number } | undefined)?.total ?? 0) + s });
    return { success: true, metrics: { batches: 1 } };
  },
  finalize(ctx) {
    return { result: (ctx.checkpoint as { total: number } | undefined)?.total ?? 0 };
  },
};

export default {
  'bench.noop': () => null,
  'bench.echo': (task: { input: unknown }) => task.input,
  'bench.checkpointed': checkpointed,
  /** The same work as bench.checkpointed, in a plain loop that records nothing. */
  'bench.loop': async (task: { input: { batches: number } }) => {
    let total = 0;
    for (let i = 0; i < task.input.batches; i++) {
      let s = 0;
      for (let k = 1; k <= 1000; k++) s += k;
      total += s;
      await Promise.resolve();
    }
    return total;
  },
  ...pipeline,
};
