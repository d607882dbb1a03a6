import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { Client } from './client.ts';

test('a completion that arrives before its job_accepted is not lost (several foremen can reorder them)', async () => {
  const server = createServer();
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (ws) => ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    if (m.type !== 'submit_job') return;
    const counts = { total: 1, completed: 1, failed: 0, cancelled: 0 };
    ws.send(JSON.stringify([
      { type: 'job_completed', jobId: 'j1', state: 'completed', counts, results: [42] },
      { type: 'job_accepted', requestId: m.requestId, jobId: 'j1', totalTasks: 1, position: 0, deduplicated: false },
    ]));
  }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = new Client({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  try {
    const task = await client.submit('x', {});
    assert.equal(await task.result(), 42);
  } finally {
    await client.close();
    wss.close();
    server.close();
  }
});
