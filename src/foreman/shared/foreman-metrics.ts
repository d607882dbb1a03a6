import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { JOB_STATES, TASK_STATES } from '../../protocol/index.ts';
import { FastHistogram } from './fast-histogram.ts';
import type { Store } from '../../store/store.ts';

/** Task types that get a label of their own; the rest are counted as "other" (label cardinality stays bounded). */
const MAX_TYPE_LABELS = 100;

/** Seconds, from a few milliseconds to an hour. */
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** The foreman's Prometheus metrics, on their own registry (several foremen can share a process in tests). */
export class ForemanMetrics {
  readonly registry = new Registry();
  readonly connectedWorkers = new Gauge({ name: 'crowdcompute_connected_workers', help: 'Workers connected to this foreman', registers: [this.registry] });
  readonly workersByKind = new Gauge({ name: 'crowdcompute_workers', help: 'Workers connected to this foreman, by kind (node, browser, other)', labelNames: ['kind'], registers: [this.registry] });
  readonly jobsSubmitted = new Counter({ name: 'crowdcompute_jobs_submitted_total', help: 'Jobs accepted', registers: [this.registry] });
  readonly tasksSubmitted = new Counter({ name: 'crowdcompute_tasks_submitted_total', help: 'Tasks accepted', registers: [this.registry] });
  readonly tasksDispatched = new Counter({ name: 'crowdcompute_tasks_dispatched_total', help: 'Task attempts handed to workers', registers: [this.registry] });
  readonly resultsCommitted = new Counter({ name: 'crowdcompute_results_committed_total', help: 'Task outcomes recorded', registers: [this.registry] });
  readonly resultsRejected = new Counter({ name: 'crowdcompute_results_rejected_total', help: 'Task outcomes refused (stale attempt, duplicate, cancelled)', registers: [this.registry] });
  readonly tasksFinished = new Counter({ name: 'crowdcompute_tasks_finished_total', help: 'Task attempts recorded by this foreman, by type and outcome (completed, failed, retried, cancelled)', labelNames: ['type', 'outcome'], registers: [this.registry] });
  readonly webhookDeliveries = new Counter({ name: 'crowdcompute_webhook_deliveries_total', help: 'Webhook attempts sent by this foreman, by outcome (delivered, retried, failed: given up)', labelNames: ['outcome'], registers: [this.registry] });
  readonly tasksRequeued = new Counter({ name: 'crowdcompute_tasks_requeued_total', help: 'Running tasks put back in the queue after their worker went away', registers: [this.registry] });
  readonly tasksRetried = new Counter({ name: 'crowdcompute_tasks_retried_total', help: 'Failed or cancelled tasks run again by a retry (SDK, REST, CLI, dashboard)', registers: [this.registry] });
  readonly tasksNeverStarted = new Counter({ name: 'crowdcompute_tasks_never_started_total', help: 'Tasks failed with CC_ERR_NO_WORKER: no worker started them before their queue deadline', registers: [this.registry] });
  readonly protocolErrors = new Counter({ name: 'crowdcompute_protocol_errors_total', help: 'Messages refused, by error code', labelNames: ['code'], registers: [this.registry] });
  readonly authRefusals = new Counter({ name: 'crowdcompute_auth_refusals_total', help: 'Requests, connections and hellos refused for their credentials', labelNames: ['reason'], registers: [this.registry] });
  readonly connectionsRefused = new Counter({ name: 'crowdcompute_connections_refused_total', help: 'Connections closed as they opened, by reason: per_address (--max-connections-per-address), max_connections (--max-connections, WebSocket)', labelNames: ['reason'], registers: [this.registry] });
  readonly securityEvents = new Counter({ name: 'crowdcompute_security_events_total', help: 'Security events written to the audit log', labelNames: ['event'], registers: [this.registry] });
  readonly storeUp = new Gauge({ name: 'crowdcompute_store_up', help: '1 while the store answers, 0 during an outage', registers: [this.registry] });
  readonly storeOutages = new Counter({ name: 'crowdcompute_store_outages_total', help: 'Store outages (unreachable, or unable to grow)', labelNames: ['kind'], registers: [this.registry] });
  readonly storeOutageSeconds = new Counter({ name: 'crowdcompute_store_outage_seconds_total', help: 'Seconds the store was out, summed over outages', registers: [this.registry] });
  readonly storeCommitSeconds = new FastHistogram({ name: 'crowdcompute_store_commit_seconds', help: 'Time of the store transactions on the hot path: claims and result commits', labelName: 'op', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry] });
  readonly prunedJobs = new Counter({ name: 'crowdcompute_pruned_jobs_total', help: 'Finished jobs pruned after their retention', registers: [this.registry] });
  readonly prunedTasks = new Counter({ name: 'crowdcompute_pruned_tasks_total', help: 'Tasks pruned with their jobs', registers: [this.registry] });
  readonly commitBatch = new Histogram({ name: 'crowdcompute_commit_batch_size', help: 'Outcomes per group commit', buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], registers: [this.registry] });
  // Observed several times per task in the dispatch loop: FastHistogram, not prom-client's Histogram.
  readonly queueWait = new FastHistogram({ name: 'crowdcompute_task_queue_wait_seconds', help: 'From ready to run (submitted, or due for a retry) to handed to a worker, by task type', labelName: 'type', buckets: SECONDS_BUCKETS, registers: [this.registry] });
  readonly executionTime = new FastHistogram({ name: 'crowdcompute_task_execution_seconds', help: 'Run time of recorded attempts as the worker measured it, by task type', labelName: 'type', buckets: SECONDS_BUCKETS, registers: [this.registry] });
  readonly endToEnd = new FastHistogram({ name: 'crowdcompute_task_latency_seconds', help: 'From submission to the recorded result of completed tasks, by task type', labelName: 'type', buckets: SECONDS_BUCKETS, registers: [this.registry] });
  readonly tasksReleased = new Counter({ name: 'crowdcompute_tasks_released_total', help: 'Delayed tasks (runAt / delay) this foreman moved from scheduled to the queue when their time came', registers: [this.registry] });
  readonly tasks = new Gauge({ name: 'crowdcompute_tasks', help: 'Tasks in the store, by state (read at each scrape)', labelNames: ['state'], registers: [this.registry] });
  readonly jobs = new Gauge({ name: 'crowdcompute_jobs', help: 'Jobs in the store, by state (read at each scrape)', labelNames: ['state'], registers: [this.registry] });
  readonly storeStatements = new Gauge({ name: 'crowdcompute_store_statements', help: 'Statements (round trips) this foreman has sent to its database server since it started (PostgreSQL)', registers: [this.registry] });
  readonly loopStalled = new Gauge({ name: 'crowdcompute_loop_stalled', help: '1 while a loop of the foreman makes no progress (one round stuck, or every round failing, for longer than --stall-after), by loop', labelNames: ['loop'], registers: [this.registry] });
  readonly loopPoisoned = new Counter({ name: 'crowdcompute_loop_poisoned_items_total', help: 'Items a loop set aside because they failed on their own (the rest of their batch went through), by loop', labelNames: ['loop'], registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'crowdcompute_queue_depth', help: 'Tasks waiting for a worker (read at each scrape)', registers: [this.registry] });
  readonly scheduleTicks = new Counter({ name: 'crowdcompute_schedule_ticks_total', help: 'Schedule ticks handled by this foreman, by outcome: fired, skipped (overlap), missed (catch-up), buffered (overlap buffer_one), lost (another foreman handled it first), error', labelNames: ['outcome'], registers: [this.registry] });
  readonly scheduleLateness = new Histogram({ name: 'crowdcompute_schedule_fire_lateness_seconds', help: 'From when a tick was due (its jitter included) to when this foreman fired it', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600], registers: [this.registry] });
  private readonly typeLabels = new Set<string>();

  constructor() {
    // Node's own metrics under their conventional names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, …).
    collectDefaultMetrics({ register: this.registry });
  }

  /** The label a task type is counted under: itself for the first types seen, then "other". */
  typeLabel(type: string): string {
    if (this.typeLabels.has(type)) return type;
    if (this.typeLabels.size >= MAX_TYPE_LABELS) return 'other';
    this.typeLabels.add(type);
    return type;
  }

  /** Read the store's counts into the gauges, before a scrape. A store that does not answer leaves them as they were. */
  async refresh(store: Store): Promise<void> {
    if (store.statementCount !== undefined) this.storeStatements.set(store.statementCount);
    const s = await store.stats().catch(() => null);
    if (!s) return;
    for (const state of TASK_STATES) this.tasks.set({ state }, s.tasks[state]);
    for (const state of JOB_STATES) this.jobs.set({ state }, s.jobs[state]);
    this.queueDepth.set(s.tasks.queued);
  }
}
