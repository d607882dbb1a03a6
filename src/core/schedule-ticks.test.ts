import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cronProblem, instantsOf, jitterOf, nextTick, nextTicks, runsOnRealTime, ticksBetween, zoneOffset, type TickRule } from './schedule-ticks.ts';

const cron = (expression: string, timezone = 'UTC'): TickRule => ({ cron: expression, everyMs: null, timezone });
const iso = (ms: number[]) => ms.map((t) => new Date(t).toISOString());
const at = (s: string) => Date.parse(s);

test('Europe/Paris, 2026-03-29 (02:00 CET becomes 03:00 CEST): a job at a fixed time in the skipped hour fires once, at the jump', () => {
  const paris = cron('30 2 * * *', 'Europe/Paris');
  assert.deepEqual(iso(nextTicks(paris, at('2026-03-27T12:00:00Z'), 4)), [
    '2026-03-28T01:30:00.000Z', // 02:30 CET
    '2026-03-29T01:00:00.000Z', // 02:30 does not exist: 03:00 CEST, the jump
    '2026-03-30T00:30:00.000Z', // 02:30 CEST
    '2026-03-31T00:30:00.000Z',
  ]);
  // Two wall times in the skipped hour fire once together; the hour after goes on as usual.
  assert.deepEqual(iso(nextTicks(cron('0,30 2,3 * * *', 'Europe/Paris'), at('2026-03-28T23:00:00Z'), 3)), [
    '2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-30T00:00:00.000Z',
  ]);
  // A job every 15 minutes runs on real time: nothing in the hour that does not exist.
  assert.deepEqual(iso(nextTicks(cron('*/15 * * * *', 'Europe/Paris'), at('2026-03-29T00:30:00Z'), 4)), [
    '2026-03-29T00:45:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T01:15:00.000Z', '2026-03-29T01:30:00.000Z',
  ]);
});

test('Europe/Paris, 2026-10-25 (03:00 CEST becomes 02:00 CET): a job at a fixed time in the repeated hour fires once; a wildcard job in both passes', () => {
  assert.deepEqual(iso(nextTicks(cron('30 2 * * *', 'Europe/Paris'), at('2026-10-24T12:00:00Z'), 3)), [
    '2026-10-25T00:30:00.000Z', // 02:30 CEST, the first pass
    '2026-10-26T01:30:00.000Z', // the next day, 02:30 CET: the second pass was not fired
    '2026-10-27T01:30:00.000Z',
  ]);
  // From inside the repeated hour (between the passes), the second pass is still not fired.
  assert.equal(new Date(nextTick(cron('30 2 * * *', 'Europe/Paris'), at('2026-10-25T00:45:00Z'))!).toISOString(), '2026-10-26T01:30:00.000Z');
  assert.deepEqual(iso(nextTicks(cron('0,30 * * * *', 'Europe/Paris'), at('2026-10-24T23:45:00Z'), 6)), [
    '2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', // 02:00, 02:30 CEST
    '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z', // 02:00, 02:30 CET
    '2026-10-25T02:00:00.000Z', '2026-10-25T02:30:00.000Z',
  ]);
});

test('America/New_York, 2026-03-08 and 2026-11-01: the same rules', () => {
  const ny = cron('30 2 * * *', 'America/New_York');
  assert.deepEqual(iso(nextTicks(ny, at('2026-03-07T12:00:00Z'), 2)), ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z']);
  const oneThirty = cron('30 1 * * *', 'America/New_York');
  assert.deepEqual(iso(nextTicks(oneThirty, at('2026-10-31T12:00:00Z'), 2)), ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
  // Hourly on real time: 1:30 EDT and 1:30 EST both fire.
  assert.deepEqual(iso(nextTicks(cron('30 * * * *', 'America/New_York'), at('2026-11-01T05:00:00Z'), 3)), [
    '2026-11-01T05:30:00.000Z', '2026-11-01T06:30:00.000Z', '2026-11-01T07:30:00.000Z',
  ]);
  // Every tick is an instant whose local time matches, or the jump of a skipped one.
  for (const t of nextTicks(cron('0 9 * * 1-5', 'America/New_York'), at('2026-03-01T00:00:00Z'), 30)) {
    assert.equal(new Date(t + zoneOffset(t, 'America/New_York')).getUTCHours(), 9);
  }
});

test('a wall time maps to one instant, two in a repeated hour, or none in a skipped one (then the jump)', () => {
  assert.deepEqual(instantsOf(at('2026-10-25T02:30:00Z'), 'Europe/Paris').instants, [at('2026-10-25T00:30:00Z'), at('2026-10-25T01:30:00Z')]);
  assert.deepEqual(instantsOf(at('2026-03-29T02:30:00Z'), 'Europe/Paris'), { instants: [], gapEnd: at('2026-03-29T01:00:00Z') });
  assert.deepEqual(instantsOf(at('2026-06-01T12:00:00Z'), 'Europe/Paris').instants, [at('2026-06-01T10:00:00Z')]);
});

test('cron expressions: 5 or 6 fields, nicknames, seconds; wildcards in minute or hour run on real time', () => {
  assert.equal(cronProblem('*/5 * * * *'), null);
  assert.equal(cronProblem('0 */10 * * * *'), null);
  assert.equal(cronProblem('@daily'), null);
  assert.match(cronProblem('61 * * * *')!, /does not parse.*minute/);
  assert.match(cronProblem('* * *')!, /has 3 fields/);
  assert.match(cronProblem('@sometimes')!, /not a cron nickname/);
  assert.equal(runsOnRealTime('*/5 * * * *'), true);
  assert.equal(runsOnRealTime('15 * * * *'), true);
  assert.equal(runsOnRealTime('30 2 * * *'), false);
  assert.equal(runsOnRealTime('0 30 2 * * *'), false);
  assert.equal(runsOnRealTime('@hourly'), true);
  assert.equal(runsOnRealTime('@daily'), false);
  assert.deepEqual(iso(nextTicks(cron('*/20 * * * * *'), at('2026-01-01T00:00:00.500Z'), 3)), [
    '2026-01-01T00:00:20.000Z', '2026-01-01T00:00:40.000Z', '2026-01-01T00:01:00.000Z',
  ]);
  assert.equal(nextTick(cron('0 0 30 2 *'), 0), null, 'a day that never comes');
});

test('every: ticks aligned to the Unix epoch, strictly after the instant; backfill ranges are half open', () => {
  const hourly: TickRule = { cron: null, everyMs: 3_600_000, timezone: 'Europe/Paris' };
  assert.deepEqual(iso(nextTicks(hourly, at('2026-03-29T00:59:59.999Z'), 3)), ['2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z', '2026-03-29T03:00:00.000Z']);
  assert.equal(nextTick(hourly, at('2026-03-29T01:00:00Z')), at('2026-03-29T02:00:00Z'));
  const everySecond: TickRule = { cron: null, everyMs: 1_000, timezone: 'UTC' };
  assert.deepEqual(ticksBetween(everySecond, 10_000, 13_000, 10), { ticks: [10_000, 11_000, 12_000], more: false });
  assert.deepEqual(ticksBetween(everySecond, 10_500, 13_000, 10).ticks, [11_000, 12_000]);
  assert.deepEqual(ticksBetween(everySecond, 0, 10_000, 3), { ticks: [0, 1_000, 2_000], more: true });
  assert.deepEqual(ticksBetween(cron('0 * * * *'), at('2026-01-01T00:00:00Z'), at('2026-01-01T03:00:00Z'), 10).ticks,
    [at('2026-01-01T00:00:00Z'), at('2026-01-01T01:00:00Z'), at('2026-01-01T02:00:00Z')]);
});

test('jitter: the same for every caller, within 0..jitter, spread over the range', () => {
  assert.equal(jitterOf('s', 1_000, 0), 0);
  const values = Array.from({ length: 1_000 }, (_, i) => jitterOf('nightly', i * 60_000, 30_000));
  assert.deepEqual(values, Array.from({ length: 1_000 }, (_, i) => jitterOf('nightly', i * 60_000, 30_000)));
  assert.ok(values.every((v) => v >= 0 && v <= 30_000 && Number.isInteger(v)));
  assert.ok(new Set(values).size > 900, 'spread, not constant');
  assert.ok(Math.max(...values) > 25_000 && Math.min(...values) < 5_000);
  assert.notEqual(jitterOf('a', 5, 1_000_000), jitterOf('b', 5, 1_000_000));
});
