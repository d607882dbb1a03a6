import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { Logger } from 'pino';
import {
  CrowdComputeError, PROTOCOL_VERSION, formatBytes, parseInbound,
  type Hello, type Inbound, type TaskOutcome,
} from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import { WorkerSession } from '../dispatch/worker-session.ts';
import type { JobEvents } from '../job-events.ts';
import type { JobService } from '../job-service.ts';
import type { ForemanMetrics } from '../foreman-metrics.ts';
import { Connection } from './connection.ts';

export interface WsGatewayOptions {
  foremanId: string;
  path: string;
  maxPayloadBytes: number;
  heartbeatIntervalMs: number;
  leaseTtlMs: number;
  /** Sustained messages per second one connection may send (bursts up to twice that). */
  maxMessagesPerSecond: number;
  /** Most connections at once; more are refused with 503. */
  maxConnections: number;
  /** A peer that does not read: its connection is cut when this much is waiting to be sent. */
  maxBufferedBytes: number;
  /** A connection over its rate limit for this long is closed (policy violation). Default 5 s. */
  floodCloseAfterMs?: number;
}

/** Most messages in one frame (a JSON array). */
const MAX_MESSAGES_PER_FRAME = 10_000;
const FLOOD_CLOSE_AFTER_MS = 5_000;

/**
 * The foreman's WebSocket endpoint. Workers and clients share it: a connection becomes a
 * worker by sending `hello`; client messages (submit_job, subscribe_job, cancel_job) are
 * accepted on any connection. Each frame is validated message by message; a bad message
 * gets an `error` reply naming the problem, and nothing else on the connection is affected.
 */
export class WsGateway {
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly sessionsByConn = new Map<Connection, WorkerSession>();
  private readonly store: Store;
  private readonly dispatcher: Dispatcher;
  private readonly events: JobEvents;
  private readonly jobs: JobService;
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;
  private readonly options: WsGatewayOptions;
  private accepting = true;

  constructor(deps: { store: Store; dispatcher: Dispatcher; events: JobEvents; jobs: JobService; metrics: ForemanMetrics; log: Logger }, options: WsGatewayOptions) {
    this.store = deps.store;
    this.dispatcher = deps.dispatcher;
    this.events = deps.events;
    this.jobs = deps.jobs;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.options = options;
    // Frames a little over the limit still arrive, so that we can answer with an error that
    // names the limit; far larger ones are cut off by ws itself (close code 1009).
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes + 1024 * 1024 });
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== this.options.path || !this.accepting) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      if (this.connections.size >= this.options.maxConnections) {
        this.log.warn({ limit: this.options.maxConnections }, 'connection refused: too many connections');
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws, req));
    });
  }

  get workerCount(): number { return this.sessionsByConn.size; }

  private onSocket(ws: WebSocket, req: IncomingMessage): void {
    const conn = new Connection(ws, req.socket.remoteAddress ?? 'unknown', Math.max(64 * 1024, this.options.maxPayloadBytes));
    this.connections.add(conn);
    conn.tokens = this.options.maxMessagesPerSecond * 2;
    ws.on('message', (data: RawData, isBinary: boolean) => this.onFrame(conn, data, isBinary));
    ws.on('pong', () => { conn.lastSeenAt = Date.now(); });
    ws.on('close', () => void this.onClose(conn));
    ws.on('error', (err) => this.log.warn({ err, conn: conn.id, workerId: conn.workerId }, 'websocket error'));
  }

  private reply(conn: Connection, err: CrowdComputeError, requestId?: string): void {
    this.metrics.protocolErrors.inc({ code: err.code });
    conn.send({ type: 'error', code: err.code, message: err.message, ...(requestId ? { requestId } : {}), ...(err.details ? { details: err.details } : {}) });
  }

  private onFrame(conn: Connection, data: RawData, isBinary: boolean): void {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (buf.length > this.options.maxPayloadBytes) {
      // Not parsed (that is the point of the limit), but a request id near the start is
      // echoed so the sender can tell which request failed.
      const requestId = /"requestId"\s*:\s*"([^"]{1,100})"/.exec(buf.subarray(0, 300).toString('utf8'))?.[1];
      this.reply(conn, new CrowdComputeError('CC_ERR_PAYLOAD_TOO_LARGE',
        `frame is ${formatBytes(buf.length)}, the foreman accepts at most ${formatBytes(this.options.maxPayloadBytes)} per frame (--max-payload)`,
        { limit: this.options.maxPayloadBytes, actual: buf.length }), requestId);
      return;
    }
    void isBinary;
    conn.lastSeenAt = Date.now();
    const parsedAll = parseInbound(buf.toString('utf8'));
    if (parsedAll.length > MAX_MESSAGES_PER_FRAME) {
      this.reply(conn, new CrowdComputeError('CC_ERR_BAD_MESSAGE', `frame holds ${parsedAll.length} messages, the foreman accepts at most ${MAX_MESSAGES_PER_FRAME} per frame`,
        { limit: MAX_MESSAGES_PER_FRAME }));
      return;
    }
    if (!this.admit(conn, parsedAll.length)) return;
    for (const parsed of parsedAll) {
      if (!parsed.ok) { this.reply(conn, parsed.error, parsed.requestId); continue; }
      try {
        this.onMessage(conn, parsed.message);
      } catch (err) {
        this.replyError(conn, err, (parsed.message as { requestId?: string }).requestId);
      }
    }
  }

  /**
   * Token-bucket rate limit per connection. Over the limit, the frame is refused with one
   * CC_ERR_RATE_LIMITED a second; a connection over the limit for FLOOD_CLOSE_AFTER_MS is
   * closed. Workers batch results, so a healthy worker stays far below the limit.
   */
  private admit(conn: Connection, messages: number): boolean {
    const now = Date.now();
    const rate = this.options.maxMessagesPerSecond;
    conn.tokens = Math.min(rate * 2, conn.tokens + ((now - conn.tokensAt) / 1000) * rate);
    conn.tokensAt = now;
    if (conn.tokens >= messages) {
      conn.tokens -= messages;
      // A flood still admits a frame now and then as tokens trickle back; it only counts as
      // over until a whole second passes without a refusal.
      if (now - conn.lastDropAt > 1000) conn.overLimitSince = 0;
      return true;
    }
    conn.lastDropAt = now;
    conn.overLimitSince ||= now;
    const closeAfter = this.options.floodCloseAfterMs ?? FLOOD_CLOSE_AFTER_MS;
    if (now - conn.overLimitSince > closeAfter) {
      this.log.warn({ conn: conn.id, workerId: conn.workerId, remote: conn.remote }, 'closing a connection that kept flooding');
      conn.close(1008, `CC_ERR_RATE_LIMITED: over ${rate} messages/s for ${closeAfter} ms`);
      return false;
    }
    if (now - conn.lastRateError >= 1000) {
      conn.lastRateError = now;
      this.reply(conn, new CrowdComputeError('CC_ERR_RATE_LIMITED', `this connection sends more than ${rate} messages/s (bursts up to ${rate * 2}); messages are being dropped`,
        { limit: rate }));
    }
    this.metrics.protocolErrors.inc({ code: 'CC_ERR_RATE_LIMITED' });
    return false;
  }

  /**
   * Ping every connection, and cut those silent for longer than `silentMs` (dead peers whose
   * socket never closed) or that do not read what is sent to them.
   */
  pingAndCull(now: number, silentMs: number): void {
    for (const conn of this.connections) {
      if (now - conn.lastSeenAt > silentMs) {
        this.log.warn({ conn: conn.id, workerId: conn.workerId, silentMs: now - conn.lastSeenAt }, 'peer silent for longer than the lease TTL; cutting the connection');
        conn.socket.terminate();
        continue;
      }
      if (conn.socket.bufferedAmount > this.options.maxBufferedBytes) {
        this.log.warn({ conn: conn.id, workerId: conn.workerId, buffered: conn.socket.bufferedAmount }, 'peer does not read; cutting the connection');
        conn.socket.terminate();
        continue;
      }
      try { conn.socket.ping(); } catch { /* closing */ }
    }
  }

  private replyError(conn: Connection, err: unknown, requestId?: string): void {
    if (err instanceof CrowdComputeError) { this.reply(conn, err, requestId); return; }
    this.log.error({ err, conn: conn.id, workerId: conn.workerId }, 'message handler failed');
    this.reply(conn, new CrowdComputeError('CC_ERR_INTERNAL', `internal error: ${(err as Error).message}`), requestId);
  }

  private sessionOf(conn: Connection, type: string): WorkerSession {
    const s = this.sessionsByConn.get(conn);
    if (!s) throw new CrowdComputeError('CC_ERR_NOT_HELLO', `"${type}" is a worker message; send "hello" first`);
    return s;
  }

  private onMessage(conn: Connection, msg: Inbound): void {
    switch (msg.type) {
      case 'hello':
        void this.onHello(conn, msg).catch((err) => this.replyError(conn, err));
        return;
      case 'heartbeat': {
        const s = this.sessionOf(conn, msg.type);
        void this.onHeartbeat(s, msg.running ?? []).catch((err) => this.log.error({ err, workerId: s.workerId }, 'heartbeat handling failed'));
        return;
      }
      case 'worker_draining': {
        const s = this.sessionOf(conn, msg.type);
        s.draining = true;
        this.log.info({ workerId: s.workerId, running: s.inFlight.size }, 'worker draining: no new tasks for it');
        return;
      }
      case 'release_tasks': {
        const s = this.sessionOf(conn, msg.type);
        void this.dispatcher.release(s, msg.tasks, msg.reason ?? 'released').catch((err) => this.log.error({ err, workerId: s.workerId }, 'release failed'));
        return;
      }
      case 'worker_ready': {
        const s = this.sessionOf(conn, msg.type);
        if (msg.capacity) s.hello = { ...s.hello, capacity: msg.capacity };
        s.draining = false;
        s.emptyAtVersion = -1;
        this.dispatcher.kick();
        return;
      }
      case 'task_result': {
        const { type: _t, ...outcome } = msg;
        this.dispatcher.acceptOutcomes(this.sessionOf(conn, msg.type), [outcome as TaskOutcome]);
        return;
      }
      case 'task_results':
        this.dispatcher.acceptOutcomes(this.sessionOf(conn, msg.type), msg.results);
        return;
      case 'task_progress': {
        const s = this.sessionOf(conn, msg.type);
        const f = s.inFlight.get(msg.taskId);
        if (!f || f.attempt !== msg.attempt) return; // progress of a task this worker no longer holds
        void this.store.taskProgressSet({ taskId: msg.taskId, attempt: msg.attempt, progress: msg.progress, message: msg.message ?? null });
        this.events.taskProgress(f.jobId, msg.taskId, msg.progress, msg.message, msg.data);
        return;
      }
      case 'submit_job': {
        const subscribe = msg.subscribe !== false;
        let early: string | null = null;
        void this.jobs.submit(msg.job, (jobId) => { if (subscribe) { early = jobId; this.events.subscribe(jobId, conn); } }).then((accepted) => {
          if (subscribe && early !== accepted.job.id) {
            if (early) this.events.unsubscribe(early, conn);
            this.events.subscribe(accepted.job.id, conn);
          }
          conn.send({ type: 'job_accepted', requestId: msg.requestId, jobId: accepted.job.id, totalTasks: accepted.job.counts.total,
            position: accepted.position, deduplicated: accepted.deduplicated });
          // A deduplicated job may have finished long ago: answer now rather than never.
          if (accepted.deduplicated && subscribe) void this.sendIfFinished(conn, accepted.job.id);
        }).catch((err) => {
          if (early) this.events.unsubscribe(early, conn);
          this.replyError(conn, err, msg.requestId);
        });
        return;
      }
      case 'subscribe_job':
        this.events.subscribe(msg.jobId, conn);
        void this.sendIfFinished(conn, msg.jobId, msg.requestId).catch((err) => this.replyError(conn, err, msg.requestId));
        return;
      case 'cancel_job':
        void this.jobs.cancel(msg.jobId).then((job) => {
          conn.send({ type: 'cancel_ack', jobId: job.id, state: job.state, ...(msg.requestId ? { requestId: msg.requestId } : {}) });
        }).catch((err) => this.replyError(conn, err, msg.requestId));
        return;
    }
  }

  /**
   * A heartbeat lists what the worker is running. Its leases are extended; revoked tasks it
   * no longer lists free their slots; tasks it should have had since before its previous
   * heartbeat but does not list were lost on the way (or forgotten) and are taken back.
   */
  private async onHeartbeat(s: WorkerSession, running: { taskId: string; attempt: number }[]): Promise<void> {
    const now = Date.now();
    const listed = new Map(running.map((r) => [r.taskId, r.attempt]));
    for (const [taskId, attempt] of s.revoked) if (listed.get(taskId) !== attempt) s.revoked.delete(taskId);
    const missing: string[] = [];
    const held: { taskId: string; attempt: number }[] = [];
    for (const [taskId, f] of s.inFlight) {
      if (listed.get(taskId) === f.attempt) held.push({ taskId, attempt: f.attempt });
      else if (f.assignedAt < s.lastHeartbeatAt) missing.push(taskId);
    }
    s.lastHeartbeatAt = now;
    s.lastSeenAt = now;
    if (held.length > 0) await this.store.taskLeaseExtend({ workerId: s.workerId, tasks: held, until: now + this.options.leaseTtlMs });
    if (missing.length > 0) {
      const refs = missing.map((taskId) => ({ taskId, attempt: s.inFlight.get(taskId)!.attempt }));
      for (const id of missing) s.inFlight.delete(id);
      this.log.warn({ workerId: s.workerId, taskIds: missing.slice(0, 5) }, 'worker no longer lists tasks it was given; taking them back');
      await this.dispatcher.takeBack(s.workerId, refs, { message: `CC_ERR_WORKER_LOST: worker ${s.workerId} stopped reporting the task`, code: 'CC_ERR_WORKER_LOST', reason: 'dropped' }, true);
    }
    if (s.free > 0) this.dispatcher.kick();
  }

  private async sendIfFinished(conn: Connection, jobId: string, requestId?: string): Promise<void> {
    const job = await this.store.jobGet(jobId);
    if (!job) {
      this.reply(conn, new CrowdComputeError('CC_ERR_JOB_NOT_FOUND', `job ${jobId} does not exist`, { jobId }), requestId);
      return;
    }
    if (job.completedAt !== null) {
      await this.events.sendCompletedTo(conn, { jobId, state: job.state, counts: job.counts, finished: true });
    } else {
      conn.send({ type: 'job_progress', jobId, state: job.state, counts: job.counts });
    }
  }

  private async onHello(conn: Connection, hello: Hello): Promise<void> {
    const major = (v: string) => v.split('.')[0];
    if (major(hello.protocol) !== major(PROTOCOL_VERSION)) {
      this.reply(conn, new CrowdComputeError('CC_ERR_PROTOCOL_VERSION', `worker ${hello.workerId} speaks protocol ${hello.protocol}, this foreman speaks ${PROTOCOL_VERSION}`));
      conn.close(4002, 'protocol version mismatch');
      return;
    }
    if (this.sessionsByConn.has(conn)) {
      throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `worker ${hello.workerId} already said hello on this connection`);
    }
    const keep = new Set((hello.running ?? []).map((r) => r.taskId));
    // A worker that reconnects before we noticed its old socket died replaces the old session.
    const old = this.dispatcher.sessions.get(hello.workerId);
    if (old) {
      this.log.info({ workerId: hello.workerId }, 'worker reconnected; replacing its previous connection');
      this.sessionsByConn.delete(old.conn);
      old.conn.close(4001, 'replaced by a new connection from the same worker');
      await this.dispatcher.removeSession(old, keep);
    }
    const now = Date.now();
    const session = new WorkerSession(conn, hello);
    conn.workerId = hello.workerId;
    // Tasks the store says this worker runs: keep those it still reports, requeue the rest.
    const held = await this.store.taskListRunningByWorker(hello.workerId);
    const reported = new Map((hello.running ?? []).map((r) => [r.taskId, r.attempt]));
    const lost = held.filter((t) => reported.get(t.taskId) !== t.attempt);
    for (const t of held) if (reported.get(t.taskId) === t.attempt) session.inFlight.set(t.taskId, { attempt: t.attempt, jobId: '', type: '', assignedAt: now, timeoutMs: null });
    if (session.inFlight.size > 0) {
      // Extend the adopted tasks' leases now: the worker proved it still holds them.
      await this.store.taskLeaseExtend({ workerId: hello.workerId, tasks: [...session.inFlight].map(([taskId, f]) => ({ taskId, attempt: f.attempt })), until: now + this.options.leaseTtlMs });
    }
    await this.dispatcher.takeBack(hello.workerId, lost, {
      message: `CC_ERR_WORKER_LOST: worker ${hello.workerId} reconnected without the task`, code: 'CC_ERR_WORKER_LOST', reason: 'worker_lost',
    }, true);
    await this.store.workerUpsert({
      id: hello.workerId, state: 'online', capacity: hello.capacity, patterns: hello.patterns, allowCode: hello.allowCode,
      resources: hello.resources ?? {}, version: hello.version ?? null, foremanId: this.options.foremanId, connectedAt: now, lastSeenAt: now,
    });
    if (conn.closed) return;
    this.sessionsByConn.set(conn, session);
    conn.send({ type: 'welcome', protocol: PROTOCOL_VERSION, foremanId: this.options.foremanId, workerId: hello.workerId,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs, leaseTtlMs: this.options.leaseTtlMs, maxPayloadBytes: this.options.maxPayloadBytes });
    this.log.info({ workerId: hello.workerId, capacity: hello.capacity, patterns: hello.patterns, allowCode: hello.allowCode, remote: conn.remote, adopted: session.inFlight.size },
      'worker connected');
    this.dispatcher.addSession(session);
  }

  private async onClose(conn: Connection): Promise<void> {
    conn.closed = true;
    this.connections.delete(conn);
    this.events.dropConnection(conn);
    const session = this.sessionsByConn.get(conn);
    if (!session) return;
    this.sessionsByConn.delete(conn);
    this.log.info({ workerId: session.workerId, running: session.inFlight.size }, 'worker disconnected');
    try {
      // When this foreman is the one going away, the worker did not fail: its assignments stay
      // as they are, for it to reclaim when it reconnects (here or to another foreman); the
      // lease covers a worker that never comes back.
      const keep = this.accepting ? undefined : new Set(session.inFlight.keys());
      await this.dispatcher.removeSession(session, keep);
      if (!this.dispatcher.sessions.has(session.workerId)) await this.store.workerDisconnected({ workerId: session.workerId, now: Date.now() });
    } catch (err) {
      this.log.error({ err, workerId: session.workerId }, 'could not release a disconnected worker\'s tasks');
    }
  }

  /** Refuse new connections (used by graceful shutdown). */
  stopAccepting(): void { this.accepting = false; }

  /** Close every connection; workers will reconnect elsewhere or later. Waits up to 2 s for the close handshakes. */
  async closeAll(code = 1001, reason = 'foreman shutting down'): Promise<void> {
    const closed = [...this.connections].map((conn) => new Promise<void>((resolve) => {
      if (conn.socket.readyState === conn.socket.CLOSED) { resolve(); return; }
      conn.socket.once('close', () => resolve());
      conn.close(code, reason);
    }));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise<void>((r) => { timer = setTimeout(r, 2_000); })]);
    clearTimeout(timer);
    for (const conn of this.connections) conn.socket.terminate();
    this.wss.close();
  }

}
