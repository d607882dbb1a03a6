import type { Logger } from 'pino';
import { CrowdComputeError } from '../../protocol/index.ts';
import type { Store } from '../../store/store.ts';
import { storeError } from '../../store/store-errors.ts';
import type { ForemanMetrics } from './foreman-metrics.ts';

/**
 * The call whose success ends a "full" state: the space probe, which needs room for a small
 * submission. (A tiny write can fit in a nearly full file; that is not room to work in.)
 */
const GROWING = new Set(['probeSpace']);
const PROBE_INTERVAL_MS = 2_000;

/** Whether the store answers: `ok`, `unavailable` (cannot be reached), or `full` (cannot grow). */
export type StoreState = 'ok' | 'unavailable' | 'full';

/**
 * What the foreman knows of its store's health, from the outcome of every call: an outage
 * starts with the first call that fails for want of a database, and ends with the first that
 * succeeds. /health reports it, the metrics count outages and their length, the log says when
 * one starts and ends (once each, not once per failed call), and the lease reaper waits a
 * lease TTL after an outage (workers' heartbeats could not renew leases meanwhile).
 */
export class StoreHealth {
  state: StoreState = 'ok';
  /** When the current state began. */
  since = Date.now();
  /** The last call that succeeded. */
  lastOkAt = Date.now();
  /** The error that began the current outage. */
  lastError: string | null = null;
  /** When the store last came back (or the foreman started): leases may be stale until a TTL after. */
  availableSince = Date.now();
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;
  private watched: Store | null = null;
  private probe: ReturnType<typeof setInterval> | null = null;

  constructor(metrics: ForemanMetrics, log: Logger) {
    this.metrics = metrics;
    this.log = log;
    this.metrics.storeUp.set(1);
  }

  /**
   * A call succeeded. A full store still answers reads and small writes; only the space probe
   * says it can grow again.
   */
  ok(call: string): void {
    const now = Date.now();
    this.lastOkAt = now;
    if (this.state === 'ok' || (this.state === 'full' && !GROWING.has(call))) return;
    this.stopProbing();
    const seconds = (now - this.since) / 1000;
    this.metrics.storeOutageSeconds.inc(seconds);
    this.metrics.storeUp.set(1);
    this.log.warn({ store: 'ok', downForSeconds: Math.round(seconds * 10) / 10, was: this.state }, 'the store answers again; resuming');
    this.state = 'ok';
    this.since = this.availableSince = now;
    this.lastError = null;
  }

  /** A call failed: an outage begins if the failure is the database's. */
  failed(err: unknown): void {
    if (!(err instanceof CrowdComputeError)) return;
    const state: StoreState | null = err.code === 'CC_ERR_STORE_UNAVAILABLE' ? 'unavailable' : err.code === 'CC_ERR_STORE_FULL' ? 'full' : null;
    if (!state || state === this.state) return;
    if (this.state === 'ok') {
      this.metrics.storeOutages.inc({ kind: state });
      this.metrics.storeUp.set(0);
    }
    this.log.error({ store: state, error: err.message }, state === 'full'
      ? 'the store cannot grow: submissions are refused (507) and results wait until space is freed'
      : 'the store cannot be reached: submissions are refused (503), workers keep their tasks and results until it is back');
    this.state = state;
    this.since = Date.now();
    this.lastError = err.message;
    if (state === 'full') this.startProbing();
  }

  /**
   * While the store is full, try a growing write every few seconds: space freed by pruning (or
   * by the operator) is noticed even when nothing is submitted.
   */
  private startProbing(): void {
    if (this.probe || !this.watched) return;
    const store = this.watched;
    this.probe = setInterval(() => void store.probeSpace().catch(() => { /* still full: noted by failed() */ }), PROBE_INTERVAL_MS);
    this.probe.unref();
  }

  private stopProbing(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
  }

  /** Stop probing (the foreman stops). */
  close(): void {
    this.stopProbing();
  }

  /**
   * The store, watched: every call's outcome goes to this tracker, and database failures come
   * out as CC_ERR_STORE_UNAVAILABLE or CC_ERR_STORE_FULL whatever the driver.
   */
  watch(store: Store): Store {
    const health = this;
    this.watched = new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function' || prop === 'close' || prop === 'listen' || prop === 'migrate') return value;
        return (...args: unknown[]) => {
          const out = (value as (...a: unknown[]) => unknown).apply(target, args);
          if (!(out instanceof Promise)) return out;
          return out.then((v) => { health.ok(String(prop)); return v; }, (err: unknown) => {
            const mapped = storeError(err, `calling the store (${String(prop)})`);
            health.failed(mapped);
            throw mapped;
          });
        };
      },
    });
    return this.watched;
  }
}
