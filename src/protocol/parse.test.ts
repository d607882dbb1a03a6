import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInbound, parseOutbound } from './parse.ts';
import { PROTOCOL_VERSION } from './states.ts';

test('one message per frame, or an array of them, each judged on its own', () => {
  const hello = { type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: 'w', capacity: 2, patterns: ['a.*'], allowCode: false };
  const [one] = parseInbound(JSON.stringify(hello));
  assert.ok(one.ok && one.message.type === 'hello');
  const many = parseInbound(JSON.stringify([hello, { type: 'nope', requestId: 'r' }, { type: 'heartbeat' }]));
  assert.deepEqual(many.map((m) => m.ok), [true, false, true]);
  assert.ok(!many[1].ok && many[1].error.code === 'CC_ERR_UNKNOWN_MESSAGE' && many[1].requestId === 'r');
});

test('errors name the problem', () => {
  const [bad] = parseInbound('not json');
  assert.ok(!bad.ok && bad.error.code === 'CC_ERR_BAD_JSON');
  const [noType] = parseInbound('{"x":1}');
  assert.ok(!noType.ok && noType.error.code === 'CC_ERR_BAD_MESSAGE');
  const [field] = parseInbound(JSON.stringify({ type: 'task_results', results: [{ taskId: 't', attempt: 0, status: 'completed' }] }));
  assert.ok(!field.ok && field.error.code === 'CC_ERR_BAD_MESSAGE' && /results\.0\.attempt/.test(field.error.message));
  const [wrongSide] = parseOutbound(JSON.stringify({ type: 'hello' }));
  assert.ok(!wrongSide.ok && wrongSide.error.code === 'CC_ERR_UNKNOWN_MESSAGE', 'a worker does not accept foreman-bound messages');
});
