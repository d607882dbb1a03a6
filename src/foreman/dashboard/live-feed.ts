import type { Logger } from 'pino';
import type { FastifyReply } from 'fastify';
import { mayAccessJob, type Principal } from '../../core/access.ts';
import type { JobView, StatsView, WorkerView } from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import type { JobEvents } from '../jobs/job-events.ts';
import type { Service } from '../service.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import { jobView, workerView } from '../http/rest-views.ts';
import type { SeriesPoint, ThroughputSeries } from './throughput-series.ts';

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
}

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
 * Each viewer gets only the jobs its key may see.
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
    stats: () => Promise<StatsView>;
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
    const viewer: Viewer = { reply, principal };
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
    try {
      const jobs = (await Promise.all(ids.map((id) => this.deps.store.jobGet(id)))).filter((j) => j !== null);
      for (const v of this.viewers) {
        const visible = jobs.filter((j) => mayAccessJob(v.principal, j.owner));
        if (visible.length) this.send(v, { type: 'jobs', data: visible.map((j) => jobView(j, this.deps.events.runningProgress(j.id, j.counts.total))) });
      }
    } catch (err) {
      this.deps.log.debug({ err }, 'dashboard feed: could not read changed jobs; they are sent with the next change');
    }
  }

  private async broadcastState(viewers: Viewer[]): Promise<void> {
    if (viewers.length === 0) return;
    try {
      const [stats, workers] = await Promise.all([this.deps.stats(), this.deps.store.workerList()]);
      const running = this.deps.registry.snapshot().runningByWorker;
      const views = workers.map((w) => workerView(w, running.get(w.id) ?? 0));
      const point = this.deps.series.latest();
      for (const v of viewers) {
        this.send(v, { type: 'stats', data: stats });
        this.send(v, { type: 'workers', data: views });
        this.send(v, { type: 'point', data: point });
      }
    } catch (err) {
      // The store is away: the viewers keep the last picture; the page shows the feed is stale.
      this.deps.log.debug({ err }, 'dashboard feed: could not read the state');
    }
  }

  private send(v: Viewer, event: FeedEvent): void {
    const raw = v.reply.raw;
    if (raw.writableEnded) return;
    // A viewer that does not read (a sleeping laptop) is dropped rather than buffered for;
    // its browser reconnects and starts from a fresh picture.
    if (raw.writableLength > 4 * 1024 * 1024) { raw.end(); this.viewers.delete(v); return; }
    raw.write(`data: ${JSON.stringify(event)}\n\n`);
  }
}
