import type { Logger } from 'pino';
import type { ForemanMetrics } from './shared/foreman-metrics.ts';

/** While refusals go on, how often one line sums them up. */
const LOG_EVERY_MS = 60_000;

/** An address's open connections, and its refusals not yet logged. */
interface Holder { open: number; refused: number; loggedAt: number | null }

/**
 * Open connections per client address, HTTP and WebSocket together, so that one client cannot
 * hold every socket the foreman has (slow requests, idle keep-alives, unauthenticated
 * WebSockets) while others wait. A connection past the cap is closed at once. Refusals are
 * counted in `crowdcompute_connections_refused_total{reason="per_address"}` and logged once per
 * address, not per connection: the first refusal says so, and while they go on, one line a
 * minute says how many more there were, so a flood of refused connections is not a flood of
 * log lines.
 */
export class AddressCap {
  private readonly holders = new Map<string, Holder>();
  private readonly max: number;
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;

  constructor(max: number, deps: { metrics: ForemanMetrics; log: Logger }) {
    this.max = max;
    this.metrics = deps.metrics;
    this.log = deps.log;
  }

  /**
   * Take a place for a connection from `address`: a function that gives it back (safe to call
   * twice), or null when the address holds the most it may (the caller closes the connection).
   */
  open(address: string): (() => void) | null {
    let h = this.holders.get(address);
    if (!h) {
      h = { open: 0, refused: 0, loggedAt: null };
      this.holders.set(address, h);
    }
    if (h.open >= this.max) {
      this.metrics.connectionsRefused.inc({ reason: 'per_address' });
      h.refused++;
      const now = Date.now();
      if (h.loggedAt === null) {
        this.log.warn({ address, limit: this.max }, `connections refused: ${address} holds ${this.max} open connections, the most one address may (--max-connections-per-address); `
          + 'further refusals from it are counted (crowdcompute_connections_refused_total) and logged once a minute');
      } else if (now - h.loggedAt >= LOG_EVERY_MS) {
        this.log.warn({ address, limit: this.max, refused: h.refused }, `connections refused: ${h.refused} more from ${address} in the last ${Math.round((now - h.loggedAt) / 1000)} s (--max-connections-per-address ${this.max})`);
      } else {
        return null;
      }
      h.loggedAt = now;
      h.refused = 0;
      return null;
    }
    h.open++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.close(address);
    };
  }

  private close(address: string): void {
    const h = this.holders.get(address);
    if (!h) return;
    h.open--;
    if (h.open > 0) return;
    this.holders.delete(address);
  }
}
