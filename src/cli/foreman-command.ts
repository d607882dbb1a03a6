import { Option, type Command } from 'commander';
import ms from 'ms';
import { FOREMAN_DEFAULTS, type ForemanOptions } from '../foreman/foreman-options.ts';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { parseBytes, parseDuration, parseIntArg } from './parse-args.ts';
import { givenSecret } from './credential-commands.ts';
import { parseRateLimit } from '../foreman/rate-limit-spec.ts';

type Parser = (value: string) => number;

/** Each tuning option: its flag, the ForemanOptions key it sets, what it means. Defaults come from FOREMAN_DEFAULTS. */
const TUNING: { flag: string; key: keyof typeof FOREMAN_DEFAULTS & keyof ForemanOptions; help: string; parse: Parser }[] = [
  { flag: '--max-payload <bytes>', key: 'maxPayloadBytes', help: 'largest frame, request body, task input or result, e.g. 8MiB', parse: parseBytes },
  { flag: '--max-artifact-size <bytes>', key: 'maxArtifactBytes', help: 'largest artifact or checkpoint a batch handler may record, e.g. 1MiB', parse: parseBytes },
  { flag: '--max-file-size <bytes>', key: 'maxFileBytes', help: 'largest file uploaded for tasks, e.g. 64MiB', parse: parseBytes },
  { flag: '--max-args <n>', key: 'maxArgs', help: 'most arguments or tasks in one message (a submission or a part appended to an open job)', parse: parseIntArg },
  { flag: '--default-timeout <duration>', key: 'defaultTimeoutMs', help: 'deadline of a task submitted without timeoutMs', parse: parseDuration },
  { flag: '--max-lost-attempts <n>', key: 'maxLostAttempts', help: 'times a task may lose its worker before it fails', parse: parseIntArg },
  { flag: '--idempotency-ttl <duration>', key: 'idempotencyTtlMs', help: 'how long an idempotency key returns the same job', parse: parseDuration },
  { flag: '--max-messages-per-second <n>', key: 'maxMessagesPerSecond', help: 'per WebSocket connection (bursts twice that)', parse: parseIntArg },
  { flag: '--max-connections <n>', key: 'maxConnections', help: 'WebSocket connections at once', parse: parseIntArg },
  { flag: '--flood-close-after <duration>', key: 'floodCloseAfterMs', help: 'a connection over its rate limit this long is closed', parse: parseDuration },
  { flag: '--heartbeat-interval <duration>', key: 'heartbeatIntervalMs', help: 'how often workers heartbeat', parse: parseDuration },
  { flag: '--lease-ttl <duration>', key: 'leaseTtlMs', help: 'how long an assignment is held without a heartbeat', parse: parseDuration },
  { flag: '--sweep-interval <duration>', key: 'sweepIntervalMs', help: 'how often idle workers look for work nobody announced (retries coming due)', parse: parseDuration },
  { flag: '--max-auth-failures-per-minute <n>', key: 'maxAuthFailuresPerMinute', help: 'failed credential checks one address may make per minute before it gets 429', parse: parseIntArg },
  { flag: '--retention <duration>', key: 'retentionMs', help: 'how long finished jobs, their tasks and results are kept before they are pruned (a job\'s retentionMs may say otherwise), e.g. 7d, 12h, 30s', parse: parseDuration },
  { flag: '--prune-interval <duration>', key: 'pruneIntervalMs', help: 'how often jobs past their retention are looked for', parse: parseDuration },
  { flag: '--queue-timeout <duration>', key: 'queueTimeoutMs', help: 'fail tasks no worker has started this long after submission (CC_ERR_NO_WORKER) when their job does not say; 0 = they wait for ever', parse: parseDuration },
  { flag: '--auth-skew <duration>', key: 'authSkewMs', help: 'largest clock difference accepted in a worker\'s signed hello', parse: parseDuration },
  { flag: '--stall-after <duration>', key: 'stallAfterMs', help: 'a loop of the foreman (dispatcher, reapers, pruner, dashboard feed) stuck in one round, or failing every round, this long makes /health answer 503 naming it', parse: parseDuration },
  { flag: '--max-sandbox-crashes <n>', key: 'maxSandboxCrashes', help: 'sandboxes a map job\'s function may take down on Node workers (out of memory, crashed) before the rest of the job fails with CC_ERR_SANDBOX_CRASHED', parse: parseIntArg },
];

/** `crowdcompute foreman`: start a foreman. */
export function foremanCommand(program: Command): void {
  const cmd = program.command('foreman')
    .description('Start a foreman: REST API, WebSocket endpoint (/ws) for workers and clients, status page; on SQLite, or on PostgreSQL shared with other foremen')
    .option('-p, --port <port>', 'HTTP and WebSocket port (0 = any free port)', parseIntArg, FOREMAN_DEFAULTS.port)
    .option('--host <host>', 'interface to listen on', FOREMAN_DEFAULTS.host)
    // The environment variable is named, never its value, in --help: it may hold a password.
    .addOption(new Option('-d, --database <url>', 'store: sqlite:<file>, sqlite::memory: or postgres://user@host:5432/db[?schema=name]')
      .env('CROWDCOMPUTE_DATABASE').default(FOREMAN_DEFAULTS.database))
    .option('--id <foremanId>', 'this foreman\'s id (default: random)');
  for (const t of TUNING) {
    const value = FOREMAN_DEFAULTS[t.key] as number;
    // Durations show their default as a duration (7d), not as milliseconds.
    cmd.addOption(new Option(t.flag, t.help).argParser(t.parse).default(value, t.parse === parseDuration ? ms(value) : String(value)));
  }
  cmd.option('--max-database-size <bytes>', 'SQLite: the file may not grow past this (e.g. 2GiB); beyond it submissions get CC_ERR_STORE_FULL (507) until pruning frees space', parseBytes);
  cmd.option('--insecure', 'turn authentication off: anyone who reaches the port may do anything (logged loudly at every start)', FOREMAN_DEFAULTS.insecure)
    .option('--secret-file <path>', 'file holding the deployment\'s secret; every foreman of one database needs the same (env CROWDCOMPUTE_SECRET; default: the local credentials file)')
    .option('--tls-cert <file>', 'serve HTTPS and WSS with this certificate (PEM); needs --tls-key')
    .option('--tls-key <file>', 'the certificate\'s private key (PEM)')
    .option('--metrics-public', 'serve GET /metrics without an API key', FOREMAN_DEFAULTS.metricsPublic)
    .option('--log-level <level>', 'trace, debug, info, warn, error, silent', FOREMAN_DEFAULTS.logLevel)
    .addOption(new Option('--rate-limit <pattern=rate>', 'at most so many tasks of the matching types start per window, e.g. \'image.*=100/s\' or \'mail.send=6000/10m\' '
      + '(a burst of up to the count, then the count per window; kept in the database for every foreman; repeatable; change later with PUT /api/rate-limits)')
      .argParser((v: string, all: string[]) => [...all, v]).default([], 'none'))
    .action(async (o) => {
      keepYoungGenerationSmall();
      const { startForeman } = await import('../foreman/index.ts');
      if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
      const secret = givenSecret(o.secretFile);
      const options: ForemanOptions = {
        port: o.port, host: o.host, database: o.database, logLevel: o.logLevel, insecure: o.insecure, metricsPublic: o.metricsPublic,
        ...(o.id ? { foremanId: o.id } : {}), ...(secret ? { secret } : {}), ...(o.maxDatabaseSize ? { maxDatabaseBytes: o.maxDatabaseSize } : {}),
        ...(o.tlsCert ? { tls: { cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey) } } : {}),
        ...(o.rateLimit.length > 0 ? { rateLimits: o.rateLimit.map(parseRateLimit) } : {}),
      };
      for (const t of TUNING) (options as Record<string, unknown>)[t.key] = o[camel(t.flag)];
      const foreman = await startForeman(options);
      process.stderr.write(`foreman ${foreman.id} on ${foreman.url}  (workers: ${foreman.wsUrl}, API docs: ${foreman.url}/docs)\n`);
      process.stderr.write(`${await dashboardHint(foreman)}\n`);
      const shutdown = (signal: string) => {
        process.stderr.write(`${signal}: stopping foreman (committing results, closing connections)\n`);
        foreman.stop().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
    });
}

/** Where the dashboard is and how to log in to it, for the line a foreman prints when it starts. */
export async function dashboardHint(foreman: { url: string; credentials: { apiKey: string } | null }): Promise<string> {
  if (!foreman.credentials) return `dashboard: ${foreman.url}/`;
  const { credentialsFile } = await import('../host/local-credentials.ts');
  return `dashboard: ${foreman.url}/ (log in with the admin API key "apiKey" in ${credentialsFile()}, or one from crowdcompute key create)`;
}

/** `--max-payload <bytes>` → `maxPayload`, the key commander gives the option. */
function camel(flag: string): string {
  return flag.replace(/^--/, '').split(' ')[0].replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
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
