/**
 * The entry point of a sandbox process: a child of the worker that hosts an in-process
 * {@link SandboxExecutor} and runs the chunks the worker sends it, one at a time. Whatever
 * the shipped code does to this process (a V8 heap exhaustion aborts it), the worker survives
 * and charges the death to the one chunk that was running here.
 *
 * Started by sandbox-process.ts with `--no-node-snapshot` (isolated-vm needs it) and the
 * sandbox's limits as JSON in argv[2].
 */
// The error class alone, not the protocol's index: sandbox processes load this file, and the
// index would load zod and every schema into each (twice the start-up CPU, 20 MiB more memory).
import { Worker } from 'node:worker_threads';
import { CrowdComputeError } from '../../protocol/errors.ts';
import { SandboxExecutor, type SandboxOptions } from './sandbox-executor.ts';
import type { FromSandbox, RunOutcome, ToSandbox } from './sandbox-messages.ts';
import { stoppedError } from './sandbox-runner.ts';

// The worker decides when this process ends (it kills it, or it exits itself, and the IPC
// channel closes). A Ctrl-C in a terminal or a service manager's SIGTERM reach the whole
// process group; ignoring them here lets the worker drain the chunk running here.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
// Not process.exit(): its exit handlers wait for a running isolate, which may never end.
process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
// Calls into the isolate block this thread (see `blocking` below), so while a function runs the
// 'disconnect' above is not heard: a worker killed outright would leave this process running
// the function to its timeout. A watchdog thread notices the worker gone (this process handed
// to another parent) and ends it; a check every 250 ms costs nothing measurable.
new Worker(`setInterval(() => { if (process.ppid !== ${process.ppid}) process.kill(${process.pid}, 'SIGKILL'); }, 250);`, { eval: true }).unref();

const options = JSON.parse(process.argv[2] ?? '{}') as Partial<SandboxOptions>;
// The worker tracks which sources each process holds and says when to forget one.
// One chunk at a time and nothing else to do meanwhile: calls into the isolate block (see `blocking`).
const sandbox = new SandboxExecutor({ ...options, maxJobs: Number.MAX_SAFE_INTEGER, blocking: true });

function send(m: FromSandbox): void {
  process.send!(m);
}

/** A rejection as the worker reads it. */
function wireError(err: unknown, jobId: string): Extract<RunOutcome, { error: unknown }> {
  const e = err instanceof CrowdComputeError ? err : new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: ${(err as Error)?.message ?? String(err)}`);
  return { error: { ...e.toJSON(), stack: e.stack } };
}

/**
 * Several chunks of one job, one after another, answered in one message: the worker sends
 * these when chunks queue for its sandbox processes, and each message each way costs more
 * than a small chunk's call. Each chunk keeps its own deadline, counted from the arrival.
 */
async function runAll(jobId: string, runs: { argsJson: string; timeoutMs: number }[]): Promise<void> {
  const arrived = Date.now();
  const outcomes: RunOutcome[] = [];
  for (const r of runs) {
    const left = arrived + r.timeoutMs - Date.now();
    if (left <= 0) { outcomes.push(wireError(stoppedError('timeout', jobId, r.timeoutMs), jobId)); continue; }
    try {
      outcomes.push({ text: await sandbox.startJson(jobId, r.argsJson, left).result });
    } catch (err) {
      outcomes.push(wireError(err, jobId));
    }
  }
  send({ t: 'dones', outcomes });
}

process.on('message', (m: ToSandbox) => {
  switch (m.t) {
    case 'code': sandbox.setCode(m.jobId, m.code); return;
    case 'forget': sandbox.forget(m.jobId); return;
    case 'run':
      sandbox.startJson(m.jobId, m.argsJson, m.timeoutMs).result.then(
        (text) => send({ t: 'done', text }),
        (err: unknown) => send({ t: 'failed', ...wireError(err, m.jobId) }),
      );
      return;
    case 'runs':
      void runAll(m.jobId, m.runs);
  }
});

send({ t: 'ready' });
