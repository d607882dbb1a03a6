import type { Logger } from 'pino';
import { PeriodicService } from '../service.ts';
import type { JobEvents } from './job-events.ts';

/**
 * With several foremen on one database, a job watched here can finish through another
 * foreman; its completion arrives by notification. This looks the watched jobs up now and
 * then, as a backstop for a notification lost with a dropped LISTEN connection.
 */
export class WatchedJobRecheck extends PeriodicService {
  readonly name = 'watched job recheck';
  private readonly events: JobEvents;

  constructor(events: JobEvents, intervalMs: number, log: Logger) {
    super(intervalMs, log);
    this.events = events;
  }

  protected runOnce(): Promise<void> {
    return this.events.recheckWatched();
  }
}
