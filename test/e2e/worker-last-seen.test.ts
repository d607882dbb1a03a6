/**
 * A connected worker that runs nothing is still seen: its heartbeats move its last seen
 * forward in GET /api/workers and in `crowdcompute workers` (table and --json), not only its
 * connection and its results.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));

test('an idle connected worker\'s last seen follows its heartbeats (REST, CLI table and --json)', { timeout: 120_000 }, async () => {
  const foreman = await startTestForeman({ heartbeatIntervalMs: 100 });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'idle-worker', maxConcurrentTasks: 1, logLevel: 'silent' })
    .handle('never.sent', async () => null);
  const client = new Client({ url: foreman.url });
  try {
    await worker.start();
    // Idle for many heartbeats: no task, no result. Its last seen must move past its connection.
    const seen = await waitFor(async () => {
      const w = (await client.workers()).find((x) => x.worker_id === 'idle-worker');
      return w && Date.parse(w.last_seen_at) >= Date.parse(w.connected_at) + 1_000 ? w : null;
    }, { timeoutMs: 30_000, message: 'GET /api/workers shows the idle worker seen after it connected' });
    assert.equal(seen.status, 'online');

    const env = { ...process.env, CROWDCOMPUTE_API_KEY: foreman.credentials!.apiKey };
    const json = JSON.parse((await run(process.execPath, [bin, 'workers', '--foreman', foreman.url, '--json'], { env })).stdout) as { worker_id: string; connected_at: string; last_seen_at: string }[];
    const w = json.find((x) => x.worker_id === 'idle-worker')!;
    assert.ok(Date.parse(w.last_seen_at) >= Date.parse(seen.last_seen_at), `--json: last seen ${w.last_seen_at} not before what REST said`);
    const table = (await run(process.execPath, [bin, 'workers', '--foreman', foreman.url], { env })).stdout;
    const row = table.split('\n').find((l) => l.startsWith('idle-worker')) ?? '';
    // Seen at the last heartbeat, not when it connected: under its time connected.
    const connectedFor = Date.now() - Date.parse(w.connected_at);
    const ago = /(\d+) ms ago$|just now$|(\d+) seconds? ago$/.exec(row);
    assert.ok(ago, `the table says when it was seen: ${row}`);
    const agoMs = ago[1] ? Number(ago[1]) : ago[2] ? Number(ago[2]) * 1_000 : 0;
    assert.ok(agoMs < connectedFor - 500, `last seen ${agoMs} ms ago, connected ${connectedFor} ms ago: ${row}`);
  } finally {
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});
