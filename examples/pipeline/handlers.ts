/**
 * A three-node pipeline, served by `crowdcompute worker --handlers examples/pipeline/handlers.ts`
 * and run by `crowdcompute graph run examples/pipeline/graph.json`:
 *
 *   numbers  yields the integers from..to in batches, and writes each batch's squares as an artifact
 *   sums     reads those squares as they are written, re-chunked (5,000 at a time), and writes each chunk's sum
 *   total    reads the sums as they are written and adds them up: the graph's result
 *
 * Each batch is recorded on the foreman with its artifact and checkpoint, so a worker killed in
 * the middle of any node leaves the next attempt to go on from the last batch done.
 * `delayMs` in a node's input slows each batch down, to watch the graph in the dashboard.
 */
import type { Batch, BatchHandler, RunContext } from 'crowdcompute/worker';

const pause = (ms: number | undefined, signal: AbortSignal) => (ms ? new Promise<void>((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
}) : Promise.resolve());

/** numbers: input { from, to, batchSize, delayMs? }. */
const numbers: BatchHandler<{ from: number; to: number; batchSize: number; delayMs?: number }, { start: number; end: number }> = {
  *iterBatches(input) {
    for (let start = input.from; start <= input.to; start += input.batchSize) {
      yield { batchUid: `n${start}`, payload: { start, end: Math.min(input.to, start + input.batchSize - 1) } };
    }
  },
  async processBatch(batch: Batch<{ start: number; end: number }>, ctx: RunContext) {
    await pause((ctx.task.input as { delayMs?: number }).delayMs, ctx.signal);
    const items: number[] = [];
    for (let i = batch.payload.start; i <= batch.payload.end; i++) items.push(i * i);
    await ctx.artifacts.upsertPartial(batch.batchUid, { items });
    return { success: true, metrics: { numbers: items.length } };
  },
  async finalize(ctx) {
    await ctx.artifacts.complete();
  },
};

/** sums: reads numbers' squares re-chunked (pull.from_artifacts.rechunk:size, metaListKey "items"). */
const sums: BatchHandler<{ delayMs?: number }, { items: number[] }> = {
  iterBatches() {
    throw new Error('sums reads its input through its input adapter (pull.from_artifacts.rechunk:size)');
  },
  async processBatch(batch, ctx) {
    await pause((ctx.task.input as { delayMs?: number } | null)?.delayMs, ctx.signal);
    const sum = batch.payload.items.reduce((a, b) => a + b, 0);
    await ctx.artifacts.upsertPartial(batch.batchUid, { sum, count: batch.payload.items.length });
    return { success: true, metrics: { chunks: 1, numbers: batch.payload.items.length } };
  },
  async finalize(ctx) {
    await ctx.artifacts.complete();
  },
};

/** total: reads the sums (pull.from_artifacts) and adds them up; the running total is its checkpoint. */
const total: BatchHandler<unknown, { sum: number }> = {
  iterBatches() {
    throw new Error('total reads its input through its input adapter (pull.from_artifacts)');
  },
  async processBatch(batch, ctx) {
    const sofar = (ctx.checkpoint as { total: number } | undefined)?.total ?? 0;
    await ctx.saveCheckpoint({ total: sofar + batch.payload.sum });
    return { success: true, metrics: { sums: 1 } };
  },
  finalize(ctx) {
    return { result: (ctx.checkpoint as { total: number } | undefined)?.total ?? 0 };
  },
};

export default { 'pipeline.numbers': numbers, 'pipeline.sums': sums, 'pipeline.total': total };
