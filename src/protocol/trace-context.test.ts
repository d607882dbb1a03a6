import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobSpecSchema, RestJobSpecSchema, describeIssues, formatTraceparent, parseTraceparent } from './index.ts';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';

test('a traceparent is read as W3C says: ids that are all zeros, version ff or another shape are none', () => {
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), { traceId: TRACE, spanId: SPAN, traceFlags: 1 });
  assert.equal(formatTraceparent({ traceId: TRACE, spanId: SPAN, traceFlags: 1 }), `00-${TRACE}-${SPAN}-01`);
  assert.equal(formatTraceparent({ traceId: TRACE, spanId: SPAN, traceFlags: 0 }), `00-${TRACE}-${SPAN}-00`);
  for (const bad of [`00-${'0'.repeat(32)}-${SPAN}-01`, `00-${TRACE}-${'0'.repeat(16)}-01`, `ff-${TRACE}-${SPAN}-01`, `00-${TRACE.toUpperCase()}-${SPAN}-01`, `00-${TRACE}-${SPAN}`, '', undefined, null]) {
    assert.equal(parseTraceparent(bad), null, String(bad));
  }
});

test('a job spec may carry a trace context, over REST as trace_context; a malformed one is refused naming the format', () => {
  const traceContext = { traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'vendor=a1' };
  assert.deepEqual(JobSpecSchema.parse({ kind: 'tasks', tasks: [{ type: 'a' }], traceContext }).traceContext, traceContext);
  assert.deepEqual(RestJobSpecSchema.parse({ kind: 'tasks', tasks: [{ type: 'a' }], trace_context: traceContext }).traceContext, traceContext);
  const bad = JobSpecSchema.safeParse({ kind: 'tasks', tasks: [{ type: 'a' }], traceContext: { traceparent: 'not-a-traceparent' } });
  assert.equal(bad.success, false);
  assert.match(describeIssues(bad.error!), /traceContext\.traceparent.*W3C traceparent: 00-<32 hex digits>-<16 hex digits>-<2 hex digits>/);
  assert.equal(JobSpecSchema.safeParse({ kind: 'tasks', tasks: [{ type: 'a' }], traceContext: { traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'x'.repeat(513) } }).success, false);
});
