/** Rate limits as people write them: `image.*=100/s`, on the command line and in the API. */
import ms from 'ms';

/** At most `max` tasks whose type matches `pattern` start per `perMs`. */
export interface RateLimitSpec {
  pattern: string;
  max: number;
  perMs: number;
}

/** The shortest window a limit may have. */
export const RATE_WINDOW_MIN_MS = 10;
/** The longest window a limit may have: a day. */
export const RATE_WINDOW_MAX_MS = 86_400_000;
/** The most tasks a limit may allow per window. */
export const RATE_MAX = 1_000_000;

/**
 * `100/s`, `5/1500ms`, `6000/10m`: a count, a slash, and a window (a duration `ms` reads; a bare
 * unit means one of it). Throws an error naming the problem and the limits.
 */
export function parseRate(text: string): { max: number; perMs: number } {
  const m = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(text);
  if (!m) throw new Error(`rate "${text}" is not <count>/<window>, such as 100/s or 6000/10m`);
  const max = Number(m[1]);
  const window = /^[a-z]/i.test(m[2]) ? `1${m[2]}` : m[2];
  const perMs = ms(window as ms.StringValue);
  if (!Number.isInteger(max) || max < 1 || max > RATE_MAX) throw new Error(`rate "${text}": the count must be 1 to ${RATE_MAX}`);
  if (typeof perMs !== 'number' || !Number.isFinite(perMs) || perMs < RATE_WINDOW_MIN_MS || perMs > RATE_WINDOW_MAX_MS) {
    throw new Error(`rate "${text}": the window must be a duration from ${RATE_WINDOW_MIN_MS} ms to 1 day (s, m, h, or ms)`);
  }
  return { max, perMs };
}

/** `image.*=100/s` (the form of `crowdcompute foreman --rate-limit`). */
export function parseRateLimit(text: string): RateLimitSpec {
  const eq = text.lastIndexOf('=');
  if (eq <= 0) throw new Error(`rate limit "${text}" is not <type pattern>=<count>/<window>, such as image.*=100/s`);
  const pattern = text.slice(0, eq).trim();
  if (pattern.length === 0 || pattern.length > 200) throw new Error(`rate limit "${text}": the type pattern must be 1 to 200 characters`);
  return { pattern, ...parseRate(text.slice(eq + 1)) };
}

/** A limit as people write it: `100/s`, `5/1500ms`. */
export function formatRate(l: { max: number; perMs: number }): string {
  return `${l.max}/${l.perMs % 1000 === 0 ? (l.perMs === 1000 ? 's' : ms(l.perMs)) : `${l.perMs}ms`}`;
}
