import type { Logger } from 'pino';
import type { Store } from '../../store/store.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { JobEvents } from '../job-events.ts';
import type { ForemanMetrics } from '../foreman-metrics.ts';
import type { WsGateway } from '../ws/ws-gateway.ts';

export interface LivenessOptions {
  /** How often the checks run (the foreman uses its heartbeat interval). */
  intervalMs: number;
  leaseTtlMs: number;
  /** Deadline of a task without its own timeoutMs, for zombie detection. */
  defaultTimeoutMs: number;
  maxLostAttempts: number;
}

/**
 * Finds work that is no longer being done, three ways:
 *  1. dead connections: a peer silent (no message, no pong) for a lease TTL is cut off, so
 *     its tasks are requeued at once, as for a closed socket;
 *  2. zombies: a worker that heartbeats but holds a task past the task's deadline plus a
 *     lease TTL (its own timeout should have fired by then) loses the task;
 *  3. expired leases in the store: tasks whose worker is connected to no foreman (it died
 *     while this foreman was down, or it belonged to another foreman that died).
 * Checks run every `intervalMs`; start() and stop() are idempotent.
 */
export class LivenessMonitor {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly deps: { store: Store; dispatcher: Dispatcher; events: JobEvents; gateway: WsGateway; metrics: ForemanMetrics; log: Logger };
  private readonly o: LivenessOptions;

  constructor(deps: LivenessMonitor['deps'], options: LivenessOptions) {
    this.deps = deps;
    this.o = options;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One round of checks (exposed for tests). */
  async check(now = Date.now()): Promise<void> {
    if (this.running) return;
    this.running = true;
    const { store, dispatcher, events, gateway, log } = this.deps;
    try {
      gateway.pingAndCull(now, this.o.leaseTtlMs);

      for (const s of dispatcher.sessions.values()) {
        const late: string[] = [];
        for (const [taskId, f] of s.inFlight) {
          if (now > f.assignedAt + (f.timeoutMs ?? this.o.defaultTimeoutMs) + this.o.leaseTtlMs) late.push(taskId);
        }
        if (late.length > 0) {
          log.warn({ workerId: s.workerId, taskIds: late.slice(0, 5), count: late.length }, 'zombie: worker holds tasks past their deadline; taking them back');
          await dispatcher.revoke(s, late, `worker ${s.workerId} did not finish the task within its deadline plus the lease TTL`);
        }
      }

      const reaped = await store.taskRequeueExpired({ now, maxLost: this.o.maxLostAttempts, limit: 1000 });
      if (reaped.expired.length > 0) {
        log.warn({ requeued: reaped.requeued.length, failed: reaped.failed.length, taskIds: reaped.expired.slice(0, 5).map((t) => t.taskId) },
          'leases expired; tasks put back in the queue');
        this.deps.metrics.tasksRequeued.inc(reaped.requeued.length);
        // A lease can also expire under a worker still connected here (heartbeats delayed):
        // then it must stop, and its slot stays counted until it lets go.
        for (const t of reaped.expired) {
          const s = t.workerId ? dispatcher.sessions.get(t.workerId) : undefined;
          const f = s?.inFlight.get(t.taskId);
          if (s && f && f.attempt === t.attempt) {
            s.inFlight.delete(t.taskId);
            s.revoked.set(t.taskId, t.attempt);
            s.conn.send({ type: 'cancel_task', taskId: t.taskId, attempt: t.attempt, reason: 'lease expired' });
          }
        }
        events.publish(reaped.jobs);
        dispatcher.announceWork();
      }
    } catch (err) {
      log.error({ err }, 'liveness check failed');
    } finally {
      this.running = false;
    }
  }
}
