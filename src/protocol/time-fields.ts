/**
 * Times and durations as jobs and schedules take them on the wire: a time is epoch
 * milliseconds or an RFC 3339 string (`2026-12-06T20:00:00Z`), a duration is milliseconds or
 * a short text (`500ms`, `30s`, `10m`, `1h`, `2d`, as the `ms` package reads it). Schemas
 * validate the form; the foreman turns each into milliseconds with {@link timeMs} and
 * {@link durationMs} once, at its boundary.
 */
import ms from 'ms';
import { z } from 'zod';
import { UNITS, describeAmount } from './limits.ts';

const { DAY } = UNITS;

/** How far ahead a job may be delayed or a deadline set: a year. */
export const MAX_TIME_AHEAD_MS = 365 * DAY;

/** A duration's text as the `ms` package reads it, in milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === '' || t.length > 100) return undefined;
  const v = ms(t as ms.StringValue);
  return typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : undefined;
}

/** A duration: milliseconds (a whole number) or a text such as `10m`; at most `maxMs`. */
export function durationField(maxMs: number, minMs = 0) {
  const atLeast = `must be at least ${describeAmount(minMs, 'ms')}`;
  const atMost = `must be at most ${describeAmount(maxMs, 'ms')}`;
  return z.union([
    z.number().int('must be a whole number of milliseconds').min(minMs, atLeast).max(maxMs, atMost),
    z.string().max(100).refine((s) => parseDuration(s) !== undefined, 'must be milliseconds or a duration such as 500ms, 30s, 10m, 1h or 2d')
      .refine((s) => (parseDuration(s) ?? minMs) >= minMs, atLeast)
      .refine((s) => (parseDuration(s) ?? maxMs) <= maxMs, atMost),
  ]).describe('milliseconds, or a duration such as 30s, 10m, 1h');
}

/** A point in time: epoch milliseconds or an RFC 3339 string with its offset. */
export const TimeFieldSchema = z.union([
  z.number().int('must be a whole number of epoch milliseconds').min(0, 'must be epoch milliseconds or an RFC 3339 time'),
  z.iso.datetime({ offset: true, message: 'must be an RFC 3339 time such as 2026-12-06T20:00:00Z, or epoch milliseconds' }),
]).describe('epoch milliseconds, or an RFC 3339 time such as 2026-12-06T20:00:00Z');

/** A duration field's value in milliseconds (already validated by {@link durationField}). */
export function durationMs(v: number | string): number {
  return typeof v === 'number' ? v : parseDuration(v) ?? Number.NaN;
}

/** A time field's value in epoch milliseconds (already validated by {@link TimeFieldSchema}). */
export function timeMs(v: number | string): number {
  return typeof v === 'number' ? v : Date.parse(v);
}
