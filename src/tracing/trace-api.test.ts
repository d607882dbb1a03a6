import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trace } from '@opentelemetry/api';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { contextFrom, traceContextOf, tracer, tracingOn } from './trace-api.ts';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

test('without a provider nothing traces, yet a context that came in is passed on; with one, spans join it', () => {
  assert.equal(tracingOn(), false);
  const parent = contextFrom({ traceparent: TRACEPARENT, tracestate: 'vendor=a1' })!;
  assert.ok(parent);
  // The API's no-op span under a remote parent carries the parent's context: what an untraced foreman passes on.
  const noop = tracer.startSpan('x', {}, parent);
  assert.equal(noop.isRecording(), false);
  assert.deepEqual(traceContextOf(noop), { traceparent: TRACEPARENT, tracestate: 'vendor=a1' });
  // No parent, no provider: nothing to send.
  assert.equal(traceContextOf(tracer.startSpan('y')), undefined);
  assert.equal(contextFrom(undefined), null);
  assert.equal(contextFrom({ traceparent: `00-${'0'.repeat(32)}-b7ad6b7169203331-01` }), null);

  const provider = new TracerProvider();
  trace.setGlobalTracerProvider(provider);
  try {
    assert.equal(tracingOn(), true);
    const child = tracer.startSpan('z', {}, parent);
    assert.equal(child.isRecording(), true);
    const tc = traceContextOf(child)!;
    assert.equal(tc.traceparent.split('-')[1], '0af7651916cd43dd8448eb211c80319c', 'same trace');
    assert.notEqual(tc.traceparent.split('-')[2], 'b7ad6b7169203331', 'its own span');
    assert.equal(tc.tracestate, 'vendor=a1');
    child.end();
  } finally {
    trace.disable();
    void provider.shutdown();
  }
  assert.equal(tracingOn(), false);
});
