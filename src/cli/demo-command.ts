import { dashboardHint } from './foreman-command.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { relative, sep } from 'node:path';
import { Option, type Command } from 'commander';
import { parseIntArg, within } from './parse-args.ts';
import { ProgressBar } from './progress-bar.ts';
import { cliLogger } from './cli-logger.ts';
import { stopTracing } from '../host/tracing.ts';
import { givenSecret } from './credential-commands.ts';

const BIN = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
// demo-handlers.ts in a checkout, demo-handlers.js once compiled: the same extension as this file.
const HANDLERS = fileURLToPath(new URL(`./demo-handlers${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url));

/** Primes below `end` from `start`: the demo's map function (self-contained, as shipped functions must be). */
function countPrimes(range: [number, number]): number {
  let count = 0;
  for (let n = Math.max(2, range[0]); n < range[1]; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break; }
    if (prime) count++;
  }
  return count;
}

function spawnWorker(index: number, wsUrl: string, statusPort: number): ChildProcess {
  const child = spawn(process.execPath, ['--no-node-snapshot', BIN, 'worker', '--foreman', wsUrl, '--id', `local-${index}`,
    '--concurrency', '2', '--allow-code', '--handlers', HANDLERS, '--status-port', String(statusPort), '--log-level', 'warn'],
    // The worker finds its token in the local credentials file the foreman just wrote.
    { stdio: ['ignore', 'inherit', 'inherit'] });
  return child;
}

/** `crowdcompute demo`: a foreman, local workers and an example job, for a first look. */
export function demoCommand(program: Command): void {
  program.command('demo')
    .description('Start a foreman on embedded SQLite with two local worker processes, run an example map job with a progress bar, print its result, keep serving until Ctrl-C '
      + '(bash scripts/start.sh [options] installs what a checkout needs, then runs this with the same options)')
    .option('-p, --port <port>', 'foreman port; workers\' status servers take the next two', within(parseIntArg, '--port', { min: 0, max: 65_533 }), 8000)
    // The environment variable is named, never its value, in --help: it may hold a password.
    .addOption(new Option('-d, --database <url>', 'store: sqlite:<file>, sqlite::memory: or postgres://…').env('CROWDCOMPUTE_DATABASE').default('sqlite:./crowdcompute.db'))
    .option('-w, --workers <n>', 'local worker processes', within(parseIntArg, '--workers', { min: 1, max: 64 }), 2)
    .option('--ranges <n>', 'the example job counts primes below 2,000,000 in this many ranges', within(parseIntArg, '--ranges', { min: 1, max: 100_000 }), 200)
    .option('--exit', 'stop after printing the result instead of serving until Ctrl-C')
    .option('--secret-file <path>', 'file holding the deployment\'s secret, for a database set up before (env CROWDCOMPUTE_SECRET; default: the local credentials file)')
    .action(async (o) => {
      const { startForeman } = await import('../foreman/index.ts');
      const { Client } = await import('../client/index.ts');
      // This machine only: the demo is for a first look, not for the crowd.
      const secret = givenSecret(o.secretFile);
      const foreman = await startForeman({ port: o.port, host: '127.0.0.1', database: o.database, logger: await cliLogger('warn', 'auto'), ...(secret ? { secret } : {}) });
      process.stderr.write(`foreman on ${foreman.url} (store ${o.database}); starting ${o.workers} local worker${o.workers === 1 ? '' : 's'}\n`);
      process.stderr.write(`${await dashboardHint(foreman)}\n`);
      const workers = Array.from({ length: o.workers }, (_, i) => spawnWorker(i + 1, foreman.wsUrl, o.port === 0 ? 0 : o.port + 1 + i));
      const client = new Client({ url: foreman.url });
      let stopping = false;
      const stop = async (code: number) => {
        if (stopping) return;
        stopping = true;
        await client.close();
        for (const w of workers) w.kill('SIGTERM');
        await Promise.all(workers.map((w) => (w.exitCode !== null ? undefined : new Promise((r) => w.once('exit', r)))));
        await foreman.stop();
        await stopTracing();
        process.exit(code);
      };
      process.once('SIGINT', () => { process.stderr.write('\nstopping workers and foreman\n'); void stop(0); });
      process.once('SIGTERM', () => void stop(0));

      // Wait until the workers have said hello, so the progress bar shows them working.
      const deadline = Date.now() + 20_000;
      while ((await client.stats()).connected_workers as number < o.workers) {
        if (Date.now() > deadline) throw new Error(`only ${(await client.stats()).connected_workers} of ${o.workers} workers connected within 20 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const limit = 2_000_000;
      const step = Math.ceil(limit / o.ranges);
      const ranges = Array.from({ length: o.ranges }, (_, i): [number, number] => [i * step, Math.min(limit, (i + 1) * step)]);
      const job = await client.submitMap(countPrimes, ranges, { name: 'demo: primes below 2,000,000', chunkSize: 1 });
      const bar = new ProgressBar('primes');
      job.onProgress((p) => bar.update(p.counts.completed + p.counts.failed, p.counts.total));
      const counts = await job.result();
      bar.update(ranges.length, ranges.length);
      const total = counts.reduce((a, b) => a + b, 0);
      bar.done(`result: ${total} primes below ${limit.toLocaleString('en')} (counted in ${ranges.length} tasks; per range: ${counts.slice(0, 5).join(', ')}, ...)`);
      const sum = await client.submit('math.add', { a: 40, b: 2 });
      process.stdout.write(`named task math.add {a: 40, b: 2} -> ${JSON.stringify(await sum.result())}\n`);
      if (o.exit) { await stop(0); return; }
      const { credentialsFile } = await import('../host/local-credentials.ts');
      process.stdout.write(`\nforeman running on this machine: status page ${foreman.url}/  API docs ${foreman.url}/docs\n`);
      // Commands as they can be pasted: `crowdcompute` is on no PATH in a checkout, where its
      // bin runs as it is (with the checkout's own Node when the machine's is older); an
      // installed package has npx.
      const cc = BIN.includes(`${sep}node_modules${sep}`) ? 'npx crowdcompute' : relative(process.cwd(), BIN);
      // The client commands' default foreman is http://localhost:8000; another port is named.
      const at = o.port === 8000 ? '' : ` --foreman ${foreman.url}`;
      process.stdout.write(`log in and call the API with the local admin key ("apiKey" in ${credentialsFile()}), or make one: ${cc} key create --scopes read\n`);
      process.stdout.write(`more workers on this machine: ${cc} worker --foreman ${foreman.wsUrl} --allow-code (they find their token in the same file)\n`);
      process.stdout.write(`the jobs: ${cc} jobs${at}   every command: ${cc} --help\nCtrl-C to stop.\n`);
    });
}
