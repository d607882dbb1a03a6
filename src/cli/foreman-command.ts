import { Option, type Command } from 'commander';
import { FOREMAN_BOUNDS, FOREMAN_DEFAULTS, type ForemanOptions } from '../foreman/foreman-options.ts';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { parseBytes, parseDuration, parseIntArg, showDuration, within } from './parse-args.ts';
import { givenSecret } from './credential-commands.ts';
import { parseRateLimit } from '../foreman/shared/rate-limit-spec.ts';
import { cliLogger, isPretty, logFormatOption } from './cli-logger.ts';
import { stopTracing } from '../host/tracing.ts';

type Parser = (value: string) => number;
type Bounded = keyof typeof FOREMAN_BOUNDS & keyof typeof FOREMAN_DEFAULTS;

/**
 * Each tuning option: the ForemanOptions key it sets (its flag and range come from
 * FOREMAN_BOUNDS, its default from FOREMAN_DEFAULTS), its argument, what it means.
 */
const TUNING: { key: Bounded; arg: string; help: string; parse: Parser; env?: string }[] = [
  { key: 'maxPayloadBytes', arg: '<bytes>', help: 'largest frame, request body, task input or result, e.g. 8MiB', parse: parseBytes },
  { key: 'maxArtifactBytes', arg: '<bytes>', help: 'largest artifact or checkpoint a batch handler may record, e.g. 1MiB', parse: parseBytes },
  { key: 'maxFileBytes', arg: '<bytes>', help: 'largest file uploaded for tasks, e.g. 64MiB', parse: parseBytes },
  { key: 'maxArgs', arg: '<n>', help: 'most arguments or tasks in one message (a submission or a part appended to an open job)', parse: parseIntArg },
  { key: 'defaultTimeoutMs', arg: '<duration>', help: 'deadline of a task submitted without timeoutMs', parse: parseDuration },
  { key: 'maxLostAttempts', arg: '<n>', help: 'times a task may lose its worker before it fails', parse: parseIntArg },
  { key: 'idempotencyTtlMs', arg: '<duration>', help: 'how long an idempotency key returns the same job', parse: parseDuration },
  { key: 'maxMessagesPerSecond', arg: '<n>', help: 'per WebSocket connection (bursts twice that)', parse: parseIntArg },
  { key: 'maxConnections', arg: '<n>', help: 'WebSocket connections at once', parse: parseIntArg },
  { key: 'maxConnectionsPerAddress', arg: '<n>', help: 'open connections (HTTP and WebSocket) one client address may hold; more are closed at once, counted in crowdcompute_connections_refused_total (raise it for many workers behind one NAT address)', parse: parseIntArg },
  { key: 'floodCloseAfterMs', arg: '<duration>', help: 'a connection over its rate limit this long is closed', parse: parseDuration },
  { key: 'heartbeatIntervalMs', arg: '<duration>', help: 'how often workers heartbeat', parse: parseDuration },
  { key: 'leaseTtlMs', arg: '<duration>', help: 'how long an assignment is held without a heartbeat', parse: parseDuration },
  { key: 'browserHeartbeatIntervalMs', arg: '<duration>', help: 'how often browser tabs heartbeat', parse: parseDuration },
  { key: 'browserLeaseTtlMs', arg: '<duration>', help: 'how long a browser tab\'s assignment is held without a heartbeat', parse: parseDuration },
  { key: 'maxTasksPerBrowser', arg: '<n>', help: 'most tasks a browser tab holds at once', parse: parseIntArg },
  { key: 'maxSchedulesPerKey', arg: '<n>', help: 'most schedules one API key may keep', parse: parseIntArg },
  { key: 'sweepIntervalMs', arg: '<duration>', help: 'how often idle workers look for work nobody announced (retries coming due)', parse: parseDuration },
  { key: 'maxAuthFailuresPerMinute', arg: '<n>', help: 'failed credential checks one client address, or one key or token id, may make per minute; past that, failed checks get 429 (valid credentials are always accepted)', parse: parseIntArg },
  { key: 'authenticateWithinMs', arg: '<duration>', help: 'a WebSocket connection that proves nothing (no key, no valid worker hello) this long is closed', parse: parseDuration },
  { key: 'sessionTtlMs', arg: '<duration>', help: 'how long a dashboard login lasts', parse: parseDuration },
  { key: 'headersTimeoutMs', arg: '<duration>', help: 'a request whose headers have not all arrived this long after it began gets 408 and its connection is closed (at most --request-timeout)', parse: parseDuration },
  { key: 'requestTimeoutMs', arg: '<duration>', help: 'a request whose body has not all arrived this long after it began gets 408 and its connection is closed (uploads included)', parse: parseDuration },
  { key: 'keepAliveTimeoutMs', arg: '<duration>', help: 'an idle keep-alive HTTP connection is closed after this long (keep it above a load balancer\'s idle timeout)', parse: parseDuration },
  { key: 'idleTimeoutMs', arg: '<duration>', help: 'an HTTP connection on which nothing moves this long is closed (not WebSockets, not the dashboard\'s event stream)', parse: parseDuration },
  { key: 'retentionMs', arg: '<duration>', help: 'how long finished jobs, their tasks and results are kept before they are pruned (a job\'s retentionMs may say otherwise), e.g. 7d, 12h, 30s', parse: parseDuration },
  { key: 'pruneIntervalMs', arg: '<duration>', help: 'how often jobs past their retention are looked for', parse: parseDuration },
  { key: 'queueTimeoutMs', arg: '<duration>', help: 'fail tasks no worker has started this long after submission (CC_ERR_NO_WORKER) when their job does not say; 0 = they wait for ever', parse: parseDuration },
  { key: 'openTimeoutMs', arg: '<duration>', help: 'close an open job that gets no part and no seal this long, when it does not say (openTimeout): cancelled, or sealed if it chose onOpenTimeout seal; 0 = never', parse: parseDuration, env: 'CROWDCOMPUTE_OPEN_TIMEOUT' },
  { key: 'authSkewMs', arg: '<duration>', help: 'largest clock difference accepted in a worker\'s signed hello', parse: parseDuration },
  { key: 'stallAfterMs', arg: '<duration>', help: 'a loop of the foreman (dispatcher, reapers, pruner, dashboard feed) stuck in one round, or failing every round, this long makes /health answer 503 naming it', parse: parseDuration },
  { key: 'webhookAttempts', arg: '<n>', help: 'attempts to post a job\'s end to its webhook before giving up', parse: parseIntArg },
  { key: 'webhookBackoffMs', arg: '<duration>', help: 'wait before a webhook\'s second attempt; it doubles (jittered) after each failure, up to 6h', parse: parseDuration },
  { key: 'webhookTimeoutMs', arg: '<duration>', help: 'how long a webhook receiver has to answer an attempt', parse: parseDuration },
  { key: 'webhookConcurrency', arg: '<n>', help: 'webhook attempts in flight at once, per foreman', parse: parseIntArg },
  { key: 'maxSandboxCrashes', arg: '<n>', help: 'sandboxes a map job\'s function may take down on Node workers (out of memory, crashed) before the rest of the job fails with CC_ERR_SANDBOX_CRASHED', parse: parseIntArg },
];

/** A flag's parser that also keeps it within the option's range, refused in the flag's name. */
function bounded(key: keyof typeof FOREMAN_BOUNDS, parse: Parser): Parser {
  return within(parse, FOREMAN_BOUNDS[key].flag, FOREMAN_BOUNDS[key]);
}

/** `crowdcompute foreman`: start a foreman. */
export function foremanCommand(program: Command): void {
  const cmd = program.command('foreman')
    .description('Start a foreman: REST API, WebSocket endpoint (/ws) for workers and clients, status page; on SQLite, or on PostgreSQL shared with other foremen')
    .option('-p, --port <port>', 'HTTP and WebSocket port (0 = any free port)', bounded('port', parseIntArg), FOREMAN_DEFAULTS.port)
    .option('--host <host>', 'interface to listen on', FOREMAN_DEFAULTS.host)
    // The environment variable is named, never its value, in --help: it may hold a password.
    .addOption(new Option('-d, --database <url>', 'store: sqlite:<file>, sqlite::memory: or postgres://user@host:5432/db[?schema=name]')
      .env('CROWDCOMPUTE_DATABASE').default(FOREMAN_DEFAULTS.database))
    .option('--id <foremanId>', 'this foreman\'s id (default: random)');
  for (const t of TUNING) {
    const value = FOREMAN_DEFAULTS[t.key] as number;
    // Durations show their default as a duration (7d), not as milliseconds.
    const option = new Option(`${FOREMAN_BOUNDS[t.key].flag} ${t.arg}`, t.help).argParser(bounded(t.key, t.parse)).default(value, t.parse === parseDuration ? showDuration(value) : String(value));
    cmd.addOption(t.env ? option.env(t.env) : option);
  }
  cmd.option('--store-thread', `SQLite: run the store on a thread of its own, beside the event loop, so that the two use two cores${FOREMAN_DEFAULTS.storeThread ? ' (default)' : ''}`)
    .option('--no-store-thread', `SQLite: run the store on the event loop's thread${FOREMAN_DEFAULTS.storeThread ? '' : ' (default)'}`)
    .option('--no-vacuum', 'PostgreSQL with autovacuum off: do not vacuum the tasks and jobs tables from the foreman (by default it does once 1% of their rows are dead; see docs/operations.md)');
  cmd.option('--max-database-size <bytes>', 'SQLite: the file may not grow past this (e.g. 2GiB); beyond it submissions get CC_ERR_STORE_FULL (507) until pruning frees space', bounded('maxDatabaseBytes', parseBytes));
  cmd.addOption(new Option('--trusted-proxy <address>', 'a reverse proxy (address, CIDR range such as 10.0.0.0/8, or loopback, linklocal, uniquelocal) whose X-Forwarded-For names the client; '
    + 'repeatable. From anyone else the header is ignored. Set it when a proxy is in front, or every client counts as the proxy\'s address')
    .argParser((v: string, all: string[]) => [...all, v]).default([], 'none'));
  cmd.addOption(new Option('--webhook-host <host>', 'a host webhooks may call: a name such as hooks.example.com, or *.example.com; repeatable. '
    + 'A job naming another is refused. Default: any host, this network\'s own included').argParser((v: string, all: string[]) => [...all, v]).default([], 'any'));
  cmd.option('--insecure', 'turn authentication off: anyone who reaches the port may do anything (logged loudly at every start)', FOREMAN_DEFAULTS.insecure)
    .option('--secret-file <path>', 'file holding the deployment\'s secret; every foreman of one database needs the same (env CROWDCOMPUTE_SECRET; default: the local credentials file\'s)')
    .option('--no-local-credentials', 'neither read nor write the local credentials file: no admin key or worker token is issued for this machine, and the deployment\'s secret must be given '
      + '(--secret-file or CROWDCOMPUTE_SECRET); clients and workers bring keys and tokens of their own. For containers, Kubernetes pods, shared or read-only homes (env CROWDCOMPUTE_NO_LOCAL_CREDENTIALS=1)')
    .option('--tls-cert <file>', 'serve HTTPS and WSS with this certificate (PEM); needs --tls-key')
    .option('--tls-key <file>', 'the certificate\'s private key (PEM)')
    .option('--metrics-public', 'serve GET /metrics without an API key', FOREMAN_DEFAULTS.metricsPublic)
    .option('--log-level <level>', 'trace, debug, info, warn, error, silent', FOREMAN_DEFAULTS.logLevel)
    .addOption(logFormatOption())
    .addOption(new Option('--rate-limit <pattern=rate>', 'at most so many tasks of the matching types start per window, e.g. \'image.*=100/s\' or \'mail.send=6000/10m\' '
      + '(a burst of up to the count, then the count per window; kept in the database for every foreman; repeatable; change later with PUT /api/rate-limits)')
      // Checked as it is read, so that a rate that does not parse is refused as the flag's value.
      .argParser((v: string, all: string[]) => { parseRateLimit(v); return [...all, v]; }).default([], 'none'))
    .action(async (o) => {
      keepYoungGenerationSmall();
      const { startForeman } = await import('../foreman/index.ts');
      if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
      const secret = givenSecret(o.secretFile);
      const localCredentials = cmd.getOptionValueSource('localCredentials') === 'cli' ? o.localCredentials : !envFlag('CROWDCOMPUTE_NO_LOCAL_CREDENTIALS');
      const logger = await cliLogger(o.logLevel, o.logFormat);
      const options: ForemanOptions = {
        port: o.port, host: o.host, database: o.database, logLevel: o.logLevel, logger, insecure: o.insecure, metricsPublic: o.metricsPublic, localCredentials,
        ...(o.storeThread !== undefined ? { storeThread: o.storeThread } : {}), vacuum: o.vacuum,
        ...(o.id ? { foremanId: o.id } : {}), ...(secret ? { secret } : {}), ...(o.maxDatabaseSize ? { maxDatabaseBytes: o.maxDatabaseSize } : {}),
        ...(o.tlsCert ? { tls: { cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey) } } : {}),
        ...(o.rateLimit.length > 0 ? { rateLimits: o.rateLimit.map(parseRateLimit) } : {}),
        ...(o.trustedProxy.length > 0 ? { trustedProxies: o.trustedProxy } : {}),
        ...(o.webhookHost.length > 0 ? { webhookHosts: o.webhookHost } : {}),
      };
      for (const t of TUNING) (options as Record<string, unknown>)[t.key] = o[camel(FOREMAN_BOUNDS[t.key].flag)];
      const foreman = await startForeman(options);
      // A person at a terminal reads these lines as they are; anywhere else they sit among the
      // log's JSON lines, so they are log lines too (shown whatever --log-level, as on a terminal).
      const banner = logger.child({}, { level: 'info' });
      const say = isPretty(o.logFormat)
        ? (_fields: object, line: string) => { process.stderr.write(`${line}\n`); }
        : (fields: object, line: string) => { banner.info(fields, line); };
      say({ foremanId: foreman.id, url: foreman.url, wsUrl: foreman.wsUrl }, `foreman ${foreman.id} on ${foreman.url}  (workers: ${foreman.wsUrl}, API docs: ${foreman.url}/docs)`);
      say({ foremanId: foreman.id }, await dashboardHint(foreman, !o.insecure));
      const shutdown = (signal: string) => {
        say({ signal }, `${signal}: stopping foreman (committing results, closing connections)`);
        foreman.stop().then(stopTracing).then(() => process.exit(0), (err) => { logger.error({ err }, 'stopping the foreman failed'); process.exit(1); });
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
    });
}

/**
 * A yes-or-no environment variable: set to 1 or true, or to 0, false or nothing; anything else is
 * refused in its name (commander would take any value, 0 included, for yes).
 */
function envFlag(name: string): boolean {
  const v = (process.env[name] ?? '').trim().toLowerCase();
  if (v === '1' || v === 'true') return true;
  if (v === '' || v === '0' || v === 'false') return false;
  throw new Error(`${name} must be 1 or true (or 0, false, unset); it is "${process.env[name]!.slice(0, 40)}"`);
}

/** Where the dashboard is and how to log in to it, for the line a foreman prints when it starts. */
export async function dashboardHint(foreman: { url: string; credentials: { apiKey: string } | null }, authenticated = false): Promise<string> {
  if (!foreman.credentials) return authenticated ? `dashboard: ${foreman.url}/ (log in with an admin API key: crowdcompute key create --scopes admin)` : `dashboard: ${foreman.url}/`;
  const { credentialsFile } = await import('../host/local-credentials.ts');
  return `dashboard: ${foreman.url}/ (log in with the admin API key "apiKey" in ${credentialsFile()}, or one from crowdcompute key create)`;
}

/** `--max-payload` → `maxPayload`, the key commander gives the option. */
function camel(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * V8 lets its young generation grow to 128 MiB under a high allocation rate, which a busy
 * foreman has (messages, rows, JSON): most of it is garbage, but it stays resident. Growing
 * it no further than its first size cut the foreman's peak resident memory on a million-task
 * job by about 80 MiB with no measured loss of throughput (`npm run bench -- --only million`).
 * Someone who sets the young generation's size in NODE_OPTIONS or on the command line keeps it.
 */
function keepYoungGenerationSmall(): void {
  const given = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
  if (/semi[-_]space/.test(given)) return;
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}
