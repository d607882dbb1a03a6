import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commitInParts } from './commit-in-parts.ts';

const WIDE = new Error('the store is away');
const isWide = (err: unknown) => err === WIDE;

test('a batch that commits is one call', async () => {
  const calls: number[][] = [];
  const r = await commitInParts([1, 2, 3], async (part) => { calls.push(part); return part.length; }, isWide);
  assert.deepEqual(calls, [[1, 2, 3]]);
  assert.deepEqual(r.done, [{ items: [1, 2, 3], value: 3 }]);
  assert.deepEqual(r.poisoned, []);
  assert.deepEqual(r.rest, []);
  assert.equal(r.error, undefined);
});

test('the items that fail on their own are set aside; every other item is committed once', async () => {
  const items = Array.from({ length: 100 }, (_, i) => i);
  const bad = new Set([7, 8, 63]);
  const committed: number[] = [];
  let calls = 0;
  const r = await commitInParts(items, async (part) => {
    calls++;
    const hit = part.find((i) => bad.has(i));
    if (hit !== undefined) throw new Error(`item ${hit} refused`);
    committed.push(...part);
    return part;
  }, isWide);
  assert.deepEqual(r.poisoned.map((p) => p.item), [7, 8, 63]);
  assert.match(String(r.poisoned[0].error), /item 7 refused/);
  assert.deepEqual(committed.sort((a, b) => a - b), items.filter((i) => !bad.has(i)));
  assert.deepEqual(r.done.flatMap((d) => d.items).sort((a, b) => a - b), committed);
  // About 2·k·log2(n) calls, not n.
  assert.ok(calls <= 2 * bad.size * Math.ceil(Math.log2(items.length)) + 1, `${calls} calls`);
});

test('a store-wide failure stops at once: what is not committed comes back, in order', async () => {
  let n = 0;
  const r = await commitInParts([1, 2, 3, 4], async (part) => {
    n++;
    if (n === 1) throw new Error('item 2 refused');
    if (n === 2) return part;
    throw WIDE;
  }, isWide);
  assert.deepEqual(r.done.map((d) => d.items), [[1, 2]]);
  assert.deepEqual(r.rest, [3, 4]);
  assert.equal(r.error, WIDE);
  assert.deepEqual(r.poisoned, []);
});

test('nothing to commit is no call', async () => {
  const r = await commitInParts([], async () => { throw new Error('never'); }, isWide);
  assert.deepEqual(r, { done: [], poisoned: [], rest: [] });
});
