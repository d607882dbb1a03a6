import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestForeman, spawnWorkerProcess, waitFor } from '../../src/testing/index.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin/crowdcompute.js');
const node = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ['--no-node-snapshot', ...args], { cwd: root, env: { ...process.env, ...env }, timeout: 60_000 });

test("the README's SDK example is examples/sdk-example.ts, and it runs and prints what the README says", async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = /## From TypeScript[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.equal(block, readFileSync(join(root, 'examples/sdk-example.ts'), 'utf8'), 'the README prints examples/sdk-example.ts exactly');
  // In a checkout the package's own name resolves to its sources (test/e2e/package.test.ts runs the built package).
  const { stdout } = await node(['--conditions=crowdcompute-source', 'examples/sdk-example.ts']);
  assert.match(stdout, /squares \[1,4,9,16,25\]/);
  assert.match(stdout, /math\.add \{"result":3\}/);
});

test('the CLI: worker with --handlers, map with a module and an inputs file, submit, jobs, job, cancel', async () => {
  const foreman = await startTestForeman();
  const dir = mkdtempSync(join(tmpdir(), 'cc-cli-'));
  const worker = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'cli-worker', '--allow-code', '--handlers', join(root, 'examples/handlers.ts')]);
  try {
    await waitFor(async () => (await (await foreman.fetch('/api/stats')).json()).connected_workers === 1, { message: 'CLI worker connects' });
    writeFileSync(join(dir, 'cube.ts'), 'export default function cube(x: number) { return x * x * x; }\n');
    writeFileSync(join(dir, 'inputs.json'), JSON.stringify([1, 2, 3]));
    const out = join(dir, 'out.json');
    const map = await node([bin, 'map', join(dir, 'cube.ts'), join(dir, 'inputs.json'), '--foreman', foreman.url, '--out', out]);
    assert.match(map.stderr, /completed: 3 arguments/);
    assert.equal(readFileSync(out, 'utf8').trim(), '[1,8,27]');
    const submit = await node([bin, 'submit', 'math.multiply', '{"a": 6, "b": 7}', '--foreman', foreman.url, '--priority', 'critical']);
    assert.deepEqual(JSON.parse(submit.stdout), { result: 42 });
    const jobs = await node([bin, 'jobs', '--foreman', foreman.url, '--json']);
    const list = JSON.parse(jobs.stdout);
    assert.equal(list.length, 2);
    const one = await node([bin, 'job', list[0].id, '--foreman', foreman.url, '--results', '--json']);
    assert.deepEqual(JSON.parse(one.stdout).outcome.results, [{ result: 42 }]);
    const queued = await node([bin, 'submit', 'nobody.handles', '{}', '--foreman', foreman.url, '--no-wait', '--json']);
    const jobId = JSON.parse(queued.stdout).job_id;
    const cancelled = await node([bin, 'cancel', jobId, '--foreman', foreman.url, '--json']);
    assert.equal(JSON.parse(cancelled.stdout).status, 'cancelled');
    await assert.rejects(node([bin, 'submit', 'x', 'not json', '--foreman', foreman.url]), /input is not valid JSON/);
  } finally {
    worker.kill();
    await worker.exited;
    await foreman.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('demo: foreman, two worker processes, the example map job and its result', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-demo-'));
  try {
    const { stdout, stderr } = await node([bin, 'demo', '--port', '0', '--database', `sqlite:${join(dir, 'demo.db')}`, '--ranges', '40', '--exit']);
    assert.match(stderr, /result: 148933 primes below 2,000,000/);
    assert.match(stdout, /math\.add \{a: 40, b: 2\} -> \{"result":42\}/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--help on each command says what it does', async () => {
  for (const cmd of ['demo', 'foreman', 'worker', 'map', 'submit', 'jobs', 'job', 'cancel']) {
    const { stdout } = await node([bin, cmd, '--help']);
    assert.match(stdout, new RegExp(`Usage: crowdcompute ${cmd}`));
  }
});
