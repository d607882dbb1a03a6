import type { WebSocket } from 'ws';
import { FrameBatcher, type Outbound } from '../../protocol/index.ts';
import type { Principal } from '../../core/access.ts';
import type { Peer } from '../shared/peer.ts';
import { FloodGuard } from './flood-guard.ts';

let nextId = 0;

/**
 * One WebSocket peer of the foreman (a worker, a client, or both). Outbound messages of one
 * turn of the event loop leave as one frame (see protocol/framing.ts).
 * @internal
 */
export class Connection implements Peer {
  readonly id = `c${++nextId}`;
  readonly remote: string;
  readonly host: string;
  principal: Principal;
  readonly credentials = new Set<string>();
  closed = false;
  /** Last time anything (a message or a pong) came from the peer. */
  lastSeenAt = Date.now();
  readonly flood: FloodGuard;
  readonly socket: WebSocket;
  private readonly outbox: FrameBatcher;

  constructor(socket: WebSocket, who: { remote: string; host: string; principal: Principal }, options: { maxFrameBytes: number; maxMessagesPerSecond: number; floodCloseAfterMs: number }) {
    this.socket = socket;
    this.remote = who.remote;
    this.host = who.host;
    this.principal = who.principal;
    this.flood = new FloodGuard(options.maxMessagesPerSecond, options.floodCloseAfterMs);
    this.outbox = new FrameBatcher({
      maxFrameChars: options.maxFrameBytes,
      write: (frame) => { if (!this.closed && this.socket.readyState === this.socket.OPEN) this.socket.send(frame); },
    });
  }

  send(message: Outbound): void {
    if (!this.closed) this.outbox.push(message);
  }

  flush(): void {
    if (!this.closed) this.outbox.flush();
  }

  close(code: number, reason: string): void {
    this.outbox.flush();
    this.closed = true;
    try { this.socket.close(code, closeReason(reason)); } catch { /* already closing */ }
  }
}

/** The most bytes a WebSocket close frame's reason may hold (RFC 6455: 125 less the code's 2). */
const MAX_CLOSE_REASON_BYTES = 123;

/**
 * A close reason cut to what a close frame holds, in bytes of UTF-8 and at a character's
 * boundary: a reason too long is refused by the socket (it throws), and the connection would
 * stay open. Reasons carry what peers sent (a worker id in any script), so they are measured.
 */
export function closeReason(text: string): string {
  if (Buffer.byteLength(text) <= MAX_CLOSE_REASON_BYTES) return text;
  let bytes = 0;
  let out = '';
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_CLOSE_REASON_BYTES) break;
    bytes += n;
    out += ch;
  }
  return out;
}
