/**
 * A foreman's options and their defaults, in one place: the API (`startForeman`) and the CLI
 * (`crowdcompute foreman`) both read {@link FOREMAN_DEFAULTS}, so a default is written once.
 * This file imports nothing heavy, so that `--help` stays fast.
 */
import type { Logger } from 'pino';
import { JOB_LIMITS, UNITS, boundProblem, type Bound } from '../protocol/index.ts';
import type { RateLimitSpec } from './shared/rate-limit-spec.ts';
import type { Store } from '../store/store.ts';

const { SECOND, MINUTE, HOUR, DAY, MiB, TiB } = UNITS;

/** The default of every foreman option that has one. */
export const FOREMAN_DEFAULTS = {
  /** HTTP and WebSocket port. */
  port: 8000,
  /** Interface to listen on; workers come from other machines. */
  host: '0.0.0.0',
  /** The embedded store, in the working directory. */
  database: 'sqlite:./crowdcompute.db',
  /**
   * SQLite: the store runs on the event loop's thread. Measured on 2 cores, a thread of its own
   * took CPU off the event loop but raised the foreman's CPU in all (by 11% per task on the
   * throughput bench, 26% per job on small jobs), and a small read waited on alone costs the
   * event loop more across the thread than run in place (docs/operations.md).
   */
  storeThread: false,
  /** PostgreSQL with autovacuum off: the foreman vacuums the tasks and jobs tables itself. */
  vacuum: true,
  /** How often workers send heartbeats. */
  heartbeatIntervalMs: 5_000,
  /** How long an assignment is held without a heartbeat. */
  leaseTtlMs: 30_000,
  /** Largest WebSocket frame, HTTP body and task input or result. */
  maxPayloadBytes: 8 * MiB,
  /** Most arguments or tasks in one message (a submission, or a part appended to an open job). */
  maxArgs: 100_000,
  /** Largest artifact or checkpoint a batch handler may record (as JSON text). */
  maxArtifactBytes: 1 * MiB,
  /** Largest file uploaded for tasks. */
  maxFileBytes: 64 * MiB,
  /** Deadline of a task submitted without timeoutMs (the FastAPI worker node's TASK_TIMEOUT). */
  defaultTimeoutMs: 300_000,
  /** Attempts a task may lose to vanished workers before it fails with CC_ERR_WORKER_LOST. */
  maxLostAttempts: 5,
  /** How long an idempotency key returns the same job (FlowKit's dedup_ttl_ms). */
  idempotencyTtlMs: 3_600_000,
  /** Sustained WebSocket messages per second per connection (bursts twice that). */
  maxMessagesPerSecond: 10_000,
  /** Most WebSocket connections at once. */
  maxConnections: 10_000,
  /** A connection over its rate limit for this long is closed. */
  floodCloseAfterMs: 5_000,
  /** How often idle workers look for work nobody announced (retries coming due). */
  sweepIntervalMs: 1_000,
  /** Log level of the default logger. */
  logLevel: 'info',
  /** Authentication is on: API keys for clients, signed tokens for workers. */
  insecure: false,
  /** GET /metrics needs an API key with the read scope. */
  metricsPublic: false,
  /** The foreman shares its credentials with this machine through the local credentials file. */
  localCredentials: true,
  /** Largest clock difference accepted in a worker's signed hello. */
  authSkewMs: 60_000,
  /** How long a dashboard login lasts. */
  sessionTtlMs: 12 * 3_600_000,
  /** A connection that proves nothing (no key, no valid worker hello) for this long is closed. */
  authenticateWithinMs: 10_000,
  /** Failed credential checks one address may make per minute (bursts of as many); past that, 429. */
  maxAuthFailuresPerMinute: 20,
  /** How long a finished job, its tasks and results are kept before they are pruned: 7 days. */
  retentionMs: 7 * 86_400_000,
  /** How often the pruner looks for jobs past their retention. */
  pruneIntervalMs: 1_000,
  /** How long a task may wait for a worker to start it when its job does not say (queueTimeoutMs); 0 = for ever. */
  queueTimeoutMs: 0,
  /** How long an open job may go without a part or a seal when it does not say (openTimeout); 0 = for ever. */
  openTimeoutMs: HOUR,
  /**
   * Browser tabs come and go without warning: they heartbeat often, their leases are short (a
   * vanished tab's tasks run elsewhere within seconds), and each holds few tasks at once.
   */
  browserHeartbeatIntervalMs: 2_000,
  browserLeaseTtlMs: 10_000,
  maxTasksPerBrowser: 4,
  maxSchedulesPerKey: 10_000,
  /**
   * A request whose headers have not all arrived this long after it began is refused (408) and
   * its connection closed: a client dripping its headers byte by byte holds nothing for long.
   */
  headersTimeoutMs: 20_000,
  /** A request whose body has not all arrived this long after it began is refused (408): Node's own default. */
  requestTimeoutMs: 300_000,
  /**
   * An idle keep-alive connection is closed after this long: longer than the 60 s idle timeout
   * of common load balancers, so that they, not the foreman, close first (Fastify's default).
   */
  keepAliveTimeoutMs: 72_000,
  /** An HTTP connection on which nothing is sent or received for this long is closed (WebSockets and the dashboard's stream excepted). */
  idleTimeoutMs: 120_000,
  /** Open connections (HTTP and WebSocket) one client address may hold; more are closed at once. */
  maxConnectionsPerAddress: 1_000,
  /** A loop (dispatcher, reapers, pruner, feed) stuck in one round, or failing every round, this long makes /health say so. */
  stallAfterMs: 60_000,
  /** Sandboxes a map job's function may take down (out of memory, crashed) before the job fails as a whole. */
  maxSandboxCrashes: 3,
  /** Attempts to deliver a job's end to its webhook before giving up: with the backoff below, one to two hours in all. */
  webhookAttempts: 8,
  /** Wait before a webhook's second attempt; it doubles after each failure (jittered), up to 6 h. */
  webhookBackoffMs: MINUTE,
  /** A webhook receiver that has not answered (headers and body) this long counts as a failed attempt. */
  webhookTimeoutMs: 10 * SECOND,
  /** Webhook attempts in flight at once, per foreman. */
  webhookConcurrency: 8,
} as const;

/**
 * The range of every numeric foreman option, with the flag that sets it, so that an option out
 * of range is refused at start naming the flag and the limit (`--lease-ttl must be at most
 * 86400000 ms (24 h)`). The limits are far beyond real use: they stop a typo (30d for 30s) or a
 * number that would break something (a timer past 24 days fires at once).
 */
export const FOREMAN_BOUNDS = {
  port: { flag: '--port', min: 0, max: 65_535 },
  heartbeatIntervalMs: { flag: '--heartbeat-interval', min: 1, max: HOUR, unit: 'ms' },
  leaseTtlMs: { flag: '--lease-ttl', min: 1, max: DAY, unit: 'ms' },
  // A frame or body is held in memory whole, and parsed as one string (V8's longest is about 512 MiB).
  maxPayloadBytes: { flag: '--max-payload', min: 1_024, max: 512 * MiB, unit: 'bytes' },
  maxArgs: { flag: '--max-args', min: 1, max: 10_000_000 },
  maxArtifactBytes: { flag: '--max-artifact-size', min: 1, max: 512 * MiB, unit: 'bytes' },
  // Files are kept in the database as one value; SQLite's and PostgreSQL's stop at 1 GB.
  maxFileBytes: { flag: '--max-file-size', min: 1, max: 512 * MiB, unit: 'bytes' },
  defaultTimeoutMs: { flag: '--default-timeout', ...JOB_LIMITS.timeoutMs },
  maxLostAttempts: { flag: '--max-lost-attempts', min: 1, max: JOB_LIMITS.maxAttempts.max },
  idempotencyTtlMs: { flag: '--idempotency-ttl', min: 0, max: 365 * DAY, unit: 'ms' },
  maxMessagesPerSecond: { flag: '--max-messages-per-second', min: 1, max: 1_000_000 },
  maxConnections: { flag: '--max-connections', min: 1, max: 1_000_000 },
  floodCloseAfterMs: { flag: '--flood-close-after', min: 0, max: HOUR, unit: 'ms' },
  sweepIntervalMs: { flag: '--sweep-interval', min: 1, max: HOUR, unit: 'ms' },
  authSkewMs: { flag: '--auth-skew', min: 0, max: HOUR, unit: 'ms' },
  sessionTtlMs: { flag: '--session-ttl', min: MINUTE, max: 30 * DAY, unit: 'ms' },
  authenticateWithinMs: { flag: '--authenticate-within', min: 0, max: HOUR, unit: 'ms' },
  maxAuthFailuresPerMinute: { flag: '--max-auth-failures-per-minute', min: 1, max: 1_000_000 },
  retentionMs: { flag: '--retention', ...JOB_LIMITS.retentionMs },
  pruneIntervalMs: { flag: '--prune-interval', min: 1, max: DAY, unit: 'ms' },
  queueTimeoutMs: { flag: '--queue-timeout', min: 0, max: JOB_LIMITS.queueTimeoutMs.max, unit: 'ms' },
  openTimeoutMs: { flag: '--open-timeout', min: 0, max: 365 * DAY, unit: 'ms' },
  browserHeartbeatIntervalMs: { flag: '--browser-heartbeat-interval', min: 1, max: HOUR, unit: 'ms' },
  browserLeaseTtlMs: { flag: '--browser-lease-ttl', min: 1, max: DAY, unit: 'ms' },
  maxTasksPerBrowser: { flag: '--max-tasks-per-browser', min: 1, max: 1_000 },
  maxSchedulesPerKey: { flag: '--max-schedules', min: 1, max: 10_000_000 },
  webhookAttempts: { flag: '--webhook-attempts', min: 1, max: 100 },
  webhookBackoffMs: { flag: '--webhook-backoff', min: 1, max: DAY, unit: 'ms' },
  webhookTimeoutMs: { flag: '--webhook-timeout', min: 1, max: HOUR, unit: 'ms' },
  webhookConcurrency: { flag: '--webhook-concurrency', min: 1, max: 10_000 },
  // SQLite's own largest database is about 281 TB.
  maxDatabaseBytes: { flag: '--max-database-size', min: 1, max: 256 * TiB, unit: 'bytes' },
  headersTimeoutMs: { flag: '--headers-timeout', min: 1, max: HOUR, unit: 'ms' },
  requestTimeoutMs: { flag: '--request-timeout', min: 1, max: DAY, unit: 'ms' },
  keepAliveTimeoutMs: { flag: '--keep-alive-timeout', min: 1, max: HOUR, unit: 'ms' },
  idleTimeoutMs: { flag: '--idle-timeout', min: SECOND / 10, max: DAY, unit: 'ms' },
  maxConnectionsPerAddress: { flag: '--max-connections-per-address', min: 1, max: 1_000_000 },
  stallAfterMs: { flag: '--stall-after', min: SECOND, max: DAY, unit: 'ms' },
  maxSandboxCrashes: { flag: '--max-sandbox-crashes', min: 1, max: 1_000_000 },
} as const satisfies { [K in NumericOption]: Bound & { flag: string } };

/** The ForemanOptions that are numbers. */
type NumericOption = { [K in keyof ForemanOptions]-?: NonNullable<ForemanOptions[K]> extends number ? K : never }[keyof ForemanOptions];

/**
 * Why a value is out of its option's range, naming the option as the caller gave it: the flag
 * (`--lease-ttl must be at most 86400000 ms (24 h)`) or the field and its flag
 * (`leaseTtlMs (--lease-ttl) must be …`). Null when it fits.
 */
export function foremanOptionProblem(key: NumericOption, value: unknown, as: 'flag' | 'field'): string | null {
  const bound = FOREMAN_BOUNDS[key];
  const problem = boundProblem(value, bound);
  if (!problem) return null;
  return as === 'flag' ? `${bound.flag} ${problem}` : `${key} (${bound.flag}) ${problem}`;
}

/** How to start a foreman. Every option has a default ({@link FOREMAN_DEFAULTS}). */
export interface ForemanOptions {
  /** HTTP and WebSocket port. 0 picks a free one. Default 8000. */
  port?: number;
  /** Interface to listen on. Default 0.0.0.0 (workers come from other machines). */
  host?: string;
  /** `sqlite:./crowdcompute.db` (default), `sqlite::memory:`, `postgres://…[?schema=name]`. Ignored when `store` is given. */
  database?: string;
  /** A store opened by the caller (tests); the foreman closes it on stop only if it opened it. @internal */
  store?: Store;
  /** Stable id of this foreman; random if omitted. */
  foremanId?: string;
  /**
   * The clock that decides when delayed tasks, schedules, open timeouts and deadlines are due,
   * and how late a tick is (epoch ms); default `Date.now`. Tests move it instead of waiting. @internal
   */
  clock?: () => number;
  /** How often workers send heartbeats. Default 5 s. */
  heartbeatIntervalMs?: number;
  /** How long an assignment is held without a heartbeat. Default 30 s. */
  leaseTtlMs?: number;
  /** Largest WebSocket frame, HTTP body and task input or result accepted. Default 8 MiB. */
  maxPayloadBytes?: number;
  /** Most arguments or tasks in one message (a submission, or a part appended to an open job). Default 100,000. */
  maxArgs?: number;
  /** Largest artifact or checkpoint a batch handler may record, as JSON text. Default 1 MiB. */
  maxArtifactBytes?: number;
  /** Largest file uploaded for tasks (POST /api/files). Default 64 MiB. */
  maxFileBytes?: number;
  /** Deadline of a task submitted without timeoutMs. Default 300 s. */
  defaultTimeoutMs?: number;
  /** Attempts a task may lose to vanished workers before it fails with CC_ERR_WORKER_LOST. Default 5. */
  maxLostAttempts?: number;
  /** How long an idempotency key returns the same job. Default 1 h. */
  idempotencyTtlMs?: number;
  /** Sustained WebSocket messages per second per connection (bursts twice that). Default 10,000. */
  maxMessagesPerSecond?: number;
  /** Most WebSocket connections at once. Default 10,000. */
  maxConnections?: number;
  /** A connection over its rate limit for this long is closed. Default 5 s. */
  floodCloseAfterMs?: number;
  /** How often idle workers look for work nobody announced (retries coming due). Default 1 s. */
  sweepIntervalMs?: number;
  /**
   * Rate limits per task type set at start (`image.*=100/s`, or parsed), kept in the store for
   * every foreman of the database; the API changes them later (PUT /api/rate-limits).
   */
  rateLimits?: (string | RateLimitSpec)[];
  /**
   * Turn authentication off: anyone who reaches the port may submit, read, cancel, run code on
   * workers and connect workers. Logged loudly at every start. Default false.
   */
  insecure?: boolean;
  /**
   * The deployment's secret (worker tokens and dashboard sessions derive from it). Default: the
   * one in the local credentials file for this database, or a new one written there. Every
   * foreman of one PostgreSQL database needs the same. Required with `localCredentials: false`
   * (unless the store is a throwaway one).
   */
  secret?: string;
  /**
   * Share this foreman's credentials with its machine through the local credentials file
   * (`credentials.json`, see docs/security.md): take the deployment's secret from there when
   * none is given, and leave there, as in this process, an admin API key and a worker token for
   * local clients and workers, with the URL it listens on. `false`, for a container, a
   * Kubernetes pod or a shared or read-only home: the file is neither read nor written, no key
   * or token is issued for the machine (`credentials` is null), and `secret` must be given;
   * clients and workers bring keys and tokens of their own. Default true.
   */
  localCredentials?: boolean;
  /** Serve HTTPS and WSS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** GET /metrics without an API key. Default false (it needs the read scope). */
  metricsPublic?: boolean;
  /** Largest clock difference accepted in a worker's signed hello. Default 60 s. */
  authSkewMs?: number;
  /** How long a dashboard login lasts. Default 12 h. */
  sessionTtlMs?: number;
  /** A connection that proves nothing for this long is closed. Default 10 s. */
  authenticateWithinMs?: number;
  /** Failed credential checks one address may make per minute; past that, refused unchecked (429). Default 20. */
  maxAuthFailuresPerMinute?: number;
  /** How long a finished job, its tasks and results are kept (a job's retentionMs may say otherwise). Default 7 days. */
  retentionMs?: number;
  /** How often the pruner looks for jobs past their retention. Default 1 s. */
  pruneIntervalMs?: number;
  /**
   * How long a task may wait for a worker to start it when its job does not say (queueTimeoutMs);
   * past that it fails with CC_ERR_NO_WORKER. Default 0: it waits for ever.
   */
  queueTimeoutMs?: number;
  /**
   * How long an open job may go without a part or a seal when it does not say (openTimeout);
   * past that it is closed as it chose (onOpenTimeout: cancelled by default, or sealed). Default 1 h; 0: never.
   */
  openTimeoutMs?: number;
  /** Browser tabs' heartbeat period. Default 2 s. */
  browserHeartbeatIntervalMs?: number;
  /** How long a browser tab's assignment holds without a heartbeat. Default 10 s. */
  browserLeaseTtlMs?: number;
  /** Most tasks a browser tab holds at once. Default 4. */
  maxTasksPerBrowser?: number;
  /** Most schedules one API key may keep (each fires jobs for ever, so a key's share is bounded). Default 10,000. */
  maxSchedulesPerKey?: number;
  /** Attempts to post a job's end to its webhook before the delivery is given up (`failed`). Default 8. */
  webhookAttempts?: number;
  /** Wait before a webhook's second attempt, doubling (jittered) after each failure up to 6 h. Default 1 min. */
  webhookBackoffMs?: number;
  /** How long a webhook receiver has to answer an attempt (headers and body). Default 10 s. */
  webhookTimeoutMs?: number;
  /** Webhook attempts in flight at once, per foreman. Default 8. */
  webhookConcurrency?: number;
  /**
   * A loop of the foreman (the dispatcher, the reapers, the pruner, the dashboard's feed) stuck in
   * one round, or failing every round, for this long makes /health answer 503 naming it. Default 60 s.
   */
  stallAfterMs?: number;
  /**
   * Sandboxes a map job's function may take down on Node workers (CC_ERR_MEMORY_LIMIT,
   * CC_ERR_SANDBOX_CRASHED) before the rest of the job fails with CC_ERR_SANDBOX_CRASHED. Default 3.
   */
  maxSandboxCrashes?: number;
  /** SQLite: the database file may not grow past this many bytes (writes beyond fail as a full disk would). */
  maxDatabaseBytes?: number;
  /**
   * SQLite: run the store on a thread of its own, so that its statements (and the JSON of inputs
   * and results) and the foreman's event loop (sockets, messages, dispatch) use two cores. Every
   * call crosses to the thread and back; it resolves once its transaction committed, as before.
   * Default false (see FOREMAN_DEFAULTS). Ignored on PostgreSQL, whose server already runs beside the foreman.
   */
  storeThread?: boolean;
  /**
   * PostgreSQL whose autovacuum is off: every 10 s the foreman (one of the database's at a time)
   * vacuums the tasks and jobs tables once 1% of their rows (and at least 1,000) are dead, as
   * autovacuum would with the settings the migrations give those tables. Without it a claim reads
   * past every task claimed since the last vacuum, and slows as they pile up. Where autovacuum is
   * on it does nothing. Default true.
   */
  vacuum?: boolean;
  /** A request whose headers have not all arrived this long after it began is refused (408) and closed. Default 20 s; at most requestTimeoutMs. */
  headersTimeoutMs?: number;
  /** A request whose body has not all arrived this long after it began is refused (408) and closed. Default 300 s. */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long. Default 72 s. */
  keepAliveTimeoutMs?: number;
  /** An HTTP connection silent both ways this long is closed (not WebSockets, not the dashboard's event stream). Default 120 s. */
  idleTimeoutMs?: number;
  /** Open connections (HTTP and WebSocket) one client address may hold; further ones are closed at once. Default 1,000. */
  maxConnectionsPerAddress?: number;
  /**
   * Reverse proxies whose `X-Forwarded-For` names the client: addresses, CIDR ranges, or
   * `loopback`, `linklocal`, `uniquelocal`. From them the client's address (for the
   * failed-attempt limit, the connection cap and the audit log) is the one they forward; from
   * anyone else the header is ignored. Default none.
   */
  trustedProxies?: string[];
  /**
   * The hosts webhooks may call: names (`hooks.example.com`) or `*.example.com`. A job naming
   * another host is refused at submission, and a key's webhook to one is given up without being
   * called. Default none: any host, including this network's own (see docs/security.md).
   */
  webhookHosts?: string[];
  /** A pino logger; default: one on stderr at `logLevel`. */
  logger?: Logger;
  /** Level of the default logger: trace, debug, info, warn, error, silent. Default info. */
  logLevel?: string;
}

/** Options with every default filled in. @internal */
export type ResolvedForemanOptions = Required<Omit<ForemanOptions, 'store' | 'logger' | 'foremanId' | 'secret' | 'tls' | 'maxDatabaseBytes' | 'clock'>> & Pick<ForemanOptions, 'secret' | 'tls' | 'maxDatabaseBytes' | 'clock'>;

/**
 * Fill in the defaults, and refuse a numeric option out of its range (a RangeError naming the
 * option, its flag and the limit). @internal
 */
export function resolveForemanOptions(options: ForemanOptions): ResolvedForemanOptions {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const { store: _s, logger: _l, foremanId: _f, clock: _c, ...rest } = { ...FOREMAN_DEFAULTS, trustedProxies: [], webhookHosts: [], ...defined } as ForemanOptions & typeof FOREMAN_DEFAULTS;
  const problems: string[] = [];
  for (const key of Object.keys(FOREMAN_BOUNDS) as NumericOption[]) {
    const value = (rest as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const problem = foremanOptionProblem(key, value, 'field');
    if (problem) problems.push(problem);
  }
  if (problems.length === 0 && rest.headersTimeoutMs > rest.requestTimeoutMs) {
    problems.push(`headersTimeoutMs (--headers-timeout) must be at most requestTimeoutMs (--request-timeout), ${rest.requestTimeoutMs} ms; it is ${rest.headersTimeoutMs} ms`);
  }
  if (!Array.isArray(rest.trustedProxies) || rest.trustedProxies.some((p) => typeof p !== 'string')) {
    problems.push('trustedProxies (--trusted-proxy) must be a list of addresses or CIDR ranges');
  }
  if (!Array.isArray(rest.webhookHosts) || rest.webhookHosts.some((h) => typeof h !== 'string' || !/^(\*\.)?[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$/i.test(h))) {
    problems.push('webhookHosts (--webhook-host) must be a list of host names, *.domain patterns or [IPv6] addresses');
  }
  if (problems.length > 0) throw new RangeError(problems.join('; '));
  return rest as ResolvedForemanOptions;
}

