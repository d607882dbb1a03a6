import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { Worker, TaskHandler } from '../worker/index.ts';
import { WORKER_DEFAULTS as D, WORKER_BOUNDS } from '../worker/runtime/worker-defaults.ts';
import { loadModule } from './load-module.ts';
import { cliLogger, isPretty, logFormatOption } from './cli-logger.ts';
import { foremanWsUrls } from './foreman-client.ts';
import { stopTracing } from '../host/tracing.ts';
import { parseDuration, parseIntArg, parseNumber, parseSignedInt, showDuration, within } from './parse-args.ts';

/** A flag's parser that keeps it within the worker option's range, refused in the flag's name. */
function bounded(key: keyof typeof WORKER_BOUNDS, parse: (value: string) => number): (value: string) => number {
  const bound = WORKER_BOUNDS[key];
  return within(parse, 'flag' in bound ? bound.flag : key, bound);
}

/** A duration flag of the worker, its default shown as a duration (60s), not in milliseconds. */
function durationOption(flags: string, help: string, key: keyof typeof WORKER_BOUNDS, value: number): Option {
  return new Option(flags, help).argParser(bounded(key, parseDuration)).default(value, showDuration(value));
}

/** How long a worker started without --foreman waits for a local foreman to record itself. */
const LOCAL_FOREMAN_WAIT_MS = 10_000;

/**
 * The foreman a worker started without --foreman connects to: the local one, from the local
 * credentials file (as the client commands find theirs), with that foreman's worker token unless
 * one is given. `crowdcompute foreman & crowdcompute worker …` starts both at once: the first
 * time, the foreman records itself only once it listens, so the worker waits a little for it.
 */
async function localForemanWsUrl(tokenGiven: boolean): Promise<string> {
  const { localForeman } = await import('./local-foreman.ts');
  const { credentialsFile } = await import('../host/local-credentials.ts');
  const next = 'pass --foreman ws://<host>:8000/ws (env CROWDCOMPUTE_FOREMAN) with --token or --token-file';
  const deadline = Date.now() + LOCAL_FOREMAN_WAIT_MS;
  let found;
  for (;;) {
    try {
      found = localForeman(process.env.CROWDCOMPUTE_URL || undefined, next, { needsUrl: true });
      break;
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  if (!found.url) throw new Error(`the local foreman of ${found.entry.database} has not recorded its address in ${credentialsFile()}: start it (crowdcompute foreman), or ${next}`);
  if (!tokenGiven && !found.entry.workerToken) {
    throw new Error(`${credentialsFile()} holds no worker token for the foreman at ${found.url}: restart that foreman (it leaves one), or give --token-file with one from crowdcompute token create --worker '*'`);
  }
  return foremanWsUrls(found.url);
}

/**
 * Register the handlers a module exports. Accepted shapes:
 *   export default { 'math.*': handler, 'etl.*': batchHandler, ... }   (or `export const handlers = {...}`)
 *   export default function register(worker) { worker.handle(...) }
 */
export async function registerHandlersFrom(worker: Worker, path: string): Promise<void> {
  const mod = await loadModule(path, 'handlers module');
  const entry = mod.handlers ?? mod.default;
  if (typeof entry === 'function') {
    await (entry as (w: Worker) => unknown)(worker);
  } else if (entry && typeof entry === 'object') {
    for (const [pattern, handler] of Object.entries(entry)) worker.handle(pattern, handler as TaskHandler);
  } else {
    throw new Error(`${path} must export a default object of { pattern: handler } or a function (worker) => void`);
  }
  if (worker.patterns.length === 0) throw new Error(`${path} registered no handlers`);
}

/** `crowdcompute worker`: start a worker process. */
export function workerCommand(program: Command): void {
  program.command('worker')
    .description('Start a worker: connect to a foreman and run named tasks (--handlers) and, with --allow-code, map jobs')
    // .env(): the variable is read when the option is not given, and --help names it without showing its value.
    .addOption(new Option('-f, --foreman <urls>', 'foreman URL(s), comma-separated for failover: its http(s):// URL, as the client commands take it (http://host:8000, connected to as ws://host:8000/ws), or its WebSocket URL (ws://host:8000/ws) (default: the local foreman\'s, from the local credentials file)')
      .env('CROWDCOMPUTE_FOREMAN').argParser(foremanWsUrls))
    .addOption(new Option('--id <workerId>', 'unique worker id (default: hostname-pid-random)').env('CROWDCOMPUTE_WORKER_ID'))
    .option('--token <token>', 'worker token, cct_… (env CROWDCOMPUTE_WORKER_TOKEN; default: a local foreman\'s, from the local credentials file)')
    .option('--token-file <file>', 'read the worker token from this file')
    .option('--ca <file>', 'trust this CA certificate (PEM) for a wss:// foreman with a private certificate')
    .option('-c, --concurrency <n>', 'tasks run at once', bounded('maxConcurrentTasks', parseIntArg), D.maxConcurrentTasks)
    .option('--allow-code', 'accept map jobs: run shipped functions in isolated-vm sandboxes, in child processes', D.allowCode)
    .option('--handlers <module>', 'module exporting task handlers ({ "math.*": fn } or (worker) => void)')
    .option('--sandbox-memory <mb>', 'heap limit of each sandbox isolate, MiB', bounded('sandboxMemoryMb', parseIntArg), D.sandboxMemoryMb)
    .option('--python-memory <mb>', "memory of each Python interpreter (Pyodide's WebAssembly memory) running shipped Python functions, MiB", bounded('pythonSandboxMemoryMb', parseIntArg), D.pythonSandboxMemoryMb)
    .addOption(durationOption('--sandbox-timeout <duration>', 'wall-clock limit of each map task on this worker, e.g. 60s (or milliseconds): a task whose job allows longer is still stopped here (CC_ERR_TIMEOUT); one whose job allows less stops at its own', 'sandboxTimeoutMs', D.sandboxTimeoutMs))
    .option('--sandbox-processes <n>', 'sandbox processes at most, each running one map task at a time (default: CPU cores; for Python, CPU cores + 1)', bounded('sandboxProcesses', parseIntArg))
    .option('--status-port <port>', 'status HTTP server port (GET / is a live page in a browser; /stats, /health, /metrics, /metrics/prometheus; POST /restart with the worker token); when taken, the next free one of the 20 after it; 0 = any', bounded('statusPort', parseIntArg), D.statusPort)
    .option('--status-host <host>', 'interface of the status server', '127.0.0.1')
    .option('--status-host-name <name>', 'a host name the status server answers to (repeatable), besides localhost, IP addresses, this machine\'s hostname and --status-host; requests naming another host are refused (403), so that no web page can read it through DNS rebinding', (v: string, all: string[] = []) => [...all, v])
    .option('--no-status', 'do not start the status HTTP server')
    .option('--heartbeat-interval <duration>', 'heartbeat period, e.g. 5s (default: the foreman\'s)', bounded('heartbeatIntervalMs', parseDuration))
    .addOption(durationOption('--reconnect-interval <duration>', 'base delay between reconnection attempts, e.g. 1s', 'reconnectIntervalMs', D.reconnectIntervalMs))
    .option('--max-reconnect-attempts <n>', 'give up after this many failed reconnects (-1 = never)', bounded('maxReconnectAttempts', parseSignedInt), D.maxReconnectAttempts)
    .option('--no-auto-restart', 'exit instead of reconnecting when the connection drops')
    .addOption(durationOption('--drain-timeout <duration>', 'on SIGTERM, how long running tasks may take to finish, e.g. 30s', 'drainTimeoutMs', D.drainTimeoutMs))
    .option('--log-level <level>', 'trace, debug, info, warn, error, silent', D.logLevel)
    .addOption(logFormatOption())
    .option('--cpus <n>', 'CPU cores to offer tasks that require them (default: the machine\'s)', bounded('cpuCores', parseIntArg))
    .option('--memory <MiB>', 'memory to offer tasks that require it, MiB (default: the machine\'s)', bounded('memoryMb', parseNumber))
    .option('--gpus <n>', 'GPUs to offer tasks that require them', bounded('gpu', parseIntArg))
    .option('--label <key=value>', 'a label tasks may require (repeatable), e.g. region=eu', (v: string, all: Record<string, string> = {}) => {
      const i = v.indexOf('=');
      if (i <= 0) throw new Error(`--label takes key=value, not "${v}"`);
      return { ...all, [v.slice(0, i)]: v.slice(i + 1) };
    })
    .action(async (o) => {
      const { Worker } = await import('../worker/index.ts');
      const token = o.token ?? (o.tokenFile ? readFileSync(o.tokenFile, 'utf8').trim() : undefined);
      if (!o.handlers && !o.allowCode) {
        throw new Error('this worker would receive no tasks: give --handlers <module>, --allow-code, or both');
      }
      const foremanUrl: string = o.foreman ?? await localForemanWsUrl(Boolean(token ?? process.env.CROWDCOMPUTE_WORKER_TOKEN));
      const worker = new Worker({
        foremanUrl, workerId: o.id, maxConcurrentTasks: o.concurrency, allowCode: o.allowCode,
        ...(token ? { token } : {}), ...(o.ca ? { ca: readFileSync(o.ca) } : {}), statusHost: o.statusHost,
        ...(o.statusHostName ? { statusHostNames: o.statusHostName } : {}),
        sandbox: { memoryLimitMb: o.sandboxMemory, pythonMemoryMb: o.pythonMemory, defaultTimeoutMs: o.sandboxTimeout, ...(o.sandboxProcesses ? { maxProcesses: o.sandboxProcesses } : {}) },
        statusPort: o.status ? o.statusPort : false,
        ...(o.heartbeatInterval ? { heartbeatIntervalMs: o.heartbeatInterval } : {}),
        reconnectIntervalMs: o.reconnectInterval, maxReconnectAttempts: o.maxReconnectAttempts, autoRestart: o.autoRestart,
        drainTimeoutMs: o.drainTimeout, logger: await cliLogger(o.logLevel, o.logFormat),
        foremanUrlHint: 'check --foreman: the foreman\'s http URL (http://<host>:8000) or its WebSocket URL (ws://<host>:8000/ws)',
        resources: {
          ...(o.cpus !== undefined ? { cpuCores: o.cpus } : {}), ...(o.memory !== undefined ? { memoryMb: o.memory } : {}),
          ...(o.gpus !== undefined ? { gpu: o.gpus } : {}), ...(o.label ? { labels: o.label } : {}),
        },
      });
      if (o.handlers) await registerHandlersFrom(worker, o.handlers);
      // A person at a terminal reads these lines as they are; anywhere else they sit among the
      // log's JSON lines, so they are log lines too (shown whatever --log-level, as on a terminal).
      const banner = worker.log.child({}, { level: 'info' });
      const say = isPretty(o.logFormat)
        ? (_fields: object, line: string) => { process.stderr.write(`${line}\n`); }
        : (fields: object, line: string) => { banner.info(fields, line); };
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) return;
        stopping = true;
        say({ signal }, `${signal}: worker ${worker.workerId} draining (taking no new tasks)`);
        worker.stop().then(stopTracing).then(() => process.exit(0), (err) => { worker.log.error({ err }, 'stopping failed'); process.exit(1); });
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      worker.on('stopped', () => { if (!stopping) void stopTracing().then(() => process.exit(1)); });
      worker.on('error', () => { /* logged by the worker; 'stopped' follows */ });
      await worker.start();
      // The port it really took: another worker on this machine may hold the one asked for.
      const port = worker.statusPort;
      const statusHost = ['0.0.0.0', '::', '127.0.0.1', 'localhost'].includes(o.statusHost) ? '127.0.0.1' : o.statusHost.includes(':') ? `[${o.statusHost}]` : o.statusHost;
      const moved = port && o.statusPort !== 0 && port !== o.statusPort ? ` (${o.statusPort} was taken)` : '';
      const statusUrl = port ? `http://${statusHost}:${port}` : undefined;
      say({ url: worker.foremanUrl, concurrency: worker.capacity, allowCode: worker.allowCode, handlers: worker.patterns, ...(statusUrl ? { statusUrl } : {}) },
        `worker ${worker.workerId} connected to ${worker.foremanUrl} (concurrency ${worker.capacity}, code ${worker.allowCode ? 'allowed' : 'refused'}, handlers: ${worker.patterns.join(', ') || 'none'}${statusUrl ? `, status ${statusUrl}${moved}` : ''})`);
    });
}
