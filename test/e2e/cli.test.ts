/**
 * The command line as a user meets it, run as a child process: tables and summaries of jobs,
 * workers and statistics, `--json` in the REST API's field names, errors that say what went
 * wrong in one line, `--help` that never shows a secret from the environment, and a progress
 * bar whose last line keeps its failures.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bin, oneLineFailure, runBin, type Ran } from '../support/cli-process.ts';
import { promisify } from 'node:util';
import { Worker } from '../../src/worker/index.ts';
import { Client, JobFailedError } from '../../src/client/index.ts';
import { freePort, spawnForemanProcess, startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';

const run = promisify(execFile);
const handlersModule = fileURLToPath(new URL('../../examples/handlers.ts', import.meta.url));

/** Run the CLI; a failure is returned (with its exit code), not thrown. */
async function cli(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<Ran> {
  return runBin(args, { env: { ...process.env, ...options.env }, cwd: options.cwd });
}

/** The command fails with exit code 1 and one line, `crowdcompute: <message>`, that matches. */
async function failsWith(args: string[], message: RegExp, options: { env?: Record<string, string>; cwd?: string } = {}): Promise<string> {
  return oneLineFailure(await cli(args, options), args, message);
}

/** The command is refused as typed: exit code 2 and one line, `crowdcompute: <message>; see crowdcompute <command> --help`. */
async function refusedAsTyped(args: string[], message: RegExp, options: { env?: Record<string, string>; cwd?: string } = {}): Promise<string> {
  const r = await cli(args, options);
  assert.equal(r.code, 2, `exit code of crowdcompute ${args.join(' ')}; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.match(lines[0], /^crowdcompute: .*; see crowdcompute [a-z -]+ --help$/);
  assert.match(lines[0], message);
  return lines[0];
}

let foreman: TestForeman;
let worker: Worker;
let client: Client;
let dir: string;
let completedJob: string;
let failedJob: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cc-cli-test-'));
  foreman = await startTestForeman();
  worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'cli-test-worker', maxConcurrentTasks: 4, allowCode: true, logLevel: 'silent' })
    .handle('math.add', async (t) => { const { a, b } = t.input as { a: number; b: number }; return { result: a + b }; })
    .handle('always.fails', async () => { throw new Error('this task fails on purpose'); });
  await worker.start();
  client = new Client({ url: foreman.url });
  const add = await client.submit('math.add', { a: 40, b: 2 });
  await add.result();
  completedJob = add.jobId;
  const fails = await client.submit('always.fails', {}, { maxAttempts: 1 });
  await assert.rejects(fails.result(), JobFailedError);
  failedJob = fails.jobId;
});

after(async () => {
  await client?.close();
  await worker?.stop();
  await foreman?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- readable output

test('jobs: a table with a header, full ids, name or task type, state, progress with failures, tasks and age', async () => {
  const r = await cli(['jobs', '--foreman', foreman.url]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^ID\s+NAME\s+STATE\s+PROGRESS\s+TASKS\s+AGE$/);
  const done = lines.find((l) => l.startsWith(completedJob));
  assert.ok(done, `a row starts with the full id ${completedJob}:\n${r.stdout}`);
  assert.match(done, /\s+math\.add\s+completed\s+100%\s+1\s+(just now|\d+ \w+ ago)$/);
  const failed = lines.find((l) => l.startsWith(failedJob));
  assert.match(failed ?? '', /\s+always\.fails\s+failed\s+100%, 1 failed\s+1\s+/);
});

test('jobs --json: the REST API\'s objects, snake_case', async () => {
  const r = await cli(['jobs', '--foreman', foreman.url, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const jobs = JSON.parse(r.stdout) as Record<string, unknown>[];
  const job = jobs.find((j) => j.id === completedJob)!;
  assert.equal(job.job_id, completedJob);
  assert.equal(job.total_tasks, 1);
  assert.equal(job.completed_tasks, 1);
  assert.equal(typeof job.created_at, 'string');
  assert.ok(!('totalTasks' in job) && !('createdAt' in job), 'no camelCase keys');
});

test('job <id>: a summary; --tasks adds a table of tasks, --results the results and failures', async () => {
  const r = await cli(['job', failedJob, '--foreman', foreman.url, '--tasks', '--results']);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, new RegExp(`^job ${failedJob}$`, 'm'));
  assert.match(out, /^\s+kind\s+tasks \(type always\.fails\)/m);
  assert.match(out, /^\s+state\s+failed$/m);
  assert.match(out, /^\s+progress\s+100%: 1 of 1 tasks finished \(0 completed, 1 failed\)$/m);
  assert.match(out, /^\s+created\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((just now|\d+ \w+ ago)\)$/m);
  assert.match(out, /^\s+started\s+\d{4}-/m);
  assert.match(out, /^\s+completed\s+\d{4}-/m);
  assert.match(out, /^\s+priority\s+normal$/m);
  assert.match(out, /^\s+attempts\s+up to 1 per task$/m);
  assert.match(out, /^INDEX\s+ID\s+TYPE\s+STATE\s+ATTEMPT\s+FAILED\s+WORKER\s+ERROR$/m);
  assert.match(out, new RegExp(`^0\\s+${failedJob}\\.0\\s+always\\.fails\\s+failed\\s+1\\s+1 of 1\\s+cli-test-worker\\s+.*this task fails on purpose`, 'm'));
  assert.match(out, /^results \(1, in order\): \[null\]$/m);
  assert.match(out, new RegExp(`task ${failedJob}\\.0 \\(index 0\\) failed: .*this task fails on purpose`));
});

test('job <id> --json: { job, tasks, outcome } in the REST API\'s field names', async () => {
  const r = await cli(['job', completedJob, '--foreman', foreman.url, '--json', '--tasks', '--results']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.job.id, completedJob);
  assert.equal(out.job.total_tasks, 1);
  assert.equal(out.job.status, 'completed');
  assert.ok('completed_at' in out.job && 'max_attempts' in out.job && !('totalTasks' in out.job));
  assert.equal(out.tasks[0].task_id, `${completedJob}.0`);
  assert.equal(out.tasks[0].worker_id, 'cli-test-worker');
  assert.deepEqual(out.outcome, { job_id: completedJob, status: 'completed', results: [{ result: 42 }], offset: 0, total: 1, next_offset: null, failures: [] });
});

test('workers: a table of the workers; --json as the REST API has them', async () => {
  const r = await cli(['workers', '--foreman', foreman.url]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^ID\s+STATUS\s+RUNNING\s+PATTERNS\s+CODE\s+FOREMAN\s+DONE\s+FAILED\s+LAST SEEN$/);
  const row = lines.find((l) => l.startsWith('cli-test-worker'));
  assert.match(row ?? '', new RegExp(`^cli-test-worker\\s+online\\s+\\d+/4\\s+(math\\.add, always\\.fails|always\\.fails, math\\.add)\\s+allowed\\s+${foreman.id}\\s+\\d+\\s+\\d+\\s+(just now|\\d+ \\w+ ago)$`));
  const json = await cli(['workers', '--foreman', foreman.url, '--json']);
  const w = (JSON.parse(json.stdout) as Record<string, unknown>[]).find((x) => x.worker_id === 'cli-test-worker')!;
  assert.equal(w.status, 'online');
  assert.equal(w.capacity, 4);
  assert.equal(w.allow_code, true);
});

test('stats: workers, jobs and tasks per state, retention and the database; --json as the REST API has them', async () => {
  const r = await cli(['stats', '--foreman', foreman.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^workers\s+1 online, \d+ offline; \d+ tasks running on 1 connected workers with 4 slots$/m);
  assert.match(r.stdout, /^jobs\s+\d+ \(.*\d+ completed.*\d+ failed.*\)$/m);
  assert.match(r.stdout, /^tasks\s+\d+ \(/m);
  assert.match(r.stdout, /^retention\s+finished jobs are kept 7 days unless they say otherwise$/m);
  assert.match(r.stdout, /^retained\s+\d+ finished jobs, \d+ of their tasks$/m);
  assert.match(r.stdout, /^pruned\s+0 jobs, 0 tasks since the database was made$/m);
  assert.match(r.stdout, /^database\s+[\d.]+ (B|KiB|MiB|GiB)$/m);
  assert.match(r.stdout, /^uptime\s+/m);
  const json = JSON.parse((await cli(['stats', '--foreman', foreman.url, '--json'])).stdout);
  assert.equal(json.retention.default_seconds, 7 * 24 * 3600);
  assert.equal(json.workers.online, 1);
});

test('map: the progress bar\'s last line keeps "N failed", and the failure is named', async () => {
  const module = join(dir, 'half.ts');
  writeFileSync(module, 'export default function half(x: number) { if (x === 3) throw new Error("three is odd"); return x / 2; }\n');
  const inputs = join(dir, 'inputs.json');
  writeFileSync(inputs, JSON.stringify([2, 4, 3, 8]));
  const r = await cli(['map', module, inputs, '--foreman', foreman.url, '--chunk-size', '1', '--max-attempts', '1']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.trim(), '[1,2,null,4]');
  const bar = r.stderr.split('\n').filter((l) => /^job [0-9a-f]{8} \d+%/.test(l));
  assert.ok(bar.length >= 1, r.stderr);
  assert.match(bar.at(-1)!, /^job [0-9a-f]{8} 100% \(4\/4\) \d+\.\ds 1 failed$/);
  assert.match(r.stderr, /task \S+ \(from argument 2\): .*three is odd/);
});

test('map: when one argument of a chunk throws, the others keep their results, and the error names the argument in the whole job', async () => {
  const module = join(dir, 'halve.ts');
  writeFileSync(module, 'export default function halve(x: number) { if (x === 3) throw new Error("three is odd"); return x / 2; }\n');
  const inputs = join(dir, 'four.json');
  writeFileSync(inputs, JSON.stringify([2, 4, 3, 8]));
  const r = await cli(['map', module, inputs, '--foreman', foreman.url, '--chunk-size', '4', '--max-attempts', '1']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.trim(), '[1,2,null,4]');
  assert.match(r.stderr, /\(from argument 2\): argument 2: Error: three is odd/);
});

// ---------------------------------------------------------------- errors

test('a map function that uses a variable from outside itself is refused, naming the variable', async () => {
  const module = join(dir, 'closure.ts');
  writeFileSync(module, 'const rate = 1.2;\nexport default function taxed(price: number) { return price * rate; }\n');
  const inputs = join(dir, 'prices.json');
  writeFileSync(inputs, '[10, 20]');
  await failsWith(['map', module, inputs, '--foreman', foreman.url], /the shipped function uses a variable from outside itself: "rate"/);
});

test('a second worker on the same host takes the next status port and says so', async () => {
  const port = await freePort();
  const start = (id: string) => {
    const child = spawn(process.execPath, [bin, 'worker', '--foreman', foreman.wsUrl, '--id', id, '--handlers', handlersModule,
      '--status-port', String(port), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let err = '';
    child.stderr!.on('data', (d) => { err += d; });
    return { child, err: () => err };
  };
  const first = start('port-first');
  const second = start('port-second');
  try {
    await waitFor(() => / connected to /.test(first.err()) || null, { timeoutMs: 30_000, message: 'the first worker starts' });
    await waitFor(() => / connected to /.test(second.err()) || null, { timeoutMs: 30_000, message: 'the second worker starts too' });
    const lines = [first.err(), second.err()].join('\n');
    assert.match(lines, new RegExp(`status http://127\\.0\\.0\\.1:${port}\\b`));
    assert.match(lines, new RegExp(`status http://127\\.0\\.0\\.1:\\d+ \\(${port} was taken\\)`));
    assert.equal(first.child.exitCode, null);
    assert.equal(second.child.exitCode, null);
  } finally {
    for (const w of [first, second]) w.child.kill();
    await Promise.all([first, second].map((w) => new Promise((r) => (w.child.exitCode !== null ? r(null) : w.child.once('exit', r)))));
  }
});

test('connection refused: the URL tried, and that nothing answers there', async () => {
  const url = `http://127.0.0.1:${await freePort()}`;
  await failsWith(['jobs', '--foreman', url], new RegExp(`cannot reach the foreman at ${url.replaceAll('.', '\\.')}: nothing answers there \\(connection refused\\)`));
});

test('a host name that does not resolve: the URL tried, and the name', async () => {
  await failsWith(['stats', '--foreman', 'http://no-such-host.invalid:8000'],
    /cannot reach the foreman at http:\/\/no-such-host\.invalid:8000: the host name no-such-host\.invalid (does not resolve|could not be resolved)/);
});

test('a --foreman URL without a scheme: it needs http:// or https://, and the corrected URL', async () => {
  await refusedAsTyped(['jobs', '--foreman', 'localhost:8000'], /localhost:8000 needs http:\/\/ or https:\/\/ .*--foreman http:\/\/localhost:8000; see crowdcompute jobs --help$/);
  await refusedAsTyped(['workers'], /from env 'CROWDCOMPUTE_URL' .*foreman\.internal:9000 needs http:\/\/ or https:\/\/ .*--foreman http:\/\/foreman\.internal:9000; see/, { env: { CROWDCOMPUTE_URL: 'foreman.internal:9000' } });
});

test('an https:// URL to a plain-HTTP foreman: it does not speak HTTPS, use http:// (no OpenSSL dump)', async () => {
  const plain = new URL(foreman.url);
  const line = await failsWith(['jobs', '--foreman', `https://${plain.host}`], new RegExp(`at https://${plain.host.replaceAll('.', '\\.')}: it does not speak HTTPS .*; use http://${plain.host.replaceAll('.', '\\.')}$`));
  assert.ok(!/SSL routines|openssl/i.test(line), line);
  await failsWith(['submit', 'math.add', '{}', '--foreman', `https://${plain.host}`, '--connect-timeout', '1s'], /does not speak HTTPS .*; use http:\/\//);
});

test('cancel: one line for people (tasks cancelled, already done); --json is the REST job view; a finished job says there is nothing to cancel', async () => {
  const queued = await cli(['submit', 'nobody.serves.this', '{}', '--no-wait', '--json', '--foreman', foreman.url]);
  assert.equal(queued.code, 0, queued.stderr);
  const jobId = (JSON.parse(queued.stdout) as { job_id: string }).job_id;
  const r = await cli(['cancel', jobId, '--foreman', foreman.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `cancelled job ${jobId}: 1 task cancelled, 0 already done\n`);
  await failsWith(['cancel', jobId, '--foreman', foreman.url], new RegExp(`job ${jobId} already finished \\(cancelled\\) at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC \\(.*\\); nothing to cancel$`));
  await failsWith(['cancel', completedJob, '--foreman', foreman.url, '--json'], new RegExp(`job ${completedJob} already finished \\(completed\\) at .*; nothing to cancel$`));
  await failsWith(['cancel', `${completedJob}.0`, '--task', '--foreman', foreman.url], new RegExp(`task ${completedJob}\\.0 already finished \\(completed\\) at .*; nothing to cancel$`));

  const second = JSON.parse((await cli(['submit', 'nobody.serves.this', '{}', '--no-wait', '--json', '--foreman', foreman.url])).stdout) as { job_id: string };
  const json = await cli(['cancel', second.job_id, '--foreman', foreman.url, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const job = JSON.parse(json.stdout) as Record<string, unknown>;
  assert.equal(job.job_id, second.job_id);
  assert.equal(job.status, 'cancelled');
  assert.equal(job.cancelled_tasks, 1);
  assert.ok('total_tasks' in job && 'created_at' in job && !('totalTasks' in job) && !('cancelledTasks' in job), `snake_case keys: ${json.stdout}`);
});

test('submit and graph run of a type no worker serves: the warning says how long it waits and what to do', async () => {
  const forever = await cli(['submit', 'nobody.serves.either', '{}', '--no-wait', '--foreman', foreman.url]);
  assert.equal(forever.code, 0, forever.stderr);
  assert.match(forever.stdout, /^submitted task \S+\.0 \(job \S+\); \d+ queued tasks? of its priority or better were ahead of it$/m);
  assert.match(forever.stderr, /^warning: no connected worker handles task type "nobody\.serves\.either"/m);
  assert.match(forever.stderr, /^warning: job \S+ waits for ever for a worker \(it has no queue timeout\): give --queue-timeout 5m to fail instead; crowdcompute workers lists what the connected workers serve$/m);
  const bounded = await cli(['submit', 'nobody.serves.either', '{}', '--no-wait', '--queue-timeout', '90s', '--foreman', foreman.url]);
  assert.match(bounded.stderr, /^warning: job \S+ waits at most 1\.5 min for a worker \(its queue timeout\), then fails with CC_ERR_NO_WORKER; crowdcompute workers lists/m);
  for (const r of [forever, bounded]) await client.cancel(r.stdout.match(/\(job (\S+)\)/)![1]);

  // graph run says the same of a graph whose nodes no worker serves.
  const graphFile = join(dir, 'unserved-graph.json');
  writeFileSync(graphFile, JSON.stringify({ nodes: [{ id: 'a', type: 'nobody.serves.graphs', input: {} }] }));
  const graph = await cli(['graph', 'run', graphFile, '--no-wait', '--foreman', foreman.url]);
  assert.equal(graph.code, 0, graph.stderr);
  assert.match(graph.stderr, /^warning: no connected worker handles task type "nobody\.serves\.graphs"/m);
  assert.match(graph.stderr, /^warning: job \S+ waits for ever for a worker \(it has no queue timeout\): give --queue-timeout 5m to fail instead/m);
  await client.cancel(graph.stdout.match(/^submitted graph (\S+):/m)![1]);
});

test('job <id> and job <id> --wait on a job nobody serves say why it waits (REST too); once a worker serves it, it finishes', async () => {
  const submitted = await cli(['submit', 'served.later', '{"n":1}', '--no-wait', '--json', '--foreman', foreman.url]);
  assert.equal(submitted.code, 0, submitted.stderr);
  const id = (JSON.parse(submitted.stdout) as { job_id: string }).job_id;
  const why = /^warning: no connected worker handles task type "served\.later" \(\d+ online, handling [^)]*math\.add[^)]*\); its tasks wait until one does$/m;
  const next = new RegExp(`^warning: job ${id} waits for ever for a worker \\(it has no queue timeout\\): start a worker that serves it, or crowdcompute cancel ${id}; crowdcompute workers lists what the connected workers serve$`, 'm');
  const shown = await cli(['job', id, '--foreman', foreman.url]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /queued/);
  assert.match(shown.stderr, why);
  assert.match(shown.stderr, next);
  const rest = await (await foreman.fetch(`/api/jobs/${id}`)).json() as { warnings: string[] };
  assert.equal(rest.warnings.length, 1, JSON.stringify(rest.warnings));
  assert.match(rest.warnings[0], /no connected worker handles task type "served\.later"/);

  // --wait says the same before its progress bar, then follows the job to its end once a worker serves the type.
  const child = spawn(process.execPath, [bin, 'job', id, '--wait', '--foreman', foreman.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await waitFor(() => next.test(stderr) || null, { timeoutMs: 60_000, message: 'job --wait warns' });
  assert.match(stderr, why);
  const late = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'served-later', logLevel: 'silent' })
    .handle('served.*', async (t) => t.input);
  try {
    await late.start();
    assert.equal(await exited, 0, stderr);
    const done = await (await foreman.fetch(`/api/jobs/${id}`)).json() as { status: string; warnings: string[] };
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.warnings, [], 'a finished job waits for nothing');
    assert.doesNotMatch((await cli(['job', id, '--foreman', foreman.url])).stderr, /warning/);
  } finally {
    await late.stop();
  }
});

test('Ctrl-C while submit waits: the job goes on, and the command says how to follow or stop it (exit 130)', async () => {
  const child = spawn(process.execPath, [bin, 'submit', 'nobody.serves.interrupted', '{}', '--foreman', foreman.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // The warnings come after the submission was accepted, so the job exists when SIGINT lands.
  await waitFor(() => /waits for ever for a worker/.test(stderr), { timeoutMs: 60_000, message: 'the submission is accepted and waiting' });
  child.kill('SIGINT');
  assert.equal(await exited, 130, stderr);
  const jobId = stderr.match(/^warning: job (\S+) waits/m)![1];
  assert.match(stderr, new RegExp(`^job ${jobId} goes on without this command: crowdcompute job ${jobId} --wait follows it, crowdcompute cancel ${jobId} stops it$`, 'm'));
  assert.equal((await client.getJob(jobId)).status, 'queued', 'the job is still there');
  await client.cancel(jobId);
});

test('submit of a task that fails: one line with its code, the task, its error once, and where to look next (exit 1)', async () => {
  const r = await cli(['submit', 'always.fails', '{}', '--max-attempts', '1', '--foreman', foreman.url]);
  assert.equal(r.code, 1, r.stderr);
  const line = r.stderr.trimEnd().split('\n').at(-1)!;
  const m = /^crowdcompute: CC_ERR_HANDLER_FAILED: task ((\S+)\.0) failed: (.*); crowdcompute job (\S+) --tasks shows its attempts, crowdcompute retry (\S+) runs it again$/.exec(line);
  assert.ok(m, line);
  assert.match(m[3], /this task fails on purpose/);
  assert.ok(!m[3].includes('CC_ERR_') && !m[3].includes(m[1]), `the code and the task are said once: ${line}`);
  assert.equal(m[4], m[2]);
  assert.equal(m[5], m[2]);
});

test('a task id where a job id is wanted: the error names the job and the --task form', async () => {
  const taskId = `${completedJob}.0`;
  await failsWith(['job', taskId, '--foreman', foreman.url], new RegExp(`${taskId} is a task id \\(task 0 of job ${completedJob}\\); this command takes a job id: crowdcompute job ${completedJob}$`));
  await failsWith(['cancel', taskId, '--foreman', foreman.url], new RegExp(`crowdcompute cancel ${completedJob}, or crowdcompute cancel ${taskId} --task for this task alone$`));
});

test('graph show: a table of nodes; --json as GET /api/jobs/{id}/graph has it, nodes in snake_case too', async () => {
  const graph = await client.submitGraph({ nodes: [{ id: 'sum', type: 'math.add', input: { a: 1, b: 2 } }] });
  assert.deepEqual(await graph.result(), { result: 3 });
  const human = await cli(['graph', 'show', graph.jobId, '--foreman', foreman.url]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^NODE\s+TYPE\s+STATE\s+ATTEMPT\s+WORKER\s+ARTIFACTS\s+DEPENDS ON$/m);
  assert.match(human.stdout, /^sum\s+math\.add\s+completed\s+1\s+cli-test-worker\s+0\s+-$/m);
  const json = await cli(['graph', 'show', graph.jobId, '--foreman', foreman.url, '--json']);
  const g = JSON.parse(json.stdout) as { job_id: string; nodes: Record<string, unknown>[] };
  assert.equal(g.job_id, graph.jobId);
  assert.equal(g.nodes[0].node_id, 'sum');
  assert.equal(g.nodes[0].worker_id, 'cli-test-worker');
  assert.ok(!('nodeId' in g.nodes[0]) && !('workerId' in g.nodes[0]) && 'depends_on' in g.nodes[0], json.stdout);
});

test('map: the progress bar is labelled with the end of the job id, which tells jobs apart', async () => {
  const module = join(dir, 'double.ts');
  writeFileSync(module, 'export default function double(x: number) { return x * 2; }\n');
  const inputs = join(dir, 'two.json');
  writeFileSync(inputs, '[1, 2]');
  const r = await cli(['map', module, inputs, '--foreman', foreman.url]);
  assert.equal(r.code, 0, r.stderr);
  const jobId = /^job (\S+) completed: 2 arguments/m.exec(r.stderr)?.[1];
  assert.ok(jobId, r.stderr);
  const labels = new Set(r.stderr.split('\n').filter((l) => /^job \S+ \d+%/.test(l)).map((l) => l.split(' ')[1]));
  assert.deepEqual([...labels], [jobId.slice(-8)]);
  assert.equal((await client.getJob(jobId)).name, 'double.ts over 2', 'named after the module\'s file, not the path as typed');
  // What the bar shows is enough to name the job.
  const shown = await cli(['job', jobId.slice(-8), '--foreman', foreman.url]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`^job ${jobId}$`, 'm'));
  await failsWith(['job', 'abcdef0123', '--foreman', foreman.url], /no job among the newest 1000 has an id ending in abcdef0123; give the whole id \(crowdcompute jobs lists them\)$/);
});

test('--name names a job of map, submit and graph run; a graph is named after its file by default; a name too long is refused as typed', async () => {
  const module = join(dir, 'triple.ts');
  writeFileSync(module, 'export default function triple(x: number) { return x * 3; }\n');
  const inputs = join(dir, 'three.json');
  writeFileSync(inputs, '[1, 2, 3]');
  const graphFile = join(dir, 'named-graph.json');
  writeFileSync(graphFile, JSON.stringify({ nodes: [{ id: 'a', type: 'math.add', input: { a: 1, b: 2 } }] }));
  const [mapped, submitted, graphed] = await Promise.all([
    cli(['map', module, inputs, '--name', 'tripled <inputs>', '--foreman', foreman.url]),
    cli(['submit', 'math.add', '{"a":1,"b":1}', '--name', 'one and one', '--no-wait', '--json', '--foreman', foreman.url]),
    cli(['graph', 'run', graphFile, '--no-wait', '--json', '--foreman', foreman.url]),
  ]);
  for (const r of [mapped, submitted, graphed]) assert.equal(r.code, 0, r.stderr);
  const mapJob = /^job (\S+) completed/m.exec(mapped.stderr)![1];
  assert.equal((await client.getJob(mapJob)).name, 'tripled <inputs>');
  assert.equal((await client.getJob((JSON.parse(submitted.stdout) as { job_id: string }).job_id)).name, 'one and one');
  assert.equal((await client.getJob((JSON.parse(graphed.stdout) as { job_id: string }).job_id)).name, 'named-graph.json');
  const long = await cli(['submit', 'math.add', '{}', '--name', 'n'.repeat(201), '--foreman', foreman.url]);
  assert.equal(long.code, 2, long.stderr);
  assert.match(long.stderr.trim(), /^crowdcompute: option '--name <name>' argument '.*' is invalid\. --name is 201 characters long; at most 200; see crowdcompute submit --help$/);
});

test('a looping map function stops at the worker\'s --sandbox-timeout, not its job\'s longer default timeout, and the error names the limit', async () => {
  const own = await startTestForeman();
  const worker = spawn(process.execPath, [bin, 'worker', '--foreman', own.wsUrl, '--id', 'short-sandbox', '--allow-code', '--no-status',
    '--sandbox-timeout', '2s', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  worker.stderr!.on('data', (d) => { err += d; });
  try {
    await waitFor(() => / connected to /.test(err) || null, { timeoutMs: 30_000, message: 'the worker starts' });
    const module = join(dir, 'loop.ts');
    writeFileSync(module, 'export default function loop(x: number) { for (;;) { x++; } }\n');
    const inputs = join(dir, 'loop.json');
    writeFileSync(inputs, '[1]');
    // The job carries the foreman's default timeout (5 minutes): the worker's 2 s is the limit.
    const capped = await cli(['map', module, inputs, '--foreman', own.url, '--max-attempts', '1']);
    assert.equal(capped.code, 1, capped.stderr);
    assert.match(capped.stderr, /ran longer than 2 s, this worker's sandbox timeout \(--sandbox-timeout\), and was stopped/);
    // The job's own view says which timeout applies to its tasks.
    const jobId = capped.stderr.match(/^job (\S+) failed:/m)?.[1] ?? capped.stderr.match(/job (\S{36}) /)![1];
    assert.match((await cli(['job', jobId, '--foreman', own.url])).stdout, /^\s+timeout\s+5 minutes per task, or the worker's --sandbox-timeout if shorter$/m);
    // A job that allows less stops at its own timeout.
    const own1s = await cli(['map', module, inputs, '--foreman', own.url, '--max-attempts', '1', '--timeout', '1s']);
    assert.equal(own1s.code, 1, own1s.stderr);
    assert.match(own1s.stderr, /ran longer than 1 s, its task's timeout, and was stopped/);
  } finally {
    worker.kill();
    if (worker.exitCode === null) await new Promise((r) => worker.once('exit', r));
    await own.cleanup();
  }
});

test('logs: human-readable lines on a terminal, JSON lines elsewhere or with --log-format json', async () => {
  // A worker that gives up at once on a port where nothing listens logs one error and exits.
  const args = ['worker', '--foreman', `ws://127.0.0.1:${await freePort()}/ws`, '--allow-code', '--no-status', '--max-reconnect-attempts', '0'];
  const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
  /** Run under a pseudo-terminal (util-linux's script), as a person's terminal runs it; both streams arrive on its stdout. */
  const onTerminal = async (extra: string[]) => {
    const line = [process.execPath, bin, ...args, ...extra].map(quote).join(' ');
    const r = await run('script', ['-qec', line, '/dev/null'], { timeout: 60_000 }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    return r.stdout.replaceAll('\r', '');
  };
  const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '');
  const tty = plain(await onTerminal([]));
  assert.match(tty, /^\[\d\d:\d\d:\d\d\.\d{3}\] ERROR: CC_ERR_CONNECTION: gave up after 0 reconnection attempts .* \{"workerId":/m, tty);
  assert.ok(!/^\{"level"/m.test(tty), `no JSON on a terminal: ${tty}`);
  assert.match(await onTerminal(['--log-format', 'json']), /^\{"level":50,.*"msg":"CC_ERR_CONNECTION: gave up/m);
  const piped = await cli(args);
  assert.equal(piped.code, 1);
  assert.match(piped.stderr, /^\{"level":50,.*"msg":"CC_ERR_CONNECTION: gave up/m, 'JSON when stderr is not a terminal');
  assert.match((await cli([...args, '--log-format', 'pretty'])).stderr, /^\[[\d:.]+\] ERROR: CC_ERR_CONNECTION: gave up/m);
  await refusedAsTyped([...args, '--log-format', 'xml'], /option '--log-format <format>' argument 'xml' is invalid\. Allowed choices are auto, pretty, json; see crowdcompute worker --help$/);
});

test('foreman: with stderr piped, every line is JSON, its address, dashboard and stop lines too', async () => {
  const port = await freePort();
  const own = mkdtempSync(join(tmpdir(), 'cc-cli-foreman-json-'));
  const child = spawn(process.execPath, [bin, 'foreman', '--port', String(port), '--database', `sqlite:${join(own, 'f.db')}`], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CROWDCOMPUTE_CONFIG_DIR: own },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    await waitFor(() => /dashboard: /.test(stderr), { timeoutMs: 30_000, message: 'the foreman says where its dashboard is' });
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    const lines = stderr.trimEnd().split('\n');
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `a JSON line: ${line}`);
    const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.ok(msgs.some((m) => new RegExp(`^foreman \\S+ on http://127\\.0\\.0\\.1:${port} `).test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => m.startsWith('SIGTERM: stopping foreman')), msgs.join('\n'));
  } finally {
    if (child.exitCode === null) { child.kill('SIGKILL'); await exited; }
    rmSync(own, { recursive: true, force: true });
  }
});

test('a URL that answers but is not a foreman says so, with the request and the answer', async () => {
  const server: Server = createServer((_req, res) => { res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>Not Found</body></html>'); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const esc = url.replaceAll('.', '\\.');
    await failsWith(['stats', '--foreman', url], new RegExp(`${esc} answered but is not a CrowdCompute foreman \\(GET /api/stats: 404 Not Found`));
    await failsWith(['jobs', '--foreman', url], new RegExp(`${esc} answered but is not a CrowdCompute foreman \\(GET /api/jobs\\S*: 404 Not Found`));
    // Submissions travel over the WebSocket; when it does not open, the REST API is asked why.
    await failsWith(['submit', 'math.add', '{}', '--foreman', url, '--connect-timeout', '1s'], new RegExp(`${esc} answered but is not a CrowdCompute foreman`));
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a map module that throws while loading: its file and the error', async () => {
  const module = join(dir, 'broken.ts');
  writeFileSync(module, 'throw new Error("broken on purpose");\nexport default function f(x: number) { return x; }\n');
  const inputs = join(dir, 'one.json');
  writeFileSync(inputs, '[1]');
  await failsWith(['map', module, inputs, '--foreman', foreman.url], /map module \S*broken\.ts failed to load: broken on purpose$/);
});

test('a map module that does not exist: its path', async () => {
  const inputs = join(dir, 'one.json');
  writeFileSync(inputs, '[1]');
  await failsWith(['map', join(dir, 'missing.ts'), inputs, '--foreman', foreman.url], /map module \S*missing\.ts does not exist/);
});

test('--database with a scheme CrowdCompute has no driver for is refused, with the accepted forms, by every command that opens it', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'cc-cli-db-'));
  try {
    const url = 'mysql://admin:hunter2-secret@db.internal/cc';
    const accepted = /mysql:\/\/, which CrowdCompute cannot open; it takes sqlite:<file>, sqlite::memory:, a file path, or postgres:\/\//;
    for (const args of [['key', 'list'], ['token', 'list'], ['prune'], ['foreman', '--port', '0', '--host', '127.0.0.1']]) {
      const line = await failsWith([...args, '--database', url], accepted, { cwd });
      assert.ok(!line.includes('hunter2'), `the password is not repeated: ${line}`);
    }
    const line = await failsWith(['key', 'list'], accepted, { cwd, env: { CROWDCOMPUTE_DATABASE: url } });
    assert.ok(!line.includes('hunter2'));
    assert.deepEqual(readdirSync(cwd), [], 'no SQLite file named after the URL was made');
    assert.ok(!existsSync(join(cwd, 'mysql:')));
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('every numeric flag has an upper bound, and a value past it is refused naming the flag and the limit', async () => {
  const inputs = join(dir, 'bounds.json');
  writeFileSync(inputs, '[1]');
  // Were a bound missing, these would start a throwaway foreman or worker, not touch anything.
  const foreman = ['foreman', '--host', '127.0.0.1', '--database', 'sqlite::memory:'];
  const worker = ['worker', '--foreman', 'ws://127.0.0.1:9/ws', '--no-status'];
  const cases: [string[], RegExp][] = [
    [[...foreman, '--port', '0', '--lease-ttl', '30d'], /--lease-ttl must be at most 86400000 ms \(24 h\)/],
    [[...foreman, '--port', '0', '--max-payload', '2GiB'], /--max-payload must be at most 536870912 bytes \(512 MiB\)/],
    [[...foreman, '--port', '0', '--max-connections-per-address', '2000000'], /--max-connections-per-address must be at most 1000000/],
    [[...foreman, '--port', '0', '--request-timeout', '2d'], /--request-timeout must be at most 86400000 ms \(24 h\)/],
    [[...foreman, '--port', '70000'], /--port must be at most 65535/],
    [[...foreman, '--port', '0', '--open-timeout', '2y'], /--open-timeout must be at most 31536000000 ms \(365 d\)/],
    [[...worker, '--concurrency', '20000'], /--concurrency must be at most 10000/],
    [[...worker, '--drain-timeout', '30d'], /--drain-timeout must be at most 86400000 ms \(24 h\)/],
    [[...worker, '--sandbox-memory', '1000000'], /--sandbox-memory must be at most 65536 MiB/],
    [['map', handlersModule, inputs, '--chunk-size', '2000000'], /--chunk-size must be at most 1000000/],
    [['submit', 'math.add', '{}', '--timeout', '30d'], /--timeout must be at most 2073600000 ms \(24 d\)/],
    [['key', 'create', '--scopes', 'read', '--max-concurrency', '2000000'], /--max-concurrency must be at most 1000000/],
    [['join-link', 'create', '--expires', '2y'], /--expires must be at most 31536000000 ms \(365 d\)/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args, { cwd: dir });
    assert.notEqual(r.code, 0, `crowdcompute ${args.join(' ')} is refused`);
    assert.match(r.stderr, message, `crowdcompute ${args.join(' ')}`);
  }
});

// ---------------------------------------------------------------- help

test('--help names the environment variables but never shows their values', async () => {
  const secret = 's3cret-Pa55word';
  const env = {
    CROWDCOMPUTE_DATABASE: `postgres://cc:${secret}@db.internal:5432/cc`,
    CROWDCOMPUTE_URL: `https://user:${secret}@foreman.internal`,
    CROWDCOMPUTE_FOREMAN: `wss://user:${secret}@foreman.internal/ws`,
  };
  for (const [cmd, variable] of [[['foreman'], 'CROWDCOMPUTE_DATABASE'], [['jobs'], 'CROWDCOMPUTE_URL'], [['map'], 'CROWDCOMPUTE_URL'],
    [['key', 'create'], 'CROWDCOMPUTE_DATABASE'], [['token', 'list'], 'CROWDCOMPUTE_DATABASE'], [['prune'], 'CROWDCOMPUTE_DATABASE'], [['demo'], 'CROWDCOMPUTE_DATABASE'],
    [['worker'], 'CROWDCOMPUTE_FOREMAN'], [['retry'], 'CROWDCOMPUTE_URL']] as const) {
    const r = await cli([...cmd, '--help'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(secret), `crowdcompute ${cmd.join(' ')} --help shows a value from the environment:\n${r.stdout}`);
    assert.match(r.stdout, new RegExp(variable), `crowdcompute ${cmd.join(' ')} --help names ${variable}`);
  }
});

test('jobs and stats still work when the foreman is given by CROWDCOMPUTE_URL', async () => {
  const r = await cli(['jobs', '--limit', '1'], { env: { CROWDCOMPUTE_URL: foreman.url } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ID\s+NAME/);
  assert.match((await cli(['stats'], { env: { CROWDCOMPUTE_URL: foreman.url } })).stdout, /^retention\s+/m);
});

test('foreman --rate-limit keeps its limits in the database; a rate that does not parse is refused by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-rate-'));
  const port = await freePort();
  const foreman = await spawnForemanProcess(port, ['--database', `sqlite:${join(dir, 'cc.db')}`, '--insecure', '--rate-limit', 'image.*=100/s', '--rate-limit', 'mail.send=6000/10m']);
  try {
    const limits = await (await fetch(`${foreman.url}/api/rate-limits`)).json() as { rate_limits: { pattern: string; limit: string }[] };
    assert.deepEqual(limits.rate_limits.map((l) => `${l.pattern}=${l.limit}`), ['image.*=100/s', 'mail.send=6000/10m']);
  } finally {
    foreman.kill();
    await foreman.exited;
    rmSync(dir, { recursive: true, force: true });
  }
  const refused = await new Promise<{ code: number | null; out: string }>((resolve) => {
    execFile(process.execPath, [bin, 'foreman', '--port', '0', '--rate-limit', 'image.*=fast'], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, out: stdout + stderr }));
  });
  assert.notEqual(refused.code, 0);
  assert.match(refused.out, /rate "fast" is not <count>\/<window>/);
});

test('submit --deadline: a task nobody runs fails with CC_ERR_DEADLINE once the time passes; a time that does not parse is refused by name', async () => {
  // A deadline given as a duration counts from when the flag is read: 5 s leaves a busy machine room to load the SDK and submit before it passes.
  const r = await cli(['submit', 'nobody.runs.this', '{}', '--deadline', '5s', '--foreman', foreman.url]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /CC_ERR_DEADLINE|passed its deadline/);
  const [job] = await client.listJobs({ limit: 1 });
  assert.equal(job.status, 'failed');
  assert.ok(job.deadline !== null && Date.parse(job.deadline) > Date.parse(job.createdAt), 'the deadline is a time after submission');
  const bad = await cli(['submit', 'math.add', '{}', '--deadline', 'tomorrow-ish', '--foreman', foreman.url]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--deadline <time>' argument 'tomorrow-ish' is invalid\. "tomorrow-ish" is not a time: give an RFC 3339 time/);
});
