import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startForeman } from '../../src/foreman/index.ts';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { waitFor } from '../../src/testing/index.ts';

test('worker and waiting client reconnect by themselves when the foreman restarts; the job completes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-reconnect-'));
  const database = `sqlite:${join(dir, 'cc.db')}`;
  let foreman = await startForeman({ port: 0, host: '127.0.0.1', database, logLevel: 'silent' });
  const port = foreman.port;
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let runs = 0;
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'survivor', maxConcurrentTasks: 2, reconnectIntervalMs: 50, logLevel: 'silent' });
  worker.handle('wait.*', async (t) => { runs++; await gate; return t.input.v * 2; });
  await worker.start();
  const client = new Client({ url: foreman.url, reconnectIntervalMs: 50 });
  try {
    const job = await client.submitMany([{ type: 'wait.a', input: { v: 1 } }, { type: 'wait.b', input: { v: 2 } }]);
    await waitFor(() => worker.runningTasks.length === 2 || null, { message: 'both tasks running' });
    // The foreman goes away while both tasks run; the results finish while it is down.
    await foreman.stop();
    release();
    await waitFor(() => worker.unackedCount === 2 || null, { message: 'results held until acknowledged' });
    foreman = await startForeman({ port, host: '127.0.0.1', database, logLevel: 'silent' });
    assert.deepEqual(await job.result(), [2, 4]);
    assert.equal(runs, 2, 'each task ran once: the held results were recorded, not re-run');
    await waitFor(() => worker.unackedCount === 0 || null, { message: 'results acknowledged after reconnect' });
    assert.ok(worker.stats.connects >= 2);
  } finally {
    await client.close();
    await worker.stop();
    await foreman.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
