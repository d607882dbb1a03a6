/**
 * The fuzz suite's generators: valid values are valid (or the suite would judge the foreman
 * on what it rightly refuses), and each mutation breaks its value the way it says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { z } from 'zod';
import {
  InboundSchema, JoinLinkCreateSchema, RateLimitBodySchema, RestAppendPartSchema, RestJobSpecSchema, TaskSubmitBodySchema,
} from '../../src/protocol/index.ts';
import { arbitraryOf, jsonPaths } from './zod-arbitrary.ts';
import { frameOf, fuzzCases, MUTATIONS, type FuzzCase } from './fuzz-frames.ts';

const SCHEMAS = { InboundSchema, RestJobSpecSchema, RestAppendPartSchema, TaskSubmitBodySchema, RateLimitBodySchema, JoinLinkCreateSchema };

test('values generated from the protocol\'s schemas pass those schemas', () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    for (const value of fc.sample(arbitraryOf(schema), { seed: 42, numRuns: 300 })) {
      const parsed = schema.safeParse(value);
      assert.ok(parsed.success, `${name}: ${JSON.stringify(value).slice(0, 300)}: ${parsed.error?.message.slice(0, 300)}`);
    }
  }
});

test('the generator knows strings, numbers and lengths by their checks, and refuses kinds it does not know', () => {
  const schema = z.object({ s: z.string().min(3).max(5), n: z.number().int().positive().max(10), a: z.array(z.boolean()).min(2).max(2), e: z.enum(['x', 'y']).optional() });
  for (const v of fc.sample(arbitraryOf(schema), { seed: 1, numRuns: 200 }) as z.infer<typeof schema>[]) {
    assert.ok(v.s.length >= 3 && v.s.length <= 5, v.s);
    assert.ok(Number.isInteger(v.n) && v.n >= 1 && v.n <= 10, String(v.n));
    assert.equal(v.a.length, 2);
  }
  assert.throws(() => arbitraryOf(z.date()), /schemas of type date are not supported/);
  assert.throws(() => arbitraryOf(z.email()), /string format email is not supported/);
});

test('jsonPaths finds where a schema takes any JSON', () => {
  const value = { type: 'task_results', results: [{ taskId: 't', attempt: 1, status: 'completed', result: [1], error: { message: 'm', details: { a: 1 } } }] };
  assert.deepEqual(jsonPaths(InboundSchema, value), [['results', 0, 'result'], ['results', 0, 'error', 'details', 'a']]);
  assert.deepEqual(jsonPaths(InboundSchema, { type: 'heartbeat' }), []);
});

/** The first case of `mutation` that fast-check makes for task_result messages. */
function caseOf(mutation: string): FuzzCase {
  const cases = fc.sample(fuzzCases(InboundSchema, { batches: false, skip: MUTATIONS.filter((m) => m !== mutation) }), { seed: 7, numRuns: 50 });
  const found = cases.find((c) => c.kind === 'one' && (c.recipe.value as { type: string }).type === 'task_result');
  assert.ok(found, `a task_result case of ${mutation}`);
  return found;
}

const text = (data: string | Buffer) => (typeof data === 'string' ? data : data.toString('utf8'));

test('each mutation breaks a valid message the way it says', () => {
  const valid = frameOf(InboundSchema, caseOf('valid'));
  assert.ok(InboundSchema.safeParse(JSON.parse(text(valid.data))).success);

  const deep = frameOf(InboundSchema, caseOf('deep-nesting'));
  const depth = Number(/(\d+) nested/.exec(deep.detail)![1]);
  assert.ok(text(deep.data).split(/[[{]/).length - 1 >= depth, deep.detail);
  JSON.parse(text(deep.data)); // still JSON: the foreman has to refuse it for what it is

  const huge = frameOf(InboundSchema, caseOf('huge-string'));
  assert.ok(Buffer.byteLength(huge.data) > 1_000_000, huge.detail);

  const cut = frameOf(InboundSchema, caseOf('cut-in-half'));
  assert.throws(() => JSON.parse(text(cut.data)), SyntaxError);

  const bytes = frameOf(InboundSchema, caseOf('raw-bytes'));
  assert.ok(Buffer.isBuffer(bytes.data) && !isUtf8(bytes.data), bytes.detail);

  const twice = frameOf(InboundSchema, caseOf('duplicate-key'));
  const key = /"(.*)" given twice/.exec(twice.detail)![1];
  const keyText = JSON.stringify(key);
  assert.ok(text(twice.data).split(keyText).length - 1 >= 2, `${twice.detail}: ${text(twice.data)}`);

  const missing = frameOf(InboundSchema, caseOf('missing-field'));
  const path = /missing-field: (.*) left out/.exec(missing.detail)![1].split('.');
  const parent = path.slice(0, -1).reduce((v: any, p) => v[p], JSON.parse(text(missing.data)));
  assert.ok(!(path[path.length - 1] in parent), missing.detail);

  const batch = fc.sample(fuzzCases(InboundSchema), { seed: 3, numRuns: 100 }).find((c) => c.kind === 'batch')!;
  const frame = frameOf(InboundSchema, batch);
  assert.equal(frame.mutation, 'batch');
  assert.ok(text(frame.data).startsWith('['), frame.detail);
});
