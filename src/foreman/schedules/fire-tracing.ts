/**
 * The spans of a schedule's fires. Nobody submits a fired job, so no context comes with it:
 * each job a fire inserts starts a trace of its own, whose root is a `schedule fire` span (the
 * schedule, the tick, why it fired), with the job's `submit` span under it. The job keeps the
 * `submit` span's context, as a submitted job does, so its queue wait, dispatch, execute and
 * result commit spans hang under it. Made only when a tracer provider is registered: a foreman
 * nobody traces gives fired jobs no trace, and pays one check per fire for it.
 * @internal
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { ScheduleFireOutcome, ScheduleFireParams, Store } from '../../store/store.ts';
import { ATTR, traceContextOf, tracer, tracingOn } from '../../tracing/trace-api.ts';

/** The two spans of one fired job. */
interface FireSpans { fire: Span; submit: Span }

/**
 * Open the spans of every job these steps fire, and give each job its `submit` span's context
 * (before the steps are written: the job rows carry it). Returns what ends them once the steps'
 * outcomes are known (or the write failed), or null when nothing is traced.
 */
export function traceFires(steps: readonly ScheduleFireParams[]): ((outcomes: readonly ScheduleFireOutcome[] | Error) => void) | null {
  if (!tracingOn()) return null;
  const opened: FireSpans[][] = steps.map((step) => step.runs.flatMap((run) => {
    if (!run.job) return [];
    const { job, tasks } = run.job;
    const fire = tracer.startSpan('schedule fire', {
      kind: SpanKind.INTERNAL, root: true,
      attributes: { [ATTR.scheduleId]: step.scheduleId, [ATTR.scheduleTick]: new Date(run.tickAt).toISOString(), [ATTR.scheduleReason]: run.reason, [ATTR.jobId]: job.id },
    }, ROOT_CONTEXT);
    const submit = tracer.startSpan('submit', {
      kind: SpanKind.INTERNAL, attributes: { [ATTR.jobId]: job.id, [ATTR.jobKind]: job.kind, [ATTR.jobTasks]: tasks.length },
    }, trace.setSpan(ROOT_CONTEXT, fire));
    job.traceContext = traceContextOf(submit) ?? null;
    return [{ fire, submit }];
  }));
  return (outcomes) => {
    opened.forEach((spans, i) => {
      const outcome = outcomes instanceof Error ? null : outcomes[i];
      spans.forEach(({ fire, submit }, j) => {
        // `fired`: its job was inserted; `deduplicated`: the tick's job existed already (this
        // fire inserted nothing); `lost`: another foreman fired the tick first; `error`: not written.
        const error = outcomes instanceof Error ? outcomes : outcome && !outcome.applied ? outcome.error ?? null : null;
        const result = outcome?.applied ? (outcome.jobs[j]?.deduplicated ? 'deduplicated' : 'fired') : error ? 'error' : 'lost';
        fire.setAttribute(ATTR.scheduleOutcome, result);
        for (const s of [submit, fire]) {
          if (error) s.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
          s.end();
        }
      });
    });
  };
}

/** Write these steps (Store.scheduleFire) with the spans of the jobs they fire, when tracing is on. */
export async function fireTraced(store: Pick<Store, 'scheduleFire'>, steps: ScheduleFireParams[]): Promise<ScheduleFireOutcome[]> {
  const end = traceFires(steps);
  let outcomes: ScheduleFireOutcome[];
  try {
    outcomes = await store.scheduleFire(steps);
  } catch (err) {
    end?.(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
  end?.(outcomes);
  return outcomes;
}
