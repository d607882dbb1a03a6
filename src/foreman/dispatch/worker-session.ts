import type { Hello } from '../../protocol/index.ts';
import type { Connection } from '../ws/connection.ts';

/** A task the foreman has handed to a worker and not yet heard back about. */
export interface InFlight {
  attempt: number;
  jobId: string;
  type: string;
  assignedAt: number;
  /** The task's own deadline on the worker (null: none). */
  timeoutMs: number | null;
}

/**
 * The foreman's view of one connected worker: what it can run and what it is running.
 * Capacity is counted here, in memory: the dispatcher never hands a worker more than
 * `capacity - inFlight.size` tasks.
 */
export class WorkerSession {
  readonly inFlight = new Map<string, InFlight>();
  /** Map jobs whose function source this connection already holds (code goes once per job). */
  readonly codeSent = new Set<string>();
  /**
   * Tasks taken back from this worker while it may still be running them (zombie detection).
   * They still occupy a slot on the worker, so they still count against its capacity until
   * it reports them or stops listing them in heartbeats.
   */
  readonly revoked = new Map<string, number>();
  /** The dispatcher's work version at which a claim for this worker last came back short. */
  emptyAtVersion = -1;
  /** A draining worker finishes what it has and gets nothing new. */
  draining = false;
  lastSeenAt = Date.now();
  /** When the previous heartbeat arrived: tasks assigned before it must appear in the next. */
  lastHeartbeatAt = Date.now();
  readonly connectedAt = Date.now();

  readonly conn: Connection;
  hello: Hello;

  constructor(conn: Connection, hello: Hello) {
    this.conn = conn;
    this.hello = hello;
  }

  get workerId(): string { return this.hello.workerId; }
  get capacity(): number { return this.hello.capacity; }
  get free(): number { return this.draining || this.conn.closed ? 0 : this.hello.capacity - this.inFlight.size - this.revoked.size; }
}
