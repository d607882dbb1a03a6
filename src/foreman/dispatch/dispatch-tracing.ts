/**
 * The dispatcher's spans, made only for tasks of traced jobs (a job keeps the context of the
 * span that accepted it): `queue wait` from when the task became ready to its claim, `dispatch`
 * from the claim to the frame that carries it to its worker (the worker's `execute` span is a
 * child of it), and `result commit` from an outcome's arrival to its commit (a child of the
 * worker's `execute` span, whose context the outcome carries). A job nobody traced costs a null
 * check per claim and per commit.
 * @internal
 */
import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import type { TraceContext } from '../../protocol/index.ts';
import type { ClaimedTask } from '../../store/store.ts';
import { ATTR, contextFrom, traceContextOf, tracer } from '../../tracing/trace-api.ts';
import type { SettledOutcome } from '../workers/worker-registry.ts';

/**
 * Open the spans of a delivery: for each claimed task whose job is traced (`parents`), a `queue
 * wait` span (ended at once, at `claimedAt`) and a `dispatch` span, whose context the task then
 * carries to its worker. Returns what ends the `dispatch` spans once the frame is sent (or the
 * worker turned out gone), or null when no task is traced.
 */
export function traceDispatch(claimed: readonly ClaimedTask[], parents: ReadonlyMap<ClaimedTask, TraceContext> | null, workerId: string, claimedAt: number):
  ((delivered: boolean) => void) | null {
  if (parents === null || parents.size === 0) return null;
  const spans: Span[] = [];
  for (const c of claimed) {
    const parent = contextFrom(parents.get(c));
    if (!parent) continue;
    const attributes = { [ATTR.jobId]: c.jobId, [ATTR.taskId]: c.taskId, [ATTR.taskType]: c.type, [ATTR.taskAttempt]: c.attempt, [ATTR.workerId]: workerId };
    tracer.startSpan('queue wait', { kind: SpanKind.INTERNAL, startTime: Math.min(c.queuedAt, claimedAt), attributes }, parent).end(claimedAt);
    const span = tracer.startSpan('dispatch', { kind: SpanKind.PRODUCER, startTime: claimedAt, attributes }, parent);
    const tc = traceContextOf(span);
    if (tc) c.traceContext = tc;
    spans.push(span);
  }
  return (delivered) => {
    for (const s of spans) {
      if (!delivered) s.setStatus({ code: SpanStatusCode.ERROR, message: `worker ${workerId} left before the task was delivered` });
      s.end();
    }
  };
}

/**
 * Open a `result commit` span for each outcome that carries its worker's span, before the group
 * commit that records them. Returns what ends them (with the error of a commit that failed, in
 * which case the outcomes are tried again and get new spans), or null when none is traced.
 */
export function traceCommit(batch: readonly SettledOutcome[]): ((error: unknown) => void) | null {
  let spans: Span[] | null = null;
  for (const b of batch) {
    const parent = contextFrom(b.outcome.traceContext);
    if (!parent) continue;
    const o = b.outcome;
    const span = tracer.startSpan('result commit', {
      kind: SpanKind.CONSUMER,
      attributes: { [ATTR.jobId]: b.jobId, [ATTR.taskId]: o.taskId, [ATTR.taskAttempt]: o.attempt, [ATTR.taskStatus]: o.status, [ATTR.workerId]: b.workerId },
    }, parent);
    (spans ??= []).push(span);
  }
  if (spans === null) return null;
  const list = spans;
  return (error) => {
    for (const s of list) {
      if (error) s.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      s.end();
    }
  };
}
