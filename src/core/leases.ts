/**
 * Leases, decided without I/O. A worker holds a task by its lease; heartbeats renew the leases
 * of the tasks they list; a task the foreman gave a worker but that the worker stops listing,
 * or holds past its deadline, is taken back. The worker registry applies these decisions to
 * its sessions; the store keeps the lease times.
 */
import type { TaskRef } from '../protocol/index.ts';

/** A task as the foreman remembers giving it to a worker. */
export interface Assignment {
  attempt: number;
  /** When it was sent to the worker. */
  assignedAt: number;
  /** The number of the assign_tasks message that carried it on its connection (1, 2, …); none when adopted from a hello. */
  message?: number;
  /** The task's own deadline on the worker; null = the foreman's default. */
  timeoutMs: number | null;
}

/** What a heartbeat means for a worker's tasks. */
export interface HeartbeatReconciliation {
  /** Assigned tasks the worker listed: their leases are extended. */
  held: TaskRef[];
  /**
   * Assigned tasks it did not list although they were sent before its previous heartbeat (so
   * that heartbeat, or this one, should have listed them): lost on the way or forgotten.
   */
  missing: TaskRef[];
  /** Tasks taken back earlier that the worker no longer runs: their slots are free again. */
  letGo: string[];
}

/**
 * Compare a heartbeat's list of running tasks with what the foreman assigned and took back.
 * A task assigned after the previous heartbeat may legitimately be missing (the heartbeat left
 * before the assignment arrived), so only older ones count as missing.
 */
export function reconcileHeartbeat(params: {
  assigned: Iterable<[string, Assignment]>;
  revoked: Iterable<[string, number]>;
  listed: readonly TaskRef[];
  previousHeartbeatAt: number;
  /** The assign_tasks messages the worker had read when it wrote the heartbeat, when it says. */
  assignmentsRead?: number | undefined;
}): HeartbeatReconciliation {
  const listed = new Map(params.listed.map((r) => [r.taskId, r.attempt]));
  const out: HeartbeatReconciliation = { held: [], missing: [], letGo: [] };
  for (const [taskId, attempt] of params.revoked) if (listed.get(taskId) !== attempt) out.letGo.push(taskId);
  for (const [taskId, a] of params.assigned) {
    if (listed.get(taskId) === a.attempt) out.held.push({ taskId, attempt: a.attempt });
    else if (isMissing(a, params.previousHeartbeatAt, params.assignmentsRead)) out.missing.push({ taskId, attempt: a.attempt });
  }
  return out;
}

/**
 * Whether a heartbeat that does not list an assigned task means the worker dropped it. Exactly,
 * when the worker says how many assignments it had read and the task's message is among them.
 * Otherwise (an older worker, a task adopted from a hello) by time: assigned before the previous
 * heartbeat arrived. That rule errs when several heartbeats, written before the assignment
 * reached the worker, are read at once by a foreman that was busy: all arrive after it.
 */
function isMissing(a: Assignment, previousHeartbeatAt: number, assignmentsRead: number | undefined): boolean {
  if (a.message !== undefined && assignmentsRead !== undefined) return a.message <= assignmentsRead;
  return a.assignedAt < previousHeartbeatAt;
}

/**
 * A returning worker's hello lists what it still runs (or finished without an acknowledgement);
 * the store lists what it holds for that worker. Tasks in both are adopted (the worker keeps
 * them, their leases are renewed); tasks only the store lists were lost and go back to the queue.
 */
export function reconcileHello(params: { storeHeld: readonly TaskRef[]; reported: readonly TaskRef[] }): { adopt: TaskRef[]; lost: TaskRef[] } {
  const reported = new Map(params.reported.map((r) => [r.taskId, r.attempt]));
  const out = { adopt: [] as TaskRef[], lost: [] as TaskRef[] };
  for (const t of params.storeHeld) (reported.get(t.taskId) === t.attempt ? out.adopt : out.lost).push(t);
  return out;
}

/**
 * Tasks a worker holds past their deadline plus a lease TTL: its own timeout should have
 * fired long before, so the worker is a zombie for those tasks and loses them.
 */
export function overdueAssignments(params: {
  assigned: Iterable<[string, Assignment]>;
  now: number;
  defaultTimeoutMs: number;
  leaseTtlMs: number;
}): TaskRef[] {
  const out: TaskRef[] = [];
  for (const [taskId, a] of params.assigned) {
    if (params.now > a.assignedAt + (a.timeoutMs ?? params.defaultTimeoutMs) + params.leaseTtlMs) out.push({ taskId, attempt: a.attempt });
  }
  return out;
}

/**
 * When a foreman that just started may reap expired leases. Leases that ran out while no
 * foreman was up belong to workers that are reconnecting right now, with their tasks still
 * running or finished and unacknowledged; reaping them at once would run that work twice. So
 * a fresh foreman waits one lease TTL, time for its workers to come back and claim their tasks.
 */
export function leaseReapingStartsAt(foremanStartedAt: number, leaseTtlMs: number): number {
  return foremanStartedAt + leaseTtlMs;
}
