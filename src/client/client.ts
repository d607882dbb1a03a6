/**
 * The client SDK: submit map jobs and named tasks, await ordered results, follow progress,
 * list, inspect and cancel. Submissions and completion travel over one WebSocket (pushed,
 * no polling); queries use the REST API.
 *
 * Every submission carries an idempotency key (the caller's, or a random one), so that a
 * submission in flight when the connection drops is sent again after the reconnect without
 * creating a second job.
 */
import { pino, type Logger } from 'pino';
import { withOptions } from '../host/ws-options.ts';
import { Agent, fetch as fetchWithAgent } from 'undici';
import { localCredentialsAt } from '../host/local-credentials.ts';
import {
  CrowdComputeError, camelKeys, camelKeysOf, snakeKeysOf, JobSpecSchema, ScheduleSpecSchema, SchedulePatchSchema,
  type ScheduleSpec, type SchedulePatch, type ScheduleView, type ScheduleRunView, type ScheduleBackfillView, type ScheduleTriggerView,
  type CamelKeys, type HealthView, type TaskArtifactsView, type TaskBatchesView, type GraphJobSpec, type GraphView, type TaskState, type FileView, type JobResultsView, type JobAppendView, type JobSpec, type JobState, type JobView, type NamedTaskSpec,
  type JobRetryView, type KeyView, type FailedListView, type FailedRetryView, type FailedGroupView, type WebhookDeliveryView, type Outbound, type RateLimitView, type StatsView, type TaskView, type WireError, type WorkerDetailView, type WorkerView,
} from '../protocol/index.ts';
import { ForemanLink } from '../link/foreman-link.ts';
import { retryDelayMs } from '../core/retry.ts';
import { planGraph } from '../core/graph.ts';
import { chooseChunkSize } from '../core/chunking.ts';
import { mapJobSpec, taskJobSpec, wireSpec, type JobOptions, type MapFunction, type MapOptions, type SdkJobSpec, type TaskOptions } from './job-specs.ts';
import { OpenJob, type SendPart } from './open-job.ts';
import { SpanKind, SpanStatusCode, context } from '@opentelemetry/api';
import { ATTR, traceContextOf, tracer } from '../tracing/trace-api.ts';
import { GraphHandle, JobHandle, TaskHandle, type JobOutcome, type JobProgress } from './job-handle.ts';

/** How a client reaches its foreman(s). */
export interface ClientOptions {
  /** Foreman base URL(s): http://localhost:8000 (ws://host:port/ws also accepted). Several = fail over. */
  url: string | string[];
  /**
   * The API key (`cck_…`) sent as `Authorization: Bearer` on every request and on the
   * WebSocket. Default: `CROWDCOMPUTE_API_KEY`, else the admin key a foreman on this machine
   * left in the local credentials file for its URL.
   */
  apiKey?: string;
  /** Trust this CA certificate (PEM) for https:// and wss:// foremen with a private certificate. */
  ca?: string | Buffer;
  /** Base reconnect delay of the WebSocket. Default 500 ms. */
  reconnectIntervalMs?: number;
  /** How long a call waits for a connection before failing with CC_ERR_CONNECTION. Default 10 s. */
  connectTimeoutMs?: number;
  logger?: Logger;
  logLevel?: string;
}

export type { JobOptions, MapOptions, TaskOptions, MapFunction, SdkJobSpec };

/** Jobs of more tasks or arguments than this are sent open, in parts. */
const STREAM_ABOVE_ITEMS = 20_000;
/** Results per page when reading a job's results. */
const RESULTS_PAGE = 10_000;

/** A page of a job's results, as `getJobResults` and `resultPages` return it. */
export interface ResultsPage {
  jobId: string;
  state: JobState;
  /** The index of `results[0]` (an argument index for a map job). */
  offset: number;
  /** Results the job has in all. */
  total: number;
  /** Where the next page starts; null at the end. */
  nextOffset: number | null;
  results: unknown[];
  /** Failures among this page's results. */
  failures: JobOutcome['failures'];
}

interface PendingSubmit {
  message: { type: 'submit_job'; requestId: string; job: JobSpec };
  resolve: (h: JobHandle<any>) => void;
  reject: (e: Error) => void;
  /** When it was first sent, and how often the foreman's store was out for it. */
  firstSentAt: number;
  outages: number;
}

/** A job as the REST API shows it, with camelCase keys. */
export type JobInfo = CamelKeys<JobView>;

/** An announcement of a job's end to its webhook, with its attempts (camelCase keys; the attempts as the REST API writes them). */
export type WebhookDeliveryInfo = CamelKeys<WebhookDeliveryView>;

/** One tick of a schedule and what became of it (camelCase keys). */
export type ScheduleRunInfo = CamelKeys<ScheduleRunView>;

/** A schedule as the REST API shows it, camelCased: its job is a job spec as `createSchedule` takes it. */
export type ScheduleInfo = Omit<CamelKeys<ScheduleView>, 'job' | 'catchUp' | 'recentRuns'> & {
  job: JobSpec;
  catchUp: { windowMs: number; policy: ScheduleView['catch_up']['policy'] };
  recentRuns: ScheduleRunInfo[];
};

/** A schedule view with camelCase keys, its job spec too. */
function scheduleInfo(v: ScheduleView): ScheduleInfo {
  return {
    ...camelKeys(v),
    job: camelKeysOf(JobSpecSchema, v.job),
    catchUp: { windowMs: v.catch_up.window_ms, policy: v.catch_up.policy },
    recentRuns: v.recent_runs.map((r) => camelKeys(r)),
  };
}

/** Failed-for-good tasks of one type with one error (camelCase keys of GET /api/failed's groups). */
export type FailedGroupInfo = CamelKeys<FailedGroupView>;

/** Which failed-for-good tasks `listFailed` and `retryFailed` take; every field narrows. */
export interface FailedFilter {
  /** The task type (a map job's tasks have type "map"). */
  type?: string;
  /** The error code, or the error's name when it has none. */
  errorCode?: string;
  /** The error message's first line, exactly as a group shows it. */
  message?: string;
  jobId?: string;
  /** Failed at or after this time (a Date, epoch ms or RFC 3339). */
  since?: Date | number | string;
}

/** The snake_case body or query of a failed-tasks filter. */
function failedParams(f: FailedFilter): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (f.type !== undefined) out.type = f.type;
  if (f.errorCode !== undefined) out.error_code = f.errorCode;
  if (f.message !== undefined) out.message = f.message;
  if (f.jobId !== undefined) out.job_id = f.jobId;
  if (f.since !== undefined) out.since = f.since instanceof Date ? f.since.getTime() : f.since;
  return out;
}

/** A task as the REST API shows it, with camelCase keys. */
export type TaskInfoRest = CamelKeys<TaskView>;
/** A rate limit per task type: `limit` as written (`100/s`), and its parts. */
export type RateLimitInfo = CamelKeys<RateLimitView>;
/** An API key as `getKey` and `setKeyWebhook` return it (never its secret). */
export type KeyInfo = CamelKeys<KeyView>;
/** An uploaded file, as `uploadFile` returns it. */
export interface FileInfo {
  fileId: string;
  filename: string;
  size: number;
  contentType: string;
  sha256: string;
  jobId: string | null;
  createdAt: string;
}

/** A task graph, as `getGraph` returns it. */
export interface GraphInfo {
  jobId: string;
  status: JobState;
  output: string;
  nodes: {
    nodeId: string; taskId: string; type: string; dependsOn: string[]; inputAdapter: string | null; status: TaskState; waiting: boolean;
    attempt: number; workerId: string | null; artifacts: number; startedAt: string | null; completedAt: string | null; error: unknown;
  }[];
}

/** A task's artifacts, as `getArtifacts` returns them. */
export interface TaskArtifacts {
  taskId: string;
  complete: boolean;
  artifacts: { seq: number; taskId: string; batchUid: string; data: unknown; size: number; attempt: number; createdAt: string }[];
}
/** A task's batches, as `getTaskBatches` returns them. */
export interface TaskBatches {
  taskId: string;
  checkpoint: unknown;
  metrics: Record<string, number>;
  batches: { batchUid: string; attempt: number; metrics: Record<string, number> | null; createdAt: string }[];
}

/**
 * A client of one or more foremen: submits jobs, awaits their results, follows progress,
 * queries and cancels.
 */
export class Client {
  /** The client's logger. */
  readonly log: Logger;
  private readonly httpBases: string[];
  private readonly headers: Record<string, string>;
  private readonly agent: Agent | null;
  private readonly ca: string | Buffer | undefined;
  private httpIndex = 0;
  private readonly o: { reconnectIntervalMs: number; connectTimeoutMs: number };
  private link: ForemanLink | null = null;
  private open = false;
  private openWaiters: { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  private readonly pending = new Map<string, PendingSubmit>();
  /** Handles by job id; several submissions can land on one job (idempotency keys). */
  private readonly handles = new Map<string, JobHandle<any>[]>();
  private closed = false;
  /**
   * Completions that arrived before their job_accepted (several foremen: the job can finish
   * before the acceptance reaches us). Kept briefly, bounded, and handed to the handle.
   */
  private readonly earlyCompletions = new Map<string, Extract<Outbound, { type: 'job_completed' }>>();

  constructor(options: ClientOptions) {
    const urls = (Array.isArray(options.url) ? options.url : options.url.split(',')).map((u) => u.trim()).filter(Boolean);
    if (urls.length === 0) throw new TypeError('Client: url is required (e.g. http://localhost:8000)');
    this.httpBases = urls.map((u) => u.replace(/^ws(s?):/, 'http$1:').replace(/\/ws\/?$/, '').replace(/\/$/, ''));
    this.o = { reconnectIntervalMs: options.reconnectIntervalMs ?? 500, connectTimeoutMs: options.connectTimeoutMs ?? 10_000 };
    const apiKey = options.apiKey ?? process.env.CROWDCOMPUTE_API_KEY ?? this.httpBases.map((b) => localCredentialsAt(b)?.apiKey).find(Boolean);
    this.headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
    this.ca = options.ca;
    this.agent = options.ca ? new Agent({ connect: { ca: options.ca } }) : null;
    this.log = options.logger ?? pino({ level: options.logLevel ?? 'warn' }, pino.destination(2));
  }

  // ------------------------------------------------------------------ submitting

  /** Run `fn` over every argument on the workers; resolves with the results in argument order. */
  async map<T, R>(fn: MapFunction<T, R>, args: readonly T[], options: MapOptions = {}): Promise<R[]> {
    const job = await this.submitMap(fn, args, options);
    return job.result();
  }

  /** Submit a map job and return its handle at once. */
  async submitMap<T, R>(fn: MapFunction<T, R>, args: readonly T[], options: MapOptions = {}): Promise<JobHandle<R>> {
    if (args.length > STREAM_ABOVE_ITEMS) {
      // Too many for one message: sent open, in parts, with the chunk size the whole would get.
      const open = await this.openMap<T, R>(fn, { ...options, chunkSize: chooseChunkSize(args.length, options.chunkSize) });
      await open.append(args);
      return open.seal();
    }
    const { onProgress, ...rest } = options;
    const handle = await this.submitJob<R>(mapJobSpec(fn, args, rest));
    if (onProgress) handle.onProgress(onProgress);
    return handle;
  }

  /**
   * Submit a map job open, to append its arguments in parts (`append`, then `seal`): for
   * arguments that come as they are produced, or more of them than one message holds. Its
   * chunk size is fixed now (`chunkSize`, default 100): the total is not known yet.
   */
  async openMap<T, R>(fn: MapFunction<T, R>, options: MapOptions = {}): Promise<OpenJob<R, T>> {
    const { onProgress, ...rest } = options;
    const handle = await this.submitJob<R>({ ...mapJobSpec(fn, [], rest), open: true });
    if (onProgress) handle.onProgress(onProgress);
    const info = await this.getJob(handle.id);
    return new OpenJob<R, T>(handle, 'map', { chunkSize: info.chunkSize ?? 1, initial: info.argCount ?? 0, send: this.sendPart });
  }

  /**
   * Submit a job of named tasks open, to append its tasks in parts (`append`, then `seal`):
   * its first tasks run while the rest are still being sent.
   */
  async openTasks<R = unknown>(options: JobOptions = {}): Promise<OpenJob<R, NamedTaskSpec>> {
    const handle = await this.submitJob<R>({ kind: 'tasks', tasks: [], open: true, ...options });
    const info = await this.getJob(handle.id);
    return new OpenJob<R, NamedTaskSpec>(handle, 'tasks', { chunkSize: 1, initial: info.totalTasks, send: this.sendPart });
  }

  /** One part of an open job, over REST (a store outage is waited out; `at` makes a resend harmless). */
  private readonly sendPart: SendPart = (jobId, body) => this.http<JobAppendView>('POST', `/api/jobs/${encodeURIComponent(jobId)}/tasks`, body);

  /** Submit one named task (`image.resize`) with its input. */
  async submit<I = unknown, R = unknown>(type: string, input: I, options: TaskOptions = {}): Promise<TaskHandle<R>> {
    const job = await this.submitJob<R>(taskJobSpec(type, input, options));
    // Tasks of a job are named `<jobId>.<index>` unless the caller named them.
    return new TaskHandle<R>(job, options.taskId ?? `${job.id}.0`);
  }

  /** Submit many named tasks as one job: one commit, results in order. */
  async submitMany<R = unknown>(tasks: readonly NamedTaskSpec[], options: JobOptions = {}): Promise<JobHandle<R>> {
    if (tasks.length > STREAM_ABOVE_ITEMS) {
      // Too many for one message: sent open, in parts.
      const open = await this.openTasks<R>(options);
      await open.append(tasks);
      return open.seal();
    }
    return this.submitJob<R>({ kind: 'tasks', tasks: [...tasks], ...options });
  }

  /**
   * Submit a task graph as one job: each node a task of its type, started when its upstream
   * nodes allow (completed, or, with an input adapter, as soon as they write artifacts).
   * The graph is checked here first (ids, dependencies, cycles), with errors naming the node.
   */
  async submitGraph<R = unknown>(spec: Omit<GraphJobSpec, 'kind' | 'runAt'> & { kind?: 'graph'; runAt?: Date | number | string }): Promise<GraphHandle<R>> {
    const { output } = planGraph('check', { nodes: spec.nodes, output: spec.output });
    const job = await this.submitJob<unknown>({ ...spec, kind: 'graph' });
    return new GraphHandle<R>(job, spec.nodes.map((n) => n.id), output);
  }

  /** A task graph's nodes and where each stands. */
  async getGraph(jobId: string): Promise<GraphInfo> {
    const g = await this.http<GraphView>('GET', `/api/jobs/${encodeURIComponent(jobId)}/graph`);
    return {
      jobId: g.job_id, status: g.status, output: g.output,
      nodes: g.nodes.map((n) => ({
        nodeId: n.node_id, taskId: n.task_id, type: n.type, dependsOn: n.depends_on, inputAdapter: n.input_adapter, status: n.status, waiting: n.waiting,
        attempt: n.attempt, workerId: n.worker_id, artifacts: n.artifacts, startedAt: n.started_at, completedAt: n.completed_at, error: n.error,
      })),
    };
  }

  /**
   * Submit a job spec as the protocol defines it (`runAt` may be a `Date` too). With an
   * OpenTelemetry tracer provider registered, the submission is a `submit` span under the active
   * context, and the job carries its context: the foreman's and the workers' spans join that trace.
   */
  async submitJob<R = unknown>(spec: SdkJobSpec): Promise<JobHandle<R>> {
    if (this.closed) throw new CrowdComputeError('CC_ERR_SHUTTING_DOWN', 'client is closed');
    const span = tracer.startSpan('submit', { kind: SpanKind.CLIENT, attributes: { [ATTR.jobKind]: spec.kind } }, context.active());
    const failed = (err: Error) => {
      span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      span.end();
    };
    const traceContext = spec.traceContext ?? traceContextOf(span);
    const job: JobSpec = { ...wireSpec(spec), idempotencyKey: spec.idempotencyKey ?? `auto-${crypto.randomUUID()}`, ...(traceContext ? { traceContext } : {}) };
    try {
      await this.connect();
    } catch (err) {
      failed(err as Error);
      throw err;
    }
    return new Promise<JobHandle<R>>((resolve, reject) => {
      const requestId = crypto.randomUUID();
      const accepted = (h: JobHandle<R>) => {
        span.setAttribute(ATTR.jobId, h.id);
        span.end();
        resolve(h);
      };
      const refused = (err: Error) => { failed(err); reject(err); };
      const p: PendingSubmit = { message: { type: 'submit_job', requestId, job }, resolve: accepted, reject: refused, firstSentAt: Date.now(), outages: 0 };
      this.pending.set(requestId, p);
      this.link!.send(p.message);
    });
  }

  /**
   * A handle on an existing job (submitted elsewhere), to await or follow it. Its `warnings` say
   * what keeps the job's queued tasks waiting among the workers connected now (say, that none
   * handles their type), as a submission's do.
   */
  async watch<R = unknown>(jobId: string): Promise<JobHandle<R>> {
    const info = await this.getJob(jobId);
    const h = this.newHandle<R>({ id: jobId, totalTasks: info.totalTasks, position: 0, deduplicated: false, warnings: info.warnings ?? [] });
    this.track(h);
    await this.connect();
    this.link!.send({ type: 'subscribe_job', jobId });
    return h;
  }

  // ------------------------------------------------------------------ REST queries

  /** A REST call; answers of a foreman whose store is out for a moment (503) are tried again within the connect timeout. */
  private async http<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const started = Date.now();
    for (let outages = 1; ; outages++) {
      try {
        return await this.httpOnce<T>(method, path, body);
      } catch (err) {
        if (!(err instanceof CrowdComputeError && err.code === 'CC_ERR_STORE_UNAVAILABLE') || Date.now() - started >= this.o.connectTimeoutMs) throw err;
        await new Promise((r) => setTimeout(r, retryDelayMs(outages, { baseMs: 250, maxMs: 2_000 })));
      }
    }
  }

  private async httpOnce<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal, raw?: { body?: { data: Uint8Array; contentType: string }; bytes?: boolean }): Promise<T> {
    const unreachable: string[] = [];
    for (let i = 0; i < this.httpBases.length; i++) {
      const base = this.httpBases[(this.httpIndex + i) % this.httpBases.length];
      let res: Response;
      try {
        const init = {
          method,
          headers: { ...this.headers, ...(raw?.body ? { 'content-type': raw.body.contentType } : body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(raw?.body ? { body: raw.body.data as Uint8Array<ArrayBuffer> } : body !== undefined ? { body: JSON.stringify(body) } : {}),
          ...(signal ? { signal } : {}),
        };
        res = this.agent ? await fetchWithAgent(`${base}${path}`, { ...init, dispatcher: this.agent }) as unknown as Response : await fetch(`${base}${path}`, init);
      } catch (err) {
        unreachable.push(whyUnreachable(base, err));
        continue;
      }
      this.httpIndex = (this.httpIndex + i) % this.httpBases.length;
      if (raw?.bytes && res.ok) return new Uint8Array(await res.arrayBuffer()) as T;
      const text = await res.text();
      let data: any;
      try {
        data = text ? JSON.parse(text) : null;
      } catch {
        data = undefined;
      }
      // A foreman answers in JSON, and its errors carry a code: anything else is another server
      // (a wrong port, a web server, a proxy's error page), which is said as such.
      const isWireError = typeof data?.code === 'string' && typeof data?.message === 'string';
      if (data === undefined || (!res.ok && !isWireError)) {
        throw new CrowdComputeError('CC_ERR_CONNECTION', notAForeman(base, `${method} ${path}`, res, data), { status: res.status });
      }
      if (!res.ok) throw CrowdComputeError.fromWire(data as WireError, { status: res.status });
      return data as T;
    }
    throw new CrowdComputeError('CC_ERR_CONNECTION', `cannot reach the foreman ${unreachable.join('; ')}`);
  }

  /**
   * Why the WebSocket did not open within the connect timeout, asked of the REST API: its
   * answer names what is wrong (nothing listening, a host name that does not resolve, a server
   * that is not a foreman, a refused API key); else the plain timeout.
   */
  private async whyNoConnection(): Promise<CrowdComputeError> {
    try {
      await this.httpOnce('GET', '/api/stats', undefined, AbortSignal.timeout(Math.min(5_000, Math.max(3_000, this.o.connectTimeoutMs))));
    } catch (err) {
      if (err instanceof CrowdComputeError && (err.code === 'CC_ERR_CONNECTION' || err.code === 'CC_ERR_UNAUTHORIZED')) return err;
    }
    return new CrowdComputeError('CC_ERR_CONNECTION', `no connection to the foreman at ${this.httpBases.join(', ')} within ${this.o.connectTimeoutMs} ms`);
  }

  /** One job. */
  async getJob(jobId: string): Promise<JobInfo> {
    return camelKeys(await this.http<JobView>('GET', `/api/jobs/${encodeURIComponent(jobId)}`));
  }

  /** Every announcement of a job's end to a webhook, oldest first, each with its attempts (`docs/operations.md`, "Webhooks"). */
  async webhookDeliveries(jobId: string): Promise<WebhookDeliveryInfo[]> {
    return (await this.http<WebhookDeliveryView[]>('GET', `/api/jobs/${encodeURIComponent(jobId)}/webhook-deliveries`)).map((d) => camelKeys(d));
  }

  /** Jobs, newest first, optionally of one state. */
  async listJobs(params: { status?: JobState; limit?: number; offset?: number } = {}): Promise<JobInfo[]> {
    const q = new URLSearchParams();
    if (params.status) q.set('status', params.status);
    if (params.limit) q.set('limit', String(params.limit));
    if (params.offset) q.set('offset', String(params.offset));
    const rows = await this.http<JobView[]>('GET', `/api/jobs${q.size ? `?${q}` : ''}`);
    return rows.map((r) => camelKeys(r));
  }

  /** A job's tasks, in order. */
  async getJobTasks(jobId: string, params: { limit?: number; offset?: number } = {}): Promise<TaskInfoRest[]> {
    const rows = await this.http<TaskView[]>('GET', `/api/jobs/${encodeURIComponent(jobId)}/tasks?limit=${params.limit ?? 1000}&offset=${params.offset ?? 0}`);
    return rows.map((r) => camelKeys(r));
  }

  /** A job's results in order, its failures and its counts. */
  async getJobOutcome(jobId: string): Promise<JobOutcome> {
    const results: unknown[] = [];
    const failures: JobOutcome['failures'] = [];
    let state: JobState = 'queued';
    // In pages: a large job's results are read piece by piece, not in one answer.
    for await (const page of this.resultPages(jobId)) {
      for (const v of page.results) results.push(v);
      failures.push(...page.failures);
      state = page.state;
    }
    const job = await this.getJob(jobId);
    return {
      jobId, state,
      counts: { total: job.totalTasks, completed: job.completedTasks, failed: job.failedTasks, cancelled: job.cancelledTasks },
      results, failures,
    };
  }

  /** A page of a job's results, from `offset` (an argument index for a map job, else a task index). */
  async getJobResults(jobId: string, params: { offset?: number; limit?: number } = {}): Promise<ResultsPage> {
    const q = new URLSearchParams({ offset: String(params.offset ?? 0), limit: String(params.limit ?? RESULTS_PAGE) });
    const r = await this.http<JobResultsView>('GET', `/api/jobs/${encodeURIComponent(jobId)}/results?${q}`);
    return {
      jobId, state: r.status, offset: r.offset, total: r.total, nextOffset: r.next_offset, results: r.results,
      failures: r.failures.map((f) => ({ taskId: f.task_id, index: f.index, status: f.status, error: f.error })),
    };
  }

  /**
   * A job's results, page after page, in order (`for await (const page of client.resultPages(id))`):
   * results of a job of any size, without holding them all at once.
   */
  async *resultPages(jobId: string, params: { pageSize?: number } = {}): AsyncGenerator<ResultsPage> {
    for (let offset: number | null = 0; offset !== null;) {
      const page = await this.getJobResults(jobId, { offset, limit: params.pageSize ?? RESULTS_PAGE });
      yield page;
      offset = page.nextOffset;
    }
  }

  /** One task, with every attempt's error. */
  async getTask(taskId: string): Promise<TaskInfoRest> {
    return camelKeys(await this.http<TaskView>('GET', `/api/tasks/${encodeURIComponent(taskId)}`));
  }

  /**
   * The artifacts a task wrote, in the order they were recorded; `after` (a `seq`) and `limit`
   * page through them, and `complete` says whether more may come.
   */
  async getArtifacts(taskId: string, params: { after?: number; limit?: number } = {}): Promise<TaskArtifacts> {
    const q = new URLSearchParams();
    if (params.after !== undefined) q.set('after', String(params.after));
    if (params.limit !== undefined) q.set('limit', String(params.limit));
    const r = await this.http<TaskArtifactsView>('GET', `/api/tasks/${encodeURIComponent(taskId)}/artifacts${q.size ? `?${q}` : ''}`);
    // Field by field: an artifact's data is the handler's, and keeps its own keys.
    return {
      taskId: r.task_id, complete: r.complete,
      artifacts: r.artifacts.map((a) => ({ seq: a.seq, taskId: a.task_id, batchUid: a.batch_uid, data: a.data, size: a.size, attempt: a.attempt, createdAt: a.created_at })),
    };
  }

  /**
   * Upload a file for tasks to carry (`submit(type, input, { files: [file.fileId] })`); its
   * handler reads it with `task.readFile(id)`. At most the foreman's --max-file-size.
   */
  async uploadFile(data: Uint8Array | string, filename: string, options: { contentType?: string } = {}): Promise<FileInfo> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const contentType = options.contentType ?? (typeof data === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream');
    const f = await this.httpOnce<FileView>('POST', `/api/files?filename=${encodeURIComponent(filename)}`, undefined, undefined, { body: { data: bytes, contentType } });
    return { fileId: f.file_id, filename: f.filename, size: f.size, contentType: f.content_type, sha256: f.sha256, jobId: f.job_id, createdAt: f.created_at };
  }

  /** A file's bytes (one this client's key uploaded, or any with an admin key). */
  async downloadFile(fileId: string): Promise<Uint8Array> {
    return this.httpOnce<Uint8Array>('GET', `/api/files/${encodeURIComponent(fileId)}/download`, undefined, undefined, { bytes: true });
  }

  /** A batch handler's batches done, their metrics summed, and its last checkpoint. */
  async getTaskBatches(taskId: string): Promise<TaskBatches> {
    const r = await this.http<TaskBatchesView>('GET', `/api/tasks/${encodeURIComponent(taskId)}/batches`);
    return {
      taskId: r.task_id, checkpoint: r.checkpoint, metrics: r.metrics,
      batches: r.batches.map((b) => ({ batchUid: b.batch_uid, attempt: b.attempt, metrics: b.metrics, createdAt: b.created_at })),
    };
  }

  /** Cancel a job: queued tasks never start, running ones are stopped, finished results stay. */
  async cancel(jobId: string): Promise<JobInfo> {
    return camelKeys(await this.http<JobView>('POST', `/api/jobs/${encodeURIComponent(jobId)}/cancel`));
  }

  /**
   * Run a job's failed and cancelled tasks again (or, with `taskId`, one task: a task id alone
   * works too, see `retryTask`), with fresh attempts; recorded results stay. Resolves with how
   * many tasks went back to the queue and a handle that follows the job to its next ending.
   * Rejects with CC_ERR_NOTHING_TO_RETRY when nothing failed or was cancelled.
   */
  async retry<R = unknown>(jobId: string, options: { taskId?: string } = {}): Promise<{ retried: number; job: JobHandle<R> }> {
    const q = options.taskId ? `?task_id=${encodeURIComponent(options.taskId)}` : '';
    const r = await this.http<JobRetryView>('POST', `/api/jobs/${encodeURIComponent(jobId)}/retry${q}`);
    return { retried: r.retried, job: await this.watch<R>(jobId) };
  }

  /** Run one failed or cancelled task again; resolves like {@link Client.retry}, with its job. */
  async retryTask<R = unknown>(taskId: string): Promise<{ retried: number; job: JobHandle<R> }> {
    const r = await this.http<JobRetryView>('POST', `/api/tasks/${encodeURIComponent(taskId)}/retry`);
    return { retried: r.retried, job: await this.watch<R>(r.id) };
  }

  /** Cancel one task: queued, it never starts; running, its worker is told to stop. */
  async cancelTask(taskId: string): Promise<TaskInfoRest> {
    return camelKeys(await this.http<TaskView>('POST', `/api/tasks/${encodeURIComponent(taskId)}/cancel`));
  }

  /**
   * The foreman's statistics (snake_case, as the REST API has them), with running tasks against
   * fair shares (`sharing`). With a key that is not admin, `sharing` lists its own owner row and
   * jobs, and sums every other owner in `sharing.others` (null for an admin key).
   */
  async stats(): Promise<StatsView> { return this.http('GET', '/api/stats'); }

  // ------------------------------------------------------------------ schedules

  /**
   * Create a recurring schedule: `job` fires at each tick of `cron` (in `timezone`) or `every`
   * interval, as a job of its own owned by this key. Its first tick is the first after now.
   * CC_ERR_SCHEDULE_EXISTS if the id is taken; CC_ERR_INVALID_SCHEDULE names a bad field.
   */
  async createSchedule(spec: ScheduleSpec): Promise<ScheduleInfo> {
    return scheduleInfo(await this.http<ScheduleView>('POST', '/api/schedules', snakeKeysOf(ScheduleSpecSchema, spec)));
  }

  /** One schedule: its spec, next ticks and recent runs (CC_ERR_SCHEDULE_NOT_FOUND if none is this key's to see). */
  async getSchedule(id: string): Promise<ScheduleInfo> {
    return scheduleInfo(await this.http<ScheduleView>('GET', `/api/schedules/${encodeURIComponent(id)}`));
  }

  /** This key's schedules (every owner's for admin), by id. */
  async listSchedules(): Promise<ScheduleInfo[]> {
    return (await this.http<ScheduleView[]>('GET', '/api/schedules')).map(scheduleInfo);
  }

  /** Change a schedule: any field but the id (`cron` replaces `every` and the other way round). */
  async updateSchedule(id: string, patch: SchedulePatch): Promise<ScheduleInfo> {
    return scheduleInfo(await this.http<ScheduleView>('PATCH', `/api/schedules/${encodeURIComponent(id)}`, snakeKeysOf(SchedulePatchSchema, patch)));
  }

  /** Pause a schedule (no tick fires until it is resumed), with a note for people. */
  async pauseSchedule(id: string, note?: string): Promise<ScheduleInfo> {
    return scheduleInfo(await this.http<ScheduleView>('POST', `/api/schedules/${encodeURIComponent(id)}/pause`, note === undefined ? {} : { note }));
  }

  /** Resume a paused schedule from its first tick after now. */
  async resumeSchedule(id: string): Promise<ScheduleInfo> {
    return scheduleInfo(await this.http<ScheduleView>('POST', `/api/schedules/${encodeURIComponent(id)}/resume`));
  }

  /** Delete a schedule and its run history; the jobs it fired stay. */
  async deleteSchedule(id: string): Promise<{ deleted: true; id: string }> {
    return this.http('DELETE', `/api/schedules/${encodeURIComponent(id)}`);
  }

  /** Fire the schedule's job now, outside its ticks; a handle on that job. */
  async triggerSchedule<R = unknown>(id: string): Promise<JobHandle<R>> {
    const res = await this.http<ScheduleTriggerView>('POST', `/api/schedules/${encodeURIComponent(id)}/trigger`);
    return this.watch<R>(res.job_id);
  }

  /**
   * Fire every past tick t with from <= t < to (Dates, epoch ms or RFC 3339), each as its own
   * job, at most 1,000. A tick that fired already is not fired again (counted in `skipped`).
   */
  async backfillSchedule(id: string, from: Date | number | string, to: Date | number | string): Promise<{ fired: number; skipped: number; jobIds: string[] }> {
    const when = (t: Date | number | string) => (t instanceof Date ? t.getTime() : t);
    const res = await this.http<ScheduleBackfillView>('POST', `/api/schedules/${encodeURIComponent(id)}/backfill`, { from: when(from), to: when(to) });
    return { fired: res.fired, skipped: res.skipped, jobIds: res.job_ids };
  }

  // ------------------------------------------------------------------ failed tasks

  /**
   * Tasks that failed for good (no attempt left, or a permanent error), grouped by task type and
   * error, largest group first: this key's own (every owner's for admin). Page with `offset`
   * until `nextOffset` is null.
   */
  async listFailed(filter: FailedFilter & { limit?: number; offset?: number } = {}): Promise<{ groups: FailedGroupInfo[]; offset: number; nextOffset: number | null }> {
    const q = new URLSearchParams(Object.entries(failedParams(filter)).map(([k, v]) => [k, String(v)]));
    if (filter.limit !== undefined) q.set('limit', String(filter.limit));
    if (filter.offset !== undefined) q.set('offset', String(filter.offset));
    const res = await this.http<FailedListView>('GET', `/api/failed${q.size ? `?${q}` : ''}`);
    return { groups: res.groups.map((g) => camelKeys(g)), offset: res.offset, nextOffset: res.next_offset };
  }

  /**
   * Run failed tasks again in bulk, with fresh attempts: those the filter matches, or the
   * `taskIds` listed. At most `limit` (10,000 at most) a call; `more` says whether others
   * matched. Their jobs run again; results already recorded stay.
   */
  async retryFailed(filter: FailedFilter & { taskIds?: string[]; limit?: number } = {}): Promise<{ requeued: number; jobs: number; jobIds: string[]; more: boolean }> {
    const body = { ...failedParams(filter), ...(filter.taskIds !== undefined ? { task_ids: filter.taskIds } : {}), ...(filter.limit !== undefined ? { limit: filter.limit } : {}) };
    const res = await this.http<FailedRetryView>('POST', '/api/failed/retry', body);
    return { requeued: res.requeued, jobs: res.jobs, jobIds: res.job_ids, more: res.more };
  }

  /** The rate limits per task type. */
  async rateLimits(): Promise<RateLimitInfo[]> {
    return (await this.http<{ rate_limits: RateLimitView[] }>('GET', '/api/rate-limits')).rate_limits.map(camelKeys);
  }

  /**
   * Limit how many tasks of the types `pattern` matches start per window, on every foreman of
   * the database: `'100/s'`, `'6000/10m'` (a burst of up to the count, then the count per
   * window). Needs the admin scope.
   */
  async setRateLimit(pattern: string, limit: string): Promise<RateLimitInfo> {
    return camelKeys(await this.http<RateLimitView>('PUT', '/api/rate-limits', { pattern, limit }));
  }

  /** Remove a pattern's rate limit (CC_ERR_RATE_LIMIT_NOT_FOUND if it has none). Needs the admin scope. */
  async removeRateLimit(pattern: string): Promise<void> {
    await this.http('DELETE', `/api/rate-limits?pattern=${encodeURIComponent(pattern)}`);
  }
  /**
   * An API key: its scopes, cap, webhook and last use, never its secret. `keyId` is the part
   * after `cck_` (`cck_<id>_<secret>`). A key may read itself; any other needs the admin scope
   * (CC_ERR_FORBIDDEN), and CC_ERR_KEY_NOT_FOUND answers an admin asking for an unknown id.
   */
  async getKey(keyId: string): Promise<KeyInfo> {
    return camelKeys(await this.http<KeyView>('GET', `/api/keys/${encodeURIComponent(keyId)}`));
  }

  /**
   * Set an API key's webhook: the end of its jobs that name none, ending from now on, is posted
   * to `url` (http or https, on a host the foreman calls: `--webhook-host`). A key may set its
   * own; any other needs the admin scope.
   */
  async setKeyWebhook(keyId: string, url: string): Promise<KeyInfo> {
    return camelKeys(await this.http<KeyView>('PUT', `/api/keys/${encodeURIComponent(keyId)}/webhook`, { url }));
  }

  /** Remove an API key's webhook: its jobs that name none are announced nowhere. A key may remove its own; any other needs the admin scope. */
  async removeKeyWebhook(keyId: string): Promise<KeyInfo> {
    return camelKeys(await this.http<KeyView>('DELETE', `/api/keys/${encodeURIComponent(keyId)}/webhook`));
  }

  /** The workers the foreman's store knows (snake_case, as the REST API has them). */
  async workers(): Promise<WorkerView[]> { return this.http('GET', '/api/workers'); }
  /**
   * One worker (snake_case, as the REST API has it): what it runs now on this foreman and its
   * last connections there. With a key that is not admin, `running` lists the tasks of its own
   * jobs and `running_others` counts the rest. CC_ERR_WORKER_NOT_FOUND for an unknown id.
   */
  async worker(workerId: string): Promise<WorkerDetailView> { return this.http('GET', `/api/workers/${encodeURIComponent(workerId)}`); }
  /** The foreman's health (snake_case, as the REST API has them). */
  async health(): Promise<HealthView> { return this.http('GET', '/health'); }

  // ------------------------------------------------------------------ connection

  private track(h: JobHandle<any>): void {
    const list = this.handles.get(h.id);
    if (list) list.push(h); else this.handles.set(h.id, [h]);
  }

  private newHandle<R>(init: { id: string; totalTasks: number; position: number; deduplicated: boolean; warnings?: readonly string[] }): JobHandle<R> {
    return new JobHandle<R>(init, {
      fetchOutcome: (id) => this.getJobOutcome(id),
      cancel: async (id) => { await this.cancel(id); },
      retry: async (id) => (await this.retry(id)).job,
    });
  }

  /** Open the WebSocket (once) and wait until it is up. */
  connect(): Promise<void> {
    if (this.open) return Promise.resolve();
    if (!this.link) {
      this.link = new ForemanLink({
        urls: this.httpBases.map((b) => `${b.replace(/^http/, 'ws')}/ws`),
        // The standard WebSocket API, implemented by ws (faster in Node than the global one),
        // with the API key (and a private CA) on the upgrade request.
        webSocket: withOptions({ headers: this.headers, ...(this.ca ? { ca: this.ca } : {}) }),
        reconnectIntervalMs: this.o.reconnectIntervalMs,
        maxReconnectAttempts: -1,
        autoRestart: true,
        log: this.log,
        onOpen: () => this.onOpen(),
        onMessage: (m) => this.onMessage(m),
        onProtocolError: (message) => this.log.warn({ error: message }, 'unreadable message from the foreman'),
        onClose: ({ code }) => {
          this.open = false;
          // 1009: a frame of ours was too big for the foreman. Sending it again after the
          // reconnect would fail the same way, so the submissions in flight fail instead.
          if (code === 1009) {
            const err = new CrowdComputeError('CC_ERR_PAYLOAD_TOO_LARGE', 'the foreman closed the connection: a submission was larger than its frame limit (--max-payload)');
            for (const p of this.pending.values()) p.reject(err);
            this.pending.clear();
          }
        },
        onGiveUp: () => {},
      });
      this.link.start();
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.openWaiters = this.openWaiters.filter((w) => w.timer !== timer);
        void this.whyNoConnection().then(reject);
      }, this.o.connectTimeoutMs);
      this.openWaiters.push({ resolve, reject, timer });
    });
  }

  private onOpen(): void {
    this.open = true;
    for (const w of this.openWaiters.splice(0)) { clearTimeout(w.timer); w.resolve(); }
    // After a reconnect: submissions not yet acknowledged go again (same idempotency key),
    // and every job still awaited is subscribed again (a finished one answers at once).
    for (const p of this.pending.values()) this.link!.send(p.message);
    for (const [jobId, list] of this.handles) if (list.some((h) => !h.finished)) this.link!.send({ type: 'subscribe_job', jobId });
  }

  private onMessage(m: Outbound): void {
    switch (m.type) {
      case 'job_accepted': {
        const p = this.pending.get(m.requestId);
        if (!p) return;
        this.pending.delete(m.requestId);
        const h = this.newHandle({ id: m.jobId, totalTasks: m.totalTasks, position: m.position, deduplicated: m.deduplicated, ...(m.warnings ? { warnings: m.warnings } : {}) });
        this.track(h);
        p.resolve(h);
        const done = this.earlyCompletions.get(m.jobId);
        if (done) { this.earlyCompletions.delete(m.jobId); this.onMessage(done); }
        return;
      }
      case 'job_progress':
        for (const h of this.handles.get(m.jobId) ?? []) h._progress(m.state, m.counts);
        return;
      case 'job_completed': {
        const list = this.handles.get(m.jobId);
        if (!list) {
          if (this.pending.size > 0) {
            if (this.earlyCompletions.size >= 1000) this.earlyCompletions.delete(this.earlyCompletions.keys().next().value!);
            this.earlyCompletions.set(m.jobId, m);
          }
          return;
        }
        this.handles.delete(m.jobId);
        for (const h of list) h._completed(m.state, m.counts, m.results);
        return;
      }
      case 'task_progress_event':
        for (const h of this.handles.get(m.jobId) ?? []) h._taskProgress({ jobId: m.jobId, taskId: m.taskId, progress: m.progress, ...(m.message !== undefined ? { message: m.message } : {}), ...(m.data ? { data: m.data } : {}) });
        return;
      case 'error': {
        const err = CrowdComputeError.fromWire(m);
        const p = m.requestId ? this.pending.get(m.requestId) : undefined;
        if (p && err.code === 'CC_ERR_STORE_UNAVAILABLE' && Date.now() - p.firstSentAt < this.o.connectTimeoutMs) {
          // The foreman's database is out for a moment: send it again (same idempotency key) shortly.
          p.outages++;
          setTimeout(() => { if (this.pending.get(m.requestId!) === p) this.link!.send(p.message); }, retryDelayMs(p.outages, { baseMs: 250, maxMs: 2_000 }));
          return;
        }
        if (p) { this.pending.delete(m.requestId!); p.reject(err); return; }
        const jobId = typeof m.details?.jobId === 'string' ? m.details.jobId : undefined;
        const list = jobId ? this.handles.get(jobId) : undefined;
        if (list) { this.handles.delete(jobId!); for (const h of list) h._fail(err); return; }
        this.log.warn({ code: m.code, message: m.message }, 'foreman reported an error');
        return;
      }
      default:
        return;
    }
  }

  /** Close the connection. Pending submissions and unfinished handles reject. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new CrowdComputeError('CC_ERR_SHUTTING_DOWN', 'client closed');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const list of this.handles.values()) for (const h of list) h._fail(err);
    this.handles.clear();
    for (const w of this.openWaiters.splice(0)) { clearTimeout(w.timer); w.reject(err); }
    await this.link?.stop();
    await this.agent?.close();
  }
}

/** Why a request to `base` got no answer, in words: `at <base>: nothing answers there (connection refused)`. */
function whyUnreachable(base: string, err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string; errors?: { code?: string }[] } };
  const cause = e.cause ?? (e as NonNullable<typeof e.cause>);
  const code = cause.code ?? cause.errors?.[0]?.code ?? '';
  let host = base;
  try { host = new URL(base).hostname; } catch { /* not a URL: the whole text is named */ }
  let why: string;
  if (e.name === 'TimeoutError' || e.name === 'AbortError') why = 'no answer in time';
  else if (code === 'ECONNREFUSED') why = 'nothing answers there (connection refused)';
  else if (code === 'ENOTFOUND' || code === 'EAI_NONAME' || code === 'EAI_NODATA' || code === 'EAI_FAIL') why = `the host name ${host} does not resolve`;
  else if (code === 'EAI_AGAIN') why = `the host name ${host} could not be resolved (the name server did not answer)`;
  else if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') why = 'the connection attempt timed out';
  else if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') why = `the host cannot be reached from here (${code})`;
  else if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') why = `the connection was closed without an answer${base.startsWith('http:') ? ' (is it an https:// server?)' : ''}`;
  else if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code)) why = `its TLS certificate is not trusted (${cause.message ?? code}); trust a private CA with the ca option (--ca on the command line)`;
  else if (code.startsWith('ERR_SSL_') || code === 'EPROTO') {
    // OpenSSL's text is a dump (`40CD…:error:0A00010B:SSL routines:…:wrong version number:../deps/…`): its reason is all a person needs.
    const reason = /SSL routines:[^:]*:([^:]+)/.exec(cause.message ?? '')?.[1] ?? code;
    why = /wrong version number|packet length too long|http request/i.test(`${reason} ${code}`)
      ? `it does not speak HTTPS (the TLS handshake got a plain answer); use ${base.replace(/^https:/i, 'http:')}`
      : `the TLS handshake failed (${reason}); is it an http:// server?`;
  }
  else if (cause.message === 'bad port') why = 'fetch refuses to connect to that port (one of the ports browsers block); use another';
  else why = cause.message ?? e.message ?? String(err);
  return `at ${base}: ${why}`;
}

/** `<base> answered but is not a CrowdCompute foreman (GET /api/stats: 404 Not Found)`. */
function notAForeman(base: string, request: string, res: Response, data: unknown): string {
  const status = `${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  const type = res.headers.get('content-type') ?? '';
  const body = data === undefined
    ? (type.includes('html') ? ', an HTML page instead of JSON' : ', not JSON')
    : typeof (data as { message?: unknown } | null)?.message === 'string' ? `: ${(data as { message: string }).message}` : '';
  return `${base} answered but is not a CrowdCompute foreman (${request}: ${status}${body})`;
}
