import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The foreman's Prometheus metrics, on their own registry (several foremen can share a process in tests). */
export class ForemanMetrics {
  readonly registry = new Registry();
  readonly connectedWorkers = new Gauge({ name: 'crowdcompute_connected_workers', help: 'Workers connected to this foreman', registers: [this.registry] });
  readonly jobsSubmitted = new Counter({ name: 'crowdcompute_jobs_submitted_total', help: 'Jobs accepted', registers: [this.registry] });
  readonly tasksSubmitted = new Counter({ name: 'crowdcompute_tasks_submitted_total', help: 'Tasks accepted', registers: [this.registry] });
  readonly tasksDispatched = new Counter({ name: 'crowdcompute_tasks_dispatched_total', help: 'Task attempts handed to workers', registers: [this.registry] });
  readonly resultsCommitted = new Counter({ name: 'crowdcompute_results_committed_total', help: 'Task outcomes recorded', registers: [this.registry] });
  readonly resultsRejected = new Counter({ name: 'crowdcompute_results_rejected_total', help: 'Task outcomes refused (stale attempt, duplicate, cancelled)', registers: [this.registry] });
  readonly tasksRequeued = new Counter({ name: 'crowdcompute_tasks_requeued_total', help: 'Running tasks put back in the queue after their worker went away', registers: [this.registry] });
  readonly protocolErrors = new Counter({ name: 'crowdcompute_protocol_errors_total', help: 'Messages refused', labelNames: ['code'], registers: [this.registry] });
  readonly authRefusals = new Counter({ name: 'crowdcompute_auth_refusals_total', help: 'Requests, connections and hellos refused for their credentials', labelNames: ['reason'], registers: [this.registry] });
  readonly securityEvents = new Counter({ name: 'crowdcompute_security_events_total', help: 'Security events written to the audit log', labelNames: ['event'], registers: [this.registry] });
  readonly storeUp = new Gauge({ name: 'crowdcompute_store_up', help: '1 while the store answers, 0 during an outage', registers: [this.registry] });
  readonly storeOutages = new Counter({ name: 'crowdcompute_store_outages_total', help: 'Store outages (unreachable, or unable to grow)', labelNames: ['kind'], registers: [this.registry] });
  readonly storeOutageSeconds = new Counter({ name: 'crowdcompute_store_outage_seconds_total', help: 'Seconds the store was out, summed over outages', registers: [this.registry] });
  readonly prunedJobs = new Counter({ name: 'crowdcompute_pruned_jobs_total', help: 'Finished jobs pruned after their retention', registers: [this.registry] });
  readonly prunedTasks = new Counter({ name: 'crowdcompute_pruned_tasks_total', help: 'Tasks pruned with their jobs', registers: [this.registry] });
  readonly commitBatch = new Histogram({ name: 'crowdcompute_commit_batch_size', help: 'Outcomes per group commit', buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'crowdcompute_foreman_' });
  }
}
