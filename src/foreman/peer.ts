import type { Outbound } from '../protocol/index.ts';

/**
 * Someone connected to the foreman (a worker, a client, or both): what the foreman's logic
 * needs of a connection, and all it may do with one. Sessions, dispatch and job events talk
 * to this, never to the socket, so they do not depend on the transport.
 */
export interface Peer {
  /** Stable for the connection's life, for logs. */
  readonly id: string;
  /** The remote address, for logs. */
  readonly remote: string;
  readonly closed: boolean;
  /** Queue a message; messages of one turn leave as one frame. Dropped once closed. */
  send(message: Outbound): void;
  close(code: number, reason: string): void;
}
