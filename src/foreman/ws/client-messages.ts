import type { ClientInbound } from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import type { JobEvents } from '../shared/job-events.ts';
import type { JobService } from '../jobs/job-service.ts';
import type { Peer } from '../shared/peer.ts';

/**
 * What clients say over the WebSocket: submit a job (and follow it), append to an open one, subscribe to one, cancel
 * one, each with the access rules of the connection's principal (the API key of its upgrade):
 * the same as over REST, through the job service.
 */
export class ClientMessages {
  private readonly deps: { store: Store; jobs: JobService; events: JobEvents };

  constructor(deps: ClientMessages['deps']) {
    this.deps = deps;
  }

  /** Handle one client message from `peer`. Errors thrown are answered to the peer with the request's id. */
  handle(peer: Peer, msg: ClientInbound): Promise<void> {
    switch (msg.type) {
      case 'submit_job': return this.submit(peer, msg);
      case 'append_tasks': {
        const { type: _, requestId, jobId, ...part } = msg;
        return this.deps.jobs.append(jobId, part, peer.principal).then((res) => {
          peer.send({ type: 'tasks_appended', requestId, jobId, totalTasks: res.job.counts.total, argCount: res.job.argCount, sealed: !res.job.open, deduplicated: res.deduplicated });
        });
      }
      case 'subscribe_job':
        return this.subscribe(peer, msg.jobId);
      case 'cancel_job':
        return this.deps.jobs.cancel(msg.jobId, peer.principal).then((job) => {
          peer.send({ type: 'cancel_ack', jobId: job.id, state: job.state, ...(msg.requestId ? { requestId: msg.requestId } : {}) });
        });
    }
  }

  private async submit(peer: Peer, msg: Extract<ClientInbound, { type: 'submit_job' }>): Promise<void> {
    const { events, jobs } = this.deps;
    const subscribe = msg.subscribe !== false;
    // Subscribe before the insert commits: with several foremen the job can finish (and its
    // completion arrive) before the submission returns.
    let early: string | null = null;
    try {
      const accepted = await jobs.submit(msg.job, peer.principal, (jobId) => { if (subscribe) { early = jobId; events.subscribe(jobId, peer); } });
      if (subscribe && early !== accepted.job.id) {
        if (early) events.unsubscribe(early, peer);
        events.subscribe(accepted.job.id, peer);
      }
      peer.send({ type: 'job_accepted', requestId: msg.requestId, jobId: accepted.job.id, totalTasks: accepted.job.counts.total,
        position: accepted.position, deduplicated: accepted.deduplicated, ...(accepted.warnings.length ? { warnings: accepted.warnings } : {}) });
      // A deduplicated job may have finished long ago: answer now rather than never.
      if (accepted.deduplicated && subscribe) await this.sendState(peer, accepted.job.id);
    } catch (err) {
      if (early) events.unsubscribe(early, peer);
      throw err;
    }
  }

  private async subscribe(peer: Peer, jobId: string): Promise<void> {
    await this.deps.jobs.visibleJob(jobId, peer.principal);
    this.deps.events.subscribe(jobId, peer);
    await this.sendState(peer, jobId);
  }

  /** Tell a new subscriber where the job stands: finished (with results) or in progress. */
  private async sendState(peer: Peer, jobId: string): Promise<void> {
    const job = await this.deps.jobs.visibleJob(jobId, peer.principal);
    if (job.completedAt !== null) await this.deps.events.sendCompletedTo(peer, { jobId, state: job.state, counts: job.counts, finished: true });
    else peer.send({ type: 'job_progress', jobId, state: job.state, counts: job.counts });
  }
}
