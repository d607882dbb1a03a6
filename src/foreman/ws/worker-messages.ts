import type { Logger } from 'pino';
import { CrowdComputeError, PROTOCOL_VERSION, type TaskOutcome, type WorkerInbound } from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { JobEvents } from '../jobs/job-events.ts';
import type { Peer } from '../peer.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import type { Authenticator } from '../auth/authenticator.ts';

/** What the foreman tells a worker in its welcome. */
export interface WorkerMessagesOptions {
  foremanId: string;
  heartbeatIntervalMs: number;
  leaseTtlMs: number;
  maxPayloadBytes: number;
}

/**
 * What workers say, and what it does: the hello handshake, heartbeats, results, progress,
 * drain and hand-back. Sessions are the registry's; outcomes go to the dispatcher's group commit.
 */
export class WorkerMessages {
  private readonly deps: { store: Store; registry: WorkerRegistry; dispatcher: Dispatcher; events: JobEvents; log: Logger; auth: Authenticator | null };
  private readonly options: WorkerMessagesOptions;

  constructor(deps: WorkerMessages['deps'], options: WorkerMessagesOptions) {
    this.deps = deps;
    this.options = options;
  }

  /** Handle one worker message from `peer`. Errors thrown are answered to the peer. */
  handle(peer: Peer, msg: WorkerInbound): void | Promise<void> {
    const { registry, dispatcher, events, log } = this.deps;
    switch (msg.type) {
      case 'hello':
        return this.hello(peer, msg);
      case 'heartbeat':
        // A heartbeat's store work failing is the foreman's problem, not the worker's: logged, not answered.
        return registry.heartbeat(peer, msg.running ?? [], (held) => peer.send({ type: 'heartbeat_ack', held }))
          .catch((err: unknown) => {
            if (err instanceof CrowdComputeError && /STORE_/.test(err.code)) return; // the outage is logged once, by the store's health
            if (err instanceof CrowdComputeError) throw err;
            log.error({ err, conn: peer.id }, 'heartbeat handling failed');
          });
      case 'worker_draining':
        registry.draining(peer);
        return;
      case 'release_tasks':
        return registry.release(peer, msg.tasks, msg.reason ?? 'released')
          .catch((err: unknown) => { if (err instanceof CrowdComputeError) throw err; log.error({ err, conn: peer.id }, 'hand-back failed'); });
      case 'worker_ready':
        registry.ready(peer, msg.capacity);
        return;
      case 'task_result': {
        const { type: _t, ...outcome } = msg;
        dispatcher.acceptOutcomes(peer, [outcome as TaskOutcome]);
        return;
      }
      case 'task_results':
        dispatcher.acceptOutcomes(peer, msg.results);
        return;
      case 'task_progress': {
        const jobId = registry.heldJob(peer, msg.taskId, msg.attempt);
        if (jobId === null) return; // progress of a task this worker no longer holds
        void this.deps.store.taskProgressSet({ taskId: msg.taskId, attempt: msg.attempt, progress: msg.progress, message: msg.message ?? null })
          .catch((err: unknown) => log.warn({ err, jobId, taskId: msg.taskId }, 'could not record task progress'));
        events.taskProgress(jobId, msg.taskId, msg.progress, msg.message, msg.data);
        return;
      }
    }
  }

  private async hello(peer: Peer, hello: Extract<WorkerInbound, { type: 'hello' }>): Promise<void> {
    const major = (v: string) => v.split('.')[0];
    if (major(hello.protocol) !== major(PROTOCOL_VERSION)) {
      peer.send({ type: 'error', ...new CrowdComputeError('CC_ERR_PROTOCOL_VERSION', `worker ${hello.workerId} speaks protocol ${hello.protocol}, this foreman speaks ${PROTOCOL_VERSION}`).toJSON() });
      peer.close(4002, 'protocol version mismatch');
      return;
    }
    const auth = this.deps.auth;
    if (auth) {
      try {
        const who = await auth.worker(hello, { host: peer.host, address: peer.remote });
        if (who.kind === 'worker') peer.credentials.add(who.tokenId);
      } catch (err) {
        // A worker that cannot prove its token gets the reason, then the door.
        peer.send({ type: 'error', ...(err as CrowdComputeError).toJSON() });
        peer.close(4401, (err as Error).message.slice(0, 120));
        return;
      }
    }
    if (!(await this.deps.registry.admit(peer, hello))) return;
    const o = this.options;
    peer.send({ type: 'welcome', protocol: PROTOCOL_VERSION, foremanId: o.foremanId, workerId: hello.workerId,
      heartbeatIntervalMs: o.heartbeatIntervalMs, leaseTtlMs: o.leaseTtlMs, maxPayloadBytes: o.maxPayloadBytes });
  }
}
