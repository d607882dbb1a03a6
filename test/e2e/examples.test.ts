import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestForeman, spawnWorkerProcess, waitFor } from '../../src/testing/index.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin/crowdcompute.js');
const node = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, timeout: 60_000 });

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

/** The shell blocks of a Markdown file. */
function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test('every file the README\'s commands name exists (under examples/ for the examples)', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const named = new Set<string>();
  for (const block of shellBlocks(readme)) {
    for (const line of block.split('\n')) {
      const command = line.replace(/\s#.*$/, '');
      // What a command writes (--out) is not an input.
      for (const m of command.matchAll(/(?<!--out )(?<![\w/.-])((?:\.\/)?[\w./-]+\.(?:ts|json|py|js|mjs))\b/g)) named.add(m[1]!);
    }
  }
  assert.ok(named.has('examples/square.ts') && named.has('examples/inputs.json'), `the README's map example names its files: ${[...named].join(', ')}`);
  for (const file of named) {
    assert.ok(existsSync(join(root, file)), `the README names ${file}, which is not in the checkout`);
    if (!file.startsWith('scripts/') && !file.startsWith('python/') && !file.startsWith('bin/')) assert.match(file, /^examples\//, `the README's example file ${file} is under examples/`);
  }
});

test('the README\'s commands that use examples/ run as written, against a foreman', { timeout: 170_000 }, async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const lines = shellBlocks(readme).flatMap((b) => b.split('\n'))
    .map((l) => l.replace(/\s#.*$/, '').trim())
    // A worker serves until stopped (the test above starts one with examples/handlers.ts); graphs run in graphs.test.ts.
    .filter((l) => l.startsWith('crowdcompute ') && l.includes('examples/') && !l.startsWith('crowdcompute worker') && !l.startsWith('crowdcompute graph'));
  assert.ok(lines.some((l) => l.startsWith('crowdcompute map ')) && lines.some((l) => l.startsWith('crowdcompute schedule create')), lines.join('\n'));
  const foreman = await startTestForeman();
  const worker = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'readme-worker', '--allow-code', '--handlers', join(root, 'examples/handlers.ts')]);
  try {
    await waitFor(async () => (await (await foreman.fetch('/api/stats')).json()).connected_workers === 1, { message: 'the worker connects' });
    const env = { ...process.env, CROWDCOMPUTE_URL: foreman.url, ...(foreman.credentials ? { CROWDCOMPUTE_API_KEY: foreman.credentials.apiKey } : {}) };
    for (const line of lines) {
      // Optional parts ([--out results.json]) left out: the command as a newcomer first types it.
      const command = line.replace(/\s\[[^\]]*\]/g, '').replace(/^crowdcompute /, `"${process.execPath}" --no-node-snapshot bin/crowdcompute.js `);
      const { stdout, stderr } = await run('bash', ['-c', command], { cwd: root, env, timeout: 120_000 });
      if (line.startsWith('crowdcompute map ')) assert.equal(stdout.trim(), JSON.stringify(JSON.parse(readFileSync(join(root, 'examples/inputs.json'), 'utf8')).map((x: number) => x * x)), `${line}: ${stderr}`);
    }
    const schedules = await (await foreman.fetch('/api/schedules')).json();
    const ids = (Array.isArray(schedules) ? schedules : schedules.schedules).map((s: { id: string }) => s.id).sort();
    assert.deepEqual(ids, ['nightly', 'squares']);
  } finally {
    worker.kill();
    await worker.exited;
    await foreman.cleanup();
  }
});

test('docs/operations.md: the local credentials file and scraping /metrics with a read key, as written', { timeout: 120_000 }, async () => {
  const ops = readFileSync(join(root, 'docs/operations.md'), 'utf8');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const [name, text] of [['README.md', readme], ['docs/operations.md', ops]] as const) assert.match(text, /CROWDCOMPUTE_CONFIG_DIR/, `${name} names CROWDCOMPUTE_CONFIG_DIR`);
  const blocks = shellBlocks(ops);
  const printKey = blocks.find((b) => b.includes('credentials.json'))?.trim();
  const createKey = blocks.find((b) => b.includes('--name prometheus') && b.includes('--out'))?.trim();
  assert.ok(printKey && createKey, 'the credentials file and Prometheus are shown in docs/operations.md');
  const yaml = [...ops.replace(/^ {2}/gm, '').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('scrape_configs')) ?? '';
  assert.match(yaml, /metrics_path: \/metrics/);
  assert.match(yaml, /authorization:\n\s+type: Bearer\n\s+credentials_file: (\S+)/);
  const keyFile = /credentials_file: (\S+)/.exec(yaml)![1]!;
  assert.ok(createKey.includes(`--out ${keyFile}`), 'the key is written where the scrape configuration reads it');

  const dir = mkdtempSync(join(tmpdir(), 'cc-ops-'));
  const configDir = join(dir, 'config');
  const before = process.env.CROWDCOMPUTE_CONFIG_DIR;
  process.env.CROWDCOMPUTE_CONFIG_DIR = configDir;
  const foreman = await startTestForeman({ database: `sqlite:${join(dir, 'cc.db')}` });
  try {
    const env = { ...process.env, CROWDCOMPUTE_CONFIG_DIR: configDir };
    const printed = await run('bash', ['-c', printKey], { env, timeout: 30_000 });
    assert.equal(printed.stdout.trim(), foreman.credentials!.apiKey, 'the command prints the admin key');
    const out = join(dir, 'prometheus.key');
    const command = createKey.replace(/^crowdcompute /, `"${process.execPath}" --no-node-snapshot bin/crowdcompute.js `).replace(keyFile, out) + ` --database sqlite:${join(dir, 'cc.db')}`;
    await run('bash', ['-c', command], { cwd: root, env, timeout: 60_000 });
    const key = readFileSync(out, 'utf8').trim();
    const scrape = await fetch(`${foreman.url}/metrics`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(scrape.status, 200);
    assert.match(await scrape.text(), /crowdcompute_connected_workers/);
    assert.equal((await fetch(`${foreman.url}/metrics`)).status, 401, 'without a key');
  } finally {
    await foreman.cleanup();
    if (before === undefined) delete process.env.CROWDCOMPUTE_CONFIG_DIR; else process.env.CROWDCOMPUTE_CONFIG_DIR = before;
    rmSync(dir, { recursive: true, force: true });
  }
});
