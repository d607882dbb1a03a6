/**
 * The worker page's live feed: WebSocket connections on the status server's `/ws`, each sent
 * `{type: 'status', data}` at once and then about once a second. The snapshot is made once per
 * tick for every watcher, and not at all while nobody watches, so an unwatched worker spends
 * nothing on its page.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';

/** A watcher whose socket has this much unsent is skipped until it catches up. */
const MAX_BUFFERED = 1024 * 1024;

/** Pushes a snapshot to everyone connected to `path`, every `intervalMs`. */
export class LiveFeed {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  private readonly clients = new Set<WebSocket>();
  private readonly snapshot: () => unknown;
  private readonly intervalMs: number;
  private timer: ReturnType<typeof setInterval> | null = null;
  private closed = false;

  constructor(snapshot: () => unknown, options: { intervalMs?: number } = {}) {
    this.snapshot = snapshot;
    this.intervalMs = options.intervalMs ?? 1_000;
  }

  /** People watching now. */
  get watchers(): number { return this.clients.size; }

  /**
   * Answer WebSocket upgrades on `path` of `server`; other paths get 404, and upgrades that
   * `refusal` gives a reason for get 403 with it (as the server's HTTP routes would).
   */
  attach(server: Server, options: { path?: string; refusal?: (req: IncomingMessage) => string | null } = {}): void {
    const path = options.path ?? '/ws';
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if ((req.url ?? '').split('?')[0] !== path || this.closed) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      const refused = options.refusal?.(req);
      if (refused) {
        const body = JSON.stringify({ code: 'CC_ERR_FORBIDDEN', message: refused, detail: 'refused' });
        socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        return;
      }
      // Browsers let any web site open a WebSocket to 127.0.0.1; only the page this server
      // served (same origin) may read the worker's status through it. Tools send no Origin.
      if (!sameOrigin(req)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.add(ws));
    });
  }

  /** Close every watcher's socket and stop pushing. */
  close(): void {
    this.closed = true;
    this.stopTimer();
    for (const ws of this.clients) ws.terminate();
    this.clients.clear();
    this.wss.close();
  }

  private add(ws: WebSocket): void {
    if (this.closed) { ws.terminate(); return; }
    this.clients.add(ws);
    ws.on('close', () => {
      this.clients.delete(ws);
      if (this.clients.size === 0) this.stopTimer();
    });
    ws.on('error', () => ws.terminate());
    // Watchers only listen; whatever they send is ignored.
    this.send([ws]);
    if (!this.timer) {
      this.timer = setInterval(() => this.send(this.clients), this.intervalMs);
      this.timer.unref();
    }
  }

  private send(to: Iterable<WebSocket>): void {
    let frame: string | null = null;
    for (const ws of to) {
      if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED) continue;
      frame ??= JSON.stringify({ type: 'status', data: this.snapshot() });
      ws.send(frame);
    }
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** True when the upgrade has no Origin (not a browser) or one whose host is the host it asked for. */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  try {
    // Both as URLs spell them (lower case, default port dropped).
    return new URL(origin).host === new URL(`http://${req.headers.host ?? ''}`).host;
  } catch {
    return false;
  }
}
