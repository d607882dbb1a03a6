import { InvalidArgumentError } from 'commander';
import ms from 'ms';
import { boundProblem, JOB_LIMITS, TimeFieldSchema, parseDuration as protocolDuration, type Bound } from '../protocol/index.ts';

/** A non-negative integer option. */
export function parseIntArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a non-negative integer`);
  return n;
}

/** An integer option that may be negative (`-1` = never). */
export function parseSignedInt(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n)) throw new InvalidArgumentError(`"${value}" is not an integer`);
  return n;
}

/** A number option that may have a fraction (`--cpus 0.5`). */
export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`"${value}" is not a number`);
  return n;
}

/**
 * A parser that also keeps the value within its bound, refusing it in the flag's name:
 * `--lease-ttl must be at most 86400000 ms (24 h)`.
 */
export function within(parse: (value: string) => number, flag: string, bound: Bound): (value: string) => number {
  return (value) => {
    const n = parse(value);
    const problem = boundProblem(n, bound);
    if (problem) throw new InvalidArgumentError(`${flag} ${problem}`);
    return n;
  };
}

/** A job's weight: a number from 0.01 to 1000. */
export const parseWeight = within(parseNumber, '--weight', JOB_LIMITS.weight);

/** A size option: `8MiB`, `512KiB`, `2TiB`, `1048576`. */
export function parseBytes(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kib|kb|mib|mb|gib|gb|tib|tb)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`"${value}" is not a size (e.g. 8MiB, 512KiB, 1048576)`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const power = { b: 0, k: 1, m: 2, g: 3, t: 4 }[unit[0] as 'b' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * 1024 ** power);
}

/** Parse a JSON argument, with an error that says which argument was wrong. */
export function parseJsonArg(value: string, what: string): unknown {
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new InvalidArgumentError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A duration option: `30s`, `5m`, `7d`, or a number of milliseconds. */
export function parseDuration(value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : ms(value.trim() as ms.StringValue);
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a duration (e.g. 500ms, 30s, 5m, 7d, or milliseconds)`);
  return Math.round(n);
}

/**
 * A default duration as a flag takes it, exactly, for --help: `7d`, `72s`, not 604800000
 * (ms() alone would round 72 s to `1m`).
 */
export function showDuration(value: number): string {
  const short = ms(value);
  if (ms(short as ms.StringValue) === value) return short;
  return value % 1_000 === 0 ? `${value / 1_000}s` : `${value}ms`;
}

/**
 * A point in time, as epoch milliseconds: an RFC 3339 time (`2026-12-06T20:00:00Z`), epoch
 * milliseconds, or a duration from now (`30m`, `2h`), which is what a deadline usually is.
 */
export function parseTimeArg(value: string, now = Date.now()): number {
  const v = value.trim();
  if (/^\d{4}-\d{2}-\d{2}T/.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t) && /(Z|[+-]\d{2}:\d{2})$/i.test(v)) return t;
    throw new InvalidArgumentError(`"${value}" is not an RFC 3339 time with its offset, e.g. 2026-12-06T20:00:00Z`);
  }
  if (/^\d{12,}$/.test(v)) return Number(v);
  const d = ms(v as ms.StringValue);
  if (typeof d === 'number' && Number.isFinite(d) && d > 0) return now + Math.round(d);
  throw new InvalidArgumentError(`"${value}" is not a time: give an RFC 3339 time (2026-12-06T20:00:00Z), epoch milliseconds, or a duration from now (30m, 2h)`);
}

/**
 * `--at`: an RFC 3339 time with its offset (`2026-12-06T20:00:00Z`, `2026-12-06T21:00:00+01:00`)
 * or epoch milliseconds, passed on as written (the foreman reads both).
 */
export function parseTime(flag: string): (value: string) => string | number {
  return (value) => {
    const v = value.trim();
    if (/^\d+$/.test(v)) return Number(v);
    if (TimeFieldSchema.safeParse(v).success) return v;
    throw new InvalidArgumentError(`${flag} "${value}" is not a time: give an RFC 3339 time with its offset, such as 2026-12-06T20:00:00Z, or epoch milliseconds`);
  };
}

/** A duration flag read as the protocol reads durations (`500ms`, `30s`, `10m`, `1h`, `2d`, or milliseconds), within `min`..`max` ms. */
export function parseDurationFlag(flag: string, max: number, min = 0): (value: string) => number {
  return (value) => {
    const v = value.trim();
    const n = /^\d+$/.test(v) ? Number(v) : protocolDuration(v);
    if (n === undefined) throw new InvalidArgumentError(`${flag} "${value}" is not a duration (e.g. 500ms, 30s, 10m, 1h, 2d, or milliseconds)`);
    const problem = boundProblem(n, { min, max, unit: 'ms' });
    if (problem) throw new InvalidArgumentError(`${flag} ${problem}`);
    return n;
  };
}
