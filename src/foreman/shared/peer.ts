import type { Outbound } from '../../protocol/index.ts';
import type { Principal } from '../../core/access.ts';

/**
 * Someone connected to the foreman (a worker, a client, or both): what the foreman's logic
 * needs of a connection, and all it may do with one. Sessions, dispatch and job events talk
 * to this, never to the socket, so they do not depend on the transport.
 */
export interface Peer {
  /** Stable for the connection's life, for logs. */
  readonly id: string;
  /** The remote address, for logs and the failed-attempt limit. */
  readonly remote: string;
  /** The host the peer dialed (the upgrade's Host header); workers sign it into their hello. */
  readonly host: string;
  readonly closed: boolean;
  /** Who the connection acts for as a client (from its upgrade); anonymous until then. */
  principal: Principal;
  /** The credentials this connection holds open (its API key, its worker token): cut when one is revoked. */
  readonly credentials: Set<string>;
  /** Queue a message; messages of one turn leave as one frame. Dropped once closed. */
  send(message: Outbound): void;
  /**
   * Write what is queued now, instead of at the end of the turn: for a message someone waits
   * on (tasks for an idle worker), when nothing more for this peer is coming this turn.
   */
  flush(): void;
  close(code: number, reason: string): void;
}
