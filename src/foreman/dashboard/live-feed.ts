import type { Logger } from 'pino';
import type { FastifyReply } from 'fastify';
import { seesEveryOwner, type Principal } from '../../core/access.ts';
import type { JobView, StatsView, WorkerView } from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import type { JobEvents } from '../shared/job-events.ts';
import type { Service } from '../shared/service.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import { jobView, workerView } from '../http/rest-views.ts';
import { isStoreWideError } from '../../store/store-errors.ts';
import { statsFor, type StatsPicture } from '../http/stats-view.ts';
import type { SeriesPoint, ThroughputSeries } from '../shared/throughput-series.ts';
import type { LoopTracker } from '../shared/loop-health.ts';

/** How often viewers get the cards, the workers and the chart's latest bucket. */
const TICK_MS = 2_000;
/** How often changed jobs are sent, at most (a busy job changes thousands of times a second). */
const JOBS_MS = 500;
/** Most jobs read and sent per flush; the rest wait for the next. */
const JOBS_PER_FLUSH = 100;

/** One open dashboard: a server-sent-events stream and who is looking. */
interface Viewer {
  reply: FastifyReply;
  principal: Principal;
  /**
   * Whose jobs it may see: `ALL` (admin, --insecure), or the key id whose own it sees. Viewers
   * of one audience get the same events, so each event is made once per audience.
   */
  audience: string;
}

/** The audience of viewers who see every owner (no key id has this form). */
const ALL = '*';

/** What the feed sends: `{ type, data }`, one JSON object per event. */
type FeedEvent =
  | { type: 'stats'; data: StatsView }
  | { type: 'workers'; data: WorkerView[] }
  | { type: 'series'; data: SeriesPoint[] }
  | { type: 'point'; data: SeriesPoint }
  | { type: 'jobs'; data: JobView[] };

/**
 * The dashboard's live feed (GET /api/events, server-sent events). Nothing is computed while
 * nobody watches. While someone does: the cards and the workers every two seconds, the
 * throughput chart's latest bucket, and every job that changed (its counts, its state, its
 * handlers' progress), coalesced to at most two sends a second and read once for all viewers.
 *
 * Each viewer gets only what its key may see, as GET /api/stats and GET /api/jobs/{id} would
 * answer it: an admin everything; another key its own jobs, and in the statistics its own
 * owner row and jobs with the other owners summed. What that costs does not grow with each
 * viewer: the store and the scheduler are read once per tick for everyone, indexed by owner;
 * each distinct key among the viewers then costs the narrowing to its own jobs and one
 * serialization, and each viewer only the writes of text already made.
 */
export class LiveFeed implements Service {
  readonly name = 'dashboard feed';
  private readonly viewers = new Set<Viewer>();
  private readonly changed = new Set<string>();
  private tick: ReturnType<typeof setInterval> | null = null;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private unlisten: (() => void)[] = [];
  private readonly deps: {
    store: Store; registry: WorkerRegistry; events: JobEvents; series: ThroughputSeries; log: Logger;
    /** The statistics, read once per tick and narrowed per viewer. */
    stats: () => Promise<StatsPicture>;
    /** Where the feed's rounds are reported (/health sees a feed that is stuck or keeps failing). */
    tracker?: LoopTracker;
  };

  constructor(deps: LiveFeed['deps']) {
    this.deps = deps;
  }

  async start(): Promise<void> {
    this.unlisten = [
      this.deps.events.onChange((c) => this.jobChanged(c.jobId)),
      this.deps.events.onTaskProgress((jobId) => this.jobChanged(jobId)),
    ];
  }

  async stop(): Promise<void> {
    for (const u of this.unlisten) u();
    this.unlisten = [];
    if (this.tick) clearInterval(this.tick);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.tick = this.flushTimer = null;
    for (const v of this.viewers) v.reply.raw.end();
    this.viewers.clear();
  }

  /** Open a stream for a viewer: everything it needs at once, then changes as they happen. */
  async add(reply: FastifyReply, principal: Principal): Promise<void> {
    reply.hijack();
    const raw = reply.raw;
    // A stream that lasts while the page is open: the foreman's idle timeout (--idle-timeout) is
    // for requests, not for it. A viewer that goes away closes it; one that stops reading is cut below.
    raw.socket?.setTimeout(0);
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const viewer: Viewer = { reply, principal, audience: seesEveryOwner(principal) ? ALL : principal.kind === 'key' ? principal.keyId : '' };
    this.viewers.add(viewer);
    raw.on('close', () => {
      this.viewers.delete(viewer);
      if (this.viewers.size === 0 && this.tick) { clearInterval(this.tick); this.tick = null; }
    });
    // Tell the browser how long to wait before reconnecting, then the first picture.
    raw.write('retry: 2000\n\n');
    this.send(viewer, { type: 'series', data: this.deps.series.points() });
    await this.broadcastState([viewer]);
    this.tick ??= setInterval(() => void this.broadcastState([...this.viewers]), TICK_MS);
    this.tick.unref();
  }

  /** End the streams of viewers who hold one of these credentials (revoked); returns how many. */
  closeHolding(ids: ReadonlySet<string>): number {
    let n = 0;
    for (const v of [...this.viewers]) {
      if (v.principal.kind !== 'key' || !ids.has(v.principal.keyId)) continue;
      this.viewers.delete(v);
      v.reply.raw.end();
      n++;
    }
    return n;
  }

  /** How many dashboards are open. */
  get size(): number {
    return this.viewers.size;
  }

  private jobChanged(jobId: string): void {
    if (this.viewers.size === 0) return;
    this.changed.add(jobId);
    this.flushTimer ??= setTimeout(() => void this.flushJobs(), JOBS_MS);
  }

  private async flushJobs(): Promise<void> {
    this.flushTimer = null;
    const ids = [...this.changed].slice(0, JOBS_PER_FLUSH);
    for (const id of ids) this.changed.delete(id);
    if (this.changed.size > 0) this.flushTimer = setTimeout(() => void this.flushJobs(), JOBS_MS);
    if (this.viewers.size === 0 || ids.length === 0) return;
    const tracker = this.deps.tracker;
    tracker?.began();
    // Each job is read on its own: one that cannot be read (or shown) does not keep the others back.
    const read = await Promise.allSettled(ids.map(async (id) => {
      const j = await this.deps.store.jobGet(id);
      return j && { job: j, view: jobView(j, this.deps.events.runningProgress(j.id, j.counts.total)) };
    }));
    const jobs = read.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
    const failed = read.flatMap((r, i) => (r.status === 'rejected' ? [{ jobId: ids[i], err: r.reason as unknown }] : []));
    if (failed.length > 0 && jobs.length === 0 && failed.length === ids.length && isStoreWideError(failed[0].err)) {
      // The store is away: the viewers keep the last picture; these jobs are sent with their next change.
      tracker?.failed(failed[0].err);
      this.deps.log.debug({ err: failed[0].err }, 'dashboard feed: could not read changed jobs; they are sent with the next change');
      return;
    }
    for (const f of failed) this.deps.log.warn({ err: f.err, jobId: f.jobId }, 'dashboard feed: a changed job could not be read; the others are sent without it');
    tracker?.poisoned(failed.length);
    tracker?.succeeded();
    const frames = new Map<string, string | null>();
    for (const v of this.viewers) {
      let text = frames.get(v.audience);
      if (text === undefined) {
        // An admin's audience sees every job; a key's, its own (never those with no owner).
        const visible = v.audience === ALL ? jobs : jobs.filter((j) => j.job.owner === v.audience);
        frames.set(v.audience, text = visible.length ? frame({ type: 'jobs', data: visible.map((j) => j.view) }) : null);
      }
      if (text !== null) this.write(v, text);
    }
  }

  private async broadcastState(viewers: Viewer[]): Promise<void> {
    if (viewers.length === 0) return;
    this.deps.tracker?.began();
    try {
      const [picture, workers] = await Promise.all([this.deps.stats(), this.deps.store.workerList()]);
      const running = this.deps.registry.snapshot().runningByWorker;
      // The workers and the chart name no job or key: the same text for everyone.
      const shared = frame({ type: 'workers', data: workers.map((w) => workerView(w, running.get(w.id) ?? 0, this.deps.registry.lastSeen(w.id))) })
        + frame({ type: 'point', data: this.deps.series.latest() });
      const stats = new Map<string, string>();
      for (const v of viewers) {
        let text = stats.get(v.audience);
        if (text === undefined) stats.set(v.audience, text = frame({ type: 'stats', data: statsFor(picture, v.principal) }));
        this.write(v, text);
        this.write(v, shared);
      }
      this.deps.tracker?.succeeded();
    } catch (err) {
      this.deps.tracker?.failed(err);
      // The store is away: the viewers keep the last picture; the page shows the feed is stale.
      this.deps.log.debug({ err }, 'dashboard feed: could not read the state');
    }
  }

  private send(v: Viewer, event: FeedEvent): void {
    this.write(v, frame(event));
  }

  private write(v: Viewer, text: string): void {
    const raw = v.reply.raw;
    if (raw.writableEnded) return;
    // A viewer that does not read (a sleeping laptop) is dropped rather than buffered for;
    // its browser reconnects and starts from a fresh picture.
    if (raw.writableLength > 4 * 1024 * 1024) { raw.end(); this.viewers.delete(v); return; }
    raw.write(text);
  }
}

/** One server-sent event. */
function frame(event: FeedEvent): string {
  return `data: ${JSON.stringify(event)}\n\n`;
}
