/**
 * What only the sandbox processes do: a process that dies is charged to the one call that ran
 * in it, a process that does not answer is killed at the deadline, a cancelled call's process
 * is killed, and the executor goes on with new processes. The processes are seen from outside,
 * as the system sees them (Linux's /proc).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ProcessSandboxExecutor, type ProcessSandboxOptions } from './process-sandbox-executor.ts';
import { SandboxCrashError, type CodeExecutor } from '../runtime/code-executor.ts';
import { CrowdComputeError } from '../../protocol/index.ts';
import { waitFor } from '../../testing/index.ts';

/** True while `pid` runs (a zombie, dead but not yet reaped, does not). */
function running(pid: number): boolean {
  try { return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); } catch { return false; }
}

/** The live children of process `of`; of this one, the sandbox processes. */
function sandboxPids(of = process.pid): number[] {
  return readFileSync(`/proc/${of}/task/${of}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number).filter(running);
}

/** How a call ended: its results, or its error's code. */
async function outcome(p: Promise<unknown[]>): Promise<unknown[] | string> {
  try { return await p; } catch (err) {
    assert.ok(err instanceof CrowdComputeError, `a CrowdComputeError, not ${err}`);
    return err.code;
  }
}

/** An executor whose batches may take as long as a test needs to act during one. */
class LongBatches extends ProcessSandboxExecutor {
  protected override batchBudgetMs = 60_000;
}

/** Run `fn` with a new executor; then dispose of it and wait until its processes are gone, so the next test counts only its own. */
async function withSandbox(options: Partial<ProcessSandboxOptions> & { longBatches?: boolean }, fn: (sandbox: ProcessSandboxExecutor) => Promise<void>): Promise<void> {
  const settings = { memoryLimitMb: 32, defaultTimeoutMs: 60_000, maxProcesses: 4, ...options };
  const sandbox = options.longBatches ? new LongBatches(settings) : new ProcessSandboxExecutor(settings);
  try {
    await fn(sandbox);
  } finally {
    sandbox.dispose();
    await waitFor(() => sandboxPids().length === 0, { timeoutMs: 30_000, message: 'dispose ends every sandbox process' });
  }
}

/** `code` over `args` as a job of its own. */
let n = 0;
function call(sandbox: CodeExecutor, code: string, args: unknown[] = [1], timeoutMs: number | null = null) {
  const jobId = `job-${++n}`;
  sandbox.setCode(jobId, code);
  return sandbox.start(jobId, args, timeoutMs);
}

test('calls in a row share one warm process; calls at once get one process each', async () => {
  await withSandbox({}, async (sandbox) => {
    sandbox.setCode('j', '(x) => x * 2');
    for (let i = 0; i < 5; i++) assert.deepEqual(await sandbox.start('j', [i], null).result, [i * 2]);
    assert.equal(sandboxPids().length, 1);
    const results = await Promise.all([1, 2, 3].map((i) => sandbox.start('j', [i], null).result));
    assert.deepEqual(results, [[2], [4], [6]]);
    assert.equal(sandboxPids().length, 3);
  });
});

test('in a sandbox process, where calls block: async functions are awaited, loops and hung promises stop at the timeout, and the process runs on', async () => {
  await withSandbox({ maxProcesses: 1, killGraceMs: 500 }, async (sandbox) => {
    assert.deepEqual(await call(sandbox, 'async (x) => { await null; return x + 1; }', [1, 2, 3]).result, [2, 3, 4]);
    // Plain values first, then a promise: the chunk switches to awaiting midway.
    assert.deepEqual(await call(sandbox, '(x) => (x < 2 ? x * 10 : Promise.resolve(x * 100))', [0, 1, 2, 3]).result, [0, 10, 200, 300]);
    assert.equal(await outcome(call(sandbox, '(x) => { while (true) {} }', [1], 300).result), 'CC_ERR_TIMEOUT');
    assert.equal(await outcome(call(sandbox, '() => new Promise(() => {})', [1], 300).result), 'CC_ERR_TIMEOUT');
    const failed = await outcome(call(sandbox, '(x) => { if (x === 2) throw new Error("two"); return x; }', [1, 2, 3]).result);
    assert.equal(failed, 'CC_ERR_HANDLER_FAILED');
    assert.deepEqual(await call(sandbox, '(x) => x * 3', [7]).result, [21], 'the next call runs');
  });
});

test('past maxProcesses, a call waits for a process to be free', async () => {
  await withSandbox({ maxProcesses: 2 }, async (sandbox) => {
    const runs = [1, 2, 3, 4, 5].map((i) => call(sandbox, `(x) => x + ${i}`, [10]).result);
    assert.deepEqual(await Promise.all(runs), [[11], [12], [13], [14], [15]]);
    assert.ok(sandboxPids().length <= 2, `at most 2 processes, saw ${sandboxPids().length}`);
  });
});

test('a call that waits for a process past its timeout fails with it', async () => {
  await withSandbox({ maxProcesses: 1 }, async (sandbox) => {
    const busy = call(sandbox, '() => { for (;;) {} }');
    const waiting = call(sandbox, '(x) => x', [1], 300);
    await assert.rejects(waiting.result, (err: unknown) => err instanceof CrowdComputeError && err.code === 'CC_ERR_TIMEOUT' && /longer than 300 ms/.test(err.message));
    busy.kill('cancelled');
    assert.equal(await outcome(busy.result), 'CC_ERR_CANCELLED');
    assert.deepEqual(await call(sandbox, '(x) => x + 1', [1]).result, [2]);
  });
});

test('a process that dies under a call fails that call alone, with the signal, marked not to retry', async () => {
  await withSandbox({}, async (sandbox) => {
    // Two processes, started, then each running a call that would go on for a minute.
    await Promise.all([call(sandbox, '(x) => x').result, call(sandbox, '(x) => x').result]);
    const pids = sandboxPids();
    assert.equal(pids.length, 2);
    const a = call(sandbox, '() => { for (;;) {} }');
    const b = call(sandbox, '() => { for (;;) {} }');
    const ends = [outcome(a.result), outcome(b.result)];
    process.kill(pids[0]!, 'SIGSEGV');
    let crash: unknown = null;
    await Promise.race([a.result, b.result]).catch((err: unknown) => { crash = err; });
    assert.ok(crash instanceof SandboxCrashError, `a SandboxCrashError, not ${crash}`);
    assert.equal(crash.code, 'CC_ERR_SANDBOX_CRASHED');
    assert.match(crash.message, /sandbox process running the function died \(signal SIGSEGV\); the task is not retried/);
    // The other call was still running: cancelling it now is what ends it.
    a.kill('cancelled');
    b.kill('cancelled');
    assert.deepEqual((await Promise.all(ends)).sort(), ['CC_ERR_CANCELLED', 'CC_ERR_SANDBOX_CRASHED']);
    assert.deepEqual(await call(sandbox, '(x) => x + 1', [1]).result, [2], 'a new process serves the next call');
  });
});

test('a process that does not answer is killed at its call\'s deadline plus the grace', async () => {
  await withSandbox({ killGraceMs: 300 }, async (sandbox) => {
    assert.deepEqual(await call(sandbox, '(x) => x', [1]).result, [1]);
    const [pid] = sandboxPids();
    // A stopped process cannot answer, as one whose code ignored isolated-vm's timeout would not.
    process.kill(pid!, 'SIGSTOP');
    assert.equal(await outcome(call(sandbox, '() => 1', [1], 200).result), 'CC_ERR_TIMEOUT');
    await waitFor(() => !sandboxPids().includes(pid!), { timeoutMs: 30_000, message: 'the stopped process is gone' });
    assert.deepEqual(await call(sandbox, '(x) => x + 1', [1]).result, [2]);
  });
});

test('a cancelled call\'s process is killed and replaced', async () => {
  await withSandbox({}, async (sandbox) => {
    const run = call(sandbox, '() => { for (;;) {} }');
    const [pid] = await waitFor(() => sandboxPids().length === 1 && sandboxPids(), { timeoutMs: 30_000, message: 'a sandbox process' });
    run.kill('cancelled');
    assert.equal(await outcome(run.result), 'CC_ERR_CANCELLED');
    await waitFor(() => !sandboxPids().includes(pid!), { timeoutMs: 30_000, message: 'the cancelled call\'s process is gone' });
    assert.deepEqual(await call(sandbox, '(x) => x + 1', [1]).result, [2]);
  });
});

test('a sandbox process ends with its worker, even with a function running that never ends', async () => {
  // A worker of its own, killed outright: it has no chance to kill its sandbox processes.
  const executor = new URL('./process-sandbox-executor.ts', import.meta.url).href;
  const worker = spawn(process.execPath, ['--input-type=module', '-e', `
    const { ProcessSandboxExecutor } = await import(${JSON.stringify(executor)});
    const sandbox = new ProcessSandboxExecutor({ memoryLimitMb: 32 });
    sandbox.setCode('ready', '(x) => x');
    await sandbox.start('ready', [1], null).result;
    sandbox.setCode('j', '() => { for (;;) {} }');
    sandbox.start('j', [1], 600_000).result.catch(() => {});
    setInterval(() => {}, 1_000);`], { stdio: 'ignore' });
  try {
    const [pid] = await waitFor(() => sandboxPids(worker.pid).length === 1 && sandboxPids(worker.pid), { timeoutMs: 60_000, message: 'the worker\'s sandbox process' });
    // CPU time (utime + stime, in ticks) that grows by a second's worth: the loop is running.
    const cpu = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0);
    const at = cpu();
    await waitFor(() => cpu() > at + 100, { timeoutMs: 120_000, message: 'the function runs' });
    worker.kill('SIGKILL');
    await waitFor(() => !running(pid!), { timeoutMs: 30_000, message: 'the sandbox process is gone' });
  } finally {
    worker.kill('SIGKILL');
  }
});

/** Run a chunk of the job twice: once to compile its function, once to time a chunk (batches wait for that). */
async function warm(sandbox: ProcessSandboxExecutor, jobId: string, arg: unknown): Promise<void> {
  for (let i = 0; i < 2; i++) await sandbox.start(jobId, [arg], null).result;
}

/** Keep the one process busy with another job for `ms`, so that calls queue behind it. */
function occupy(sandbox: ProcessSandboxExecutor, ms: number) {
  return call(sandbox, `() => { const t = Date.now(); while (Date.now() - t < ${ms}) {} return 0; }`);
}

test('chunks of one job queued for a process go to it in one message, and each ends as it would alone', async () => {
  await withSandbox({ maxProcesses: 1, longBatches: true }, async (sandbox) => {
    await call(sandbox, '(x) => x').result;
    sandbox.setCode('j', '(x) => { if (x === 3) throw new RangeError("three"); return x * 2; }');
    // Chunks go together once their job's are known to be short.
    await warm(sandbox, 'j', 0);
    const busy = occupy(sandbox, 300);
    const runs = Array.from({ length: 10 }, (_, i) => sandbox.start('j', [i], null, i));
    assert.deepEqual(await busy.result, [0]);
    const ends = await Promise.all(runs.map((r) => r.result.then((v) => v, (err: CrowdComputeError) => err)));
    assert.deepEqual(sandbox.batches, { sent: 1, chunks: 10 }, 'the ten queued chunks went as one batch');
    ends.forEach((end, i) => {
      if (i === 3) {
        assert.ok(end instanceof CrowdComputeError && end.code === 'CC_ERR_HANDLER_FAILED', `chunk 3 failed, not ${JSON.stringify(end)}`);
        assert.match(end.message, /threw on argument 3: RangeError: three/);
      } else {
        assert.deepEqual(end, [i * 2]);
      }
    });
    assert.equal(sandboxPids().length, 1);
  });
});

test('in a batch, a chunk that loops stops at its own timeout and the others finish', async () => {
  await withSandbox({ maxProcesses: 1, killGraceMs: 2_000, longBatches: true }, async (sandbox) => {
    await call(sandbox, '(x) => x').result;
    sandbox.setCode('loop', '(x) => { if (x === 2) for (;;) {} return x; }');
    await warm(sandbox, 'loop', 0);
    const busy = occupy(sandbox, 200);
    const runs = [0, 1, 2, 3, 4].map((i) => sandbox.start('loop', [i], i === 2 ? 300 : 1_500));
    await busy.result;
    const ends = await Promise.all(runs.map((r) => outcome(r.result)));
    assert.deepEqual(ends, [[0], [1], 'CC_ERR_TIMEOUT', [3], [4]]);
    assert.equal(sandbox.batches.sent, 1);
  });
});

test('a chunk cancelled inside a batch ends alone; the others run again and finish', async () => {
  await withSandbox({ maxProcesses: 1, longBatches: true }, async (sandbox) => {
    await call(sandbox, '(x) => x').result;
    sandbox.setCode('c', '(x) => { if (x === 0) for (;;) {} return x + 100; }');
    await warm(sandbox, 'c', 5);
    const busy = occupy(sandbox, 200);
    const runs = [0, 1, 2, 3].map((i) => sandbox.start('c', [i], null));
    await busy.result;
    await waitFor(() => sandbox.batches.sent === 1, { message: 'the batch is sent' });
    const [pid] = sandboxPids();
    runs[0]!.kill('cancelled');
    assert.deepEqual(await Promise.all(runs.map((r) => outcome(r.result))), ['CC_ERR_CANCELLED', [101], [102], [103]]);
    assert.ok(!sandboxPids().includes(pid!), 'the process running the batch was killed');
  });
});

test('when a batch\'s process dies, its chunks run again one by one, so a death is charged only to the chunk that causes it', async () => {
  await withSandbox({ maxProcesses: 1, longBatches: true }, async (sandbox) => {
    await call(sandbox, '(x) => x').result;
    sandbox.setCode('d', '(x) => { const t = Date.now(); while (Date.now() - t < 100) {} return x; }');
    await warm(sandbox, 'd', 0);
    const busy = occupy(sandbox, 200);
    const runs = [0, 1, 2, 3].map((i) => sandbox.start('d', [i], null));
    await busy.result;
    await waitFor(() => sandbox.batches.sent === 1, { message: 'the batch is sent' });
    // Killed from outside: which chunk did it is unknowable, so none is blamed yet.
    process.kill(sandboxPids()[0]!, 'SIGSEGV');
    assert.deepEqual(await Promise.all(runs.map((r) => outcome(r.result))), [[0], [1], [2], [3]]);
    assert.equal(sandbox.batches.sent, 1, 'after the death they ran one at a time');
    // A chunk whose own run kills its process fails alone, marked not to retry.
    sandbox.setCode('oom', '(x) => { if (x === 1) { const a = []; for (;;) a.push(new Array(1e5).fill(x)); } return x; }');
    await warm(sandbox, 'oom', 0);
    const busy2 = occupy(sandbox, 200);
    const more = [0, 1, 2].map((i) => sandbox.start('oom', [i], null));
    await busy2.result;
    assert.deepEqual(await Promise.all(more.map((r) => outcome(r.result))), [[0], 'CC_ERR_MEMORY_LIMIT', [2]]);
  });
});

test('a job\'s long chunks are not batched: each waiting process takes one, so all of them share the job', async () => {
  await withSandbox({ maxProcesses: 2 }, async (sandbox) => {
    await Promise.all([call(sandbox, '(x) => x').result, call(sandbox, '(x) => x').result]);
    sandbox.setCode('long', '(x) => { const t = Date.now(); while (Date.now() - t < 40) {} return x; }');
    await warm(sandbox, 'long', 0);
    const runs = Array.from({ length: 8 }, (_, i) => sandbox.start('long', [i], null));
    assert.deepEqual(await Promise.all(runs.map((r) => r.result)), [[0], [1], [2], [3], [4], [5], [6], [7]]);
    assert.deepEqual(sandbox.batches, { sent: 0, chunks: 0 });
  });
});
