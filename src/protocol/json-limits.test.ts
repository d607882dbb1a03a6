import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DOCUMENT_DEPTH, MAX_VALUE_DEPTH, jsonDepthExceeds } from './json-limits.ts';
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

test('a frame nested too deep is refused before it is parsed, naming the limit; one within it is read', () => {
  const deep = `{"type":"task_results","results":[{"taskId":"t","attempt":1,"status":"completed","result":${nested(5_000)}}]}`;
  assert.throws(() => decodeFrame(deep), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CC_ERR_TOO_DEEP');
    assert.match(err.message, new RegExp(`more than ${MAX_DOCUMENT_DEPTH} levels`));
    return true;
  });
  const [r] = parseInbound(deep);
  assert.equal(r.ok, false);
  const fine = `{"type":"task_results","results":[{"taskId":"t","attempt":1,"status":"completed","result":${nested(MAX_VALUE_DEPTH)}}]}`;
  const [ok] = parseInbound(`[${fine}]`);
  assert.equal(ok.ok, true);
});
