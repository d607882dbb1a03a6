import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { WEBHOOK_EVENT, WEBHOOK_HEADERS, webhookHostAllowed, type JobView } from '../../protocol/index.ts';
import { retryDelayMs, type BackoffOptions } from '../../core/retry.ts';
import type { Store, WebhookAttempt, WebhookClaim } from '../../store/store.ts';
import { isStoreOutage } from '../../store/store-errors.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { LoopTracker } from '../shared/loop-health.ts';
import type { Service } from '../shared/service.ts';

/** How deliveries are tried. */
export interface WebhookSenderOptions {
  /** Attempts before a delivery is given up (`failed`). */
  attempts: number;
  /** The wait before the second attempt (doubling, jittered) and the longest wait. */
  backoff: BackoffOptions;
  /** How long a receiver has to answer one attempt, headers and body. */
  timeoutMs: number;
  /** Attempts in flight at once. */
  concurrency: number;
  /** The longest the timer sleeps: deliveries written through another foreman are found within this. */
  safetySweepMs: number;
  /** The hosts it may call (`--webhook-host`); empty or omitted: any. */
  hosts?: readonly string[];
  /** The time now (tests may set it). Default Date.now. */
  clock?: () => number;
}

/** The longest webhook backoff: an attempt is never put off longer than this. */
export const WEBHOOK_MAX_BACKOFF_MS = 6 * 3_600_000;
/** The safety sweep of the sender's timer. */
export const WEBHOOK_SAFETY_SWEEP_MS = 5_000;
/** Most of a receiver's answer read (and dropped): never a flood. */
const MAX_ANSWER_BYTES = 4_096;
/** A claim's result that never came back (its foreman stopped) is tried again this long after the send's timeout. */
const LEASE_MARGIN_MS = 30_000;
/** After a round that failed (the store was out), the next is this much later. */
const RETRY_ROUND_MS = 1_000;

/**
 * A delivery's signature, as Standard Webhooks defines it: `v1,` and the base64 HMAC-SHA256, under
 * the key the secret (`whsec_<base64>`) holds, of `<id>.<timestamp>.<body>`.
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/**
 * Posts the end of jobs to their webhooks. The rows come from the store (written in the very
 * transaction that ended the job), so nothing here is on the dispatch path: the dispatcher
 * commits, and this service, on its own timer, claims due attempts and sends them, at most
 * `concurrency` at once. A receiver that is slow or never answers holds one of those slots until
 * the timeout, nothing else; redirects are not followed and at most 4 KiB of an answer is read
 * (and not kept).
 *
 * Each attempt is claimed in the store before it is sent (exactly once across foremen) and its
 * outcome recorded under a guard on the attempt: a 2xx answer delivers it, anything else is
 * tried again after an exponential, jittered backoff, until the last attempt gives it up.
 * Delivery is at least once: a foreman that stops between a send and its record leaves the
 * attempt to be claimed again when its lease lapses, so receivers should dedupe on `webhook-id`.
 */
export class WebhookSender implements Service {
  readonly name = 'webhook sender';
  private readonly deps: { store: Store; metrics: ForemanMetrics; log: Logger; signingSecret: string | null; jobView: (jobId: string) => Promise<JobView | null>; tracker?: LoopTracker };
  private readonly options: WebhookSenderOptions;
  private readonly clock: () => number;
  private readonly agent: Agent;
  private readonly inFlight = new Set<Promise<void>>();
  /** Aborts the sends in flight when the foreman stops: a silent receiver does not hold up a shutdown. */
  private readonly stopping = new AbortController();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private armedAt: number | null = null;
  private current: Promise<void> | null = null;
  private again = false;
  /** A look is scheduled for the job ends of this turn. */
  private endedSoon = false;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(deps: WebhookSender['deps'], options: WebhookSenderOptions) {
    this.deps = deps;
    this.options = options;
    this.clock = options.clock ?? Date.now;
    // Its own connection pool: a receiver's slowness never touches anything else's sockets.
    this.agent = new Agent({ connectTimeout: options.timeoutMs, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs, connections: options.concurrency });
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    void this.lookAgain();
  }

  /** Stop claiming; cut the attempts in flight short (each is recorded, to be tried again) and wait for them. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const started = this.state === 'running';
    this.state = 'stopped';
    this.disarm();
    await this.current;
    this.stopping.abort();
    await Promise.allSettled([...this.inFlight]);
    if (started) await this.agent.close().catch(() => {});
  }

  /**
   * A job ended (here or through another foreman): its delivery may be due now. Looked for after
   * the turn, not here: this is called as the job's end is published, and the claim would
   * otherwise come before the job's subscribers hear of it. The ends of one turn share one look.
   */
  jobEnded(): void {
    if (this.endedSoon || this.state !== 'running') return;
    this.endedSoon = true;
    setImmediate(() => { this.endedSoon = false; void this.lookAgain(); });
  }

  /** Claim and send what is due now, then set the timer for the next (tests call it too). */
  lookAgain(): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    if (this.current) { this.again = true; return this.current; }
    this.disarm();
    this.current = this.round().finally(() => {
      this.current = null;
      if (this.again) { this.again = false; void this.lookAgain(); }
    });
    return this.current;
  }

  private async round(): Promise<void> {
    const { store, log, tracker } = this.deps;
    tracker?.began();
    try {
      const room = this.options.concurrency - this.inFlight.size;
      let claimed = 0;
      if (room > 0) {
        const claims = await store.webhookClaimDue({ now: this.clock(), limit: room, leaseMs: this.options.timeoutMs + LEASE_MARGIN_MS });
        for (const c of claims) this.launch(c);
        claimed = claims.length;
      }
      // Full: the next round is when an attempt in flight ends (it calls lookAgain).
      const next = await store.webhookNextDue();
      // Due, yet nothing was taken: another foreman holds those rows for a moment; look again shortly, not at once.
      const at = next !== null && next <= this.clock() && claimed === 0 && room > 0 ? this.clock() + RETRY_ROUND_MS : next;
      if (this.inFlight.size < this.options.concurrency) this.arm(at ?? this.clock() + this.options.safetySweepMs);
      tracker?.succeeded();
    } catch (err) {
      tracker?.failed(err);
      log[isStoreOutage(err) ? 'debug' : 'error']({ err, service: this.name }, `${this.name} failed; it runs again in ${RETRY_ROUND_MS} ms`);
      this.arm(this.clock() + RETRY_ROUND_MS);
    }
  }

  private launch(claim: WebhookClaim): void {
    const p = this.deliver(claim)
      .catch((err: unknown) => this.deps.log.warn({ err, jobId: claim.jobId, url: claim.url }, 'could not record a webhook attempt; it is tried again when its claim lapses'))
      .finally(() => { this.inFlight.delete(p); void this.lookAgain(); });
    this.inFlight.add(p);
  }

  /** One attempt: build the body, send it, record what came of it. */
  private async deliver(claim: WebhookClaim): Promise<void> {
    const { store, metrics, log } = this.deps;
    const view = await this.deps.jobView(claim.jobId);
    const at = this.clock();
    const started = performance.now();
    let result: { status: number | null; error: string | null };
    // A key's webhook, or one named before the list changed, to a host the foreman may not call: never sent.
    const refused = !webhookHostAllowed(claim.url, this.options.hosts ?? []);
    if (!view) result = { status: null, error: 'the job is gone (pruned) before its end could be delivered' };
    else if (refused) result = { status: null, error: `host ${new URL(claim.url).hostname} is not one this foreman calls (--webhook-host)` };
    else result = await this.post(claim, view, at);
    const attempt: WebhookAttempt = { attempt: claim.attempts, at, status: result.status, error: result.error, durationMs: Math.round(performance.now() - started) };
    // Cut short by a stop, an attempt is not given up on: another foreman (or this one, restarted) tries again.
    const last = (claim.attempts >= this.options.attempts || !view || refused) && !this.stopping.signal.aborted;
    const next = result.error === null ? { state: 'delivered' as const }
      : last ? { state: 'failed' as const }
        : { state: 'pending' as const, retryAt: this.clock() + retryDelayMs(claim.attempts, this.options.backoff) };
    const recorded = await store.webhookRecordAttempt({ id: claim.id, attempt, next });
    if (!recorded) return;
    const outcome = next.state === 'pending' ? 'retried' : next.state;
    metrics.webhookDeliveries.inc({ outcome });
    if (next.state === 'failed') {
      log.warn({ jobId: claim.jobId, url: claim.url, attempts: claim.attempts, error: result.error }, `webhook of job ${claim.jobId} given up after ${claim.attempts} attempts: ${result.error}`);
    } else if (next.state === 'pending') {
      log.debug({ jobId: claim.jobId, url: claim.url, attempt: claim.attempts, error: result.error, retryAt: new Date(next.retryAt).toISOString() }, 'webhook attempt failed; trying again later');
    }
  }

  /** POST the delivery; a 2xx answer is success, anything else (or none) an error in a few words. */
  private async post(claim: WebhookClaim, job: JobView, at: number): Promise<{ status: number | null; error: string | null }> {
    const id = `${claim.jobId}.${claim.id}`;
    const timestamp = Math.floor(at / 1000);
    const body = JSON.stringify({ event: WEBHOOK_EVENT, status: claim.jobState, job, delivered_at: new Date(at).toISOString() });
    const headers: Record<string, string> = {
      'content-type': 'application/json', 'user-agent': 'crowdcompute-webhooks',
      [WEBHOOK_HEADERS.id]: id, [WEBHOOK_HEADERS.timestamp]: String(timestamp),
    };
    if (this.deps.signingSecret) headers[WEBHOOK_HEADERS.signature] = signWebhook(this.deps.signingSecret, id, timestamp, body);
    try {
      const res = await request(claim.url, { method: 'POST', headers, body, dispatcher: this.agent, signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), this.stopping.signal]) });
      // The answer's body is not kept, nor shown: the job's owner chose the URL, and it must not
      // become a way to read what a service inside the network answers. A little is read so the
      // connection can be reused, then the rest (and the socket) is dropped.
      try {
        let size = 0;
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size >= MAX_ANSWER_BYTES) break;
        }
      } finally {
        res.body.destroy();
      }
      if (res.statusCode >= 200 && res.statusCode < 300) return { status: res.statusCode, error: null };
      const redirect = res.statusCode >= 300 && res.statusCode < 400 ? ' (redirects are not followed: give the final URL)' : '';
      return { status: res.statusCode, error: `HTTP ${res.statusCode}${redirect}` };
    } catch (err) {
      const e = err as Error & { code?: string };
      if (this.stopping.signal.aborted) return { status: null, error: 'the foreman stopped before an answer came' };
      const what = e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT'
        ? `no answer within ${this.options.timeoutMs} ms (--webhook-timeout)`
        : `${e.code ?? e.name}: ${e.message}`;
      return { status: null, error: what.slice(0, 500) };
    }
  }

  private arm(at: number): void {
    if (this.state !== 'running') return;
    const now = this.clock();
    const fireAt = Math.min(at, now + this.options.safetySweepMs);
    if (this.armedAt !== null && this.armedAt <= fireAt) return;
    this.disarm();
    this.armedAt = fireAt;
    this.timer = setTimeout(() => { this.timer = null; this.armedAt = null; void this.lookAgain(); }, Math.max(0, fireAt - now));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedAt = null;
  }
}
