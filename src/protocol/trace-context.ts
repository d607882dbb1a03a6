/**
 * Trace context as it travels with a job, a task and an outcome: W3C Trace Context
 * (`traceparent`, and `tracestate` when the caller's tracer keeps one), so that the spans the
 * client, the foreman and the worker make join one trace. The sides turn it into an
 * OpenTelemetry span context themselves; this leaf only knows the text format.
 */
import { z } from 'zod';

/** `version-traceid-spanid-flags`, lowercase hex (W3C Trace Context, level 1). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ALL_ZERO = /^0+$/;

/**
 * The longest `tracestate` taken: W3C asks every participant to pass on at least 512
 * characters, and it rides in every task message of a traced job, so no more.
 */
export const MAX_TRACESTATE = 512;

/** A W3C trace context: the span a job, task or outcome belongs under. */
export const TraceContextSchema = z.object({
  /** `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`. */
  traceparent: z.string().regex(TRACEPARENT, 'must be a W3C traceparent: 00-<32 hex digits>-<16 hex digits>-<2 hex digits>'),
  /** Vendor data that rides along with the trace, passed on as it is. */
  tracestate: z.string().max(MAX_TRACESTATE).optional(),
});
/** A W3C trace context. */
export type TraceContext = z.infer<typeof TraceContextSchema>;

/** The parts of a traceparent, in the shape of an OpenTelemetry span context. */
export interface TraceParent {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

/**
 * A traceparent's parts, or null when it is not one (wrong shape, version ff, or all-zero ids,
 * which W3C says to ignore: the receiver then starts a trace of its own).
 */
export function parseTraceparent(text: string | undefined | null): TraceParent | null {
  if (typeof text !== 'string') return null;
  const m = TRACEPARENT.exec(text.trim());
  if (!m || m[1] === 'ff' || ALL_ZERO.test(m[2]) || ALL_ZERO.test(m[3])) return null;
  return { traceId: m[2], spanId: m[3], traceFlags: parseInt(m[4], 16) };
}

/** A span context as a version-00 traceparent. */
export function formatTraceparent(p: TraceParent): string {
  return `00-${p.traceId}-${p.spanId}-${(p.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}
