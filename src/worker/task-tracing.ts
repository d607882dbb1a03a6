/**
 * The Node worker's spans: one `execute` span per attempt, a child of the foreman's `dispatch`
 * span when the task carries its context, with the handler run inside it (spans the handler
 * makes are its children) and its progress reports and batch records as events. The outcome
 * carries the span's context back, so that the foreman's `result commit` joins the trace.
 *
 * It uses only @opentelemetry/api: spans go to whatever tracer provider the process registered
 * (the CLI registers one when OTEL_EXPORTER_OTLP_ENDPOINT is set). An attempt that carries no
 * context in a process without a provider gets no span at all.
 * @internal
 */
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { WireTask } from '../protocol/index.ts';
import { ATTR, contextFrom, traceContextOf, tracer, tracingOn } from '../tracing/trace-api.ts';
import type { TaskSpan, TaskTracer } from './runtime/task-runner.ts';

/** The OpenTelemetry tracer of attempts. */
export const otelTaskTracer: TaskTracer = {
  begin(task: WireTask, workerId: string): TaskSpan | null {
    const remote = contextFrom(task.traceContext);
    if (!remote && !tracingOn()) return null;
    const parent = remote ?? context.active();
    const span = tracer.startSpan('execute', {
      kind: SpanKind.CONSUMER,
      attributes: { [ATTR.jobId]: task.jobId, [ATTR.taskId]: task.taskId, [ATTR.taskType]: task.type, [ATTR.taskAttempt]: task.attempt, [ATTR.workerId]: workerId },
    }, parent);
    const within = trace.setSpan(parent, span);
    return {
      run: (fn) => context.with(within, fn),
      event: (name, attributes) => { span.addEvent(name, attributes); },
      end: (ending, error) => {
        span.setAttribute(ATTR.taskStatus, ending);
        if (ending === 'failed' || ending === 'released') span.setStatus({ code: SpanStatusCode.ERROR, ...(error ? { message: error.message } : {}) });
        span.end();
        return traceContextOf(span);
      },
    };
  },
};
