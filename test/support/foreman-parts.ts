/**
 * The foreman's parts on an in-memory SQLite store, without sockets, for unit tests: peers
 * that record what is sent to them, and a registry, dispatcher and job service wired as the
 * foreman wires them.
 */
import { pino } from 'pino';
import type { Outbound } from '../../src/protocol/index.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { ForemanMetrics } from '../../src/foreman/shared/foreman-metrics.ts';
import { JobEvents } from '../../src/foreman/shared/job-events.ts';
import { JobService } from '../../src/foreman/jobs/job-service.ts';
import { Dispatcher } from '../../src/foreman/dispatch/dispatcher.ts';
import type { WorkAnnouncement } from '../../src/foreman/shared/work-announcement.ts';
import { WorkerRegistry } from '../../src/foreman/workers/worker-registry.ts';
import type { Peer } from '../../src/foreman/shared/peer.ts';
import type { Principal } from '../../src/core/access.ts';

let nextPeer = 0;

/** A principal that may do anything (the foreman under --insecure). */
export const ANY: Principal = { kind: 'insecure' };

/** A peer that keeps what it is sent. */
export class RecordingPeer implements Peer {
  readonly id = `p${++nextPeer}`;
  readonly remote = 'test';
  readonly host = 'localhost:8000';
  principal: Principal = { kind: 'insecure' };
  readonly credentials = new Set<string>();
  closed = false;
  closedWith: { code: number; reason: string } | null = null;
  readonly sent: Outbound[] = [];
  private waiters: { pred: (m: Outbound) => boolean; resolve: (m: Outbound) => void }[] = [];

  send(message: Outbound): void {
    if (this.closed) return;
    this.sent.push(message);
    for (const w of [...this.waiters]) if (w.pred(message)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(message); }
  }

  flush(): void {}

  close(code: number, reason: string): void {
    this.closed = true;
    this.closedWith = { code, reason };
  }

  /** Messages of one type sent so far. */
  of<T extends Outbound['type']>(type: T): Extract<Outbound, { type: T }>[] {
    return this.sent.filter((m): m is Extract<Outbound, { type: T }> => m.type === type);
  }

  /** The next message matching `pred` (already sent, or still to come). */
  next<T extends Outbound['type']>(type: T, pred: (m: Extract<Outbound, { type: T }>) => boolean = () => true): Promise<Extract<Outbound, { type: T }>> {
    const seen = this.of(type).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${type} within 5 s; sent: ${JSON.stringify(this.sent).slice(0, 400)}`)), 5_000);
      this.waiters.push({ pred: (m) => m.type === type && pred(m as never), resolve: (m) => { clearTimeout(t); resolve(m as never); } });
    });
  }
}

/** The registry, dispatcher, events and job service of a foreman on an in-memory SQLite store. */
export interface ForemanParts {
  store: Store;
  events: JobEvents;
  registry: WorkerRegistry;
  dispatcher: Dispatcher;
  jobs: JobService;
  metrics: ForemanMetrics;
  /** How many times the registry or the job service announced work. */
  announced(): number;
  close(): Promise<void>;
}

/** Options of the parts (small lease and timeouts by default, so tests are quick). */
export interface PartsOptions {
  leaseTtlMs?: number;
  maxLostAttempts?: number;
  defaultTimeoutMs?: number;
  maxPayloadBytes?: number;
  maxArgs?: number;
  startDispatcher?: boolean;
  /** The registry's clock. */
  clock?: () => number;
}

export async function foremanParts(options: PartsOptions = {}): Promise<ForemanParts> {
  const log = pino({ level: 'silent' });
  const store = await openStore('sqlite::memory:');
  const metrics = new ForemanMetrics();
  const events = new JobEvents(store, log, 1024 * 1024);
  let announcements = 0;
  let dispatcher: Dispatcher | null = null;
  const workAvailable = (work?: WorkAnnouncement) => { announcements++; dispatcher?.announceWork(work ?? { requiring: true }); };
  const leaseTtlMs = options.leaseTtlMs ?? 10_000;
  const registry = new WorkerRegistry({ store, events, metrics, log },
    { foremanId: 'f-test', leaseTtlMs, maxLostAttempts: options.maxLostAttempts ?? 5, defaultTimeoutMs: options.defaultTimeoutMs ?? 60_000, ...(options.clock ? { clock: options.clock } : {}) },
    { workAvailable, lookAgain: (id) => dispatcher?.lookAgain(id) });
  dispatcher = new Dispatcher({ store, registry, events, metrics, log }, { leaseTtlMs, sweepIntervalMs: 60_000 });
  const jobs = new JobService({ store, registry, events, metrics, log, workAvailable },
    { maxPayloadBytes: options.maxPayloadBytes ?? 1024 * 1024, maxArgs: options.maxArgs ?? 1000, maxTasksPerJob: options.maxArgs ?? 1000, defaultTimeoutMs: options.defaultTimeoutMs ?? 60_000, idempotencyTtlMs: 60_000, defaultRetentionMs: 3_600_000, defaultQueueTimeoutMs: null });
  if (options.startDispatcher !== false) await dispatcher.start();
  const d = dispatcher;
  return {
    store, events, registry, dispatcher: d, jobs, metrics,
    announced: () => announcements,
    close: async () => { await d.stop(); await events.stop(); await store.close(); },
  };
}
