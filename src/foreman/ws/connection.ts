import type { WebSocket } from 'ws';
import type { Outbound } from '../../protocol/index.ts';

let nextId = 0;

/**
 * One WebSocket peer of the foreman (a worker, a client, or both).
 *
 * Outbound messages are queued and written on the next turn of the event loop: when many
 * go to one peer in a burst (assignments, acks, progress), they leave as one frame holding
 * a JSON array instead of one frame each. A lone message still goes out as a plain object,
 * so a browser or a hand-written client sees the simple form most of the time.
 */
export class Connection {
  readonly id = `c${++nextId}`;
  readonly remote: string;
  /** Set once a worker's hello is accepted. */
  workerId: string | null = null;
  private outbox: string[] = [];
  private outboxBytes = 0;
  private scheduled = false;
  closed = false;
  /** Last time anything (a message or a pong) came from the peer. */
  lastSeenAt = Date.now();
  /** Token bucket of the per-connection message rate limit. */
  tokens = 0;
  tokensAt = Date.now();
  lastRateError = 0;
  overLimitSince = 0;
  lastDropAt = 0;

  readonly socket: WebSocket;
  private readonly maxFrameBytes: number;

  constructor(socket: WebSocket, remote: string, maxFrameBytes: number) {
    this.socket = socket;
    this.remote = remote;
    this.maxFrameBytes = maxFrameBytes;
  }

  send(message: Outbound): void {
    if (this.closed) return;
    const text = JSON.stringify(message);
    if (this.outboxBytes + text.length > this.maxFrameBytes) this.flush();
    this.outbox.push(text);
    this.outboxBytes += text.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.outbox.length === 0 || this.closed) return;
    const frame = this.outbox.length === 1 ? this.outbox[0] : `[${this.outbox.join(',')}]`;
    this.outbox = [];
    this.outboxBytes = 0;
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame);
  }

  close(code: number, reason: string): void {
    this.flush();
    this.closed = true;
    try { this.socket.close(code, reason.slice(0, 120)); } catch { /* already closing */ }
  }
}
