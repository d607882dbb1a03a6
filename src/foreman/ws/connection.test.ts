import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeReason } from './connection.ts';

test('a close reason is cut to 123 bytes of UTF-8, at a character boundary', () => {
  assert.equal(closeReason('short'), 'short');
  const ascii = 'x'.repeat(200);
  assert.equal(closeReason(ascii), 'x'.repeat(123));
  const wide = `CC_ERR_UNAUTHORIZED: worker ${'🬕'.repeat(40)}`;
  const cut = closeReason(wide);
  assert.ok(Buffer.byteLength(cut) <= 123 && wide.startsWith(cut));
  assert.ok(!cut.includes('\uFFFD'), 'no character is split');
});
