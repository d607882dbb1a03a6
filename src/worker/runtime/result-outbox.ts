import type { TaskOutcome, TaskRef } from '../../protocol/index.ts';

/**
 * Outcomes on their way to the foreman. Each is kept until the foreman acknowledges it (after
 * its commit) and is sent again after a reconnect, so a result is never lost to a dropped
 * socket; the foreman's guarded update records it at most once. Outcomes of one turn leave
 * together, a few per message when results are large.
 */
export class ResultOutbox {
  private readonly unacked = new Map<string, TaskOutcome>();
  private pending: TaskOutcome[] = [];
  /** JSON size of each outcome's result, measured once when it is reported. */
  private readonly sizes = new WeakMap<TaskOutcome, number>();
  private scheduled = false;
  private readonly send: (results: TaskOutcome[]) => boolean;
  private readonly schedule: (fn: () => void) => void;
  private ackWaiters: (() => void)[] = [];
  /** Half the foreman's frame limit: large results travel a few per message. */
  maxBatchBytes = 4 * 1024 * 1024;

  constructor(send: (results: TaskOutcome[]) => boolean, schedule: (fn: () => void) => void) {
    this.send = send;
    this.schedule = schedule;
  }

  /** Outcomes not yet acknowledged. */
  get size(): number { return this.unacked.size; }

  /** Tasks whose outcome the foreman has not acknowledged: still ours, as far as a hello is concerned. */
  refs(): TaskRef[] {
    return [...this.unacked.values()].map((o) => ({ taskId: o.taskId, attempt: o.attempt }));
  }

  /** Queue an outcome (its result already measured as `resultBytes` of JSON). */
  add(outcome: TaskOutcome, resultBytes: number): void {
    this.sizes.set(outcome, resultBytes);
    this.unacked.set(outcome.taskId, outcome);
    this.pending.push(outcome);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.flush());
    }
  }

  /** After a (re)connect: everything unacknowledged goes again. */
  resendAll(): void {
    this.pending = [...this.unacked.values()];
    this.flush();
  }

  /** Send what is pending now. If there is no connection, it waits for `resendAll`. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const all = this.pending;
    this.pending = [];
    let batch: TaskOutcome[] = [];
    let bytes = 0;
    for (const o of all) {
      const size = (this.sizes.get(o) ?? 0) + 200;
      if (batch.length > 0 && bytes + size > this.maxBatchBytes) {
        if (!this.send(batch)) return;
        batch = [];
        bytes = 0;
      }
      batch.push(o);
      bytes += size;
    }
    if (batch.length > 0) this.send(batch);
  }

  /** The foreman committed (or refused) these: forget them. */
  acknowledged(refs: readonly TaskRef[]): void {
    for (const t of refs) {
      const o = this.unacked.get(t.taskId);
      if (o && o.attempt === t.attempt) this.unacked.delete(t.taskId);
    }
    if (this.unacked.size === 0) for (const w of this.ackWaiters.splice(0)) w();
  }

  /** Resolves when every outcome is acknowledged, or after `ms`. */
  waitAcknowledged(ms: number): Promise<void> {
    if (this.unacked.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() { clearTimeout(t); resolve(); }
      this.ackWaiters.push(done);
    });
  }
}
