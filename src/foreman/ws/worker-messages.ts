import type { Logger } from 'pino';
import { CrowdComputeError, PROTOCOL_VERSION, TERMINAL_TASK_STATES, type TaskOutcome, type WorkerInbound } from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { JobEvents } from '../shared/job-events.ts';
import type { Peer } from '../shared/peer.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import type { Authenticator } from '../auth/authenticator.ts';

/** What the foreman tells a worker in its welcome. */
export interface WorkerMessagesOptions {
  foremanId: string;
  heartbeatIntervalMs: number;
  leaseTtlMs: number;
  maxPayloadBytes: number;
  /** Largest artifact or checkpoint a batch handler may record. */
  maxArtifactBytes: number;
  /** Browser tabs (join links): their heartbeat period, lease, and most tasks at once. */
  browserHeartbeatIntervalMs: number;
  browserLeaseTtlMs: number;
  maxTasksPerBrowser: number;
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
        return registry.heartbeat(peer, msg.running ?? [], (held) => peer.send({ type: 'heartbeat_ack', held }), msg.assignments)
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
        registry.ready(peer, msg.capacity, this.options.maxTasksPerBrowser);
        return;
      case 'task_result': {
        const { type: _t, ...outcome } = msg;
        dispatcher.acceptOutcomes(peer, [outcome as TaskOutcome]);
        return;
      }
      case 'task_results':
        dispatcher.acceptOutcomes(peer, msg.results);
        return;
      case 'task_record':
        return this.record(peer, msg);
      case 'pull_artifacts':
        return this.pull(peer, msg);
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

  /**
   * A batch handler's batch, artifacts and checkpoint: recorded only while this worker holds
   * that attempt. The ack says whether it was; a worker told "no" stops working on the task.
   */
  private async record(peer: Peer, msg: Extract<WorkerInbound, { type: 'task_record' }>): Promise<void> {
    const { registry, store } = this.deps;
    const jobId = await this.heldJob(peer, msg.taskId, msg.attempt);
    if (jobId === null) {
      peer.send({ type: 'task_record_ack', requestId: msg.requestId, recorded: false });
      return;
    }
    const limit = this.options.maxArtifactBytes;
    const tooBig = (what: string, value: unknown) => {
      const size = Buffer.byteLength(JSON.stringify(value) ?? 'null');
      if (size > limit) {
        throw new CrowdComputeError('CC_ERR_PAYLOAD_TOO_LARGE', `${what} of task ${msg.taskId} (job ${jobId}) is ${size} bytes; the foreman records at most ${limit} (--max-artifact-size)`,
          { limit, actual: size });
      }
    };
    for (const a of msg.artifacts ?? []) tooBig(`the artifact of batch "${a.batchUid}"`, a.data);
    if (msg.checkpoint !== undefined) tooBig('the checkpoint', msg.checkpoint);
    const { recorded, released } = await store.taskRecord({
      taskId: msg.taskId, attempt: msg.attempt, workerId: registry.workerIdOf(peer), now: Date.now(),
      ...(msg.batch ? { batch: { uid: msg.batch.uid, metrics: msg.batch.metrics ?? null } } : {}),
      ...(msg.artifacts ? { artifacts: msg.artifacts } : {}),
      ...(msg.checkpoint !== undefined ? { checkpoint: msg.checkpoint } : {}),
      ...(msg.artifactsComplete ? { artifactsComplete: true } : {}),
    });
    peer.send({ type: 'task_record_ack', requestId: msg.requestId, recorded });
    // Graph nodes waiting for these artifacts may start now.
    if (released > 0) this.deps.dispatcher.announceWork({ requiring: true });
  }

  /**
   * The job of a task this worker holds under that attempt, or null. Tasks a worker kept across
   * a foreman's restart were adopted from its hello without their job, which the store knows.
   */
  private async heldJob(peer: Peer, taskId: string, attempt: number): Promise<string | null> {
    const jobId = this.deps.registry.heldJob(peer, taskId, attempt);
    if (jobId !== '') return jobId;
    return (await this.deps.store.taskGet(taskId))?.jobId ?? null;
  }

  /**
   * A graph node's input adapter reads its upstream nodes' artifacts. Only for the attempt this
   * worker holds, and only nodes of that task's graph. The upstream nodes' states are read
   * before the artifacts, so "done" with less than a page means everything has been read.
   */
  private async pull(peer: Peer, msg: Extract<WorkerInbound, { type: 'pull_artifacts' }>): Promise<void> {
    const { store } = this.deps;
    const jobId = await this.heldJob(peer, msg.taskId, msg.attempt);
    if (jobId === null) {
      throw new CrowdComputeError('CC_ERR_STALE_ATTEMPT', `task ${msg.taskId} attempt ${msg.attempt} is not this worker's; it may not read its graph's artifacts`);
    }
    const plan = await store.jobGraph(jobId);
    const nodes = msg.fromNodes.map((id) => plan?.nodes.find((n) => n.nodeId === id));
    const missing = msg.fromNodes.filter((_, i) => !nodes[i]);
    if (!plan || missing.length > 0) {
      throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `job ${jobId} ${plan ? `has no node ${missing.map((m) => `"${m}"`).join(', ')}` : 'is not a graph'}`);
    }
    const upstream = nodes.map((n) => n!);
    const states = await Promise.all(upstream.map((n) => store.taskGet(n.taskId)));
    const ended = states.every((t) => t !== null && TERMINAL_TASK_STATES.has(t.state));
    const rows = await store.artifactList({ jobId, taskIds: upstream.map((n) => n.taskId), afterSeq: msg.afterSeq, limit: msg.limit });
    // Stay well inside one frame: a page ends early when it would grow past half of it.
    const budget = Math.floor(this.options.maxPayloadBytes / 2);
    const nodeOf = new Map(upstream.map((n) => [n.taskId, n.nodeId]));
    const artifacts: { seq: number; nodeId: string; batchUid: string; data: unknown }[] = [];
    let bytes = 0;
    for (const a of rows) {
      if (artifacts.length > 0 && bytes + a.size > budget) break;
      bytes += a.size;
      artifacts.push({ seq: a.seq, nodeId: nodeOf.get(a.taskId)!, batchUid: a.batchUid, data: a.data });
    }
    peer.send({ type: 'artifacts_pulled', requestId: msg.requestId, artifacts, upstreamDone: ended && artifacts.length === rows.length && rows.length < msg.limit });
  }

  private async hello(peer: Peer, hello: Extract<WorkerInbound, { type: 'hello' }>): Promise<void> {
    const major = (v: string) => v.split('.')[0];
    if (major(hello.protocol) !== major(PROTOCOL_VERSION)) {
      peer.send({ type: 'error', ...new CrowdComputeError('CC_ERR_PROTOCOL_VERSION', `worker ${hello.workerId} speaks protocol ${hello.protocol}, this foreman speaks ${PROTOCOL_VERSION}`).toJSON() });
      peer.close(4002, 'protocol version mismatch');
      return;
    }
    const auth = this.deps.auth;
    const o = this.options;
    let session: { kind: 'node' | 'browser'; leaseTtlMs: number; tokenId: string | null } = { kind: 'node', leaseTtlMs: o.leaseTtlMs, tokenId: null };
    const refuse = (err: CrowdComputeError) => {
      // A worker that cannot prove its token (or may not come in) gets the reason, then the door.
      peer.send({ type: 'error', ...err.toJSON() });
      peer.close(4401, err.message);
    };
    if (auth) {
      let who;
      try {
        who = await auth.worker(hello, { host: peer.host, address: peer.remote });
      } catch (err) {
        refuse(err as CrowdComputeError);
        return;
      }
      if (who.kind === 'worker') {
        peer.credentials.add(who.tokenId);
        session = { ...session, tokenId: who.tokenId };
        if (who.join) {
          // A tab that came through a join link: map tasks only, a few at a time, short leases.
          const cap = who.join.maxWorkers;
          if (cap !== null && this.deps.registry.connectedWith(who.tokenId) >= cap) {
            refuse(new CrowdComputeError('CC_ERR_UNAUTHORIZED', `this join link admits ${cap} browser${cap === 1 ? '' : 's'} at once, and all are taken; try again later`));
            return;
          }
          hello = { ...hello, patterns: [], capacity: Math.min(hello.capacity, o.maxTasksPerBrowser) };
          session = { kind: 'browser', leaseTtlMs: o.browserLeaseTtlMs, tokenId: who.tokenId };
        }
      }
    }
    if (!auth && hello.resources?.runtime?.startsWith('browser')) {
      // With authentication off there is no join link to tell a tab by; a tab says what it is,
      // and gets a tab's limits all the same.
      hello = { ...hello, patterns: [], capacity: Math.min(hello.capacity, o.maxTasksPerBrowser) };
      session = { kind: 'browser', leaseTtlMs: o.browserLeaseTtlMs, tokenId: null };
    }
    if (!(await this.deps.registry.admit(peer, hello, session))) return;
    const browser = session.kind === 'browser';
    peer.send({ type: 'welcome', protocol: PROTOCOL_VERSION, foremanId: o.foremanId, workerId: hello.workerId,
      heartbeatIntervalMs: browser ? o.browserHeartbeatIntervalMs : o.heartbeatIntervalMs, leaseTtlMs: session.leaseTtlMs, maxPayloadBytes: o.maxPayloadBytes });
  }
}
