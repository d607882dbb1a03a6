import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { Option, type Command } from 'commander';
import type { Client as ClientType } from '../client/index.ts';
import { JOB_STATES, UNITS, type JobResultsView } from '../protocol/index.ts';
import { parseDuration, parseIntArg, parseJsonArg, within } from './parse-args.ts';
import { checkForemanUrls, foremanOption, print, withClient } from './foreman-client.ts';
import { defaultJobName, graphFrom, jobOptionsFrom, mapFlags, mapFunctionFrom, mapInputsFrom, nameFlag, startFlags, taskFlags, webhookFlag } from './job-flags.ts';
import { ProgressBar } from './progress-bar.ts';
import { bytes, duration, jobSummary, jobsTable, resultsText, shortId, snakeKeys, statsSummary, table, tasksTable, when, workersTable } from './views.ts';

/** The states a job ends in: nothing is left to cancel. */
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/** `2 failed`, or nothing when none failed: the text after a progress bar's counts. */
const failedText = (counts: { failed: number }) => (counts.failed ? `${counts.failed} failed` : '');

/** Upload a file from disk, named by its base name. */
async function uploadFrom(client: ClientType, path: string) {
  if (!existsSync(path)) throw new Error(`file ${path} does not exist`);
  return client.uploadFile(new Uint8Array(readFileSync(path)), basename(path));
}

/**
 * What the foreman said about a submission, or about a job's queued tasks now (say, that no
 * connected worker handles their type), on stderr; when its tasks may wait for a worker, how
 * long they will (its queue timeout, else for ever) and what to do about it: at submission, give
 * a queue timeout; later, start a worker that serves it or cancel the job.
 */
async function warn(client: ClientType, jobId: string, warnings: readonly string[], when: 'submitted' | 'later' = 'submitted'): Promise<void> {
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  if (warnings.length === 0) return;
  const limit = (await client.getJob(jobId)).queueTimeoutMs;
  const instead = when === 'submitted' ? 'give --queue-timeout 5m to fail instead' : `start a worker that serves it, or crowdcompute cancel ${jobId}`;
  process.stderr.write(limit
    ? `warning: job ${jobId} waits at most ${duration(limit)} for a worker (its queue timeout), then fails with CC_ERR_NO_WORKER; crowdcompute workers lists what the connected workers serve\n`
    : `warning: job ${jobId} waits for ever for a worker (it has no queue timeout): ${instead}; crowdcompute workers lists what the connected workers serve\n`);
}

/** How many of the newest jobs a short id is looked for in. */
const SHORT_ID_WINDOW = 1_000;

/**
 * A job id as typed: the whole id, or its end as the progress bars show it (`3f9c2a1b`),
 * looked for among the newest jobs. Anything else is passed on for the foreman to judge.
 */
async function jobIdFrom(client: ClientType, id: string, command: string): Promise<string> {
  // `submit` prints the task id first (`<job>.0`), so it is the id people copy.
  const task = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(\d+)$/i.exec(id);
  if (task) {
    const alone = command === 'retry' || command === 'cancel' ? `, or crowdcompute ${command} ${id} --task for this task alone` : '';
    throw new Error(`${id} is a task id (task ${task[2]} of job ${task[1]}); this command takes a job id: crowdcompute ${command} ${task[1]}${alone}`);
  }
  if (!/^[0-9a-f]{4,12}$/i.test(id)) return id;
  const matches = (await client.listJobs({ limit: SHORT_ID_WINDOW })).filter((j) => j.id.toLowerCase().endsWith(id.toLowerCase()));
  if (matches.length === 1) return matches[0].id;
  if (matches.length === 0) throw new Error(`no job among the newest ${SHORT_ID_WINDOW} has an id ending in ${id}; give the whole id (crowdcompute jobs lists them)`);
  throw new Error(`${matches.length} jobs have ids ending in ${id} (${matches.slice(0, 3).map((j) => j.id).join(', ')}${matches.length > 3 ? ', …' : ''}); give more of the id`);
}

/**
 * Wait for a job's outcome; Ctrl-C meanwhile leaves the job on the foreman, which goes on with
 * it, so say so and how to follow or stop it rather than exit as if the job were gone.
 */
async function waitingOn<T>(jobId: string, outcome: Promise<T>): Promise<T> {
  const interrupted = () => {
    process.stderr.write(`\njob ${jobId} goes on without this command: crowdcompute job ${jobId} --wait follows it, crowdcompute cancel ${jobId} stops it\n`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  try {
    return await outcome;
  } finally {
    process.off('SIGINT', interrupted);
  }
}

/** `cancel` and `retry` print a job as GET /api/jobs/{id} has it. */
const jobJson = (job: object) => snakeKeys(job);

/** The client commands: map, submit, jobs, job, workers, stats, retry, cancel. */
export function clientCommands(program: Command): void {
  foremanOption(nameFlag(startFlags(mapFlags(taskFlags(program.command('map')
    .description('Run a function over a list of inputs on the workers; prints the results in input order')
    .argument('<module>', 'module whose default export (or --export) is a self-contained function of one argument; or a Python file, module.py:function (or --export function), whose function runs in Pyodide on the workers')
    .argument('<inputs>', 'JSON file holding an array of arguments')
    .option('-o, --out <file>', 'write results to a file instead of stdout')))), 'the module\'s file name and the number of inputs, e.g. "square.ts over 10"'))
    .action(async (modulePath: string, inputsPath: string, o) => {
      if (o.foreman !== undefined) checkForemanUrls(o.foreman);
      const fn = await mapFunctionFrom(modulePath, o.export);
      const args = mapInputsFrom(inputsPath);
      await withClient(o, async (client) => {
        const job = await client.submitMap(fn, args, { ...jobOptionsFrom(o), name: o.name ?? defaultJobName(`${basename(modulePath)} over ${args.length}`) });
        await warn(client, job.id, job.warnings);
        const bar = new ProgressBar(`job ${shortId(job.id)}`);
        job.onProgress((p) => bar.update(p.counts.completed + p.counts.failed + p.counts.cancelled, p.counts.total, failedText(p.counts)));
        let outcome;
        try {
          outcome = await waitingOn(job.id, job.outcome());
        } finally {
          // The last line keeps the failures: it is drawn with the final counts.
          if (outcome) bar.update(outcome.counts.total, outcome.counts.total, failedText(outcome.counts));
          bar.done(outcome ? `job ${job.id} ${outcome.state}: ${args.length} arguments, ${outcome.counts.total} tasks` : '');
        }
        const text = `${JSON.stringify(outcome.results)}\n`;
        if (o.out) writeFileSync(o.out, text); else process.stdout.write(text);
        if (outcome.state !== 'completed') {
          for (const f of outcome.failures.slice(0, 5)) process.stderr.write(`  task ${f.taskId} (from argument ${f.index}): ${f.error?.message ?? f.status}\n`);
          process.exitCode = 1;
        }
      });
    });

  foremanOption(nameFlag(startFlags(taskFlags(program.command('submit')
    .description('Submit one named task and (by default) wait for its result')
    .argument('<type>', 'task type, e.g. image.resize')
    .argument('<input>', 'task input as JSON'))
    .option('--idempotency-key <key>', 'resubmitting with the same key returns the same job')
    .option('--file <path>', 'upload a file for the task to carry (repeatable); its handler reads it with task.readFile', (v: string, all: string[] = []) => [...all, v])
    .option('--no-wait', 'print the task id and return at once')
    .option('--json', 'with --no-wait, print { task_id, job_id, position } instead of a line for people')), 'none; lists show its task type'))
    .action(async (type: string, inputText: string, o) => {
      await withClient(o, async (client, { JobFailedError }) => {
        const files: string[] = [];
        for (const path of (o.file ?? []) as string[]) files.push((await uploadFrom(client, path)).fileId);
        const task = await client.submit(type, parseJsonArg(inputText, 'input'), {
          ...jobOptionsFrom(o), ...(o.name !== undefined ? { name: o.name } : {}), ...(files.length ? { files } : {}), ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}),
        });
        await warn(client, task.jobId, task.job.warnings);
        if (!o.wait) {
          if (o.json) print({ task_id: task.taskId, job_id: task.jobId, position: task.position });
          else process.stdout.write(`submitted task ${task.taskId} (job ${task.jobId}); ${task.position} queued task${task.position === 1 ? '' : 's'} of its priority or better were ahead of it\n`);
          return;
        }
        task.onProgress((p) => process.stderr.write(`progress ${p.progress}%${p.message ? ` ${p.message}` : ''}\n`));
        try {
          print(await waitingOn(task.jobId, task.result()));
        } catch (err) {
          if (err instanceof JobFailedError) {
            const again = err.state === 'failed' ? `, crowdcompute retry ${task.jobId} runs it again` : '';
            process.stderr.write(`crowdcompute: ${err.message}; crowdcompute job ${task.jobId} --tasks shows its attempts${again}\n`);
            process.exitCode = 1;
            return;
          }
          throw err;
        }
      });
    });

  foremanOption(program.command('jobs')
    .description('List jobs, newest first: a table of id, name (else task type or function), state, progress, tasks and age')
    .addOption(new Option('--status <status>', 'only jobs in this state').choices(JOB_STATES))
    .option('--limit <n>', 'how many (at most 10000)', within(parseIntArg, '--limit', { min: 1, max: 10_000 }), 20)
    .option('--json', 'print the jobs as the REST API has them (GET /api/jobs)'))
    .action(async (o) => {
      await withClient(o, async (client) => {
        const jobs = await client.listJobs({ ...(o.status ? { status: o.status } : {}), limit: o.limit });
        if (o.json) { print(jobs.map(snakeKeys)); return; }
        process.stdout.write(jobsTable(jobs));
      });
    });

  foremanOption(program.command('job')
    .description('Show one job: what it runs, its state and progress, when it was created, started and finished; --tasks lists its tasks, --results prints its ordered results, --wait waits for it')
    .argument('<id>', 'job id, or its last characters as a progress bar shows them')
    .option('--tasks', 'include its tasks (index, id, type, state, attempt, worker, error)')
    .option('--results', 'include its ordered results and failures')
    .option('--wait', 'wait for the job to finish, with a progress bar on stderr')
    .option('--json', 'print { job, tasks?, outcome? } as the REST API has them (GET /api/jobs/{id}, …/tasks, …/results)'))
    .action(async (typed: string, o) => {
      await withClient(o, async (client) => {
        const id = await jobIdFrom(client, typed, 'job');
        if (o.wait) {
          const h = await client.watch(id);
          await warn(client, id, h.warnings, 'later');
          const bar = new ProgressBar(`job ${shortId(id)}`);
          h.onProgress((p) => bar.update(p.counts.completed + p.counts.failed + p.counts.cancelled, p.counts.total, failedText(p.counts)));
          let outcome;
          try {
            outcome = await waitingOn(id, h.outcome());
          } finally {
            if (outcome) bar.update(outcome.counts.total, outcome.counts.total, failedText(outcome.counts));
            bar.done();
          }
        }
        const job = await client.getJob(id);
        const tasks = o.tasks ? await client.getJobTasks(id) : undefined;
        let results: JobResultsView | undefined;
        if (o.results) {
          const r = await client.getJobOutcome(id);
          results = { job_id: r.jobId, status: r.state, results: r.results, offset: 0, total: r.results.length, next_offset: null, failures: r.failures.map((f) => ({ task_id: f.taskId, index: f.index, status: f.status as JobResultsView['failures'][number]['status'], error: f.error })) };
        }
        if (o.json) {
          print({ job: snakeKeys(job), ...(tasks ? { tasks: tasks.map(snakeKeys) } : {}), ...(results ? { outcome: results } : {}) });
          return;
        }
        process.stdout.write(jobSummary(job));
        if (!o.wait) await warn(client, id, job.warnings ?? [], 'later');
        if (tasks) {
          process.stdout.write(`\ntasks${tasks.length < job.totalTasks ? ` (the first ${tasks.length} of ${job.totalTasks})` : ''}:\n`);
          process.stdout.write(tasksTable(tasks));
        }
        if (results) process.stdout.write(`\n${resultsText(results)}`);
      });
    });

  foremanOption(program.command('workers')
    .description('List the workers the foreman knows: status, running tasks of capacity, handler patterns, whether they run shipped code, their foreman, tasks done and failed, when last seen')
    .option('--json', 'print the workers as the REST API has them (GET /api/workers)'))
    .action(async (o) => {
      await withClient(o, async (client) => {
        const workers = await client.workers();
        if (o.json) { print(workers); return; }
        process.stdout.write(workersTable(workers));
      });
    });

  foremanOption(program.command('stats')
    .description('Show the foreman\'s statistics: workers, jobs and tasks per state, retention and pruning, the database\'s size')
    .option('--json', 'print them as the REST API has them (GET /api/stats)'))
    .action(async (o) => {
      await withClient(o, async (client) => {
        const stats = await client.stats();
        if (o.json) { print(stats); return; }
        process.stdout.write(statsSummary(stats));
      });
    });

  foremanOption(program.command('retry')
    .description('Run a job\'s failed and cancelled tasks again, with fresh attempts (results already recorded stay), or one task with --task')
    .argument('<id>', 'job id (or its last characters, as a progress bar shows them), or task id with --task')
    .option('--task', 'the id is a task id: retry that task only')
    .option('--wait', 'wait for the job to finish again, with a progress bar')
    .option('--json', 'print the job as the REST API has it (GET /api/jobs/{id}) with "retried", the tasks put back'))
    .action(async (id: string, o) => {
      await withClient(o, async (client) => {
        const r = o.task ? await client.retryTask(id) : await client.retry(await jobIdFrom(client, id, 'retry'));
        if (o.json) print({ ...jobJson(await client.getJob(r.job.id)), retried: r.retried });
        else process.stderr.write(`job ${r.job.id}: ${r.retried} task${r.retried === 1 ? '' : 's'} put back in the queue\n`);
        if (!o.wait) return;
        const bar = new ProgressBar(`job ${shortId(r.job.id)}`);
        r.job.onProgress((p) => bar.update(p.counts.completed + p.counts.failed + p.counts.cancelled, p.counts.total, failedText(p.counts)));
        const outcome = await waitingOn(r.job.id, r.job.outcome());
        bar.update(outcome.counts.total, outcome.counts.total, failedText(outcome.counts));
        bar.done(`job ${r.job.id} ${outcome.state}`);
        if (outcome.state !== 'completed') {
          for (const f of outcome.failures.slice(0, 5)) process.stderr.write(`  task ${f.taskId} (index ${f.index}): ${f.error?.message ?? f.status}\n`);
          process.exitCode = 1;
        }
      });
    });

  const graph = program.command('graph').description('Task graphs: run one from a JSON file and follow its nodes, or show one');
  foremanOption(nameFlag(webhookFlag(startFlags(graph.command('run')
    .description('Submit a task graph (a JSON file: {"nodes": [...], "output"?}), show each node\'s progress on stderr, print the output node\'s result as JSON')
    .argument('<file>', 'the graph as JSON: nodes with id, type, input, dependsOn, inputAdapter, inputArgs')
    .addOption(new Option('--poll <duration>', 'how often to look at the nodes').argParser(within(parseDuration, '--poll', { min: 1, max: UNITS.HOUR, unit: 'ms' })).default(500, '500ms'))
    .option('--no-wait', 'print the job id and return at once')
    .option('--json', 'with --no-wait, print { job_id, nodes, output } instead of a line for people'))), 'the file\'s "name", else the file\'s name'))
    .action(async (file: string, o) => {
      const spec = graphFrom(file);
      await withClient(o, async (client, { JobFailedError }) => {
        const handle = await client.submitGraph({ ...spec, name: o.name ?? spec.name ?? defaultJobName(basename(file)), ...jobOptionsFrom(o) } as Parameters<ClientType['submitGraph']>[0]);
        await warn(client, handle.jobId, handle.job.warnings);
        if (!o.wait) {
          if (o.json) print({ job_id: handle.jobId, nodes: handle.nodeIds, output: handle.output });
          else process.stdout.write(`submitted graph ${handle.jobId}: ${handle.nodeIds.length} nodes, output ${handle.output}\n`);
          return;
        }
        process.stderr.write(`graph ${handle.jobId}: ${handle.nodeIds.length} nodes, output ${handle.output}\n`);
        const said = new Map<string, string>();
        const show = async () => {
          const g = await client.getGraph(handle.jobId);
          for (const n of g.nodes) {
            const line = `${n.status === 'queued' && n.waiting ? 'waiting' : n.status}${n.artifacts ? `, ${n.artifacts} artifact${n.artifacts === 1 ? '' : 's'}` : ''}${n.attempt > 1 ? `, attempt ${n.attempt}` : ''}`;
            if (said.get(n.nodeId) !== line) { said.set(n.nodeId, line); process.stderr.write(`  ${n.nodeId.padEnd(16)} ${line}\n`); }
          }
        };
        const timer = setInterval(() => { show().catch(() => { /* the next look may work */ }); }, o.poll);
        try {
          print(await waitingOn(handle.jobId, handle.result()));
        } catch (err) {
          if (!(err instanceof JobFailedError)) throw err;
          const failed = err.failures.filter((f) => f.status === 'failed');
          for (const f of failed.slice(0, 5)) process.stderr.write(`  node ${handle.nodeIds[f.index] ?? f.index} (task ${f.taskId}) failed: ${f.error?.message ?? f.status}\n`);
          process.stderr.write(`graph ${handle.jobId} ${err.state}\n`);
          process.exitCode = 1;
        } finally {
          clearInterval(timer);
          await show().catch(() => {});
        }
      });
    });
  foremanOption(graph.command('show')
    .description('Show a task graph\'s nodes: state, attempts, worker, artifacts written')
    .argument('<id>', 'the graph\'s job id')
    .option('--json', 'print GET /api/jobs/{id}/graph as it is'))
    .action(async (id: string, o) => {
      await withClient(o, async (client) => {
        const g = await client.getGraph(await jobIdFrom(client, id, 'graph show'));
        if (o.json) { print({ ...snakeKeys(g), nodes: g.nodes.map(snakeKeys) }); return; }
        process.stdout.write(`graph ${g.jobId} ${g.status}, output ${g.output}\n`);
        process.stdout.write(table(['NODE', 'TYPE', 'STATE', 'ATTEMPT', 'WORKER', 'ARTIFACTS', 'DEPENDS ON'],
          g.nodes.map((n) => [n.nodeId, n.type, n.waiting ? 'waiting' : n.status, n.attempt, n.workerId ?? '-', n.artifacts, n.dependsOn.join(', ') || '-'])));
      });
    });

  const file = program.command('file').description('Files for tasks to carry: upload one (submit --file uploads and attaches in one step)');
  foremanOption(file.command('upload')
    .description('Upload a file; prints its id, to give in a task\'s "files"')
    .argument('<path>', 'the file')
    .option('--json', 'print the file as the REST API has it (POST /api/files)'))
    .action(async (path: string, o) => {
      await withClient(o, async (client) => {
        const f = await uploadFrom(client, path);
        if (o.json) print(snakeKeys(f));
        else process.stdout.write(`uploaded ${f.filename} (${bytes(f.size)}): file id ${f.fileId}\n`);
      });
    });

  foremanOption(program.command('artifacts')
    .description('List the artifacts a task wrote, in the order they were recorded (JSON lines: seq, batch uid, size, data)')
    .argument('<taskId>', 'the task\'s id')
    .option('--after <seq>', 'only those numbered after this', within(parseIntArg, '--after', { min: 0, max: Number.MAX_SAFE_INTEGER }))
    .option('--limit <n>', 'at most this many (at most 10000)', within(parseIntArg, '--limit', { min: 1, max: 10_000 }), 1_000))
    .action(async (taskId: string, o) => {
      await withClient(o, async (client) => {
        const a = await client.getArtifacts(taskId, { limit: o.limit, ...(o.after !== undefined ? { after: o.after } : {}) });
        for (const x of a.artifacts) process.stdout.write(`${JSON.stringify({ seq: x.seq, batch_uid: x.batchUid, attempt: x.attempt, size: x.size, data: x.data })}\n`);
        process.stderr.write(`${a.artifacts.length} artifact${a.artifacts.length === 1 ? '' : 's'} of task ${taskId}${a.complete ? '' : ' (it may write more)'}\n`);
      });
    });

  foremanOption(program.command('cancel')
    .description('Cancel a job (queued tasks never start, running ones are stopped, finished results are kept), or one task with --task')
    .argument('<id>', 'job id (or its last characters, as a progress bar shows them), or task id with --task')
    .option('--task', 'the id is a task id: cancel that task only')
    .option('--json', 'print the job (or task) as the REST API has it after the cancel (GET /api/jobs/{id})'))
    .action(async (typed: string, o) => {
      await withClient(o, async (client) => {
        if (o.task) {
          const id = typed;
          const t = await client.cancelTask(id);
          if (t.status !== 'cancelled') throw new Error(`task ${id} already finished (${t.status})${t.completedAt ? ` at ${when(t.completedAt)}` : ''}; nothing to cancel`);
          if (o.json) print(snakeKeys(t)); else process.stdout.write(`cancelled task ${id} of job ${t.jobId}\n`);
          return;
        }
        const id = await jobIdFrom(client, typed, 'cancel');
        const before = await client.getJob(id);
        if (FINISHED.has(before.status)) {
          throw new Error(`job ${id} already finished (${before.status})${before.completedAt ? ` at ${when(before.completedAt)}` : ''}; nothing to cancel`);
        }
        const after = await client.cancel(id);
        if (o.json) { print(jobJson(after)); return; }
        const cancelled = after.cancelledTasks - before.cancelledTasks;
        const done = after.completedTasks + after.failedTasks;
        const stopping = after.totalTasks - done - after.cancelledTasks;
        process.stdout.write(`cancelled job ${id}: ${cancelled} task${cancelled === 1 ? '' : 's'} cancelled, ${done} already done`
          + `${after.failedTasks ? ` (${after.failedTasks} failed)` : ''}${stopping > 0 ? `, ${stopping} still stopping on their workers` : ''}\n`);
      });
    });
}
