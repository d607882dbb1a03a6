import type { Logger } from 'pino';
import { PeriodicService } from '../service.ts';
import type { WsTransport } from '../ws/ws-transport.ts';

/**
 * Pings every connection and cuts those silent for a lease TTL (peers whose socket died
 * without a close frame) or that do not read what is sent to them. A cut worker's tasks go
 * back to the queue at once, as for a closed socket.
 */
export class ConnectionReaper extends PeriodicService {
  readonly name = 'connection reaper';
  private readonly transport: WsTransport;
  private readonly silentMs: number;

  constructor(transport: WsTransport, options: { intervalMs: number; silentMs: number }, log: Logger) {
    super(options.intervalMs, log);
    this.transport = transport;
    this.silentMs = options.silentMs;
  }

  protected async runOnce(now: number): Promise<void> {
    this.transport.pingAndCull(now, this.silentMs);
  }
}
