import type { Hello } from '../../protocol/index.ts';
import type { Connection } from '../ws/connection.ts';

/** A task the foreman has handed to a worker and not yet heard back about. */
export interface InFlight {
  attempt: number;
  jobId: string;
  type: string;
  assignedAt: number;
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
  /** The dispatcher's work version at which a claim for this worker last came back short. */
  emptyAtVersion = -1;
  /** A draining worker finishes what it has and gets nothing new. */
  draining = false;
  lastSeenAt = Date.now();
  readonly connectedAt = Date.now();

  readonly conn: Connection;
  hello: Hello;

  constructor(conn: Connection, hello: Hello) {
    this.conn = conn;
    this.hello = hello;
  }

  get workerId(): string { return this.hello.workerId; }
  get capacity(): number { return this.hello.capacity; }
  get free(): number { return this.draining || this.conn.closed ? 0 : this.hello.capacity - this.inFlight.size; }
}
