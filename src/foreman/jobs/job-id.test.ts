import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newJobId } from './job-id.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('job ids are UUIDs of version 7, each new one after the last (many share a millisecond), none twice', () => {
  const before = Date.now();
  const ids = Array.from({ length: 20_000 }, () => newJobId());
  for (const id of ids) assert.match(id, UUID_V7);
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `${ids[i]} sorts after ${ids[i - 1]}`);
  assert.equal(new Set(ids).size, ids.length);
  // The first 48 bits are the time in milliseconds.
  const ms = parseInt(ids[0].replace(/-/g, '').slice(0, 12), 16);
  assert.ok(ms >= before && ms <= Date.now() + 1, `the id's time ${ms} is now`);
});

test('job ids made apart differ in their random part, not only in time', () => {
  const tails = new Set(Array.from({ length: 1_000 }, () => newJobId().slice(-12)));
  assert.equal(tails.size, 1_000);
});
