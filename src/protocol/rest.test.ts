import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { JobSpecSchema, RestJobSpecSchema, camelKeys, snakeCase, camelCase } from './index.ts';

test('the REST job body is the protocol\'s job spec in snake_case; open values keep their keys', () => {
  const rest = { kind: 'tasks', tasks: [{ type: 'a', input: { some_key: 1 }, task_id: 't', timeout_ms: 5, max_attempts: 2 }], idempotency_key: 'k', metadata: { a_b: 1 } };
  const spec = RestJobSpecSchema.parse(rest);
  assert.deepEqual(spec, { kind: 'tasks', tasks: [{ type: 'a', input: { some_key: 1 }, taskId: 't', timeoutMs: 5, maxAttempts: 2 }], idempotencyKey: 'k', metadata: { a_b: 1 } });
  assert.deepEqual(JobSpecSchema.parse(spec), spec, 'what REST gives is a valid protocol spec');
  assert.deepEqual(RestJobSpecSchema.parse({ kind: 'map', code: 'x => x', args: [1], chunk_size: 2 }), { kind: 'map', code: 'x => x', args: [1], chunkSize: 2 });
});

test('the REST body keeps the protocol\'s rules, and its JSON Schema names snake_case fields', () => {
  // An empty job is refused by the foreman unless it is open (job-submission.test.ts); the schema lets both through.
  assert.equal(RestJobSpecSchema.safeParse({ kind: 'tasks', tasks: [], open: true }).success, true, 'an open job may start empty');
  assert.equal(RestJobSpecSchema.safeParse({ kind: 'map', code: 'x', args: [1], chunk_size: 0 }).success, false, 'chunk_size positive');
  assert.equal(RestJobSpecSchema.safeParse({ kind: 'map', code: 'x', args: [1], priority: 'urgent' }).success, false, 'known priorities only');
  const schema = JSON.stringify(z.toJSONSchema(RestJobSpecSchema, { io: 'input' }));
  for (const field of ['chunk_size', 'timeout_ms', 'max_attempts', 'idempotency_key', 'task_id']) assert.ok(schema.includes(`"${field}"`), field);
  assert.ok(!schema.includes('"chunkSize"'));
});

test('key case helpers', () => {
  assert.equal(snakeCase('maxPayloadBytes'), 'max_payload_bytes');
  assert.equal(camelCase('max_payload_bytes'), 'maxPayloadBytes');
  assert.deepEqual(camelKeys({ total_tasks: 1, input: { keep_me: 1 } }), { totalTasks: 1, input: { keep_me: 1 } });
});
