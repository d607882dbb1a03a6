import { randomFillSync } from 'node:crypto';
import { v7 } from 'uuid';

/** Random bytes for ids, drawn from the system in blocks: one call per 256 ids instead of one per id. */
const POOL = new Uint8Array(16 * 256);
let used = POOL.length;

/** Time and sequence of the last id: ids made in one millisecond count up, as uuid's own v7 does. */
let lastMs = -Infinity;
let seq = 0;

/**
 * A new job id: a UUID version 7, time-ordered, so that a new job's rows go at the end of every
 * index keyed by job id (its queue, its tasks' ids) instead of at random places, which each
 * commit would have to touch. Ids made in the same millisecond keep their order through a
 * counter that starts at a random value (RFC 9562, method 1), as uuid's v7() does by itself;
 * the randomness comes from a pool filled in blocks, since asking the system for 16 bytes per
 * id cost more than the rest of building a small job.
 */
export function newJobId(): string {
  if (used === POOL.length) { randomFillSync(POOL); used = 0; }
  const random = POOL.subarray(used, used + 16);
  used += 16;
  const now = Date.now();
  if (now > lastMs) {
    // A fresh millisecond: the counter starts at a random 31-bit value (room to count up).
    seq = ((random[6] & 0x7f) << 24) | (random[7] << 16) | (random[8] << 8) | random[9];
    lastMs = now;
  } else {
    // The same millisecond (or the clock went back): count up; on overflow, borrow the next millisecond.
    seq = (seq + 1) | 0;
    if (seq === 0) lastMs++;
  }
  return v7({ msecs: lastMs, seq, random });
}
