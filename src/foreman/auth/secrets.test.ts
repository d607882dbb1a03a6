import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { hashKeySecret, safeEqual } from './secrets.ts';

test('an API key secret hashes to the hex SHA-256 that stores have always kept', () => {
  const secret = 'Zm9vYmFyYmF6cXV4LWFuLWFwaS1rZXktc2VjcmV0LTQzYw';
  assert.equal(hashKeySecret(secret), createHash('sha256').update(secret).digest('hex'));
  assert.equal(hashKeySecret(''), createHash('sha256').update('').digest('hex'));
});

test('safeEqual is true for equal strings only, whatever their length or characters', () => {
  const h = hashKeySecret('a');
  assert.equal(safeEqual(h, hashKeySecret('a')), true);
  assert.equal(safeEqual(h, hashKeySecret('b')), false);
  // A difference in the last character only, and in the first only.
  assert.equal(safeEqual('abcdef', 'abcdeg'), false);
  assert.equal(safeEqual('abcdef', 'bbcdef'), false);
  assert.equal(safeEqual('abc', 'abcd'), false, 'a prefix is not equal');
  assert.equal(safeEqual('', ''), true);
  assert.equal(safeEqual('é-ü', 'é-ü'), true);
  assert.equal(safeEqual('é-ü', 'é-u'), false);
});
