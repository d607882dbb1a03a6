/**
 * What a worker remembers about its recent past for its status page: its last connections
 * and disconnections (and why), and how many tasks it finished in each 10-second slot of the
 * last 15 minutes. Both are small and fixed in size, so a worker that runs for months holds
 * no more than one that just started.
 */

/** One change of a worker's connection to its foreman. */
export interface ConnectionEvent {
  /** When it happened (epoch ms); for a run of identical failures, when the last one happened. */
  at: number;
  /**
   * `connected`: the foreman accepted the hello. `disconnected`: an accepted connection ended.
   * `failed`: a connection attempt ended before the foreman accepted it. `gave_up`: the worker
   * stopped trying. `stopped`: the worker was stopped on purpose.
   */
  kind: 'connected' | 'disconnected' | 'failed' | 'gave_up' | 'stopped';
  /** The foreman URL it concerns. */
  url: string;
  /** Why, in words (a close reason, or what a close code means). */
  reason?: string;
  /** The WebSocket close code, when there was one. */
  code?: number;
  /** The foreman that accepted the hello (`connected` only). */
  foremanId?: string;
  /** How many identical failures in a row this entry stands for (a foreman down for an hour is one line, not hundreds). */
  count?: number;
}

/** The last `size` connection events, oldest dropped first. */
export class ConnectionHistory {
  private readonly events: ConnectionEvent[] = [];
  private readonly size: number;

  constructor(size = 20) {
    this.size = size;
  }

  /** Remember an event; a failure identical to the previous entry only bumps its count and time. */
  add(event: ConnectionEvent): void {
    const last = this.events[this.events.length - 1];
    if (last && event.kind === 'failed' && last.kind === 'failed' && last.url === event.url && last.reason === event.reason) {
      last.count = (last.count ?? 1) + 1;
      last.at = event.at;
      return;
    }
    this.events.push({ ...event });
    if (this.events.length > this.size) this.events.shift();
  }

  /** The events, newest first (copies). */
  list(): ConnectionEvent[] {
    return this.events.map((e) => ({ ...e })).reverse();
  }
}

/** Tasks finished per fixed time slot over a recent window, as series a chart can draw. */
export interface ThroughputSeries {
  /** Width of one slot, ms. */
  bucketMs: number;
  /** Start of each slot (epoch ms), oldest first; the last one is the slot running now. */
  times: number[];
  completed: number[];
  failed: number[];
  cancelled: number[];
}

/** Counts of finished tasks per slot of `bucketMs`, for the last `buckets` slots. */
export class Throughput {
  /** Width of one slot, ms. */
  readonly bucketMs: number;
  private readonly slots: { index: number; completed: number; failed: number; cancelled: number }[];

  constructor(options: { bucketMs?: number; buckets?: number } = {}) {
    this.bucketMs = options.bucketMs ?? 10_000;
    this.slots = Array.from({ length: options.buckets ?? 90 }, () => ({ index: -1, completed: 0, failed: 0, cancelled: 0 }));
  }

  /** Count one finished task at time `at` (epoch ms). */
  record(status: 'completed' | 'failed' | 'cancelled', at = Date.now()): void {
    const index = Math.floor(at / this.bucketMs);
    const slot = this.slots[index % this.slots.length];
    if (slot.index !== index) Object.assign(slot, { index, completed: 0, failed: 0, cancelled: 0 });
    slot[status]++;
  }

  /** The window ending with the slot that holds `now`; slots with nothing recorded count 0. */
  series(now = Date.now()): ThroughputSeries {
    const n = this.slots.length;
    const last = Math.floor(now / this.bucketMs);
    const out: ThroughputSeries = { bucketMs: this.bucketMs, times: [], completed: [], failed: [], cancelled: [] };
    for (let index = last - n + 1; index <= last; index++) {
      const slot = this.slots[((index % n) + n) % n];
      const live = slot.index === index;
      out.times.push(index * this.bucketMs);
      out.completed.push(live ? slot.completed : 0);
      out.failed.push(live ? slot.failed : 0);
      out.cancelled.push(live ? slot.cancelled : 0);
    }
    return out;
  }
}
