import type { TaskRef } from '../../protocol/index.ts';

/**
 * Result acknowledgements are not urgent (they only let a worker free memory), so they ride
 * along with the next assignment to that worker, or leave on a short timer: one write fewer
 * per task under load.
 * @internal
 */
export class AckBatcher {
  private readonly pending = new Map<string, TaskRef[]>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly send: (workerId: string, tasks: TaskRef[]) => void;
  private readonly delayMs: number;

  constructor(send: (workerId: string, tasks: TaskRef[]) => void, delayMs: number) {
    this.send = send;
    this.delayMs = delayMs;
  }

  add(workerId: string, ref: TaskRef): void {
    let list = this.pending.get(workerId);
    if (!list) { list = []; this.pending.set(workerId, list); }
    list.push(ref);
    if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = null; this.flush(); }, this.delayMs);
      this.timer.unref?.();
    }
  }

  /** Send the pending acks of one worker (something else goes to it anyway), or of all. */
  flush(workerId?: string): void {
    for (const id of workerId === undefined ? [...this.pending.keys()] : [workerId]) {
      const tasks = this.pending.get(id);
      if (!tasks) continue;
      this.pending.delete(id);
      this.send(id, tasks);
    }
  }

  /** Send everything now and stop the timer. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.flush();
  }
}
