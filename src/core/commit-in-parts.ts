/**
 * One bad item must not spoil the batch that carries it. Loops that write in batches (result
 * commits, lease reaping, queue deadlines, pruning) commit the whole batch in one transaction;
 * when that fails for a reason of the store as a whole (unreachable, full, busy), the batch is
 * put back and tried later. When it fails for any other reason, the failure belongs to an
 * item (a value the database refuses, a row it will not change): the batch is split in halves
 * and each committed apart, down to the single items that fail on their own, which are set
 * aside for the caller to deal with. The others are recorded. With k bad items in a batch of
 * n this takes about 2·k·log2(n) extra transactions, and none while nothing is bad.
 */

/** A part that committed: its items and what the commit returned. */
export interface CommittedPart<T, R> {
  items: T[];
  value: R;
}

/** What {@link commitInParts} did with a batch. */
export interface PartsOutcome<T, R> {
  /** The parts that committed, in the order they did. */
  done: CommittedPart<T, R>[];
  /** Items whose commit failed on their own, each with its error. */
  poisoned: { item: T; error: unknown }[];
  /** Items left uncommitted because the store as a whole failed (with `error`); empty otherwise. */
  rest: T[];
  /** The store-wide error that stopped the commits, if one did. */
  error?: unknown;
}

/**
 * Commit `items` with `commit` (one transaction per call), isolating the items whose commit
 * fails alone. `isStoreWide` tells a failure of the store as a whole, which stops everything
 * (what is not yet committed comes back in `rest`), from a failure that may be one item's.
 */
export async function commitInParts<T, R>(
  items: readonly T[],
  commit: (part: T[]) => Promise<R>,
  isStoreWide: (err: unknown) => boolean,
): Promise<PartsOutcome<T, R>> {
  const out: PartsOutcome<T, R> = { done: [], poisoned: [], rest: [] };
  const parts: T[][] = items.length > 0 ? [[...items]] : [];
  while (parts.length > 0) {
    const part = parts.shift()!;
    try {
      out.done.push({ items: part, value: await commit(part) });
    } catch (err) {
      if (isStoreWide(err)) {
        out.rest = part.concat(...parts);
        out.error = err;
        return out;
      }
      if (part.length === 1) {
        out.poisoned.push({ item: part[0], error: err });
      } else {
        const half = Math.ceil(part.length / 2);
        parts.unshift(part.slice(0, half), part.slice(half));
      }
    }
  }
  return out;
}
