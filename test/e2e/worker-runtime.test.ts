import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerRuntime } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';

test('the worker runtime runs on the standard WebSocket (Node\'s global, as in a browser) and stays connected past several lease TTLs', async () => {
  const foreman = await startTestForeman({ heartbeatIntervalMs: 100, leaseTtlMs: 600 });
  // No webSocket option: the global WebSocket, whose API shows no pings. Only heartbeat_ack
  // tells this worker the foreman still hears it.
  const runtime = new WorkerRuntime({ foremanUrl: foreman.wsUrl, workerId: 'standard', maxConcurrentTasks: 2, token: foreman.credentials!.workerToken });
  runtime.handle('twice', async (t) => (t.input as number) * 2);
  const client = new Client({ url: foreman.url });
  try {
    await runtime.start();
    const started = Date.now();
    const job = await client.submitMany(Array.from({ length: 20 }, (_, i) => ({ type: 'twice', input: i })));
    assert.deepEqual(await job.result(), Array.from({ length: 20 }, (_, i) => i * 2));
    await waitFor(() => Date.now() - started > 2_000 || null, { timeoutMs: 5_000, message: 'three lease TTLs pass' });
    assert.equal(runtime.stats.connects, 1, 'no reconnection: the foreman was heard all along');
    assert.ok(runtime.connected);
    assert.equal(runtime.allowCode, false);
  } finally {
    await client.close();
    await runtime.stop();
    await foreman.cleanup();
  }
});
