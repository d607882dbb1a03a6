import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DOCUMENT_DEPTH, MAX_VALUE_DEPTH, jsonDepthExceeds, messagesTooDeep } from './json-limits.ts';
import { decodeFrame } from './framing.ts';
import { parseInbound } from './parse.ts';

const nested = (levels: number, open = '[', close = ']') => open.repeat(levels) + close.repeat(levels);

test('depth is counted over arrays and objects alike, exactly at the limit', () => {
  assert.equal(jsonDepthExceeds(nested(64), 64), false);
  assert.equal(jsonDepthExceeds(nested(65), 64), true);
  const objects = '{"a":'.repeat(65) + '1' + '}'.repeat(65);
  assert.equal(jsonDepthExceeds(objects, 64), true);
  assert.equal(jsonDepthExceeds(objects, 65), false);
  // Siblings do not add up: a long flat array is one level.
  assert.equal(jsonDepthExceeds(JSON.stringify(Array.from({ length: 10_000 }, (_, i) => [i])), 2), false);
});

test('brackets inside strings do not count, escaped quotes included', () => {
  assert.equal(jsonDepthExceeds(JSON.stringify({ s: '[[[[[[[[[[{{{{{{{{' }), 2), false);
  assert.equal(jsonDepthExceeds(JSON.stringify({ s: 'a"[[[[[[[[[[', t: '\\' }), 2), false);
  assert.equal(jsonDepthExceeds(JSON.stringify([['\\"', [[['x']]]]]), 4), true);
  assert.equal(jsonDepthExceeds(JSON.stringify([['\\\\', [[['x']]]]]), 5), false);
});

test('a message nested too deep is refused alone, naming the limit and answering its request id; the others of its frame are read', () => {
  const deep = `{"type":"submit_job","requestId":"r-deep","job":{"kind":"tasks","tasks":[{"type":"x","input":${nested(5_000)}}]}}`;
  const fine = `{"type":"task_results","results":[{"taskId":"t","attempt":1,"status":"completed","result":${nested(MAX_VALUE_DEPTH)}}]}`;
  const [bad, ok] = parseInbound(`[${deep},${fine}]`);
  assert.equal(bad.ok, false);
  if (!bad.ok) {
    assert.equal(bad.error.code, 'CC_ERR_TOO_DEEP');
    assert.equal(bad.requestId, 'r-deep');
    assert.match(bad.error.message, new RegExp(`the "submit_job" message nests JSON more than ${MAX_DOCUMENT_DEPTH} levels deep`));
  }
  assert.equal(ok.ok, true);
  // A lone message, and brackets in strings between messages.
  assert.deepEqual(messagesTooDeep(deep, MAX_DOCUMENT_DEPTH), [0]);
  assert.deepEqual(messagesTooDeep(`[{"a":"],[,"},${deep},{"b":1},${deep}]`, MAX_DOCUMENT_DEPTH), [1, 3]);
  assert.deepEqual(messagesTooDeep(`[${fine},${fine}]`, MAX_DOCUMENT_DEPTH), []);
  assert.equal(decodeFrame(`[${deep}]`).length, 1);
});
