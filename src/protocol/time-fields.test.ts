import { test } from 'node:test';
import assert from 'node:assert/strict';
import ms from 'ms';
import { parseDuration, durationField, TimeFieldSchema, timeMs, durationMs } from './time-fields.ts';

test('durations read as the ms package reads them (the CLI uses it), in browser-safe code', () => {
  for (const text of ['500ms', '30s', '10m', '1h', '2d', '1w', '1y', '1.5h', '10 minutes', '2 days', '250', '0', '.5s', '-1s', '3 Hours']) {
    assert.equal(parseDuration(text), Math.round(ms(text as ms.StringValue)), text);
  }
  for (const text of ['', 'soon', '10 parsecs', '1h30m', 'h']) assert.equal(parseDuration(text), undefined, text);
});

test('a duration field names its limit; a time field takes epoch ms or RFC 3339 with an offset', () => {
  const f = durationField(60_000, 1_000);
  assert.equal(durationMs(f.parse('30s')), 30_000);
  assert.equal(durationMs(f.parse(5_000)), 5_000);
  assert.match(f.safeParse('2m').error!.issues[0].message, /at most 60000 ms/);
  assert.match(f.safeParse(10).error!.issues[0].message, /at least 1000 ms/);
  assert.match(f.safeParse('later').error!.issues[0].message, /duration such as/);
  assert.equal(timeMs(TimeFieldSchema.parse('2026-12-06T20:00:00+01:00')), Date.UTC(2026, 11, 6, 19));
  assert.equal(timeMs(TimeFieldSchema.parse(1_000)), 1_000);
  assert.equal(TimeFieldSchema.safeParse('2026-12-06 20:00').success, false);
});
