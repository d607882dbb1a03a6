/**
 * Times and durations as jobs and schedules take them on the wire: a time is epoch
 * milliseconds or an RFC 3339 string (`2026-12-06T20:00:00Z`), a duration is milliseconds or
 * a short text (`500ms`, `30s`, `10m`, `1h`, `2d`). Schemas
 * validate the form; the foreman turns each into milliseconds with {@link timeMs} and
 * {@link durationMs} once, at its boundary.
 */
import { z } from 'zod';
import { UNITS, describeAmount } from './limits.ts';

const { DAY } = UNITS;

/** How far ahead a job may be delayed or a deadline set: a year. */
export const MAX_TIME_AHEAD_MS = 365 * DAY;

/** Milliseconds per unit of a duration's text, by the unit's short and long names. */
const UNIT_MS: Readonly<Record<string, number>> = (() => {
  const out: Record<string, number> = {};
  const units: [number, string[]][] = [
    [1, ['ms', 'msec', 'msecs', 'millisecond', 'milliseconds']],
    [1_000, ['s', 'sec', 'secs', 'second', 'seconds']],
    [60_000, ['m', 'min', 'mins', 'minute', 'minutes']],
    [3_600_000, ['h', 'hr', 'hrs', 'hour', 'hours']],
    [DAY, ['d', 'day', 'days']],
    [7 * DAY, ['w', 'week', 'weeks']],
    [365.25 * DAY, ['y', 'yr', 'yrs', 'year', 'years']],
  ];
  for (const [ms, names] of units) for (const n of names) out[n] = ms;
  return out;
})();

/**
 * A duration's text in milliseconds (`500ms`, `30s`, `1.5h`, `10 minutes`, `2d`, or a bare
 * number of milliseconds); undefined when it is not one. The same forms the `ms` package reads
 * (the CLI uses it); written here because this module also runs in browser tabs, which load
 * ES modules only.
 */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(-?(?:\d+)?\.?\d+)\s*([a-z]*)\s*$/i.exec(text);
  if (!m || text.length > 100) return undefined;
  const unit = m[2].toLowerCase();
  const per = unit === '' ? 1 : UNIT_MS[unit];
  if (per === undefined) return undefined;
  const v = Number(m[1]) * per;
  return Number.isFinite(v) ? Math.round(v) : undefined;
}

/** A duration: milliseconds (a whole number) or a text such as `10m`; at most `maxMs`. */
export function durationField(maxMs: number, minMs = 0) {
  const atLeast = `must be at least ${describeAmount(minMs, 'ms')}`;
  const atMost = `must be at most ${describeAmount(maxMs, 'ms')}`;
  return z.union([
    z.number().int('must be a whole number of milliseconds').min(minMs, atLeast).max(maxMs, atMost),
    z.string().max(100).refine((s) => parseDuration(s) !== undefined, 'must be milliseconds or a duration such as 500ms, 30s, 10m, 1h or 2d')
      .refine((s) => (parseDuration(s) ?? minMs) >= minMs, atLeast)
      .refine((s) => (parseDuration(s) ?? maxMs) <= maxMs, atMost)
      // Values within the bounds, for documentation and for generating valid messages in tests.
      .meta({ examples: [`${minMs}ms`, `${Math.round((minMs + maxMs) / 2)}ms`, `${maxMs}ms`] }),
  ]).describe('milliseconds, or a duration such as 30s, 10m, 1h');
}

/** The largest epoch millisecond a Date can hold. */
export const MAX_EPOCH_MS = 8_640_000_000_000_000;

/** A point in time: epoch milliseconds or an RFC 3339 string with its offset. */
export const TimeFieldSchema = z.union([
  z.number().int('must be a whole number of epoch milliseconds').min(0, 'must be epoch milliseconds or an RFC 3339 time')
    // The largest time a JavaScript Date holds (year 275760): past it no time can be named or compared.
    .max(MAX_EPOCH_MS, `must be at most ${MAX_EPOCH_MS} epoch milliseconds (the year 275760)`),
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
