import type { WorkerKind } from '../../store/store.ts';
import type { Hello, Requirements } from '../../protocol/index.ts';
import { announced, freeOf, type ResourceAmounts } from '../../core/resources.ts';
import type { Assignment } from '../../core/leases.ts';
import type { Peer } from '../shared/peer.ts';

/** A task the foreman handed to a worker and has not heard the end of. */
export interface InFlight extends Assignment {
  /** '' when the task was adopted from a returning worker's hello (the store knows its job). */
  jobId: string;
  type: string;
  /** When the task was submitted (0 when adopted from a returning worker). */
  createdAt: number;
  /** What it requires of the worker, counted against the worker's resources while it runs. */
  requires?: Requirements;
}

/**
 * The foreman's view of one connected worker: what it can run and what it runs. Capacity is
 * counted here, in memory: a worker is never handed more than `capacity - assigned - revoked`.
 * Only the {@link WorkerRegistry} changes a session.
 * @internal
 */
export class WorkerSession {
  readonly peer: Peer;
  hello: Hello;
  /** Tasks given to the worker and not yet reported back. */
  readonly assigned = new Map<string, InFlight>();
  /**
   * Tasks taken back while the worker may still be running them (a zombie, an expired lease).
   * They still occupy a slot on the worker, so they count against its capacity until it
   * reports them or stops listing them in its heartbeats.
   */
  readonly revoked = new Map<string, number>();
  /** Map jobs whose function source this connection already holds (code goes once per job). */
  readonly codeSent = new Set<string>();
  /** A draining worker finishes what it has and gets nothing new. */
  draining = false;
  /** When the worker was last heard from (hello, heartbeat, results): the REST API shows it live. */
  lastSeenAt: number;
  /** The `lastSeenAt` last written to the store (the registry writes it now and then, not at every heartbeat). */
  storedSeenAt: number;
  /** When the previous heartbeat arrived: tasks assigned before it must appear in the next. */
  previousHeartbeatAt: number;
  /** assign_tasks messages sent on this connection (each assignment keeps its message's number). */
  assignMessages = 0;
  readonly connectedAt: number;
  /** A Node process, or a browser tab that joined through a join link (volatile: short leases, few tasks). */
  readonly kind: WorkerKind;
  /** How long its assignments hold without a heartbeat. */
  readonly leaseTtlMs: number;
  /** The credential it proved (null under --insecure): join links count their browsers by it. */
  readonly tokenId: string | null;

  constructor(peer: Peer, hello: Hello, now: number, options: { kind: WorkerKind; leaseTtlMs: number; tokenId: string | null }) {
    this.peer = peer;
    this.hello = hello;
    this.lastSeenAt = this.storedSeenAt = this.previousHeartbeatAt = this.connectedAt = now;
    this.kind = options.kind;
    this.leaseTtlMs = options.leaseTtlMs;
    this.tokenId = options.tokenId;
  }

  get workerId(): string { return this.hello.workerId; }
  get capacity(): number { return this.hello.capacity; }
  /** What the worker announced, less what its running tasks require. */
  freeResources(): ResourceAmounts {
    return freeOf(announced(this.hello.resources), [...this.assigned.values()].map((a) => a.requires));
  }

  /** Slots the dispatcher may fill now. */
  get free(): number { return this.draining || this.peer.closed ? 0 : this.hello.capacity - this.assigned.size - this.revoked.size; }
}
