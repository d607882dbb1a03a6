/**
 * The lifecycle every long-running part of the foreman shares, after River's startstop:
 * `start()` and `stop()` may each be called twice; `stop()` before `start()` does nothing;
 * `stop()` waits for the work in progress to end; a stopped service does not start again.
 * The foreman starts its services in order and stops them in reverse.
 */
import type { Logger } from 'pino';
import { isStoreOutage } from '../../store/store-errors.ts';
import type { LoopHealth, LoopTracker } from './loop-health.ts';

/** A long-running part of the foreman. */
export interface Service {
  /** For logs: what this service is. */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A service that does one round of work every `intervalMs`, never two rounds at once. Tests
 * call {@link PeriodicService.runNow} instead of waiting for the timer.
 */
export abstract class PeriodicService implements Service {
  abstract readonly name: string;
  private timer: ReturnType<typeof setInterval> | null = null;
  private current: Promise<void> | null = null;
  private state: 'new' | 'running' | 'stopped' = 'new';
  protected readonly intervalMs: number;
  protected readonly log: Logger;
  /** Where the rounds are reported, once {@link PeriodicService.watchedBy} is called. */
  protected tracker: LoopTracker | null = null;

  constructor(intervalMs: number, log: Logger) {
    this.intervalMs = intervalMs;
    this.log = log;
  }

  /** One round of work. Errors are logged; the next round runs as usual. */
  protected abstract runOnce(now: number): Promise<void>;

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    this.timer = setInterval(() => void this.runNow(), this.intervalMs);
    this.timer.unref();
  }

  /** Report this service's rounds to `loops` (so that /health sees a round stuck or failing). */
  watchedBy(loops: LoopHealth): this {
    this.tracker = loops.track(this.name);
    return this;
  }

  /** Run a round now, or wait for the one already running. */
  runNow(now = Date.now()): Promise<void> {
    if (this.current) return this.current;
    this.tracker?.began();
    this.current = this.runOnce(now)
      .then(() => this.tracker?.succeeded(), (err: unknown) => {
        this.tracker?.failed(err);
        // A store outage is logged once, when it starts, by the store's health tracker.
        this.log[isStoreOutage(err) ? 'debug' : 'error']({ err, service: this.name }, `${this.name} failed; it runs again in ${this.intervalMs} ms`);
      })
      .finally(() => { this.current = null; });
    return this.current;
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.current;
  }

  /** A periodic service whose round is one call: `run(now)` every `intervalMs`. */
  static of(name: string, intervalMs: number, log: Logger, run: (now: number) => void | Promise<void>): PeriodicService {
    return new (class extends PeriodicService {
      readonly name = name;
      protected async runOnce(now: number): Promise<void> { await run(now); }
    })(intervalMs, log);
  }
}
