/**
 * What the foreman, the Node worker and the client share of OpenTelemetry: the tracer they make
 * spans with, whether anyone collects them, the attribute names, and the turn from a span to
 * the W3C trace context that travels in messages and back.
 *
 * Only `@opentelemetry/api` is used here. Without a registered tracer provider its tracer makes
 * no-op spans; the callers also skip per-task work when `tracingOn()` is false and the job
 * carries no context, so a foreman or worker nobody traces pays nothing per task. A process that
 * registers a provider (the CLI does when OTEL_EXPORTER_OTLP_ENDPOINT is set, src/host/tracing.ts;
 * a program embedding the library may register its own) gets the spans.
 * @internal
 */
import {
  ProxyTracerProvider, ROOT_CONTEXT, context, createTraceState, trace, type Context, type Span, type SpanContext, type Tracer,
} from '@opentelemetry/api';
import { formatTraceparent, parseTraceparent, type TraceContext } from '../protocol/index.ts';

/** The instrumentation scope of every span CrowdCompute makes. */
export const TRACER_NAME = 'crowdcompute';

/** The tracer: a proxy, so that a provider registered after this module loaded is used. */
export const tracer: Tracer = trace.getTracer(TRACER_NAME);

/** Span attribute names (`crowdcompute.*`, as OpenTelemetry asks of names outside its conventions). */
export const ATTR = {
  jobId: 'crowdcompute.job.id',
  jobKind: 'crowdcompute.job.kind',
  jobTasks: 'crowdcompute.job.tasks',
  taskId: 'crowdcompute.task.id',
  taskType: 'crowdcompute.task.type',
  taskAttempt: 'crowdcompute.task.attempt',
  taskStatus: 'crowdcompute.task.status',
  workerId: 'crowdcompute.worker.id',
  dispatchTasks: 'crowdcompute.dispatch.tasks',
  scheduleId: 'crowdcompute.schedule.id',
  scheduleTick: 'crowdcompute.schedule.tick',
  scheduleReason: 'crowdcompute.schedule.reason',
  scheduleOutcome: 'crowdcompute.schedule.outcome',
} as const;

/** The provider the API falls back to when none is registered: its tracers make no-op spans. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** True when a tracer provider is registered, i.e. spans made here go somewhere. A few property reads. */
export function tracingOn(): boolean {
  const p = trace.getTracerProvider() as Partial<ProxyTracerProvider>;
  const delegate = typeof p.getDelegate === 'function' ? p.getDelegate() : p;
  return delegate !== NOOP_PROVIDER;
}

/** A context whose parent span is the one `tc` names (remote), or null when there is none or it is not valid. */
export function contextFrom(tc: TraceContext | null | undefined): Context | null {
  const p = tc ? parseTraceparent(tc.traceparent) : null;
  if (!p) return null;
  const sc: SpanContext = { ...p, isRemote: true, ...(tc!.tracestate ? { traceState: createTraceState(tc!.tracestate) } : {}) };
  return trace.setSpanContext(ROOT_CONTEXT, sc);
}

/** The W3C trace context of a span (or of a context's span), or undefined when it has no valid one (a no-op span under no parent). */
export function traceContextOf(from: Span | Context | undefined): TraceContext | undefined {
  const span = from === undefined ? undefined : 'spanContext' in from ? from : trace.getSpan(from);
  const sc = span?.spanContext();
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  const state = sc.traceState?.serialize();
  return state ? { traceparent: formatTraceparent(sc), tracestate: state } : { traceparent: formatTraceparent(sc) };
}

/** The active context's span as a trace context to send, if it has a valid one. */
export function activeTraceContext(): TraceContext | undefined {
  return traceContextOf(context.active());
}
