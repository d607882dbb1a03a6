import { InvalidArgumentError } from 'commander';
import ms from 'ms';

/** A non-negative integer option. */
export function parseIntArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a non-negative integer`);
  return n;
}

/** A job's weight: a number from 0.01 to 1000. */
export function parseWeight(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.01 || n > 1_000) throw new InvalidArgumentError(`"${value}" is not a weight from 0.01 to 1000`);
  return n;
}

/** A size option: `8MiB`, `512KiB`, `1048576`. */
export function parseBytes(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kib|kb|mib|mb|gib|gb)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`"${value}" is not a size (e.g. 8MiB, 512KiB, 1048576)`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('g') ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * mult);
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
