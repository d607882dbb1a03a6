/**
 * Python map functions run on Node workers started with --allow-code, in Pyodide: results in
 * argument order, per-argument failures with the Python exception's type, message and
 * traceback, a function that takes names from outside itself refused at submission; and the
 * guarantees JavaScript map jobs have: a worker SIGKILLed mid-job and the foreman SIGKILLed
 * mid-job, and the results are exact, each recorded once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, JobFailedError } from '../../src/client/index.ts';
import { Worker } from '../../src/worker/index.ts';
import { freePort, spawnForemanProcess, spawnWorkerProcess, startTestForeman, waitFor } from '../../src/testing/index.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));

const COLLATZ = { name: 'collatz_steps', python: `def collatz_steps(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps
` };
const collatz = (n: number) => { let steps = 0; while (n !== 1) { n = n % 2 === 0 ? n / 2 : 3 * n + 1; steps++; } return steps; };

test('a Node worker runs Python map functions in Pyodide: ordered results, per-argument failures, outside names refused', { timeout: 120_000 }, async () => {
  const foreman = await startTestForeman();
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'node-python', allowCode: true, maxConcurrentTasks: 4, logLevel: 'silent' });
  const client = new Client({ url: foreman.url });
  try {
    await worker.start();
    const args = Array.from({ length: 2_000 }, (_, i) => i + 1);
    assert.deepEqual(await client.map(COLLATZ, args), args.map(collatz));

    const divide = { name: 'tenth', python: 'def tenth(x):\n    import math\n    return math.floor(10 / x)\n' };
    const outcome = await (await client.submitMap(divide, [5, 0, 2, 0], { chunkSize: 4 })).outcome();
    assert.equal(outcome.state, 'failed');
    assert.deepEqual(outcome.results, [2, null, 5, null]);
    // One failure per argument that raised, named by its index in the job, with the Python traceback.
    assert.deepEqual(outcome.failures.map((f) => [f.index, f.error?.message]), [[1, 'argument 1: ZeroDivisionError: division by zero'], [3, 'argument 3: ZeroDivisionError: division by zero']]);
    assert.match(outcome.failures[0].error?.stack ?? '', /Traceback[\s\S]*line 3, in tenth[\s\S]*ZeroDivisionError/);

    // From the command line: the function named in a Python file, its results printed in order.
    const dir = mkdtempSync(join(tmpdir(), 'cc-pymap-cli-'));
    try {
      writeFileSync(join(dir, 'steps.py'), `import sys\n\n${COLLATZ.python}\ndef other(x):\n    return x\n`);
      writeFileSync(join(dir, 'inputs.json'), JSON.stringify([1, 2, 3, 4, 5]));
      const { stdout } = await run(process.execPath, [BIN, 'map', `${join(dir, 'steps.py')}:collatz_steps`, join(dir, 'inputs.json'), '--foreman', foreman.url], { timeout: 120_000 });
      assert.deepEqual(JSON.parse(stdout), [0, 1, 7, 2, 5]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    await assert.rejects(client.map({ python: 'def uses(x):\n    return helper(x) + LIMIT\n' }, [1]),
      (e: Error & { code?: string }) => e.code === 'CC_ERR_CODE_COMPILE' && /helper/.test(e.message) && /LIMIT/.test(e.message));
    await assert.rejects(client.map({ python: 'def broken(x)\n    return x\n' }, [1]), (e: Error & { code?: string }) => e.code === 'CC_ERR_CODE_COMPILE' && /line 1/.test(e.message));
    await assert.rejects(client.map({ python: 'def no_json(x):\n    return {1, 2}\n' }, [1]), (e: unknown) => e instanceof JobFailedError && /not JSON|JSON/.test(e.message));
  } finally {
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});

test('Python map jobs survive a worker SIGKILL and a foreman SIGKILL mid-job, with exact results', { timeout: 170_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-pymap-kill-'));
  const port = await freePort();
  let foreman = await spawnForemanProcess(port, ['--database', `sqlite:${join(dir, 'cc.db')}`, '--heartbeat-interval', '300ms', '--lease-ttl', '3s']);
  const slow = { name: 'slow_square', python: 'def slow_square(x):\n    import time\n    time.sleep(0.02)\n    return x * x\n' };
  const first = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'py-victim', '--allow-code', '--concurrency', '2']);
  let second: ReturnType<typeof spawnWorkerProcess> | null = null;
  const client = new Client({ url: foreman.url });
  try {
    const args = Array.from({ length: 600 }, (_, i) => i);
    const job = await client.submitMap(slow, args, { chunkSize: 10, maxAttempts: 3 });
    await waitFor(async () => (await client.getJob(job.id)).completedTasks >= 5, { timeoutMs: 60_000, message: `some chunks done: ${first.output()}` });
    first.kill('SIGKILL');
    await first.exited;
    foreman.kill('SIGKILL');
    await foreman.exited;
    foreman = await spawnForemanProcess(port, ['--database', `sqlite:${join(dir, 'cc.db')}`, '--heartbeat-interval', '300ms', '--lease-ttl', '3s']);
    second = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'py-rescuer', '--allow-code', '--concurrency', '4']);
    const rescued = new Client({ url: foreman.url });
    try {
      const watched = await rescued.watch(job.id);
      assert.deepEqual(await watched.result(), args.map((x) => x * x));
    } finally {
      await rescued.close();
    }
  } finally {
    await client.close().catch(() => {});
    first.kill('SIGKILL');
    second?.kill('SIGKILL');
    foreman.kill('SIGKILL');
    await foreman.exited;
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--python-memory caps each interpreter's memory: past it, the argument fails with MemoryError and the worker goes on", { timeout: 120_000 }, async () => {
  const foreman = await startTestForeman();
  const worker = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'py-capped', '--allow-code', '--python-memory', '96']);
  const client = new Client({ url: foreman.url });
  try {
    const grow = { name: 'grow', python: 'def grow(mib):\n    return len(bytearray(mib * 1024 * 1024))\n' };
    const outcome = await (await client.submitMap(grow, [16, 200, 32], { chunkSize: 3 })).outcome();
    assert.deepEqual(outcome.results, [16 * 2 ** 20, null, 32 * 2 ** 20]);
    assert.match(outcome.failures[0].error?.message ?? '', /argument 1: MemoryError/);
    assert.deepEqual(await client.map(grow, [8]), [8 * 2 ** 20]);
  } finally {
    await client.close();
    worker.kill('SIGKILL');
    await worker.exited;
    await foreman.cleanup();
  }
});
