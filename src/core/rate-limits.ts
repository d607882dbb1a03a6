/**
 * Per task type rate limits: which queued tasks may start within what is left of each limit.
 * Pure: the buckets that refill live in the foreman.
 */
import { matchesPattern } from './pattern.ts';

/** Queued rows read beyond the number wanted when some of them may have to wait for their rate. */
export const RATE_SLACK = 32;


/** A rate limit's bucket as the store keeps it: so many tokens at `refilledAt`. */
export interface RateBucket {
  pattern: string;
  max: number;
  perMs: number;
  tokens: number;
  refilledAt: number;
}

/** The tokens in a bucket at `now`: it refills at `max` per `perMs`, and holds at most `max`. */
export function tokensAt(b: RateBucket, now: number): number {
  return Math.min(b.max, b.tokens + Math.max(0, now - b.refilledAt) * b.max / b.perMs);
}

/**
 * The first `limit` of `rows` (in their order) whose type is within what is left: a type takes
 * one from the first pattern it matches, and a row whose pattern has nothing left is skipped.
 * `left` is spent in place.
 */
export function withinRates<R extends { type: string }>(rows: readonly R[], limit: number, left: { pattern: string; left: number }[]): R[] {
  const out: R[] = [];
  for (const r of rows) {
    if (out.length >= limit) break;
    const l = left.find((x) => matchesPattern(x.pattern, r.type));
    if (l) {
      if (l.left <= 0) continue;
      l.left--;
    }
    out.push(r);
  }
  return out;
}
