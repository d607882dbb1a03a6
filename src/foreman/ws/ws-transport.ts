import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { Logger } from 'pino';
import { CrowdComputeError, formatBytes, parseInbound, type Inbound } from '../../protocol/index.ts';
import type { Principal } from '../../core/access.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { Peer } from '../shared/peer.ts';
import type { Service } from '../shared/service.ts';
import { Connection } from './connection.ts';

/** Limits of the WebSocket endpoint. */
export interface WsTransportOptions {
  path: string;
  maxPayloadBytes: number;
  /** Sustained messages per second one connection may send (bursts up to twice that). */
  maxMessagesPerSecond: number;
  /** Most connections at once; more are refused with 503. */
  maxConnections: number;
  /** Most connections one client address may hold (for the refusal's message; the handlers' `admit` counts). */
  maxConnectionsPerAddress: number;
  /** A peer that does not read: its connection is cut when this much is waiting to be sent. */
  maxBufferedBytes: number;
  /** A connection over its rate limit for this long is closed (policy violation). */
  floodCloseAfterMs: number;
  /** A connection with no credential after this long (no key at the upgrade, no valid worker hello) is closed. 0 = never. */
  authenticateWithinMs: number;
}

/** Where the transport hands what arrives. */
export interface WsTransportHandlers {
  /**
   * One valid message. A thrown or rejected CrowdComputeError is answered with an `error`
   * message carrying the request's id; anything else is logged and answered CC_ERR_INTERNAL.
   */
  onMessage(peer: Peer, message: Inbound): void | Promise<void>;
  /** The connection closed (or was cut). */
  onClose(peer: Peer): void | Promise<void>;
  /**
   * Who is upgrading, from the request's headers: throws a CrowdComputeError to refuse the
   * upgrade (CC_ERR_UNAUTHORIZED: 401, CC_ERR_RATE_LIMITED: 429). `credentialId` is the API key
   * the connection holds, if any.
   */
  authenticate(req: IncomingMessage): Promise<{ principal: Principal; credentialId?: string }>;
  /** The client's address of an upgrade, the same as HTTP requests get (X-Forwarded-For from trusted proxies only). */
  clientAddress(req: IncomingMessage): string;
  /**
   * A place for this upgrade under the per-address connection cap: a function that gives it
   * back, or null when the client's address holds the most it may (refused with 429).
   */
  admit(req: IncomingMessage): (() => void) | null;
}

/** Answer an upgrade with an HTTP error (401, 429, 500) whose body names the problem, and close. */
function refuseUpgrade(socket: Duplex, e: CrowdComputeError): void {
  const status = e.code === 'CC_ERR_RATE_LIMITED' ? '429 Too Many Requests' : e.code === 'CC_ERR_UNAUTHORIZED' ? '401 Unauthorized' : '500 Internal Server Error';
  const body = JSON.stringify({ code: e.code, message: e.message, detail: e.message });
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/** Most messages in one frame (a JSON array). */
const MAX_MESSAGES_PER_FRAME = 10_000;

/**
 * The foreman's WebSocket endpoint, and nothing but transport: connections, frame limits,
 * parsing message by message, the per-connection rate limit, pings and cutting dead peers.
 * What a message means is the handlers' business. A bad message gets an `error` reply naming
 * the problem, and nothing else on the connection is affected.
 */
export class WsTransport implements Service {
  readonly name = 'websocket transport';
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly handlers: WsTransportHandlers;
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;
  private readonly options: WsTransportOptions;
  private accepting = true;

  constructor(handlers: WsTransportHandlers, deps: { metrics: ForemanMetrics; log: Logger }, options: WsTransportOptions) {
    this.handlers = handlers;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.options = options;
    // Frames a little over the limit still arrive, so that we can answer with an error that
    // names the limit; far larger ones are cut off by ws itself (close code 1009).
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes + 1024 * 1024 });
  }

  /** Serve WebSocket upgrades on `path` of this HTTP server. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== this.options.path || !this.accepting) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      if (this.connections.size >= this.options.maxConnections) {
        this.metrics.connectionsRefused.inc({ reason: 'max_connections' });
        this.log.warn({ limit: this.options.maxConnections }, 'connection refused: too many connections (--max-connections)');
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
        return;
      }
      const release = this.handlers.admit(req);
      if (!release) {
        refuseUpgrade(socket, new CrowdComputeError('CC_ERR_RATE_LIMITED', `${this.handlers.clientAddress(req)} holds ${this.options.maxConnectionsPerAddress} open connections, the most one address may (--max-connections-per-address)`));
        return;
      }
      // The place is given back when the socket closes, whether the upgrade was refused, failed or served.
      socket.once('close', release);
      this.handlers.authenticate(req).then(
        (who) => this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws, req, who)),
        (err: unknown) => refuseUpgrade(socket, err instanceof CrowdComputeError ? err : new CrowdComputeError('CC_ERR_INTERNAL', `internal error: ${(err as Error).message}`)),
      );
    });
  }

  private onSocket(ws: WebSocket, req: IncomingMessage, who: { principal: Principal; credentialId?: string }): void {
    const conn = new Connection(ws, { remote: this.handlers.clientAddress(req), host: req.headers.host ?? '', principal: who.principal }, {
      maxFrameBytes: Math.max(64 * 1024, this.options.maxPayloadBytes),
      maxMessagesPerSecond: this.options.maxMessagesPerSecond,
      floodCloseAfterMs: this.options.floodCloseAfterMs,
    });
    if (who.credentialId) conn.credentials.add(who.credentialId);
    this.connections.add(conn);
    if (this.options.authenticateWithinMs > 0 && who.principal.kind === 'anonymous') {
      // A connection may open without a key (a worker proves its token in its hello), but it
      // does not stay open long without proving anything.
      const deadline = setTimeout(() => {
        if (conn.principal.kind === 'anonymous' && conn.credentials.size === 0 && !conn.closed) {
          conn.close(4401, `CC_ERR_UNAUTHORIZED: no credential within ${this.options.authenticateWithinMs} ms`);
        }
      }, this.options.authenticateWithinMs);
      deadline.unref();
      ws.once('close', () => clearTimeout(deadline));
    }
    ws.on('message', (data: RawData) => this.onFrame(conn, data));
    ws.on('pong', () => { conn.lastSeenAt = Date.now(); });
    ws.on('close', () => {
      conn.closed = true;
      this.connections.delete(conn);
      this.settle(conn, () => this.handlers.onClose(conn));
    });
    ws.on('error', (err) => this.log.warn({ err, conn: conn.id, remote: conn.remote }, 'websocket error'));
  }

  private reply(conn: Connection, err: CrowdComputeError, requestId?: string): void {
    this.metrics.protocolErrors.inc({ code: err.code });
    conn.send({ type: 'error', ...err.toJSON(), ...(requestId ? { requestId } : {}) });
  }

  /** Run a handler; answer what it throws or rejects with. */
  private settle(conn: Connection, run: () => void | Promise<void>, requestId?: string): void {
    try {
      const done = run();
      if (done) done.catch((err: unknown) => this.replyError(conn, err, requestId));
    } catch (err) {
      this.replyError(conn, err, requestId);
    }
  }

  private replyError(conn: Connection, err: unknown, requestId?: string): void {
    if (err instanceof CrowdComputeError) { this.reply(conn, err, requestId); return; }
    this.log.error({ err, conn: conn.id, remote: conn.remote }, 'message handler failed');
    if (!conn.closed) this.reply(conn, new CrowdComputeError('CC_ERR_INTERNAL', `internal error: ${(err as Error).message}`), requestId);
  }

  private onFrame(conn: Connection, data: RawData): void {
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
      const message = parsed.message;
      this.settle(conn, () => this.handlers.onMessage(conn, message), (message as { requestId?: string }).requestId);
    }
  }

  /** Apply the connection's rate limit to a frame of `messages` messages. */
  private admit(conn: Connection, messages: number): boolean {
    const verdict = conn.flood.judge(messages);
    if (verdict === 'admit') return true;
    const rate = conn.flood.perSecond;
    if (verdict === 'close') {
      this.log.warn({ conn: conn.id, remote: conn.remote }, 'closing a connection that kept flooding');
      conn.close(1008, `CC_ERR_RATE_LIMITED: over ${rate} messages/s for ${this.options.floodCloseAfterMs} ms`);
      return false;
    }
    if (verdict === 'refuse-and-warn') {
      this.reply(conn, new CrowdComputeError('CC_ERR_RATE_LIMITED', `this connection sends more than ${rate} messages/s (bursts up to ${rate * 2}); messages are being dropped (--max-messages-per-second)`,
        { limit: rate }));
    } else {
      this.metrics.protocolErrors.inc({ code: 'CC_ERR_RATE_LIMITED' });
    }
    return false;
  }

  /**
   * Ping every connection, and cut those silent for longer than `silentMs` (dead peers whose
   * socket never closed) or that do not read what is sent to them.
   */
  pingAndCull(now: number, silentMs: number): void {
    for (const conn of this.connections) {
      if (now - conn.lastSeenAt > silentMs) {
        this.log.warn({ conn: conn.id, remote: conn.remote, silentMs: now - conn.lastSeenAt }, 'peer silent for longer than the lease TTL; cutting the connection');
        conn.socket.terminate();
        continue;
      }
      if (conn.socket.bufferedAmount > this.options.maxBufferedBytes) {
        this.log.warn({ conn: conn.id, remote: conn.remote, buffered: conn.socket.bufferedAmount }, 'peer does not read; cutting the connection');
        conn.socket.terminate();
        continue;
      }
      try { conn.socket.ping(); } catch { /* closing */ }
    }
  }

  /** Close every connection that holds one of these credentials (they were revoked). */
  closeHolding(credentialIds: ReadonlySet<string>): number {
    let n = 0;
    for (const conn of this.connections) {
      if ([...conn.credentials].some((id) => credentialIds.has(id))) {
        conn.close(4403, 'CC_ERR_UNAUTHORIZED: the credential of this connection was revoked');
        n++;
      }
    }
    return n;
  }

  /** True while the transport takes new connections. */
  get isAccepting(): boolean { return this.accepting; }

  /** Refuse new connections (graceful shutdown). */
  stopAccepting(): void { this.accepting = false; }

  /** Connections are served from `attach` on; nothing more to start. */
  async start(): Promise<void> {}

  /** Refuse new connections and close every open one. */
  async stop(): Promise<void> {
    this.stopAccepting();
    await this.closeAll();
  }

  /** Close every connection; workers reconnect elsewhere or later. Waits up to 2 s for the close handshakes. */
  async closeAll(code = 1001, reason = 'foreman shutting down'): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = this.closeEvery(code, reason);
    return this.closing;
  }

  private closing: Promise<void> | null = null;

  private async closeEvery(code: number, reason: string): Promise<void> {
    const closed = [...this.connections].map((conn) => new Promise<void>((resolve) => {
      if (conn.socket.readyState === conn.socket.CLOSED) { resolve(); return; }
      conn.socket.once('close', () => resolve());
      conn.close(code, reason);
    }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(closed), new Promise<void>((r) => { timer = setTimeout(r, 2_000); })]);
    clearTimeout(timer);
    for (const conn of this.connections) conn.socket.terminate();
    this.wss.close();
  }
}
