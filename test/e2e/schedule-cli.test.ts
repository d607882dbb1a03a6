/**
 * `crowdcompute schedule …` and `--at` / `--delay`, run as a user runs them (child processes)
 * against a foreman with a worker: create (from the words `submit` and `map` take, and from a
 * job file), list, show, pause, resume, trigger (its job completes on the worker), backfill
 * (each tick once), delete; errors in one line; a delayed submission waits as `scheduled`.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
const HOUR = 3_600_000;

interface Ran { code: number; stdout: string; stderr: string }

/** Run the CLI against the test foreman; a failure is returned (with its exit code), not thrown. */
async function cli(...args: string[]): Promise<Ran> {
  try {
    const r = await run(process.execPath, [bin, ...args, '--foreman', foreman.url], { timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The command succeeds; its stdout. */
async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `crowdcompute ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The command fails with exit code 1 and one line on stderr, `crowdcompute: <message>`, matching. */
async function failsWith(args: string[], message: RegExp): Promise<void> {
  const r = await cli(...args);
  assert.equal(r.code, 1, `exit code of crowdcompute ${args.join(' ')}; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.match(lines[0], /^crowdcompute: /);
  assert.match(lines[0], message);
}

let foreman: TestForeman;
let worker: Worker;
let client: Client;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cc-schedule-cli-'));
  foreman = await startTestForeman();
  worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'schedule-cli-worker', maxConcurrentTasks: 4, allowCode: true, logLevel: 'silent' })
    .handle('math.add', async (t) => { const { a, b } = t.input as { a: number; b: number }; return { result: a + b }; });
  await worker.start();
  client = new Client({ url: foreman.url });
});

after(async () => {
  await client?.close();
  await worker?.stop();
  await foreman?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('schedule create from submit\'s words, list, show, pause, resume, trigger, backfill, delete', async () => {
  const created = await cli('schedule', 'create', 'adder', '--every', '1h', '--name', 'hourly adder', '--max-attempts', '2', 'submit', 'math.add', '{"a":40,"b":2}');
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stderr, /^schedule adder created: every 1h, next run in \d+/);
  assert.match(created.stdout, /^schedule adder$/m);
  assert.match(created.stdout, /^\s+when\s+every 1h$/m);
  assert.match(created.stdout, /^\s+job\s+1 named task \(math\.add\)$/m);
  assert.match(created.stdout, /^next 5 ticks:$/m);
  const spec = await client.getSchedule('adder');
  assert.deepEqual(spec.job, { kind: 'tasks', tasks: [{ type: 'math.add', input: { a: 40, b: 2 } }], maxAttempts: 2 }, 'the job submit would have sent');

  const list = await ok('schedule', 'list');
  assert.match(list, /^ID\s+NAME\s+WHEN\s+NEXT RUN\s+LAST RUN\s+PAUSED$/m);
  assert.match(list, /^adder\s+hourly adder\s+every 1h\s+in \d+ \w+\s+-\s+no$/m);

  // Run now: its job completes on the worker, and show lists the run with its job and state.
  const trigger = await cli('schedule', 'trigger', 'adder', '--wait');
  assert.equal(trigger.code, 0, trigger.stderr);
  const jobId = trigger.stdout.trim();
  assert.match(jobId, /^[0-9a-f-]{36}$/);
  assert.match(trigger.stderr, new RegExp(`job ${jobId} completed`));
  const outcome = await client.getJobOutcome(jobId);
  assert.deepEqual(outcome.results, [{ result: 42 }]);
  const shown = await ok('schedule', 'show', 'adder');
  assert.match(shown, /^recent runs:$/m);
  assert.match(shown, new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\S+ UTC \\(.*\\)\\s+trigger\\s+fired\\s+${jobId}\\s+completed$`, 'm'));
  assert.match(await ok('schedule', 'list'), /^adder\s+.*\s+(just now|\d+ \w+ ago), job completed\s+no$/m);

  assert.match(await ok('schedule', 'pause', 'adder', '--note', 'quiet hours'), /^schedule adder paused \(quiet hours\)$/m);
  assert.match(await ok('schedule', 'show', 'adder'), /^\s+state\s+paused: quiet hours$/m);
  assert.match(await ok('schedule', 'list'), /^adder\s+.*\s+yes$/m);
  const paused = JSON.parse(await ok('schedule', 'show', 'adder', '--json')) as Record<string, unknown>;
  assert.equal(paused.paused, true);
  assert.equal(paused.next_fire_at, null);
  assert.match(await ok('schedule', 'resume', 'adder'), /^schedule adder resumed: next run \d{4}-/m);
  assert.equal((await client.getSchedule('adder')).paused, false);

  // Backfill three past hours: three jobs, each run; the same range again fires nothing.
  const hour = Math.floor(Date.now() / HOUR) * HOUR;
  const from = new Date(hour - 6 * HOUR).toISOString();
  const to = String(hour - 3 * HOUR);
  const filled = await cli('schedule', 'backfill', 'adder', '--from', from, '--to', to);
  assert.equal(filled.code, 0, filled.stderr);
  assert.match(filled.stderr, /^schedule adder: 3 ticks fired$/m);
  const ids = filled.stdout.trim().split('\n');
  assert.equal(ids.length, 3);
  for (const id of ids) assert.equal((await (await client.watch(id)).outcome()).state, 'completed');
  const again = JSON.parse(await ok('schedule', 'backfill', 'adder', '--from', from, '--to', to, '--json')) as { fired: number; skipped: number; job_ids: string[] };
  assert.equal(again.fired, 0);
  assert.equal(again.skipped, 3);
  assert.deepEqual([...again.job_ids].sort(), [...ids].sort());

  assert.match(await ok('schedule', 'delete', 'adder'), /^schedule adder deleted \(the jobs it fired are kept\)$/m);
  assert.doesNotMatch(await ok('schedule', 'list'), /^adder\s/m);
  await failsWith(['schedule', 'show', 'adder'], /adder/);
  assert.equal((await client.getJob(jobId)).status, 'completed', 'the jobs it fired are kept');
});

test('schedule create from a job file and from map\'s words; --json as the REST API has it', async () => {
  const file = join(dir, 'job.json');
  writeFileSync(file, JSON.stringify({ kind: 'tasks', tasks: [{ type: 'math.add', input: { a: 1, b: 1 } }], timeout_ms: 60_000 }));
  const nightly = JSON.parse(await ok('schedule', 'create', 'nightly', '--cron', '30 2 * * *', '--timezone', 'Europe/Paris', '--job', file,
    '--overlap', 'buffer_one', '--catch-up', 'all', '--catch-up-window', '2h', '--jitter', '30s', '--paused', '--json')) as Record<string, unknown>;
  assert.equal(nightly.cron, '30 2 * * *');
  assert.equal(nightly.timezone, 'Europe/Paris');
  assert.equal(nightly.overlap, 'buffer_one');
  assert.deepEqual(nightly.catch_up, { window_ms: 2 * HOUR, policy: 'all' });
  assert.equal(nightly.jitter_ms, 30_000);
  assert.equal(nightly.paused, true);
  assert.equal((nightly.job as { timeout_ms?: number }).timeout_ms, 60_000, 'the file\'s snake_case keys are kept');
  assert.equal((nightly.next_fires as string[]).length, 5);
  assert.match(await ok('schedule', 'list'), /^nightly\s+-\s+cron 30 2 \* \* \* \(Europe\/Paris\)\s+-\s+-\s+yes$/m);

  // A camelCase file (as graph run and the SDK write them) says the same.
  const camel = join(dir, 'camel.json');
  writeFileSync(camel, JSON.stringify({ kind: 'tasks', tasks: [{ type: 'math.add', input: { a: 1, b: 1 } }], timeoutMs: 60_000 }));
  const fromCamel = JSON.parse(await ok('schedule', 'create', 'nightly-camel', '--cron', '@daily', '--job', camel, '--paused', '--json')) as { job: { timeout_ms?: number } };
  assert.equal(fromCamel.job.timeout_ms, 60_000);

  const module = join(dir, 'square.mjs');
  writeFileSync(module, 'export default function square(x) { return x * x; }\n');
  const inputs = join(dir, 'inputs.json');
  writeFileSync(inputs, '[1, 2, 3]');
  const squares = JSON.parse(await ok('schedule', 'create', 'squares', '--every', '10m', '--chunk-size', '2', 'map', module, inputs, '--json')) as { job: Record<string, unknown> };
  assert.equal(squares.job.kind, 'map');
  assert.deepEqual(squares.job.args, [1, 2, 3]);
  assert.equal(squares.job.chunk_size, 2);
  assert.equal(squares.job.function_name, 'square');
  const fired = (await ok('schedule', 'trigger', 'squares')).trim();
  assert.deepEqual(await (await client.watch(fired)).result(), [1, 4, 9]);
  for (const id of ['nightly', 'nightly-camel', 'squares']) await ok('schedule', 'delete', id);
});

test('schedule create: what is missing or wrong is said in one line', async () => {
  await failsWith(['schedule', 'create', 'x', 'submit', 'math.add', '{}'], /needs --cron <expression> or --every <duration>/);
  await failsWith(['schedule', 'create', 'x', '--every', '1h'], /a schedule needs a job: --job <file>, or after its id "submit <type> \[input\]"/);
  await failsWith(['schedule', 'create', 'x', '--every', '1h', 'run', 'math.add'], /"run math\.add" is not a job/);
  await failsWith(['schedule', 'create', 'x', '--every', '1h', '--job', join(dir, 'missing.json')], /job file \S+missing\.json does not exist/);
  await failsWith(['schedule', 'create', 'x', '--cron', 'every tuesday', 'submit', 'math.add', '{}'], /cron/);
  await failsWith(['schedule', 'create', 'x', '--cron', '0 * * * *', '--timezone', 'Mars/Olympus', 'submit', 'math.add', '{}'], /time ?zone/i);
  await ok('schedule', 'create', 'taken', '--every', '1h', '--paused', 'submit', 'math.add', '{}');
  await failsWith(['schedule', 'create', 'taken', '--every', '1h', 'submit', 'math.add', '{}'], /taken/);
  await ok('schedule', 'delete', 'taken');
  const bad = await cli('schedule', 'create', 'x', '--every', '10ms', 'submit', 'math.add', '{}');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--every must be at least 1000 ms/);
  await failsWith(['schedule', 'trigger', 'no-such-schedule'], /no-such-schedule/);
});

test('submit --delay and --at: the job waits as scheduled, then runs; a bad value is refused by the flag\'s name', async () => {
  const later = JSON.parse(await ok('submit', 'math.add', '{"a":1,"b":2}', '--at', new Date(Date.now() + HOUR).toISOString(), '--no-wait', '--json')) as { job_id: string };
  assert.match(await ok('job', later.job_id), /^\s+state\s+scheduled$/m);
  assert.match(await ok('jobs', '--status', 'scheduled'), new RegExp(`^${later.job_id}\\s`, 'm'));
  await ok('cancel', later.job_id);

  const started = Date.now();
  const soon = await cli('submit', 'math.add', '{"a":2,"b":3}', '--delay', '1500ms');
  assert.equal(soon.code, 0, soon.stderr);
  assert.deepEqual(JSON.parse(soon.stdout), { result: 5 });
  assert.ok(Date.now() - started >= 1500, 'it waited its delay');

  const mapped = join(dir, 'double.mjs');
  writeFileSync(mapped, 'export default (x) => 2 * x;\n');
  const args = join(dir, 'args.json');
  writeFileSync(args, '[5]');
  const map = await cli('map', mapped, args, '--delay', '1s');
  assert.equal(map.code, 0, map.stderr);
  assert.equal(map.stdout.trim(), '[10]');

  for (const [flags, message] of [
    [['--at', 'tomorrow'], /--at "tomorrow" is not a time: give an RFC 3339 time with its offset/],
    [['--at', '2026-12-06T20:00:00'], /--at "2026-12-06T20:00:00" is not a time/],
    [['--delay', 'soon'], /--delay "soon" is not a duration/],
    [['--delay', '2y'], /--delay must be at most 31536000000 ms \(365 d\)/],
    [['--delay', '1m', '--at', '5'], /--at <time>' cannot be used with option '--delay/],
  ] as const) {
    const r = await cli('submit', 'math.add', '{}', ...flags);
    assert.notEqual(r.code, 0, flags.join(' '));
    assert.match(r.stderr.split('\n')[0]!, message);
  }
  await waitFor(async () => (await client.listJobs({ status: 'scheduled' })).length === 0 || null, { message: 'no job left scheduled' });
});
