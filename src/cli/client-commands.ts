import { writeFileSync, readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { Client as ClientType } from '../client/index.ts';
import { PRIORITIES, type Priority } from '../protocol/index.ts';
import { loadModule } from './load-module.ts';
import { parseDuration, parseIntArg, parseJsonArg } from './parse-args.ts';
import { ProgressBar } from './progress-bar.ts';

type Sdk = typeof import('../client/index.ts');

/**
 * Run a command with a client on `--foreman`, closed afterwards whatever happens. The SDK is
 * loaded only when a command runs, which keeps `--help` fast.
 */
async function withClient(o: { foreman: string; apiKey?: string; ca?: string; connectTimeout: number }, fn: (client: ClientType, sdk: Sdk) => Promise<void>): Promise<void> {
  const sdk = await import('../client/index.ts');
  const client = new sdk.Client({ url: o.foreman, connectTimeoutMs: o.connectTimeout, ...(o.apiKey ? { apiKey: o.apiKey } : {}), ...(o.ca ? { ca: readFileSync(o.ca) } : {}) });
  try {
    await fn(client, sdk);
  } finally {
    await client.close();
  }
}

const foremanOption = (cmd: Command) => cmd
  .option('--foreman <url>', 'foreman HTTP URL(s), comma-separated (env CROWDCOMPUTE_URL)', process.env.CROWDCOMPUTE_URL ?? 'http://localhost:8000')
  .option('--api-key <key>', 'API key, cck_… (env CROWDCOMPUTE_API_KEY; default: a local foreman\'s, from the local credentials file)')
  .option('--ca <file>', 'trust this CA certificate (PEM) for an https:// foreman with a private certificate')
  .addOption(new Option('--connect-timeout <duration>', 'how long to keep trying a foreman that cannot be reached, or whose database is away (503)')
    .argParser(parseDuration).default(10_000, '10s'));

function priorityArg(v: string): Priority {
  if (!(PRIORITIES as readonly string[]).includes(v)) throw new Error(`priority must be one of ${PRIORITIES.join(', ')}`);
  return v as Priority;
}

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

/** The client commands: map, submit, jobs, job, cancel. */
export function clientCommands(program: Command): void {
  foremanOption(program.command('map')
    .description('Run a function over a list of inputs on the workers; prints the results in input order')
    .argument('<module>', 'module whose default export (or --export) is a self-contained function of one argument')
    .argument('<inputs>', 'JSON file holding an array of arguments')
    .option('--export <name>', 'named export to ship instead of the default')
    .option('-o, --out <file>', 'write results to a file instead of stdout')
    .option('--chunk-size <n>', 'arguments per task (default: chosen from the count)', parseIntArg)
    .option('--priority <p>', `one of ${PRIORITIES.join(', ')}`, priorityArg)
    .option('--timeout <ms>', 'per-task timeout', parseIntArg)
    .option('--max-attempts <n>', 'attempts per task', parseIntArg))
    .action(async (modulePath: string, inputsPath: string, o) => {
      const mod = await loadModule(modulePath);
      const fn = o.export ? mod[o.export] : mod.default;
      if (typeof fn !== 'function') throw new Error(`${modulePath} has no ${o.export ? `export "${o.export}"` : 'default export'} that is a function`);
      const args = parseJsonArg(readFileSync(inputsPath, 'utf8'), inputsPath);
      if (!Array.isArray(args)) throw new Error(`${inputsPath} must hold a JSON array of arguments`);
      await withClient(o, async (client) => {
        const job = await client.submitMap(fn as (x: unknown) => unknown, args, {
          ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}), ...(o.priority ? { priority: o.priority } : {}),
          ...(o.timeout ? { timeoutMs: o.timeout } : {}), ...(o.maxAttempts ? { maxAttempts: o.maxAttempts } : {}),
          name: `${modulePath} over ${args.length}`,
        });
        const bar = new ProgressBar(`job ${job.id.slice(0, 8)}`);
        job.onProgress((p) => bar.update(p.counts.completed + p.counts.failed + p.counts.cancelled, p.counts.total, p.counts.failed ? `${p.counts.failed} failed` : ''));
        const outcome = await job.outcome();
        bar.update(outcome.counts.total, outcome.counts.total);
        bar.done(`job ${job.id} ${outcome.state}: ${args.length} arguments, ${outcome.counts.total} tasks`);
        const text = `${JSON.stringify(outcome.results)}\n`;
        if (o.out) writeFileSync(o.out, text); else process.stdout.write(text);
        if (outcome.state !== 'completed') {
          for (const f of outcome.failures.slice(0, 5)) process.stderr.write(`  task ${f.taskId} (from argument ${f.index}): ${f.error?.message ?? f.status}\n`);
          process.exitCode = 1;
        }
      });
    });

  foremanOption(program.command('submit')
    .description('Submit one named task and (by default) wait for its result')
    .argument('<type>', 'task type, e.g. image.resize')
    .argument('<input>', 'task input as JSON')
    .option('--priority <p>', `one of ${PRIORITIES.join(', ')}`, priorityArg)
    .option('--timeout <ms>', 'task timeout', parseIntArg)
    .option('--max-attempts <n>', 'attempts before the task fails for good', parseIntArg)
    .option('--idempotency-key <key>', 'resubmitting with the same key returns the same job')
    .option('--no-wait', 'print the task id and return at once'))
    .action(async (type: string, inputText: string, o) => {
      await withClient(o, async (client, { JobFailedError }) => {
        const task = await client.submit(type, parseJsonArg(inputText, 'input'), {
          ...(o.priority ? { priority: o.priority } : {}), ...(o.timeout ? { timeoutMs: o.timeout } : {}),
          ...(o.maxAttempts ? { maxAttempts: o.maxAttempts } : {}), ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}),
        });
        if (!o.wait) { print({ task_id: task.taskId, job_id: task.jobId, position: task.position }); return; }
        task.onProgress((p) => process.stderr.write(`progress ${p.progress}%${p.message ? ` ${p.message}` : ''}\n`));
        try {
          print(await task.result());
        } catch (err) {
          if (err instanceof JobFailedError) { process.stderr.write(`${err.message}\n`); process.exitCode = 1; return; }
          throw err;
        }
      });
    });

  foremanOption(program.command('jobs')
    .description('List jobs, newest first')
    .option('--status <status>', 'queued, running, completed, failed or cancelled')
    .option('--limit <n>', 'how many', parseIntArg, 20)
    .option('--json', 'print JSON'))
    .action(async (o) => {
      await withClient(o, async (client) => {
        const jobs = await client.listJobs({ ...(o.status ? { status: o.status } : {}), limit: o.limit });
        if (o.json) { print(jobs); return; }
        for (const j of jobs) {
          process.stdout.write(`${j.id}  ${j.kind.padEnd(5)}  ${j.status.padEnd(9)}  ${String(j.completedTasks).padStart(6)}/${String(j.totalTasks).padEnd(6)} ${j.failedTasks ? `${j.failedTasks} failed  ` : ''}${j.createdAt}  ${j.name ?? ''}\n`);
        }
        if (jobs.length === 0) process.stdout.write('no jobs\n');
      });
    });

  foremanOption(program.command('job')
    .description('Show one job; --tasks lists its tasks, --results prints its ordered results, --wait waits for it')
    .argument('<id>', 'job id')
    .option('--tasks', 'include its tasks')
    .option('--results', 'include its ordered results and failures')
    .option('--wait', 'wait for the job to finish, with a progress bar'))
    .action(async (id: string, o) => {
      await withClient(o, async (client) => {
        if (o.wait) {
          const h = await client.watch(id);
          const bar = new ProgressBar(`job ${id.slice(0, 8)}`);
          h.onProgress((p) => bar.update(p.counts.completed + p.counts.failed + p.counts.cancelled, p.counts.total));
          await h.outcome();
          bar.done();
        }
        const out: Record<string, unknown> = { job: await client.getJob(id) };
        if (o.tasks) out.tasks = await client.getJobTasks(id);
        if (o.results) out.outcome = await client.getJobOutcome(id);
        print(out);
      });
    });

  foremanOption(program.command('cancel')
    .description('Cancel a job (queued tasks never start, running ones are stopped, finished results are kept), or one task with --task')
    .argument('<id>', 'job id, or task id with --task')
    .option('--task', 'the id is a task id: cancel that task only'))
    .action(async (id: string, o) => {
      await withClient(o, async (client) => { print(o.task ? await client.cancelTask(id) : await client.cancel(id)); });
    });
}
