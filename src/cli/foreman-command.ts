import type { Command } from 'commander';
import { parseBytes, parseIntArg } from './parse-args.ts';

export function foremanCommand(program: Command): void {
  program.command('foreman')
    .description('Start a foreman: REST API, WebSocket endpoint (/ws) for workers and clients, status page; on SQLite, or on PostgreSQL shared with other foremen')
    .option('-p, --port <port>', 'HTTP and WebSocket port (0 = any free port)', parseIntArg, 8000)
    .option('--host <host>', 'interface to listen on', '0.0.0.0')
    .option('-d, --database <url>', 'store: sqlite:<file>, sqlite::memory: or postgres://user@host:5432/db[?schema=name] (env CROWDCOMPUTE_DATABASE)', process.env.CROWDCOMPUTE_DATABASE ?? 'sqlite:./crowdcompute.db')
    .option('--id <foremanId>', 'this foreman\'s id (default: random)')
    .option('--max-payload <bytes>', 'largest frame, request body, task input or result, e.g. 8MiB', parseBytes, 8 * 1024 * 1024)
    .option('--max-args <n>', 'most arguments in a map job, or tasks in a job', parseIntArg, 100_000)
    .option('--default-timeout <ms>', 'deadline of a task submitted without timeoutMs', parseIntArg, 300_000)
    .option('--max-lost-attempts <n>', 'times a task may lose its worker before it fails', parseIntArg, 5)
    .option('--idempotency-ttl <ms>', 'how long an idempotency key returns the same job', parseIntArg, 3_600_000)
    .option('--max-messages-per-second <n>', 'per WebSocket connection (bursts twice that)', parseIntArg, 10_000)
    .option('--max-connections <n>', 'WebSocket connections at once', parseIntArg, 10_000)
    .option('--heartbeat-interval <ms>', 'how often workers heartbeat', parseIntArg, 5000)
    .option('--lease-ttl <ms>', 'how long an assignment is held without a heartbeat', parseIntArg, 30000)
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .action(async (o) => {
      const { startForeman } = await import('../foreman/index.ts');
      const foreman = await startForeman({
        port: o.port, host: o.host, database: o.database, ...(o.id ? { foremanId: o.id } : {}), maxPayloadBytes: o.maxPayload, maxArgs: o.maxArgs,
        heartbeatIntervalMs: o.heartbeatInterval, leaseTtlMs: o.leaseTtl, logLevel: o.logLevel,
        defaultTimeoutMs: o.defaultTimeout, maxLostAttempts: o.maxLostAttempts, idempotencyTtlMs: o.idempotencyTtl,
        maxMessagesPerSecond: o.maxMessagesPerSecond, maxConnections: o.maxConnections,
      });
      process.stderr.write(`foreman ${foreman.id} on ${foreman.url}  (workers: ${foreman.wsUrl}, API docs: ${foreman.url}/docs)\n`);
      const shutdown = (signal: string) => {
        process.stderr.write(`${signal}: stopping foreman (committing results, closing connections)\n`);
        foreman.stop().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
    });
}
