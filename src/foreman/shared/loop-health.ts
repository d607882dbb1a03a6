import type { Logger } from 'pino';
import type { ForemanMetrics } from './foreman-metrics.ts';

/** What one loop has been doing, as its tracker saw it. */
interface LoopRecord {
  /** When the round in progress began; null between rounds. */
  runningSince: number | null;
  /** When a round last ended well (or the loop was registered). */
  lastOkAt: number;
  /** When the present run of failed rounds began; null while rounds succeed. */
  failingSince: number | null;
  lastError: string | null;
  /** Whether the stall was logged (once per stall). */
  reported: boolean;
}

/** One loop's report card: the loop calls these as its rounds begin and end. */
export interface LoopTracker {
  /** A round begins. */
  began(): void;
  /** The round ended and did its work. */
  succeeded(): void;
  /** The round failed as a whole (its work waits for the next round). */
  failed(err: unknown): void;
  /** Items the round set aside because they failed on their own (the rest went through). */
  poisoned(count: number): void;
}

/** A loop that has not made progress for too long, and why. */
export interface Stall {
  loop: string;
  reason: string;
}

/**
 * Whether the foreman's loops make progress: the dispatcher, the reapers, the pruner, the
 * queue deadlines, the dashboard's feed. A loop is stalled when one round has been running
 * longer than `stallMs` (it waits on something that does not answer) or when every round has
 * failed for that long (something it carries fails it each time). An idle loop is not
 * stalled. /health answers 503 naming the stalled loops, `crowdcompute_loop_stalled{loop}`
 * says 1, and the log says so once per stall. Items set aside as poison are counted in
 * `crowdcompute_loop_poisoned_items_total{loop}`.
 */
export class LoopHealth {
  private readonly loops = new Map<string, LoopRecord>();
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;
  private readonly stallMs: number;
  private readonly now: () => number;

  constructor(metrics: ForemanMetrics, log: Logger, options: { stallMs: number; now?: () => number }) {
    this.metrics = metrics;
    this.log = log;
    this.stallMs = options.stallMs;
    this.now = options.now ?? Date.now;
  }

  /** The tracker of the loop called `name` (one per loop). */
  track(name: string): LoopTracker {
    const r: LoopRecord = { runningSince: null, lastOkAt: this.now(), failingSince: null, lastError: null, reported: false };
    this.loops.set(name, r);
    this.metrics.loopStalled.set({ loop: name }, 0);
    const recovered = () => {
      if (r.reported) this.log.warn({ loop: name }, `${name} makes progress again`);
      r.reported = false;
      this.metrics.loopStalled.set({ loop: name }, 0);
    };
    return {
      began: () => { r.runningSince ??= this.now(); },
      // Called on every round of the dispatcher: nothing but two fields while all is well.
      succeeded: () => {
        r.runningSince = null;
        r.lastOkAt = this.now();
        if (r.failingSince === null && !r.reported) return;
        r.failingSince = null;
        r.lastError = null;
        recovered();
      },
      failed: (err) => {
        r.runningSince = null;
        r.failingSince ??= this.now();
        r.lastError = err instanceof Error ? err.message : String(err);
      },
      poisoned: (count) => { if (count > 0) this.metrics.loopPoisoned.inc({ loop: name }, count); },
    };
  }

  /** The loops stalled now, each with the reason in words. */
  stalls(): Stall[] {
    const now = this.now();
    const out: Stall[] = [];
    for (const [loop, r] of this.loops) {
      let reason: string | null = null;
      if (r.runningSince !== null && now - r.runningSince > this.stallMs) {
        reason = `the ${loop} has been in one round for ${seconds(now - r.runningSince)}, waiting on something that does not answer`;
      } else if (r.failingSince !== null && now - r.failingSince > this.stallMs) {
        reason = `every round of the ${loop} has failed for ${seconds(now - r.failingSince)}: ${(r.lastError ?? 'unknown error').slice(0, 300)}`;
      }
      this.metrics.loopStalled.set({ loop }, reason ? 1 : 0);
      if (!reason) continue;
      out.push({ loop, reason });
      if (!r.reported) {
        r.reported = true;
        this.log.error({ loop, reason }, `${loop} has stalled`);
      }
    }
    return out;
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
